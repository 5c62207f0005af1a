//! Getting events out of the event store and into the pipelines.
//!
//! - [`EventSource::Store`]: the pipelines read the event store's feed directly (embedded
//!   default, replays).
//! - [`relay`]: production publishes every stored event to Kafka (`<context>.events`).
//! - [`follower`]: reactors following the events on their own cursors.
//! - [`kafka`]: the message format on Kafka (CloudEvents binary mode) shared by producer and
//!   consumers.

pub mod bronze;
pub mod follower;
pub mod kafka;
pub mod partitions;
pub mod relay;

use bronze::{AssignFromDelta, StartOffset};
use partitions::SharedPartitions;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tributary_kernel::EventEnvelope;
use tributary_kernel::store::{EventStore, StoreError};

/// The stream name of the event store's feed; Kafka streams are `<topic>-<partition>`.
pub const FEED_STREAM: &str = "feed";

/// One event with where it came from: its stream, its position there (feed cursor or Kafka
/// offset), and for Kafka the relay sequence that marks repeats.
#[derive(Debug, Clone)]
pub struct SourcedEvent {
    /// Shared with the process's other readers of the feed.
    pub envelope: Arc<EventEnvelope>,
    pub stream: String,
    pub position: i64,
    pub relay_sequence: Option<i64>,
}

/// A Kafka message that is not an event: where it was, its bytes and why.
#[derive(Debug, Clone)]
pub struct Undecodable {
    pub stream: String,
    pub position: i64,
    /// The message value, as text (invalid UTF-8 replaced).
    pub payload: String,
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Lets something happen at most once per interval (a gauge that costs a query to read).
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<std::time::Instant>,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle { every, last: None }
    }

    /// Whether [`Throttle::due`] would answer true now (without counting it as done).
    pub fn is_due(&self) -> bool {
        self.last.is_none_or(|last| last.elapsed() >= self.every)
    }

    /// Whether the interval has passed since the last time this answered true.
    pub fn due(&mut self) -> bool {
        let due = self.is_due();
        if due {
            self.last = Some(std::time::Instant::now());
        }
        due
    }
}

/// How often followers and pipelines count their lag (a query on the feed).
pub const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Kafka as a source: a member of a consumer group whose partitions start where the recorded
/// progress says.
pub struct KafkaEvents {
    consumer: StreamConsumer<AssignFromDelta>,
    generation: Arc<AtomicU64>,
    start: StartOffset,
    wait: Duration,
    /// Messages of the last reads that were not events, until taken.
    undecodable: Vec<Undecodable>,
    /// The group's partitions shared through PostgreSQL; `None`: assigned by the broker.
    shared: Option<Box<SharedPartitions>>,
}

impl KafkaEvents {
    /// A member of `group` reading `topics`. With `share` a PostgreSQL event store, the
    /// group's processes share the partitions through it ([`partitions`]); otherwise (SQLite)
    /// the broker's group protocol assigns them.
    pub fn new(
        brokers: &str,
        group: &str,
        instance: Option<&str>,
        topics: &[String],
        start: StartOffset,
        wait: Duration,
        share: Option<&EventStore>,
    ) -> Result<KafkaEvents, SourceError> {
        let share = share.filter(|store| store.backend() == "postgres");
        let (consumer, generation) = match share {
            Some(_) => bronze::consumer_unsubscribed(brokers, group, start.clone())?,
            None => bronze::consumer_from_delta(brokers, group, instance, topics, start.clone())?,
        };
        Ok(KafkaEvents {
            consumer,
            generation,
            start,
            wait,
            undecodable: Vec::new(),
            shared: share
                .map(|store| Box::new(SharedPartitions::new(store.clone(), group, topics))),
        })
    }
}

/// Wakes a follower when new events may be available: an in-process append to the store;
/// Kafka reads wait on their own, so for it at once.
pub enum Wake {
    Appended(tokio::sync::watch::Receiver<u64>),
    Immediately,
}

impl Wake {
    pub async fn changed(&mut self) {
        match self {
            Wake::Appended(appended) => {
                if appended.changed().await.is_err() {
                    // The store is gone: nothing will wake us; the caller's timer still does.
                    std::future::pending::<()>().await;
                }
            }
            Wake::Immediately => {}
        }
    }
}

/// Where the pipelines read events from.
pub enum EventSource {
    /// The event store's feed, read directly (embedded default, and replays).
    Store(EventStore),
    /// Kafka topics in a consumer group (production).
    Kafka(KafkaEvents),
}

impl EventSource {
    /// The next events: from the feed after `feed_cursor` (ending on a transaction boundary),
    /// or the next messages of the assigned partitions. Messages that are not events are
    /// kept aside for [`EventSource::take_undecodable`].
    pub async fn read(
        &mut self,
        feed_cursor: i64,
        events_max: usize,
    ) -> Result<Vec<SourcedEvent>, SourceError> {
        match self {
            EventSource::Store(store) => {
                let batch = store.read_feed_shared(feed_cursor, events_max).await?;
                Ok(batch
                    .events
                    .into_iter()
                    .map(|envelope| SourcedEvent {
                        position: envelope.cursor,
                        envelope,
                        stream: FEED_STREAM.to_owned(),
                        relay_sequence: None,
                    })
                    .collect())
            }
            EventSource::Kafka(kafka) => {
                let messages = bronze::receive(&kafka.consumer, events_max, kafka.wait).await?;
                let mut events = Vec::with_capacity(messages.len());
                for message in messages {
                    match kafka::decode(&message) {
                        Ok(relayed) => events.push(SourcedEvent {
                            envelope: Arc::new(relayed.envelope),
                            stream: format!("{}-{}", message.topic(), message.partition()),
                            position: message.offset(),
                            relay_sequence: Some(relayed.relay_sequence),
                        }),
                        Err(error) => {
                            tracing::warn!(
                                topic = message.topic(), partition = message.partition(), offset = message.offset(), error = %error,
                                "an undecodable message goes to the dead letters"
                            );
                            kafka.undecodable.push(Undecodable {
                                stream: format!("{}-{}", message.topic(), message.partition()),
                                position: message.offset(),
                                payload: String::from_utf8_lossy(
                                    message.payload().unwrap_or_default(),
                                )
                                .into_owned(),
                                error: error.to_string(),
                            });
                        }
                    }
                }
                Ok(events)
            }
        }
    }

    /// How many events wait after `feed_cursor` (the feed), or on the assigned partitions as
    /// of the consumer's last statistics (Kafka; None before the first).
    pub async fn lag(&self, feed_cursor: i64) -> Result<Option<i64>, SourceError> {
        match self {
            EventSource::Store(store) => Ok(Some(
                store
                    .events_after(feed_cursor, relay::LAG_COUNT_MAX)
                    .await?,
            )),
            EventSource::Kafka(kafka) => {
                use rdkafka::consumer::Consumer;
                Ok(kafka.consumer.context().lag())
            }
        }
    }

    /// The messages read so far that were not events (Kafka only), taken once.
    pub fn take_undecodable(&mut self) -> Vec<Undecodable> {
        match self {
            EventSource::Store(_) => Vec::new(),
            EventSource::Kafka(kafka) => std::mem::take(&mut kafka.undecodable),
        }
    }

    /// Changes whenever partitions were reassigned: cached progress must then be reloaded.
    pub fn generation(&self) -> u64 {
        match self {
            EventSource::Store(_) => 0,
            EventSource::Kafka(kafka) => kafka.generation.load(Ordering::SeqCst),
        }
    }

    /// What tells a follower of this source that new events may be there.
    pub fn wake(&self) -> Wake {
        match self {
            EventSource::Store(store) => Wake::Appended(store.appended()),
            EventSource::Kafka(_) => Wake::Immediately,
        }
    }

    /// Between batches: a member of a group sharing its partitions through PostgreSQL takes
    /// up its share of them (at most every [`partitions::REBALANCE_INTERVAL`]).
    pub async fn rebalance(&mut self) {
        if let EventSource::Kafka(kafka) = self
            && let Some(shared) = &mut kafka.shared
        {
            shared
                .rebalance(&kafka.consumer, &kafka.start, &kafka.generation)
                .await;
        }
    }

    /// Whether [`EventSource::rebalance`] would look at the group now (a reactor saves its
    /// positions first, so that a partition it gives up is not reacted to again).
    pub fn rebalance_due(&self) -> bool {
        match self {
            EventSource::Kafka(KafkaEvents {
                shared: Some(shared),
                ..
            }) => shared.is_due(),
            _ => false,
        }
    }

    /// After a failed batch: Kafka partitions go back to the offsets recorded in Delta.
    pub async fn rewind(&mut self) {
        if let EventSource::Kafka(kafka) = self {
            kafka.undecodable.clear();
            bronze::seek_to_recorded(&kafka.consumer, &kafka.start).await;
        }
    }
}
