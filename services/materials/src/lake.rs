//! Materials' lake: goods movements decoded once into `materials_stock_movements`, which feeds
//! `stock_movements` (one row per movement, as decided: quantity, value, the moving average
//! after it) and `stock_levels` (per day and storage location, rolled up like GL balances);
//! purchase order events into `purchase_order_line_changes` (what each event changed on a
//! line, summed by the view `purchase_order_lines`); vendor invoices, credit memos and their
//! settlements into `ap_document_movements` (summed by `ap_open_items` and `ap_aging`).

use crate::domain::*;
use rust_decimal::Decimal;
use std::sync::Arc;
use tributary_kernel::event::decode;
use tributary_kernel::lake::{
    Cell, Column, ColumnSpec, ColumnType, EventRelation, LakeTable, PipelineSql, Relation, ViewSql,
};
use tributary_kernel::master::CompanyCode;
use tributary_kernel::telemetry::names;
use tributary_kernel::{Aggregate, EventEnvelope, EventError};

/// What every movement of one posting shares.
pub struct StockKey {
    company: String,
    material: String,
    plant: String,
    valuation_class: String,
}

pub struct MovementRow {
    key: Arc<StockKey>,
    movement: Movement,
}

impl MovementRow {
    fn reference(&self) -> (Option<&str>, Option<i32>, Option<&str>) {
        match &self.movement.kind {
            MovementKind::Receipt {
                purchase_order,
                line,
                vendor,
            } => (
                purchase_order.as_deref(),
                line.map(|l| i32::try_from(l).unwrap_or(i32::MAX)),
                vendor.as_ref().map(VendorNumber::as_str),
            ),
            MovementKind::ReturnToVendor {
                purchase_order,
                line,
                vendor,
                ..
            } => (
                Some(purchase_order.as_str()),
                Some(i32::try_from(*line).unwrap_or(i32::MAX)),
                Some(vendor.as_str()),
            ),
            _ => (None, None, None),
        }
    }

    fn detail(&self) -> Option<&str> {
        match &self.movement.kind {
            MovementKind::Issue { cost_center } => Some(cost_center),
            MovementKind::DeliveryIssue { delivery, .. } => Some(delivery),
            MovementKind::CustomerReturn { credit_memo, .. } => Some(credit_memo),
            MovementKind::ProductionIssue { order } | MovementKind::ProductionReceipt { order } => {
                Some(order)
            }
            MovementKind::Scrap { reason } => Some(reason),
            MovementKind::TransferOut { to_location } => Some(to_location.as_str()),
            MovementKind::TransferIn { from_location } => Some(from_location.as_str()),
            MovementKind::Revaluation { invoice, .. } => Some(invoice.as_str()),
            _ => None,
        }
    }
}

fn movements(event: &EventEnvelope) -> Result<Vec<MovementRow>, EventError> {
    if event.event_type != "GoodsMovementPosted" {
        return Ok(Vec::new());
    }
    let StockEvent::GoodsMovementPosted {
        company,
        material,
        plant,
        valuation_class,
        movements,
    } = decode::<StockEvent>(event)?
    else {
        return Ok(Vec::new());
    };
    let key = Arc::new(StockKey {
        company: company.to_string(),
        material: material.to_string(),
        plant: plant.to_string(),
        valuation_class: valuation_class.to_string(),
    });
    Ok(movements
        .into_iter()
        .map(|movement| MovementRow {
            key: key.clone(),
            movement,
        })
        .collect())
}

/// Materials' business metrics of an event it appended: goods movements per company and kind.
pub fn metrics(event: &EventEnvelope) {
    let Ok(rows) = movements(event) else {
        return;
    };
    for row in rows {
        metrics::counter!(
            names::GOODS_MOVEMENTS,
            "company" => row.key.company.clone(),
            "movement_type" => row.movement.kind.as_str()
        )
        .increment(1);
    }
}

pub fn stock_movements_relation() -> EventRelation<MovementRow> {
    use ColumnType::*;
    EventRelation {
        name: "materials_stock_movements",
        aggregate_type: <Stock as Aggregate>::TYPE,
        rows: movements,
        columns: vec![
            Column::new("company", Text, false, |r, _| Cell::text(&r.key.company)),
            Column::new("material", Text, false, |r, _| Cell::text(&r.key.material)),
            Column::new("plant", Text, false, |r, _| Cell::text(&r.key.plant)),
            Column::new("location", Text, false, |r, _| {
                Cell::text(r.movement.location.as_str())
            }),
            Column::new("valuation_class", Text, false, |r, _| {
                Cell::text(&r.key.valuation_class)
            }),
            Column::new("movement_id", Text, false, |r, _| {
                Cell::owned(r.movement.movement_id.to_string())
            }),
            Column::new("movement_type", Text, false, |r, _| {
                Cell::text(r.movement.kind.as_str())
            }),
            Column::new("posting_date", Date, false, |r, _| {
                Cell::Date(r.movement.posting_date)
            }),
            Column::new("quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.movement.quantity)
            }),
            Column::new("value", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.movement.value)
            }),
            Column::new("currency", Text, false, |r, _| {
                Cell::text(r.movement.currency.as_str())
            }),
            Column::new(
                "stock_quantity_after",
                ColumnType::QUANTITY,
                false,
                |r, _| Cell::Decimal(r.movement.stock_quantity_after),
            ),
            Column::new("stock_value_after", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.movement.stock_value_after)
            }),
            Column::new("moving_average_after", ColumnType::PRICE, false, |r, _| {
                Cell::Decimal(r.movement.moving_average_after)
            }),
            Column::new("purchase_order", Text, true, |r, _| {
                Cell::optional_text(r.reference().0)
            }),
            Column::new("purchase_order_line", Int32, true, |r, _| {
                r.reference().1.map_or(Cell::Null, Cell::Int32)
            }),
            Column::new("vendor", Text, true, |r, _| {
                Cell::optional_text(r.reference().2)
            }),
            Column::new("detail", Text, true, |r, _| Cell::optional_text(r.detail())),
            Column::new("event_id", Text, false, |_, e| {
                Cell::owned(e.id.to_string())
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

/// What one purchase order event changed on one line (line 0: the whole order).
pub struct OrderRow {
    company: String,
    purchase_order: String,
    line: i32,
    vendor: Option<String>,
    material: Option<String>,
    plant: Option<String>,
    currency: Option<String>,
    order_date: Option<chrono::NaiveDate>,
    delivery_date: Option<chrono::NaiveDate>,
    /// Per base unit.
    unit_price: Option<Decimal>,
    change: &'static str,
    ordered: Decimal,
    received: Decimal,
    received_value: Decimal,
    invoiced: Decimal,
    invoiced_amount: Decimal,
    cancelled: bool,
    closed: bool,
}

fn line_number(line: u32) -> i32 {
    i32::try_from(line).unwrap_or(i32::MAX)
}

fn order_rows(event: &EventEnvelope) -> Result<Vec<OrderRow>, EventError> {
    let decoded = decode::<PurchaseOrderEvent>(event)?;
    let row = |company: &CompanyCode, number: &PurchaseOrderNumber, line: u32| OrderRow {
        company: company.to_string(),
        purchase_order: number.to_string(),
        line: line_number(line),
        vendor: None,
        material: None,
        plant: None,
        currency: None,
        order_date: None,
        delivery_date: None,
        unit_price: None,
        change: "",
        ordered: Decimal::ZERO,
        received: Decimal::ZERO,
        received_value: Decimal::ZERO,
        invoiced: Decimal::ZERO,
        invoiced_amount: Decimal::ZERO,
        cancelled: false,
        closed: false,
    };
    let terms = |mut row: OrderRow, ordered: &OrderLine| {
        row.material = Some(ordered.material.to_string());
        row.plant = Some(ordered.plant.to_string());
        row.delivery_date = Some(ordered.delivery_date);
        row.unit_price =
            Some((ordered.unit_price / ordered.factor).round_dp(crate::valuation::PRICE_DECIMALS));
        row
    };
    Ok(match &decoded {
        PurchaseOrderEvent::PurchaseOrderCreated {
            company,
            number,
            vendor,
            currency,
            order_date,
            lines,
            ..
        } => lines
            .iter()
            .map(|ordered| {
                let mut line = terms(row(company, number, ordered.line), ordered);
                line.change = "created";
                line.vendor = Some(vendor.to_string());
                line.currency = Some(currency.to_string());
                line.order_date = Some(*order_date);
                line.ordered = ordered.ordered_base();
                line
            })
            .collect(),
        PurchaseOrderEvent::PurchaseOrderLineChanged {
            company,
            number,
            line,
            previous_quantity,
        } => {
            let mut changed = terms(row(company, number, line.line), line);
            changed.change = "changed";
            changed.ordered = (line.quantity - previous_quantity) * line.factor;
            vec![changed]
        }
        PurchaseOrderEvent::PurchaseOrderLineCancelled {
            company,
            number,
            line,
        } => {
            let mut cancelled = row(company, number, *line);
            cancelled.change = "cancelled";
            cancelled.cancelled = true;
            vec![cancelled]
        }
        PurchaseOrderEvent::PurchaseOrderReceived {
            company,
            number,
            line,
            quantity,
            value,
            ..
        } => {
            let mut received = row(company, number, *line);
            received.change = "received";
            received.received = *quantity;
            received.received_value = *value;
            vec![received]
        }
        PurchaseOrderEvent::PurchaseOrderInvoiced {
            company,
            number,
            line,
            quantity,
            amount,
            ..
        } => {
            let mut invoiced = row(company, number, *line);
            invoiced.change = "invoiced";
            invoiced.invoiced = *quantity;
            invoiced.invoiced_amount = *amount;
            vec![invoiced]
        }
        PurchaseOrderEvent::PurchaseOrderClosed { company, number } => {
            let mut closed = row(company, number, 0);
            closed.change = "closed";
            closed.closed = true;
            vec![closed]
        }
    })
}

pub fn purchase_order_relation() -> EventRelation<OrderRow> {
    use ColumnType::*;
    EventRelation {
        name: "materials_purchase_order_events",
        aggregate_type: <PurchaseOrder as Aggregate>::TYPE,
        rows: order_rows,
        columns: vec![
            Column::new("company", Text, false, |r, _| Cell::text(&r.company)),
            Column::new("purchase_order", Text, false, |r, _| {
                Cell::text(&r.purchase_order)
            }),
            Column::new("line", Int32, false, |r, _| Cell::Int32(r.line)),
            Column::new("vendor", Text, true, |r, _| {
                Cell::optional_text(r.vendor.as_deref())
            }),
            Column::new("material", Text, true, |r, _| {
                Cell::optional_text(r.material.as_deref())
            }),
            Column::new("plant", Text, true, |r, _| {
                Cell::optional_text(r.plant.as_deref())
            }),
            Column::new("currency", Text, true, |r, _| {
                Cell::optional_text(r.currency.as_deref())
            }),
            Column::new("order_date", Date, true, |r, _| {
                r.order_date.map_or(Cell::Null, Cell::Date)
            }),
            Column::new("delivery_date", Date, true, |r, _| {
                r.delivery_date.map_or(Cell::Null, Cell::Date)
            }),
            Column::new("unit_price", ColumnType::PRICE, true, |r, _| {
                r.unit_price.map_or(Cell::Null, Cell::Decimal)
            }),
            Column::new("change", Text, false, |r, _| Cell::text(r.change)),
            Column::new("ordered_quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.ordered)
            }),
            Column::new("received_quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.received)
            }),
            Column::new("received_value", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.received_value)
            }),
            Column::new("invoiced_quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.invoiced)
            }),
            Column::new("invoiced_amount", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.invoiced_amount)
            }),
            Column::new("cancelled", Boolean, false, |r, _| {
                Cell::Boolean(r.cancelled)
            }),
            Column::new("closed", Boolean, false, |r, _| Cell::Boolean(r.closed)),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
            Column::new("recorded_at", Timestamp, false, |_, e| {
                Cell::Timestamp(e.time)
            }),
        ],
    }
}

/// What one vendor document event did to the payable (signed: owed positive).
pub struct DocumentRow {
    company: String,
    vendor: String,
    document: String,
    document_type: Option<&'static str>,
    entry: &'static str,
    invoice_date: Option<chrono::NaiveDate>,
    posting_date: chrono::NaiveDate,
    due_date: Option<chrono::NaiveDate>,
    currency: Option<String>,
    amount: Decimal,
    discount: Decimal,
    payment_id: Option<String>,
    blocked: bool,
}

fn document_rows(event: &EventEnvelope) -> Result<Vec<DocumentRow>, EventError> {
    Ok(vec![match decode::<VendorInvoiceEvent>(event)? {
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
            blocked,
            ..
        } => DocumentRow {
            company: company.to_string(),
            vendor: vendor.to_string(),
            document: number.to_string(),
            document_type: Some(kind.as_str()),
            entry: "posted",
            invoice_date: Some(invoice_date),
            posting_date,
            due_date: Some(due_date),
            currency: Some(currency.to_string()),
            amount: total,
            discount: Decimal::ZERO,
            payment_id: None,
            blocked: blocked.is_some(),
        },
        VendorInvoiceEvent::VendorInvoiceReleased {
            company,
            vendor,
            number,
        } => DocumentRow {
            company: company.to_string(),
            vendor: vendor.to_string(),
            document: number.to_string(),
            document_type: None,
            entry: "released",
            invoice_date: None,
            posting_date: event.time.date_naive(),
            due_date: None,
            currency: None,
            amount: Decimal::ZERO,
            discount: Decimal::ZERO,
            payment_id: None,
            blocked: false,
        },
        VendorInvoiceEvent::VendorInvoiceSettled {
            company,
            vendor,
            number,
            payment_id,
            payment_date,
            amount,
            discount,
        } => DocumentRow {
            company: company.to_string(),
            vendor: vendor.to_string(),
            document: number.to_string(),
            document_type: None,
            entry: "settled",
            invoice_date: None,
            posting_date: payment_date,
            due_date: None,
            currency: None,
            amount: -amount,
            discount,
            payment_id: Some(payment_id.to_string()),
            blocked: false,
        },
    }])
}

pub fn vendor_documents_relation() -> EventRelation<DocumentRow> {
    use ColumnType::*;
    EventRelation {
        name: "materials_vendor_documents",
        aggregate_type: <VendorInvoice as Aggregate>::TYPE,
        rows: document_rows,
        columns: vec![
            Column::new("company", Text, false, |r, _| Cell::text(&r.company)),
            Column::new("vendor", Text, false, |r, _| Cell::text(&r.vendor)),
            Column::new("document", Text, false, |r, _| Cell::text(&r.document)),
            Column::new("document_type", Text, true, |r, _| {
                Cell::optional_text(r.document_type)
            }),
            Column::new("entry", Text, false, |r, _| Cell::text(r.entry)),
            Column::new("invoice_date", Date, true, |r, _| {
                r.invoice_date.map_or(Cell::Null, Cell::Date)
            }),
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
            Column::new("payment_id", Text, true, |r, _| {
                Cell::optional_text(r.payment_id.as_deref())
            }),
            Column::new("blocked", Boolean, false, |r, _| Cell::Boolean(r.blocked)),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
            Column::new("recorded_at", Timestamp, false, |_, e| {
                Cell::Timestamp(e.time)
            }),
        ],
    }
}

pub fn relations() -> Vec<Arc<dyn Relation>> {
    vec![
        Arc::new(stock_movements_relation()),
        Arc::new(purchase_order_relation()),
        Arc::new(vendor_documents_relation()),
    ]
}

pub fn tables() -> Vec<LakeTable> {
    use ColumnType::*;
    vec![
        LakeTable::of_relation(
            "stock_movements",
            "One row per goods movement: quantity, value and the moving average after it",
            &stock_movements_relation(),
        ),
        LakeTable {
            name: "stock_levels",
            description: "Stock quantity and value moved per company, material, plant, storage location and day",
            columns: vec![
                ColumnSpec::new("company", Text, false),
                ColumnSpec::new("material", Text, false),
                ColumnSpec::new("plant", Text, false),
                ColumnSpec::new("location", Text, false),
                ColumnSpec::new("valuation_class", Text, false),
                ColumnSpec::new("currency", Text, false),
                ColumnSpec::new("posting_date", Date, false),
                ColumnSpec::new("quantity", ColumnType::QUANTITY, false),
                ColumnSpec::new("value", ColumnType::MONEY, false),
                ColumnSpec::new("movement_count", Int64, false),
            ],
            partition_columns: &[],
            stats_columns: None,
        },
        LakeTable::of_relation(
            "purchase_order_line_changes",
            "What each purchase order event changed on a line: quantities in the base unit, values",
            &purchase_order_relation(),
        ),
        LakeTable::of_relation(
            "ap_document_movements",
            "Vendor invoices, credit memos and their settlements: signed amounts owed per document",
            &vendor_documents_relation(),
        ),
    ]
}

pub fn pipelines() -> Vec<PipelineSql> {
    tributary_kernel::pipelines![
        "stock_movements",
        "stock_levels",
        "purchase_order_line_changes",
        "ap_document_movements"
    ]
}

pub fn views() -> Vec<ViewSql> {
    tributary_kernel::views![
        "stock_on_hand",
        "purchase_order_lines",
        "ap_open_items",
        "ap_aging",
        "inventory_value"
    ]
}
