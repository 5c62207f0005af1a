//! Getting events out of the event store and into the pipelines.
//!
//! - [`EventSource::Store`]: the pipelines read the event store's feed directly (embedded
//!   default, replays).
//! - [`relay`]: production publishes every stored event to Kafka (`<context>.events`).
//! - [`kafka`]: the message format on Kafka (CloudEvents binary mode) shared by producer and
//!   consumers.

pub mod bronze;
pub mod kafka;
pub mod relay;

use tributary_kernel::store::{EventStore, FeedBatch, StoreError};

/// Where the pipelines read events from.
#[derive(Debug, Clone)]
pub enum EventSource {
    /// The event store's feed, read directly (embedded default, and replays).
    Store(EventStore),
}

impl EventSource {
    /// Events after `cursor`, at most about `events_max`, ending on a transaction boundary.
    pub async fn read(&self, cursor: i64, events_max: usize) -> Result<FeedBatch, StoreError> {
        match self {
            EventSource::Store(store) => store.read_feed(cursor, events_max).await,
        }
    }

    /// Resolves when new events may be available (an in-process append), or never.
    pub async fn appended(&self) {
        match self {
            EventSource::Store(store) => store.appended().notified().await,
        }
    }
}
