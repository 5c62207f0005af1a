//! The pipeline runner of one context: reads events (the store's feed, or Kafka partitions in
//! the context's own consumer group) and keeps the context's tables current, exactly once.
//!
//! ```text
//!  feed ──► live batch (after the leading tables' cursor) ──► decode ──► dead letters first
//!       │                                                         └──► SQL ──► tables
//!       └─► backfill batch (after the lagging tables' cursor) ──► the lagging tables only
//! ```
//! A table behind the others (new, or left behind by a crash) catches up on its own batches,
//! so the tables at the head stay fresh meanwhile. An event a relation cannot decode is a row
//! of `pipeline_dead_letters` (as is a Kafka message that is not an event) and the stream
//! goes on; dead letters are committed before the tables, with their own `txn` marker
//! (`tributary-dead-letters-<context>-<stream>`), so none is written twice or lost.
//!
//! Progress is kept per table and per stream (the feed is one stream, each Kafka partition
//! another) as Delta `txn` markers committed with the table's rows, as a compare-and-set:
//! - `tributary-pipeline-<table>` (feed) or `tributary-pipeline-<table>-<topic>-<partition>`:
//!   the last position (feed cursor or Kafka offset) whose events are in the table;
//! - `…-relay-sequence` (Kafka only): the highest relay sequence in the table, so an event the
//!   relay published twice is counted once.

use crate::sources::{self, DecodeError};
use datafusion::arrow::compute::cast;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;
use tributary_ingest::{EventSource, FEED_STREAM, SourceError, SourcedEvent, Undecodable};
use tributary_kernel::EventEnvelope;
use tributary_kernel::telemetry::{self, names};
use tributary_lakehouse::live::LiveTable;
use tributary_lakehouse::{Lake, LakeError, Progress};

/// One SQL transformation and the table it appends to.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub table: &'static str,
    pub sql: &'static str,
}

impl From<tributary_kernel::lake::PipelineSql> for Pipeline {
    fn from(sql: tributary_kernel::lake::PipelineSql) -> Pipeline {
        Pipeline {
            table: sql.table,
            sql: sql.sql,
        }
    }
}

/// Pipelines and the source relations their SQL reads.
#[derive(Clone, Default)]
pub struct Pipelines {
    pub pipelines: Vec<Pipeline>,
    pub relations: Vec<Arc<dyn tributary_kernel::lake::Relation>>,
}

impl Pipelines {
    /// Every pipeline and relation of these modules.
    pub fn of<'a>(modules: impl IntoIterator<Item = &'a tributary_kernel::Module>) -> Pipelines {
        let mut all = Pipelines::default();
        for module in modules {
            all.pipelines
                .extend(module.pipelines.iter().copied().map(Pipeline::from));
            all.relations.extend(module.relations.iter().cloned());
        }
        all
    }
}

impl Pipeline {
    /// The Delta `txn` application id of this pipeline's position in `stream`.
    pub fn app_id(&self, stream: &str) -> String {
        if stream == FEED_STREAM {
            format!("tributary-pipeline-{}", self.table)
        } else {
            format!("tributary-pipeline-{}-{stream}", self.table)
        }
    }

    /// The Delta `txn` application id of this pipeline's highest relay sequence in `stream`.
    pub fn relay_sequence_app_id(&self, stream: &str) -> String {
        format!("{}-relay-sequence", self.app_id(stream))
    }
}

/// Where a newly assigned Kafka partition starts for a set of pipelines: after the lowest
/// offset any of their tables recorded (a table further ahead skips what it holds).
pub fn kafka_start(lake: Lake, pipelines: Vec<Pipeline>) -> tributary_ingest::bronze::StartOffset {
    Arc::new(
        move |topic: String,
              partition: i32|
              -> BoxFuture<'static, Result<Option<i64>, tributary_ingest::bronze::StartError>> {
            let (lake, pipelines) = (lake.clone(), pipelines.clone());
            Box::pin(async move {
                let stream = format!("{topic}-{partition}");
                let mut lowest: Option<i64> = None;
                for (index, pipeline) in pipelines.iter().enumerate() {
                    let recorded = lake
                        .txn_version(pipeline.table, &pipeline.app_id(&stream))
                        .await?;
                    match recorded {
                        None => return Ok(None),
                        Some(offset) => {
                            lowest = Some(if index == 0 {
                                offset
                            } else {
                                lowest.map_or(offset, |l| l.min(offset))
                            })
                        }
                    }
                }
                Ok(lowest)
            })
        },
    )
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("reading events: {0}")]
    Source(#[from] SourceError),
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
    /// Pause before retrying after an error (database, broker or lake unavailable).
    pub retry_interval_ms: u64,
    /// Least time from one batch's start to the next one's while events keep coming (a full
    /// batch goes on at once): under a steady stream every table commits at most once per
    /// interval instead of once per handful of events, so the lake gets fewer, larger files.
    /// Zero: the next batch starts as soon as the last one is committed, and under load the
    /// runner is never idle: each commit's fixed cost (the Delta log replayed over every live
    /// file, a Parquet file written) is paid as often as it can be, on the cores the writers
    /// need. An event arriving while the runner waits is not delayed past its next batch: the
    /// first event after a quiet spell is taken at once.
    pub batch_interval_min: Duration,
    /// Tests only: fail after this many table commits, as a crash between two commits would.
    pub fault_after_commits: Option<usize>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            batch_events_max: 5_000,
            poll_interval_ms: 200,
            retry_interval_ms: 1_000,
            // 100 ms posted 4,463–5,313 entries/s beside the pipelines' process against 0 ms's
            // 3,225–3,679 (`bench --runs apart --clients 64`, 2026-12-06). Larger batches put
            // several companies' rows in one file: the scope keeps a caller's predicate off the
            // others' rows there (`tributary_lakehouse::scope`).
            batch_interval_min: Duration::from_millis(100),
            fault_after_commits: None,
        }
    }
}

/// A table's progress in one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StreamProgress {
    position: Option<i64>,
    relay_sequence: Option<i64>,
}

type Key = (&'static str, String);

pub struct Runner {
    /// The context whose pipelines these are (dead letters are filed under it).
    context: String,
    source: EventSource,
    lake: Lake,
    pipelines: Vec<Pipeline>,
    relations: Vec<Arc<dyn tributary_kernel::lake::Relation>>,
    options: RunnerOptions,
    /// What each table has processed per stream (events at or below are in it, or produced
    /// no rows for it).
    processed: HashMap<Key, StreamProgress>,
    /// What each table's Delta log records per stream: the expected value of the next commit.
    committed: HashMap<Key, StreamProgress>,
    seen_generation: u64,
    commits: usize,
    /// The feed cursor every table has processed; published for freshness waits.
    progress: watch::Sender<i64>,
    /// The feed's next batch, read while the last one was committed.
    prefetched: Option<Vec<SourcedEvent>>,
    /// The dead letters' committed position per stream, as loaded or written.
    dead_letters: HashMap<String, Option<i64>>,
    /// Lake tables the pipelines' SQL may join, opened on first use.
    lake_tables: Option<Arc<Vec<LakeTableProvider>>>,
    /// Each pipeline's SQL, planned on its first batch.
    prepared: HashMap<&'static str, Arc<Prepared>>,
    /// When a read last found nothing new (or the runner started): the tables' freshness.
    current_since: std::time::Instant,
    /// When to count the lag again.
    observed: tributary_ingest::Throttle,
}

type LakeTableProvider = (&'static str, Arc<dyn TableProvider>);

/// The table dead letters go to.
pub const DEAD_LETTERS: &str = "pipeline_dead_letters";

impl Runner {
    pub async fn new(
        context: &str,
        source: EventSource,
        lake: Lake,
        pipelines: Pipelines,
        options: RunnerOptions,
    ) -> Result<Runner, PipelineError> {
        let seen_generation = source.generation();
        let (progress, _) = watch::channel(0);
        let mut runner = Runner {
            context: context.to_owned(),
            source,
            lake,
            pipelines: pipelines.pipelines,
            relations: pipelines.relations,
            options,
            processed: HashMap::new(),
            committed: HashMap::new(),
            seen_generation,
            commits: 0,
            progress,
            prefetched: None,
            dead_letters: HashMap::new(),
            lake_tables: None,
            prepared: HashMap::new(),
            current_since: std::time::Instant::now(),
            observed: tributary_ingest::Throttle::new(tributary_ingest::LAG_INTERVAL),
        };
        if matches!(runner.source, EventSource::Store(_)) {
            let cursor = runner.feed_cursor().await?;
            runner.progress.send_replace(cursor);
        }
        Ok(runner)
    }

    /// Changes the most events read per micro-batch from the next step on.
    pub fn set_batch_events_max(&mut self, events: usize) {
        self.options.batch_events_max = events.max(1);
    }

    /// The feed cursor up to which every pipeline has processed the feed.
    pub fn progress(&self) -> watch::Receiver<i64> {
        self.progress.subscribe()
    }

    async fn stream_progress(
        &mut self,
        pipeline: &Pipeline,
        stream: &str,
    ) -> Result<StreamProgress, PipelineError> {
        let key = (pipeline.table, stream.to_owned());
        if let Some(known) = self.processed.get(&key) {
            return Ok(*known);
        }
        let recorded = StreamProgress {
            position: self
                .lake
                .txn_version(pipeline.table, &pipeline.app_id(stream))
                .await?,
            relay_sequence: if stream == FEED_STREAM {
                None
            } else {
                self.lake
                    .txn_version(pipeline.table, &pipeline.relay_sequence_app_id(stream))
                    .await?
            },
        };
        self.processed.insert(key.clone(), recorded);
        self.committed.insert(key, recorded);
        Ok(recorded)
    }

    /// The lowest feed cursor any table has processed.
    async fn feed_cursor(&mut self) -> Result<i64, PipelineError> {
        let mut lowest = i64::MAX;
        for pipeline in self.pipelines.clone() {
            let progress = self.stream_progress(&pipeline, FEED_STREAM).await?;
            lowest = lowest.min(progress.position.unwrap_or(0));
        }
        Ok(if lowest == i64::MAX { 0 } else { lowest })
    }

    /// Processes one micro-batch (and, when some tables lag behind the others, one batch of
    /// their backfill); returns how many events it read (0 when caught up).
    ///
    /// A batch is decoded once for all its pipelines, the pipelines run their SQL and commit
    /// concurrently (each to its own table), and the next batch is read meanwhile.
    pub async fn step(&mut self) -> Result<usize, PipelineError> {
        // Between batches: a group sharing partitions through PostgreSQL takes its share.
        self.source.rebalance().await;
        let generation = self.source.generation();
        if generation != self.seen_generation {
            self.processed.clear();
            self.committed.clear();
            self.dead_letters.clear();
            self.seen_generation = generation;
        }
        let all: Vec<Pipeline> = self.pipelines.clone();
        let (live, lagging, from) = match self.source {
            EventSource::Store(_) => {
                let mut positions = Vec::with_capacity(all.len());
                for pipeline in &all {
                    let progress = self.stream_progress(pipeline, FEED_STREAM).await?;
                    positions.push(progress.position.unwrap_or(0));
                }
                let lead = positions.iter().copied().max().unwrap_or(0);
                let (live, lagging): (Vec<_>, Vec<_>) = all
                    .into_iter()
                    .zip(positions)
                    .partition(|(_, position)| *position == lead);
                (
                    live.into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
                    lagging,
                    lead,
                )
            }
            EventSource::Kafka(_) => (all, Vec::new(), 0),
        };
        let events = match self.prefetched.take() {
            Some(events) => events,
            None => {
                self.source
                    .read(from, self.options.batch_events_max)
                    .await?
            }
        };
        let undecodable = self.source.take_undecodable();
        let mut read = events.len();
        if !events.is_empty() || !undecodable.is_empty() {
            let span = batch_span(&self.context, &events);
            self.process(&live, &events, &undecodable, true)
                .instrument(span)
                .await?;
        }
        if let Some(backfill_from) = lagging.iter().map(|(_, position)| *position).min() {
            let backfill = self
                .source
                .read(backfill_from, self.options.batch_events_max)
                .await?;
            let lagging: Vec<Pipeline> = lagging.into_iter().map(|(p, _)| p).collect();
            read += backfill.len();
            if !backfill.is_empty() {
                self.process(&lagging, &backfill, &[], false).await?;
            }
        }
        if matches!(self.source, EventSource::Store(_)) {
            let cursor = self.feed_cursor().await?;
            self.progress.send_replace(cursor);
        }
        Ok(read)
    }

    /// Runs `pipelines` over `events`. The leading batch also files dead letters (a backfill
    /// reads events the leading tables already filed) and prefetches the next batch.
    async fn process(
        &mut self,
        pipelines: &[Pipeline],
        events: &[SourcedEvent],
        undecodable: &[Undecodable],
        leading: bool,
    ) -> Result<(), PipelineError> {
        let streams: BTreeSet<&str> = events.iter().map(|e| e.stream.as_str()).collect();
        let mut work = Vec::with_capacity(pipelines.len());
        for pipeline in pipelines {
            let mut before = BTreeMap::new();
            for &stream in &streams {
                before.insert(
                    stream.to_owned(),
                    self.stream_progress(pipeline, stream).await?,
                );
            }
            let (selected, after) = select_new(events, &before);
            let markers = self.markers(pipeline, &after);
            work.push((pipeline.clone(), selected, after, markers));
        }
        // Decoded once per distinct selection (normally one: every table is at the same place).
        let mut decoded: Vec<(&[usize], Arc<Sources>)> = Vec::new();
        let mut rejected: BTreeMap<(usize, &'static str), String> = BTreeMap::new();
        let mut jobs = Vec::new();
        for (index, (pipeline, selected, _, markers)) in work.iter().enumerate() {
            if selected.is_empty() {
                continue;
            }
            let sources = match decoded.iter().find(|(s, _)| *s == selected.as_slice()) {
                Some((_, sources)) => sources.clone(),
                None => {
                    let envelopes: Vec<&EventEnvelope> =
                        selected.iter().map(|&i| &*events[i].envelope).collect();
                    let (sources, rejections) = sources::decode(&self.relations, &envelopes)?;
                    for rejection in rejections {
                        rejected.insert(
                            (selected[rejection.event], rejection.relation),
                            rejection.error,
                        );
                    }
                    let sources = Arc::new(sources);
                    decoded.push((selected.as_slice(), sources.clone()));
                    sources
                }
            };
            // A batch that gave the relations no rows gives the tables none either (their SQL
            // reads the micro-batch): no query to plan, as for another context's events.
            if sources.iter().all(|(_, batch)| batch.num_rows() == 0) {
                continue;
            }
            jobs.push((index, pipeline, sources, markers));
        }
        if leading {
            self.file_dead_letters(events, &rejected, undecodable)
                .await?;
        } else if !rejected.is_empty() {
            tracing::warn!(
                context = %self.context, count = rejected.len(),
                "a backfill left out events its relations cannot decode"
            );
        }
        let mut prepared = Vec::with_capacity(jobs.len());
        for (_, pipeline, sources, _) in &jobs {
            prepared.push(self.prepared(pipeline, sources).await?);
        }
        let jobs = jobs.into_iter().zip(prepared);
        let mut wrote = vec![false; work.len()];
        if let Some(limit) = self.options.fault_after_commits {
            // Tests only: one table at a time, so the fault lands between two commits.
            for ((index, pipeline, sources, markers), prepared) in jobs {
                let rows = run_sql(pipeline, &prepared, &sources, &self.lake).await?;
                if rows.is_empty() {
                    continue;
                }
                if self.commits >= limit {
                    return Err(PipelineError::InjectedFault {
                        commits: self.commits,
                    });
                }
                self.lake.append(pipeline.table, rows, markers).await?;
                self.commits += 1;
                wrote[index] = true;
            }
        } else {
            let lake = &self.lake;
            let commits = futures::future::try_join_all(jobs.map(
                |((index, pipeline, sources, markers), prepared)| async move {
                    let rows = run_sql(pipeline, &prepared, &sources, lake).await?;
                    if rows.is_empty() {
                        return Ok::<_, PipelineError>(None);
                    }
                    lake.append(pipeline.table, rows, markers).await?;
                    Ok(Some(index))
                },
            ));
            // The next batch of the feed starts where this one ends: every leading table is
            // there once this step succeeds. (Kafka's client fetches ahead on its own.)
            let prefetch_from = match self.source {
                EventSource::Store(_) if leading => events.last().map(|e| e.position),
                _ => None,
            };
            let (source, events_max) = (&mut self.source, self.options.batch_events_max);
            let prefetch = async move {
                match prefetch_from {
                    Some(from) => source.read(from, events_max).await.ok(),
                    None => None,
                }
            };
            let (committed, prefetched) = tokio::join!(commits, prefetch);
            for index in committed?.into_iter().flatten() {
                wrote[index] = true;
                self.commits += 1;
            }
            // A failed read is simply repeated by the next step.
            if leading {
                self.prefetched = prefetched;
            }
        }
        for ((pipeline, _, after, _), wrote) in work.into_iter().zip(wrote) {
            if wrote {
                for (stream, progress) in &after {
                    self.committed
                        .insert((pipeline.table, stream.clone()), *progress);
                }
            }
            // Nothing written still advances the table in memory; after a restart the events
            // are read again and again produce nothing.
            self.remember(&pipeline, after);
        }
        Ok(())
    }

    fn dead_letter_app_id(&self, stream: &str) -> String {
        format!("tributary-dead-letters-{}-{stream}", self.context)
    }

    /// Appends the batch's dead letters not filed yet, before any table moves past them.
    async fn file_dead_letters(
        &mut self,
        events: &[SourcedEvent],
        rejected: &BTreeMap<(usize, &'static str), String>,
        undecodable: &[Undecodable],
    ) -> Result<(), PipelineError> {
        if rejected.is_empty() && undecodable.is_empty() {
            return Ok(());
        }
        let mut letters = Vec::new();
        for ((index, relation), error) in rejected {
            let event = &events[*index];
            letters.push(DeadLetter {
                relation: Some(relation),
                stream: &event.stream,
                position: event.position,
                envelope: Some(&*event.envelope),
                payload: event.envelope.payload.to_string(),
                error,
            });
        }
        for message in undecodable {
            letters.push(DeadLetter {
                relation: None,
                stream: &message.stream,
                position: message.position,
                envelope: None,
                payload: message.payload.clone(),
                error: &message.error,
            });
        }
        let mut filed: BTreeMap<String, Option<i64>> = BTreeMap::new();
        for letter in &letters {
            if !filed.contains_key(letter.stream) {
                let recorded = match self.dead_letters.get(letter.stream) {
                    Some(known) => *known,
                    None => {
                        self.lake
                            .txn_version(DEAD_LETTERS, &self.dead_letter_app_id(letter.stream))
                            .await?
                    }
                };
                filed.insert(letter.stream.to_owned(), recorded);
            }
        }
        letters.retain(|l| filed[l.stream].is_none_or(|done| l.position > done));
        if letters.is_empty() {
            return Ok(());
        }
        let mut markers = Vec::new();
        let mut after = filed.clone();
        for letter in &letters {
            let position = after.entry(letter.stream.to_owned()).or_default();
            *position = Some(position.map_or(letter.position, |p| p.max(letter.position)));
        }
        for (stream, position) in &after {
            if let Some(version) = position.filter(|p| Some(*p) != filed[stream]) {
                markers.push(Progress {
                    app_id: self.dead_letter_app_id(stream),
                    expected: filed[stream],
                    version,
                });
            }
        }
        tracing::warn!(context = %self.context, count = letters.len(), "events to the dead letters");
        let batch = dead_letter_rows(&self.context, &letters)?;
        self.lake
            .append(DEAD_LETTERS, vec![batch], &markers)
            .await?;
        self.dead_letters.extend(after);
        Ok(())
    }

    /// Every lake table, for the pipelines' SQL to join (read at its newest version).
    async fn lake_tables(&mut self) -> Result<Arc<Vec<LakeTableProvider>>, PipelineError> {
        if let Some(tables) = &self.lake_tables {
            return Ok(tables.clone());
        }
        let mut tables = Vec::new();
        for definition in self.lake.definitions() {
            let table = LiveTable::open(&self.lake, definition.name).await?;
            tables.push((definition.name, Arc::new(table) as Arc<dyn TableProvider>));
        }
        let tables = Arc::new(tables);
        self.lake_tables = Some(tables.clone());
        Ok(tables)
    }

    /// `pipeline`'s SQL planned over these source relations, once per runner.
    async fn prepared(
        &mut self,
        pipeline: &Pipeline,
        sources: &Sources,
    ) -> Result<Arc<Prepared>, PipelineError> {
        if let Some(prepared) = self.prepared.get(pipeline.table) {
            return Ok(prepared.clone());
        }
        let lake_tables = self.lake_tables().await?;
        let prepared = Arc::new(
            Prepared::new(pipeline, sources, &lake_tables)
                .await
                .map_err(|source| PipelineError::Sql {
                    table: pipeline.table,
                    source,
                })?,
        );
        self.prepared.insert(pipeline.table, prepared.clone());
        Ok(prepared)
    }

    /// The `txn` markers a commit of `pipeline` carries to move its streams to `after`, each
    /// expecting what the Delta log holds now.
    fn markers(
        &self,
        pipeline: &Pipeline,
        after: &BTreeMap<String, StreamProgress>,
    ) -> Vec<Progress> {
        let mut markers = Vec::new();
        for (stream, progress) in after {
            let committed = self
                .committed
                .get(&(pipeline.table, stream.clone()))
                .copied()
                .unwrap_or_default();
            if let Some(position) = progress.position.filter(|p| Some(*p) != committed.position) {
                markers.push(Progress {
                    app_id: pipeline.app_id(stream),
                    expected: committed.position,
                    version: position,
                });
            }
            if let Some(sequence) = progress
                .relay_sequence
                .filter(|s| Some(*s) != committed.relay_sequence)
            {
                markers.push(Progress {
                    app_id: pipeline.relay_sequence_app_id(stream),
                    expected: committed.relay_sequence,
                    version: sequence,
                });
            }
        }
        markers
    }

    fn remember(&mut self, pipeline: &Pipeline, after: BTreeMap<String, StreamProgress>) {
        for (stream, progress) in after {
            self.processed.insert((pipeline.table, stream), progress);
        }
    }

    /// Sets the gauges of a step's outcome: events processed, the tables' freshness (0 once a
    /// read found nothing new, otherwise the seconds since that last happened) and the events
    /// still to read (at most every [`tributary_ingest::LAG_INTERVAL`]).
    async fn observe(&mut self, stepped: &Result<usize, PipelineError>) {
        let caught_up = matches!(stepped, Ok(0));
        if let Ok(read) = stepped {
            metrics::counter!(names::PIPELINE_EVENTS, "pipeline" => self.context.clone())
                .increment(*read as u64);
        }
        if caught_up {
            self.current_since = std::time::Instant::now();
        }
        let behind = self.current_since.elapsed().as_secs_f64();
        for pipeline in &self.pipelines {
            metrics::gauge!(names::LAKE_FRESHNESS, "table" => pipeline.table).set(behind);
        }
        let lag = if caught_up {
            Ok(Some(0))
        } else if self.observed.due() {
            let cursor = *self.progress.borrow();
            self.source.lag(cursor).await
        } else {
            Ok(None)
        };
        match lag {
            Ok(Some(lag)) => {
                metrics::gauge!(names::PIPELINE_LAG, "pipeline" => self.context.clone())
                    .set(lag as f64)
            }
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(context = %self.context, error = %error, "counting the lag failed")
            }
        }
    }

    /// Runs until caught up with the source.
    pub async fn catch_up(&mut self) -> Result<(), PipelineError> {
        while self.step().await? > 0 {}
        Ok(())
    }

    /// Runs until `shutdown` turns true. Errors are logged and retried: the database, the
    /// broker or the lake may be away for a while, and progress lives in the lake.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut wake = self.source.wake();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let started = tokio::time::Instant::now();
            let stepped = self.step().await;
            self.observe(&stepped).await;
            let wait_ms = match stepped {
                Ok(0) => self.options.poll_interval_ms,
                Ok(read) => {
                    let next = started + self.options.batch_interval_min;
                    if read < self.options.batch_events_max && next > tokio::time::Instant::now() {
                        tokio::select! {
                            _ = tokio::time::sleep_until(next) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                    continue;
                }
                Err(PipelineError::InjectedFault { .. }) => return,
                // Nothing was read: the source keeps its position.
                Err(error @ PipelineError::Source(_)) => {
                    tracing::warn!(error = %error, "reading events failed; retrying");
                    self.options.retry_interval_ms
                }
                // A batch was read but not (fully) committed: reload progress from Delta and
                // read again from there.
                Err(error) => {
                    tracing::warn!(error = %error, "pipeline batch not committed; resuming from Delta");
                    self.processed.clear();
                    self.committed.clear();
                    self.dead_letters.clear();
                    self.prefetched = None;
                    self.source.rewind().await;
                    self.options.retry_interval_ms
                }
            };
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Traced batches link at most this many of their events' traces.
const BATCH_LINKS_MAX: usize = 32;

/// A span for one micro-batch: a child of the first traced event's trace (a posting's trace
/// then shows the batch that put it into the lake), linked to the next ones.
fn batch_span(context: &str, events: &[SourcedEvent]) -> tracing::Span {
    let span = tracing::info_span!(
        "pipeline batch",
        context,
        events = events.len(),
        trace_id = tracing::field::Empty
    );
    let mut traced = events
        .iter()
        .filter_map(|event| event.envelope.metadata.traceparent.as_deref());
    telemetry::continue_trace(&span, traced.next());
    for traceparent in traced.take(BATCH_LINKS_MAX) {
        telemetry::link_trace(&span, Some(traceparent));
    }
    span
}

/// The events a table has not seen yet, and its progress after them. A feed transaction's
/// events share one position, so only positions strictly above the table's are new; Kafka
/// repeats from the relay carry a relay sequence at or below the highest seen.
fn select_new(
    events: &[SourcedEvent],
    before: &BTreeMap<String, StreamProgress>,
) -> (Vec<usize>, BTreeMap<String, StreamProgress>) {
    let mut after = before.clone();
    let mut selected = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let start = before.get(&event.stream).copied().unwrap_or_default();
        if start.position.is_some_and(|done| event.position <= done) {
            continue;
        }
        if !after.contains_key(&event.stream) {
            after.insert(event.stream.clone(), StreamProgress::default());
        }
        let Some(progress) = after.get_mut(&event.stream) else {
            continue;
        };
        progress.position = Some(
            progress
                .position
                .map_or(event.position, |p| p.max(event.position)),
        );
        if let Some(sequence) = event.relay_sequence {
            if progress
                .relay_sequence
                .is_some_and(|highest| sequence <= highest)
            {
                continue;
            }
            progress.relay_sequence = Some(sequence);
        }
        selected.push(index);
    }
    (selected, after)
}

/// An event (or message) filed as a dead letter.
struct DeadLetter<'a> {
    relation: Option<&'static str>,
    stream: &'a str,
    position: i64,
    envelope: Option<&'a EventEnvelope>,
    payload: String,
    error: &'a str,
}

fn dead_letter_rows(
    context: &str,
    letters: &[DeadLetter<'_>],
) -> Result<RecordBatch, PipelineError> {
    use datafusion::arrow::array::{
        ArrayRef, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    let now = chrono::Utc::now().timestamp_micros();
    let text = |f: &dyn Fn(&DeadLetter<'_>) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(letters.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|_| Some(context.to_owned())),
        text(&|l| l.relation.map(str::to_owned)),
        text(&|l| Some(l.stream.to_owned())),
        Arc::new(Int64Array::from(
            letters.iter().map(|l| l.position).collect::<Vec<_>>(),
        )),
        text(&|l| l.envelope.map(|e| e.id.to_string())),
        text(&|l| l.envelope.map(|e| e.event_type.clone())),
        Arc::new(Int32Array::from(
            letters
                .iter()
                .map(|l| l.envelope.map(|e| e.event_version))
                .collect::<Vec<_>>(),
        )),
        text(&|l| l.envelope.map(|e| e.aggregate_type.clone())),
        text(&|l| l.envelope.map(|e| e.aggregate_id.clone())),
        text(&|l| Some(l.payload.clone())),
        text(&|l| Some(l.error.to_owned())),
        Arc::new(TimestampMicrosecondArray::from(vec![now; letters.len()]).with_timezone("UTC")),
    ];
    RecordBatch::try_new(
        tributary_lakehouse::catalog::pipeline_dead_letters().schema,
        columns,
    )
    .map_err(|e| PipelineError::Output {
        table: DEAD_LETTERS,
        column: String::new(),
        reason: e.to_string(),
    })
}

use crate::sources::Sources;

/// One pipeline's SQL planned once: a session holding the lake tables and an in-memory table
/// per source relation, and the SQL's logical plan. A batch puts its rows into those tables,
/// then optimizes and runs the plan, instead of building a session and parsing the SQL per
/// batch and pipeline (the pipelines' SQL was a tenth of their process's time while posting,
/// building the session alone 1.4% of that time). The plan is optimized per batch all the
/// same, so functions such as `now()` stay the batch's own.
struct Prepared {
    context: SessionContext,
    sources: Vec<(&'static str, Arc<MemTable>)>,
    plan: LogicalPlan,
}

impl Prepared {
    async fn new(
        pipeline: &Pipeline,
        sources: &Sources,
        lake_tables: &[LakeTableProvider],
    ) -> Result<Prepared, DataFusionError> {
        let context = SessionContext::new();
        for (name, table) in lake_tables {
            context.register_table(*name, table.clone())?;
        }
        let mut tables = Vec::with_capacity(sources.len());
        for (name, batch) in sources {
            let table = Arc::new(MemTable::try_new(batch.schema(), vec![Vec::new()])?);
            context.register_table(*name, table.clone())?;
            tables.push((*name, table));
        }
        let plan = context.state().create_logical_plan(pipeline.sql).await?;
        Ok(Prepared {
            context,
            sources: tables,
            plan,
        })
    }

    /// The SQL's rows over `sources` (the batch's rows of each relation).
    async fn run(&self, sources: &Sources) -> Result<Vec<RecordBatch>, DataFusionError> {
        for (name, table) in &self.sources {
            let rows = sources
                .iter()
                .filter(|(relation, _)| relation == name)
                .map(|(_, batch)| batch.clone())
                .collect();
            *table.batches[0].write().await = rows;
        }
        let result = match self.context.execute_logical_plan(self.plan.clone()).await {
            Ok(frame) => frame.collect().await,
            Err(error) => Err(error),
        };
        for (_, table) in &self.sources {
            table.batches[0].write().await.clear();
        }
        result
    }
}

/// Runs one pipeline's SQL over the decoded events and conforms the result to its table;
/// empty when the SQL produced no rows.
async fn run_sql(
    pipeline: &Pipeline,
    prepared: &Prepared,
    sources: &Sources,
    lake: &Lake,
) -> Result<Vec<RecordBatch>, PipelineError> {
    let batches = prepared
        .run(sources)
        .await
        .map_err(|source| PipelineError::Sql {
            table: pipeline.table,
            source,
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, position: i64, relay_sequence: Option<i64>) -> SourcedEvent {
        let envelope = EventEnvelope {
            id: uuid::Uuid::new_v4(),
            context: "test".into(),
            aggregate_type: "thing".into(),
            aggregate_id: "a".into(),
            sequence: 1,
            event_type: "ThingHappened".into(),
            event_version: 1,
            source: "/tributary/test".into(),
            time: chrono::Utc::now(),
            position,
            cursor: position,
            payload: serde_json::json!({}),
            metadata: Default::default(),
        };
        SourcedEvent {
            envelope: Arc::new(envelope),
            stream: stream.into(),
            position,
            relay_sequence,
        }
    }

    #[test]
    fn only_new_positions_and_unseen_relay_sequences_are_selected() {
        let before: BTreeMap<String, StreamProgress> = [(
            "t-0".to_owned(),
            StreamProgress {
                position: Some(10),
                relay_sequence: Some(7),
            },
        )]
        .into_iter()
        .collect();
        let events = vec![
            event("t-0", 9, Some(6)),  // already in the table
            event("t-0", 11, Some(7)), // a relay repeat of sequence 7
            event("t-0", 12, Some(8)), // new
            event("t-0", 13, Some(8)), // a repeat inside the batch
            event("t-1", 0, Some(1)),  // a stream seen for the first time
        ];
        let (selected, after) = select_new(&events, &before);
        assert_eq!(
            selected
                .iter()
                .map(|&i| events[i].position)
                .collect::<Vec<_>>(),
            vec![12, 0]
        );
        assert_eq!(
            after["t-0"],
            StreamProgress {
                position: Some(13),
                relay_sequence: Some(8)
            }
        );
        assert_eq!(
            after["t-1"],
            StreamProgress {
                position: Some(0),
                relay_sequence: Some(1)
            }
        );
    }

    #[tokio::test]
    async fn a_prepared_pipeline_reads_each_batch_s_rows_only() {
        use datafusion::arrow::array::{Array, Int64Array};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let rows = |values: Vec<i64>| -> Sources {
            vec![(
                "numbers",
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])
                    .expect("batch"),
            )]
        };
        let pipeline = Pipeline {
            table: "totals",
            sql: "SELECT sum(n) AS total, count(*) AS lines FROM numbers",
        };
        let totals = |batches: Vec<RecordBatch>| -> (Option<i64>, i64) {
            let column = |name: &str| {
                batches[0]
                    .column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
                    .expect("an Int64 column")
            };
            let (total, lines) = (column("total"), column("lines"));
            ((!total.is_null(0)).then(|| total.value(0)), lines.value(0))
        };
        let first = rows(vec![1, 2]);
        let prepared = Prepared::new(&pipeline, &first, &[])
            .await
            .expect("planned");
        assert_eq!(
            totals(prepared.run(&first).await.expect("run")),
            (Some(3), 2)
        );
        // The next batch's rows replace the last one's.
        let second = rows(vec![10]);
        assert_eq!(
            totals(prepared.run(&second).await.expect("run")),
            (Some(10), 1)
        );
        assert_eq!(
            totals(prepared.run(&rows(Vec::new())).await.expect("run")),
            (None, 0)
        );
        // Nothing of a batch stays in the session after it ran.
        for (_, table) in &prepared.sources {
            assert!(table.batches[0].try_read().expect("unlocked").is_empty());
        }
    }

    #[test]
    fn feed_transactions_share_a_position_and_are_taken_whole() {
        let before: BTreeMap<String, StreamProgress> = [(
            FEED_STREAM.to_owned(),
            StreamProgress {
                position: Some(5),
                relay_sequence: None,
            },
        )]
        .into_iter()
        .collect();
        let events = vec![
            event(FEED_STREAM, 5, None),
            event(FEED_STREAM, 6, None),
            event(FEED_STREAM, 6, None),
        ];
        let (selected, after) = select_new(&events, &before);
        assert_eq!(selected.len(), 2);
        assert_eq!(after[FEED_STREAM].position, Some(6));
    }
}
