//! Group commit: the appends of concurrent commands share one database transaction.
//!
//! ```text
//!  command ─► append ─► queue ─► leader: the first command waiting, then every other one
//!  command ─► append ─┘          already queued (up to `commands_max`, waiting at most
//!                                `window` for more) ─► one transaction, each command in its
//!  command ◄── its own answer ◄─ own savepoint ─► commit ─► every caller answered
//! ```
//!
//! Each command is still checked against the versions it read and wrote. PostgreSQL first
//! appends the group whole, without subtransactions (`append_event_group_whole`, migration
//! 0015); if any command fails there, nothing is stored and the group is appended again with a
//! savepoint per command (a subtransaction of `append_event_group`, migration 0013), so a
//! command that fails is rolled back alone, with its own error, and its neighbours go on.
//! SQLite takes the savepoints at once (they cost it nothing). A caller is answered
//! only after the commit of its group returned, so an answered append is as durable as one
//! appended alone. Several leaders work at once, so one group is collected while another
//! commits.
//!
//! A group holds at most [`APPEND_EVENTS_MAX`] events (the bound a feed batch relies on):
//! commands larger than `APPEND_EVENTS_MAX / commands_max` events are appended alone.

use super::{
    APPEND_EVENTS_MAX, AppendBatch, Backend, NewEventRow, PING_IDLE_AFTER, StoreError, StreamRead,
    append_error, append_postgres, append_sqlite, append_sqlite_in, column, metadata_json,
    new_event_rows, stored_envelopes,
};
use crate::envelope::EventEnvelope;
use crate::telemetry::names;
use sqlx::Row;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgRow, Postgres};
use sqlx::sqlite::SqlitePool;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use uuid::Uuid;

/// How concurrent appends are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// Commands in one transaction at most; 1 appends every command alone.
    pub commands_max: usize,
    /// How long a leader waits for more commands after the first (zero: it takes what is
    /// queued when it starts).
    pub window: Duration,
    /// Transactions collected and committed at once.
    pub leaders: usize,
    /// While another leader's group is being committed, a leader holding fewer commands than
    /// this waits for that commit to end or for this many commands, whichever comes first
    /// (0 or 1: it takes what is queued at once). Leaders then take turns with full groups
    /// instead of racing each other with half-empty ones; with nothing in flight a command is
    /// never held back.
    pub gather: usize,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        GroupCommitOptions {
            // PostgreSQL keeps 64 subtransactions per backend in shared memory; more overflow
            // into pg_subtrans and slow every snapshot.
            commands_max: 32,
            window: Duration::ZERO,
            leaders: 2,
            gather: 0,
        }
    }
}

/// The answer of one appended command.
pub(super) type Answer = Result<Vec<EventEnvelope>, StoreError>;

pub(super) struct Pending {
    pub batch: AppendBatch,
    pub reads: Vec<StreamRead>,
    pub answer: oneshot::Sender<Answer>,
}

/// The queue in front of the leaders; appends go straight to the database without it.
#[derive(Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    events_max: usize,
    pub counts: Arc<GroupCounts>,
}

/// What the leaders did since they started.
#[derive(Debug, Default)]
pub struct GroupCounts {
    /// Transactions the leaders appended (a command alone counts as a group of one).
    pub groups: AtomicU64,
    /// Commands in them.
    pub commands: AtomicU64,
    /// Groups appended again command by command (PostgreSQL).
    pub splits: AtomicU64,
}

impl GroupCommit {
    /// Starts `options.leaders` leaders on the current runtime; they end when the last
    /// handle of the queue is dropped. `None` when grouping is off.
    pub fn start(backend: &Backend, options: GroupCommitOptions) -> Option<GroupCommit> {
        if options.commands_max < 2 || options.leaders == 0 {
            return None;
        }
        let (queue, receiver) = mpsc::channel(options.commands_max * options.leaders * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        let counts = Arc::new(GroupCounts::default());
        let committing = Arc::new(Committing::default());
        for _ in 0..options.leaders {
            tokio::spawn(lead(
                receiver.clone(),
                backend.clone(),
                options,
                counts.clone(),
                committing.clone(),
            ));
        }
        Some(GroupCommit {
            queue,
            events_max: APPEND_EVENTS_MAX / options.commands_max,
            counts,
        })
    }

    /// Appends through a leader; `Err(batch)` when the command is to be appended alone (too
    /// large, or no leader runs: its runtime ended).
    pub async fn append(
        &self,
        batch: AppendBatch,
        reads: Vec<StreamRead>,
    ) -> Result<Answer, (AppendBatch, Vec<StreamRead>)> {
        let events: usize = batch.writes.iter().map(|w| w.events.len()).sum();
        if events > self.events_max {
            return Err((batch, reads));
        }
        let (answer, answered) = oneshot::channel();
        if let Err(mpsc::error::SendError(pending)) = self
            .queue
            .send(Pending {
                batch,
                reads,
                answer,
            })
            .await
        {
            return Err((pending.batch, pending.reads));
        }
        // A leader that ends without answering was stopped with its runtime, maybe mid-commit.
        Ok(answered.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(sqlx::Error::Protocol(
                "the group commit stopped before answering: the append may or may not be stored"
                    .into(),
            )))
        }))
    }
}

/// The groups being committed, and a wake-up each time one is.
#[derive(Default)]
struct Committing {
    groups: AtomicUsize,
    done: Notify,
}

async fn lead(
    receiver: Arc<Mutex<mpsc::Receiver<Pending>>>,
    backend: Backend,
    options: GroupCommitOptions,
    counts: Arc<GroupCounts>,
    committing: Arc<Committing>,
) {
    let mut held = Held::default();
    loop {
        let group = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut group = vec![first];
            let deadline = tokio::time::Instant::now() + options.window;
            while group.len() < options.commands_max {
                match receiver.try_recv() {
                    Ok(next) => group.push(next),
                    Err(mpsc::error::TryRecvError::Empty) if !options.window.is_zero() => {
                        match tokio::time::timeout_at(deadline, receiver.recv()).await {
                            Ok(Some(next)) => group.push(next),
                            _ => break,
                        }
                    }
                    Err(_) => break,
                }
            }
            gather(&mut receiver, &mut group, &options, &committing).await;
            // Counted before the queue is let go, so the next leader sees this group in flight.
            committing.groups.fetch_add(1, Ordering::AcqRel);
            group
        };
        metrics::histogram!(names::STORE_GROUP_COMMANDS, "backend" => backend.name())
            .record(group.len() as f64);
        counts.groups.fetch_add(1, Ordering::Relaxed);
        counts
            .commands
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let (work, answers): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|p| ((p.batch, p.reads), p.answer))
            .unzip();
        let results = match &backend {
            Backend::Postgres(pool) => {
                append_group_postgres(&mut held, pool, &work, &counts.splits).await
            }
            Backend::Sqlite { write, .. } => append_group_sqlite(write, &work).await,
        };
        committing.groups.fetch_sub(1, Ordering::AcqRel);
        committing.done.notify_waiters();
        for (answer, result) in answers.into_iter().zip(results) {
            // The caller may have gone (its request cancelled): its append stays stored.
            let _ = answer.send(result);
        }
    }
}

/// Holds a short group back while another is being committed: until that commit ends or
/// `options.gather` commands are queued, then takes what else is waiting.
async fn gather(
    receiver: &mut mpsc::Receiver<Pending>,
    group: &mut Vec<Pending>,
    options: &GroupCommitOptions,
    committing: &Committing,
) {
    let enough = options.gather.min(options.commands_max);
    if group.len() >= enough {
        return;
    }
    let done = committing.done.notified();
    tokio::pin!(done);
    // Registered before looking, so a commit ending in between still wakes this leader.
    done.as_mut().enable();
    if committing.groups.load(Ordering::Acquire) == 0 {
        return;
    }
    while group.len() < enough {
        tokio::select! {
            biased;
            () = &mut done => break,
            next = receiver.recv() => match next {
                Some(next) => group.push(next),
                None => return,
            },
        }
    }
    while group.len() < options.commands_max {
        match receiver.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
}

/// A leader's own PostgreSQL connection, kept from one group to the next: a connection given
/// back to sqlx's pool is pinged there at every release (sqlx 0.8 `return_to_pool`, not
/// configurable), one more round trip per group for the database and for this process.
#[derive(Default)]
struct Held {
    connection: Option<(PoolConnection<Postgres>, Instant)>,
}

impl Held {
    /// The held connection, or a pooled one when none is held or it was idle long enough to be
    /// checked again (the pool pings it then, as it does any connection idle that long).
    async fn connection(&mut self, pool: &PgPool) -> Result<&mut PgConnection, sqlx::Error> {
        if let Some((_, used)) = &self.connection
            && used.elapsed() >= PING_IDLE_AFTER
        {
            self.connection = None;
        }
        let connection = match self.connection.take() {
            Some((connection, _)) => connection,
            None => pool.acquire().await?,
        };
        let (connection, _) = self.connection.insert((connection, Instant::now()));
        Ok(&mut **connection)
    }

    /// Lets the connection go after a group whose answers say it may be broken.
    fn check(&mut self, answers: &[Answer]) {
        if answers
            .iter()
            .any(|a| matches!(a, Err(StoreError::Unavailable(_))))
        {
            self.connection = None;
        }
    }
}

/// One answer per command, in order.
async fn append_group_postgres(
    held: &mut Held,
    pool: &PgPool,
    work: &[(AppendBatch, Vec<StreamRead>)],
    splits: &AtomicU64,
) -> Vec<Answer> {
    let answers = match held.connection(pool).await {
        Ok(connection) => append_group_on(connection, work, splits).await,
        Err(error) => group_failed(&StoreError::from(error), work.len()),
    };
    held.check(&answers);
    answers
}

async fn append_group_on(
    connection: &mut PgConnection,
    work: &[(AppendBatch, Vec<StreamRead>)],
    splits: &AtomicU64,
) -> Vec<Answer> {
    if let [(batch, reads)] = work {
        return vec![append_postgres(&mut *connection, batch, reads).await];
    }
    let rows: Vec<_> = work
        .iter()
        .map(|(batch, _)| new_event_rows(batch))
        .collect();
    // Whole first: no subtransaction, a few set-based statements. If any command fails, nothing
    // is stored and the group is appended again command by command, each with its own answer.
    let whole = "append_event_group_whole";
    let (function, answer) = match call_group(connection, whole, work, &rows).await {
        Err(sqlx::Error::Database(_)) => {
            metrics::counter!(names::STORE_GROUP_SPLIT, "backend" => "postgres").increment(1);
            splits.fetch_add(1, Ordering::Relaxed);
            let split = "append_event_group";
            (split, call_group(connection, split, work, &rows).await)
        }
        answer => (whole, answer),
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => return group_failed(&StoreError::from(error), work.len()),
    };
    let mut positions: HashMap<Uuid, (i64, i64)> = HashMap::with_capacity(answer.len());
    let mut failed: HashMap<usize, StoreError> = HashMap::new();
    for row in &answer {
        let parsed = (|| -> Result<(), sqlx::Error> {
            let command = usize::try_from(row.try_get::<i32, _>(0)?).unwrap_or(0);
            match row.try_get::<Option<Uuid>, _>(1)? {
                Some(id) => {
                    positions.insert(id, (row.try_get(2)?, row.try_get(3)?));
                }
                None => {
                    let code: Option<String> = row.try_get(4)?;
                    let message: Option<String> = row.try_get(5)?;
                    let detail: Option<String> = row.try_get(6)?;
                    if let Some((batch, _)) = command.checked_sub(1).and_then(|c| work.get(c)) {
                        failed.insert(command - 1, command_failed(batch, code, message, detail));
                    }
                }
            }
            Ok(())
        })();
        if let Err(error) = parsed {
            return group_failed(&StoreError::from(error), work.len());
        }
    }
    rows.iter()
        .zip(work)
        .enumerate()
        .map(|(c, (rows, (batch, _)))| match failed.remove(&c) {
            Some(error) => Err(error),
            None => stored_envelopes(batch, rows, &positions, function),
        })
        .collect()
}

/// Calls `function` (`append_event_group` or `append_event_group_whole`: same parameters, same
/// answer) with the group's commands as arrays, each command's part ending at its `*_ends`.
async fn call_group(
    connection: &mut PgConnection,
    function: &str,
    work: &[(AppendBatch, Vec<StreamRead>)],
    rows: &[Vec<NewEventRow<'_>>],
) -> Result<Vec<PgRow>, sqlx::Error> {
    let ends = |count: &dyn Fn(usize) -> usize| -> Vec<i32> {
        let mut end = 0;
        (0..work.len())
            .map(|c| {
                end += count(c);
                i32::try_from(end).unwrap_or(i32::MAX)
            })
            .collect()
    };
    let reads: Vec<&StreamRead> = work.iter().flat_map(|(_, reads)| reads).collect();
    let writes: Vec<_> = work.iter().flat_map(|(batch, _)| &batch.writes).collect();
    let events: Vec<_> = rows.iter().flatten().collect();
    let batches: Vec<&AppendBatch> = work.iter().map(|(batch, _)| batch).collect();
    let idempotency: Vec<_> = batches.iter().map(|b| b.idempotency.as_ref()).collect();
    sqlx::query(&format!(
        "SELECT o_command, o_event_id, o_position, o_cursor, o_code, o_message, o_detail \
         FROM {function}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
    ))
    .bind(column(&reads, |r| r.aggregate_type.as_str()))
    .bind(column(&reads, |r| r.aggregate_id.as_str()))
    .bind(column(&reads, |r| r.version))
    .bind(ends(&|c| work[c].1.len()))
    .bind(column(&writes, |w| w.aggregate_type.as_str()))
    .bind(column(&writes, |w| w.aggregate_id.as_str()))
    .bind(column(&writes, |w| w.expected_version))
    .bind(column(&writes, |w| {
        w.expected_version + w.events.len() as i64
    }))
    .bind(ends(&|c| work[c].0.writes.len()))
    .bind(column(&events, |(_, _, _, id)| *id))
    .bind(column(&events, |(w, _, _, _)| w.aggregate_type.as_str()))
    .bind(column(&events, |(w, _, _, _)| w.aggregate_id.as_str()))
    .bind(column(&events, |(_, sequence, _, _)| *sequence))
    .bind(column(&events, |(_, _, e, _)| e.event_type.as_str()))
    .bind(column(&events, |(_, _, e, _)| e.event_version))
    .bind(column(&events, |(_, _, e, _)| e.payload.to_string()))
    .bind(ends(&|c| rows[c].len()))
    .bind(column(&batches, |b| b.context.as_str()))
    .bind(column(&batches, |b| b.time))
    .bind(column(&batches, |b| metadata_json(&b.metadata)))
    .bind(column(&idempotency, |r| r.map(|r| r.key.as_str())))
    .bind(column(&idempotency, |r| r.map(|r| r.request_hash.as_str())))
    .bind(column(&idempotency, |r| r.map(|r| i32::from(r.status))))
    .bind(column(&idempotency, |r| r.map(|r| r.body.as_str())))
    .fetch_all(connection)
    .await
}

/// A command's error reported by `append_event_group`, as the store reports it for a command
/// appended alone.
fn command_failed(
    batch: &AppendBatch,
    code: Option<String>,
    message: Option<String>,
    detail: Option<String>,
) -> StoreError {
    append_error(
        sqlx::Error::Database(Box::new(GroupError {
            code: code.unwrap_or_default(),
            message: message.unwrap_or_default(),
            detail: detail.unwrap_or_default(),
        })),
        batch,
    )
}

/// Every command of a group that failed as a whole (nothing of it is stored, or, when the
/// connection broke at the commit, nobody knows): each caller gets the group's error.
fn group_failed(error: &StoreError, commands: usize) -> Vec<Answer> {
    (0..commands)
        .map(|_| {
            let text = sqlx::Error::Protocol(format!("group commit: {error}"));
            Err(match error {
                StoreError::Unavailable(_) => StoreError::Unavailable(text),
                _ => StoreError::Database(text),
            })
        })
        .collect()
}

/// SQLite: one transaction, a savepoint per command.
async fn append_group_sqlite(
    pool: &SqlitePool,
    work: &[(AppendBatch, Vec<StreamRead>)],
) -> Vec<Answer> {
    if let [(batch, reads)] = work {
        return vec![append_sqlite(pool, batch, reads).await];
    }
    let attempt = async {
        let mut tx = pool.begin().await?;
        let mut answers = Vec::with_capacity(work.len());
        for (batch, reads) in work {
            let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
            match append_sqlite_in(&mut savepoint, batch, reads).await {
                Ok(stored) => {
                    savepoint.commit().await?;
                    answers.push(Ok(stored));
                }
                Err(error) => {
                    savepoint.rollback().await?;
                    answers.push(Err(error));
                }
            }
        }
        tx.commit().await?;
        Ok::<_, StoreError>(answers)
    };
    match attempt.await {
        Ok(answers) => answers,
        Err(error) => group_failed(&error, work.len()),
    }
}

/// A command's failure inside `append_event_group`, as a database error with its SQLSTATE.
#[derive(Debug)]
pub(super) struct GroupError {
    code: String,
    message: String,
    pub detail: String,
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for GroupError {}

impl sqlx::error::DatabaseError for GroupError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.as_str().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.code.as_str() {
            "23505" => sqlx::error::ErrorKind::UniqueViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}
