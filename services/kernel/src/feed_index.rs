//! An in-memory index kept from the event store's feed: a published query interface's state
//! where a lake view would lag (availability). Each read first catches up with the feed, so
//! every index of a process reads one consistent prefix of the store: on SQLite every event
//! committed before the read; on PostgreSQL the feed stops before the oldest transaction still
//! open, so a write against a version read here can conflict until the feed moves on (callers
//! decide again after a short wait: `CommandRequest::commit_retrying`). Events of other
//! aggregate types are skipped.

use crate::envelope::EventEnvelope;
use crate::store::{EventStore, StoreError};
use tokio::sync::Mutex;

/// Events read from the feed per round trip while catching up.
const CATCH_UP_BATCH: usize = 5_000;

pub struct FeedIndex<T> {
    store: EventStore,
    aggregate_types: &'static [&'static str],
    apply: fn(&mut T, &EventEnvelope),
    state: Mutex<(i64, T)>,
}

impl<T: Default + Send> FeedIndex<T> {
    pub fn new(
        store: EventStore,
        aggregate_types: &'static [&'static str],
        apply: fn(&mut T, &EventEnvelope),
    ) -> FeedIndex<T> {
        FeedIndex {
            store,
            aggregate_types,
            apply,
            state: Mutex::new((0, T::default())),
        }
    }

    /// `read` of the state once it has seen every event committed before this call.
    pub async fn read<R>(&self, read: impl FnOnce(&T) -> R) -> Result<R, StoreError> {
        let mut guard = self.state.lock().await;
        let (cursor, state) = &mut *guard;
        loop {
            let batch = self.store.read_feed(*cursor, CATCH_UP_BATCH).await?;
            if batch.events.is_empty() {
                break;
            }
            for event in &batch.events {
                if self
                    .aggregate_types
                    .contains(&event.aggregate_type.as_str())
                {
                    (self.apply)(state, event);
                }
            }
            *cursor = batch.cursor;
        }
        Ok(read(state))
    }
}
