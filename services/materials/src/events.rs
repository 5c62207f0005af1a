//! The events materials publishes: the contract other contexts may read (finance's automatic
//! postings, the lake). Changing one means a new version with an upcaster and a fixture.

pub use crate::domain::{
    InvoiceKind, InvoiceLine, InvoiceNumber, LocationCode, MaterialEvent, MaterialNumber, Movement,
    MovementKind, PaymentItem, PlantCode, PlantEvent, PurchaseOrderEvent, PurchaseOrderNumber,
    StockEvent, ValuationClass, VendorEvent, VendorInvoiceEvent, VendorNumber, VendorPaymentEvent,
};
