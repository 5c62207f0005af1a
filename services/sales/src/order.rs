//! Sales documents (`sales.order`): quotations and sales orders. A line is priced when entered
//! (the explained [`Price`] is kept in the event) and, on an order, confirmed by the
//! availability check (its schedule lines); the credit check's figures are kept with the
//! order, which stays blocked for delivery until a holder of the permission releases it.
//!
//! ```text
//!  quotation ──accept──► order ──deliver (partial)──► delivered ──bill──► billed
//!                          │ change / cancel open lines        (line by line)
//!                          └ over the credit limit: blocked ──release──► open
//! ```
//! Pure: the command layer loads customer, materials, prices, availability and exposure and
//! hands the results in.

use crate::atp::ScheduleLine;
use crate::customer::{CustomerNumber, Violation, violation};
use crate::pricing::Price;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tributary_kernel::Aggregate;
use tributary_kernel::code;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use tributary_materials::domain::{MaterialNumber, PaymentTerms, PlantCode};

code!(
    DocumentNumber,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Quotation,
    Order,
}

/// One line as entered, priced and (on an order) confirmed. Quantities on the schedule are in
/// the material's base unit, like the price's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEntry {
    pub line: u32,
    pub material: MaterialNumber,
    pub material_group: Option<String>,
    pub plant: PlantCode,
    /// In `unit`.
    pub quantity: Decimal,
    pub unit: UnitOfMeasure,
    /// Base units per `unit`.
    pub factor: Decimal,
    pub requested_date: NaiveDate,
    /// For the quantity in the base unit.
    pub price: Price,
    /// What the availability check confirmed, by date (none on a quotation).
    pub schedule: Vec<ScheduleLine>,
}

impl LineEntry {
    pub fn base_quantity(&self) -> Decimal {
        self.quantity * self.factor
    }

    pub fn confirmed(&self) -> Decimal {
        self.schedule.iter().map(|s| s.quantity).sum()
    }
}

/// What the credit check saw when it decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditCheck {
    pub limit: Decimal,
    /// Open receivables plus open order value of the customer before this document.
    pub exposure: Decimal,
    /// What this document adds (its gross value, or what a change adds).
    pub order_value: Decimal,
}

impl CreditCheck {
    pub fn exceeded(&self) -> bool {
        self.exposure + self.order_value > self.limit
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SalesDocumentEvent {
    QuotationCreated {
        company: CompanyCode,
        number: DocumentNumber,
        customer: CustomerNumber,
        currency: Currency,
        document_date: NaiveDate,
        valid_to: NaiveDate,
        lines: Vec<LineEntry>,
    },
    SalesOrderCreated {
        company: CompanyCode,
        number: DocumentNumber,
        customer: CustomerNumber,
        currency: Currency,
        document_date: NaiveDate,
        payment_terms: PaymentTerms,
        /// The quotation it was made from.
        quotation: Option<DocumentNumber>,
        lines: Vec<LineEntry>,
        credit: CreditCheck,
    },
    /// The quotation became `order`.
    QuotationAccepted {
        order: DocumentNumber,
    },
    /// A line re-entered: quantity, date, price and confirmation as now.
    LineChanged {
        line: LineEntry,
        credit: Option<CreditCheck>,
    },
    LineCancelled {
        line: u32,
    },
    /// Over the credit limit: blocked for delivery (also after a change).
    CreditBlocked {
        credit: CreditCheck,
    },
    CreditReleased {
        by: String,
    },
    /// Quantities in the base unit; `cost`: what the goods issue took off the stock's value.
    LineDelivered {
        line: u32,
        delivery: String,
        quantity: Decimal,
        cost: Decimal,
    },
    LineBilled {
        line: u32,
        invoice: String,
        quantity: Decimal,
    },
}

impl DomainEvent for SalesDocumentEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub entry: LineEntry,
    pub delivered: Decimal,
    /// The value the deliveries' goods issues took off stock.
    pub delivered_cost: Decimal,
    /// Each delivery's quantity (base unit) and issue cost, in order.
    pub deliveries: Vec<(Decimal, Decimal)>,
    pub billed: Decimal,
    pub cancelled: bool,
}

impl OrderLine {
    /// Confirmed and not yet delivered (base unit).
    pub fn open_to_deliver(&self) -> Decimal {
        if self.cancelled {
            Decimal::ZERO
        } else {
            (self.entry.confirmed() - self.delivered).max(Decimal::ZERO)
        }
    }

    /// The issue cost of `quantity` units delivered after the first `from`: the deliveries
    /// taken in order (first delivered, first billed), a part of one pro rata, cumulatively
    /// rounded, so that billing a line in parts bills exactly what its deliveries cost.
    pub fn delivered_cost_of(&self, from: Decimal, quantity: Decimal) -> Decimal {
        let cumulative = |units: Decimal| {
            let (mut left, mut cost) = (units, Decimal::ZERO);
            for (delivered, value) in &self.deliveries {
                if left <= Decimal::ZERO || delivered.is_zero() {
                    continue;
                }
                let taken = left.min(*delivered);
                cost += *value * taken / *delivered;
                left -= taken;
            }
            cost.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        };
        let mut part = cumulative(from + quantity) - cumulative(from);
        part.rescale(2);
        part
    }

    /// Delivered and not yet billed (base unit).
    pub fn open_to_bill(&self) -> Decimal {
        (self.delivered - self.billed).max(Decimal::ZERO)
    }

    pub fn status(&self) -> &'static str {
        let base = self.entry.base_quantity();
        if self.cancelled {
            "cancelled"
        } else if self.billed >= base {
            "billed"
        } else if self.delivered >= base && self.billed > Decimal::ZERO {
            "partially_billed"
        } else if self.delivered >= base {
            "delivered"
        } else if self.delivered > Decimal::ZERO {
            "partially_delivered"
        } else if self.entry.confirmed() >= base {
            "confirmed"
        } else if self.entry.confirmed() > Decimal::ZERO {
            "partially_confirmed"
        } else {
            "unconfirmed"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditStatus {
    /// Within the limit when checked (or released).
    Clear,
    Blocked,
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesDocument {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub kind: DocumentKind,
    pub customer: CustomerNumber,
    pub currency: Currency,
    pub document_date: NaiveDate,
    /// Quotations: the last day it can be accepted.
    pub valid_to: Option<NaiveDate>,
    pub payment_terms: Option<PaymentTerms>,
    pub quotation: Option<DocumentNumber>,
    /// Quotations: the order it became.
    pub accepted_as: Option<DocumentNumber>,
    pub lines: Vec<OrderLine>,
    pub credit: Option<CreditCheck>,
    pub credit_status: CreditStatus,
    pub released_by: Option<String>,
}

impl SalesDocument {
    pub fn line(&self, number: u32) -> Option<&OrderLine> {
        self.lines.iter().find(|l| l.entry.line == number)
    }

    pub fn status(&self) -> &'static str {
        if self.kind == DocumentKind::Quotation {
            return if self.accepted_as.is_some() {
                "accepted"
            } else {
                "open"
            };
        }
        let live: Vec<&OrderLine> = self.lines.iter().filter(|l| !l.cancelled).collect();
        if live.is_empty() {
            "cancelled"
        } else if self.credit_status == CreditStatus::Blocked {
            "credit_blocked"
        } else if live.iter().all(|l| l.status() == "billed") {
            "completed"
        } else if live.iter().all(|l| l.delivered >= l.entry.base_quantity()) {
            "delivered"
        } else if live.iter().any(|l| l.delivered > Decimal::ZERO) {
            "partially_delivered"
        } else {
            "open"
        }
    }

    /// Gross value of what is not billed yet (the credit exposure of open orders).
    pub fn open_value(&self) -> Decimal {
        if self.kind == DocumentKind::Quotation {
            return Decimal::ZERO;
        }
        self.lines
            .iter()
            .filter(|l| !l.cancelled)
            .map(|l| line_open_value(&l.entry, l.billed))
            .sum()
    }
}

/// The gross value of a line's quantity not billed yet, to cents.
pub fn line_open_value(entry: &LineEntry, billed: Decimal) -> Decimal {
    let base = entry.base_quantity();
    if base.is_zero() || billed >= base {
        return Decimal::ZERO;
    }
    (entry.price.gross_value * (base - billed) / base).round_dp(2)
}

/// One order line's part of a delivery, as the order records it.
#[derive(Debug, Clone)]
pub struct DeliveredLine {
    /// The request's field for it, in errors (`lines[0]`).
    pub field: String,
    pub line: u32,
    /// Base unit.
    pub quantity: Decimal,
    pub cost: Decimal,
}

#[derive(Debug)]
pub enum SalesDocumentCommand {
    CreateQuotation {
        company: CompanyCode,
        number: DocumentNumber,
        customer: CustomerNumber,
        currency: Currency,
        document_date: NaiveDate,
        valid_to: NaiveDate,
        lines: Vec<LineEntry>,
    },
    CreateOrder {
        company: CompanyCode,
        number: DocumentNumber,
        customer: CustomerNumber,
        currency: Currency,
        document_date: NaiveDate,
        payment_terms: PaymentTerms,
        quotation: Option<DocumentNumber>,
        lines: Vec<LineEntry>,
        credit: CreditCheck,
    },
    /// On the quotation, when an order is made from it on `date`.
    Accept {
        order: DocumentNumber,
        date: NaiveDate,
    },
    /// A line re-entered (the command layer re-priced and re-confirmed it).
    ChangeLine {
        line: LineEntry,
        credit: Option<CreditCheck>,
    },
    CancelLine {
        line: u32,
    },
    ReleaseCredit {
        by: String,
    },
    /// Base quantities of delivered order lines billed with `invoice` (field, line, quantity).
    Bill {
        invoice: String,
        lines: Vec<(String, u32, Decimal)>,
    },
    /// Base quantities of order lines leaving with `delivery` (`field` names each in errors).
    Deliver {
        delivery: String,
        lines: Vec<DeliveredLine>,
    },
}

/// Rules of a document's lines as entered.
fn check_lines(lines: &[LineEntry]) -> Vec<Violation> {
    let mut violations = Vec::new();
    if lines.is_empty() {
        violations.push(violation("lines", "required", "a document has lines"));
    }
    for (index, line) in lines.iter().enumerate() {
        if line.line == 0 {
            violations.push(violation(
                format!("lines[{index}].line"),
                "positive",
                "line numbers start at 1",
            ));
        }
        if lines[..index].iter().any(|l| l.line == line.line) {
            violations.push(violation(
                format!("lines[{index}].line"),
                "line_twice",
                format!("line {} is given twice", line.line),
            ));
        }
        if line.quantity <= Decimal::ZERO {
            violations.push(violation(
                format!("lines[{index}].quantity"),
                "positive",
                "must be more than zero",
            ));
        }
    }
    violations
}

impl Aggregate for SalesDocument {
    const TYPE: &'static str = "sales.order";
    type State = Option<SalesDocument>;
    type Event = SalesDocumentEvent;
    type Command = SalesDocumentCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<SalesDocument>,
        command: SalesDocumentCommand,
    ) -> Result<Vec<SalesDocumentEvent>, Vec<Violation>> {
        use SalesDocumentCommand as C;
        use SalesDocumentEvent as E;
        let exists = |number: &DocumentNumber| {
            vec![violation(
                "number",
                "document_exists",
                format!("sales document {number} exists"),
            )]
        };
        match command {
            C::CreateQuotation {
                company,
                number,
                customer,
                currency,
                document_date,
                valid_to,
                lines,
            } => {
                if state.is_some() {
                    return Err(exists(&number));
                }
                let mut violations = check_lines(&lines);
                if valid_to < document_date {
                    violations.push(violation(
                        "valid_to",
                        "after_document_date",
                        "a quotation is valid from its date on",
                    ));
                }
                if !violations.is_empty() {
                    return Err(violations);
                }
                Ok(vec![E::QuotationCreated {
                    company,
                    number,
                    customer,
                    currency,
                    document_date,
                    valid_to,
                    lines,
                }])
            }
            C::CreateOrder {
                company,
                number,
                customer,
                currency,
                document_date,
                payment_terms,
                quotation,
                lines,
                credit,
            } => {
                if state.is_some() {
                    return Err(exists(&number));
                }
                let violations = check_lines(&lines);
                if !violations.is_empty() {
                    return Err(violations);
                }
                let blocked = credit.exceeded();
                let mut events = vec![E::SalesOrderCreated {
                    company,
                    number,
                    customer,
                    currency,
                    document_date,
                    payment_terms,
                    quotation,
                    lines,
                    credit: credit.clone(),
                }];
                if blocked {
                    events.push(E::CreditBlocked { credit });
                }
                Ok(events)
            }
            C::Accept { order, date } => {
                let Some(document) = state else {
                    return Err(vec![violation(
                        "quotation",
                        "quotation_not_found",
                        "no such quotation",
                    )]);
                };
                if document.kind != DocumentKind::Quotation {
                    return Err(vec![violation(
                        "quotation",
                        "not_a_quotation",
                        format!("{} is a sales order, not a quotation", document.number),
                    )]);
                }
                if let Some(order) = &document.accepted_as {
                    return Err(vec![violation(
                        "quotation",
                        "quotation_accepted",
                        format!("the quotation became order {order} already"),
                    )]);
                }
                if document.valid_to.is_some_and(|to| date > to) {
                    return Err(vec![violation(
                        "quotation",
                        "quotation_expired",
                        format!(
                            "the quotation was valid until {}",
                            document.valid_to.unwrap_or(date)
                        ),
                    )]);
                }
                Ok(vec![E::QuotationAccepted { order }])
            }
            C::ChangeLine { line, credit } => {
                let document = open_order(state)?;
                let Some(existing) = document.line(line.line) else {
                    return Err(vec![violation(
                        "line",
                        "line_not_found",
                        format!("order {} has no line {}", document.number, line.line),
                    )]);
                };
                if existing.cancelled {
                    return Err(vec![violation(
                        "line",
                        "line_cancelled",
                        "a cancelled line cannot change",
                    )]);
                }
                if line.quantity <= Decimal::ZERO {
                    return Err(vec![violation(
                        "quantity",
                        "positive",
                        "must be more than zero",
                    )]);
                }
                if line.base_quantity() < existing.delivered {
                    return Err(vec![violation(
                        "quantity",
                        "below_delivered",
                        format!(
                            "{} are delivered already; the quantity cannot go below",
                            existing.delivered
                        ),
                    )]);
                }
                let blocked = credit.as_ref().is_some_and(CreditCheck::exceeded)
                    && document.credit_status != CreditStatus::Blocked;
                let mut events = vec![E::LineChanged {
                    line,
                    credit: credit.clone(),
                }];
                if let (true, Some(credit)) = (blocked, credit) {
                    events.push(E::CreditBlocked { credit });
                }
                Ok(events)
            }
            C::CancelLine { line } => {
                let document = open_order(state)?;
                match document.line(line) {
                    None => Err(vec![violation(
                        "line",
                        "line_not_found",
                        format!("order {} has no line {line}", document.number),
                    )]),
                    Some(l) if l.cancelled => Err(vec![violation(
                        "line",
                        "line_cancelled",
                        "the line is cancelled already",
                    )]),
                    Some(l) if l.delivered > Decimal::ZERO => Err(vec![violation(
                        "line",
                        "line_delivered",
                        "a line with deliveries cannot be cancelled; change its quantity",
                    )]),
                    Some(_) => Ok(vec![E::LineCancelled { line }]),
                }
            }
            C::Deliver { delivery, lines } => {
                let document = open_order(state)?;
                if document.credit_status == CreditStatus::Blocked {
                    return Err(vec![violation(
                        "order",
                        "credit_blocked",
                        format!(
                            "order {} is blocked for credit until released",
                            document.number
                        ),
                    )]);
                }
                let taken: Vec<(&str, u32, Decimal)> = lines
                    .iter()
                    .map(|l| (l.field.as_str(), l.line, l.quantity))
                    .collect();
                take_from_lines(
                    document,
                    &taken,
                    OrderLine::open_to_deliver,
                    ("beyond_confirmed", "confirmed and not yet delivered"),
                    |index, line, quantity| E::LineDelivered {
                        line,
                        delivery: delivery.clone(),
                        quantity,
                        cost: lines[index].cost,
                    },
                )
            }
            C::Bill { invoice, lines } => {
                let document = open_order(state)?;
                let taken: Vec<(&str, u32, Decimal)> = lines
                    .iter()
                    .map(|(field, line, quantity)| (field.as_str(), *line, *quantity))
                    .collect();
                take_from_lines(
                    document,
                    &taken,
                    OrderLine::open_to_bill,
                    ("beyond_delivered", "delivered and not yet billed"),
                    |_, line, quantity| E::LineBilled {
                        line,
                        invoice: invoice.clone(),
                        quantity,
                    },
                )
            }
            C::ReleaseCredit { by } => {
                let document = open_order(state)?;
                if document.credit_status != CreditStatus::Blocked {
                    return Err(vec![violation(
                        "credit",
                        "not_credit_blocked",
                        "the order is not blocked for credit",
                    )]);
                }
                Ok(vec![E::CreditReleased { by }])
            }
        }
    }

    fn apply(state: &mut Option<SalesDocument>, event: &SalesDocumentEvent) {
        use SalesDocumentEvent as E;
        let lines_of = |lines: &[LineEntry]| {
            lines
                .iter()
                .map(|entry| OrderLine {
                    entry: entry.clone(),
                    delivered: Decimal::ZERO,
                    delivered_cost: Decimal::ZERO,
                    deliveries: Vec::new(),
                    billed: Decimal::ZERO,
                    cancelled: false,
                })
                .collect()
        };
        match (state.as_mut(), event) {
            (
                None,
                E::QuotationCreated {
                    company,
                    number,
                    customer,
                    currency,
                    document_date,
                    valid_to,
                    lines,
                },
            ) => {
                *state = Some(SalesDocument {
                    company: company.clone(),
                    number: number.clone(),
                    kind: DocumentKind::Quotation,
                    customer: customer.clone(),
                    currency: currency.clone(),
                    document_date: *document_date,
                    valid_to: Some(*valid_to),
                    payment_terms: None,
                    quotation: None,
                    accepted_as: None,
                    lines: lines_of(lines),
                    credit: None,
                    credit_status: CreditStatus::Clear,
                    released_by: None,
                });
            }
            (
                None,
                E::SalesOrderCreated {
                    company,
                    number,
                    customer,
                    currency,
                    document_date,
                    payment_terms,
                    quotation,
                    lines,
                    credit,
                },
            ) => {
                *state = Some(SalesDocument {
                    company: company.clone(),
                    number: number.clone(),
                    kind: DocumentKind::Order,
                    customer: customer.clone(),
                    currency: currency.clone(),
                    document_date: *document_date,
                    valid_to: None,
                    payment_terms: Some(payment_terms.clone()),
                    quotation: quotation.clone(),
                    accepted_as: None,
                    lines: lines_of(lines),
                    credit: Some(credit.clone()),
                    credit_status: CreditStatus::Clear,
                    released_by: None,
                });
            }
            (Some(document), E::QuotationAccepted { order }) => {
                document.accepted_as = Some(order.clone());
            }
            (Some(document), E::LineChanged { line, credit }) => {
                if let Some(existing) = document
                    .lines
                    .iter_mut()
                    .find(|l| l.entry.line == line.line)
                {
                    existing.entry = line.clone();
                }
                if credit.is_some() {
                    document.credit = credit.clone();
                }
            }
            (Some(document), E::LineCancelled { line }) => {
                if let Some(existing) = document.lines.iter_mut().find(|l| l.entry.line == *line) {
                    existing.cancelled = true;
                }
            }
            (Some(document), E::CreditBlocked { credit }) => {
                document.credit = Some(credit.clone());
                document.credit_status = CreditStatus::Blocked;
            }
            (Some(document), E::CreditReleased { by }) => {
                document.credit_status = CreditStatus::Released;
                document.released_by = Some(by.clone());
            }
            (
                Some(document),
                E::LineDelivered {
                    line,
                    quantity,
                    cost,
                    ..
                },
            ) => {
                if let Some(existing) = document.lines.iter_mut().find(|l| l.entry.line == *line) {
                    existing.delivered += quantity;
                    existing.delivered_cost += cost;
                    existing.deliveries.push((*quantity, *cost));
                }
            }
            (Some(document), E::LineBilled { line, quantity, .. }) => {
                if let Some(existing) = document.lines.iter_mut().find(|l| l.entry.line == *line) {
                    existing.billed += quantity;
                }
            }
            _ => {}
        }
    }
}

/// Takes each `(field, line, quantity)` of `taken` out of what `open` leaves of its order
/// line (two requests on one line together within it): the events `event` makes of them, or
/// every violation (a line unknown or cancelled, a quantity not positive or beyond what is
/// open, `beyond` naming the rule and what is open).
fn take_from_lines(
    document: &SalesDocument,
    taken: &[(&str, u32, Decimal)],
    open: fn(&OrderLine) -> Decimal,
    beyond: (&'static str, &str),
    mut event: impl FnMut(usize, u32, Decimal) -> SalesDocumentEvent,
) -> Result<Vec<SalesDocumentEvent>, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut events = Vec::new();
    for (index, &(field, number, quantity)) in taken.iter().enumerate() {
        let Some(line) = document.line(number) else {
            violations.push(violation(
                format!("{field}.line"),
                "line_not_found",
                format!("order {} has no line {number}", document.number),
            ));
            continue;
        };
        let before: Decimal = taken[..index]
            .iter()
            .filter(|(_, n, _)| *n == number)
            .map(|(_, _, q)| *q)
            .sum();
        let left = open(line) - before;
        if line.cancelled {
            violations.push(violation(
                format!("{field}.line"),
                "line_cancelled",
                format!("line {number} is cancelled"),
            ));
        } else if quantity <= Decimal::ZERO {
            violations.push(violation(
                format!("{field}.quantity"),
                "positive",
                "must be more than zero",
            ));
        } else if quantity > left {
            violations.push(violation(
                format!("{field}.quantity"),
                beyond.0,
                format!(
                    "line {number} has {} {} (in the base unit)",
                    left.max(Decimal::ZERO),
                    beyond.1
                ),
            ));
        } else {
            events.push(event(index, number, quantity));
        }
    }
    if violations.is_empty() {
        Ok(events)
    } else {
        Err(violations)
    }
}

/// The order a change concerns: an existing sales order (not a quotation).
fn open_order(state: &Option<SalesDocument>) -> Result<&SalesDocument, Vec<Violation>> {
    match state {
        Some(document) if document.kind == DocumentKind::Order => Ok(document),
        Some(document) => Err(vec![violation(
            "order",
            "not_an_order",
            format!(
                "{} is a quotation; accept it into an order first",
                document.number
            ),
        )]),
        None => Err(vec![violation(
            "order",
            "order_not_found",
            "no such sales order",
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, n).unwrap()
    }

    fn entry(line: u32, quantity: &str, gross: &str, confirmed: &str) -> LineEntry {
        LineEntry {
            line,
            material: MaterialNumber::parse("BOLT-M8").unwrap(),
            material_group: None,
            plant: PlantCode::parse("P100").unwrap(),
            quantity: d(quantity),
            unit: UnitOfMeasure::parse("PC").unwrap(),
            factor: Decimal::ONE,
            requested_date: day(10),
            price: Price {
                currency: "EUR".into(),
                base_price: d("1"),
                net_price: d("1"),
                net_value: d(gross),
                tax_percent: Decimal::ZERO,
                tax: Decimal::ZERO,
                gross_value: d(gross),
                steps: Vec::new(),
            },
            schedule: vec![ScheduleLine {
                date: day(10),
                quantity: d(confirmed),
            }],
        }
    }

    fn order(limit: &str, exposure: &str, lines: Vec<LineEntry>) -> SalesDocumentCommand {
        let value = lines.iter().map(|l| l.price.gross_value).sum();
        SalesDocumentCommand::CreateOrder {
            company: CompanyCode::parse("MAIN").unwrap(),
            number: DocumentNumber::parse("SO-1").unwrap(),
            customer: CustomerNumber::parse("C-100").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            document_date: day(2),
            payment_terms: PaymentTerms::net(30),
            quotation: None,
            lines,
            credit: CreditCheck {
                limit: d(limit),
                exposure: d(exposure),
                order_value: value,
            },
        }
    }

    fn run(
        state: &mut Option<SalesDocument>,
        command: SalesDocumentCommand,
    ) -> Result<Vec<SalesDocumentEvent>, Vec<String>> {
        let events = SalesDocument::decide(state, command).map_err(|v| {
            v.into_iter()
                .map(|v| format!("{}/{}", v.field, v.rule))
                .collect::<Vec<_>>()
        })?;
        for event in &events {
            SalesDocument::apply(state, event);
        }
        Ok(events)
    }

    #[test]
    fn an_order_over_the_credit_limit_is_blocked_until_released() {
        let mut state = None;
        let events = run(
            &mut state,
            order("1000", "800", vec![entry(10, "300", "300", "300")]),
        )
        .unwrap();
        assert!(matches!(
            events[1],
            SalesDocumentEvent::CreditBlocked { .. }
        ));
        assert_eq!(state.as_ref().unwrap().status(), "credit_blocked");
        run(
            &mut state,
            SalesDocumentCommand::ReleaseCredit { by: "fiona".into() },
        )
        .unwrap();
        let document = state.as_ref().unwrap();
        assert_eq!(
            (document.status(), document.credit_status),
            ("open", CreditStatus::Released)
        );
        assert_eq!(
            run(
                &mut state,
                SalesDocumentCommand::ReleaseCredit { by: "x".into() }
            )
            .unwrap_err(),
            ["credit/not_credit_blocked"]
        );
        // Exactly at the limit is within it.
        let mut within = None;
        run(
            &mut within,
            order("1100", "800", vec![entry(10, "300", "300", "300")]),
        )
        .unwrap();
        assert_eq!(within.unwrap().status(), "open");
    }

    #[test]
    fn billing_in_parts_bills_what_each_delivery_cost() {
        let mut state = None;
        run(
            &mut state,
            order("100000", "0", vec![entry(10, "20", "20", "20")]),
        )
        .unwrap();
        // 10 issued at 10.00 each, later 10 at 12.00 each; billed 10, then 4, then 6.
        for (delivery, cost) in [("80000001", "100.00"), ("80000002", "120.00")] {
            SalesDocument::apply(
                &mut state,
                &SalesDocumentEvent::LineDelivered {
                    line: 10,
                    delivery: delivery.into(),
                    quantity: d("10"),
                    cost: d(cost),
                },
            );
        }
        let line = &state.as_ref().unwrap().lines[0];
        let parts = [
            line.delivered_cost_of(d("0"), d("10")),
            line.delivered_cost_of(d("10"), d("4")),
            line.delivered_cost_of(d("14"), d("6")),
        ];
        assert_eq!(parts, [d("100.00"), d("48.00"), d("72.00")]);
        // A bill across both deliveries; thirds of a cent add up.
        assert_eq!(line.delivered_cost_of(d("5"), d("10")), d("110.00"));
        let thirds: Vec<Decimal> = (0..3)
            .map(|n| line.delivered_cost_of(Decimal::from(n) / d("3"), Decimal::ONE / d("3")))
            .collect();
        assert_eq!(thirds, [d("3.33"), d("3.34"), d("3.33")]);
    }

    #[test]
    fn lines_are_delivered_billed_changed_and_cancelled_by_the_rules() {
        let mut state = None;
        run(
            &mut state,
            order(
                "100000",
                "0",
                vec![entry(10, "100", "100", "100"), entry(20, "50", "50", "20")],
            ),
        )
        .unwrap();
        assert_eq!(
            state.as_ref().unwrap().lines[1].status(),
            "partially_confirmed"
        );
        SalesDocument::apply(
            &mut state,
            &SalesDocumentEvent::LineDelivered {
                line: 10,
                delivery: "80000001".into(),
                quantity: d("60"),
                cost: d("18.00"),
            },
        );
        let document = state.as_ref().unwrap();
        assert_eq!(
            (
                document.status(),
                document.lines[0].open_to_deliver(),
                document.lines[0].open_to_bill()
            ),
            ("partially_delivered", d("40"), d("60"))
        );
        assert_eq!(
            run(&mut state, SalesDocumentCommand::CancelLine { line: 10 }).unwrap_err(),
            ["line/line_delivered"]
        );
        assert_eq!(
            run(
                &mut state,
                SalesDocumentCommand::ChangeLine {
                    line: entry(10, "50", "50", "50"),
                    credit: None
                }
            )
            .unwrap_err(),
            ["quantity/below_delivered"]
        );
        run(&mut state, SalesDocumentCommand::CancelLine { line: 20 }).unwrap();
        assert_eq!(
            run(&mut state, SalesDocumentCommand::CancelLine { line: 20 }).unwrap_err(),
            ["line/line_cancelled"]
        );
        // The open value is line 10's unbilled gross value; a cancelled line adds nothing.
        assert_eq!(state.as_ref().unwrap().open_value(), d("100"));
        SalesDocument::apply(
            &mut state,
            &SalesDocumentEvent::LineBilled {
                line: 10,
                invoice: "90000001".into(),
                quantity: d("60"),
            },
        );
        assert_eq!(state.as_ref().unwrap().open_value(), d("40"));
        assert_eq!(
            run(&mut state, SalesDocumentCommand::CancelLine { line: 30 }).unwrap_err(),
            ["line/line_not_found"]
        );
    }

    #[test]
    fn a_quotation_is_accepted_once_and_only_while_valid() {
        let mut state = None;
        run(
            &mut state,
            SalesDocumentCommand::CreateQuotation {
                company: CompanyCode::parse("MAIN").unwrap(),
                number: DocumentNumber::parse("Q-1").unwrap(),
                customer: CustomerNumber::parse("C-100").unwrap(),
                currency: Currency::parse("EUR").unwrap(),
                document_date: day(1),
                valid_to: day(15),
                lines: vec![entry(10, "5", "5", "0")],
            },
        )
        .unwrap();
        let accept = |date| SalesDocumentCommand::Accept {
            order: DocumentNumber::parse("SO-9").unwrap(),
            date,
        };
        assert_eq!(
            run(&mut state.clone(), accept(day(16))).unwrap_err(),
            ["quotation/quotation_expired"]
        );
        run(&mut state, accept(day(15))).unwrap();
        assert_eq!(state.as_ref().unwrap().status(), "accepted");
        assert_eq!(
            run(&mut state, accept(day(15))).unwrap_err(),
            ["quotation/quotation_accepted"]
        );
        assert_eq!(
            run(&mut state, SalesDocumentCommand::CancelLine { line: 10 }).unwrap_err(),
            ["order/not_an_order"]
        );
    }

    #[test]
    fn every_event_type_has_a_golden_fixture() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events/");
        let mut problems = tributary_kernel::event::check_fixtures::<SalesDocumentEvent>(
            std::path::Path::new(&format!("{dir}sales.order")),
        );
        problems.extend(tributary_kernel::event::check_fixtures::<
            crate::demand::MaterialDemandEvent,
        >(std::path::Path::new(&format!(
            "{dir}sales.material_demand"
        ))));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
