//! Materials management (MM) domain: plants and storage locations, the material master with
//! units of measure, vendors with payment terms, and the stock of a material in a plant with
//! its valuation. Pure: no I/O, no clock; ids and dates come in as data.
//!
//! Aggregates (types qualified by the context) and their ids:
//! - `materials.plant`: `<company>/<plant>` (its storage locations inside)
//! - `materials.material`: `<company>/<material>` (the plants it is valued in, and how)
//! - `materials.vendor`: `<company>/<vendor>`
//! - `materials.stock`: `<company>/<material>/<plant>`: quantities per storage location and
//!   the valuation; every goods movement is an event of this stream, valued when decided
//! - `materials.reservation`: `<company>/<material>/<plant>`: what other contexts hold of the
//!   stock for a date (appended by them, as sales appends its deliveries' goods issues)
//!
//! Invariants protected here: stock never goes negative (per storage location and in total),
//! quantities are in the material's base unit once decided, a movement's value is decided by the
//! valuation method and carried in the event (see [`crate::valuation`] for the rounding).

mod invoicing;
mod master;
mod purchasing;
mod reservation;
mod stock;

pub use invoicing::*;
pub use master::*;
pub use purchasing::*;
pub use reservation::*;
pub use stock::*;

use crate::valuation::round_amount;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tributary_kernel::master::{Currency, UnitOfMeasure};

pub const NAME_LENGTH_MAX: usize = 200;

use tributary_kernel::code;

code!(PlantCode, 8, "must be 1 to 8 characters A-Z or 0-9", b"");
code!(LocationCode, 8, "must be 1 to 8 characters A-Z or 0-9", b"");
code!(
    MaterialNumber,
    40,
    "must be 1 to 40 characters A-Z, 0-9, '-', '_' or '.'",
    b"-_."
);
code!(
    VendorNumber,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);
code!(
    PurchaseOrderNumber,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);
code!(
    InvoiceNumber,
    30,
    "must be 1 to 30 characters A-Z, 0-9, '-', '_' or '/'",
    b"-_/"
);
code!(
    ValuationClass,
    10,
    "must be 1 to 10 characters A-Z or 0-9",
    b""
);
code!(
    MaterialGroup,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialType {
    Raw,
    SemiFinished,
    Finished,
    Trading,
}

impl MaterialType {
    pub fn parse(text: &str) -> Result<MaterialType, &'static str> {
        match text {
            "raw" => Ok(MaterialType::Raw),
            "semi_finished" => Ok(MaterialType::SemiFinished),
            "finished" => Ok(MaterialType::Finished),
            "trading" => Ok(MaterialType::Trading),
            _ => Err("must be one of raw, semi_finished, finished, trading"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialType::Raw => "raw",
            MaterialType::SemiFinished => "semi_finished",
            MaterialType::Finished => "finished",
            MaterialType::Trading => "trading",
        }
    }
}

/// An alternative unit: `factor` base units make one of it (a box of 12 pieces: BOX, 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitConversion {
    pub unit: UnitOfMeasure,
    pub factor: Decimal,
}

/// Payment terms such as 2/10 net 30: `discount_percent` off when paid within
/// `discount_days`, the full amount due after `net_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTerms {
    pub discount_percent: Decimal,
    pub discount_days: u32,
    pub net_days: u32,
}

impl PaymentTerms {
    pub fn net(net_days: u32) -> PaymentTerms {
        PaymentTerms {
            discount_percent: Decimal::ZERO,
            discount_days: 0,
            net_days,
        }
    }

    /// The due date of an invoice dated `invoice_date`.
    pub fn due_date(&self, invoice_date: NaiveDate) -> NaiveDate {
        invoice_date + chrono::Days::new(u64::from(self.net_days))
    }

    /// The cash discount on `amount` when paid on `payment_date` (zero after the discount period).
    pub fn discount(
        &self,
        amount: Decimal,
        invoice_date: NaiveDate,
        payment_date: NaiveDate,
    ) -> Decimal {
        let last_day = invoice_date + chrono::Days::new(u64::from(self.discount_days));
        if payment_date <= last_day {
            round_amount(amount * self.discount_percent / Decimal::ONE_HUNDRED)
        } else {
            Decimal::ZERO
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------------------------

/// A broken business rule, with the input field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("plant {plant} already exists")]
    PlantExists { plant: PlantCode },
    #[error("storage location {location} already exists in plant {plant}")]
    LocationExists {
        plant: PlantCode,
        location: LocationCode,
    },
    #[error("material {material} already exists")]
    MaterialExists { material: MaterialNumber },
    #[error("vendor {vendor} already exists")]
    VendorExists { vendor: VendorNumber },
    #[error("plant {plant} does not exist")]
    PlantNotFound { field: String, plant: PlantCode },
    #[error("storage location {location} does not exist in plant {plant}")]
    LocationNotFound {
        field: String,
        plant: PlantCode,
        location: LocationCode,
    },
    #[error("material {material} is not valued in plant {plant}; extend it to the plant first")]
    MaterialNotInPlant {
        field: String,
        material: MaterialNumber,
        plant: PlantCode,
    },
    #[error("material {material} is already valued in plant {plant}")]
    MaterialAlreadyInPlant {
        material: MaterialNumber,
        plant: PlantCode,
    },
    #[error("unit {unit} is not a unit of material {material} (base {base})")]
    UnitNotOfMaterial {
        field: String,
        unit: UnitOfMeasure,
        material: MaterialNumber,
        base: UnitOfMeasure,
    },
    #[error("unit {unit} is listed twice or is the base unit")]
    UnitTwice { field: String, unit: UnitOfMeasure },
    #[error("the quantity must be greater than zero")]
    QuantityNotPositive { field: String },
    #[error("only {on_hand} on hand in storage location {location}, {requested} requested")]
    StockShort {
        field: String,
        location: LocationCode,
        requested: Decimal,
        on_hand: Decimal,
    },
    #[error("a transfer needs two different storage locations")]
    TransferToItself,
    #[error("purchase order {number} already exists")]
    PurchaseOrderExists { number: PurchaseOrderNumber },
    #[error("purchase order {number} does not exist")]
    PurchaseOrderNotFound {
        field: String,
        number: PurchaseOrderNumber,
    },
    #[error("purchase order {number} is closed")]
    PurchaseOrderClosed {
        field: String,
        number: PurchaseOrderNumber,
    },
    #[error("vendor {vendor} does not exist")]
    VendorNotFound { field: String, vendor: VendorNumber },
    #[error("material {material} does not exist")]
    MaterialNotFound {
        field: String,
        material: MaterialNumber,
    },
    #[error("purchase order {number} has no line {line}")]
    LineNotFound {
        field: String,
        number: PurchaseOrderNumber,
        line: u32,
    },
    #[error("line {line} is listed twice")]
    LineTwice { field: String, line: u32 },
    #[error("line {line} is cancelled")]
    LineCancelled { field: String, line: u32 },
    #[error("line {line} is {}: only open lines change or cancel", status.as_str())]
    LineNotOpen {
        field: String,
        line: u32,
        status: OrderStatus,
    },
    #[error("an order needs 1 to {max} lines, got {count}")]
    LineCount { count: usize, max: usize },
    #[error(
        "{requested} more would exceed the ordered {ordered} plus {tolerance_percent}% tolerance; {received} received so far"
    )]
    ReceiptBeyondTolerance {
        field: String,
        ordered: Decimal,
        received: Decimal,
        requested: Decimal,
        tolerance_percent: Decimal,
    },
    #[error("only {received} was received on the line, {requested} cannot go back")]
    ReturnBeyondReceived {
        field: String,
        received: Decimal,
        requested: Decimal,
    },
    #[error("the currency is {given}, {expected} expected")]
    CurrencyMismatch {
        field: String,
        expected: Currency,
        given: Currency,
    },
    #[error("vendor {vendor} already has a document {number}")]
    InvoiceExists {
        vendor: VendorNumber,
        number: InvoiceNumber,
    },
    #[error("purchase order {number} was placed with vendor {ordered_from}")]
    VendorMismatch {
        field: String,
        number: PurchaseOrderNumber,
        ordered_from: VendorNumber,
    },
    #[error("{requested} invoiced now and {invoiced} before would exceed the {received} received")]
    InvoiceBeyondReceived {
        field: String,
        received: Decimal,
        invoiced: Decimal,
        requested: Decimal,
    },
    #[error("only {invoiced} was invoiced on the line, {requested} cannot be credited")]
    CreditBeyondInvoiced {
        field: String,
        invoiced: Decimal,
        requested: Decimal,
    },
    #[error("document {number} is not blocked")]
    InvoiceNotBlocked { number: InvoiceNumber },
    #[error("document {number} is listed twice")]
    InvoiceTwice {
        field: String,
        number: InvoiceNumber,
    },
    #[error("vendor {vendor} has no document {number}")]
    InvoiceNotFound {
        field: String,
        vendor: VendorNumber,
        number: InvoiceNumber,
    },
    #[error("document {number} is blocked for payment ({reason}); release it first")]
    InvoiceBlocked {
        field: String,
        number: InvoiceNumber,
        reason: String,
    },
    #[error("document {number} is paid already")]
    InvoiceSettled {
        field: String,
        number: InvoiceNumber,
    },
    #[error("a credit memo is settled in full: leave the amount out")]
    PartialCredit { field: String },
    #[error("{requested} is more than the {open} open")]
    PaymentBeyondOpen {
        field: String,
        open: Decimal,
        requested: Decimal,
    },
    #[error("the documents net to {paid}: nothing to pay")]
    PaymentNotPositive { paid: Decimal },
    #[error("document {number} is dated {invoice_date}, after the payment")]
    PaymentBeforeInvoice {
        field: String,
        number: InvoiceNumber,
        invoice_date: NaiveDate,
    },
    #[error("{quantity} {unit} is {base} in the base unit: more than {QUANTITY_DECIMALS} decimals")]
    QuantityPrecision {
        field: String,
        quantity: Decimal,
        unit: UnitOfMeasure,
        base: Decimal,
    },
}

/// Decimals a quantity in the base unit may carry (the lake's quantity columns).
pub const QUANTITY_DECIMALS: u32 = 4;

impl Violation {
    pub fn field(&self) -> String {
        match self {
            Violation::PlantExists { .. } => "code".into(),
            Violation::LocationExists { .. } => "location".into(),
            Violation::MaterialExists { .. } | Violation::MaterialAlreadyInPlant { .. } => {
                "number".into()
            }
            Violation::VendorExists { .. } => "number".into(),
            Violation::PlantNotFound { field, .. }
            | Violation::LocationNotFound { field, .. }
            | Violation::MaterialNotInPlant { field, .. }
            | Violation::UnitNotOfMaterial { field, .. }
            | Violation::UnitTwice { field, .. }
            | Violation::QuantityNotPositive { field }
            | Violation::StockShort { field, .. } => field.clone(),
            Violation::TransferToItself => "to_storage_location".into(),
            Violation::PurchaseOrderExists { .. } => "number".into(),
            Violation::LineCount { .. } => "lines".into(),
            Violation::PurchaseOrderNotFound { field, .. }
            | Violation::PurchaseOrderClosed { field, .. }
            | Violation::VendorNotFound { field, .. }
            | Violation::MaterialNotFound { field, .. }
            | Violation::LineNotFound { field, .. }
            | Violation::LineTwice { field, .. }
            | Violation::LineCancelled { field, .. }
            | Violation::LineNotOpen { field, .. }
            | Violation::ReceiptBeyondTolerance { field, .. }
            | Violation::ReturnBeyondReceived { field, .. }
            | Violation::CurrencyMismatch { field, .. }
            | Violation::VendorMismatch { field, .. }
            | Violation::InvoiceBeyondReceived { field, .. }
            | Violation::CreditBeyondInvoiced { field, .. }
            | Violation::InvoiceTwice { field, .. }
            | Violation::InvoiceNotFound { field, .. }
            | Violation::InvoiceBlocked { field, .. }
            | Violation::InvoiceSettled { field, .. }
            | Violation::PartialCredit { field }
            | Violation::PaymentBeyondOpen { field, .. }
            | Violation::PaymentBeforeInvoice { field, .. }
            | Violation::QuantityPrecision { field, .. } => field.clone(),
            Violation::InvoiceExists { .. } => "number".into(),
            Violation::InvoiceNotBlocked { .. } => "number".into(),
            Violation::PaymentNotPositive { .. } => "invoices".into(),
        }
    }

    pub fn rule(&self) -> &'static str {
        match self {
            Violation::PlantExists { .. } => "plant_exists",
            Violation::LocationExists { .. } => "location_exists",
            Violation::MaterialExists { .. } => "material_exists",
            Violation::VendorExists { .. } => "vendor_exists",
            Violation::PlantNotFound { .. } => "plant_not_found",
            Violation::LocationNotFound { .. } => "location_not_found",
            Violation::MaterialNotInPlant { .. } => "material_not_in_plant",
            Violation::MaterialAlreadyInPlant { .. } => "material_in_plant",
            Violation::UnitNotOfMaterial { .. } => "unit_not_of_material",
            Violation::UnitTwice { .. } => "unit_twice",
            Violation::QuantityNotPositive { .. } => "positive",
            Violation::StockShort { .. } => "stock_short",
            Violation::TransferToItself => "transfer_to_itself",
            Violation::PurchaseOrderExists { .. } => "purchase_order_exists",
            Violation::PurchaseOrderNotFound { .. } => "purchase_order_not_found",
            Violation::PurchaseOrderClosed { .. } => "purchase_order_closed",
            Violation::VendorNotFound { .. } => "vendor_not_found",
            Violation::MaterialNotFound { .. } => "material_not_found",
            Violation::LineNotFound { .. } => "line_not_found",
            Violation::LineTwice { .. } => "line_twice",
            Violation::LineCancelled { .. } => "line_cancelled",
            Violation::LineNotOpen { .. } => "line_not_open",
            Violation::LineCount { .. } => "line_count",
            Violation::ReceiptBeyondTolerance { .. } => "over_delivery_tolerance",
            Violation::ReturnBeyondReceived { .. } => "return_beyond_received",
            Violation::CurrencyMismatch { .. } => "currency_mismatch",
            Violation::InvoiceExists { .. } => "invoice_exists",
            Violation::VendorMismatch { .. } => "vendor_mismatch",
            Violation::InvoiceBeyondReceived { .. } => "invoice_beyond_received",
            Violation::CreditBeyondInvoiced { .. } => "credit_beyond_invoiced",
            Violation::InvoiceNotBlocked { .. } => "invoice_not_blocked",
            Violation::InvoiceTwice { .. } => "invoice_twice",
            Violation::InvoiceNotFound { .. } => "invoice_not_found",
            Violation::InvoiceBlocked { .. } => "invoice_blocked",
            Violation::InvoiceSettled { .. } => "invoice_settled",
            Violation::PartialCredit { .. } => "credit_in_full",
            Violation::PaymentBeyondOpen { .. } => "payment_beyond_open",
            Violation::PaymentNotPositive { .. } => "payment_not_positive",
            Violation::PaymentBeforeInvoice { .. } => "payment_before_invoice",
            Violation::QuantityPrecision { .. } => "max_4_decimal_places_in_base_unit",
        }
    }
}

pub(crate) fn reject<T>(violation: Violation) -> Result<T, Vec<Violation>> {
    Err(vec![violation])
}
