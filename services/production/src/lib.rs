//! Production planning (PP) and MRP. Built in steps (issue 16): master data (planning data,
//! bills of material with a cycle check, work centres, routings, planned independent
//! requirements) and MRP (full runs and net change, results in the lake) so far; production
//! orders, demand forecasts and capacity follow.
//!
//! `mrp` is the planning itself, pure; `master` the master data aggregates; `run` an MRP run;
//! `planning` the worker that keeps MRP's inputs from the feed and carries out runs and net
//! change; `commands` loads and decides, `api` is the REST surface, `reads` the lake reads.
//! [`module`] declares it to the binary.

pub mod api;
pub mod commands;
pub mod forecast;
pub mod forecasting;
pub mod lake;
pub mod master;
pub mod mrp;
pub mod order;
pub mod orders;
pub mod orders_api;
pub mod permissions;
pub mod planning;
pub mod reads;
pub mod run;

use tributary_kernel::module::{EventSet, Module};

pub const CONTEXT: &str = "production";

/// Production as a module.
pub fn module() -> Module {
    let mut module = Module::new(
        CONTEXT,
        "Production planning: bills of material, routings, work centres, planning data, MRP",
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events"),
    );
    module.depends_on = &["materials", "sales"];
    module.appends_with = &["materials"];
    module.commands = api::router;
    module.reads = reads::router;
    module.permissions = permissions::all();
    module.events = vec![
        EventSet::of::<master::PlanningRecord>(),
        EventSet::of::<master::BillOfMaterial>(),
        EventSet::of::<master::BomStructure>(),
        EventSet::of::<master::WorkCenterRecord>(),
        EventSet::of::<master::RoutingRecord>(),
        EventSet::of::<master::PlannedRequirements>(),
        EventSet::of::<run::MrpRun>(),
        EventSet::of::<order::ProductionOrderRecord>(),
        EventSet::of::<orders::PlannedOrderConversion>(),
        EventSet::of::<orders::MaterialConversions>(),
    ];
    module.relations = lake::relations();
    module.pipelines = lake::pipelines();
    module.tables = lake::tables();
    module.views = lake::views();
    module.workers = vec![planning::worker];
    module.extensions = Some(|store, extensions| {
        extensions.insert(planning::PlanningView::new(store));
    });
    module
}
