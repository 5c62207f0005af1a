//! Materials management (MM): plants and storage locations, the material master with units of
//! measure, vendors with payment terms, and stock valued by moving average or FIFO, event-sourced.
//!
//! `domain` holds the rules, `valuation` the valuation methods and their rounding,
//! `aggregates` puts them on the kernel's aggregate abstraction, `lake` defines the relations and
//! tables, `api` is the REST surface. [`module`] declares it to the binary.

pub mod aggregates;
pub mod api;
pub mod availability;
pub mod commands;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod lake;
pub mod permissions;
pub mod reads;
pub mod valuation;

#[cfg(test)]
mod domain_tests;

use domain::{Material, Plant, PurchaseOrder, Stock, Vendor, VendorInvoice, VendorPayment};
use tributary_kernel::module::{EventSet, Module};

pub const CONTEXT: &str = "materials";

/// Materials as a module.
pub fn module() -> Module {
    let mut module = Module::new(
        CONTEXT,
        "Materials management: plants, material master, vendors, stock and its valuation",
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events"),
    );
    module.depends_on = &["finance"];
    module.commands = api::router;
    module.reads = reads::router;
    module.permissions = permissions::all();
    module.events = vec![
        EventSet::of::<Plant>(),
        EventSet::of::<Material>(),
        EventSet::of::<Vendor>(),
        EventSet::of::<Stock>(),
        EventSet::of::<domain::Reservations>(),
        EventSet::of::<PurchaseOrder>(),
        EventSet::of::<VendorInvoice>(),
        EventSet::of::<VendorPayment>(),
    ];
    module.relations = lake::relations();
    module.tables = lake::tables();
    module.pipelines = lake::pipelines();
    module.views = lake::views();
    module.availability = Some(availability::local);
    module.metrics = Some(lake::metrics);
    module
}
