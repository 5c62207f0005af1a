//! Lake tables as a context declares them, without Arrow: columns once, for decoding events
//! into a pipeline's source relation and for the Delta schema of the tables it feeds.
//!
//! ```text
//!  EventRelation<R> { columns: [Column<R>], rows: event -> [R] }
//!        │ columns()  ──► ColumnSpec[] ──► Arrow schema of the source relation and of every
//!        │                                 lake table fed by a projection of it
//!        │ decode(event, sink) ──► cell by cell into the pipeline's Arrow builders
//! ```
//! A context's read APIs query the lake through [`LakeReader`] and get [`Cell`]s back, so
//! context crates never compile against Arrow or DataFusion.

use crate::envelope::EventEnvelope;
use crate::event::EventError;
use crate::http::ApiError;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::borrow::Cow;

/// A column's type; decimals are `Decimal128(38, scale)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int32,
    Int64,
    Date,
    Decimal {
        scale: i8,
    },
    /// Microseconds, UTC.
    Timestamp,
    Boolean,
}

impl ColumnType {
    /// Amounts: four decimals, as accepted on input.
    pub const MONEY: ColumnType = ColumnType::Decimal { scale: 4 };
    /// Quantities: four decimals.
    pub const QUANTITY: ColumnType = ColumnType::Decimal { scale: 4 };
    /// Prices per unit (moving averages): six decimals.
    pub const PRICE: ColumnType = ColumnType::Decimal { scale: 6 };
}

/// A column of a relation or lake table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub column_type: ColumnType,
    pub nullable: bool,
}

impl ColumnSpec {
    pub const fn new(name: &'static str, column_type: ColumnType, nullable: bool) -> ColumnSpec {
        ColumnSpec {
            name,
            column_type,
            nullable,
        }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Int32(i32),
    Int64(i64),
    Date(NaiveDate),
    Decimal(Decimal),
    Timestamp(DateTime<Utc>),
    Boolean(bool),
}

impl<'a> Cell<'a> {
    pub fn text(value: &'a str) -> Cell<'a> {
        Cell::Text(Cow::Borrowed(value))
    }

    pub fn owned(value: String) -> Cell<'a> {
        Cell::Text(Cow::Owned(value))
    }

    pub fn optional_text(value: Option<&'a str>) -> Cell<'a> {
        value.map_or(Cell::Null, Cell::text)
    }

    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Text(text) => Cell::Text(Cow::Owned(text.into_owned())),
            Cell::Null => Cell::Null,
            Cell::Int32(v) => Cell::Int32(v),
            Cell::Int64(v) => Cell::Int64(v),
            Cell::Date(v) => Cell::Date(v),
            Cell::Decimal(v) => Cell::Decimal(v),
            Cell::Timestamp(v) => Cell::Timestamp(v),
            Cell::Boolean(v) => Cell::Boolean(v),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(text) => Some(text),
            _ => None,
        }
    }

    /// A decimal cell; NULL (no rows to sum) is zero.
    pub fn decimal_or_zero(&self) -> Decimal {
        match self {
            Cell::Decimal(value) => *value,
            _ => Decimal::ZERO,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Cell::Null => Value::Null,
            Cell::Text(text) => Value::String(text.to_string()),
            Cell::Int32(v) => Value::from(*v),
            Cell::Int64(v) => Value::from(*v),
            Cell::Date(v) => Value::String(v.to_string()),
            Cell::Decimal(v) => Value::String(crate::money::display_amount(*v)),
            Cell::Timestamp(v) => {
                Value::String(v.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
            Cell::Boolean(v) => Value::Bool(*v),
        }
    }
}

/// Receives a relation's rows cell by cell, in column order.
pub trait RowSink {
    fn cell(&mut self, column: usize, cell: Cell<'_>);
}

/// A source relation: events of one context decoded into typed rows.
pub trait Relation: Send + Sync {
    fn name(&self) -> &'static str;
    fn columns(&self) -> Vec<ColumnSpec>;
    /// The (qualified) aggregate type whose events it reads; its context names the topic.
    fn aggregate_type(&self) -> &'static str;
    /// Whether the relation reads this event at all.
    fn reads(&self, event: &EventEnvelope) -> bool;
    /// Pushes the event's rows into the sink; nothing is pushed when it fails.
    fn decode(&self, event: &EventEnvelope, sink: &mut dyn RowSink) -> Result<usize, EventError>;
}

/// A column of `R` rows: its spec and how to read its value from a row and its event.
pub struct Column<R> {
    pub spec: ColumnSpec,
    pub value: for<'a> fn(&'a R, &'a EventEnvelope) -> Cell<'a>,
}

impl<R> Column<R> {
    pub const fn new(
        name: &'static str,
        column_type: ColumnType,
        nullable: bool,
        value: for<'a> fn(&'a R, &'a EventEnvelope) -> Cell<'a>,
    ) -> Column<R> {
        Column {
            spec: ColumnSpec::new(name, column_type, nullable),
            value,
        }
    }
}

/// A relation over the events of one aggregate type: each event gives zero or more rows `R`.
pub struct EventRelation<R> {
    pub name: &'static str,
    pub aggregate_type: &'static str,
    pub columns: Vec<Column<R>>,
    pub rows: fn(&EventEnvelope) -> Result<Vec<R>, EventError>,
}

impl<R: Send + Sync> Relation for EventRelation<R> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn columns(&self) -> Vec<ColumnSpec> {
        self.columns.iter().map(|c| c.spec).collect()
    }

    fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    fn reads(&self, event: &EventEnvelope) -> bool {
        event.aggregate_type == self.aggregate_type
    }

    fn decode(&self, event: &EventEnvelope, sink: &mut dyn RowSink) -> Result<usize, EventError> {
        let rows = (self.rows)(event)?;
        for row in &rows {
            for (index, column) in self.columns.iter().enumerate() {
                sink.cell(index, (column.value)(row, event));
            }
        }
        Ok(rows.len())
    }
}

/// A Delta table of the lake.
#[derive(Debug, Clone)]
pub struct LakeTable {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: Vec<ColumnSpec>,
    /// Columns the table's files are partitioned by (directory per value).
    pub partition_columns: &'static [&'static str],
    /// Data-skipping statistics for the first n columns only (Delta's
    /// `delta.dataSkippingNumIndexedCols`); `None`: Delta's default, the first 32. Every commit
    /// makes the writer's handle read the statistics of all the table's files again, so a wide
    /// table written often keeps them for the columns readers filter on.
    pub stats_columns: Option<usize>,
}

impl LakeTable {
    /// A table with exactly the columns of a source relation (its pipeline projects them).
    pub fn of_relation(
        name: &'static str,
        description: &'static str,
        relation: &dyn Relation,
    ) -> LakeTable {
        LakeTable {
            name,
            description,
            columns: relation.columns(),
            partition_columns: &[],
            stats_columns: None,
        }
    }
}

/// A streaming SQL transformation: its SQL reads source relations (and lake tables), its
/// result is appended to `table`.
#[derive(Debug, Clone, Copy)]
pub struct PipelineSql {
    pub table: &'static str,
    pub sql: &'static str,
}

/// A view over lake tables: `CREATE VIEW <name> AS …`.
#[derive(Debug, Clone, Copy)]
pub struct ViewSql {
    pub name: &'static str,
    pub sql: &'static str,
}

/// A context's pipelines, each `pipelines/<table>.sql` of the calling crate:
/// `pipelines!["stock_movements", "stock_levels"]`.
#[macro_export]
macro_rules! pipelines {
    ($($table:literal),* $(,)?) => {
        vec![$($crate::lake::PipelineSql {
            table: $table,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/", $table, ".sql")),
        }),*]
    };
}

/// A context's views, each `views/<name>.sql` of the calling crate: `views!["gl_accounts"]`.
#[macro_export]
macro_rules! views {
    ($($name:literal),* $(,)?) => {
        vec![$($crate::lake::ViewSql {
            name: $name,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/views/", $name, ".sql")),
        }),*]
    };
}

/// Result rows of a lake query.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell<'static>>>,
}

/// Read-only SQL over the lake, for the read APIs of contexts (parameters `$1`, `$2`, …
/// are bound, never spliced).
#[async_trait::async_trait]
pub trait LakeReader: Send + Sync {
    async fn rows(&self, sql: &str, parameters: Vec<Cell<'static>>) -> Result<Rows, ApiError>;
}

/// A progress marker committed with rows: valid only while the table's version for `app_id`
/// is still `expected` (`None`: never written), then `version`. Two writers of one app id can
/// never both commit the same step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressMarker {
    pub app_id: String,
    pub expected: Option<i64>,
    pub version: i64,
}

/// Rows in chunks, made as they are asked for (see [`LakeWriter::append_rows`]).
pub type RowChunks<'a> = Box<dyn Iterator<Item = Vec<Vec<Cell<'a>>>> + Send + 'a>;

/// What a context's own worker writes to its lake tables (planning results that are computed,
/// not streamed through SQL): rows in the table's column order, one Delta commit per call.
#[async_trait::async_trait]
pub trait LakeWriter: Send + Sync {
    /// Appends the rows `chunks` yields to `table` in one commit, with `progress` checked and
    /// set in it. Each chunk is converted as it comes: a large write (a full MRP run, 800,000
    /// rows) never holds all its rows as cells at once.
    async fn append_rows(
        &self,
        table: &str,
        chunks: RowChunks<'_>,
        progress: Option<ProgressMarker>,
    ) -> Result<(), String>;

    /// The version `app_id` last committed into `table`.
    async fn progress(&self, table: &str, app_id: &str) -> Result<Option<i64>, String>;
}
