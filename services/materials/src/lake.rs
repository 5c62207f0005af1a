//! Materials' lake: goods movements decoded once into `materials_stock_movements`, which feeds
//! `stock_movements` (one row per movement, as decided: quantity, value, the moving average
//! after it) and `stock_levels` (per day and storage location, rolled up like GL balances).

use crate::domain::*;
use std::sync::Arc;
use tributary_kernel::event::decode;
use tributary_kernel::lake::{
    Cell, Column, ColumnSpec, ColumnType, EventRelation, LakeTable, PipelineSql, Relation,
};
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

pub fn relations() -> Vec<Arc<dyn Relation>> {
    vec![Arc::new(stock_movements_relation())]
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
        },
    ]
}

pub fn pipelines() -> Vec<PipelineSql> {
    tributary_kernel::pipelines!["stock_movements", "stock_levels"]
}
