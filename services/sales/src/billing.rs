//! Billing documents (`sales.invoice`): customer invoices billed from delivered quantities and
//! credit memos for returns, each an open item of the customer until payments and credit memos
//! clear it; and customer payments (`sales.payment`) applied to open items, with the cash
//! discount of the terms when paid within them, the rest on account.
//!
//! Values of a line are billed pro rata of the order line's explained price, cumulatively
//! rounded, so the parts of a line always add up to its price; the cost is the delivered
//! goods' issue value, pro rata.

use crate::customer::{CustomerNumber, Violation, violation};
use crate::order::DocumentNumber;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::master::{CompanyCode, Currency};
use tributary_materials::domain::MaterialNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingKind {
    Invoice,
    CreditMemo,
}

impl BillingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingKind::Invoice => "invoice",
            BillingKind::CreditMemo => "credit_memo",
        }
    }
}

/// One billed (or credited) order line; values positive whatever the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingLine {
    pub line: u32,
    pub material: MaterialNumber,
    pub material_group: Option<String>,
    /// Base unit.
    pub quantity: Decimal,
    pub net_value: Decimal,
    pub tax_percent: Decimal,
    pub tax: Decimal,
    /// The goods' issue value (of an invoice), or what they come back at (a credit memo).
    pub cost: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingEvent {
    BillingDocumentPosted {
        company: CompanyCode,
        number: DocumentNumber,
        kind: BillingKind,
        customer: CustomerNumber,
        currency: Currency,
        order: DocumentNumber,
        /// A credit memo: the invoice it credits.
        invoice: Option<DocumentNumber>,
        posting_date: NaiveDate,
        /// When an invoice is due, and until when its cash discount holds.
        due_date: NaiveDate,
        discount_date: NaiveDate,
        discount_percent: Decimal,
        lines: Vec<BillingLine>,
        net_value: Decimal,
        tax: Decimal,
        gross_value: Decimal,
        /// A credit memo for goods of an invoice paid with a cash discount: the discount's share
        /// of its gross value, which the customer never paid and is not owed back.
        #[serde(default, skip_serializing_if = "Decimal::is_zero")]
        discount_reversed: Decimal,
    },
    /// A credit memo for returned quantities of this invoice's lines; `amount` of it cleared
    /// what was open of the invoice (the rest is the customer's credit on the memo), and
    /// `discount_reversed` of the cash discount granted on the invoice went back with it.
    CreditMemoApplied {
        credit_memo: DocumentNumber,
        date: NaiveDate,
        lines: Vec<CreditedLine>,
        amount: Decimal,
        #[serde(default, skip_serializing_if = "Decimal::is_zero")]
        discount_reversed: Decimal,
    },
    /// A payment (or, on a credit memo, its invoice) took `amount` (and `discount`, granted)
    /// off the open item.
    ItemCleared {
        by: DocumentNumber,
        kind: ClearingKind,
        date: NaiveDate,
        amount: Decimal,
        discount: Decimal,
    },
}

impl DomainEvent for BillingEvent {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditedLine {
    pub line: u32,
    /// Base unit.
    pub quantity: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearingKind {
    Payment,
    CreditMemo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingDocument {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub kind: BillingKind,
    pub customer: CustomerNumber,
    pub currency: Currency,
    pub order: DocumentNumber,
    pub invoice: Option<DocumentNumber>,
    pub posting_date: NaiveDate,
    pub due_date: NaiveDate,
    pub discount_date: NaiveDate,
    pub discount_percent: Decimal,
    pub lines: Vec<BillingLine>,
    pub net_value: Decimal,
    pub tax: Decimal,
    pub gross_value: Decimal,
    /// A credit memo: the share of its gross value the invoice's cash discount took.
    pub discount_reversed: Decimal,
    /// Paid, credited and discounted so far (a credit memo: what its invoice took of it).
    pub cleared: Decimal,
    /// Of an invoice's `cleared`, what credit memos took.
    pub credited: Decimal,
    /// An invoice: the cash discount granted on it, less what credit memos took back.
    pub discounted: Decimal,
    /// An invoice: the cash discount granted, and the value it was granted on (the gross value
    /// less credit memos then).
    pub discount_granted: Decimal,
    pub discount_base: Decimal,
    /// Credited quantities per order line.
    pub credited_quantity: std::collections::BTreeMap<u32, Decimal>,
}

impl BillingDocument {
    /// What the item is worth to the receivable: the gross value, less (a credit memo) the
    /// share of it the invoice's cash discount took.
    pub fn receivable(&self) -> Decimal {
        self.gross_value - self.discount_reversed
    }

    /// What the customer still owes on it (an invoice) or is owed (a credit memo's own item is
    /// cleared against its invoice when posted).
    pub fn open_amount(&self) -> Decimal {
        self.receivable() - self.cleared
    }

    /// The cash discount a payment on `date` that settles the item gets: the terms' percent of
    /// what is open (the gross value less credit memos and earlier partial payments), when paid
    /// by the discount date; never more than is open.
    pub fn discount_on(&self, date: NaiveDate) -> Decimal {
        let open = self.open_amount();
        if date > self.discount_date || self.discount_percent.is_zero() || open <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        percent_of(open, self.discount_percent)
    }

    /// The share of a credit memo's `gross` value that this invoice's cash discount took: the
    /// discount granted pro rata of the value it was granted on, in cents, up to what is left
    /// of it; all that is left when the memo returns the `last` of the invoice's goods.
    pub fn discount_share(&self, gross: Decimal, last: bool) -> Decimal {
        if self.discounted <= Decimal::ZERO || self.discount_base <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        if last {
            return self.discounted;
        }
        (self.discount_granted * gross / self.discount_base)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            .min(self.discounted)
    }
}

#[derive(Debug)]
pub enum BillingCommand {
    Post(Box<BillingDocument>),
    Clear {
        by: DocumentNumber,
        kind: ClearingKind,
        date: NaiveDate,
        amount: Decimal,
        discount: Decimal,
        /// The request's field, in errors.
        field: String,
    },
    /// On an invoice: a credit memo for `lines`, clearing `amount` of it and taking back
    /// `discount_reversed` of its cash discount.
    Credit {
        credit_memo: DocumentNumber,
        date: NaiveDate,
        lines: Vec<CreditedLine>,
        amount: Decimal,
        discount_reversed: Decimal,
    },
}

impl Aggregate for BillingDocument {
    const TYPE: &'static str = "sales.invoice";
    type State = Option<BillingDocument>;
    type Event = BillingEvent;
    type Command = BillingCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<BillingDocument>,
        command: BillingCommand,
    ) -> Result<Vec<BillingEvent>, Vec<Violation>> {
        match command {
            BillingCommand::Post(document) => {
                if state.is_some() {
                    return Err(vec![violation(
                        "number",
                        "document_exists",
                        format!("billing document {} exists", document.number),
                    )]);
                }
                if document.lines.is_empty() {
                    return Err(vec![violation(
                        "lines",
                        "nothing_to_bill",
                        "nothing is delivered and not billed",
                    )]);
                }
                let d = *document;
                Ok(vec![BillingEvent::BillingDocumentPosted {
                    company: d.company,
                    number: d.number,
                    kind: d.kind,
                    customer: d.customer,
                    currency: d.currency,
                    order: d.order,
                    invoice: d.invoice,
                    posting_date: d.posting_date,
                    due_date: d.due_date,
                    discount_date: d.discount_date,
                    discount_percent: d.discount_percent,
                    lines: d.lines,
                    net_value: d.net_value,
                    tax: d.tax,
                    gross_value: d.gross_value,
                    discount_reversed: d.discount_reversed,
                }])
            }
            BillingCommand::Credit {
                credit_memo,
                date,
                lines,
                amount,
                discount_reversed,
            } => match state {
                Some(document) if document.kind == BillingKind::Invoice => {
                    Ok(vec![BillingEvent::CreditMemoApplied {
                        credit_memo,
                        date,
                        lines,
                        amount: amount.min(document.open_amount().max(Decimal::ZERO)),
                        discount_reversed: discount_reversed.min(document.discounted),
                    }])
                }
                _ => Err(vec![violation(
                    "invoice",
                    "invoice_not_found",
                    "no such invoice",
                )]),
            },
            BillingCommand::Clear {
                by,
                kind,
                date,
                amount,
                discount,
                field,
            } => {
                let Some(document) = state else {
                    return Err(vec![violation(
                        field,
                        "invoice_not_found",
                        "no such invoice",
                    )]);
                };
                if (document.kind == BillingKind::Invoice) != (kind == ClearingKind::Payment) {
                    return Err(vec![violation(
                        field,
                        "not_an_invoice",
                        format!("{} is a credit memo", document.number),
                    )]);
                }
                let open = document.open_amount();
                if open <= Decimal::ZERO {
                    return Err(vec![violation(
                        field,
                        "item_settled",
                        format!("invoice {} is settled", document.number),
                    )]);
                }
                if amount + discount > open || amount < Decimal::ZERO {
                    return Err(vec![violation(
                        field,
                        "beyond_open_amount",
                        format!("invoice {} has {open} open", document.number),
                    )]);
                }
                Ok(vec![BillingEvent::ItemCleared {
                    by,
                    kind,
                    date,
                    amount,
                    discount,
                }])
            }
        }
    }

    fn apply(state: &mut Option<BillingDocument>, event: &BillingEvent) {
        match (state.as_mut(), event) {
            (
                None,
                BillingEvent::BillingDocumentPosted {
                    company,
                    number,
                    kind,
                    customer,
                    currency,
                    order,
                    invoice,
                    posting_date,
                    due_date,
                    discount_date,
                    discount_percent,
                    lines,
                    net_value,
                    tax,
                    gross_value,
                    discount_reversed,
                },
            ) => {
                *state = Some(BillingDocument {
                    company: company.clone(),
                    number: number.clone(),
                    kind: *kind,
                    customer: customer.clone(),
                    currency: currency.clone(),
                    order: order.clone(),
                    invoice: invoice.clone(),
                    posting_date: *posting_date,
                    due_date: *due_date,
                    discount_date: *discount_date,
                    discount_percent: *discount_percent,
                    lines: lines.clone(),
                    net_value: *net_value,
                    tax: *tax,
                    gross_value: *gross_value,
                    discount_reversed: *discount_reversed,
                    cleared: Decimal::ZERO,
                    credited: Decimal::ZERO,
                    discounted: Decimal::ZERO,
                    discount_granted: Decimal::ZERO,
                    discount_base: Decimal::ZERO,
                    credited_quantity: Default::default(),
                });
            }
            (
                Some(document),
                BillingEvent::CreditMemoApplied {
                    lines,
                    amount,
                    discount_reversed,
                    ..
                },
            ) => {
                document.cleared += amount;
                document.credited += amount;
                document.discounted -= discount_reversed;
                for line in lines {
                    *document.credited_quantity.entry(line.line).or_default() += line.quantity;
                }
            }
            (
                Some(document),
                BillingEvent::ItemCleared {
                    amount, discount, ..
                },
            ) => {
                if !discount.is_zero() {
                    // Granted on what the invoice was worth then (a discount settles it: once).
                    document.discount_base = document.gross_value - document.credited;
                    document.discount_granted += discount;
                }
                document.cleared += amount + discount;
                document.discounted += discount;
            }
            _ => {}
        }
    }
}

/// `percent` % of `amount`, in cents.
fn percent_of(amount: Decimal, percent: Decimal) -> Decimal {
    (amount * percent / Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// The part of `total` that `quantity` of `of` is, after `before` was taken: cumulatively
/// rounded to cents, so that the parts of a total always add up to it.
pub fn pro_rata(total: Decimal, of: Decimal, before: Decimal, quantity: Decimal) -> Decimal {
    if of.is_zero() {
        return Decimal::new(0, 2);
    }
    let round = |q: Decimal| {
        (total * q / of)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    };
    let mut part = round(before + quantity) - round(before);
    part.rescale(2);
    part
}

// ----- customer payments ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedItem {
    pub invoice: DocumentNumber,
    pub amount: Decimal,
    pub discount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    PaymentReceived {
        company: CompanyCode,
        number: DocumentNumber,
        customer: CustomerNumber,
        currency: Currency,
        date: NaiveDate,
        amount: Decimal,
        items: Vec<AppliedItem>,
        /// What no open item took: a credit of the customer until applied.
        on_account: Decimal,
    },
    /// What stayed on account applied to open invoices later (with the cash discount of a
    /// settled one within its terms).
    OnAccountApplied {
        company: CompanyCode,
        customer: CustomerNumber,
        currency: Currency,
        date: NaiveDate,
        items: Vec<AppliedItem>,
    },
}

impl DomainEvent for PaymentEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub customer: CustomerNumber,
    pub currency: Currency,
    pub date: NaiveDate,
    pub amount: Decimal,
    pub items: Vec<AppliedItem>,
    pub on_account: Decimal,
    /// Of `on_account`, what was applied to invoices later.
    pub applied: Decimal,
}

impl Payment {
    /// What is still on account.
    pub fn open_on_account(&self) -> Decimal {
        self.on_account - self.applied
    }
}

#[derive(Debug)]
pub enum PaymentCommand {
    Receive(Box<Payment>),
    /// Applies `items` of what is on account (their amounts, not the discounts).
    Apply {
        date: NaiveDate,
        items: Vec<AppliedItem>,
    },
}

impl Aggregate for Payment {
    const TYPE: &'static str = "sales.payment";
    type State = Option<Payment>;
    type Event = PaymentEvent;
    type Command = PaymentCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<Payment>,
        command: PaymentCommand,
    ) -> Result<Vec<PaymentEvent>, Vec<Violation>> {
        match command {
            PaymentCommand::Receive(payment) => {
                if state.is_some() {
                    return Err(vec![violation(
                        "number",
                        "document_exists",
                        format!("payment {} exists", payment.number),
                    )]);
                }
                let payment = *payment;
                Ok(vec![PaymentEvent::PaymentReceived {
                    company: payment.company,
                    number: payment.number,
                    customer: payment.customer,
                    currency: payment.currency,
                    date: payment.date,
                    amount: payment.amount,
                    items: payment.items,
                    on_account: payment.on_account,
                }])
            }
            PaymentCommand::Apply { date, items } => {
                let Some(payment) = state else {
                    return Err(vec![violation(
                        "number",
                        "payment_not_found",
                        "no such payment",
                    )]);
                };
                let applied: Decimal = items.iter().map(|i| i.amount).sum();
                let open = payment.open_on_account();
                if open <= Decimal::ZERO {
                    return Err(vec![violation(
                        "number",
                        "nothing_on_account",
                        format!("payment {} has nothing left on account", payment.number),
                    )]);
                }
                if applied > open || applied <= Decimal::ZERO || items.is_empty() {
                    return Err(vec![violation(
                        "invoices",
                        "beyond_on_account",
                        format!("payment {} has {open} on account", payment.number),
                    )]);
                }
                Ok(vec![PaymentEvent::OnAccountApplied {
                    company: payment.company.clone(),
                    customer: payment.customer.clone(),
                    currency: payment.currency.clone(),
                    date,
                    items,
                }])
            }
        }
    }

    fn apply(state: &mut Option<Payment>, event: &PaymentEvent) {
        match event {
            PaymentEvent::PaymentReceived {
                company,
                number,
                customer,
                currency,
                date,
                amount,
                items,
                on_account,
            } => {
                *state = Some(Payment {
                    company: company.clone(),
                    number: number.clone(),
                    customer: customer.clone(),
                    currency: currency.clone(),
                    date: *date,
                    amount: *amount,
                    items: items.clone(),
                    on_account: *on_account,
                    applied: Decimal::ZERO,
                });
            }
            PaymentEvent::OnAccountApplied { items, .. } => {
                if let Some(payment) = state.as_mut() {
                    payment.applied += items.iter().map(|i| i.amount).sum::<Decimal>();
                    payment.items.extend(items.iter().cloned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn parts_of_a_line_add_up_to_its_value() {
        // 100.00 for 3 units billed one at a time: 33.33, 33.34, 33.33.
        let parts: Vec<Decimal> = (0..3)
            .map(|n| pro_rata(d("100.00"), d("3"), Decimal::from(n), Decimal::ONE))
            .collect();
        assert_eq!(parts, [d("33.33"), d("33.34"), d("33.33")]);
        assert_eq!(parts.iter().sum::<Decimal>(), d("100.00"));
    }

    fn invoice(gross: &str) -> Option<BillingDocument> {
        let date = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        let mut state = None;
        BillingDocument::apply(
            &mut state,
            &BillingEvent::BillingDocumentPosted {
                company: CompanyCode::parse("MAIN").unwrap(),
                number: DocumentNumber::parse("90000001").unwrap(),
                kind: BillingKind::Invoice,
                customer: CustomerNumber::parse("C-1").unwrap(),
                currency: Currency::parse("EUR").unwrap(),
                order: DocumentNumber::parse("SO-1").unwrap(),
                invoice: None,
                posting_date: date,
                due_date: date + chrono::Days::new(30),
                discount_date: date + chrono::Days::new(10),
                discount_percent: d("2"),
                lines: Vec::new(),
                net_value: d(gross),
                tax: d("0.00"),
                gross_value: d(gross),
                discount_reversed: Decimal::ZERO,
            },
        );
        state
    }

    fn clear(state: &mut Option<BillingDocument>, amount: &str, discount: &str) {
        let command = BillingCommand::Clear {
            by: DocumentNumber::parse("PAY-1").unwrap(),
            kind: ClearingKind::Payment,
            date: NaiveDate::from_ymd_opt(2026, 5, 6).unwrap(),
            amount: d(amount),
            discount: d(discount),
            field: "invoices".into(),
        };
        for event in BillingDocument::decide(state, command).unwrap() {
            BillingDocument::apply(state, &event);
        }
    }

    #[test]
    fn the_cash_discount_is_on_what_is_open_and_goes_back_with_returned_goods() {
        let in_terms = NaiveDate::from_ymd_opt(2026, 5, 8).unwrap();
        let mut state = invoice("1000.00");
        assert_eq!(state.as_ref().unwrap().discount_on(in_terms), d("20.00"));
        // 990 paid in part: the discount is on the 10 left, never more than is open.
        clear(&mut state, "990.00", "0");
        let document = state.as_ref().unwrap();
        assert_eq!(document.discount_on(in_terms), d("0.20"));
        assert_eq!(
            document.discount_on(NaiveDate::from_ymd_opt(2026, 5, 15).unwrap()),
            Decimal::ZERO
        );
        // Paid in full with 20 discount, then goods of 300 returned: 6 of the discount is
        // theirs, 294 owed back; no more than was granted.
        let mut paid = invoice("1000.00");
        clear(&mut paid, "980.00", "20.00");
        let document = paid.as_ref().unwrap();
        assert_eq!(
            (
                document.discount_share(d("300.00"), false),
                document.discount_share(d("0.20"), false),
                document.discount_share(d("999.60"), true)
            ),
            (d("6.00"), d("0.00"), d("20.00"))
        );
        // Returned in three memos: together exactly the discount granted.
        let mut returned = paid.clone();
        let mut shares = Vec::new();
        for (gross, last) in [("0.20", false), ("0.20", false), ("999.60", true)] {
            let share = returned.as_ref().unwrap().discount_share(d(gross), last);
            shares.push(share);
            let command = BillingCommand::Credit {
                credit_memo: DocumentNumber::parse("91000001").unwrap(),
                date: NaiveDate::from_ymd_opt(2026, 5, 9).unwrap(),
                lines: Vec::new(),
                amount: d(gross) - share,
                discount_reversed: share,
            };
            for event in BillingDocument::decide(&returned, command).unwrap() {
                BillingDocument::apply(&mut returned, &event);
            }
        }
        assert_eq!(shares.iter().sum::<Decimal>(), d("20.00"), "{shares:?}");
        assert_eq!(returned.unwrap().discounted, Decimal::ZERO);
        assert_eq!(
            state.as_ref().unwrap().discount_share(d("300.00"), false),
            Decimal::ZERO,
            "no discount granted, none to reverse"
        );
    }

    #[test]
    fn every_event_type_has_a_golden_fixture() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events/");
        let mut problems = tributary_kernel::event::check_fixtures::<BillingEvent>(
            std::path::Path::new(&format!("{dir}sales.invoice")),
        );
        problems.extend(tributary_kernel::event::check_fixtures::<PaymentEvent>(
            std::path::Path::new(&format!("{dir}sales.payment")),
        ));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
