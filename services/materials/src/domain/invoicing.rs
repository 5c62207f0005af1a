//! Vendor invoices with the three-way match, credit memos, and vendor payments.
//!
//! ```text
//!  invoice line ──► purchase order line: same vendor and currency; quantity at most what was
//!                   received and not yet invoiced (a credit memo: at most what was invoiced)
//!              ──► expected = order price × quantity (rounded cumulatively, clears GR/IR)
//!              ──► difference = invoiced − expected:
//!                    the part the stock still holds revalues it (moving average: the stock on
//!                    hand; FIFO: what is left of the layers this order line received), the
//!                    rest goes to price differences
//!              ──► beyond the price tolerance (5 % and 100.00 of the line): posted but
//!                  blocked for payment until released
//!  payment ──► open documents of one vendor, in full (cash discount when paid within the
//!              terms of each document) or in part (no discount); credit memos net off
//! ```

use super::*;
use crate::valuation::round_amount;
use std::collections::{BTreeMap, HashMap};
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use uuid::Uuid;

/// Lines one invoice may have; documents one payment may settle.
pub const INVOICE_LINES_MAX: usize = 500;
/// A price variance above this share of the expected value blocks the invoice.
pub const PRICE_TOLERANCE_PERCENT: Decimal = Decimal::from_parts(5, 0, 0, false, 0);
/// A price variance above this amount (per line) blocks the invoice.
pub const PRICE_TOLERANCE_AMOUNT: Decimal = Decimal::from_parts(10000, 0, 0, false, 2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    Invoice,
    CreditMemo,
}

impl InvoiceKind {
    pub fn parse(text: &str) -> Result<InvoiceKind, &'static str> {
        match text {
            "invoice" => Ok(InvoiceKind::Invoice),
            "credit_memo" => Ok(InvoiceKind::CreditMemo),
            _ => Err("must be invoice or credit_memo"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Invoice => "invoice",
            InvoiceKind::CreditMemo => "credit_memo",
        }
    }

    /// +1 for invoices, −1 for credit memos: what the document does to the payable.
    pub fn sign(self) -> Decimal {
        match self {
            InvoiceKind::Invoice => Decimal::ONE,
            InvoiceKind::CreditMemo => Decimal::NEGATIVE_ONE,
        }
    }
}

/// A matched line; every value signed as it moves the accounts (a credit memo negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub purchase_order: PurchaseOrderNumber,
    pub line: u32,
    pub material: MaterialNumber,
    pub plant: PlantCode,
    pub valuation_class: ValuationClass,
    /// Base unit.
    pub quantity: Decimal,
    /// As invoiced.
    pub amount: Decimal,
    /// At the order price: what the line clears on GR/IR.
    pub cleared_value: Decimal,
    /// The part of the price difference the stock on hand takes (inventory).
    pub stock_share: Decimal,
    /// The rest of the price difference (price difference account).
    pub price_difference: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VendorInvoiceEvent {
    VendorInvoicePosted {
        company: CompanyCode,
        vendor: VendorNumber,
        number: InvoiceNumber,
        kind: InvoiceKind,
        invoice_date: NaiveDate,
        posting_date: NaiveDate,
        due_date: NaiveDate,
        currency: Currency,
        /// Signed like the lines: the sum of their amounts.
        total: Decimal,
        payment_terms: PaymentTerms,
        lines: Vec<InvoiceLine>,
        /// Why it is blocked for payment (price variance beyond tolerance).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocked: Option<String>,
    },
    VendorInvoiceReleased {
        company: CompanyCode,
        vendor: VendorNumber,
        number: InvoiceNumber,
    },
    /// A payment settled part or all of the document.
    VendorInvoiceSettled {
        company: CompanyCode,
        vendor: VendorNumber,
        number: InvoiceNumber,
        payment_id: Uuid,
        payment_date: NaiveDate,
        /// Taken off the open amount (signed like the total), discount included.
        amount: Decimal,
        discount: Decimal,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorInvoice {
    pub company: CompanyCode,
    pub vendor: VendorNumber,
    pub number: InvoiceNumber,
    pub kind: InvoiceKind,
    pub invoice_date: NaiveDate,
    pub posting_date: NaiveDate,
    pub due_date: NaiveDate,
    pub currency: Currency,
    pub total: Decimal,
    pub payment_terms: PaymentTerms,
    pub lines: Vec<InvoiceLine>,
    pub blocked: Option<String>,
    pub settled: Decimal,
    pub discount_taken: Decimal,
}

impl VendorInvoice {
    /// Still owed (signed like the total).
    pub fn open(&self) -> Decimal {
        self.total - self.settled
    }

    pub fn status(&self) -> &'static str {
        if self.blocked.is_some() {
            "blocked"
        } else if self.open().is_zero() {
            "paid"
        } else if self.settled.is_zero() {
            "open"
        } else {
            "partially_paid"
        }
    }
}

/// A line to match: quantity in `unit` (the order unit when `None`), amount as invoiced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoiceLine {
    pub purchase_order: PurchaseOrderNumber,
    pub line: u32,
    pub quantity: Decimal,
    pub unit: Option<UnitOfMeasure>,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    pub company: CompanyCode,
    pub vendor: VendorNumber,
    pub number: InvoiceNumber,
    pub kind: InvoiceKind,
    pub invoice_date: NaiveDate,
    pub posting_date: NaiveDate,
    /// Defaults to the vendor's.
    pub currency: Option<Currency>,
    pub lines: Vec<NewInvoiceLine>,
}

/// What an invoice is matched against, as loaded when deciding.
#[derive(Debug, Clone, Default)]
pub struct InvoicingView {
    pub vendor: Option<Vendor>,
    pub orders: HashMap<PurchaseOrderNumber, PurchaseOrder>,
    pub materials: HashMap<MaterialNumber, Material>,
    pub stocks: HashMap<(MaterialNumber, PlantCode), Stock>,
}

/// Per stock (material, plant): the amounts it is revalued by, each with the order line whose
/// FIFO layers take it (none for the moving average).
pub type Revaluations = BTreeMap<(MaterialNumber, PlantCode), Vec<(Option<String>, Decimal)>>;

/// An invoice's decision across aggregates: its own event, each order's events, and the
/// revaluation of each stock (signed amount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDecision {
    pub invoice: VendorInvoiceEvent,
    pub orders: BTreeMap<PurchaseOrderNumber, Vec<PurchaseOrderEvent>>,
    /// Per stock: the amounts it takes, each with the order line whose FIFO layers take it
    /// (none for the moving average).
    pub revaluations: Revaluations,
}

/// Whether a line's price variance stays within the tolerance; the reason when not.
fn price_variance(index: usize, expected: Decimal, difference: Decimal) -> Option<String> {
    let limit = (expected.abs() * PRICE_TOLERANCE_PERCENT / Decimal::ONE_HUNDRED)
        .min(PRICE_TOLERANCE_AMOUNT);
    (difference.abs() > limit).then(|| {
        format!(
            "lines[{index}]: invoiced {} against {expected} at the order price, a variance of {difference} \
             beyond the tolerance ({PRICE_TOLERANCE_PERCENT}% and at most {PRICE_TOLERANCE_AMOUNT})",
            expected + difference
        )
    })
}

impl VendorInvoice {
    /// Matches every line against its order line, received quantity and stock.
    pub fn decide_post(
        existing: Option<&VendorInvoice>,
        new: NewInvoice,
        view: &InvoicingView,
    ) -> Result<InvoiceDecision, Vec<Violation>> {
        if existing.is_some() {
            return reject(Violation::InvoiceExists {
                vendor: new.vendor,
                number: new.number,
            });
        }
        let Some(vendor) = &view.vendor else {
            return reject(Violation::VendorNotFound {
                field: "vendor".into(),
                vendor: new.vendor,
            });
        };
        let mut violations = Vec::new();
        let currency = new.currency.unwrap_or_else(|| vendor.currency.clone());
        if currency != vendor.currency {
            violations.push(Violation::CurrencyMismatch {
                field: "currency".into(),
                expected: vendor.currency.clone(),
                given: currency.clone(),
            });
        }
        if new.lines.is_empty() || new.lines.len() > INVOICE_LINES_MAX {
            violations.push(Violation::LineCount {
                count: new.lines.len(),
                max: INVOICE_LINES_MAX,
            });
        }
        let sign = new.kind.sign();
        let mut orders: BTreeMap<PurchaseOrderNumber, PurchaseOrder> = BTreeMap::new();
        let mut order_events: BTreeMap<PurchaseOrderNumber, Vec<PurchaseOrderEvent>> =
            BTreeMap::new();
        let mut on_hand: HashMap<(MaterialNumber, PlantCode, Option<String>), Decimal> =
            HashMap::new();
        let mut revaluations = Revaluations::new();
        let mut lines = Vec::new();
        let mut blocked = Vec::new();
        for (index, input) in new.lines.iter().enumerate() {
            let field = |name: &str| format!("lines[{index}].{name}");
            let order = match orders.get(&input.purchase_order) {
                Some(order) => order.clone(),
                None => match view.orders.get(&input.purchase_order) {
                    Some(order) => order.clone(),
                    None => {
                        violations.push(Violation::PurchaseOrderNotFound {
                            field: field("purchase_order"),
                            number: input.purchase_order.clone(),
                        });
                        continue;
                    }
                },
            };
            if order.vendor != new.vendor {
                violations.push(Violation::VendorMismatch {
                    field: field("purchase_order"),
                    number: order.number.clone(),
                    ordered_from: order.vendor.clone(),
                });
                continue;
            }
            if order.currency != currency {
                violations.push(Violation::CurrencyMismatch {
                    field: "currency".into(),
                    expected: order.currency.clone(),
                    given: currency.clone(),
                });
                continue;
            }
            let Some(state) = order.lines.get(&input.line) else {
                violations.push(Violation::LineNotFound {
                    field: field("line"),
                    number: order.number.clone(),
                    line: input.line,
                });
                continue;
            };
            let ordered = &state.ordered;
            let Some(material) = view.materials.get(&ordered.material) else {
                violations.push(Violation::MaterialNotFound {
                    field: field("purchase_order"),
                    material: ordered.material.clone(),
                });
                continue;
            };
            let unit = input.unit.clone().unwrap_or_else(|| ordered.unit.clone());
            let quantity = match material.base_quantity(
                input.quantity,
                &unit,
                field("unit"),
                field("quantity"),
            ) {
                Ok(quantity) => quantity,
                Err(violation) => {
                    violations.push(violation);
                    continue;
                }
            };
            let invoiced_after = state.invoiced + sign * quantity;
            match new.kind {
                InvoiceKind::Invoice if invoiced_after > state.received => {
                    violations.push(Violation::InvoiceBeyondReceived {
                        field: field("quantity"),
                        received: state.received,
                        invoiced: state.invoiced,
                        requested: quantity,
                    });
                    continue;
                }
                InvoiceKind::CreditMemo if invoiced_after < Decimal::ZERO => {
                    violations.push(Violation::CreditBeyondInvoiced {
                        field: field("quantity"),
                        invoiced: state.invoiced,
                        requested: quantity,
                    });
                    continue;
                }
                _ => {}
            }
            let cleared = ordered.value_of(invoiced_after) - state.cleared_value;
            let amount = sign * round_amount(input.amount);
            let difference = amount - cleared;
            if new.kind == InvoiceKind::Invoice
                && let Some(reason) = price_variance(index, cleared, difference)
            {
                blocked.push(reason);
            }
            // What of the invoiced goods the stock still holds: the moving average cannot tell
            // receipts apart (the stock on hand), FIFO holds what is left of this line's layers.
            let key = (ordered.material.clone(), ordered.plant.clone());
            let stock = view.stocks.get(&key);
            let source = format!("{}/{}", order.number, input.line);
            let layer_source = stock
                .filter(|s| s.valuation.method == crate::valuation::ValuationMethod::Fifo)
                .map(|_| source.clone());
            let held_key = (key.0.clone(), key.1.clone(), layer_source.clone());
            let held = match on_hand.get(&held_key) {
                Some(quantity) => *quantity,
                None => stock.map_or(Decimal::ZERO, |s| s.valuation.quantity_from(&source)),
            };
            // A credit memo credits goods that went back to the vendor: they left the stock at
            // the cost it carried, and the return posted that cost's difference to the order
            // price as a price difference already. Its difference is a price difference too.
            let covered = match new.kind {
                InvoiceKind::Invoice => held.min(quantity),
                InvoiceKind::CreditMemo => Decimal::ZERO,
            };
            on_hand.insert(held_key, held - covered);
            // What this stock (FIFO: this line's layers) took already in this invoice.
            let taken: Decimal = revaluations.get(&key).map_or(Decimal::ZERO, |r| {
                r.iter()
                    .filter(|(from, _)| layer_source.is_none() || *from == layer_source)
                    .map(|(_, amount)| *amount)
                    .sum()
            });
            let stock_value = stock.map_or(Decimal::ZERO, |s| {
                s.valuation.value_from(layer_source.as_deref()) + taken
            });
            let stock_share = if covered.is_zero() {
                Decimal::ZERO
            } else {
                // The stock never goes below zero value.
                round_amount(difference * covered / quantity).max(-stock_value)
            };
            if !stock_share.is_zero() {
                revaluations
                    .entry(key)
                    .or_default()
                    .push((layer_source, stock_share));
            }
            let event = PurchaseOrderEvent::PurchaseOrderInvoiced {
                company: order.company.clone(),
                number: order.number.clone(),
                line: input.line,
                invoice: new.number.clone(),
                quantity: sign * quantity,
                amount,
                cleared_value: cleared,
            };
            let mut updated = Some(order.clone());
            updated = PurchaseOrder::apply(updated, &event);
            if let Some(updated) = updated {
                orders.insert(order.number.clone(), updated);
            }
            order_events
                .entry(order.number.clone())
                .or_default()
                .push(event);
            lines.push(InvoiceLine {
                purchase_order: order.number.clone(),
                line: input.line,
                material: ordered.material.clone(),
                plant: ordered.plant.clone(),
                valuation_class: material.valuation_class.clone(),
                quantity: sign * quantity,
                amount,
                cleared_value: cleared,
                stock_share,
                price_difference: difference - stock_share,
            });
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        let total = lines.iter().map(|l| l.amount).sum();
        Ok(InvoiceDecision {
            invoice: VendorInvoiceEvent::VendorInvoicePosted {
                company: new.company,
                vendor: new.vendor,
                number: new.number,
                kind: new.kind,
                invoice_date: new.invoice_date,
                posting_date: new.posting_date,
                due_date: vendor.payment_terms.due_date(new.invoice_date),
                currency,
                total,
                payment_terms: vendor.payment_terms.clone(),
                lines,
                blocked: (!blocked.is_empty()).then(|| blocked.join("; ")),
            },
            orders: order_events,
            revaluations,
        })
    }

    pub fn decide_release(&self) -> Result<Vec<VendorInvoiceEvent>, Vec<Violation>> {
        if self.blocked.is_none() {
            return reject(Violation::InvoiceNotBlocked {
                number: self.number.clone(),
            });
        }
        Ok(vec![VendorInvoiceEvent::VendorInvoiceReleased {
            company: self.company.clone(),
            vendor: self.vendor.clone(),
            number: self.number.clone(),
        }])
    }

    pub fn apply(
        state: Option<VendorInvoice>,
        event: &VendorInvoiceEvent,
    ) -> Option<VendorInvoice> {
        match (state, event) {
            (
                _,
                VendorInvoiceEvent::VendorInvoicePosted {
                    company,
                    vendor,
                    number,
                    kind,
                    invoice_date,
                    posting_date,
                    due_date,
                    currency,
                    total,
                    payment_terms,
                    lines,
                    blocked,
                },
            ) => Some(VendorInvoice {
                company: company.clone(),
                vendor: vendor.clone(),
                number: number.clone(),
                kind: *kind,
                invoice_date: *invoice_date,
                posting_date: *posting_date,
                due_date: *due_date,
                currency: currency.clone(),
                total: *total,
                payment_terms: payment_terms.clone(),
                lines: lines.clone(),
                blocked: blocked.clone(),
                settled: Decimal::ZERO,
                discount_taken: Decimal::ZERO,
            }),
            (Some(mut invoice), VendorInvoiceEvent::VendorInvoiceReleased { .. }) => {
                invoice.blocked = None;
                Some(invoice)
            }
            (
                Some(mut invoice),
                VendorInvoiceEvent::VendorInvoiceSettled {
                    amount, discount, ..
                },
            ) => {
                invoice.settled += amount;
                invoice.discount_taken += discount;
                Some(invoice)
            }
            (None, _) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Vendor payments
// ---------------------------------------------------------------------------------------------

/// One document a payment settles; amounts signed like the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentItem {
    pub invoice: InvoiceNumber,
    pub kind: InvoiceKind,
    /// Taken off the document's open amount, discount included.
    pub amount: Decimal,
    pub discount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VendorPaymentEvent {
    VendorPaymentMade {
        company: CompanyCode,
        payment_id: Uuid,
        vendor: VendorNumber,
        payment_date: NaiveDate,
        currency: Currency,
        /// The bank account paid from; finance's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bank_account: Option<String>,
        items: Vec<PaymentItem>,
        /// Paid out: the items' amounts less their discounts.
        paid: Decimal,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorPayment {
    pub company: CompanyCode,
    pub payment_id: Uuid,
    pub vendor: VendorNumber,
    pub payment_date: NaiveDate,
    pub currency: Currency,
    pub bank_account: Option<String>,
    pub items: Vec<PaymentItem>,
    pub paid: Decimal,
}

/// A document to pay: in full when `amount` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayDocument {
    pub invoice: InvoiceNumber,
    pub amount: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub company: CompanyCode,
    pub payment_id: Uuid,
    pub vendor: VendorNumber,
    pub payment_date: NaiveDate,
    pub bank_account: Option<String>,
    pub documents: Vec<PayDocument>,
}

/// A payment's decision: its event, and each document's settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDecision {
    pub payment: VendorPaymentEvent,
    pub settlements: Vec<VendorInvoiceEvent>,
}

impl VendorPayment {
    /// Settles the documents: in full with the cash discount their terms give on the payment
    /// date, or in part without discount; a credit memo nets off in full.
    pub fn decide(
        new: NewPayment,
        vendor: Option<&Vendor>,
        documents: &HashMap<InvoiceNumber, VendorInvoice>,
    ) -> Result<PaymentDecision, Vec<Violation>> {
        let Some(vendor) = vendor else {
            return reject(Violation::VendorNotFound {
                field: "vendor".into(),
                vendor: new.vendor,
            });
        };
        let mut violations = Vec::new();
        if new.documents.is_empty() || new.documents.len() > INVOICE_LINES_MAX {
            violations.push(Violation::LineCount {
                count: new.documents.len(),
                max: INVOICE_LINES_MAX,
            });
        }
        let mut items = Vec::new();
        let mut settlements = Vec::new();
        for (index, document) in new.documents.iter().enumerate() {
            let field = |name: &str| format!("invoices[{index}].{name}");
            if new.documents[..index]
                .iter()
                .any(|d| d.invoice == document.invoice)
            {
                violations.push(Violation::InvoiceTwice {
                    field: field("number"),
                    number: document.invoice.clone(),
                });
                continue;
            }
            let Some(invoice) = documents.get(&document.invoice) else {
                violations.push(Violation::InvoiceNotFound {
                    field: field("number"),
                    vendor: new.vendor.clone(),
                    number: document.invoice.clone(),
                });
                continue;
            };
            if let Some(reason) = &invoice.blocked {
                violations.push(Violation::InvoiceBlocked {
                    field: field("number"),
                    number: invoice.number.clone(),
                    reason: reason.clone(),
                });
                continue;
            }
            if new.payment_date < invoice.invoice_date {
                violations.push(Violation::PaymentBeforeInvoice {
                    field: field("number"),
                    number: invoice.number.clone(),
                    invoice_date: invoice.invoice_date,
                });
                continue;
            }
            let open = invoice.open();
            if open.is_zero() {
                violations.push(Violation::InvoiceSettled {
                    field: field("number"),
                    number: invoice.number.clone(),
                });
                continue;
            }
            let sign = invoice.kind.sign();
            let (amount, discount) = match document.amount {
                Some(_) if invoice.kind == InvoiceKind::CreditMemo => {
                    violations.push(Violation::PartialCredit {
                        field: field("amount"),
                    });
                    continue;
                }
                Some(amount) if amount > open.abs() => {
                    violations.push(Violation::PaymentBeyondOpen {
                        field: field("amount"),
                        open: open.abs(),
                        requested: amount,
                    });
                    continue;
                }
                // An amount given is what is paid: no cash discount, even when it settles all.
                Some(amount) => (sign * amount, Decimal::ZERO),
                None => {
                    let discount = invoice.payment_terms.discount(
                        open.abs(),
                        invoice.invoice_date,
                        new.payment_date,
                    );
                    (open, sign * discount)
                }
            };
            items.push(PaymentItem {
                invoice: invoice.number.clone(),
                kind: invoice.kind,
                amount,
                discount,
            });
            settlements.push(VendorInvoiceEvent::VendorInvoiceSettled {
                company: invoice.company.clone(),
                vendor: invoice.vendor.clone(),
                number: invoice.number.clone(),
                payment_id: new.payment_id,
                payment_date: new.payment_date,
                amount,
                discount,
            });
        }
        let paid: Decimal = items.iter().map(|i| i.amount - i.discount).sum();
        if violations.is_empty() && paid <= Decimal::ZERO {
            violations.push(Violation::PaymentNotPositive { paid });
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(PaymentDecision {
            payment: VendorPaymentEvent::VendorPaymentMade {
                company: new.company,
                payment_id: new.payment_id,
                vendor: new.vendor,
                payment_date: new.payment_date,
                currency: vendor.currency.clone(),
                bank_account: new.bank_account,
                items,
                paid,
            },
            settlements,
        })
    }

    pub fn apply(
        state: Option<VendorPayment>,
        event: &VendorPaymentEvent,
    ) -> Option<VendorPayment> {
        let VendorPaymentEvent::VendorPaymentMade {
            company,
            payment_id,
            vendor,
            payment_date,
            currency,
            bank_account,
            items,
            paid,
        } = event;
        match state {
            Some(existing) => Some(existing),
            None => Some(VendorPayment {
                company: company.clone(),
                payment_id: *payment_id,
                vendor: vendor.clone(),
                payment_date: *payment_date,
                currency: currency.clone(),
                bank_account: bank_account.clone(),
                items: items.clone(),
                paid: *paid,
            }),
        }
    }
}
