//! Sales' lake: order lines as entered, delivered and billed (`sales_order_line_changes`,
//! summed by the view `sales_order_lines` and `order_backlog`), delivery lines with their cost,
//! billing document lines signed by kind (revenue, margin: `sales_revenue`), the receivables'
//! movements per document (`ar_document_movements`: open items, aging, reconciliation with the
//! ledger) and customer payments (what stays on account).

use crate::billing::{BillingDocument, BillingEvent, BillingKind, Payment, PaymentEvent};
use crate::delivery::{Delivery, DeliveryEvent};
use crate::order::{SalesDocument, SalesDocumentEvent};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::sync::Arc;
use tributary_kernel::event::decode;
use tributary_kernel::lake::{
    Cell, Column, ColumnType, EventRelation, LakeTable, PipelineSql, Relation, ViewSql,
};
use tributary_kernel::{Aggregate, EventEnvelope, EventError};

/// `company/number` of an aggregate id: the company.
fn company_of(event: &EventEnvelope) -> String {
    event
        .aggregate_id
        .split_once('/')
        .map_or("", |(company, _)| company)
        .to_owned()
}

/// `company/number` of an aggregate id: the number.
fn number_of(event: &EventEnvelope) -> String {
    event
        .aggregate_id
        .split_once('/')
        .map_or("", |(_, number)| number)
        .to_owned()
}

// ----- order lines ----------------------------------------------------------------------------

/// What one order event did to one line: entered as now (absolute), cancelled, delivered or
/// billed (quantities added).
pub struct OrderLineRow {
    customer: Option<String>,
    line: u32,
    entry: &'static str,
    material: Option<String>,
    material_group: Option<String>,
    plant: Option<String>,
    document_date: Option<NaiveDate>,
    requested_date: Option<NaiveDate>,
    currency: Option<String>,
    quantity: Decimal,
    net_value: Decimal,
    gross_value: Decimal,
}

impl OrderLineRow {
    fn change(line: u32, entry: &'static str, quantity: Decimal) -> OrderLineRow {
        OrderLineRow {
            customer: None,
            line,
            entry,
            material: None,
            material_group: None,
            plant: None,
            document_date: None,
            requested_date: None,
            currency: None,
            quantity,
            net_value: Decimal::ZERO,
            gross_value: Decimal::ZERO,
        }
    }
}

fn order_line_rows(event: &EventEnvelope) -> Result<Vec<OrderLineRow>, EventError> {
    let entered = |entry: &crate::order::LineEntry,
                   customer: Option<String>,
                   document_date: Option<NaiveDate>,
                   currency: Option<String>| OrderLineRow {
        customer,
        line: entry.line,
        entry: "entered",
        material: Some(entry.material.to_string()),
        material_group: entry.material_group.clone(),
        plant: Some(entry.plant.to_string()),
        document_date,
        requested_date: Some(entry.requested_date),
        currency,
        quantity: entry.base_quantity(),
        net_value: entry.price.net_value,
        gross_value: entry.price.gross_value,
    };
    Ok(match decode::<SalesDocumentEvent>(event)? {
        SalesDocumentEvent::SalesOrderCreated {
            customer,
            currency,
            document_date,
            lines,
            ..
        } => lines
            .iter()
            .map(|l| {
                entered(
                    l,
                    Some(customer.to_string()),
                    Some(document_date),
                    Some(currency.to_string()),
                )
            })
            .collect(),
        SalesDocumentEvent::LineChanged { line, .. } => vec![entered(&line, None, None, None)],
        SalesDocumentEvent::LineCancelled { line } => {
            vec![OrderLineRow::change(line, "cancelled", Decimal::ZERO)]
        }
        SalesDocumentEvent::LineDelivered { line, quantity, .. } => {
            vec![OrderLineRow::change(line, "delivered", quantity)]
        }
        SalesDocumentEvent::LineBilled { line, quantity, .. } => {
            vec![OrderLineRow::change(line, "billed", quantity)]
        }
        // Quotations are no demand; credit states are the order's, not its lines'.
        SalesDocumentEvent::QuotationCreated { .. }
        | SalesDocumentEvent::QuotationAccepted { .. }
        | SalesDocumentEvent::CreditBlocked { .. }
        | SalesDocumentEvent::CreditReleased { .. } => Vec::new(),
    })
}

pub fn order_lines_relation() -> EventRelation<OrderLineRow> {
    use ColumnType::*;
    EventRelation {
        name: "sales_order_lines_entered",
        aggregate_type: <SalesDocument as Aggregate>::TYPE,
        rows: order_line_rows,
        columns: vec![
            Column::new("company", Text, false, |_, e| Cell::owned(company_of(e))),
            Column::new("sales_order", Text, false, |_, e| Cell::owned(number_of(e))),
            Column::new("customer", Text, true, |r, _| {
                Cell::optional_text(r.customer.as_deref())
            }),
            Column::new("line", Int32, false, |r, _| {
                Cell::Int32(i32::try_from(r.line).unwrap_or(i32::MAX))
            }),
            Column::new("entry", Text, false, |r, _| Cell::text(r.entry)),
            Column::new("material", Text, true, |r, _| {
                Cell::optional_text(r.material.as_deref())
            }),
            Column::new("material_group", Text, true, |r, _| {
                Cell::optional_text(r.material_group.as_deref())
            }),
            Column::new("plant", Text, true, |r, _| {
                Cell::optional_text(r.plant.as_deref())
            }),
            Column::new("document_date", Date, true, |r, _| {
                r.document_date.map_or(Cell::Null, Cell::Date)
            }),
            Column::new("requested_date", Date, true, |r, _| {
                r.requested_date.map_or(Cell::Null, Cell::Date)
            }),
            Column::new("currency", Text, true, |r, _| {
                Cell::optional_text(r.currency.as_deref())
            }),
            Column::new("quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.quantity)
            }),
            Column::new("net_value", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.net_value)
            }),
            Column::new("gross_value", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.gross_value)
            }),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
            Column::new("recorded_at", Timestamp, false, |_, e| {
                Cell::Timestamp(e.time)
            }),
        ],
    }
}

// ----- deliveries -----------------------------------------------------------------------------

pub struct DeliveryRow {
    order: String,
    customer: String,
    posting_date: NaiveDate,
    line: crate::delivery::DeliveryLine,
}

fn delivery_rows(event: &EventEnvelope) -> Result<Vec<DeliveryRow>, EventError> {
    let DeliveryEvent::DeliveryPosted {
        order,
        customer,
        posting_date,
        lines,
        ..
    } = decode::<DeliveryEvent>(event)?;
    Ok(lines
        .into_iter()
        .map(|line| DeliveryRow {
            order: order.to_string(),
            customer: customer.to_string(),
            posting_date,
            line,
        })
        .collect())
}

pub fn deliveries_relation() -> EventRelation<DeliveryRow> {
    use ColumnType::*;
    EventRelation {
        name: "sales_delivery_lines",
        aggregate_type: <Delivery as Aggregate>::TYPE,
        rows: delivery_rows,
        columns: vec![
            Column::new("company", Text, false, |_, e| Cell::owned(company_of(e))),
            Column::new("delivery", Text, false, |_, e| Cell::owned(number_of(e))),
            Column::new("sales_order", Text, false, |r, _| Cell::text(&r.order)),
            Column::new("customer", Text, false, |r, _| Cell::text(&r.customer)),
            Column::new("line", Int32, false, |r, _| {
                Cell::Int32(i32::try_from(r.line.line).unwrap_or(i32::MAX))
            }),
            Column::new("material", Text, false, |r, _| {
                Cell::text(r.line.material.as_str())
            }),
            Column::new("plant", Text, false, |r, _| {
                Cell::text(r.line.plant.as_str())
            }),
            Column::new("location", Text, false, |r, _| {
                Cell::text(r.line.location.as_str())
            }),
            Column::new("posting_date", Date, false, |r, _| {
                Cell::Date(r.posting_date)
            }),
            Column::new("quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.line.quantity)
            }),
            Column::new("cost", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.line.cost)
            }),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
        ],
    }
}

// ----- billing document lines -----------------------------------------------------------------

pub struct BillingLineRow {
    kind: BillingKind,
    customer: String,
    order: String,
    currency: String,
    posting_date: NaiveDate,
    line: crate::billing::BillingLine,
}

impl BillingLineRow {
    /// Credit memos count against revenue, quantity and cost.
    fn signed(&self, value: Decimal) -> Decimal {
        match self.kind {
            BillingKind::Invoice => value,
            BillingKind::CreditMemo => -value,
        }
    }
}

fn billing_line_rows(event: &EventEnvelope) -> Result<Vec<BillingLineRow>, EventError> {
    let BillingEvent::BillingDocumentPosted {
        kind,
        customer,
        currency,
        order,
        posting_date,
        lines,
        ..
    } = decode::<BillingEvent>(event)?
    else {
        return Ok(Vec::new());
    };
    Ok(lines
        .into_iter()
        .map(|line| BillingLineRow {
            kind,
            customer: customer.to_string(),
            order: order.to_string(),
            currency: currency.to_string(),
            posting_date,
            line,
        })
        .collect())
}

pub fn billing_lines_relation() -> EventRelation<BillingLineRow> {
    use ColumnType::*;
    EventRelation {
        name: "sales_billing_lines",
        aggregate_type: <BillingDocument as Aggregate>::TYPE,
        rows: billing_line_rows,
        columns: vec![
            Column::new("company", Text, false, |_, e| Cell::owned(company_of(e))),
            Column::new("document", Text, false, |_, e| Cell::owned(number_of(e))),
            Column::new("document_type", Text, false, |r, _| {
                Cell::text(r.kind.as_str())
            }),
            Column::new("customer", Text, false, |r, _| Cell::text(&r.customer)),
            Column::new("sales_order", Text, false, |r, _| Cell::text(&r.order)),
            Column::new("line", Int32, false, |r, _| {
                Cell::Int32(i32::try_from(r.line.line).unwrap_or(i32::MAX))
            }),
            Column::new("material", Text, false, |r, _| {
                Cell::text(r.line.material.as_str())
            }),
            Column::new("material_group", Text, true, |r, _| {
                Cell::optional_text(r.line.material_group.as_deref())
            }),
            Column::new("posting_date", Date, false, |r, _| {
                Cell::Date(r.posting_date)
            }),
            Column::new("currency", Text, false, |r, _| Cell::text(&r.currency)),
            Column::new("quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.signed(r.line.quantity))
            }),
            Column::new("net_value", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.signed(r.line.net_value))
            }),
            Column::new("tax", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.signed(r.line.tax))
            }),
            Column::new("cost", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.signed(r.line.cost))
            }),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
        ],
    }
}

// ----- receivables ----------------------------------------------------------------------------

/// One change to a customer's open item: a billing document posted (invoice positive, credit
/// memo negative), cleared by a payment or a credit memo, or a payment's rest on account.
pub struct ArRow {
    customer: Option<String>,
    document: String,
    document_type: Option<&'static str>,
    entry: &'static str,
    posting_date: NaiveDate,
    due_date: Option<NaiveDate>,
    currency: Option<String>,
    amount: Decimal,
    discount: Decimal,
    cleared_by: Option<String>,
}

fn ar_rows(event: &EventEnvelope) -> Result<Vec<ArRow>, EventError> {
    let document = number_of(event);
    Ok(vec![match decode::<BillingEvent>(event)? {
        BillingEvent::BillingDocumentPosted {
            kind,
            customer,
            currency,
            posting_date,
            due_date,
            gross_value,
            discount_reversed,
            ..
        } => ArRow {
            customer: Some(customer.to_string()),
            document,
            document_type: Some(kind.as_str()),
            entry: "posted",
            posting_date,
            due_date: Some(due_date),
            currency: Some(currency.to_string()),
            amount: match kind {
                BillingKind::Invoice => gross_value,
                BillingKind::CreditMemo => -(gross_value - discount_reversed),
            },
            discount: Decimal::ZERO,
            cleared_by: None,
        },
        BillingEvent::CreditMemoApplied {
            credit_memo,
            date,
            amount,
            ..
        } => ArRow {
            customer: None,
            document,
            document_type: None,
            entry: "credited",
            posting_date: date,
            due_date: None,
            currency: None,
            amount: -amount,
            discount: Decimal::ZERO,
            cleared_by: Some(credit_memo.to_string()),
        },
        BillingEvent::ItemCleared {
            by,
            kind,
            date,
            amount,
            discount,
        } => ArRow {
            customer: None,
            document,
            document_type: None,
            entry: "cleared",
            posting_date: date,
            due_date: None,
            currency: None,
            // A payment takes an invoice's item down; an invoice takes a credit memo's up.
            amount: match kind {
                crate::billing::ClearingKind::Payment => -(amount + discount),
                crate::billing::ClearingKind::CreditMemo => amount,
            },
            discount,
            cleared_by: Some(by.to_string()),
        },
    }])
}

pub fn ar_documents_relation() -> EventRelation<ArRow> {
    EventRelation {
        name: "sales_ar_documents",
        aggregate_type: <BillingDocument as Aggregate>::TYPE,
        rows: ar_rows,
        columns: ar_columns(),
    }
}

fn ar_columns() -> Vec<Column<ArRow>> {
    use ColumnType::*;
    vec![
        Column::new("company", Text, false, |_, e| Cell::owned(company_of(e))),
        Column::new("customer", Text, true, |r, _| {
            Cell::optional_text(r.customer.as_deref())
        }),
        Column::new("document", Text, false, |r, _| Cell::text(&r.document)),
        Column::new("document_type", Text, true, |r, _| {
            Cell::optional_text(r.document_type)
        }),
        Column::new("entry", Text, false, |r, _| Cell::text(r.entry)),
        Column::new("posting_date", Date, false, |r, _| {
            Cell::Date(r.posting_date)
        }),
        Column::new("due_date", Date, true, |r, _| {
            r.due_date.map_or(Cell::Null, Cell::Date)
        }),
        Column::new("currency", Text, true, |r, _| {
            Cell::optional_text(r.currency.as_deref())
        }),
        Column::new("amount", ColumnType::MONEY, false, |r, _| {
            Cell::Decimal(r.amount)
        }),
        Column::new("discount", ColumnType::MONEY, false, |r, _| {
            Cell::Decimal(r.discount)
        }),
        Column::new("cleared_by", Text, true, |r, _| {
            Cell::optional_text(r.cleared_by.as_deref())
        }),
        Column::new("event_position", Int64, false, |_, e| {
            Cell::Int64(e.position)
        }),
        Column::new("recorded_at", Timestamp, false, |_, e| {
            Cell::Timestamp(e.time)
        }),
    ]
}

fn payment_rows(event: &EventEnvelope) -> Result<Vec<ArRow>, EventError> {
    let (customer, currency, date, on_account) = match decode::<PaymentEvent>(event)? {
        PaymentEvent::PaymentReceived {
            customer,
            currency,
            date,
            on_account,
            ..
        } => (customer, currency, date, on_account),
        // Applied to invoices: the negative item goes up by what each took.
        PaymentEvent::OnAccountApplied { date, items, .. } => {
            return Ok(items
                .into_iter()
                .map(|item| ArRow {
                    customer: None,
                    document: number_of(event),
                    document_type: None,
                    entry: "applied",
                    posting_date: date,
                    due_date: None,
                    currency: None,
                    amount: item.amount,
                    discount: Decimal::ZERO,
                    cleared_by: Some(item.invoice.to_string()),
                })
                .collect());
        }
    };
    // Only what stays on account is an open item of its own.
    if on_account.is_zero() {
        return Ok(Vec::new());
    }
    Ok(vec![ArRow {
        customer: Some(customer.to_string()),
        document: number_of(event),
        document_type: Some("payment_on_account"),
        entry: "posted",
        posting_date: date,
        due_date: Some(date),
        currency: Some(currency.to_string()),
        amount: -on_account,
        discount: Decimal::ZERO,
        cleared_by: None,
    }])
}

pub fn ar_payments_relation() -> EventRelation<ArRow> {
    EventRelation {
        name: "sales_ar_payments",
        aggregate_type: <Payment as Aggregate>::TYPE,
        rows: payment_rows,
        columns: ar_columns(),
    }
}

pub fn relations() -> Vec<Arc<dyn Relation>> {
    vec![
        Arc::new(order_lines_relation()),
        Arc::new(deliveries_relation()),
        Arc::new(billing_lines_relation()),
        Arc::new(ar_documents_relation()),
        Arc::new(ar_payments_relation()),
    ]
}

pub fn tables() -> Vec<LakeTable> {
    vec![
        LakeTable::of_relation(
            "sales_order_line_changes",
            "What each sales order event did to a line: entered as now, cancelled, delivered or billed",
            &order_lines_relation(),
        ),
        LakeTable::of_relation(
            "delivery_lines",
            "One row per delivery line: quantity issued and its cost",
            &deliveries_relation(),
        ),
        LakeTable::of_relation(
            "billing_document_lines",
            "Invoice and credit memo lines (credit memos negative): quantity, revenue, tax, cost",
            &billing_lines_relation(),
        ),
        LakeTable::of_relation(
            "ar_document_movements",
            "Customer invoices and credit memos as posted and as cleared by payments and credit memos",
            &ar_documents_relation(),
        ),
        LakeTable::of_relation(
            "ar_payment_movements",
            "What customer payments left on account (negative open items)",
            &ar_payments_relation(),
        ),
    ]
}

pub fn pipelines() -> Vec<PipelineSql> {
    tributary_kernel::pipelines![
        "sales_order_line_changes",
        "delivery_lines",
        "billing_document_lines",
        "ar_document_movements",
        "ar_payment_movements"
    ]
}

pub fn views() -> Vec<ViewSql> {
    tributary_kernel::views![
        "sales_order_lines",
        "order_backlog",
        "sales_revenue",
        "ar_open_items",
        "ar_aging",
        "ar_reconciliation",
        "days_sales_outstanding"
    ]
}
