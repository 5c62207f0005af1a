//! An in-memory index kept from the event store's feed: a published query interface's state
//! where a lake view would lag (availability). Each read first catches up with the feed, so
//! every index of a process reads one consistent prefix of the store: on SQLite every event
//! committed before the read; on PostgreSQL the feed stops before the oldest transaction still
//! open, so a write against a version read here can conflict until the feed moves on (callers
//! decide again after a short wait: `CommandRequest::commit_retrying`). Events of other
//! aggregate types are skipped.
//!
//! Contexts kept in other databases (`--context-database-url`) have feeds of their own:
//! [`Feeds`] reads each database holding the index's types from a cursor of its own (cursors
//! of two databases do not compare), so the prefix is one per database.

use crate::envelope::EventEnvelope;
use crate::store::{EventStore, StoreError};
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

/// Events read from the feed per round trip while catching up.
const CATCH_UP_BATCH: usize = 5_000;

/// The feeds of the databases keeping some aggregate types, each read from its own cursor:
/// one feed unless those types' contexts are kept in several databases.
pub struct Feeds {
    feeds: Vec<(EventStore, i64)>,
    /// Wakes [`Feeds::appended`]'s receivers after an append to any of the databases.
    wake: Arc<watch::Sender<u64>>,
}

impl Feeds {
    /// The feeds holding `aggregate_types`' events, none read yet.
    pub fn of(store: &EventStore, aggregate_types: &[&str]) -> Feeds {
        Feeds {
            feeds: store
                .holders_of(aggregate_types)
                .into_iter()
                .map(|holder| (holder, 0))
                .collect(),
            wake: Arc::new(watch::channel(0).0),
        }
    }

    /// The next events of every feed (at most about `events_max` of each), each feed's in its
    /// order; empty once every feed is read up to its head.
    pub async fn read(&mut self, events_max: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut events = Vec::new();
        for (store, cursor) in &mut self.feeds {
            let batch = store.read_feed(*cursor, events_max).await?;
            events.extend(batch.events);
            *cursor = batch.cursor;
        }
        Ok(events)
    }

    /// How far the feed of `store`'s database has been read (0 when it is none of these).
    pub fn cursor(&self, store: &EventStore) -> i64 {
        self.feeds
            .iter()
            .find(|(feed, _)| feed.same_database(store))
            .map_or(0, |(_, cursor)| *cursor)
    }

    /// Changes after each append to any of the feeds' databases ([`EventStore::appended`] of
    /// each).
    pub fn appended(&self) -> watch::Receiver<u64> {
        if let [(store, _)] = self.feeds.as_slice() {
            return store.appended();
        }
        let receiver = self.wake.subscribe();
        for (store, _) in &self.feeds {
            let (mut appended, wake) = (store.appended(), self.wake.clone());
            tokio::spawn(async move {
                while appended.changed().await.is_ok() && !wake.is_closed() {
                    wake.send_modify(|count| *count = count.wrapping_add(1));
                }
            });
        }
        receiver
    }
}

pub struct FeedIndex<T> {
    aggregate_types: &'static [&'static str],
    apply: fn(&mut T, &EventEnvelope),
    state: Mutex<(Feeds, T)>,
}

impl<T: Default + Send> FeedIndex<T> {
    pub fn new(
        store: EventStore,
        aggregate_types: &'static [&'static str],
        apply: fn(&mut T, &EventEnvelope),
    ) -> FeedIndex<T> {
        FeedIndex {
            aggregate_types,
            apply,
            state: Mutex::new((Feeds::of(&store, aggregate_types), T::default())),
        }
    }

    /// `read` of the state once it has seen every event committed before this call.
    pub async fn read<R>(&self, read: impl FnOnce(&T) -> R) -> Result<R, StoreError> {
        let mut guard = self.state.lock().await;
        let (feeds, state) = &mut *guard;
        loop {
            let events = feeds.read(CATCH_UP_BATCH).await?;
            if events.is_empty() {
                break;
            }
            for event in &events {
                if self
                    .aggregate_types
                    .contains(&event.aggregate_type.as_str())
                {
                    (self.apply)(state, event);
                }
            }
        }
        Ok(read(state))
    }
}
