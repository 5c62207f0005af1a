//! Finance's reactions to other contexts' events: the automatic GL postings.
//!
//! `finance.materials-postings` follows materials' stock (goods movements, valued when
//! decided) and posts one journal entry per movement event, accounts found by the company's
//! [account determination](crate::determination) for the material's valuation class:
//!
//! ```text
//!  receipt            Dr inventory              Cr GR/IR clearing         (value)
//!  goods issue        Dr consumption (cost ctr) Cr inventory              (value)
//!  scrap              Dr scrap                  Cr inventory              (value)
//!  return to vendor   Dr GR/IR (order value)    Cr inventory (valuation)  ± price difference
//!  count difference   Dr inventory              Cr inventory difference   (surplus; reversed
//!                                                                          for a shortage)
//!  production issue   Dr work in process        Cr inventory              (value)
//!  production receipt Dr inventory              Cr work in process        (standard or actual)
//!  transfer           nothing: quantity moves, value does not
//! ```
//! `finance.sales-postings` posts sales' invoices, credit memos and customer payments
//! ([`SalesPostings`]); a delivery's goods issue (Dr cost of goods sold, Cr inventory) and a
//! return's receipt are materials' movements, posted above.
//!
//! The entry's id derives from the movement event (a repeat stores nothing new); a posting
//! finance refuses (closed period, blocked account, no account determined) waits in suspense.

use crate::commands::{self, CONTEXT, FinanceError};
use crate::determination::{self, AccountDetermination, AccountKey};
use crate::domain::{AccountNumber, CompanyCode, LineInput, PostJournalEntry, Side};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeSet;
use tributary_kernel::Platform;
use tributary_kernel::event::decode;
use tributary_kernel::master::Currency;
use tributary_kernel::reactor::{Cause, Reaction, Reactor, ReactorError};
use tributary_materials::events::{
    Movement, MovementKind, StockEvent, VendorInvoiceEvent, VendorPaymentEvent,
};
use tributary_production::order::OrderEvent;
use tributary_sales::billing::{BillingEvent, BillingKind, PaymentEvent};

/// Posts a journal entry as the reaction to `cause`: stored once, or into suspense with the
/// rules finance found broken.
pub async fn post(
    platform: &Platform,
    cause: &Cause<'_>,
    command: PostJournalEntry,
) -> Result<Reaction, ReactorError> {
    match commands::post_journal_entry(&platform.store, command).await {
        Ok(decision) => Ok(cause.commit(&platform.store, CONTEXT, decision).await?),
        Err(FinanceError::Rejected(violations)) => Ok(Reaction::Rejected {
            reason: violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            problem: json!({"errors": violations.iter().map(|v| json!({
                "field": v.field(), "rule": v.rule(), "detail": v.to_string()
            })).collect::<Vec<_>>()}),
        }),
        Err(FinanceError::Store(error)) => Err(error.into()),
        Err(other) => Err(ReactorError::Failed {
            reactor: cause.reactor,
            reason: other.to_string(),
        }),
    }
}

/// The lines of one posting, accounts determined as they are added.
struct Lines<'a> {
    determination: &'a AccountDetermination,
    /// The valuation class of what moves (empty: the company's defaults).
    valuation_class: &'a str,
    currency: Currency,
    lines: Vec<LineInput>,
    missing: BTreeSet<AccountKey>,
}

impl Lines<'_> {
    /// Adds `amount` on the account determined for `key`: positive debits, negative credits.
    fn add(&mut self, key: AccountKey, amount: Decimal, cost_center: Option<&str>) {
        if amount.is_zero() {
            return;
        }
        let Some(account) = self.determination.account(key, self.valuation_class) else {
            self.missing.insert(key);
            return;
        };
        self.add_to(account.clone(), amount, cost_center);
    }

    fn add_to(&mut self, account: AccountNumber, amount: Decimal, cost_center: Option<&str>) {
        if amount.is_zero() {
            return;
        }
        self.lines.push(LineInput {
            account,
            side: if amount > Decimal::ZERO {
                Side::Debit(amount)
            } else {
                Side::Credit(-amount)
            },
            currency: self.currency.clone(),
            cost_center: cost_center.map(str::to_owned),
            text: None,
        });
    }
}

/// A movement's value (signed: into stock positive) and its counter-postings.
fn movement_amounts(movement: &Movement, amounts: &mut Vec<(Target, Decimal, Option<String>)>) {
    let value = movement.value;
    let mut add = |key, amount: Decimal, cost_center: Option<&String>| {
        amounts.push((Target::Key(key), amount, cost_center.cloned()));
    };
    match &movement.kind {
        MovementKind::Receipt { .. } => {
            add(AccountKey::Inventory, value, None);
            add(AccountKey::GrIrClearing, -value, None);
        }
        MovementKind::Issue { cost_center } => {
            add(AccountKey::Inventory, value, None);
            add(AccountKey::Consumption, -value, Some(cost_center));
        }
        MovementKind::Scrap { .. } => {
            add(AccountKey::Inventory, value, None);
            add(AccountKey::Scrap, -value, None);
        }
        // Out to a customer: Dr cost of goods sold, Cr inventory; back: the reverse.
        MovementKind::DeliveryIssue { .. } | MovementKind::CustomerReturn { .. } => {
            add(AccountKey::Inventory, value, None);
            add(AccountKey::CostOfGoodsSold, -value, None);
        }
        // Components into a production order's WIP; its output out of it. Work in process is
        // the company's one account (not the moving material's class): what goes in with the
        // components comes out with the output and the variance.
        MovementKind::ProductionIssue { .. } | MovementKind::ProductionReceipt { .. } => {
            add(AccountKey::Inventory, value, None);
            amounts.push((Target::Default(AccountKey::WorkInProcess), -value, None));
        }
        MovementKind::ReturnToVendor { order_value, .. } => {
            let order_value = order_value.unwrap_or(-value);
            add(AccountKey::Inventory, value, None);
            add(AccountKey::GrIrClearing, order_value, None);
            add(AccountKey::PriceDifference, -(value + order_value), None);
        }
        MovementKind::CountDifference { .. } => {
            add(AccountKey::Inventory, value, None);
            add(AccountKey::InventoryDifference, -value, None);
        }
        // Transfers move no value; a revaluation is posted with its invoice.
        MovementKind::TransferOut { .. }
        | MovementKind::TransferIn { .. }
        | MovementKind::Revaluation { .. } => {}
    }
}

fn describe(movement: &Movement, material: &str, plant: &str) -> String {
    let what = match &movement.kind {
        MovementKind::Receipt {
            purchase_order: Some(order),
            line: Some(line),
            ..
        } => format!("Goods receipt, PO {order}/{line}"),
        MovementKind::Receipt { .. } => "Goods receipt".to_owned(),
        MovementKind::Issue { cost_center } => format!("Goods issue to {cost_center}"),
        MovementKind::Scrap { reason } => format!("Scrap: {reason}"),
        MovementKind::DeliveryIssue {
            delivery, customer, ..
        } => format!("Delivery {delivery} to {customer}"),
        MovementKind::CustomerReturn {
            credit_memo,
            customer,
            ..
        } => format!("Return from {customer}, credit memo {credit_memo}"),
        MovementKind::ReturnToVendor {
            purchase_order,
            line,
            ..
        } => format!("Return to vendor, PO {purchase_order}/{line}"),
        MovementKind::CountDifference { .. } => "Physical inventory difference".to_owned(),
        MovementKind::ProductionIssue { order } => format!("Issue to production order {order}"),
        MovementKind::ProductionReceipt { order } => {
            format!("Receipt from production order {order}")
        }
        MovementKind::TransferOut { .. } | MovementKind::TransferIn { .. } => "Transfer".to_owned(),
        MovementKind::Revaluation { invoice, .. } => format!("Revaluation by invoice {invoice}"),
    };
    format!("{what}: {material} in {plant}")
}

/// Goods movements, vendor invoices and payments to the ledger.
pub struct MaterialsPostings;

#[async_trait::async_trait]
impl Reactor for MaterialsPostings {
    fn name(&self) -> &'static str {
        "finance.materials-postings"
    }

    fn follows(&self) -> &'static [&'static str] {
        &[
            "materials.stock",
            "materials.vendor_invoice",
            "materials.vendor_payment",
        ]
    }

    async fn react(
        &self,
        platform: &Platform,
        cause: &Cause<'_>,
    ) -> Result<Reaction, ReactorError> {
        let posting = match cause.event.aggregate_type.as_str() {
            "materials.stock" => decode::<StockEvent>(cause.event).map(|e| movement_posting(&e)),
            "materials.vendor_invoice" => {
                decode::<VendorInvoiceEvent>(cause.event).map(|e| invoice_posting(&e))
            }
            "materials.vendor_payment" => {
                decode::<VendorPaymentEvent>(cause.event).map(|e| payment_posting(&e))
            }
            _ => return Ok(Reaction::Ignored),
        };
        let posting = match posting {
            Ok(Some(posting)) => posting,
            Ok(None) => return Ok(Reaction::Ignored),
            Err(error) => return Ok(unreadable(&error)),
        };
        post_determined(platform, cause, posting).await
    }
}

/// An event the reactor cannot read: into suspense, saying so.
fn unreadable(error: &tributary_kernel::EventError) -> Reaction {
    Reaction::Rejected {
        reason: format!("the event cannot be read: {error}"),
        problem: json!({"errors": [{"field": "", "rule": "unreadable_event",
                                    "detail": error.to_string()}]}),
    }
}

/// Posts `posting` with the accounts the company's determination gives its keys; a key
/// without an account (or a named account that is none) puts it into suspense.
async fn post_determined(
    platform: &Platform,
    cause: &Cause<'_>,
    posting: Posting,
) -> Result<Reaction, ReactorError> {
    let determination = match determination::load(&platform.store, &posting.company).await {
        Ok(loaded) => loaded.state,
        Err(FinanceError::Store(error)) => return Err(error.into()),
        Err(other) => {
            return Err(ReactorError::Failed {
                reactor: cause.reactor,
                reason: other.to_string(),
            });
        }
    };
    let mut missing = BTreeSet::new();
    let mut invalid: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for part in &posting.parts {
        let mut part_lines = Lines {
            determination: &determination,
            valuation_class: &part.valuation_class,
            currency: posting.currency.clone(),
            lines: Vec::new(),
            missing: BTreeSet::new(),
        };
        for (target, amount, cost_center) in &part.amounts {
            match target {
                Target::Key(key) => part_lines.add(*key, *amount, cost_center.as_deref()),
                Target::Default(key) => {
                    let class = std::mem::take(&mut part_lines.valuation_class);
                    part_lines.add(*key, *amount, cost_center.as_deref());
                    part_lines.valuation_class = class;
                }
                Target::Account(account) => {
                    part_lines.add_to(account.clone(), *amount, cost_center.as_deref())
                }
                Target::Invalid(named) => invalid.push(named.clone()),
            }
        }
        missing.extend(
            part_lines
                .missing
                .iter()
                .map(|k| (*k, part.valuation_class.clone())),
        );
        lines.extend(part_lines.lines);
    }
    if let Some(named) = invalid.first() {
        return Ok(Reaction::Rejected {
            reason: format!("{named:?} is not an account number"),
            problem: json!({"errors": [{"field": "bank_account", "rule": "account_number",
                                        "detail": format!("{named:?} is not an account number")}]}),
        });
    }
    if !missing.is_empty() {
        let named: Vec<String> = missing
            .iter()
            .map(|(key, class)| match class.as_str() {
                "" => key.as_str().to_owned(),
                class => format!("{} (valuation class {class})", key.as_str()),
            })
            .collect();
        return Ok(Reaction::Rejected {
            reason: format!(
                "no account determined for {} in company {}: \
                 set them with PUT /api/v1/account-determination/materials",
                named.join(", "),
                posting.company
            ),
            problem: json!({"errors": missing.iter().map(|(key, class)| json!({
                "field": format!("defaults.{}", key.as_str()), "rule": "account_not_determined",
                "detail": format!("no {} account for valuation class {class:?}", key.as_str())
            })).collect::<Vec<_>>()}),
        });
    }
    let lines = merged(lines);
    if lines.is_empty() {
        return Ok(Reaction::Ignored);
    }
    let command = PostJournalEntry {
        entry_id: cause.command_id(),
        company: posting.company,
        posting_date: posting.posting_date,
        document_date: Some(posting.document_date),
        reference: Some(posting.reference),
        text: Some(posting.text),
        lines,
    };
    post(platform, cause, command).await
}

/// One line per account, cost centre and currency, netted (an invoice of 500 lines posts a
/// handful of lines, within finance's limit per entry); lines that net to zero disappear.
fn merged(lines: Vec<LineInput>) -> Vec<LineInput> {
    let mut sums: std::collections::BTreeMap<(AccountNumber, Option<String>, Currency), Decimal> =
        std::collections::BTreeMap::new();
    for line in lines {
        let amount = match line.side {
            Side::Debit(amount) => amount,
            Side::Credit(amount) => -amount,
        };
        *sums
            .entry((line.account, line.cost_center, line.currency))
            .or_default() += amount;
    }
    sums.into_iter()
        .filter(|(_, amount)| !amount.is_zero())
        .map(|((account, cost_center, currency), amount)| LineInput {
            account,
            side: if amount > Decimal::ZERO {
                Side::Debit(amount)
            } else {
                Side::Credit(-amount)
            },
            currency,
            cost_center,
            text: None,
        })
        .collect()
}

/// Where an amount goes: the account determined for a key, or one named by the event (which
/// may not be an account number at all).
enum Target {
    Key(AccountKey),
    /// The company's default account for the key, whatever the valuation class.
    Default(AccountKey),
    Account(AccountNumber),
    Invalid(String),
}

/// Amounts (positive debit, negative credit) of one valuation class.
struct Part {
    valuation_class: String,
    amounts: Vec<(Target, Decimal, Option<String>)>,
}

/// A posting an event asks for, before its accounts are determined.
struct Posting {
    company: CompanyCode,
    posting_date: chrono::NaiveDate,
    document_date: chrono::NaiveDate,
    currency: Currency,
    reference: String,
    text: String,
    parts: Vec<Part>,
}

fn movement_posting(event: &StockEvent) -> Option<Posting> {
    let StockEvent::GoodsMovementPosted {
        company,
        material,
        plant,
        valuation_class,
        movements,
    } = event
    else {
        return None;
    };
    let first = movements.first()?;
    let mut amounts = Vec::new();
    for movement in movements {
        movement_amounts(movement, &mut amounts);
    }
    Some(Posting {
        company: company.clone(),
        posting_date: first.posting_date,
        document_date: first.posting_date,
        currency: first.currency.clone(),
        reference: format!("MM {}", first.movement_id),
        text: describe(first, material.as_str(), plant.as_str()),
        parts: vec![Part {
            valuation_class: valuation_class.to_string(),
            amounts,
        }],
    })
}

fn invoice_posting(event: &VendorInvoiceEvent) -> Option<Posting> {
    let VendorInvoiceEvent::VendorInvoicePosted {
        company,
        vendor,
        number,
        kind,
        invoice_date,
        posting_date,
        currency,
        total,
        lines,
        ..
    } = event
    else {
        return None;
    };
    let mut parts: Vec<Part> = lines
        .iter()
        .map(|line| Part {
            valuation_class: line.valuation_class.to_string(),
            amounts: vec![
                (
                    Target::Key(AccountKey::GrIrClearing),
                    line.cleared_value,
                    None,
                ),
                (Target::Key(AccountKey::Inventory), line.stock_share, None),
                (
                    Target::Key(AccountKey::PriceDifference),
                    line.price_difference,
                    None,
                ),
            ],
        })
        .collect();
    parts.push(Part {
        valuation_class: String::new(),
        amounts: vec![(Target::Key(AccountKey::AccountsPayable), -*total, None)],
    });
    let what = match kind {
        tributary_materials::events::InvoiceKind::Invoice => "Vendor invoice",
        tributary_materials::events::InvoiceKind::CreditMemo => "Vendor credit memo",
    };
    Some(Posting {
        company: company.clone(),
        posting_date: *posting_date,
        document_date: *invoice_date,
        currency: currency.clone(),
        reference: format!("MM invoice {vendor}/{number}"),
        text: format!("{what} {number} of {vendor}"),
        parts,
    })
}

fn payment_posting(event: &VendorPaymentEvent) -> Option<Posting> {
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
    let settled: Decimal = items.iter().map(|i| i.amount).sum();
    let discount: Decimal = items.iter().map(|i| i.discount).sum();
    // A named account that is not one (refused at the payment, so only from a changed
    // chart) must not fall back to the default bank: the posting is refused as finance sees it.
    let bank = match bank_account.as_deref() {
        Some(named) => match AccountNumber::parse(named) {
            Ok(account) => Target::Account(account),
            Err(_) => Target::Invalid(named.to_owned()),
        },
        None => Target::Key(AccountKey::Bank),
    };
    Some(Posting {
        company: company.clone(),
        posting_date: *payment_date,
        document_date: *payment_date,
        currency: currency.clone(),
        reference: format!("MM payment {payment_id}"),
        text: format!("Payment to vendor {vendor}"),
        parts: vec![Part {
            valuation_class: String::new(),
            amounts: vec![
                (Target::Key(AccountKey::AccountsPayable), settled, None),
                (bank, -*paid, None),
                (Target::Key(AccountKey::CashDiscount), -discount, None),
            ],
        }],
    })
}

/// Sales' invoices, credit memos and customer payments to the ledger (`finance.sales-postings`;
/// the goods issues and returns they come with are materials' movements, posted above):
///
/// ```text
///  invoice       Dr receivable (gross)          Cr revenue (net), Cr tax payable (tax)
///  credit memo   Dr sales returns (net),         Cr receivable (gross less the discount's
///                Dr tax payable (tax)             share, for goods paid with a cash discount)
///                                                Cr sales discount (that share)
///  payment       Dr bank (received),             Cr receivable (received + discounts)
///                Dr sales discount (granted)
///  on account    Dr sales discount (granted)     Cr receivable (discounts; the amount applied
///   applied                                         was credited when received)
/// ```
pub struct SalesPostings;

fn billing_posting(event: &BillingEvent) -> Option<Posting> {
    let BillingEvent::BillingDocumentPosted {
        company,
        number,
        kind,
        customer,
        currency,
        posting_date,
        net_value,
        tax,
        gross_value,
        discount_reversed,
        ..
    } = event
    else {
        return None;
    };
    let (sign, revenue, what) = match kind {
        BillingKind::Invoice => (Decimal::ONE, AccountKey::Revenue, "Invoice"),
        BillingKind::CreditMemo => (
            Decimal::NEGATIVE_ONE,
            AccountKey::SalesReturns,
            "Credit memo",
        ),
    };
    Some(Posting {
        company: company.clone(),
        posting_date: *posting_date,
        document_date: *posting_date,
        currency: currency.clone(),
        reference: format!("SD {number}"),
        text: format!("{what} {number} to {customer}"),
        parts: vec![Part {
            valuation_class: String::new(),
            amounts: vec![
                (
                    Target::Key(AccountKey::Receivable),
                    sign * (*gross_value - *discount_reversed),
                    None,
                ),
                (Target::Key(revenue), -sign * *net_value, None),
                (Target::Key(AccountKey::TaxPayable), -sign * *tax, None),
                (
                    Target::Key(AccountKey::SalesDiscount),
                    -*discount_reversed,
                    None,
                ),
            ],
        }],
    })
}

/// `id`: the payment's aggregate id (company/number).
fn customer_payment_posting(event: &PaymentEvent, id: &str) -> Option<Posting> {
    let (company, number, customer, currency, date, received, items) = match event {
        PaymentEvent::PaymentReceived {
            company,
            number,
            customer,
            currency,
            date,
            amount,
            items,
            ..
        } => (
            company,
            number.to_string(),
            customer,
            currency,
            date,
            *amount,
            items,
        ),
        // What was on account is in the receivable already: only the discounts move.
        PaymentEvent::OnAccountApplied {
            company,
            customer,
            currency,
            date,
            items,
        } => (
            company,
            id.split_once('/')
                .map_or(id, |(_, number)| number)
                .to_owned(),
            customer,
            currency,
            date,
            Decimal::ZERO,
            items,
        ),
    };
    let discounts: Decimal = items.iter().map(|i| i.discount).sum();
    if received.is_zero() && discounts.is_zero() {
        return None;
    }
    let text = match event {
        PaymentEvent::PaymentReceived { .. } => format!("Payment {number} from {customer}"),
        PaymentEvent::OnAccountApplied { .. } => {
            format!("Payment {number} of {customer} applied: cash discount")
        }
    };
    Some(Posting {
        company: company.clone(),
        posting_date: *date,
        document_date: *date,
        currency: currency.clone(),
        reference: format!("SD {number}"),
        text,
        parts: vec![Part {
            valuation_class: String::new(),
            amounts: vec![
                (Target::Key(AccountKey::Bank), received, None),
                (Target::Key(AccountKey::SalesDiscount), discounts, None),
                (
                    Target::Key(AccountKey::Receivable),
                    -(received + discounts),
                    None,
                ),
            ],
        }],
    })
}

#[async_trait::async_trait]
impl Reactor for SalesPostings {
    fn name(&self) -> &'static str {
        "finance.sales-postings"
    }

    fn follows(&self) -> &'static [&'static str] {
        &["sales.invoice", "sales.payment"]
    }

    async fn react(
        &self,
        platform: &Platform,
        cause: &Cause<'_>,
    ) -> Result<Reaction, ReactorError> {
        let posting = match cause.event.aggregate_type.as_str() {
            "sales.invoice" => decode::<BillingEvent>(cause.event).map(|e| billing_posting(&e)),
            "sales.payment" => decode::<PaymentEvent>(cause.event)
                .map(|e| customer_payment_posting(&e, &cause.event.aggregate_id)),
            _ => return Ok(Reaction::Ignored),
        };
        match posting {
            Ok(Some(posting)) => post_determined(platform, cause, posting).await,
            Ok(None) => Ok(Reaction::Ignored),
            Err(error) => Ok(unreadable(&error)),
        }
    }
}

/// Production orders' own postings (`finance.production-postings`); their component issues and
/// goods receipts are materials' movements, posted above:
///
/// ```text
///  confirmation   Dr work in process             Cr activity allocation (the work centre's
///                                                   cost centre)               (hours × rate)
///  settlement     Dr production variance         Cr work in process           (what is left
///                                                   after the receipts; reversed when negative)
/// ```
pub struct ProductionPostings;

fn production_posting(event: &OrderEvent, id: &str) -> Option<Posting> {
    let (company, number) = id.split_once('/')?;
    let company = CompanyCode::parse(company).ok()?;
    let (posting_date, currency, text, amounts) = match event {
        OrderEvent::OperationConfirmed {
            confirmed,
            cost_center,
            activity_value,
            currency,
            work_center,
            ..
        } => (
            confirmed.posting_date,
            currency,
            format!(
                "Production order {number}: operation {} at {work_center}",
                confirmed.operation
            ),
            vec![
                (
                    Target::Key(AccountKey::WorkInProcess),
                    *activity_value,
                    None,
                ),
                (
                    Target::Key(AccountKey::ActivityAllocation),
                    -*activity_value,
                    Some(cost_center.clone()),
                ),
            ],
        ),
        OrderEvent::OrderSettled {
            posting_date,
            variance,
            currency,
            ..
        } => (
            *posting_date,
            currency,
            format!("Production order {number}: variance settled"),
            vec![
                (Target::Key(AccountKey::ProductionVariance), *variance, None),
                (Target::Key(AccountKey::WorkInProcess), -*variance, None),
            ],
        ),
        _ => return None,
    };
    Some(Posting {
        company,
        posting_date,
        document_date: posting_date,
        currency: currency.clone(),
        reference: format!("PP {number}"),
        text,
        parts: vec![Part {
            valuation_class: String::new(),
            amounts,
        }],
    })
}

#[async_trait::async_trait]
impl Reactor for ProductionPostings {
    fn name(&self) -> &'static str {
        "finance.production-postings"
    }

    fn follows(&self) -> &'static [&'static str] {
        &["production.order"]
    }

    async fn react(
        &self,
        platform: &Platform,
        cause: &Cause<'_>,
    ) -> Result<Reaction, ReactorError> {
        match decode::<OrderEvent>(cause.event) {
            Ok(event) => match production_posting(&event, &cause.event.aggregate_id) {
                Some(posting) => post_determined(platform, cause, posting).await,
                None => Ok(Reaction::Ignored),
            },
            Err(error) => Ok(unreadable(&error)),
        }
    }
}
