//! The event store: append-only, on SQLite (embedded default) or PostgreSQL (production).
//!
//! ```text
//!  command ──► load streams ──► decide() ──► append(AppendBatch) ─┐ one transaction:
//!                                                                 │  1. streams read by the
//!                                                                 │     decision: version unchanged
//!                                                                 │     (PostgreSQL: FOR SHARE)
//!                                                                 │  2. streams written: version
//!                                                                 │     = expected, then + n
//!                                                                 │  3. events inserted
//!                                                                 │  4. idempotency record
//!  readers ◄── read_feed(cursor) ◄── events in global order ◄─────┘
//! ```
//!
//! Invariants:
//! - An event is stored once and never changed (database triggers refuse UPDATE and DELETE);
//!   (aggregate_type, aggregate_id, sequence) is unique, so a concurrent write to the same
//!   aggregate is a [`StoreError::Conflict`], never a lost update.
//! - The feed never skips an event that commits late. SQLite appends through one write
//!   connection, so positions commit in order and the cursor is the position. PostgreSQL
//!   assigns positions before commit, so the cursor is the writer's transaction id (xid8) and the
//!   feed only returns transactions below the oldest one still running (`pg_snapshot_xmin`).
//!   A feed batch always ends on a transaction boundary, so "cursor > c" resumes exactly.
//! - Per aggregate, the feed keeps sequence order: every append transaction loads its streams
//!   before its first write, so its xid is assigned after the commit of every event it saw.

use crate::envelope::{EventEnvelope, Metadata, NewEvent};
use crate::telemetry::names;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

mod group;
mod members;
mod notify;
pub mod scoped;
mod tail;
pub use group::GroupCommitOptions;
pub use members::Membership;
pub use scoped::Scoped;

/// Events one append may carry: bounds a transaction and a feed batch that cannot be split.
pub const APPEND_EVENTS_MAX: usize = 10_000;
/// Events one feed read returns at most.
pub const FEED_BATCH_EVENTS_MAX: usize = 50_000;
/// How long a command waits for a database connection before answering 503.
pub const POOL_ACQUIRE_TIMEOUT_MS: u64 = 3_000;
/// A pooled PostgreSQL connection idle at least this long is pinged before it is used (a
/// server restart or a dropped connection is then found before a command runs on it). sqlx's
/// default pings every connection at every acquire: a Sync and its answer, one more round trip
/// (two more wake-ups) before every append and every read.
pub(crate) const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "concurrent change to {aggregate_type} {aggregate_id}: expected version {expected}, found {actual}"
    )]
    Conflict {
        aggregate_type: String,
        aggregate_id: String,
        expected: i64,
        actual: i64,
    },
    #[error("idempotency key {key:?} was stored by a concurrent request")]
    IdempotencyKeyTaken { key: String },
    #[error("append of {count} events exceeds the maximum of {APPEND_EVENTS_MAX}")]
    AppendTooLarge { count: usize },
    #[error("event store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("event store error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("event store migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("unsupported database URL {url:?}: expected sqlite:// or postgres://")]
    UnsupportedUrl { url: String },
    /// A command of `context` writes a stream kept in another database (contexts that append
    /// together must share one: `--context-database-url`).
    #[error(
        "a command of {context} writes {aggregate_type}, which is kept in another database: contexts that append in one transaction must share a database"
    )]
    CrossDatabase {
        context: String,
        aggregate_type: String,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            // A connection that breaks mid-handshake or mid-message (a proxy or load balancer
            // in front of a database that is down) surfaces as a protocol error.
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // PostgreSQL: admin shutdown, cannot connect now, connection failures.
                Some("57P01") | Some("57P02") | Some("57P03") | Some("08000") | Some("08003")
                | Some("08006") => StoreError::Unavailable(error),
                _ => StoreError::Database(error),
            },
            _ => StoreError::Database(error),
        }
    }
}

/// Events to append to one aggregate, valid only if it is still at `expected_version`
/// (0 = the aggregate does not exist yet).
#[derive(Debug, Clone)]
pub struct StreamWrite {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub expected_version: i64,
    pub events: Vec<NewEvent>,
}

/// An aggregate the decision read but does not change: the append fails if it moved meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamRead {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
}

/// The response first given for an idempotency key, stored with the events it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// Everything one command stores, atomically.
#[derive(Debug, Clone)]
pub struct AppendBatch {
    pub context: String,
    pub writes: Vec<StreamWrite>,
    pub reads: Vec<StreamRead>,
    pub metadata: Metadata,
    pub idempotency: Option<IdempotencyRecord>,
    pub time: DateTime<Utc>,
}

/// Streams by (aggregate type, aggregate id), each in sequence order.
pub type Streams = HashMap<(String, String), Arc<[EventEnvelope]>>;

/// Events in global order and the cursor to resume after them.
#[derive(Debug, Clone)]
pub struct FeedBatch {
    pub events: Vec<EventEnvelope>,
    pub cursor: i64,
}

/// A [`FeedBatch`] whose events this process's feed readers share: each context's pipelines
/// read every event at the head, and copying each event per reader (its payload a tree of
/// strings) took a fifth of the pipelines process's time while posting.
#[derive(Debug, Clone, Default)]
pub struct SharedFeedBatch {
    pub events: Vec<Arc<EventEnvelope>>,
    pub cursor: i64,
}

impl From<FeedBatch> for SharedFeedBatch {
    fn from(batch: FeedBatch) -> SharedFeedBatch {
        SharedFeedBatch {
            events: batch.events.into_iter().map(Arc::new).collect(),
            cursor: batch.cursor,
        }
    }
}

/// The event store handle; cheap to clone. In-process readers can wait on [`EventStore::appended`]
/// instead of polling.
#[derive(Debug, Clone)]
pub struct EventStore {
    backend: Backend,
    /// The leaders' queue when appends are grouped.
    group: Option<Arc<group::GroupCommit>>,
    /// Counts this process's appends (and, once a follower subscribed, other processes'
    /// announced appends on PostgreSQL); every in-process follower holds a receiver.
    appended: Arc<watch::Sender<u64>>,
    /// PostgreSQL: announces appends to other processes and listens for theirs.
    announcements: Option<Arc<notify::Announcements>>,
    /// The feed's head as this process's readers last read it.
    tail: Arc<tail::FeedTail>,
    /// Scoped streams read in the last moments ([`EventStore::load_scoped_cached`]).
    scoped: Arc<scoped::ScopedCache>,
    /// Contexts whose events are kept in other databases ([`EventStore::with_context_store`]).
    routes: Arc<BTreeMap<String, EventStore>>,
}

/// The event store's database: SQLite (one writer connection) or PostgreSQL.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite { write: SqlitePool, read: SqlitePool },
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the database's pool (SQLite's writer connection when
/// `$write`): a context's own tables beside the event store, one SQL text on both backends
/// (`$n` placeholders in order of first use).
#[macro_export]
macro_rules! on_database {
    ($db:expr, $write:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Database::Sqlite { write, read } => {
                let $pool = if $write { write } else { read };
                $body
            }
            $crate::store::Database::Postgres($pool) => $body,
        }
    };
}

#[derive(Debug, Clone)]
enum Backend {
    /// One write connection keeps appends, and so positions, in commit order.
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
    },
    Postgres(PgPool),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// Counts one more wake-up on a followers' counter.
fn bump(counter: &watch::Sender<u64>) {
    counter.send_modify(|count| *count = count.wrapping_add(1));
}

const COLUMNS_SQLITE: &str = "position, position AS cursor, event_id, context, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, source, time, payload, metadata";
const COLUMNS_POSTGRES: &str = "position, transaction_id::text::bigint AS cursor, event_id, context, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, source, time, \
     payload::text AS payload, metadata::text AS metadata";

impl EventStore {
    /// Connects to `sqlite://path` (created if missing) or `postgres://…`, and migrates;
    /// concurrent appends are grouped as by default.
    pub async fn connect(url: &str, connections_max: u32) -> Result<EventStore, StoreError> {
        EventStore::connect_with(url, connections_max, GroupCommitOptions::default()).await
    }

    /// [`EventStore::connect`] with appends grouped as `group_commit` says.
    pub async fn connect_with(
        url: &str,
        connections_max: u32,
        group_commit: GroupCommitOptions,
    ) -> Result<EventStore, StoreError> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: an acknowledged append survives power loss, not only a process crash.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_millis(POOL_ACQUIRE_TIMEOUT_MS));
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_millis(POOL_ACQUIRE_TIMEOUT_MS))
                .connect_with(options.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(connections_max.max(1))
                .acquire_timeout(Duration::from_millis(POOL_ACQUIRE_TIMEOUT_MS))
                .connect_with(options.read_only(true))
                .await;
            sqlx::migrate!("../../sql/migrations/sqlite")
                .run(&write)
                .await?;
            Backend::Sqlite { write, read: read? }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Create the database on first start, as SQLite creates its file; an error here
            // (no permission, server down) surfaces from the connect below with its cause.
            use sqlx::migrate::MigrateDatabase as _;
            if let Ok(false) = sqlx::Postgres::database_exists(url).await {
                let _ = sqlx::Postgres::create_database(url).await;
            }
            let pool = PgPoolOptions::new()
                .max_connections(connections_max.max(1))
                .acquire_timeout(Duration::from_millis(POOL_ACQUIRE_TIMEOUT_MS))
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_IDLE_AFTER {
                            sqlx::Connection::ping(connection).await?;
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            sqlx::migrate!("../../sql/migrations/postgres")
                .run(&pool)
                .await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
            });
        };
        let announcements = match &store {
            Backend::Postgres(pool) => Some(Arc::new(notify::Announcements::start(pool.clone()))),
            Backend::Sqlite { .. } => None,
        };
        Ok(EventStore {
            group: group::GroupCommit::start(&store, group_commit).map(Arc::new),
            announcements,
            backend: store,
            appended: Arc::new(watch::channel(0).0),
            tail: Arc::default(),
            scoped: Arc::default(),
            routes: Arc::default(),
        })
    }

    /// This handle with `context`'s events kept in `store`, a handle of another database
    /// (`--context-database-url`): loads and snapshots of that context's aggregate types
    /// (`<context>.<name>`), appends of its commands, idempotency keys and [`EventStore::event`]
    /// go there. The feed of a handle is its own database's: [`EventStore::for_context`] gives a
    /// context's readers theirs.
    pub fn with_context_store(mut self, context: &str, store: EventStore) -> EventStore {
        let mut routes = (*self.routes).clone();
        // A routed handle never routes further: every context is one hop away.
        routes.insert(
            context.to_owned(),
            EventStore {
                routes: Arc::default(),
                ..store
            },
        );
        self.routes = Arc::new(routes);
        self
    }

    /// The handle of the database keeping `context`'s events: its own, or this one.
    pub fn for_context(&self, context: &str) -> &EventStore {
        self.routes.get(context).unwrap_or(self)
    }

    /// The handles of every database this one reaches: its own first, then each other one
    /// once (several contexts may share one).
    pub fn databases(&self) -> Vec<&EventStore> {
        let mut all = vec![self];
        for store in self.routes.values() {
            if !all.iter().any(|known| known.same_database(store)) {
                all.push(store);
            }
        }
        all
    }

    /// The handles of the databases keeping `aggregate_types`' events, each once (the feeds a
    /// reader of those types follows: [`crate::feed_index::Feeds`]).
    pub fn holders_of(&self, aggregate_types: &[&str]) -> Vec<EventStore> {
        let mut holders: Vec<EventStore> = Vec::new();
        for aggregate_type in aggregate_types {
            let holder = self.holder(aggregate_type);
            if !holders.iter().any(|known| known.same_database(holder)) {
                holders.push(holder.clone());
            }
        }
        holders
    }

    /// Whether both handles use one database (one pool).
    pub fn same_database(&self, other: &EventStore) -> bool {
        Arc::ptr_eq(&self.appended, &other.appended)
    }

    /// The handle keeping `aggregate_type`'s events: another database's, or this one.
    fn holder(&self, aggregate_type: &str) -> &EventStore {
        self.routed(aggregate_type).unwrap_or(self)
    }

    /// The handle keeping `aggregate_type`'s events when it is another database's.
    fn routed(&self, aggregate_type: &str) -> Option<&EventStore> {
        if self.routes.is_empty() {
            return None;
        }
        let (context, _) = aggregate_type.split_once('.')?;
        self.routes.get(context)
    }

    /// The same store with appends grouped as `options` say (the leaders of the previous
    /// grouping stop once no handle uses them).
    pub fn with_group_commit(mut self, options: GroupCommitOptions) -> EventStore {
        self.group = group::GroupCommit::start(&self.backend, options).map(Arc::new);
        self
    }

    /// Groups of concurrent commands that could not be appended whole and were appended again
    /// command by command, since this handle's grouping started (PostgreSQL; 0 without
    /// grouping).
    pub fn group_splits(&self) -> u64 {
        self.group.as_ref().map_or(0, |g| {
            g.counts.splits.load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Group transactions appended and the commands in them, since this handle's grouping
    /// started; `None` without grouping.
    pub fn group_sizes(&self) -> Option<(u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.group.as_ref().map(|g| {
            (
                g.counts.groups.load(Relaxed),
                g.counts.commands.load(Relaxed),
            )
        })
    }

    /// Changes after every successful append in this process and, on PostgreSQL, after
    /// appends other processes announce (LISTEN from the first call on): each follower
    /// (pipeline runners, reactors, the relay) keeps one receiver, so no wake-up is lost
    /// while it is busy.
    pub fn appended(&self) -> watch::Receiver<u64> {
        // Subscribed before the listener may start: its first wake (after LISTEN) is never
        // missed, however long this thread waits between the two.
        let receiver = self.appended.subscribe();
        if let Some(announcements) = &self.announcements {
            announcements.listen(&self.appended);
        }
        receiver
    }

    /// The database behind the store, for the tables other services keep beside the events
    /// (created by the same migrations).
    pub fn database(&self) -> Database {
        match &self.backend {
            Backend::Sqlite { write, read } => Database::Sqlite {
                write: write.clone(),
                read: read.clone(),
            },
            Backend::Postgres(pool) => Database::Postgres(pool.clone()),
        }
    }

    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Cheap liveness check of the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        for store in self.databases() {
            store.ping_own().await?;
        }
        Ok(())
    }

    async fn ping_own(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { read, .. } => {
                sqlx::query("SELECT 1").execute(read).await?;
            }
            Backend::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// The events of the given aggregates, each list in sequence order. Missing ones are absent.
    pub async fn load(
        &self,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<HashMap<String, Vec<EventEnvelope>>, StoreError> {
        if let Some(store) = self.routed(aggregate_type) {
            return Box::pin(store.load(aggregate_type, aggregate_ids)).await;
        }
        let mut streams: HashMap<String, Vec<EventEnvelope>> = HashMap::new();
        if aggregate_ids.is_empty() {
            return Ok(streams);
        }
        let started = Instant::now();
        let events = match &self.backend {
            Backend::Sqlite { read, .. } => {
                let placeholders = vec!["?"; aggregate_ids.len()].join(", ");
                let sql = format!(
                    "SELECT {COLUMNS_SQLITE} FROM events WHERE aggregate_type = ? \
                     AND aggregate_id IN ({placeholders}) ORDER BY aggregate_id, sequence"
                );
                let mut query = sqlx::query(&sql).bind(aggregate_type);
                for id in aggregate_ids {
                    query = query.bind(id);
                }
                let rows = query.fetch_all(read).await?;
                rows.iter()
                    .map(envelope_from_sqlite)
                    .collect::<Result<Vec<_>, _>>()?
            }
            Backend::Postgres(pool) => {
                let sql = format!(
                    "SELECT {COLUMNS_POSTGRES} FROM events WHERE aggregate_type = $1 \
                     AND aggregate_id = ANY($2) ORDER BY aggregate_id, sequence"
                );
                let rows = sqlx::query(&sql)
                    .bind(aggregate_type)
                    .bind(aggregate_ids)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(envelope_from_postgres)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        observe(self.backend(), "load", started);
        for event in events {
            streams
                .entry(event.aggregate_id.clone())
                .or_default()
                .push(event);
        }
        Ok(streams)
    }

    /// The streams a command needs inside a scope, in one round trip: every stream of
    /// `scope_type` (only `scope` when given), and for each of those the child streams
    /// `<scope id>/<suffix>` of the given `(aggregate type, suffix)` pairs. Keyed by
    /// (aggregate type, aggregate id); streams without events are absent.
    pub async fn load_scoped(
        &self,
        scope_type: &str,
        scope: Option<&str>,
        children: &[(&str, String)],
    ) -> Result<Streams, StoreError> {
        // A scope's children are of its context (a company's accounts and periods).
        if let Some(store) = self.routed(scope_type) {
            return Box::pin(store.load_scoped(scope_type, scope, children)).await;
        }
        let started = Instant::now();
        let events = match &self.backend {
            Backend::Sqlite { .. } => {
                // In-process: a round trip costs nothing, so reuse the plain loads.
                let mut events: Vec<EventEnvelope> = self
                    .load_type(scope_type)
                    .await?
                    .into_iter()
                    .filter(|e| scope.is_none_or(|s| e.aggregate_id == s))
                    .collect();
                let scopes: BTreeSet<String> =
                    events.iter().map(|e| e.aggregate_id.clone()).collect();
                let mut by_type: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for (kind, suffix) in children {
                    for scope in &scopes {
                        by_type
                            .entry(kind)
                            .or_default()
                            .push(format!("{scope}/{suffix}"));
                    }
                }
                for (kind, ids) in by_type {
                    events.extend(self.load(kind, &ids).await?.into_values().flatten());
                }
                events
            }
            Backend::Postgres(pool) => {
                // `load_scoped_events` (migration 0014): generic plans, one index lookup per
                // wanted stream.
                let sql = format!(
                    "SELECT {COLUMNS_POSTGRES} FROM load_scoped_events($1, $2, $3, $4) \
                     ORDER BY aggregate_type, aggregate_id, sequence"
                );
                let (types, suffixes): (Vec<&str>, Vec<&str>) =
                    children.iter().map(|(t, s)| (*t, s.as_str())).unzip();
                let rows = sqlx::query(&sql)
                    .bind(scope_type)
                    .bind(scope)
                    .bind(&types)
                    .bind(&suffixes)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(envelope_from_postgres)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        observe(self.backend(), "load_scoped", started);
        let mut streams: HashMap<(String, String), Vec<EventEnvelope>> = HashMap::new();
        for event in events {
            streams
                .entry((event.aggregate_type.clone(), event.aggregate_id.clone()))
                .or_default()
                .push(event);
        }
        Ok(streams
            .into_iter()
            .map(|(key, mut events)| {
                events.sort_by_key(|e| e.sequence);
                (key, Arc::from(events))
            })
            .collect())
    }

    /// [`EventStore::load_scoped`] of one named scope, answered from the streams this process
    /// read within [`scoped::KEPT_FOR`] when it has them all (`cached`). A decision made from
    /// cached streams must pin every stream it relies on, and a refusal made from them must be
    /// decided again from [`EventStore::load_scoped`]: see [`scoped`]. A conflict on any append
    /// of this process drops what is kept.
    pub async fn load_scoped_cached(
        &self,
        scope_type: &str,
        scope: &str,
        children: &[(&str, String)],
    ) -> Result<Scoped, StoreError> {
        if let Some(store) = self.routed(scope_type) {
            return Box::pin(store.load_scoped_cached(scope_type, scope, children)).await;
        }
        let wanted: Vec<(String, String)> =
            std::iter::once((scope_type.to_owned(), scope.to_owned()))
                .chain(
                    children
                        .iter()
                        .map(|(kind, suffix)| ((*kind).to_owned(), format!("{scope}/{suffix}"))),
                )
                .collect();
        if let Some(streams) = self.scoped.get(&wanted) {
            return Ok(Scoped {
                streams,
                cached: true,
            });
        }
        let generation = self.scoped.generation();
        let streams = self.load_scoped(scope_type, Some(scope), children).await?;
        self.scoped.keep(generation, &wanted, &streams);
        Ok(Scoped {
            streams,
            cached: false,
        })
    }

    /// All events of one aggregate type in global order (small types only: companies).
    pub async fn load_type(&self, aggregate_type: &str) -> Result<Vec<EventEnvelope>, StoreError> {
        if let Some(store) = self.routed(aggregate_type) {
            return Box::pin(store.load_type(aggregate_type)).await;
        }
        match &self.backend {
            Backend::Sqlite { read, .. } => {
                let sql = format!(
                    "SELECT {COLUMNS_SQLITE} FROM events WHERE aggregate_type = ? ORDER BY position"
                );
                let rows = sqlx::query(&sql)
                    .bind(aggregate_type)
                    .fetch_all(read)
                    .await?;
                rows.iter().map(envelope_from_sqlite).collect()
            }
            Backend::Postgres(pool) => {
                let sql = format!(
                    "SELECT {COLUMNS_POSTGRES} FROM events WHERE aggregate_type = $1 \
                     ORDER BY aggregate_id, sequence"
                );
                let rows = sqlx::query(&sql)
                    .bind(aggregate_type)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(envelope_from_postgres).collect()
            }
        }
    }

    /// Whether any event of one aggregate type is stored (one index lookup).
    pub async fn has_type(&self, aggregate_type: &str) -> Result<bool, StoreError> {
        if let Some(store) = self.routed(aggregate_type) {
            return Box::pin(store.has_type(aggregate_type)).await;
        }
        Ok(match &self.backend {
            Backend::Sqlite { read, .. } => {
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = ?)")
                    .bind(aggregate_type)
                    .fetch_one(read)
                    .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1)")
                    .bind(aggregate_type)
                    .fetch_one(pool)
                    .await?
            }
        })
    }

    /// The stored request hash, status and body for an idempotency key.
    /// Keys are kept with the events they answered, so every database is asked.
    pub async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        for store in self.databases() {
            if let Some(record) = store.idempotency_own(key).await? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    async fn idempotency_own(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        const SQL_SQLITE: &str =
            "SELECT request_hash, status, body FROM idempotency_keys WHERE idempotency_key = ?";
        const SQL_POSTGRES: &str =
            "SELECT request_hash, status, body FROM idempotency_keys WHERE idempotency_key = $1";
        let record = match &self.backend {
            Backend::Sqlite { read, .. } => sqlx::query(SQL_SQLITE)
                .bind(key)
                .fetch_optional(read)
                .await?
                .map(|row| {
                    (
                        row.get::<String, _>(0),
                        row.get::<i64, _>(1),
                        row.get::<String, _>(2),
                    )
                }),
            Backend::Postgres(pool) => sqlx::query(SQL_POSTGRES)
                .bind(key)
                .fetch_optional(pool)
                .await?
                .map(|row| {
                    (
                        row.get::<String, _>(0),
                        i64::from(row.get::<i32, _>(1)),
                        row.get::<String, _>(2),
                    )
                }),
        };
        Ok(
            record.map(|(request_hash, status, body)| IdempotencyRecord {
                key: key.to_owned(),
                request_hash,
                status: u16::try_from(status).unwrap_or(500),
                body,
            }),
        )
    }

    /// Forgets the Idempotency-Keys of requests stored before `older_than`; answers how many.
    /// The keys of reactors' reactions (`reactor/…`) are kept: they make a reaction run once
    /// however late its event is repeated.
    pub async fn expire_idempotency_keys(
        &self,
        older_than: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let mut expired = 0;
        for store in self.databases() {
            expired += store.expire_own_idempotency_keys(older_than).await?;
        }
        Ok(expired)
    }

    async fn expire_own_idempotency_keys(
        &self,
        older_than: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        Ok(match &self.backend {
            // SQLite keeps RFC 3339 texts of one format, which compare as their times do.
            Backend::Sqlite { write, .. } => sqlx::query(
                "DELETE FROM idempotency_keys WHERE created_at < ? \
                     AND idempotency_key NOT LIKE 'reactor/%'",
            )
            .bind(older_than.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .execute(write)
            .await?
            .rows_affected(),
            Backend::Postgres(pool) => sqlx::query(
                "DELETE FROM idempotency_keys WHERE created_at < $1 \
                     AND idempotency_key NOT LIKE 'reactor/%'",
            )
            .bind(older_than)
            .execute(pool)
            .await?
            .rows_affected(),
        })
    }

    /// Appends atomically: every write, every read check and the idempotency record, or nothing.
    /// Concurrent appends share transactions ([`group`]); each is still checked and answered
    /// on its own, after the commit.
    pub async fn append(&self, batch: AppendBatch) -> Result<Vec<EventEnvelope>, StoreError> {
        if self.routes.is_empty() {
            return self.append_own(batch).await;
        }
        let target = self.for_context(&batch.context);
        // Every written stream must be in the command's database: one transaction.
        for write in &batch.writes {
            if !self.holder(&write.aggregate_type).same_database(target) {
                return Err(StoreError::CrossDatabase {
                    context: batch.context.clone(),
                    aggregate_type: write.aggregate_type.clone(),
                });
            }
        }
        // Streams read in another database cannot be locked in this transaction: each is
        // checked at its version there just before the append (see docs/scale-out.md).
        let (elsewhere, here): (Vec<StreamRead>, Vec<StreamRead>) = batch
            .reads
            .iter()
            .cloned()
            .partition(|read| !self.holder(&read.aggregate_type).same_database(target));
        for read in &elsewhere {
            let stream = self
                .holder(&read.aggregate_type)
                .load(
                    &read.aggregate_type,
                    std::slice::from_ref(&read.aggregate_id),
                )
                .await?;
            let actual = stream
                .get(&read.aggregate_id)
                .and_then(|events| events.last())
                .map_or(0, |event| event.sequence);
            if actual != read.version {
                return Err(StoreError::Conflict {
                    aggregate_type: read.aggregate_type.clone(),
                    aggregate_id: read.aggregate_id.clone(),
                    expected: read.version,
                    actual,
                });
            }
        }
        target
            .append_own(AppendBatch {
                reads: here,
                ..batch
            })
            .await
    }

    /// [`EventStore::append`] in this handle's own database.
    async fn append_own(&self, batch: AppendBatch) -> Result<Vec<EventEnvelope>, StoreError> {
        let count: usize = batch.writes.iter().map(|w| w.events.len()).sum();
        if count > APPEND_EVENTS_MAX {
            return Err(StoreError::AppendTooLarge { count });
        }
        let mut reads = batch.reads.clone();
        // A fixed lock order keeps two commands that read the same streams from deadlocking.
        reads.sort();
        // Protects stored data: each stream's sequences continue its expected version exactly
        // (a command writes a few streams: looked up by a scan, no key copied per event).
        let mut next: Vec<(String, String, i64)> = batch
            .writes
            .iter()
            .map(|w| {
                (
                    w.aggregate_type.clone(),
                    w.aggregate_id.clone(),
                    w.expected_version + 1,
                )
            })
            .collect();
        let started = Instant::now();
        let span = tracing::info_span!(
            "store append",
            db.system = self.backend(),
            events = count,
            streams = batch.writes.len(),
            checked = reads.len(),
        );
        let stored = async {
            let (batch, reads) = match &self.group {
                Some(group) => match group.append(batch, reads).await {
                    Ok(answer) => return answer,
                    Err(alone) => alone,
                },
                None => (batch, reads),
            };
            match &self.backend {
                Backend::Sqlite { write, .. } => append_sqlite(write, &batch, &reads).await,
                Backend::Postgres(pool) => append_postgres(pool, &batch, &reads).await,
            }
        }
        .instrument(span)
        .await;
        observe(self.backend(), "append", started);
        if let Err(StoreError::Conflict { .. }) = &stored {
            self.scoped.clear();
        }
        let stored = stored?;
        self.scoped.written(
            stored
                .iter()
                .map(|e| (e.aggregate_type.as_str(), e.aggregate_id.as_str())),
        );
        crate::telemetry::appended(&stored);
        bump(&self.appended);
        if let Some(announcements) = &self.announcements {
            announcements.appended();
        }
        for event in &stored {
            let expected = next
                .iter_mut()
                .rev()
                .find(|(t, id, _)| *t == event.aggregate_type && *id == event.aggregate_id)
                .map(|(_, _, seq)| seq);
            assert!(
                matches!(&expected, Some(seq) if **seq == event.sequence),
                "stored sequence {} of {}/{} does not follow the expected version",
                event.sequence,
                event.aggregate_type,
                event.aggregate_id
            );
            if let Some(seq) = expected {
                *seq += 1;
            }
        }
        Ok(stored)
    }

    /// Events after `cursor` in global order, at most about `events_max`, ending on a
    /// transaction boundary. Never skips an event that commits after a later one. Readers at
    /// the feed's head share one query (see [`tail`]).
    pub async fn read_feed(&self, cursor: i64, events_max: usize) -> Result<FeedBatch, StoreError> {
        let shared = self.read_feed_shared(cursor, events_max).await?;
        Ok(FeedBatch {
            events: shared
                .events
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect(),
            cursor: shared.cursor,
        })
    }

    /// [`EventStore::read_feed`], the events shared with the process's other readers.
    pub async fn read_feed_shared(
        &self,
        cursor: i64,
        events_max: usize,
    ) -> Result<SharedFeedBatch, StoreError> {
        self.tail.read(self, cursor, events_max).await
    }

    /// [`EventStore::read_feed`] from the database.
    async fn query_feed(&self, cursor: i64, events_max: usize) -> Result<FeedBatch, StoreError> {
        let limit = events_max.clamp(1, FEED_BATCH_EVENTS_MAX) as i64;
        let started = Instant::now();
        let events = match &self.backend {
            Backend::Sqlite { read, .. } => {
                let sql = format!(
                    "SELECT {COLUMNS_SQLITE} FROM events WHERE position > ? ORDER BY position LIMIT ?"
                );
                let rows = sqlx::query(&sql)
                    .bind(cursor)
                    .bind(limit)
                    .fetch_all(read)
                    .await?;
                rows.iter()
                    .map(envelope_from_sqlite)
                    .collect::<Result<Vec<_>, _>>()?
            }
            Backend::Postgres(pool) => read_feed_postgres(pool, cursor, limit).await?,
        };
        observe(self.backend(), "read_feed", started);
        let next = events.last().map_or(cursor, |event| event.cursor);
        // Offsets strictly increase: a feed that went backwards would replay events.
        assert!(
            next >= cursor,
            "feed cursor went backwards from {cursor} to {next}"
        );
        Ok(FeedBatch {
            events,
            cursor: next,
        })
    }

    /// How many events were committed after feed cursor `cursor`, counting at most `cap` (a
    /// follower's lag; the count stops at `cap` so a far-behind reader costs no full scan).
    pub async fn events_after(&self, cursor: i64, cap: i64) -> Result<i64, StoreError> {
        let started = Instant::now();
        let count: i64 = match &self.backend {
            Backend::Sqlite { read, .. } => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE position > ? LIMIT ?)",
                )
                .bind(cursor)
                .bind(cap)
                .fetch_one(read)
                .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM events \
                     WHERE transaction_id > ($1::bigint)::text::xid8 LIMIT $2) AS after",
                )
                .bind(cursor)
                .bind(cap)
                .fetch_one(pool)
                .await?
            }
        };
        observe(self.backend(), "events_after", started);
        Ok(count)
    }

    /// The feed cursor of the newest committed event (0 when the store is empty). A reader
    /// whose cursor reached it has seen every event committed before this call.
    pub async fn head_cursor(&self) -> Result<i64, StoreError> {
        let head: Option<i64> = match &self.backend {
            Backend::Sqlite { read, .. } => {
                sqlx::query_scalar("SELECT MAX(position) FROM events")
                    .fetch_one(read)
                    .await?
            }
            Backend::Postgres(pool) => {
                // Not bounded by xmin: that bound can lag behind committed events while any
                // other session in the cluster holds a transaction open.
                sqlx::query_scalar("SELECT MAX(transaction_id)::text::bigint FROM events")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(head.unwrap_or(0))
    }
}

impl tail::FeedQuery for EventStore {
    async fn query(&self, cursor: i64, events_max: usize) -> Result<FeedBatch, StoreError> {
        self.query_feed(cursor, events_max).await
    }
}

/// Records an event store operation's time (successful or not) in the database histogram.
fn observe(backend: &'static str, operation: &'static str, started: Instant) {
    metrics::histogram!(names::DB_DURATION, "backend" => backend, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
}

/// A stored snapshot: the state after `version` events, in the shape `snapshot_version`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    pub version: i64,
    pub snapshot_version: i32,
    pub state: serde_json::Value,
}

impl EventStore {
    /// The events of one aggregate after `after` (its sequence), in sequence order.
    pub async fn load_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        if let Some(store) = self.routed(aggregate_type) {
            return Box::pin(store.load_after(aggregate_type, aggregate_id, after)).await;
        }
        match &self.backend {
            Backend::Sqlite { read, .. } => {
                let sql = format!(
                    "SELECT {COLUMNS_SQLITE} FROM events WHERE aggregate_type = ? \
                     AND aggregate_id = ? AND sequence > ? ORDER BY sequence"
                );
                let rows = sqlx::query(&sql)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(after)
                    .fetch_all(read)
                    .await?;
                rows.iter().map(envelope_from_sqlite).collect()
            }
            Backend::Postgres(pool) => {
                let sql = format!(
                    "SELECT {COLUMNS_POSTGRES} FROM events WHERE aggregate_type = $1 \
                     AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence"
                );
                let rows = sqlx::query(&sql)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(after)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(envelope_from_postgres).collect()
            }
        }
    }

    /// One stored event by its id.
    pub async fn event(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError> {
        for store in self.databases() {
            if let Some(event) = store.event_own(event_id).await? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    async fn event_own(&self, event_id: Uuid) -> Result<Option<EventEnvelope>, StoreError> {
        match &self.backend {
            Backend::Sqlite { read, .. } => {
                let sql = format!("SELECT {COLUMNS_SQLITE} FROM events WHERE event_id = ?");
                let row = sqlx::query(&sql)
                    .bind(event_id.to_string())
                    .fetch_optional(read)
                    .await?;
                row.as_ref().map(envelope_from_sqlite).transpose()
            }
            Backend::Postgres(pool) => {
                let sql = format!("SELECT {COLUMNS_POSTGRES} FROM events WHERE event_id = $1");
                let row = sqlx::query(&sql)
                    .bind(event_id)
                    .fetch_optional(pool)
                    .await?;
                row.as_ref().map(envelope_from_postgres).transpose()
            }
        }
    }

    /// The aggregate's snapshot, if one was taken.
    pub async fn snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        if let Some(store) = self.routed(aggregate_type) {
            return Box::pin(store.snapshot(aggregate_type, aggregate_id)).await;
        }
        let row: Option<(i64, i32, String)> = match &self.backend {
            Backend::Sqlite { read, .. } => {
                sqlx::query_as(
                    "SELECT version, snapshot_version, state FROM snapshots \
                     WHERE aggregate_type = ? AND aggregate_id = ?",
                )
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_optional(read)
                .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT version, snapshot_version, state::text FROM snapshots \
                     WHERE aggregate_type = $1 AND aggregate_id = $2",
                )
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_optional(pool)
                .await?
            }
        };
        row.map(|(version, snapshot_version, state)| {
            Ok(StoredSnapshot {
                version,
                snapshot_version,
                state: serde_json::from_str(&state).map_err(|e| corrupt(0, e))?,
            })
        })
        .transpose()
    }

    /// Saves a snapshot unless a newer one of the same shape is stored already.
    pub async fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &StoredSnapshot,
    ) -> Result<(), StoreError> {
        if let Some(store) = self.routed(aggregate_type) {
            return Box::pin(store.save_snapshot(aggregate_type, aggregate_id, snapshot)).await;
        }
        let state = snapshot.state.to_string();
        match &self.backend {
            Backend::Sqlite { write, .. } => {
                sqlx::query(
                    "INSERT INTO snapshots (aggregate_type, aggregate_id, version, snapshot_version, state, taken_at) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET \
                     version = excluded.version, snapshot_version = excluded.snapshot_version, \
                     state = excluded.state, taken_at = excluded.taken_at \
                     WHERE snapshots.version < excluded.version \
                        OR snapshots.snapshot_version <> excluded.snapshot_version",
                )
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(snapshot.version)
                .bind(snapshot.snapshot_version)
                .bind(state)
                .bind(Utc::now().to_rfc3339())
                .execute(write)
                .await?;
            }
            Backend::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO snapshots (aggregate_type, aggregate_id, version, snapshot_version, state) \
                     VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET \
                     version = excluded.version, snapshot_version = excluded.snapshot_version, \
                     state = excluded.state, taken_at = now() \
                     WHERE snapshots.version < excluded.version \
                        OR snapshots.snapshot_version <> excluded.snapshot_version",
                )
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(snapshot.version)
                .bind(snapshot.snapshot_version)
                .bind(state)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }
}

/// A relay's saved progress: the feed cursor published up to and the next relay sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayPosition {
    pub cursor: i64,
    pub next_sequence: i64,
}

/// Held while this process is the active relay; dropping it lets a standby take over.
pub struct RelayLease {
    /// Detached from the pool: dropping the lease closes the connection, which releases the
    /// advisory lock (a pooled connection would keep holding it).
    _connection: Option<sqlx::PgConnection>,
}

impl EventStore {
    /// Becomes the one active relay named `relay`, or `None` while another instance holds it.
    /// PostgreSQL: a session advisory lock on a dedicated connection, released by the database
    /// when this process dies. SQLite has one process by construction.
    pub async fn try_lease_relay(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(Some(RelayLease { _connection: None })),
            Backend::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                let acquired: bool = sqlx::query_scalar(
                    "SELECT pg_try_advisory_lock(hashtext('tributary-relay'), hashtext($1))",
                )
                .bind(relay)
                .fetch_one(&mut *connection)
                .await?;
                Ok(acquired.then(|| RelayLease {
                    _connection: Some(connection.detach()),
                }))
            }
        }
    }

    pub async fn relay_position(&self, relay: &str) -> Result<RelayPosition, StoreError> {
        let row: Option<(i64, i64)> = match &self.backend {
            Backend::Sqlite { read, .. } => {
                sqlx::query_as("SELECT cursor, next_sequence FROM relay_positions WHERE relay = ?")
                    .bind(relay)
                    .fetch_optional(read)
                    .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_as("SELECT cursor, next_sequence FROM relay_positions WHERE relay = $1")
                    .bind(relay)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(row.map_or(
            RelayPosition {
                cursor: 0,
                next_sequence: 1,
            },
            |(cursor, next_sequence)| RelayPosition {
                cursor,
                next_sequence,
            },
        ))
    }

    /// Saves a relay's progress after its batch was acknowledged by the broker.
    pub async fn save_relay_position(
        &self,
        relay: &str,
        position: RelayPosition,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { write, .. } => {
                sqlx::query(
                    "INSERT INTO relay_positions (relay, cursor, next_sequence, updated_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (relay) DO UPDATE SET cursor = excluded.cursor, \
                     next_sequence = excluded.next_sequence, updated_at = excluded.updated_at",
                )
                .bind(relay)
                .bind(position.cursor)
                .bind(position.next_sequence)
                .bind(Utc::now().to_rfc3339())
                .execute(write)
                .await?;
            }
            Backend::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO relay_positions (relay, cursor, next_sequence) VALUES ($1, $2, $3) \
                     ON CONFLICT (relay) DO UPDATE SET cursor = excluded.cursor, \
                     next_sequence = excluded.next_sequence, updated_at = now()",
                )
                .bind(relay)
                .bind(position.cursor)
                .bind(position.next_sequence)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }
}

async fn read_feed_postgres(
    pool: &PgPool,
    cursor: i64,
    limit: i64,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS_POSTGRES} FROM events \
         WHERE transaction_id > ($1::bigint)::text::xid8 \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY transaction_id, position LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(cursor)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let mut events = rows
        .iter()
        .map(envelope_from_postgres)
        .collect::<Result<Vec<_>, _>>()?;
    if events.len() as i64 == limit {
        // The limit may have cut the last transaction: drop it, or, when the batch is that one
        // transaction, read the rest of it (an append holds at most APPEND_EVENTS_MAX events).
        let last = events.last().map_or(cursor, |event| event.cursor);
        if events.first().is_some_and(|event| event.cursor != last) {
            events.retain(|event| event.cursor != last);
        } else {
            let sql = format!(
                "SELECT {COLUMNS_POSTGRES} FROM events \
                 WHERE transaction_id = ($1::bigint)::text::xid8 ORDER BY position"
            );
            let rows = sqlx::query(&sql).bind(last).fetch_all(pool).await?;
            events = rows
                .iter()
                .map(envelope_from_postgres)
                .collect::<Result<Vec<_>, _>>()?;
        }
    }
    Ok(events)
}

/// One event to insert: its stream, sequence, event and new id.
type NewEventRow<'a> = (&'a StreamWrite, i64, &'a NewEvent, Uuid);

fn new_event_rows(batch: &AppendBatch) -> Vec<NewEventRow<'_>> {
    let mut rows = Vec::new();
    for write in &batch.writes {
        for (index, event) in write.events.iter().enumerate() {
            rows.push((
                write,
                write.expected_version + 1 + index as i64,
                event,
                Uuid::now_v7(),
            ));
        }
    }
    rows
}

/// The context an event belongs to: its aggregate's (the part of its qualified type before the
/// dot), whichever context's command appended it; the batch's for an unqualified type.
fn event_context<'a>(batch: &'a AppendBatch, write: &'a StreamWrite) -> &'a str {
    write
        .aggregate_type
        .split_once('.')
        .map_or(batch.context.as_str(), |(context, _)| context)
}

fn source_of(context: &str) -> String {
    format!("/tributary/{context}")
}

async fn append_sqlite(
    pool: &SqlitePool,
    batch: &AppendBatch,
    reads: &[StreamRead],
) -> Result<Vec<EventEnvelope>, StoreError> {
    let mut tx = pool.begin().await?;
    let stored = append_sqlite_in(&mut tx, batch, reads).await?;
    tx.commit().await?;
    Ok(stored)
}

/// One command's append inside the caller's transaction (or savepoint), which commits it.
async fn append_sqlite_in(
    tx: &mut sqlx::SqliteConnection,
    batch: &AppendBatch,
    reads: &[StreamRead],
) -> Result<Vec<EventEnvelope>, StoreError> {
    for read in reads {
        let actual: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM streams WHERE aggregate_type = ? AND aggregate_id = ?",
        )
        .bind(&read.aggregate_type)
        .bind(&read.aggregate_id)
        .fetch_optional(&mut *tx)
        .await?;
        check_version(
            &read.aggregate_type,
            &read.aggregate_id,
            read.version,
            actual.unwrap_or(0),
        )?;
    }
    for write in &batch.writes {
        let actual: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM streams WHERE aggregate_type = ? AND aggregate_id = ?",
        )
        .bind(&write.aggregate_type)
        .bind(&write.aggregate_id)
        .fetch_optional(&mut *tx)
        .await?;
        check_version(
            &write.aggregate_type,
            &write.aggregate_id,
            write.expected_version,
            actual.unwrap_or(0),
        )?;
        sqlx::query(
            "INSERT INTO streams (aggregate_type, aggregate_id, version) VALUES (?, ?, ?) \
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = excluded.version",
        )
        .bind(&write.aggregate_type)
        .bind(&write.aggregate_id)
        .bind(write.expected_version + write.events.len() as i64)
        .execute(&mut *tx)
        .await?;
    }
    let metadata = metadata_json(&batch.metadata);
    let time = batch
        .time
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut stored = Vec::new();
    for (write, sequence, event, id) in new_event_rows(batch) {
        let position: i64 = sqlx::query_scalar(
            "INSERT INTO events (event_id, context, aggregate_type, aggregate_id, sequence, \
             event_type, event_version, source, time, payload, metadata) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING position",
        )
        .bind(id.to_string())
        .bind(event_context(batch, write))
        .bind(&write.aggregate_type)
        .bind(&write.aggregate_id)
        .bind(sequence)
        .bind(&event.event_type)
        .bind(event.event_version)
        .bind(source_of(event_context(batch, write)))
        .bind(&time)
        .bind(event.payload.to_string())
        .bind(&metadata)
        .fetch_one(&mut *tx)
        .await?;
        stored.push(envelope(
            batch, write, sequence, event, id, position, position,
        ));
    }
    if let Some(record) = &batch.idempotency {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (idempotency_key, request_hash, status, body, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&record.key)
        .bind(&record.request_hash)
        .bind(i64::from(record.status))
        .bind(&record.body)
        .bind(&time)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::IdempotencyKeyTaken {
                key: record.key.clone(),
            });
        }
    }
    Ok(stored)
}

async fn append_postgres<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    batch: &AppendBatch,
    reads: &[StreamRead],
) -> Result<Vec<EventEnvelope>, StoreError> {
    // One statement, so one round trip and its own transaction: `append_events` (migration
    // 0003) locks and checks the reads, moves the streams and inserts events and idempotency key.
    let rows = new_event_rows(batch);
    let idempotency = batch.idempotency.as_ref();
    let stored_rows = sqlx::query(
        "SELECT o_event_id, o_position, o_cursor FROM append_events( \
         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22)",
    )
    .bind(column(reads, |r| r.aggregate_type.as_str()))
    .bind(column(reads, |r| r.aggregate_id.as_str()))
    .bind(column(reads, |r| r.version))
    .bind(column(&batch.writes, |w| w.aggregate_type.as_str()))
    .bind(column(&batch.writes, |w| w.aggregate_id.as_str()))
    .bind(column(&batch.writes, |w| w.expected_version))
    .bind(column(&batch.writes, |w| {
        w.expected_version + w.events.len() as i64
    }))
    .bind(column(&rows, |(_, _, _, id)| *id))
    .bind(column(&rows, |(w, _, _, _)| w.aggregate_type.as_str()))
    .bind(column(&rows, |(w, _, _, _)| w.aggregate_id.as_str()))
    .bind(column(&rows, |(_, sequence, _, _)| *sequence))
    .bind(column(&rows, |(_, _, e, _)| e.event_type.as_str()))
    .bind(column(&rows, |(_, _, e, _)| e.event_version))
    .bind(column(&rows, |(_, _, e, _)| e.payload.to_string()))
    .bind(&batch.context)
    .bind(source_of(&batch.context))
    .bind(batch.time)
    .bind(metadata_json(&batch.metadata))
    .bind(idempotency.map(|r| r.key.as_str()))
    .bind(idempotency.map(|r| r.request_hash.as_str()))
    .bind(idempotency.map(|r| i32::from(r.status)))
    .bind(idempotency.map(|r| r.body.as_str()))
    .fetch_all(executor)
    .await
    .map_err(|error| append_error(error, batch))?;
    let mut positions: HashMap<Uuid, (i64, i64)> = HashMap::with_capacity(stored_rows.len());
    for row in &stored_rows {
        positions.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
    }
    stored_envelopes(batch, &rows, &positions, "append_events")
}

/// The stored envelopes of `batch`'s `rows`, with the positions and cursors `function`
/// answered per event id; an event it did not answer for is corruption.
fn stored_envelopes(
    batch: &AppendBatch,
    rows: &[NewEventRow<'_>],
    positions: &HashMap<Uuid, (i64, i64)>,
    function: &str,
) -> Result<Vec<EventEnvelope>, StoreError> {
    rows.iter()
        .map(|(write, sequence, event, id)| {
            let (position, cursor) =
                positions
                    .get(id)
                    .copied()
                    .ok_or_else(|| StoreError::Corrupt {
                        position: 0,
                        reason: format!("{function} returned no position for event {id}"),
                    })?;
            Ok(envelope(
                batch, write, *sequence, event, *id, position, cursor,
            ))
        })
        .collect()
}

/// One field of every item: an array parameter of `append_events`.
fn column<'a, T, U>(items: &'a [T], field: impl Fn(&'a T) -> U) -> Vec<U> {
    items.iter().map(field).collect()
}

/// `append_events`' own failures (SQLSTATE TR409, TR412) and PostgreSQL's serialization
/// failures as the store's errors.
fn append_error(error: sqlx::Error, batch: &AppendBatch) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        let detail = db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.detail())
            .or_else(|| {
                db.try_downcast_ref::<group::GroupError>()
                    .map(|g| g.detail.as_str())
            })
            .unwrap_or_default()
            .to_owned();
        match db.code().as_deref() {
            Some("TR409") => {
                #[derive(serde::Deserialize)]
                struct Detail {
                    aggregate_type: String,
                    aggregate_id: String,
                    expected: i64,
                    actual: i64,
                }
                if let Ok(d) = serde_json::from_str::<Detail>(&detail) {
                    return StoreError::Conflict {
                        aggregate_type: d.aggregate_type,
                        aggregate_id: d.aggregate_id,
                        expected: d.expected,
                        actual: d.actual,
                    };
                }
            }
            Some("TR412") => return StoreError::IdempotencyKeyTaken { key: detail },
            _ => {}
        }
    }
    match batch.writes.first() {
        Some(write) => conflict_on_serialization(
            &write.aggregate_type,
            &write.aggregate_id,
            write.expected_version,
        )(error),
        None => error.into(),
    }
}

/// Maps unique violations, serialization failures and deadlocks to a concurrency conflict.
fn conflict_on_serialization<'a>(
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    expected: i64,
) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |error| match &error {
        sqlx::Error::Database(db)
            if matches!(
                db.code().as_deref(),
                Some("23505") | Some("40001") | Some("40P01")
            ) =>
        {
            StoreError::Conflict {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                expected,
                actual: -1,
            }
        }
        _ => StoreError::from(error),
    }
}

fn check_version(
    aggregate_type: &str,
    aggregate_id: &str,
    expected: i64,
    actual: i64,
) -> Result<(), StoreError> {
    if expected == actual {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            expected,
            actual,
        })
    }
}

fn metadata_json(metadata: &Metadata) -> String {
    // Serializing a struct of strings cannot fail.
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

fn envelope(
    batch: &AppendBatch,
    write: &StreamWrite,
    sequence: i64,
    event: &NewEvent,
    id: Uuid,
    position: i64,
    cursor: i64,
) -> EventEnvelope {
    EventEnvelope {
        id,
        context: event_context(batch, write).to_owned(),
        aggregate_type: write.aggregate_type.clone(),
        aggregate_id: write.aggregate_id.clone(),
        sequence,
        event_type: event.event_type.clone(),
        event_version: event.event_version,
        source: source_of(event_context(batch, write)),
        time: batch.time,
        position,
        cursor,
        payload: event.payload.clone(),
        metadata: batch.metadata.clone(),
    }
}

fn corrupt(position: i64, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: reason.to_string(),
    }
}

fn envelope_from_sqlite(row: &SqliteRow) -> Result<EventEnvelope, StoreError> {
    let position: i64 = row.try_get("position")?;
    let id: String = row.try_get("event_id")?;
    let time: String = row.try_get("time")?;
    let payload: String = row.try_get("payload")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(EventEnvelope {
        id: Uuid::parse_str(&id).map_err(|e| corrupt(position, e))?,
        context: row.try_get("context")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        source: row.try_get("source")?,
        time: DateTime::parse_from_rfc3339(&time)
            .map_err(|e| corrupt(position, e))?
            .with_timezone(&Utc),
        position,
        cursor: row.try_get("cursor")?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt(position, e))?,
        metadata: serde_json::from_str(&metadata).map_err(|e| corrupt(position, e))?,
    })
}

fn envelope_from_postgres(row: &PgRow) -> Result<EventEnvelope, StoreError> {
    let position: i64 = row.try_get("position")?;
    let payload: String = row.try_get("payload")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(EventEnvelope {
        id: row.try_get("event_id")?,
        context: row.try_get("context")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        source: row.try_get("source")?,
        time: row.try_get("time")?,
        position,
        cursor: row.try_get("cursor")?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt(position, e))?,
        metadata: serde_json::from_str(&metadata).map_err(|e| corrupt(position, e))?,
    })
}

/// A decided command: what to append, what it read, and what to answer.
#[derive(Debug, Clone)]
pub struct Decision<T> {
    pub writes: Vec<StreamWrite>,
    pub reads: Vec<StreamRead>,
    pub outcome: T,
}

impl<T> Decision<T> {
    /// The append that stores this decision now, with its outcome handed back.
    pub fn into_batch(
        self,
        context: &str,
        metadata: Metadata,
        idempotency: Option<IdempotencyRecord>,
    ) -> (AppendBatch, T) {
        let batch = AppendBatch {
            context: context.to_owned(),
            writes: self.writes,
            reads: self.reads,
            metadata,
            idempotency,
            time: Utc::now(),
        };
        (batch, self.outcome)
    }
}
