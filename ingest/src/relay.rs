//! The relay: every stored event onto Kafka, in feed order, at least once.
//!
//! ```text
//!  lease (one active relay; standbys wait) ─► position (cursor, next relay sequence)
//!     loop: read_feed(cursor) ─► produce all (key = aggregate id) ─► await every ack
//!           ─► save position(batch cursor, sequence + n)
//! ```
//! A crash after producing and before saving republishes the batch with the same relay
//! sequence numbers (the feed after a cursor never changes), so consumers drop repeats by the
//! highest relay sequence they processed per partition. The feed never skips a late commit
//! (the event store's guarantee); the idempotent producer keeps one partition's order.

use crate::kafka::{self, topic_for};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;
use tributary_kernel::store::{EventStore, RelayPosition, StoreError};
use tributary_kernel::telemetry::{self, names};

/// The lag is counted up to this many events (beyond, it shows this many).
pub const LAG_COUNT_MAX: i64 = 1_000_000;

#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub brokers: String,
    /// Name of this relay's position and lease; instances with the same name share one.
    pub name: String,
    /// Prefix of every topic name (`<prefix><context>.events`); empty in production, unique
    /// per test.
    pub topic_prefix: String,
    /// Partitions of topics the relay creates.
    pub partitions: i32,
    pub batch_events_max: usize,
    pub poll_interval_ms: u64,
    pub retry_interval_ms: u64,
}

impl RelayOptions {
    pub fn new(brokers: &str) -> Self {
        RelayOptions {
            brokers: brokers.to_owned(),
            name: "default".into(),
            topic_prefix: String::new(),
            partitions: 3,
            batch_events_max: 5_000,
            poll_interval_ms: 100,
            retry_interval_ms: 1_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

pub struct Relay {
    store: EventStore,
    producer: FutureProducer,
    options: RelayOptions,
    topics: HashSet<String>,
    /// When to count the lag again.
    lag_counted: crate::Throttle,
}

impl Relay {
    pub fn new(store: EventStore, options: RelayOptions) -> Result<Relay, RelayError> {
        let producer: FutureProducer = kafka::producer_config(&options.brokers).create()?;
        Ok(Relay {
            store,
            producer,
            options,
            topics: HashSet::new(),
            lag_counted: crate::Throttle::new(crate::LAG_INTERVAL),
        })
    }

    fn topic(&self, context: &str) -> String {
        format!("{}{}", self.options.topic_prefix, topic_for(context))
    }

    /// Publishes one batch after the saved position; returns how many events it published.
    pub async fn step(&mut self) -> Result<usize, RelayError> {
        let position = self.store.relay_position(&self.options.name).await?;
        let batch = self
            .store
            .read_feed_shared(position.cursor, self.options.batch_events_max)
            .await?;
        if batch.events.is_empty() {
            self.set_lag(0);
            return Ok(0);
        }
        let new_topics: Vec<String> = batch
            .events
            .iter()
            .map(|e| self.topic(&e.context))
            .filter(|t| !self.topics.contains(t))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !new_topics.is_empty() {
            kafka::ensure_topics(&self.options.brokers, &new_topics, self.options.partitions)
                .await?;
            self.topics.extend(new_topics);
        }
        let mut deliveries = Vec::with_capacity(batch.events.len());
        for (index, event) in batch.events.iter().enumerate() {
            let (key, value, headers) = kafka::encode(event, position.next_sequence + index as i64);
            let topic = self.topic(&event.context);
            let producer = self.producer.clone();
            // An event appended in a trace is published in it (a span per such event).
            let span = match &event.metadata.traceparent {
                Some(traceparent) => {
                    let span = tracing::info_span!(
                        "relay publish",
                        topic = %topic,
                        event_type = %event.event_type,
                        aggregate = %event.aggregate_id,
                        trace_id = tracing::field::Empty,
                    );
                    telemetry::continue_trace(&span, Some(traceparent));
                    span
                }
                None => tracing::Span::none(),
            };
            deliveries.push(
                async move {
                    let record = FutureRecord::to(&topic)
                        .key(&key)
                        .payload(&value)
                        .headers(headers);
                    producer.send(record, Timeout::Never).await
                }
                .instrument(span),
            );
        }
        // Awaited in order; every one must be acknowledged before the position moves.
        for result in futures::future::join_all(deliveries).await {
            result.map_err(|(error, _)| error)?;
        }
        let published = batch.events.len();
        let next = RelayPosition {
            cursor: batch.cursor,
            next_sequence: position.next_sequence + published as i64,
        };
        self.store
            .save_relay_position(&self.options.name, next)
            .await?;
        metrics::counter!(names::RELAY_PUBLISHED, "relay" => self.options.name.clone())
            .increment(published as u64);
        // What is still waiting, counted at most every few seconds (0 once a read is empty).
        if self.lag_counted.due() {
            let lag = self.store.events_after(next.cursor, LAG_COUNT_MAX).await?;
            self.set_lag(lag);
        }
        Ok(published)
    }

    fn set_lag(&self, events: i64) {
        metrics::gauge!(names::RELAY_LAG, "relay" => self.options.name.clone()).set(events as f64);
    }

    /// Runs as the active relay (or waits as a standby) until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let retry = Duration::from_millis(self.options.retry_interval_ms);
        let _lease = loop {
            if *shutdown.borrow() {
                return;
            }
            match self.store.try_lease_relay(&self.options.name).await {
                Ok(Some(lease)) => break lease,
                Ok(None) => {
                    tracing::info!(relay = %self.options.name, "another relay is active; standing by")
                }
                Err(error) => tracing::warn!(error = %error, "relay lease failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => {}
            }
        };
        tracing::info!(relay = %self.options.name, "relay active");
        let mut appended = self.store.appended();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.step().await {
                Ok(0) => Duration::from_millis(self.options.poll_interval_ms),
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(error = %error, "relay step failed; retrying from the saved position");
                    retry
                }
            };
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
