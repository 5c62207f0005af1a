//! The pipeline runner: follows the event store in global order and keeps every table current.

use crate::sources::{self, DecodeError};
use datafusion::arrow::compute::cast;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tributary_ingest::EventSource;
use tributary_kernel::EventEnvelope;
use tributary_kernel::store::StoreError;
use tributary_lakehouse::{Lake, LakeError, Progress};

/// One SQL transformation and the table it appends to.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub table: &'static str,
    pub sql: &'static str,
}

impl Pipeline {
    /// The Delta `txn` application id under which this pipeline records its progress.
    pub fn app_id(&self) -> String {
        format!("tributary-pipeline-{}", self.table)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("reading the event feed after cursor {cursor}: {source}")]
    Feed {
        cursor: i64,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("pipeline {table}: {source}")]
    Sql {
        table: &'static str,
        #[source]
        source: DataFusionError,
    },
    #[error("pipeline {table}: column {column}: {reason}")]
    Output {
        table: &'static str,
        column: String,
        reason: String,
    },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("stopped by the injected fault after {commits} table commits (tests only)")]
    InjectedFault { commits: usize },
}

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events read per micro-batch at most.
    pub batch_events_max: usize,
    /// How often to look for new events when no in-process append wakes the runner.
    pub poll_interval_ms: u64,
    /// Pause before retrying after an error (database or lake unavailable).
    pub retry_interval_ms: u64,
    /// Tests only: fail after this many table commits, as a crash between two commits would.
    pub fault_after_commits: Option<usize>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            batch_events_max: 5_000,
            poll_interval_ms: 200,
            retry_interval_ms: 1_000,
            fault_after_commits: None,
        }
    }
}

pub struct Runner {
    source: EventSource,
    lake: Lake,
    pipelines: Vec<Pipeline>,
    options: RunnerOptions,
    /// Each table's processed cursor: events at or below it are in the table (or produced
    /// no rows for it).
    cursors: HashMap<&'static str, i64>,
    /// Each table's progress as last committed to its Delta log (`None`: never).
    committed: HashMap<&'static str, Option<i64>>,
    commits: usize,
    /// The newest cursor every table has processed; published for freshness waits.
    progress: watch::Sender<i64>,
}

impl Runner {
    /// Loads each table's progress from its Delta log.
    pub async fn new(
        source: EventSource,
        lake: Lake,
        pipelines: Vec<Pipeline>,
        options: RunnerOptions,
    ) -> Result<Runner, PipelineError> {
        let mut cursors = HashMap::new();
        let mut committed = HashMap::new();
        for pipeline in &pipelines {
            let recorded = lake.txn_version(pipeline.table, &pipeline.app_id()).await?;
            committed.insert(pipeline.table, recorded);
            cursors.insert(pipeline.table, recorded.unwrap_or(0));
        }
        let start = cursors.values().copied().min().unwrap_or(0);
        let (progress, _) = watch::channel(start);
        Ok(Runner {
            source,
            lake,
            pipelines,
            options,
            cursors,
            committed,
            commits: 0,
            progress,
        })
    }

    /// The cursor up to which every pipeline has processed the feed.
    pub fn progress(&self) -> watch::Receiver<i64> {
        self.progress.subscribe()
    }

    fn low_cursor(&self) -> i64 {
        self.cursors.values().copied().min().unwrap_or(0)
    }

    /// Processes one micro-batch; returns how many events it read (0 when caught up).
    pub async fn step(&mut self) -> Result<usize, PipelineError> {
        let from = self.low_cursor();
        let batch = self
            .source
            .read(from, self.options.batch_events_max)
            .await
            .map_err(|source| PipelineError::Feed {
                cursor: from,
                source,
            })?;
        if batch.events.is_empty() {
            return Ok(0);
        }
        for pipeline in self.pipelines.clone() {
            let cursor = self.cursors.get(pipeline.table).copied().unwrap_or(0);
            let events: Vec<&EventEnvelope> =
                batch.events.iter().filter(|e| e.cursor > cursor).collect();
            if events.is_empty() {
                continue;
            }
            let rows = run_sql(&pipeline, &events, &self.lake).await?;
            if rows.iter().any(|b| b.num_rows() > 0) {
                if self
                    .options
                    .fault_after_commits
                    .is_some_and(|n| self.commits >= n)
                {
                    return Err(PipelineError::InjectedFault {
                        commits: self.commits,
                    });
                }
                let progress = Progress {
                    app_id: pipeline.app_id(),
                    expected: self.committed.get(pipeline.table).copied().flatten(),
                    version: batch.cursor,
                };
                self.lake.append(pipeline.table, rows, &[progress]).await?;
                self.committed.insert(pipeline.table, Some(batch.cursor));
                self.commits += 1;
            }
            // Nothing to write still advances the table in memory; after a restart the events
            // are read again and again produce nothing.
            self.cursors.insert(pipeline.table, batch.cursor);
        }
        self.progress.send_replace(self.low_cursor());
        Ok(batch.events.len())
    }

    /// Runs until caught up with the feed.
    pub async fn catch_up(&mut self) -> Result<(), PipelineError> {
        while self.step().await? > 0 {}
        Ok(())
    }

    /// Runs until `shutdown` turns true. Errors are logged and retried: the database or the
    /// lake may be away for a while, and progress lives in the lake, so nothing is lost.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let source = self.source.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait_ms = match self.step().await {
                Ok(0) => self.options.poll_interval_ms,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(error = %error, "pipeline step failed; retrying");
                    if matches!(error, PipelineError::InjectedFault { .. }) {
                        return;
                    }
                    self.options.retry_interval_ms
                }
            };
            tokio::select! {
                _ = source.appended() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Runs one pipeline's SQL over the decoded events and conforms the result to its table.
async fn run_sql(
    pipeline: &Pipeline,
    events: &[&EventEnvelope],
    lake: &Lake,
) -> Result<Vec<RecordBatch>, PipelineError> {
    let sql_error = |source| PipelineError::Sql {
        table: pipeline.table,
        source,
    };
    let context = SessionContext::new();
    for (name, batch) in sources::decode(events)? {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(sql_error)?;
        context
            .register_table(name, Arc::new(table))
            .map_err(sql_error)?;
    }
    let frame = context.sql(pipeline.sql).await.map_err(sql_error)?;
    let batches = frame.collect().await.map_err(sql_error)?;
    let definition = lake
        .definitions()
        .find(|d| d.name == pipeline.table)
        .ok_or_else(|| LakeError::UnknownTable {
            table: pipeline.table.to_owned(),
        })?;
    let target = definition.schema.clone();
    let mut conformed = Vec::with_capacity(batches.len());
    for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
        let mut columns = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let output = |reason: String| PipelineError::Output {
                table: pipeline.table,
                column: field.name().clone(),
                reason,
            };
            let column = batch
                .column_by_name(field.name())
                .ok_or_else(|| output("missing from the SQL output".into()))?;
            columns.push(cast(column, field.data_type()).map_err(|e| output(e.to_string()))?);
        }
        let batch =
            RecordBatch::try_new(target.clone(), columns).map_err(|e| PipelineError::Output {
                table: pipeline.table,
                column: String::new(),
                reason: e.to_string(),
            })?;
        conformed.push(batch);
    }
    Ok(conformed)
}
