//! `platform_pipelines`: where each pipeline table stands against the event store, computed
//! when a statement reads it (the Platform dashboard's lag and freshness).
//!
//! - `head_cursor`: the newest committed cursor of the feed the context's pipelines read (its
//!   database's, when contexts are kept in several: cursors compare within one context only);
//! - `processed_cursor`: how far the pipelines have read the feed: the highest cursor any
//!   table's Delta `txn` marker records (every batch goes through every table, and a table the
//!   batch gave no rows skips its commit, so its own marker can stay behind while current);
//! - `last_write_cursor`: the cursor of the table's own last commit;
//! - `lag_events`: the distance from processed to head (feed cursors are event positions: exact on SQLite, an
//!   upper bound on PostgreSQL, whose sequence may skip numbers);
//! - `freshness_ms`: how long the oldest event the table lacks has been waiting (0 when
//!   current);
//! - `context`: the context whose runner keeps the table (each context has its own cursor).
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
use tokio::sync::watch;
use tributary_ingest::FEED_STREAM;
use tributary_kernel::EventStore;
use tributary_lakehouse::Lake;

pub const TABLE: &str = "platform_pipelines";

/// One context's pipelines and, when its runner is in this process, its feed cursor.
#[derive(Debug, Clone)]
pub struct ContextPipelines {
    pub context: &'static str,
    pub pipelines: Vec<tributary_pipelines::Pipeline>,
    /// The feed cursor of the context's runner in this process: exact even before any table
    /// has committed (events without rows, such as a company's creation, commit nothing).
    pub progress: Option<watch::Receiver<i64>>,
}

#[derive(Debug)]
pub struct PipelineStatus {
    store: EventStore,
    lake: Lake,
    /// Whether the pipelines read Kafka (positions are offsets, not store cursors).
    kafka: bool,
    contexts: Vec<ContextPipelines>,
}

impl PipelineStatus {
    pub fn new(
        store: EventStore,
        lake: Lake,
        kafka: bool,
        contexts: Vec<ContextPipelines>,
    ) -> PipelineStatus {
        PipelineStatus {
            store,
            lake,
            kafka,
            contexts,
        }
    }

    fn timestamp() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    async fn rows(&self) -> Result<RecordBatch, DataFusionError> {
        let external =
            |error: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(error);
        let now = Utc::now();
        let (mut names, mut processed, mut lag, mut waiting_since, mut freshness) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut written, mut contexts, mut heads) = (Vec::new(), Vec::new(), Vec::new());
        // Each database's head once (one database unless contexts are kept apart).
        let mut known_heads: Vec<(&EventStore, i64)> = Vec::new();
        for group in &self.contexts {
            // The feed of the database keeping the context's events.
            let feed = self.store.for_context(group.context);
            let head = match known_heads
                .iter()
                .find(|(known, _)| known.same_database(feed))
            {
                Some((_, head)) => *head,
                None => {
                    let head = feed
                        .head_cursor()
                        .await
                        .map_err(|e| external(Box::new(e)))?;
                    known_heads.push((feed, head));
                    head
                }
            };
            let mut tables_written = Vec::new();
            for pipeline in &group.pipelines {
                tables_written.push(if self.kafka {
                    None
                } else {
                    self.lake
                        .txn_version(pipeline.table, &pipeline.app_id(FEED_STREAM))
                        .await
                        .map_err(|e| external(Box::new(e)))?
                });
            }
            let running = group
                .progress
                .as_ref()
                .map_or(0, |progress| *progress.borrow());
            // Every batch goes through every table of the context, and a table the batch gave
            // no rows skips its commit: the context's furthest marker is how far it has read.
            let position = (!self.kafka).then(|| {
                tables_written
                    .iter()
                    .flatten()
                    .copied()
                    .max()
                    .unwrap_or(0)
                    .max(running)
            });
            let oldest = match position {
                Some(cursor) if cursor < head => feed
                    .read_feed(cursor, 1)
                    .await
                    .map_err(|e| external(Box::new(e)))?
                    .events
                    .first()
                    .map(|event| event.time),
                _ => None,
            };
            for (pipeline, table_written) in group.pipelines.iter().zip(tables_written) {
                names.push(pipeline.table);
                contexts.push(group.context);
                heads.push(head);
                written.push(table_written);
                processed.push(position);
                lag.push(position.map(|cursor| (head - cursor).max(0)));
                waiting_since.push(oldest.map(|time| time.timestamp_micros()));
                freshness.push(
                    position
                        .map(|_| oldest.map_or(0, |time| (now - time).num_milliseconds().max(0))),
                );
            }
        }
        let rows = names.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from(heads)),
            Arc::new(Int64Array::from(processed)),
            Arc::new(Int64Array::from(written)),
            Arc::new(Int64Array::from(lag)),
            Arc::new(TimestampMicrosecondArray::from(waiting_since).with_timezone("UTC")),
            Arc::new(Int64Array::from(freshness)),
            Arc::new(
                TimestampMicrosecondArray::from(vec![now.timestamp_micros(); rows])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(contexts)),
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
            Field::new("context", DataType::Utf8, false),
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
