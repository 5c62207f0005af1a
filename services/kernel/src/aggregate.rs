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
use crate::store::{Decision, EventStore, StoreError, StreamRead, StreamWrite, Streams};
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

    /// The decision to append, answering with what `outcome` makes of the state after the
    /// events; `None` when it makes nothing (the aggregate does not exist).
    pub fn decision<T>(
        self,
        reads: Vec<StreamRead>,
        outcome: impl FnOnce(A::State) -> Option<T>,
    ) -> Option<Decision<T>> {
        let outcome = outcome(self.state.clone())?;
        Some(Decision {
            writes: self.writes(),
            reads,
            outcome,
        })
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

/// An aggregate whose history grows long (a material's valuation after a million movements):
/// loaded from a snapshot of its state plus the events after it.
///
/// ```text
///  snapshot (version v, shape SNAPSHOT_VERSION) ──► state ──► events after v ──► state now
///        missing or of another shape: full replay ──┘           │
///  SNAPSHOT_EVERY events or more since the snapshot: save the state now (it is committed)
/// ```
pub trait Snapshotted: Aggregate
where
    Self::State: serde::Serialize + serde::de::DeserializeOwned,
{
    /// The shape of the serialized state: bump it when `State` changes, and the old
    /// snapshots are ignored and rebuilt from the events.
    const SNAPSHOT_VERSION: i32;
    /// Events between snapshots.
    const SNAPSHOT_EVERY: i64;
}

/// Loads an aggregate from its snapshot and the events after it, and takes a new snapshot
/// when [`Snapshotted::SNAPSHOT_EVERY`] events or more were replayed. Saving a snapshot is
/// best effort: a failure only costs the next load more replay.
pub async fn load_snapshotted<A>(store: &EventStore, id: &str) -> Result<Loaded<A>, RepositoryError>
where
    A: Snapshotted,
    A::State: serde::Serialize + serde::de::DeserializeOwned,
{
    let snapshot = store.snapshot(A::TYPE, id).await?;
    let mut loaded = Loaded::<A>::new(id);
    if let Some(snapshot) = snapshot.filter(|s| s.snapshot_version == A::SNAPSHOT_VERSION)
        && let Ok(state) = serde_json::from_value::<A::State>(snapshot.state)
    {
        loaded.state = state;
        loaded.version = snapshot.version;
    }
    let from = loaded.version;
    for event in store.load_after(A::TYPE, id, from).await? {
        assert_eq!(
            event.sequence,
            loaded.version + 1,
            "stream {}/{id} continues its loaded version",
            A::TYPE
        );
        A::apply(&mut loaded.state, &decode::<A::Event>(&event)?);
        loaded.version = event.sequence;
    }
    if loaded.version - from >= A::SNAPSHOT_EVERY
        && let Ok(state) = serde_json::to_value(&loaded.state)
    {
        let snapshot = crate::store::StoredSnapshot {
            version: loaded.version,
            snapshot_version: A::SNAPSHOT_VERSION,
            state,
        };
        if let Err(error) = store.save_snapshot(A::TYPE, id, &snapshot).await {
            tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id, error = %error, "snapshot not saved");
        }
    }
    Ok(loaded)
}

/// One aggregate out of streams loaded together ([`EventStore::load_scoped`]).
pub fn from_streams<A: Aggregate>(streams: &Streams, id: &str) -> Result<Loaded<A>, EventError> {
    let events = streams
        .get(&(A::TYPE.to_owned(), id.to_owned()))
        .map(|events| &**events)
        .unwrap_or_default();
    Loaded::from_events(id, events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Upcaster;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    enum TallyEvent {
        Counted { amount: i64 },
    }
    impl DomainEvent for TallyEvent {
        fn upcasters() -> &'static [Upcaster] {
            &[]
        }
    }
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct TallyState {
        count: i64,
        sum: i64,
        /// Sequence-dependent: the running maximum of partial sums.
        peak: i64,
    }
    struct Tally;
    impl Aggregate for Tally {
        const TYPE: &'static str = "test.tally";
        type State = TallyState;
        type Event = TallyEvent;
        type Command = i64;
        type Rejection = ();
        fn decide(_: &TallyState, amount: i64) -> Result<Vec<TallyEvent>, ()> {
            Ok(vec![TallyEvent::Counted { amount }])
        }
        fn apply(state: &mut TallyState, event: &TallyEvent) {
            let TallyEvent::Counted { amount } = event;
            state.count += 1;
            state.sum += amount;
            state.peak = state.peak.max(state.sum);
        }
    }
    impl Snapshotted for Tally {
        const SNAPSHOT_VERSION: i32 = 1;
        const SNAPSHOT_EVERY: i64 = 100;
    }

    async fn append(store: &EventStore, loaded: &Loaded<Tally>, amounts: &[i64]) {
        let events: Vec<TallyEvent> = amounts
            .iter()
            .map(|&amount| TallyEvent::Counted { amount })
            .collect();
        let batch = crate::store::AppendBatch {
            context: "test".into(),
            writes: vec![loaded.write(&events)],
            reads: vec![],
            metadata: Default::default(),
            idempotency: None,
            time: chrono::Utc::now(),
        };
        store.append(batch).await.unwrap();
    }

    #[tokio::test]
    async fn a_state_from_a_snapshot_equals_the_state_from_a_full_replay() {
        let dir =
            std::env::temp_dir().join(format!("tributary-snapshots-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("events.db").display());
        let store = EventStore::connect(&url, 2).await.unwrap();
        // A deterministic walk of gains and losses, appended in uneven batches.
        let mut seed: u64 = 42;
        let mut loaded = load_snapshotted::<Tally>(&store, "t1").await.unwrap();
        for round in 0..37 {
            let amounts: Vec<i64> = (0..(round % 7) * 9 + 1)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as i64 % 1000 - 480
                })
                .collect();
            append(&store, &loaded, &amounts).await;
            loaded = load_snapshotted::<Tally>(&store, "t1").await.unwrap();
            let replayed = load::<Tally>(&store, "t1").await.unwrap();
            assert_eq!(loaded.state, replayed.state, "round {round}");
            assert_eq!(loaded.version, replayed.version);
        }
        let snapshot = store.snapshot(Tally::TYPE, "t1").await.unwrap().unwrap();
        assert!(
            snapshot.version >= 100,
            "a snapshot was taken: {snapshot:?}"
        );
        assert!(loaded.version - snapshot.version < Tally::SNAPSHOT_EVERY);

        // A snapshot of another shape is ignored (the state comes from the events) and rebuilt.
        let stale = crate::store::StoredSnapshot {
            version: loaded.version,
            snapshot_version: 0,
            state: serde_json::json!({"count": -1, "sum": -1, "peak": -1}),
        };
        store
            .save_snapshot(Tally::TYPE, "t1", &stale)
            .await
            .unwrap();
        let rebuilt = load_snapshotted::<Tally>(&store, "t1").await.unwrap();
        assert_eq!(
            rebuilt.state,
            load::<Tally>(&store, "t1").await.unwrap().state
        );
        let again = store.snapshot(Tally::TYPE, "t1").await.unwrap().unwrap();
        assert_eq!(again.snapshot_version, 1, "rebuilt in the current shape");
        assert_eq!(again.version, loaded.version);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A command of `context` writing a stream of `aggregate_type` (one event) and reading `reads`.
    fn note(
        context: &str,
        aggregate_type: &str,
        reads: Vec<StreamRead>,
    ) -> crate::store::AppendBatch {
        crate::store::AppendBatch {
            context: context.into(),
            writes: vec![StreamWrite {
                aggregate_type: aggregate_type.into(),
                aggregate_id: uuid::Uuid::now_v7().to_string(),
                expected_version: 0,
                events: vec![crate::envelope::NewEvent {
                    event_type: "Noted".into(),
                    event_version: 1,
                    payload: serde_json::json!({}),
                }],
            }],
            reads,
            metadata: Default::default(),
            idempotency: None,
            time: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_context_kept_in_another_database_is_loaded_appended_and_checked_there() {
        let dir = std::env::temp_dir().join(format!("tributary-routes-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = |name: &str| format!("sqlite://{}", dir.join(name).display());
        let own = EventStore::connect(&url("own.db"), 2).await.unwrap();
        let other = EventStore::connect(&url("test.db"), 2).await.unwrap();
        let store = own.clone().with_context_store("test", other.clone());
        assert_eq!(store.databases().len(), 2);

        // The test context's aggregate is appended to and loaded from its own database only.
        let loaded = load::<Tally>(&store, "t1").await.unwrap();
        append(&store, &loaded, &[5, 7]).await;
        let ids = ["t1".to_owned()];
        assert_eq!(other.load(Tally::TYPE, &ids).await.unwrap()["t1"].len(), 2);
        assert!(own.load(Tally::TYPE, &ids).await.unwrap().is_empty());
        let loaded = load::<Tally>(&store, "t1").await.unwrap();
        assert_eq!((loaded.version, loaded.state.sum), (2, 12));
        // Each database's feed holds its own contexts' events.
        assert!(store.read_feed(0, 100).await.unwrap().events.is_empty());
        let feed = store.for_context("test").read_feed(0, 100).await.unwrap();
        assert_eq!(feed.events.len(), 2);

        // A command writing streams of two databases is refused and writes nothing.
        let mut both = note("other", "other.note", vec![]);
        both.writes
            .push(loaded.write(&[TallyEvent::Counted { amount: 1 }]));
        let refused = store.append(both).await;
        assert!(
            matches!(&refused, Err(StoreError::CrossDatabase { aggregate_type, .. }) if aggregate_type == Tally::TYPE),
            "{refused:?}"
        );
        assert_eq!(load::<Tally>(&store, "t1").await.unwrap().version, 2);
        assert!(store.read_feed(0, 100).await.unwrap().events.is_empty());

        // A command of the own database that read the test aggregate: appended while that is
        // at the version read, refused as a conflict once it moved on.
        let pinned = loaded.pin();
        store
            .append(note("other", "other.note", vec![pinned.clone()]))
            .await
            .unwrap();
        assert_eq!(store.read_feed(0, 100).await.unwrap().events.len(), 1);
        append(&store, &loaded, &[1]).await;
        let stale = store
            .append(note("other", "other.note", vec![pinned]))
            .await;
        assert!(
            matches!(
                &stale,
                Err(StoreError::Conflict {
                    expected: 2,
                    actual: 3,
                    ..
                })
            ),
            "{stale:?}"
        );
        assert_eq!(store.read_feed(0, 100).await.unwrap().events.len(), 1);

        // An index of both contexts' types reads both feeds, each from its own cursor, and is
        // woken by an append to either database.
        const BOTH: &[&str] = &[Tally::TYPE, "other.note"];
        let index =
            crate::feed_index::FeedIndex::new(store.clone(), BOTH, |seen: &mut Vec<String>, e| {
                seen.push(e.aggregate_type.clone());
            });
        let seen = index.read(|seen| seen.clone()).await.unwrap();
        assert_eq!(
            (
                seen.iter().filter(|t| *t == Tally::TYPE).count(),
                seen.len()
            ),
            (3, 4),
            "{seen:?}"
        );
        let mut feeds = crate::feed_index::Feeds::of(&store, BOTH);
        assert_eq!(feeds.read(100).await.unwrap().len(), 4);
        assert_eq!(
            feeds.cursor(store.for_context("test")),
            3,
            "the test database's three events"
        );
        assert_eq!(feeds.cursor(&own), 1);
        let mut woken = feeds.appended();
        let loaded = load::<Tally>(&store, "t1").await.unwrap();
        append(&store, &loaded, &[2]).await;
        tokio::time::timeout(std::time::Duration::from_secs(5), woken.changed())
            .await
            .expect("woken by the other database's append")
            .unwrap();
        assert_eq!(feeds.read(100).await.unwrap().len(), 1);
        assert!(feeds.read(100).await.unwrap().is_empty());
        assert_eq!(index.read(Vec::len).await.unwrap(), 5);
        let _ = std::fs::remove_dir_all(dir);
    }
}
