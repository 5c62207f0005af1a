//! `platform_pipelines`: where each pipeline table stands against the event store, computed
//! when a statement reads it (the Platform dashboard's lag and freshness).
//!
//! - `head_cursor`: the store's newest committed feed cursor;
//! - `processed_cursor`: how far the pipelines have read the feed: the highest cursor any
//!   table's Delta `txn` marker records (every batch goes through every table, and a table the
//!   batch gave no rows skips its commit, so its own marker can stay behind while current);
//! - `last_write_cursor`: the cursor of the table's own last commit;
//! - `lag_events`: the distance from processed to head (feed cursors are event positions: exact on SQLite, an
//!   upper bound on PostgreSQL, whose sequence may skip numbers);
//! - `freshness_ms`: how long the oldest event the table lacks has been waiting (0 when
//!   current).
//!
//! With Kafka between store and lake the tables record Kafka offsets instead; then only the
//! head and the check time are known and the other columns are NULL.

use async_trait::async_trait;
use chrono::Utc;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;
use tributary_ingest::FEED_STREAM;
use tributary_kernel::EventStore;
use tributary_lakehouse::Lake;

pub const TABLE: &str = "platform_pipelines";

#[derive(Debug)]
pub struct PipelineStatus {
    store: EventStore,
    lake: Lake,
    /// Whether the pipelines read Kafka (positions are offsets, not store cursors).
    kafka: bool,
    /// The feed cursor of the runner in this process, when the pipelines run here: exact even
    /// before any table has committed (events without rows, such as a company's creation,
    /// commit nothing).
    in_process: Option<tokio::sync::watch::Receiver<i64>>,
    pipelines: Vec<tributary_pipelines::Pipeline>,
}

impl PipelineStatus {
    pub fn new(
        store: EventStore,
        lake: Lake,
        kafka: bool,
        in_process: Option<tokio::sync::watch::Receiver<i64>>,
        pipelines: Vec<tributary_pipelines::Pipeline>,
    ) -> PipelineStatus {
        PipelineStatus {
            store,
            lake,
            kafka,
            in_process,
            pipelines,
        }
    }

    fn timestamp() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    async fn rows(&self) -> Result<RecordBatch, DataFusionError> {
        let external =
            |error: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(error);
        let now = Utc::now();
        let head = self
            .store
            .head_cursor()
            .await
            .map_err(|e| external(Box::new(e)))?;
        let (mut names, mut processed, mut lag, mut waiting_since, mut freshness) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut written = Vec::new();
        for pipeline in &self.pipelines {
            names.push(pipeline.table);
            written.push(if self.kafka {
                None
            } else {
                self.lake
                    .txn_version(pipeline.table, &pipeline.app_id(FEED_STREAM))
                    .await
                    .map_err(|e| external(Box::new(e)))?
            });
        }
        let running = self
            .in_process
            .as_ref()
            .map_or(0, |progress| *progress.borrow());
        let position = (!self.kafka).then(|| {
            written
                .iter()
                .flatten()
                .copied()
                .max()
                .unwrap_or(0)
                .max(running)
        });
        let oldest = match position {
            Some(cursor) if cursor < head => self
                .store
                .read_feed(cursor, 1)
                .await
                .map_err(|e| external(Box::new(e)))?
                .events
                .first()
                .map(|event| event.time),
            _ => None,
        };
        for _ in &names {
            processed.push(position);
            lag.push(position.map(|cursor| (head - cursor).max(0)));
            waiting_since.push(oldest.map(|time| time.timestamp_micros()));
            freshness.push(
                position.map(|_| oldest.map_or(0, |time| (now - time).num_milliseconds().max(0))),
            );
        }
        let rows = names.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from(vec![head; rows])),
            Arc::new(Int64Array::from(processed)),
            Arc::new(Int64Array::from(written)),
            Arc::new(Int64Array::from(lag)),
            Arc::new(TimestampMicrosecondArray::from(waiting_since).with_timezone("UTC")),
            Arc::new(Int64Array::from(freshness)),
            Arc::new(
                TimestampMicrosecondArray::from(vec![now.timestamp_micros(); rows])
                    .with_timezone("UTC"),
            ),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

#[async_trait]
impl TableProvider for PipelineStatus {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("pipeline", DataType::Utf8, false),
            Field::new("head_cursor", DataType::Int64, false),
            Field::new("processed_cursor", DataType::Int64, true),
            Field::new("last_write_cursor", DataType::Int64, true),
            Field::new("lag_events", DataType::Int64, true),
            Field::new("oldest_waiting_since", Self::timestamp(), true),
            Field::new("freshness_ms", DataType::Int64, true),
            Field::new("checked_at", Self::timestamp(), false),
        ]))
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let batch = self.rows().await?;
        MemTable::try_new(self.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
