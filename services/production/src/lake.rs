//! Production's lake: what MRP computed, one version per material and plan (`sequence`), written
//! by the planning worker (full runs and net change), never rewritten. Every write is one Delta
//! commit to `mrp_plan_rows` (plan, record, order and exception rows, with the plant's progress
//! marker), so a version is there whole or not at all; the views `mrp_plan_versions`,
//! `mrp_record_versions`, `planned_order_versions` and `mrp_exception_versions` keep every
//! version of each kind, and `mrp_plans`, `mrp_records`, `planned_orders` and `mrp_exceptions`
//! show each material's newest.
//!
//! Production orders stream in from their events: `production_order_headers` (as created,
//! with the cost estimate), `production_order_events` (status changes, component issues,
//! confirmations, goods receipts and settlement, each with what it did to work in process) and
//! `production_confirmations`; the view `production_orders` sums them per order.

use crate::master::{
    Operation, PlannedRequirements, RequirementsEvent, Routing, RoutingEvent, RoutingRecord,
    WorkCenter, WorkCenterEvent, WorkCenterRecord,
};
use crate::order::{OrderEvent, ProductionOrderRecord};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::sync::Arc;
use tributary_kernel::event::decode;
use tributary_kernel::lake::{
    Cell, Column, ColumnSpec, ColumnType, EventRelation, LakeTable, PipelineSql, Relation, ViewSql,
};
use tributary_kernel::{Aggregate, EventEnvelope, EventError};

/// Every plan version's rows, of four kinds ([`RowKind`]), one Delta commit per write.
pub const PLAN_ROWS: &str = "mrp_plan_rows";

/// What a row of [`PLAN_ROWS`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A material's plan version: run, time, horizon, low-level code.
    Plan,
    /// One bucket of its time-phased record.
    Record,
    /// One planned order or purchase requisition.
    Order,
    /// One exception message.
    Exception,
}

/// Where each kind's columns start in a row of [`PLAN_ROWS`] (after the five key columns and
/// `row_kind`); every column of another kind is null, except an order's `run` (a plan column)
/// and an exception's `quantity` (an order column).
pub mod plan_rows {
    /// Columns in a row.
    pub const WIDTH: usize = 32;
    /// `run`, `planned_at`, `feed_position`, `low_level_code`, `procurement`, `horizon_start`,
    /// `bucket_size`, `buckets`.
    pub const PLAN: usize = 6;
    /// `bucket`, `bucket_start`, the six quantities of the time-phased record.
    pub const RECORD: usize = 14;
    /// `planned_order`, `proposal_type`, `quantity`, `receipt_date`, `release_date`.
    pub const ORDER: usize = 22;
    /// `kind`, `source`, `date`, `suggested_date`, `message`.
    pub const EXCEPTION: usize = 27;
    /// An order's `run`.
    pub const RUN: usize = PLAN;
    /// An exception's `quantity`.
    pub const QUANTITY: usize = ORDER + 2;
}

impl RowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Plan => "plan",
            RowKind::Record => "record",
            RowKind::Order => "order",
            RowKind::Exception => "exception",
        }
    }
}

/// What every row of a material's plan version starts with.
fn key_columns() -> Vec<ColumnSpec> {
    use ColumnType::*;
    vec![
        ColumnSpec::new("company", Text, false),
        ColumnSpec::new("plant", Text, false),
        ColumnSpec::new("material", Text, false),
        ColumnSpec::new("sequence", Int64, false),
        // Unique per write: rows of a write whose header never committed match no header.
        ColumnSpec::new("version", Text, false),
    ]
}

fn with_key(columns: Vec<ColumnSpec>) -> Vec<ColumnSpec> {
    let mut all = key_columns();
    all.extend(columns);
    all
}

/// `company/number` of an order's stream id.
fn split_id(event: &EventEnvelope) -> (&str, &str) {
    event.aggregate_id.split_once('/').unwrap_or(("", ""))
}

/// `company` and `production_order` (from the stream id), then `rest`.
fn with_order<R>(rest: Vec<Column<R>>) -> Vec<Column<R>> {
    let mut columns = vec![
        Column::new("company", ColumnType::Text, false, |_, e| {
            Cell::text(split_id(e).0)
        }),
        Column::new("production_order", ColumnType::Text, false, |_, e| {
            Cell::text(split_id(e).1)
        }),
    ];
    columns.extend(rest);
    columns
}

fn headers(event: &EventEnvelope) -> Result<Vec<crate::order::NewOrder>, EventError> {
    Ok(match decode::<OrderEvent>(event)? {
        OrderEvent::OrderCreated(new) => vec![*new],
        _ => vec![],
    })
}

pub fn headers_relation() -> EventRelation<crate::order::NewOrder> {
    use ColumnType::*;
    let columns: Vec<Column<crate::order::NewOrder>> = with_order(vec![
        Column::new("plant", Text, false, |r, _| Cell::text(r.plant.as_str())),
        Column::new("material", Text, false, |r, _| {
            Cell::text(r.material.as_str())
        }),
        Column::new("quantity", ColumnType::QUANTITY, false, |r, _| {
            Cell::Decimal(r.quantity)
        }),
        Column::new("location", Text, false, |r, _| {
            Cell::text(r.location.as_str())
        }),
        Column::new("start_date", Date, false, |r, _| Cell::Date(r.start_date)),
        Column::new("finish_date", Date, false, |r, _| Cell::Date(r.finish_date)),
        Column::new("planned_order", Text, true, |r, _| {
            Cell::optional_text(r.planned_order.as_deref())
        }),
        Column::new("receipt_valuation", Text, false, |r, _| {
            Cell::text(r.receipt_valuation.as_str())
        }),
        Column::new("currency", Text, false, |r, _| {
            Cell::text(r.currency.as_str())
        }),
        Column::new(
            "standard_material_cost",
            ColumnType::MONEY,
            false,
            |r, _| Cell::Decimal(r.standard.material_cost),
        ),
        Column::new(
            "standard_activity_cost",
            ColumnType::MONEY,
            false,
            |r, _| Cell::Decimal(r.standard.activity_cost),
        ),
        Column::new("standard_cost", ColumnType::MONEY, false, |r, _| {
            Cell::Decimal(r.standard.total)
        }),
        Column::new("standard_unit_cost", ColumnType::MONEY, false, |r, _| {
            Cell::Decimal(r.standard.unit_cost)
        }),
        Column::new("event_position", Int64, false, |_, e| {
            Cell::Int64(e.position)
        }),
    ]);
    EventRelation {
        name: "production_order_created",
        aggregate_type: <ProductionOrderRecord as Aggregate>::TYPE,
        rows: headers,
        columns,
    }
}

/// What one order event did: its status after (status changes), the component, operation or
/// quantity it concerns, and its amount on work in process (debit positive).
pub struct OrderEventRow {
    event: &'static str,
    date: NaiveDate,
    status: Option<&'static str>,
    material: Option<String>,
    operation: Option<u32>,
    quantity: Decimal,
    wip_amount: Decimal,
}

fn order_event_rows(event: &EventEnvelope) -> Result<Vec<OrderEventRow>, EventError> {
    let row = |event, date, status| OrderEventRow {
        event,
        date,
        status,
        material: None,
        operation: None,
        quantity: Decimal::ZERO,
        wip_amount: Decimal::ZERO,
    };
    Ok(match decode::<OrderEvent>(event)? {
        OrderEvent::OrderCreated(new) => vec![OrderEventRow {
            quantity: new.quantity,
            material: Some(new.material.to_string()),
            ..row("created", new.start_date, Some("created"))
        }],
        OrderEvent::OrderReleased { date, .. } => vec![row("released", date, Some("released"))],
        OrderEvent::ComponentsIssued {
            posting_date,
            backflush,
            lines,
            ..
        } => lines
            .into_iter()
            .map(|line| OrderEventRow {
                material: Some(line.material.to_string()),
                quantity: line.quantity,
                wip_amount: line.value,
                ..row(
                    if backflush {
                        "backflush"
                    } else {
                        "component_issue"
                    },
                    posting_date,
                    None,
                )
            })
            .collect(),
        OrderEvent::OperationConfirmed {
            confirmed,
            activity_value,
            ..
        } => vec![OrderEventRow {
            operation: Some(confirmed.operation),
            quantity: confirmed.yield_quantity,
            wip_amount: activity_value,
            ..row("confirmation", confirmed.posting_date, None)
        }],
        OrderEvent::GoodsReceived {
            posting_date,
            quantity,
            value,
            ..
        } => vec![OrderEventRow {
            quantity,
            wip_amount: -value,
            ..row("goods_receipt", posting_date, None)
        }],
        OrderEvent::TechnicallyCompleted { date } => vec![row(
            "technically_completed",
            date,
            Some("technically_complete"),
        )],
        OrderEvent::OrderSettled {
            posting_date,
            variance,
            ..
        } => vec![OrderEventRow {
            wip_amount: -variance,
            ..row("settled", posting_date, Some("closed"))
        }],
    })
}

pub fn order_events_relation() -> EventRelation<OrderEventRow> {
    use ColumnType::*;
    let columns: Vec<Column<OrderEventRow>> = with_order(vec![
        Column::new("event", Text, false, |r, _| Cell::text(r.event)),
        Column::new("date", Date, false, |r, _| Cell::Date(r.date)),
        Column::new("status", Text, true, |r, _| Cell::optional_text(r.status)),
        Column::new("material", Text, true, |r, _| {
            Cell::optional_text(r.material.as_deref())
        }),
        Column::new("operation", Int32, true, |r, _| {
            r.operation.map_or(Cell::Null, |o| {
                Cell::Int32(i32::try_from(o).unwrap_or(i32::MAX))
            })
        }),
        Column::new("quantity", ColumnType::QUANTITY, false, |r, _| {
            Cell::Decimal(r.quantity)
        }),
        Column::new("wip_amount", ColumnType::MONEY, false, |r, _| {
            Cell::Decimal(r.wip_amount)
        }),
        Column::new("event_position", Int64, false, |_, e| {
            Cell::Int64(e.position)
        }),
    ]);
    EventRelation {
        name: "production_order_event_rows",
        aggregate_type: <ProductionOrderRecord as Aggregate>::TYPE,
        rows: order_event_rows,
        columns,
    }
}

type ConfirmationRow = (u32, crate::order::Confirmation, String, String, Decimal);

fn confirmation_rows(event: &EventEnvelope) -> Result<Vec<ConfirmationRow>, EventError> {
    Ok(match decode::<OrderEvent>(event)? {
        OrderEvent::OperationConfirmed {
            confirmation,
            confirmed,
            work_center,
            cost_center,
            activity_value,
            ..
        } => vec![(
            confirmation,
            confirmed,
            work_center.to_string(),
            cost_center,
            activity_value,
        )],
        _ => vec![],
    })
}

pub fn confirmations_relation() -> EventRelation<ConfirmationRow> {
    use ColumnType::*;
    let columns: Vec<Column<ConfirmationRow>> = with_order(vec![
        Column::new("confirmation", Int32, false, |r, _| {
            Cell::Int32(i32::try_from(r.0).unwrap_or(i32::MAX))
        }),
        Column::new("operation", Int32, false, |r, _| {
            Cell::Int32(i32::try_from(r.1.operation).unwrap_or(i32::MAX))
        }),
        Column::new("work_center", Text, false, |r, _| Cell::text(&r.2)),
        Column::new("cost_center", Text, false, |r, _| Cell::text(&r.3)),
        Column::new("posting_date", Date, false, |r, _| {
            Cell::Date(r.1.posting_date)
        }),
        Column::new("yield_quantity", ColumnType::QUANTITY, false, |r, _| {
            Cell::Decimal(r.1.yield_quantity)
        }),
        Column::new("scrap_quantity", ColumnType::QUANTITY, false, |r, _| {
            Cell::Decimal(r.1.scrap_quantity)
        }),
        Column::new("setup_hours", ColumnType::QUANTITY, false, |r, _| {
            Cell::Decimal(r.1.setup_hours)
        }),
        Column::new("run_hours", ColumnType::QUANTITY, false, |r, _| {
            Cell::Decimal(r.1.run_hours)
        }),
        Column::new("activity_value", ColumnType::MONEY, false, |r, _| {
            Cell::Decimal(r.4)
        }),
        Column::new("final_confirmation", Boolean, false, |r, _| {
            Cell::Boolean(r.1.final_confirmation)
        }),
        Column::new("event_position", Int64, false, |_, e| {
            Cell::Int64(e.position)
        }),
    ]);
    EventRelation {
        name: "production_confirmation_rows",
        aggregate_type: <ProductionOrderRecord as Aggregate>::TYPE,
        rows: confirmation_rows,
        columns,
    }
}

// ----- what capacity and demand planning read -------------------------------------------------

/// The operations of a production order as created: where its hours fall.
type OperationRow = (NaiveDate, crate::order::PlannedOperation, Decimal);

fn order_operations(event: &EventEnvelope) -> Result<Vec<OperationRow>, EventError> {
    Ok(match decode::<OrderEvent>(event)? {
        OrderEvent::OrderCreated(new) => new
            .operations
            .into_iter()
            .map(|o| {
                let hours = o.planned_hours(new.quantity);
                (new.start_date, o, hours)
            })
            .collect(),
        _ => vec![],
    })
}

pub fn order_operations_relation() -> EventRelation<OperationRow> {
    use ColumnType::*;
    let columns: Vec<Column<OperationRow>> = with_order(vec![
        Column::new("operation", Int32, false, |r, _| {
            Cell::Int32(i32::try_from(r.1.number).unwrap_or(i32::MAX))
        }),
        Column::new("work_center", Text, false, |r, _| {
            Cell::text(r.1.work_center.as_str())
        }),
        Column::new("start_date", Date, false, |r, _| Cell::Date(r.0)),
        Column::new("planned_hours", ColumnType::QUANTITY, false, |r, _| {
            Cell::Decimal(r.2)
        }),
        Column::new("event_position", Int64, false, |_, e| {
            Cell::Int64(e.position)
        }),
    ]);
    EventRelation {
        name: "production_order_operation_rows",
        aggregate_type: <ProductionOrderRecord as Aggregate>::TYPE,
        rows: order_operations,
        columns,
    }
}

fn work_centers(event: &EventEnvelope) -> Result<Vec<WorkCenter>, EventError> {
    let WorkCenterEvent::WorkCenterSet(center) = decode::<WorkCenterEvent>(event)?;
    Ok(vec![center])
}

pub fn work_centers_relation() -> EventRelation<WorkCenter> {
    use ColumnType::*;
    EventRelation {
        name: "production_work_center_rows",
        aggregate_type: <WorkCenterRecord as Aggregate>::TYPE,
        rows: work_centers,
        columns: vec![
            Column::new("company", Text, false, |r, _| {
                Cell::text(r.company.as_str())
            }),
            Column::new("plant", Text, false, |r, _| Cell::text(r.plant.as_str())),
            Column::new("work_center", Text, false, |r, _| {
                Cell::text(r.code.as_str())
            }),
            Column::new("description", Text, false, |r, _| {
                Cell::text(&r.description)
            }),
            Column::new(
                "capacity_hours_per_day",
                ColumnType::QUANTITY,
                false,
                |r, _| Cell::Decimal(r.capacity_hours_per_day),
            ),
            Column::new("cost_rate_per_hour", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.cost_rate_per_hour)
            }),
            Column::new("cost_center", Text, false, |r, _| {
                Cell::text(&r.cost_center)
            }),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
        ],
    }
}

type RoutingRow = (Routing, Operation);

fn routing_operations(event: &EventEnvelope) -> Result<Vec<RoutingRow>, EventError> {
    let RoutingEvent::RoutingSet(routing) = decode::<RoutingEvent>(event)?;
    Ok(routing
        .operations
        .iter()
        .map(|o| (routing.clone(), o.clone()))
        .collect())
}

pub fn routing_operations_relation() -> EventRelation<RoutingRow> {
    use ColumnType::*;
    EventRelation {
        name: "production_routing_rows",
        aggregate_type: <RoutingRecord as Aggregate>::TYPE,
        rows: routing_operations,
        columns: vec![
            Column::new("company", Text, false, |r, _| {
                Cell::text(r.0.company.as_str())
            }),
            Column::new("plant", Text, false, |r, _| Cell::text(r.0.plant.as_str())),
            Column::new("material", Text, false, |r, _| {
                Cell::text(r.0.material.as_str())
            }),
            Column::new("operation", Int32, false, |r, _| {
                Cell::Int32(i32::try_from(r.1.number).unwrap_or(i32::MAX))
            }),
            Column::new("work_center", Text, false, |r, _| {
                Cell::text(r.1.work_center.as_str())
            }),
            Column::new("setup_hours", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.1.setup_hours)
            }),
            Column::new("run_hours_per_unit", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.1.run_hours_per_unit)
            }),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
        ],
    }
}

/// One date of a requirements change: company, plant, material, date, quantity, source.
type RequirementRow = (String, String, String, NaiveDate, Decimal, String);

fn requirement_rows(event: &EventEnvelope) -> Result<Vec<RequirementRow>, EventError> {
    let RequirementsEvent::RequirementsSet {
        company,
        plant,
        material,
        entries,
        source,
    } = decode::<RequirementsEvent>(event)?;
    Ok(entries
        .into_iter()
        .map(|(date, quantity)| {
            (
                company.to_string(),
                plant.to_string(),
                material.to_string(),
                date,
                quantity,
                source.clone(),
            )
        })
        .collect())
}

pub fn requirements_relation() -> EventRelation<RequirementRow> {
    use ColumnType::*;
    EventRelation {
        name: "production_requirement_rows",
        aggregate_type: <PlannedRequirements as Aggregate>::TYPE,
        rows: requirement_rows,
        columns: vec![
            Column::new("company", Text, false, |r, _| Cell::text(&r.0)),
            Column::new("plant", Text, false, |r, _| Cell::text(&r.1)),
            Column::new("material", Text, false, |r, _| Cell::text(&r.2)),
            Column::new("date", Date, false, |r, _| Cell::Date(r.3)),
            Column::new("quantity", ColumnType::QUANTITY, false, |r, _| {
                Cell::Decimal(r.4)
            }),
            Column::new("source", Text, false, |r, _| Cell::text(&r.5)),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
        ],
    }
}

pub fn relations() -> Vec<Arc<dyn Relation>> {
    vec![
        Arc::new(headers_relation()),
        Arc::new(order_events_relation()),
        Arc::new(confirmations_relation()),
        Arc::new(order_operations_relation()),
        Arc::new(work_centers_relation()),
        Arc::new(routing_operations_relation()),
        Arc::new(requirements_relation()),
    ]
}

pub fn pipelines() -> Vec<PipelineSql> {
    tributary_kernel::pipelines![
        "production_order_headers",
        "production_order_events",
        "production_confirmations",
        "production_order_operations",
        "work_center_versions",
        "routing_operation_versions",
        "planned_requirement_changes"
    ]
}

pub fn tables() -> Vec<LakeTable> {
    use ColumnType::*;
    let quantity = |name| ColumnSpec::new(name, ColumnType::QUANTITY, true);
    vec![
        LakeTable {
            name: PLAN_ROWS,
            description: "Every MRP plan version, one commit per write: per material a `plan` row (which run or net change planned it, when, over which horizon), a `record` row per bucket, an `order` row per proposal and an `exception` row per message; the views mrp_plan_versions, mrp_record_versions, planned_order_versions and mrp_exception_versions show each kind",
            columns: with_key(vec![
                ColumnSpec::new("row_kind", Text, false),
                // plan
                ColumnSpec::new("run", Text, true),
                ColumnSpec::new("planned_at", Timestamp, true),
                ColumnSpec::new("feed_position", Int64, true),
                ColumnSpec::new("low_level_code", Int32, true),
                ColumnSpec::new("procurement", Text, true),
                ColumnSpec::new("horizon_start", Date, true),
                ColumnSpec::new("bucket_size", Text, true),
                ColumnSpec::new("buckets", Int32, true),
                // record
                ColumnSpec::new("bucket", Int32, true),
                ColumnSpec::new("bucket_start", Date, true),
                quantity("gross_requirements"),
                quantity("scheduled_receipts"),
                quantity("projected_on_hand"),
                quantity("net_requirements"),
                quantity("planned_receipts"),
                quantity("planned_releases"),
                // order (and its run, above)
                ColumnSpec::new("planned_order", Text, true),
                ColumnSpec::new("proposal_type", Text, true),
                quantity("quantity"),
                ColumnSpec::new("receipt_date", Date, true),
                ColumnSpec::new("release_date", Date, true),
                // exception (and its quantity, above)
                ColumnSpec::new("kind", Text, true),
                ColumnSpec::new("source", Text, true),
                ColumnSpec::new("date", Date, true),
                ColumnSpec::new("suggested_date", Date, true),
                ColumnSpec::new("message", Text, true),
            ]),
            partition_columns: &[],
            // The key and the row kind: what the views and reads of one material filter on.
            // All 32 made each net change's commit re-read about 2 KB of statistics per file.
            stats_columns: Some(6),
        },
        LakeTable::of_relation(
            "production_order_headers",
            "Production orders as created: material, quantity, dates, the planned order converted, the cost estimate",
            &headers_relation(),
        ),
        LakeTable::of_relation(
            "production_order_events",
            "What each production order event did: status changes, component issues, confirmations, goods receipts, settlement, with its amount on work in process",
            &order_events_relation(),
        ),
        LakeTable::of_relation(
            "production_confirmations",
            "Operation confirmations: yield, scrap, actual hours and activity value per work centre",
            &confirmations_relation(),
        ),
        LakeTable::of_relation(
            "production_order_operations",
            "The operations of each production order as created: work centre, start date, planned hours",
            &order_operations_relation(),
        ),
        LakeTable::of_relation(
            "work_center_versions",
            "Work centres as each change set them: capacity per day, cost rate, cost centre",
            &work_centers_relation(),
        ),
        LakeTable::of_relation(
            "routing_operation_versions",
            "The operations of each routing as each change set them",
            &routing_operations_relation(),
        ),
        LakeTable::of_relation(
            "planned_requirement_changes",
            "Planned independent requirements by date as each change set them (zero: removed), with their source (manual or a released forecast)",
            &requirements_relation(),
        ),
    ]
}

pub fn views() -> Vec<ViewSql> {
    tributary_kernel::views![
        "mrp_plan_versions",
        "mrp_record_versions",
        "planned_order_versions",
        "mrp_exception_versions",
        "mrp_plans",
        "mrp_records",
        "planned_orders",
        "mrp_exceptions",
        "production_orders",
        "work_centers",
        "routing_operations",
        "planned_requirements",
        "capacity_load"
    ]
}

#[cfg(test)]
mod tests {
    use super::{PLAN_ROWS, plan_rows, tables};

    #[test]
    fn the_plan_row_offsets_name_the_columns_of_the_table() {
        let table = tables()
            .into_iter()
            .find(|t| t.name == PLAN_ROWS)
            .expect("the plan rows table");
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), plan_rows::WIDTH);
        assert_eq!(names[5], "row_kind");
        assert_eq!(names[plan_rows::PLAN], "run");
        assert_eq!(names[plan_rows::RECORD - 1], "buckets");
        assert_eq!(names[plan_rows::RECORD], "bucket");
        assert_eq!(names[plan_rows::ORDER - 1], "planned_releases");
        assert_eq!(names[plan_rows::ORDER], "planned_order");
        assert_eq!(names[plan_rows::QUANTITY], "quantity");
        assert_eq!(names[plan_rows::EXCEPTION - 1], "release_date");
        assert_eq!(names[plan_rows::EXCEPTION], "kind");
        assert_eq!(names[plan_rows::WIDTH - 1], "message");
    }
}
