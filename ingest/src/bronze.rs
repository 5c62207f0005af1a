//! Bronze ingest: every Kafka message into Delta, exactly once per topic partition offset.
//!
//! ```text
//!  assignment ──► read txn(tributary-bronze-<topic>-<p>) from bronze_events ──► assign at +1
//!  loop: collect messages ──► per partition: skip offsets already in Delta,
//!        decode ─┬─ ok: drop relay repeats (relay sequence <= highest seen), row for bronze_events
//!                └─ undecodable: row for bronze_dead_letters (raw key/value, error)
//!        ──► commit dead letters (+ their offsets), then events (+ offsets, relay sequence)
//! ```
//! Each commit is a compare-and-set on the partition's recorded progress, so a consumer that
//! lost a partition in a rebalance cannot commit it after its new owner did. Kafka's committed
//! offsets are never used: the Delta log is the only progress.

use crate::kafka::{self, MessageError, RelayedEvent};
use chrono::Utc;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tributary_kernel::telemetry::names;
use tributary_lakehouse::catalog;
use tributary_lakehouse::{Lake, LakeError, Progress};

pub const EVENTS: &str = "bronze_events";
pub const DEAD_LETTERS: &str = "bronze_dead_letters";

#[derive(Debug, Clone)]
pub struct BronzeOptions {
    pub brokers: String,
    pub group: String,
    /// Static group membership: this process's stable instance id.
    pub instance_id: Option<String>,
    pub topics: Vec<String>,
    pub batch_messages_max: usize,
    pub batch_wait_ms: u64,
    pub retry_interval_ms: u64,
}

impl BronzeOptions {
    pub fn new(brokers: &str, topics: Vec<String>) -> Self {
        BronzeOptions {
            brokers: brokers.to_owned(),
            group: "tributary-bronze".into(),
            instance_id: None,
            topics,
            batch_messages_max: 10_000,
            batch_wait_ms: 200,
            retry_interval_ms: 1_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BronzeError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("building rows: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

pub fn offset_app_id(topic: &str, partition: i32) -> String {
    format!("tributary-bronze-{topic}-{partition}")
}
pub fn relay_sequence_app_id(topic: &str, partition: i32) -> String {
    format!("tributary-bronze-relay-sequence-{topic}-{partition}")
}
pub fn dead_letter_app_id(topic: &str, partition: i32) -> String {
    format!("tributary-bronze-dead-letters-{topic}-{partition}")
}

/// Where a newly assigned partition starts: the last offset already recorded in Delta, if any.
pub type StartOffset =
    Arc<dyn Fn(String, i32) -> BoxFuture<'static, Result<Option<i64>, StartError>> + Send + Sync>;

/// Why a recorded offset could not be read (the lake or the database is away).
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Seeks every newly assigned partition to the offset after the one recorded in Delta, never to
/// Kafka's committed offset.
pub struct AssignFromDelta {
    start: StartOffset,
    runtime: tokio::runtime::Handle,
    /// Bumped on every rebalance: cached per-partition progress is reloaded after it changes.
    generation: Arc<AtomicU64>,
    /// The consumer group (metrics' label).
    group: String,
    /// Messages between the assigned partitions' positions and their ends, as of the last
    /// statistics (every [`kafka::STATISTICS_INTERVAL_MS`]); -1 before the first.
    lag: AtomicI64,
}

impl AssignFromDelta {
    pub fn new(start: StartOffset, group: &str) -> (AssignFromDelta, Arc<AtomicU64>) {
        let generation = Arc::new(AtomicU64::new(0));
        let context = AssignFromDelta {
            start,
            runtime: tokio::runtime::Handle::current(),
            generation: generation.clone(),
            group: group.to_owned(),
            lag: AtomicI64::new(-1),
        };
        (context, generation)
    }

    /// Messages the consumer has yet to read on its partitions (None before the first
    /// statistics).
    pub fn lag(&self) -> Option<i64> {
        let lag = self.lag.load(Ordering::Relaxed);
        (lag >= 0).then_some(lag)
    }
}

impl ClientContext for AssignFromDelta {
    /// librdkafka's statistics: the consumer lag of each assigned partition, as gauges.
    fn stats(&self, statistics: Statistics) {
        let mut total = 0;
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                // -1: not assigned here (or no position yet); partition -1 is librdkafka's own.
                if *partition < 0 || stats.consumer_lag < 0 {
                    continue;
                }
                total += stats.consumer_lag;
                metrics::gauge!(
                    names::KAFKA_LAG,
                    "group" => self.group.clone(),
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(stats.consumer_lag as f64);
            }
        }
        self.lag.store(total, Ordering::Relaxed);
    }
}

impl ConsumerContext for AssignFromDelta {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(assigned) = rebalance else {
            return;
        };
        let mut positioned = TopicPartitionList::new();
        for element in assigned.elements() {
            let (topic, partition) = (element.topic().to_owned(), element.partition());
            let start = (self.start)(topic.clone(), partition);
            // The rebalance callback is synchronous and runs inside the consumer's poll on a
            // runtime worker thread; reading the Delta log needs the runtime, so block in place.
            let recorded = tokio::task::block_in_place(|| self.runtime.block_on(start));
            let offset = match recorded {
                Ok(Some(last)) => Offset::Offset(last + 1),
                Ok(None) => Offset::Beginning,
                Err(error) => {
                    // Without the recorded offset, start from the beginning: every offset
                    // already in Delta is skipped again on read, so nothing is doubled.
                    tracing::warn!(error = %error, "reading the recorded offset failed; starting from the beginning");
                    Offset::Beginning
                }
            };
            if let Err(error) = positioned.add_partition_offset(&topic, partition, offset) {
                tracing::error!(error = %error, "building the assignment failed");
            }
        }
        if let Err(error) = consumer.assign(&positioned) {
            tracing::error!(error = %error, "assigning at the offsets recorded in Delta failed");
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// A consumer in `group` subscribed to `topics` that starts every partition after `start`.
pub fn consumer_from_delta(
    brokers: &str,
    group: &str,
    instance: Option<&str>,
    topics: &[String],
    start: StartOffset,
) -> Result<(StreamConsumer<AssignFromDelta>, Arc<AtomicU64>), rdkafka::error::KafkaError> {
    let (consumer, generation) = consumer_of(brokers, group, instance, start)?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok((consumer, generation))
}

/// A consumer in `group` that reads only the partitions assigned to it by hand
/// ([`crate::partitions`]), each from the offset its caller gives.
pub fn consumer_unsubscribed(
    brokers: &str,
    group: &str,
    start: StartOffset,
) -> Result<(StreamConsumer<AssignFromDelta>, Arc<AtomicU64>), rdkafka::error::KafkaError> {
    consumer_of(brokers, group, None, start)
}

/// The consumer both kinds share: Kafka's committed offsets unused, partitions started after
/// `start`.
fn consumer_of(
    brokers: &str,
    group: &str,
    instance: Option<&str>,
    start: StartOffset,
) -> Result<(StreamConsumer<AssignFromDelta>, Arc<AtomicU64>), rdkafka::error::KafkaError> {
    let (context, generation) = AssignFromDelta::new(start, group);
    let consumer = kafka::consumer_config(brokers, group, instance).create_with_context(context)?;
    Ok((consumer, generation))
}

/// Reads up to `max` messages, waiting at most `wait` in all; detached so they can cross awaits.
/// A consumer error after some messages were taken returns those messages (their offsets are
/// already consumed, dropping them would skip them); the error surfaces on the next call.
pub async fn receive(
    consumer: &StreamConsumer<AssignFromDelta>,
    max: usize,
    wait: Duration,
) -> Result<Vec<OwnedMessage>, rdkafka::error::KafkaError> {
    let messages = receive_some(consumer, max, wait).await?;
    let mut by_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for message in &messages {
        *by_topic.entry(message.topic()).or_default() += 1;
    }
    for (topic, count) in by_topic {
        metrics::counter!(
            names::KAFKA_CONSUMED,
            "group" => consumer.context().group.clone(),
            "topic" => topic.to_owned()
        )
        .increment(count);
    }
    Ok(messages)
}

async fn receive_some(
    consumer: &StreamConsumer<AssignFromDelta>,
    max: usize,
    wait: Duration,
) -> Result<Vec<OwnedMessage>, rdkafka::error::KafkaError> {
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while messages.len() < max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => messages.push(message.detach()),
            Ok(Err(error)) if messages.is_empty() => return Err(error),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "consumer error; handing over the messages already read");
                break;
            }
            Err(_) => break,
        }
    }
    Ok(messages)
}

/// Moves every assigned partition back to the offset after `start` (after a failed batch).
pub async fn seek_to_recorded<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    start: &StartOffset,
) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    // Plain values: the list's elements point into librdkafka and cannot cross an await.
    let assigned: Vec<(String, i32)> = assignment
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect();
    for (topic, partition) in assigned {
        let offset = match start(topic.clone(), partition).await {
            Ok(Some(last)) => Offset::Offset(last + 1),
            Ok(None) => Offset::Beginning,
            Err(_) => continue,
        };
        if let Err(error) = consumer.seek(&topic, partition, offset, Duration::from_secs(5)) {
            tracing::warn!(error = %error, topic, partition, "seek after a failed batch failed");
        }
    }
}

/// A partition's progress as recorded in Delta.
#[derive(Debug, Clone, Copy, Default)]
struct PartitionProgress {
    offset: Option<i64>,
    relay_sequence: Option<i64>,
    dead_letter_offset: Option<i64>,
}

pub struct BronzeIngest {
    lake: Lake,
    consumer: StreamConsumer<AssignFromDelta>,
    options: BronzeOptions,
    progress: ProgressCache,
    start: StartOffset,
}

fn bronze_start(lake: Lake) -> StartOffset {
    Arc::new(move |topic: String, partition: i32| {
        let lake = lake.clone();
        Box::pin(async move {
            lake.txn_version(EVENTS, &offset_app_id(&topic, partition))
                .await
                .map_err(StartError::from)
        })
    })
}

/// Per-partition progress read from Delta, dropped whenever a rebalance happened.
struct ProgressCache {
    lake: Lake,
    generation: Arc<AtomicU64>,
    seen_generation: u64,
    known: HashMap<(String, i32), PartitionProgress>,
}

impl ProgressCache {
    async fn get(&mut self, topic: &str, partition: i32) -> Result<PartitionProgress, BronzeError> {
        let generation = self.generation.load(Ordering::SeqCst);
        if generation != self.seen_generation {
            self.known.clear();
            self.seen_generation = generation;
        }
        let key = (topic.to_owned(), partition);
        if let Some(known) = self.known.get(&key) {
            return Ok(*known);
        }
        let loaded = PartitionProgress {
            offset: self
                .lake
                .txn_version(EVENTS, &offset_app_id(topic, partition))
                .await?,
            relay_sequence: self
                .lake
                .txn_version(EVENTS, &relay_sequence_app_id(topic, partition))
                .await?,
            dead_letter_offset: self
                .lake
                .txn_version(DEAD_LETTERS, &dead_letter_app_id(topic, partition))
                .await?,
        };
        self.known.insert(key, loaded);
        Ok(loaded)
    }
}

impl BronzeIngest {
    pub fn new(lake: Lake, options: BronzeOptions) -> Result<BronzeIngest, BronzeError> {
        let start = bronze_start(lake.clone());
        let (consumer, generation) = consumer_from_delta(
            &options.brokers,
            &options.group,
            options.instance_id.as_deref(),
            &options.topics,
            start.clone(),
        )?;
        let progress = ProgressCache {
            lake: lake.clone(),
            generation,
            seen_generation: 0,
            known: HashMap::new(),
        };
        Ok(BronzeIngest {
            lake,
            consumer,
            options,
            progress,
            start,
        })
    }

    /// Waits for messages and ingests one batch; returns how many messages it read.
    pub async fn step(&mut self, wait: Duration) -> Result<usize, BronzeError> {
        let messages = receive(&self.consumer, self.options.batch_messages_max, wait).await?;
        let read = messages.len();
        if read == 0 {
            return Ok(0);
        }
        // Group by partition, in offset order (after a seek, messages fetched before it may
        // come ahead of the earlier offsets read again).
        let mut by_partition: BTreeMap<(String, i32), Vec<&OwnedMessage>> = BTreeMap::new();
        for message in &messages {
            by_partition
                .entry((message.topic().to_owned(), message.partition()))
                .or_default()
                .push(message);
        }
        for list in by_partition.values_mut() {
            list.sort_by_key(|message| message.offset());
        }
        let mut events = EventRows::default();
        let mut dead = DeadLetterRows::default();
        let mut event_progress = Vec::new();
        let mut dead_progress = Vec::new();
        let mut updates = Vec::new();
        let now = Utc::now();
        // Collect progress first (it needs &mut self), then rows.
        let mut states = Vec::new();
        for (topic, partition) in by_partition.keys() {
            states.push(self.progress.get(topic, *partition).await?);
        }
        for (((topic, partition), list), before) in by_partition.iter().zip(states) {
            let mut after = before;
            let mut dead_here = false;
            for message in list {
                let offset = message.offset();
                if before.offset.is_some_and(|done| offset <= done) {
                    continue;
                }
                after.offset = Some(offset);
                match kafka::decode(*message) {
                    Ok(relayed) => {
                        // `after` starts at the recorded progress and only grows.
                        if after
                            .relay_sequence
                            .is_some_and(|hwm| relayed.relay_sequence <= hwm)
                        {
                            continue; // a relay repeat of an event already ingested
                        }
                        after.relay_sequence = Some(relayed.relay_sequence);
                        events.push(topic, *partition, offset, &relayed, now);
                    }
                    Err(error) => {
                        if before.dead_letter_offset.is_some_and(|done| offset <= done) {
                            continue;
                        }
                        dead_here = true;
                        after.dead_letter_offset = Some(offset);
                        dead.push(topic, *partition, offset, message, &error, now);
                    }
                }
            }
            if after.offset == before.offset {
                continue;
            }
            if dead_here {
                dead_progress.push(Progress {
                    app_id: dead_letter_app_id(topic, *partition),
                    expected: before.dead_letter_offset,
                    version: after.dead_letter_offset.unwrap_or_default(),
                });
            }
            event_progress.push(Progress {
                app_id: offset_app_id(topic, *partition),
                expected: before.offset,
                version: after.offset.unwrap_or_default(),
            });
            if let Some(sequence) = after.relay_sequence {
                event_progress.push(Progress {
                    app_id: relay_sequence_app_id(topic, *partition),
                    expected: before.relay_sequence,
                    version: sequence,
                });
            }
            updates.push(((topic.clone(), *partition), after));
        }
        if event_progress.is_empty() {
            return Ok(read);
        }
        let result = async {
            if !dead_progress.is_empty() {
                self.lake
                    .append(DEAD_LETTERS, vec![dead.finish()?], &dead_progress)
                    .await?;
            }
            self.lake
                .append(EVENTS, vec![events.finish()?], &event_progress)
                .await?;
            Ok::<(), BronzeError>(())
        }
        .await;
        match result {
            Ok(()) => {
                for (key, after) in updates {
                    self.progress.known.insert(key, after);
                }
                Ok(read)
            }
            Err(error) => {
                // Reload progress from Delta before the next batch, whatever failed.
                self.progress.known.clear();
                Err(error)
            }
        }
    }

    /// Runs until `shutdown` turns true; errors are logged and the batch is read again.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let wait = Duration::from_millis(self.options.batch_wait_ms);
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                result = self.step(wait) => {
                    match result {
                        Ok(_) => {}
                        // The batch was read but not committed: read it again from Delta's offsets.
                        Err(error @ (BronzeError::Lake(_) | BronzeError::Arrow(_))) => {
                            tracing::warn!(error = %error, "bronze ingest batch not committed; resuming from Delta");
                            seek_to_recorded(&self.consumer, &self.start).await;
                            tokio::time::sleep(Duration::from_millis(self.options.retry_interval_ms)).await;
                        }
                        // Broker trouble: the consumer keeps its position and reconnects by itself.
                        Err(error) => {
                            tracing::warn!(error = %error, "bronze ingest: consumer error; retrying");
                            tokio::time::sleep(Duration::from_millis(self.options.retry_interval_ms)).await;
                        }
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[derive(Default)]
struct EventRows {
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    event_id: StringBuilder,
    event_type: StringBuilder,
    event_version: Int32Builder,
    aggregate_type: StringBuilder,
    aggregate_id: StringBuilder,
    sequence: Int64Builder,
    position: Int64Builder,
    relay_sequence: Int64Builder,
    source: StringBuilder,
    time: TimestampMicrosecondBuilder,
    payload: StringBuilder,
    metadata: StringBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    context: StringBuilder,
    event_date: Date32Builder,
}

impl EventRows {
    fn push(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        relayed: &RelayedEvent,
        now: chrono::DateTime<Utc>,
    ) {
        let event = &relayed.envelope;
        self.topic.append_value(topic);
        self.partition.append_value(partition);
        self.offset.append_value(offset);
        self.event_id.append_value(event.id.to_string());
        self.event_type.append_value(&event.event_type);
        self.event_version.append_value(event.event_version);
        self.aggregate_type.append_value(&event.aggregate_type);
        self.aggregate_id.append_value(&event.aggregate_id);
        self.sequence.append_value(event.sequence);
        self.position.append_value(event.position);
        self.relay_sequence.append_value(relayed.relay_sequence);
        self.source.append_value(&event.source);
        self.time.append_value(event.time.timestamp_micros());
        self.payload.append_value(event.payload.to_string());
        self.metadata
            .append_value(serde_json::to_string(&event.metadata).unwrap_or_else(|_| "{}".into()));
        self.ingested_at.append_value(now.timestamp_micros());
        self.context.append_value(&event.context);
        self.event_date
            .append_value(catalog::date32(event.time.date_naive()));
    }

    fn finish(&mut self) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.event_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.event_version.finish()),
            Arc::new(self.aggregate_type.finish()),
            Arc::new(self.aggregate_id.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(self.position.finish()),
            Arc::new(self.relay_sequence.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.time.finish().with_timezone("UTC")),
            Arc::new(self.payload.finish()),
            Arc::new(self.metadata.finish()),
            Arc::new(self.ingested_at.finish().with_timezone("UTC")),
            Arc::new(self.context.finish()),
            Arc::new(self.event_date.finish()),
        ];
        RecordBatch::try_new(catalog::bronze_events().schema, columns)
    }
}

#[derive(Default)]
struct DeadLetterRows {
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    key: BinaryBuilder,
    value: BinaryBuilder,
    error: StringBuilder,
    received_at: TimestampMicrosecondBuilder,
}

impl DeadLetterRows {
    fn push(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        message: &OwnedMessage,
        error: &MessageError,
        now: chrono::DateTime<Utc>,
    ) {
        self.topic.append_value(topic);
        self.partition.append_value(partition);
        self.offset.append_value(offset);
        self.key.append_option(message.key());
        self.value.append_option(message.payload());
        self.error.append_value(error.to_string());
        self.received_at.append_value(now.timestamp_micros());
    }

    fn finish(&mut self) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.received_at.finish().with_timezone("UTC")),
        ];
        RecordBatch::try_new(catalog::bronze_dead_letters().schema, columns)
    }
}
