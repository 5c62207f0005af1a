//! The Delta table catalog: Arrow schemas of the tables contexts declare (their modules'
//! [`LakeTable`]s), and the platform's own tables (bronze ingest, report runs).
//!
//! Money columns are `Decimal128(38, 4)`: four decimals as accepted on input and 34 integer
//! digits, room for sums over any realistic number of lines. Tables are append-only: balances
//! are per-day movements that queries roll up (ARCHITECTURE.md, "Scale beyond one machine").

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;
use tributary_kernel::lake::{ColumnSpec, ColumnType, LakeTable};

pub const MONEY_PRECISION: u8 = 38;
pub const MONEY_SCALE: i8 = 4;

pub fn money() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

/// A date as an Arrow `Date32` value (days since 1970-01-01). Every date Tributary accepts
/// (years 1900..=9999) fits; the saturation only guards the type.
pub fn date32(date: chrono::NaiveDate) -> i32 {
    i32::try_from((date - chrono::NaiveDate::default()).num_days()).unwrap_or(i32::MAX)
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A table the lake keeps.
#[derive(Debug, Clone)]
pub struct TableDefinition {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: SchemaRef,
    /// Columns the table's files are partitioned by (directory per value).
    pub partition_columns: &'static [&'static str],
    /// Data-skipping statistics for the first n columns only; `None`: Delta's default.
    pub stats_columns: Option<usize>,
}

/// The Arrow type of a column a context declares.
pub fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Date => DataType::Date32,
        ColumnType::Decimal { scale } => DataType::Decimal128(MONEY_PRECISION, scale),
        ColumnType::Timestamp => timestamp(),
        ColumnType::Boolean => DataType::Boolean,
    }
}

/// The Arrow schema of columns a context declares.
pub fn schema_of(columns: &[ColumnSpec]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name, arrow_type(c.column_type), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

impl TableDefinition {
    /// The Delta table of a context's lake table.
    pub fn of(table: &LakeTable) -> TableDefinition {
        TableDefinition {
            name: table.name,
            description: table.description,
            schema: schema_of(&table.columns),
            partition_columns: table.partition_columns,
            stats_columns: table.stats_columns,
        }
    }
}

/// Every event from Kafka, raw, exactly once per topic partition offset; partitioned by
/// bounded context and event date.
pub fn bronze_events() -> TableDefinition {
    TableDefinition {
        name: "bronze_events",
        description: "Raw events from Kafka, one row per topic/partition/offset",
        schema: Arc::new(Schema::new(vec![
            Field::new("topic", DataType::Utf8, false),
            Field::new("partition", DataType::Int32, false),
            Field::new("offset", DataType::Int64, false),
            Field::new("event_id", DataType::Utf8, false),
            Field::new("event_type", DataType::Utf8, false),
            Field::new("event_version", DataType::Int32, false),
            Field::new("aggregate_type", DataType::Utf8, false),
            Field::new("aggregate_id", DataType::Utf8, false),
            Field::new("sequence", DataType::Int64, false),
            Field::new("position", DataType::Int64, false),
            Field::new("relay_sequence", DataType::Int64, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("time", timestamp(), false),
            Field::new("payload", DataType::Utf8, false),
            Field::new("metadata", DataType::Utf8, false),
            Field::new("ingested_at", timestamp(), false),
            Field::new("context", DataType::Utf8, false),
            Field::new("event_date", DataType::Date32, false),
        ])),
        partition_columns: &["context", "event_date"],
        stats_columns: None,
    }
}

/// Messages that could not be decoded, with their raw bytes; they never stop the stream.
pub fn bronze_dead_letters() -> TableDefinition {
    TableDefinition {
        name: "bronze_dead_letters",
        description: "Undecodable Kafka messages with raw key/value and the error",
        schema: Arc::new(Schema::new(vec![
            Field::new("topic", DataType::Utf8, false),
            Field::new("partition", DataType::Int32, false),
            Field::new("offset", DataType::Int64, false),
            Field::new("key", DataType::Binary, true),
            Field::new("value", DataType::Binary, true),
            Field::new("error", DataType::Utf8, false),
            Field::new("received_at", timestamp(), false),
        ])),
        partition_columns: &[],
        stats_columns: None,
    }
}

/// Events the pipelines could not decode, one row per event and relation (or per undecodable
/// Kafka message): they never stop a pipeline.
pub fn pipeline_dead_letters() -> TableDefinition {
    TableDefinition {
        name: "pipeline_dead_letters",
        description: "Events a pipeline could not decode: where they were, the raw payload, the error",
        schema: Arc::new(Schema::new(vec![
            Field::new("context", DataType::Utf8, false),
            Field::new("relation", DataType::Utf8, true),
            Field::new("stream", DataType::Utf8, false),
            Field::new("position", DataType::Int64, false),
            Field::new("event_id", DataType::Utf8, true),
            Field::new("event_type", DataType::Utf8, true),
            Field::new("event_version", DataType::Int32, true),
            Field::new("aggregate_type", DataType::Utf8, true),
            Field::new("aggregate_id", DataType::Utf8, true),
            Field::new("payload", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, false),
            Field::new("dead_lettered_at", timestamp(), false),
        ])),
        partition_columns: &[],
        stats_columns: None,
    }
}

/// Every report run, succeeded or failed, one row each (written by the reports service).
pub fn report_runs() -> TableDefinition {
    TableDefinition {
        name: "report_runs",
        description: "Report runs: report, parameters, status, timings, rows, error, outputs",
        schema: Arc::new(Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("report", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("trigger", DataType::Utf8, false),
            Field::new("slot", timestamp(), true),
            Field::new("parameters", DataType::Utf8, false),
            Field::new("formats", DataType::Utf8, false),
            Field::new("queued_at", timestamp(), false),
            Field::new("started_at", timestamp(), true),
            Field::new("finished_at", timestamp(), false),
            Field::new("duration_ms", DataType::Int64, true),
            Field::new("row_count", DataType::Int64, true),
            Field::new("error", DataType::Utf8, true),
            Field::new("outputs", DataType::Utf8, false),
        ])),
        partition_columns: &[],
        stats_columns: None,
    }
}

/// The bronze tables the Kafka ingest maintains.
pub fn bronze() -> Vec<TableDefinition> {
    vec![bronze_events(), bronze_dead_letters()]
}
