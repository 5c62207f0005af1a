//! Purchase orders: what was ordered from a vendor, what arrived against it, what was invoiced.
//!
//! ```text
//!  PurchaseOrderCreated ──► lines open ──► PurchaseOrderReceived (+ receipt, − return to vendor)
//!        │  change / cancel an open line         │ within the over-delivery tolerance
//!        ▼                                        ▼
//!  PurchaseOrderLineChanged / …Cancelled    PurchaseOrderInvoiced (+ invoice, − credit memo)
//!                                                 │
//!                                  PurchaseOrderClosed (nothing more expected)
//! ```
//! Quantities received and invoiced are kept in the material's base unit. Values at the order
//! price are rounded cumulatively: a receipt is worth `value(received after) − value(received
//! before)`, so partial receipts add up to the rounded value of the whole and the GR/IR
//! clearing account clears to the cent once everything received is invoiced.

use super::*;
use crate::valuation::round_amount;
use std::collections::{BTreeMap, HashMap};
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use uuid::Uuid;

/// Lines one purchase order may have.
pub const ORDER_LINES_MAX: usize = 500;

/// A line as ordered (or last changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub line: u32,
    pub material: MaterialNumber,
    pub plant: PlantCode,
    pub location: LocationCode,
    /// In the order unit.
    pub quantity: Decimal,
    pub unit: UnitOfMeasure,
    /// Base units per order unit (1 when ordered in the base unit).
    pub factor: Decimal,
    /// Per order unit, in the order's currency.
    pub unit_price: Decimal,
    pub delivery_date: NaiveDate,
}

impl OrderLine {
    /// The ordered quantity in the material's base unit.
    pub fn ordered_base(&self) -> Decimal {
        self.quantity * self.factor
    }

    /// `base` units at the order price, rounded once.
    pub fn value_of(&self, base: Decimal) -> Decimal {
        round_amount(base * self.unit_price / self.factor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    PartiallyReceived,
    Received,
    Invoiced,
    Closed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::PartiallyReceived => "partially_received",
            OrderStatus::Received => "received",
            OrderStatus::Invoiced => "invoiced",
            OrderStatus::Closed => "closed",
        }
    }
}

/// A line and what happened to it; quantities in the base unit, values in the order currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineState {
    pub ordered: OrderLine,
    /// Received net of returns.
    pub received: Decimal,
    /// `ordered.value_of(received)`: credited to GR/IR by receipts.
    pub received_value: Decimal,
    /// Invoiced net of credit memos.
    pub invoiced: Decimal,
    pub invoiced_amount: Decimal,
    /// `ordered.value_of(invoiced)`: debited to GR/IR by invoices.
    pub cleared_value: Decimal,
    pub cancelled: bool,
}

impl LineState {
    /// open: nothing arrived; partially received: less than ordered; received: all of it
    /// (within the tolerance); invoiced: all received is invoiced; closed: cancelled.
    pub fn status(&self) -> OrderStatus {
        if self.cancelled {
            OrderStatus::Closed
        } else if self.received.is_zero() && self.invoiced.is_zero() {
            OrderStatus::Open
        } else if self.received < self.ordered.ordered_base() {
            OrderStatus::PartiallyReceived
        } else if self.invoiced >= self.received {
            OrderStatus::Invoiced
        } else {
            OrderStatus::Received
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurchaseOrderEvent {
    PurchaseOrderCreated {
        company: CompanyCode,
        number: PurchaseOrderNumber,
        vendor: VendorNumber,
        currency: Currency,
        order_date: NaiveDate,
        /// Receipts may exceed the ordered quantity by this percentage.
        over_delivery_percent: Decimal,
        lines: Vec<OrderLine>,
    },
    PurchaseOrderLineChanged {
        company: CompanyCode,
        number: PurchaseOrderNumber,
        line: OrderLine,
        /// The quantity before the change (order unit), so that readers can add up changes.
        previous_quantity: Decimal,
    },
    PurchaseOrderLineCancelled {
        company: CompanyCode,
        number: PurchaseOrderNumber,
        line: u32,
    },
    /// Goods received against a line (negative quantity and value: returned to the vendor).
    PurchaseOrderReceived {
        company: CompanyCode,
        number: PurchaseOrderNumber,
        line: u32,
        movement_id: Uuid,
        posting_date: NaiveDate,
        /// Base unit.
        quantity: Decimal,
        /// At the order price.
        value: Decimal,
    },
    /// A vendor invoice (negative: a credit memo) matched to a line.
    PurchaseOrderInvoiced {
        company: CompanyCode,
        number: PurchaseOrderNumber,
        line: u32,
        invoice: InvoiceNumber,
        /// Base unit.
        quantity: Decimal,
        /// As invoiced.
        amount: Decimal,
        /// At the order price: what the invoice clears on GR/IR.
        cleared_value: Decimal,
    },
    PurchaseOrderClosed {
        company: CompanyCode,
        number: PurchaseOrderNumber,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseOrder {
    pub company: CompanyCode,
    pub number: PurchaseOrderNumber,
    pub vendor: VendorNumber,
    pub currency: Currency,
    pub order_date: NaiveDate,
    pub over_delivery_percent: Decimal,
    pub lines: BTreeMap<u32, LineState>,
    pub closed: bool,
}

/// A line to order; `unit` defaults to the material's base unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderLine {
    pub line: u32,
    pub material: MaterialNumber,
    pub plant: PlantCode,
    pub location: LocationCode,
    pub quantity: Decimal,
    pub unit: Option<UnitOfMeasure>,
    pub unit_price: Decimal,
    pub delivery_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPurchaseOrder {
    pub company: CompanyCode,
    pub number: PurchaseOrderNumber,
    pub vendor: VendorNumber,
    /// Defaults to the vendor's currency.
    pub currency: Option<Currency>,
    pub order_date: NaiveDate,
    pub over_delivery_percent: Decimal,
    pub lines: Vec<NewOrderLine>,
}

/// The master data a purchase order is checked against, as loaded when deciding.
#[derive(Debug, Clone, Default)]
pub struct PurchasingView {
    pub vendor: Option<Vendor>,
    pub materials: HashMap<MaterialNumber, Material>,
    pub plants: HashMap<PlantCode, Plant>,
}

/// A change to an open line: what is given changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineChange {
    pub quantity: Option<Decimal>,
    pub unit_price: Option<Decimal>,
    pub delivery_date: Option<NaiveDate>,
}

impl PurchaseOrder {
    pub fn status(&self) -> OrderStatus {
        if self.closed {
            return OrderStatus::Closed;
        }
        let live: Vec<OrderStatus> = self
            .lines
            .values()
            .map(LineState::status)
            .filter(|s| *s != OrderStatus::Closed)
            .collect();
        if live.is_empty() {
            OrderStatus::Closed
        } else if live.iter().all(|s| *s == OrderStatus::Open) {
            OrderStatus::Open
        } else if live.iter().all(|s| *s == OrderStatus::Invoiced) {
            OrderStatus::Invoiced
        } else if live
            .iter()
            .all(|s| matches!(s, OrderStatus::Received | OrderStatus::Invoiced))
        {
            OrderStatus::Received
        } else {
            OrderStatus::PartiallyReceived
        }
    }

    /// The most `line` may still receive: the ordered quantity plus the tolerance, less what
    /// arrived (base unit).
    pub fn receivable(&self, line: &LineState) -> Decimal {
        let allowed = line.ordered.ordered_base()
            * (Decimal::ONE + self.over_delivery_percent / Decimal::ONE_HUNDRED);
        (allowed - line.received).max(Decimal::ZERO)
    }

    pub fn decide_create(
        existing: Option<&PurchaseOrder>,
        new: NewPurchaseOrder,
        view: &PurchasingView,
    ) -> Result<Vec<PurchaseOrderEvent>, Vec<Violation>> {
        if existing.is_some() {
            return reject(Violation::PurchaseOrderExists { number: new.number });
        }
        let mut violations = Vec::new();
        let currency = match (&view.vendor, new.currency) {
            (None, _) => {
                violations.push(Violation::VendorNotFound {
                    field: "vendor".into(),
                    vendor: new.vendor.clone(),
                });
                None
            }
            (Some(vendor), Some(given)) if given != vendor.currency => {
                violations.push(Violation::CurrencyMismatch {
                    field: "currency".into(),
                    expected: vendor.currency.clone(),
                    given,
                });
                None
            }
            (Some(vendor), _) => Some(vendor.currency.clone()),
        };
        if new.lines.is_empty() || new.lines.len() > ORDER_LINES_MAX {
            violations.push(Violation::LineCount {
                count: new.lines.len(),
                max: ORDER_LINES_MAX,
            });
        }
        let mut lines: Vec<OrderLine> = Vec::with_capacity(new.lines.len());
        for (index, input) in new.lines.into_iter().enumerate() {
            let field = |name: &str| format!("lines[{index}].{name}");
            if lines.iter().any(|l| l.line == input.line) {
                violations.push(Violation::LineTwice {
                    field: field("line"),
                    line: input.line,
                });
            }
            let Some(material) = view.materials.get(&input.material) else {
                violations.push(Violation::MaterialNotFound {
                    field: field("material"),
                    material: input.material,
                });
                continue;
            };
            let Some(plant) = view.plants.get(&input.plant) else {
                violations.push(Violation::PlantNotFound {
                    field: field("plant"),
                    plant: input.plant,
                });
                continue;
            };
            if !plant.locations.contains_key(&input.location) {
                violations.push(Violation::LocationNotFound {
                    field: field("storage_location"),
                    plant: plant.code.clone(),
                    location: input.location.clone(),
                });
            }
            if !material.plants.contains_key(&plant.code) {
                violations.push(Violation::MaterialNotInPlant {
                    field: field("plant"),
                    material: material.number.clone(),
                    plant: plant.code.clone(),
                });
            }
            if let Some(currency) = &currency
                && plant.currency != *currency
            {
                violations.push(Violation::CurrencyMismatch {
                    field: field("plant"),
                    expected: currency.clone(),
                    given: plant.currency.clone(),
                });
            }
            let unit = input.unit.unwrap_or_else(|| material.base_unit.clone());
            let factor = match material.base_quantity(
                input.quantity,
                &unit,
                field("unit"),
                field("quantity"),
            ) {
                // The unit is the material's: its factor (1 for the base unit).
                Ok(_) => material
                    .to_base(Decimal::ONE, &unit)
                    .unwrap_or(Decimal::ONE),
                Err(violation) => {
                    violations.push(violation);
                    continue;
                }
            };
            lines.push(OrderLine {
                line: input.line,
                material: input.material,
                plant: input.plant,
                location: input.location,
                quantity: input.quantity,
                unit,
                factor,
                unit_price: input.unit_price,
                delivery_date: input.delivery_date,
            });
        }
        match (currency, violations.is_empty()) {
            (Some(currency), true) => Ok(vec![PurchaseOrderEvent::PurchaseOrderCreated {
                company: new.company,
                number: new.number,
                vendor: new.vendor,
                currency,
                order_date: new.order_date,
                over_delivery_percent: new.over_delivery_percent,
                lines,
            }]),
            _ => Err(violations),
        }
    }

    fn open_line(&self, line: u32, field: &str) -> Result<&LineState, Vec<Violation>> {
        if self.closed {
            return reject(Violation::PurchaseOrderClosed {
                field: field.into(),
                number: self.number.clone(),
            });
        }
        let Some(state) = self.lines.get(&line) else {
            return reject(Violation::LineNotFound {
                field: field.into(),
                number: self.number.clone(),
                line,
            });
        };
        if state.cancelled {
            return reject(Violation::LineCancelled {
                field: field.into(),
                line,
            });
        }
        Ok(state)
    }

    /// Changes a line nothing was received or invoiced against yet.
    pub fn decide_change_line(
        &self,
        line: u32,
        change: LineChange,
    ) -> Result<Vec<PurchaseOrderEvent>, Vec<Violation>> {
        let state = self.open_line(line, "line")?;
        if state.status() != OrderStatus::Open {
            return reject(Violation::LineNotOpen {
                field: "line".into(),
                line,
                status: state.status(),
            });
        }
        let mut changed = state.ordered.clone();
        changed.quantity = change.quantity.unwrap_or(changed.quantity);
        changed.unit_price = change.unit_price.unwrap_or(changed.unit_price);
        changed.delivery_date = change.delivery_date.unwrap_or(changed.delivery_date);
        if changed == state.ordered {
            return Ok(Vec::new());
        }
        let base = changed.ordered_base();
        if base.normalize().scale() > QUANTITY_DECIMALS {
            return reject(Violation::QuantityPrecision {
                field: "quantity".into(),
                quantity: changed.quantity,
                unit: changed.unit.clone(),
                base,
            });
        }
        Ok(vec![PurchaseOrderEvent::PurchaseOrderLineChanged {
            company: self.company.clone(),
            number: self.number.clone(),
            line: changed,
            previous_quantity: state.ordered.quantity,
        }])
    }

    /// Cancels a line nothing was received or invoiced against yet.
    pub fn decide_cancel_line(&self, line: u32) -> Result<Vec<PurchaseOrderEvent>, Vec<Violation>> {
        let state = self.open_line(line, "line")?;
        if state.status() != OrderStatus::Open {
            return reject(Violation::LineNotOpen {
                field: "line".into(),
                line,
                status: state.status(),
            });
        }
        Ok(vec![PurchaseOrderEvent::PurchaseOrderLineCancelled {
            company: self.company.clone(),
            number: self.number.clone(),
            line,
        }])
    }

    /// Nothing more is expected on the order: no further receipts.
    pub fn decide_close(&self) -> Result<Vec<PurchaseOrderEvent>, Vec<Violation>> {
        if self.closed {
            return reject(Violation::PurchaseOrderClosed {
                field: "purchase_order".into(),
                number: self.number.clone(),
            });
        }
        Ok(vec![PurchaseOrderEvent::PurchaseOrderClosed {
            company: self.company.clone(),
            number: self.number.clone(),
        }])
    }

    /// A receipt (`quantity` > 0) or a return to the vendor (`quantity` < 0) of base units
    /// on `line`, valued at the order price.
    pub fn decide_receive(
        &self,
        line: u32,
        movement_id: Uuid,
        posting_date: NaiveDate,
        quantity: Decimal,
    ) -> Result<Vec<PurchaseOrderEvent>, Vec<Violation>> {
        // Goods may go back after the order was closed; nothing more may arrive.
        let state = if quantity < Decimal::ZERO {
            self.lines.get(&line).ok_or_else(|| {
                vec![Violation::LineNotFound {
                    field: "line".into(),
                    number: self.number.clone(),
                    line,
                }]
            })?
        } else {
            self.open_line(line, "line")?
        };
        if quantity.is_zero() {
            return reject(Violation::QuantityNotPositive {
                field: "quantity".into(),
            });
        }
        if quantity > Decimal::ZERO && quantity > self.receivable(state) {
            return reject(Violation::ReceiptBeyondTolerance {
                field: "quantity".into(),
                ordered: state.ordered.ordered_base(),
                received: state.received,
                requested: quantity,
                tolerance_percent: self.over_delivery_percent,
            });
        }
        if quantity < Decimal::ZERO && -quantity > state.received {
            return reject(Violation::ReturnBeyondReceived {
                field: "quantity".into(),
                received: state.received,
                requested: -quantity,
            });
        }
        let value = state.ordered.value_of(state.received + quantity) - state.received_value;
        Ok(vec![PurchaseOrderEvent::PurchaseOrderReceived {
            company: self.company.clone(),
            number: self.number.clone(),
            line,
            movement_id,
            posting_date,
            quantity,
            value,
        }])
    }

    pub fn apply(
        state: Option<PurchaseOrder>,
        event: &PurchaseOrderEvent,
    ) -> Option<PurchaseOrder> {
        match (state, event) {
            (
                _,
                PurchaseOrderEvent::PurchaseOrderCreated {
                    company,
                    number,
                    vendor,
                    currency,
                    order_date,
                    over_delivery_percent,
                    lines,
                },
            ) => Some(PurchaseOrder {
                company: company.clone(),
                number: number.clone(),
                vendor: vendor.clone(),
                currency: currency.clone(),
                order_date: *order_date,
                over_delivery_percent: *over_delivery_percent,
                lines: lines
                    .iter()
                    .map(|line| {
                        (
                            line.line,
                            LineState {
                                ordered: line.clone(),
                                received: Decimal::ZERO,
                                received_value: Decimal::ZERO,
                                invoiced: Decimal::ZERO,
                                invoiced_amount: Decimal::ZERO,
                                cleared_value: Decimal::ZERO,
                                cancelled: false,
                            },
                        )
                    })
                    .collect(),
                closed: false,
            }),
            (None, _) => None,
            (Some(mut order), event) => {
                match event {
                    PurchaseOrderEvent::PurchaseOrderCreated { .. } => {}
                    PurchaseOrderEvent::PurchaseOrderLineChanged { line, .. } => {
                        if let Some(state) = order.lines.get_mut(&line.line) {
                            state.ordered = line.clone();
                        }
                    }
                    PurchaseOrderEvent::PurchaseOrderLineCancelled { line, .. } => {
                        if let Some(state) = order.lines.get_mut(line) {
                            state.cancelled = true;
                        }
                    }
                    PurchaseOrderEvent::PurchaseOrderReceived {
                        line,
                        quantity,
                        value,
                        ..
                    } => {
                        if let Some(state) = order.lines.get_mut(line) {
                            state.received += quantity;
                            state.received_value += value;
                        }
                    }
                    PurchaseOrderEvent::PurchaseOrderInvoiced {
                        line,
                        quantity,
                        amount,
                        cleared_value,
                        ..
                    } => {
                        if let Some(state) = order.lines.get_mut(line) {
                            state.invoiced += quantity;
                            state.invoiced_amount += amount;
                            state.cleared_value += cleared_value;
                        }
                    }
                    PurchaseOrderEvent::PurchaseOrderClosed { .. } => order.closed = true,
                }
                Some(order)
            }
        }
    }
}
