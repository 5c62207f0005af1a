//! Sales and distribution (SD): order to cash. Built in steps (issue 15): the pricing engine,
//! the customer master over REST so far; orders with availability and credit checks,
//! deliveries, billing and receivables follow.
//!
//! `pricing` determines a line's price from condition records and explains every step;
//! `customer` is the customer aggregate (`sales.customer`); `conditions` keeps the condition
//! records (`sales.material_pricing`, `sales.conditions`); `commands` loads and decides,
//! `api` is the REST surface. [`module`] declares it to the binary.

pub mod api;
pub mod atp;
pub mod billing;
pub mod commands;
pub mod conditions;
pub mod customer;
pub mod delivery;
pub mod demand;
pub mod lake;
pub mod order;
pub mod permissions;
pub mod pricing;
pub mod reads;

use conditions::{CompanyConditions, MaterialPricing};
use customer::Customer;
use demand::{MaterialDemand, SalesIndexes};
use order::SalesDocument;
use tributary_kernel::module::{EventSet, Module};

pub const CONTEXT: &str = "sales";

/// Sales as a module.
pub fn module() -> Module {
    let mut module = Module::new(
        CONTEXT,
        "Sales and distribution: customers, pricing, sales orders, deliveries, billing and receivables",
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events"),
    );
    module.depends_on = &["finance", "materials"];
    module.appends_with = &["materials"];
    module.commands = api::router;
    module.reads = reads::router;
    module.permissions = permissions::all();
    module.events = vec![
        EventSet::of::<Customer>(),
        EventSet::of::<MaterialPricing>(),
        EventSet::of::<CompanyConditions>(),
        EventSet::of::<SalesDocument>(),
        EventSet::of::<MaterialDemand>(),
        EventSet::of::<delivery::Delivery>(),
        EventSet::of::<billing::BillingDocument>(),
        EventSet::of::<billing::Payment>(),
    ];
    module.relations = lake::relations();
    module.tables = lake::tables();
    module.pipelines = lake::pipelines();
    module.views = lake::views();
    module.extensions = Some(|store, extensions| {
        extensions.insert(SalesIndexes::new(store));
    });
    module
}
