//! Invoices from delivered quantities, credit memos for returns (the goods back in stock at
//! their issue value), customer payments applied to open items.

use super::*;
use crate::billing::*;
use crate::order::*;
use tributary_kernel::master::UnitOfMeasure;
use tributary_kernel::store::StreamWrite;
use tributary_materials::commands::{MovementRequest, post_movement};
use tributary_materials::domain::{LocationCode, MovementKind};

/// An invoice as a command gives it: the order lines and quantities (every line's delivered,
/// not yet billed quantity when none are named).
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub order: DocumentNumber,
    pub posting_date: NaiveDate,
    pub lines: Vec<(u32, Decimal, Option<UnitOfMeasure>)>,
}

pub fn billing_id(company: &CompanyCode, number: &DocumentNumber) -> String {
    format!("{company}/{number}")
}

pub async fn billing_document(
    store: &EventStore,
    company: &CompanyCode,
    number: &DocumentNumber,
) -> Result<Loaded<BillingDocument>, SalesError> {
    Ok(aggregate::load::<BillingDocument>(store, &billing_id(company, number)).await?)
}

async fn new_billing_document(
    store: &EventStore,
    company: &CompanyCode,
    number: &DocumentNumber,
) -> Result<Loaded<BillingDocument>, SalesError> {
    let loaded = billing_document(store, company, number).await?;
    if loaded.exists() {
        return Err(rejected(
            "number",
            "document_exists",
            format!("billing document {number} exists"),
        ));
    }
    Ok(loaded)
}

/// The base quantity of `quantity` in `unit` of an order line (its own unit without).
fn line_base(
    line: &OrderLine,
    quantity: Decimal,
    unit: Option<&UnitOfMeasure>,
    field: &str,
) -> Result<Decimal, Violation> {
    if unit.is_some_and(|u| *u != line.entry.unit) {
        return Err(violation(
            format!("{field}.unit"),
            "unit_not_of_line",
            format!("line {} is in {}", line.entry.line, line.entry.unit),
        ));
    }
    base_quantity(quantity, line.entry.factor)
        .map_err(|(rule, detail)| violation(format!("{field}.quantity"), rule, detail))
}

pub async fn post_invoice(
    store: &EventStore,
    new: NewInvoice,
) -> Result<Decision<BillingDocument>, SalesError> {
    let company = &new.company;
    let loaded = new_billing_document(store, company, &new.number).await?;
    let order_loaded = document(store, company, &new.order).await?;
    let Some(order) = order_loaded
        .state
        .clone()
        .filter(|o| o.kind == DocumentKind::Order)
    else {
        return Err(rejected(
            "order",
            "order_not_found",
            format!("sales order {} does not exist", new.order),
        ));
    };
    let mut violations = Vec::new();
    let mut billed = Vec::new();
    if new.lines.is_empty() {
        for line in order
            .lines
            .iter()
            .filter(|l| l.open_to_bill() > Decimal::ZERO)
        {
            billed.push((
                format!("line {}", line.entry.line),
                line.entry.line,
                line.open_to_bill(),
            ));
        }
    }
    for (index, (number, quantity, unit)) in new.lines.iter().enumerate() {
        let field = format!("lines[{index}]");
        match order.line(*number) {
            None => violations.push(violation(
                format!("{field}.line"),
                "line_not_found",
                format!("order {} has no line {number}", order.number),
            )),
            Some(line) => match line_base(line, *quantity, unit.as_ref(), &field) {
                Ok(base) => billed.push((field, *number, base)),
                Err(v) => violations.push(v),
            },
        }
    }
    if !violations.is_empty() {
        return Err(SalesError::Rejected(violations));
    }
    let order_writes = order_loaded
        .decide(SalesDocumentCommand::Bill {
            invoice: new.number.to_string(),
            lines: billed.clone(),
        })?
        .writes();
    let mut lines: Vec<BillingLine> = Vec::new();
    for (_, number, quantity) in &billed {
        let Some(line) = order.line(*number) else {
            continue;
        };
        // Billed before this document, also by its own earlier lines.
        let before = line.billed
            + lines
                .iter()
                .filter(|l| l.line == *number)
                .map(|l| l.quantity)
                .sum::<Decimal>();
        let price = &line.entry.price;
        let base = line.entry.base_quantity();
        lines.push(BillingLine {
            line: *number,
            material: line.entry.material.clone(),
            material_group: line.entry.material_group.clone(),
            quantity: *quantity,
            net_value: pro_rata(price.net_value, base, before, *quantity),
            tax_percent: price.tax_percent,
            tax: pro_rata(price.tax, base, before, *quantity),
            cost: line.delivered_cost_of(before, *quantity),
        });
    }
    let net_value: Decimal = lines.iter().map(|l| l.net_value).sum();
    let tax: Decimal = lines.iter().map(|l| l.tax).sum();
    let terms = order
        .payment_terms
        .clone()
        .unwrap_or(tributary_materials::domain::PaymentTerms::net(0));
    let days = |n: u32| new.posting_date + chrono::Days::new(u64::from(n));
    let invoice = BillingDocument {
        company: company.clone(),
        number: new.number.clone(),
        kind: BillingKind::Invoice,
        customer: order.customer.clone(),
        currency: order.currency.clone(),
        order: order.number.clone(),
        invoice: None,
        posting_date: new.posting_date,
        due_date: days(terms.net_days),
        discount_date: days(terms.discount_days),
        discount_percent: terms.discount_percent,
        lines,
        net_value,
        tax,
        gross_value: net_value + tax,
        discount_reversed: Decimal::ZERO,
        cleared: Decimal::ZERO,
        credited: Decimal::ZERO,
        discounted: Decimal::ZERO,
        discount_granted: Decimal::ZERO,
        discount_base: Decimal::ZERO,
        credited_quantity: Default::default(),
    };
    let mut decision = decision(
        &loaded,
        BillingCommand::Post(Box::new(invoice)),
        "invoice",
        new.number.to_string(),
    )?;
    decision.writes.extend(order_writes);
    Ok(decision)
}

/// A credit memo for goods returned: invoice lines and quantities (base unit of the line's
/// unit), back into `location` at what they were issued at when one is named.
#[derive(Debug, Clone)]
pub struct NewCreditMemo {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub invoice: DocumentNumber,
    pub posting_date: NaiveDate,
    pub location: Option<LocationCode>,
    pub lines: Vec<(u32, Decimal)>,
}

pub async fn post_credit_memo(
    store: &EventStore,
    new: NewCreditMemo,
) -> Result<Decision<BillingDocument>, SalesError> {
    let company = &new.company;
    let loaded = new_billing_document(store, company, &new.number).await?;
    let invoice_loaded = billing_document(store, company, &new.invoice).await?;
    let Some(invoice) = invoice_loaded
        .state
        .clone()
        .filter(|i| i.kind == BillingKind::Invoice)
    else {
        return Err(rejected(
            "invoice",
            "invoice_not_found",
            format!("invoice {} does not exist", new.invoice),
        ));
    };
    if new.posting_date < invoice.posting_date {
        return Err(rejected(
            "posting_date",
            "before_invoice",
            format!(
                "invoice {} is dated {}: a credit memo for it cannot be earlier",
                invoice.number, invoice.posting_date
            ),
        ));
    }
    let credited_before = &invoice.credited_quantity;
    let mut violations = Vec::new();
    let mut lines: Vec<BillingLine> = Vec::new();
    for (index, (number, quantity)) in new.lines.iter().enumerate() {
        let field = format!("lines[{index}]");
        let Some(billed) = invoice.lines.iter().find(|l| l.line == *number) else {
            violations.push(violation(
                format!("{field}.line"),
                "line_not_in_invoice",
                format!("invoice {} bills no line {number}", invoice.number),
            ));
            continue;
        };
        let before = credited_before.get(number).copied().unwrap_or_default()
            + lines
                .iter()
                .filter(|l| l.line == *number)
                .map(|l| l.quantity)
                .sum::<Decimal>();
        if *quantity <= Decimal::ZERO {
            violations.push(violation(
                format!("{field}.quantity"),
                "positive",
                "must be more than zero",
            ));
            continue;
        }
        if *quantity > billed.quantity - before {
            violations.push(violation(
                format!("{field}.quantity"),
                "beyond_billed",
                format!(
                    "invoice {} billed {} of line {number}, {} of it credited already",
                    invoice.number, billed.quantity, before
                ),
            ));
            continue;
        }
        lines.push(BillingLine {
            line: *number,
            material: billed.material.clone(),
            material_group: billed.material_group.clone(),
            quantity: *quantity,
            net_value: pro_rata(billed.net_value, billed.quantity, before, *quantity),
            tax_percent: billed.tax_percent,
            tax: pro_rata(billed.tax, billed.quantity, before, *quantity),
            cost: pro_rata(billed.cost, billed.quantity, before, *quantity),
        });
    }
    if !violations.is_empty() {
        return Err(SalesError::Rejected(violations));
    }
    let net_value: Decimal = lines.iter().map(|l| l.net_value).sum();
    let tax: Decimal = lines.iter().map(|l| l.tax).sum();
    let gross_value = net_value + tax;
    // Goods of an invoice paid with a cash discount: the customer paid their value less the
    // discount, and that is what is owed back (the discount's share is reversed).
    let last = invoice.lines.iter().all(|billed| {
        let credited = credited_before
            .get(&billed.line)
            .copied()
            .unwrap_or_default()
            + lines
                .iter()
                .filter(|l| l.line == billed.line)
                .map(|l| l.quantity)
                .sum::<Decimal>();
        credited >= billed.quantity
    });
    let discount_reversed = invoice.discount_share(gross_value, last);
    let mut writes = Vec::new();
    // The goods back in stock at what they left at, one receipt per material and plant.
    if let Some(location) = &new.location {
        let order = document(store, company, &invoice.order)
            .await?
            .state
            .ok_or_else(|| rejected("invoice", "order_not_found", "the invoice's order is gone"))?;
        for (index, line) in lines.iter().enumerate() {
            let Some(ordered) = order.line(line.line) else {
                continue;
            };
            let received = post_movement(
                store,
                MovementRequest {
                    company: company.clone(),
                    material: line.material.clone(),
                    plant: ordered.entry.plant.clone(),
                    location: location.clone(),
                    quantity: line.quantity,
                    unit: None,
                    posting_date: new.posting_date,
                    movement_id: uuid::Uuid::now_v7(),
                    kind: MovementKind::CustomerReturn {
                        credit_memo: new.number.to_string(),
                        invoice: invoice.number.to_string(),
                        customer: invoice.customer.to_string(),
                    },
                    value: Some(line.cost),
                },
            )
            .await
            .map_err(|error| from_materials(error, &format!("lines[{index}].")))?;
            if lines[..index].iter().any(|l| l.material == line.material) {
                return Err(rejected(
                    format!("lines[{index}].line"),
                    "material_twice",
                    "return one material per credit memo line",
                ));
            }
            writes.extend(received.writes);
        }
    }
    // The credit memo clears what is open of its invoice; the rest stays a credit of the
    // customer (the memo's own open item) until a payment or a refund uses it.
    let credit = invoice_loaded.decide(BillingCommand::Credit {
        credit_memo: new.number.clone(),
        date: new.posting_date,
        lines: lines
            .iter()
            .map(|l| CreditedLine {
                line: l.line,
                quantity: l.quantity,
            })
            .collect(),
        amount: gross_value - discount_reversed,
        discount_reversed,
    })?;
    let applied = credit
        .events
        .iter()
        .map(|e| match e {
            BillingEvent::CreditMemoApplied { amount, .. } => *amount,
            _ => Decimal::ZERO,
        })
        .sum::<Decimal>();
    writes.extend(credit.writes());
    let memo = BillingDocument {
        company: company.clone(),
        number: new.number.clone(),
        kind: BillingKind::CreditMemo,
        customer: invoice.customer.clone(),
        currency: invoice.currency.clone(),
        order: invoice.order.clone(),
        invoice: Some(invoice.number.clone()),
        posting_date: new.posting_date,
        due_date: new.posting_date,
        discount_date: new.posting_date,
        discount_percent: Decimal::ZERO,
        lines,
        net_value,
        tax,
        gross_value,
        discount_reversed,
        cleared: Decimal::ZERO,
        credited: Decimal::ZERO,
        discounted: Decimal::ZERO,
        discount_granted: Decimal::ZERO,
        discount_base: Decimal::ZERO,
        credited_quantity: Default::default(),
    };
    let decided = loaded.decide(BillingCommand::Post(Box::new(memo)))?;
    let mut memo_events = decided.events.clone();
    if applied > Decimal::ZERO {
        memo_events.push(BillingEvent::ItemCleared {
            by: invoice.number.clone(),
            kind: ClearingKind::CreditMemo,
            date: new.posting_date,
            amount: applied,
            discount: Decimal::ZERO,
        });
    }
    let mut state = None;
    for event in &memo_events {
        BillingDocument::apply(&mut state, event);
    }
    writes.insert(0, loaded.write(&memo_events));
    let outcome = state.ok_or(SalesError::NotFound {
        what: "credit memo",
        id: new.number.to_string(),
    })?;
    Ok(Decision {
        writes,
        reads: vec![],
        outcome,
    })
}

/// A customer payment as a command gives it: invoices to apply it to (with the amount for
/// each, or what settles it), or none: the customer's open invoices by due date.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub customer: CustomerNumber,
    pub date: NaiveDate,
    pub amount: Decimal,
    pub currency: Option<Currency>,
    pub invoices: Vec<(DocumentNumber, Option<Decimal>)>,
}

pub fn payment_id(company: &CompanyCode, number: &DocumentNumber) -> String {
    format!("{company}/{number}")
}

pub async fn payment(
    store: &EventStore,
    company: &CompanyCode,
    number: &DocumentNumber,
) -> Result<Loaded<Payment>, SalesError> {
    Ok(aggregate::load::<Payment>(store, &payment_id(company, number)).await?)
}

/// Applies `amount` of payment `by` on `date` to the invoices named (each with the amount for
/// it, or what settles it), or to the customer's open invoices by due date when none are: each
/// paid in full less the cash discount its terms grant on `date`, or in part (no discount).
/// Answers the items, the invoices' writes and what is left. `date` and `amount` come with
/// the request's fields for them.
async fn settle_invoices(
    store: &EventStore,
    indexes: &crate::demand::SalesIndexes,
    (company, customer): (&CompanyCode, &Customer),
    by: &DocumentNumber,
    (date_field, date): (&str, NaiveDate),
    invoices: &[(DocumentNumber, Option<Decimal>)],
    (amount_field, amount): (&str, Decimal),
) -> Result<(Vec<AppliedItem>, Vec<StreamWrite>, Decimal), SalesError> {
    // The items: those named, or the customer's open invoices by due date.
    let named = !invoices.is_empty();
    let wanted: Vec<(String, DocumentNumber, Option<Decimal>)> = if named {
        invoices
            .iter()
            .enumerate()
            .map(|(i, (number, amount))| (format!("invoices[{i}].number"), number.clone(), *amount))
            .collect()
    } else {
        indexes
            .open_items(company.as_str(), customer.number.as_str())
            .await?
            .into_iter()
            .filter(|item| item.document_type == "invoice" && item.open > Decimal::ZERO)
            .filter_map(|item| DocumentNumber::parse(&item.number).ok())
            .map(|number| ("invoices".to_owned(), number, None))
            .collect()
    };
    let mut violations = Vec::new();
    let mut remaining = amount;
    let mut items = Vec::new();
    let mut writes = Vec::new();
    for (index, (field, number, amount)) in wanted.iter().enumerate() {
        let (field, number, amount) = (field.clone(), number.clone(), *amount);
        if named && wanted[..index].iter().any(|(_, n, _)| *n == number) {
            violations.push(violation(
                field,
                "invoice_twice",
                format!("invoice {number} is named twice: give it one amount"),
            ));
            continue;
        }
        let loaded_invoice = billing_document(store, company, &number).await?;
        let Some(invoice) = loaded_invoice
            .state
            .clone()
            .filter(|i| i.kind == BillingKind::Invoice && i.customer == customer.number)
        else {
            violations.push(violation(
                field,
                "invoice_not_found",
                format!("customer {} has no invoice {number}", customer.number),
            ));
            continue;
        };
        if date < invoice.posting_date {
            violations.push(violation(
                date_field,
                "before_invoice",
                format!(
                    "invoice {number} is dated {}: a payment of it cannot be earlier",
                    invoice.posting_date
                ),
            ));
            continue;
        }
        let open = invoice.open_amount();
        if open <= Decimal::ZERO {
            violations.push(violation(
                field,
                "item_settled",
                format!("invoice {number} is settled"),
            ));
            continue;
        }
        let discount = invoice.discount_on(date);
        let (pay, granted) = match amount {
            Some(amount) if amount + discount == open => (amount, discount),
            Some(amount) => (amount, Decimal::ZERO),
            None if remaining + discount >= open => (open - discount, discount),
            None => (remaining, Decimal::ZERO),
        };
        if pay <= Decimal::ZERO {
            if named {
                violations.push(violation(
                    amount_field,
                    "less_than_applied",
                    format!("nothing of the payment is left for invoice {number}"),
                ));
            }
            continue;
        }
        remaining -= pay;
        match loaded_invoice.decide(BillingCommand::Clear {
            by: by.clone(),
            kind: ClearingKind::Payment,
            date,
            amount: pay,
            discount: granted,
            field,
        }) {
            Ok(decided) => writes.extend(decided.writes()),
            Err(v) => violations.extend(v),
        }
        items.push(AppliedItem {
            invoice: number,
            amount: pay,
            discount: granted,
        });
    }
    if remaining < Decimal::ZERO {
        violations.push(violation(
            amount_field,
            "less_than_applied",
            format!(
                "the invoices named take {} more than the payment",
                -remaining
            ),
        ));
    }
    if !violations.is_empty() {
        return Err(SalesError::Rejected(violations));
    }
    Ok((items, writes, remaining))
}

/// Applies a payment: each item paid in full less the cash discount its terms grant on the
/// payment's date, or in part (no discount); what no item takes stays on account.
pub async fn receive_payment(
    store: &EventStore,
    indexes: &crate::demand::SalesIndexes,
    new: NewPayment,
) -> Result<Decision<Payment>, SalesError> {
    let company = &new.company;
    let customer = existing_customer(store, company, &new.customer, "customer").await?;
    if let Some(currency) = new.currency.as_ref().filter(|c| **c != customer.currency) {
        return Err(rejected(
            "currency",
            "currency_mismatch",
            format!(
                "customer {} pays in {}, not {currency}",
                customer.number, customer.currency
            ),
        ));
    }
    let loaded = payment(store, company, &new.number).await?;
    if loaded.exists() {
        return Err(rejected(
            "number",
            "document_exists",
            format!("payment {} exists", new.number),
        ));
    }
    let (items, writes, remaining) = settle_invoices(
        store,
        indexes,
        (company, &customer),
        &new.number,
        ("payment_date", new.date),
        &new.invoices,
        ("amount", new.amount),
    )
    .await?;
    let payment = Payment {
        company: company.clone(),
        number: new.number.clone(),
        customer: customer.number.clone(),
        currency: customer.currency.clone(),
        date: new.date,
        amount: new.amount,
        items,
        on_account: remaining,
        applied: Decimal::ZERO,
    };
    let mut decision = decision(
        &loaded,
        PaymentCommand::Receive(Box::new(payment)),
        "payment",
        new.number.to_string(),
    )?;
    decision.writes.extend(writes);
    Ok(decision)
}

/// What is on account of a payment applied to invoices later: those named (with an amount
/// each, or what settles it), or the customer's open invoices by due date.
#[derive(Debug, Clone)]
pub struct ApplyOnAccount {
    pub company: CompanyCode,
    pub payment: DocumentNumber,
    pub date: NaiveDate,
    pub invoices: Vec<(DocumentNumber, Option<Decimal>)>,
}

pub async fn apply_on_account(
    store: &EventStore,
    indexes: &crate::demand::SalesIndexes,
    apply: ApplyOnAccount,
) -> Result<Decision<Payment>, SalesError> {
    let company = &apply.company;
    let loaded = payment(store, company, &apply.payment).await?;
    let Some(received) = loaded.state.clone() else {
        return Err(SalesError::NotFound {
            what: "payment",
            id: apply.payment.to_string(),
        });
    };
    let open = received.open_on_account();
    if open <= Decimal::ZERO {
        return Err(rejected(
            "payment",
            "nothing_on_account",
            format!("payment {} has nothing left on account", received.number),
        ));
    }
    if apply.date < received.date {
        return Err(rejected(
            "date",
            "before_payment",
            format!(
                "payment {} is dated {}: it cannot be applied earlier",
                received.number, received.date
            ),
        ));
    }
    let customer = existing_customer(store, company, &received.customer, "payment").await?;
    let (items, writes, _) = settle_invoices(
        store,
        indexes,
        (company, &customer),
        &received.number,
        ("date", apply.date),
        &apply.invoices,
        ("invoices", open),
    )
    .await?;
    if items.is_empty() {
        return Err(rejected(
            "invoices",
            "nothing_to_apply",
            format!("customer {} has no open invoice", customer.number),
        ));
    }
    let mut decision = decision(
        &loaded,
        PaymentCommand::Apply {
            date: apply.date,
            items,
        },
        "payment",
        apply.payment.to_string(),
    )?;
    decision.writes.extend(writes);
    Ok(decision)
}
