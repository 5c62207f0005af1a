//! Aggregates and their repository: pure `decide`/`apply`, loaded by id, pinned, written.
//!
//! ```text
//!  load::<A>(id) ──► Loaded { state, version } ──► decide(state, command) ──► events
//!        │                                                                    │
//!        └── pin() ─► StreamRead (append fails if the stream moved)           ▼
//!                                      write(events) ─► StreamWrite { expected_version }
//! ```
//! An aggregate type is qualified by its context (`finance.account`, `materials.material`):
//! the type names the stream in the event store, so two contexts never share one.

use crate::envelope::EventEnvelope;
use crate::event::{DomainEvent, EventError, decode, encode};
use crate::store::{EventStore, StoreError, StreamRead, StreamWrite, Streams};
use std::collections::HashMap;

/// A consistency boundary: its state is folded from its events, its decisions are pure.
pub trait Aggregate: Sized + 'static {
    /// The stream type, qualified by context: `finance.account`.
    const TYPE: &'static str;
    /// The state before the first event is `State::default()`.
    type State: Default + Clone + Send + Sync;
    type Event: DomainEvent;
    type Command;
    type Rejection;

    /// Turns a command into events, or rejects it with the rules it breaks. No I/O, no clock.
    fn decide(
        state: &Self::State,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Rejection>;

    fn apply(state: &mut Self::State, event: &Self::Event);
}

/// The context part of a qualified aggregate type (`finance` of `finance.account`).
pub fn context_of(aggregate_type: &str) -> &str {
    aggregate_type
        .split_once('.')
        .map_or(aggregate_type, |(context, _)| context)
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// An aggregate as loaded: its state and the version the next write expects.
#[derive(Debug, Clone)]
pub struct Loaded<A: Aggregate> {
    pub id: String,
    pub state: A::State,
    /// Events in the stream; 0 when it does not exist yet.
    pub version: i64,
}

impl<A: Aggregate> Loaded<A> {
    /// A stream without events.
    pub fn new(id: impl Into<String>) -> Loaded<A> {
        Loaded {
            id: id.into(),
            state: A::State::default(),
            version: 0,
        }
    }

    /// Folds a stream's events (in sequence order).
    pub fn from_events(
        id: impl Into<String>,
        events: &[EventEnvelope],
    ) -> Result<Self, EventError> {
        let mut loaded = Loaded::new(id);
        for event in events {
            A::apply(&mut loaded.state, &decode::<A::Event>(event)?);
            loaded.version = event.sequence;
        }
        Ok(loaded)
    }

    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// The read that pins this stream at its loaded version for the append's check.
    pub fn pin(&self) -> StreamRead {
        StreamRead {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: self.id.clone(),
            version: self.version,
        }
    }

    /// Decides a command; the state after the events is returned with them.
    pub fn decide(&self, command: A::Command) -> Result<Decided<A>, A::Rejection> {
        let events = A::decide(&self.state, command)?;
        let mut state = self.state.clone();
        for event in &events {
            A::apply(&mut state, event);
        }
        Ok(Decided {
            write: self.write(&events),
            events,
            state,
        })
    }

    /// Appending `events` after the loaded version.
    pub fn write(&self, events: &[A::Event]) -> StreamWrite {
        StreamWrite {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: self.id.clone(),
            expected_version: self.version,
            events: events.iter().map(encode).collect(),
        }
    }
}

/// A decision on one aggregate: its events, the state after them, and the write that stores them.
#[derive(Debug, Clone)]
pub struct Decided<A: Aggregate> {
    pub events: Vec<A::Event>,
    pub state: A::State,
    pub write: StreamWrite,
}

impl<A: Aggregate> Decided<A> {
    /// The writes to append: none when the command decided no events.
    pub fn writes(self) -> Vec<StreamWrite> {
        if self.events.is_empty() {
            Vec::new()
        } else {
            vec![self.write]
        }
    }
}

/// Loads one aggregate by id (a new one when its stream is empty).
pub async fn load<A: Aggregate>(
    store: &EventStore,
    id: &str,
) -> Result<Loaded<A>, RepositoryError> {
    let streams = store.load(A::TYPE, &[id.to_owned()]).await?;
    let events = streams.get(id).map(Vec::as_slice).unwrap_or_default();
    Ok(Loaded::from_events(id, events)?)
}

/// Loads several aggregates of one type in one round trip, keyed by id (new ones included).
pub async fn load_many<A: Aggregate>(
    store: &EventStore,
    ids: &[String],
) -> Result<HashMap<String, Loaded<A>>, RepositoryError> {
    let streams = store.load(A::TYPE, ids).await?;
    let mut loaded = HashMap::with_capacity(ids.len());
    for id in ids {
        let events = streams.get(id).map(Vec::as_slice).unwrap_or_default();
        loaded.insert(id.clone(), Loaded::from_events(id.clone(), events)?);
    }
    Ok(loaded)
}

/// Every aggregate of a type (small types only: companies, plants), in id order.
pub async fn load_all<A: Aggregate>(store: &EventStore) -> Result<Vec<Loaded<A>>, RepositoryError> {
    let mut by_id: std::collections::BTreeMap<String, Vec<EventEnvelope>> = Default::default();
    for event in store.load_type(A::TYPE).await? {
        by_id
            .entry(event.aggregate_id.clone())
            .or_default()
            .push(event);
    }
    let mut all = Vec::with_capacity(by_id.len());
    for (id, mut events) in by_id {
        events.sort_by_key(|e| e.sequence);
        all.push(Loaded::from_events(id, &events)?);
    }
    Ok(all)
}

/// One aggregate out of streams loaded together ([`EventStore::load_scoped`]).
pub fn from_streams<A: Aggregate>(streams: &Streams, id: &str) -> Result<Loaded<A>, EventError> {
    let events = streams
        .get(&(A::TYPE.to_owned(), id.to_owned()))
        .map(Vec::as_slice)
        .unwrap_or_default();
    Loaded::from_events(id, events)
}
