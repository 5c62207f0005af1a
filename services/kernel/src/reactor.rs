//! Reactors: one context acting on another's published events, exactly once in effect.
//!
//! ```text
//!  feed / Kafka ──► follower (named cursor, one active instance) ──► Reactor::react(cause)
//!                        │                                              │ decide in the target
//!                        │                                              ▼ context, then
//!                        │               Cause::commit: events + idempotency key
//!                        │               "reactor/<name>/<source event id>" in one append
//!                        │                 (a repeat after a crash finds the key: no double)
//!                        │               a rejection ──► reactor_suspense (reason; retry
//!                        ▼                                 over REST once the cause is fixed)
//!                  cursor saved after the batch (a crash repeats reactions: idempotent)
//! ```
//! The command's id derives from (reactor, source event id); the causation id is the source
//! event's id; the correlation id is the source event's correlation id (the request that started
//! the chain), so a chain of reactions can be followed back to the user's command.

use crate::envelope::{EventEnvelope, Metadata};
use crate::module::Platform;
use crate::store::{Database, Decision, EventStore, IdempotencyRecord, StoreError};
use chrono::Utc;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tracing::Instrument;
use uuid::Uuid;

/// The event a reaction answers, and what derives from it.
pub struct Cause<'a> {
    pub reactor: &'static str,
    pub event: &'a EventEnvelope,
}

impl Cause<'_> {
    /// A stable id for the command this event causes: the same for every repeat.
    pub fn command_id(&self) -> Uuid {
        let mut hasher = Sha256::new();
        hasher.update(self.reactor.as_bytes());
        hasher.update([0]);
        hasher.update(self.event.id.as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // An RFC 9562 version 8 (custom) UUID.
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid::from_bytes(bytes)
    }

    pub fn idempotency_key(&self) -> String {
        format!("reactor/{}/{}", self.reactor, self.event.id)
    }

    /// The correlation id of the chain: the source event's, or the source event itself.
    pub fn correlation_id(&self) -> String {
        self.event
            .metadata
            .correlation_id
            .clone()
            .unwrap_or_else(|| self.event.id.to_string())
    }

    pub fn metadata(&self) -> Metadata {
        Metadata {
            // The request of the command that caused it: the audit trail's "from which request".
            request_id: self.event.metadata.request_id.clone(),
            idempotency_key: Some(self.idempotency_key()),
            user: self.event.metadata.user.clone(),
            causation_id: Some(self.event.id.to_string()),
            correlation_id: Some(self.correlation_id()),
            reactor: Some(self.reactor.to_owned()),
            // The reaction's span, which continues the source event's trace.
            traceparent: crate::telemetry::current_traceparent(),
        }
    }

    /// Whether this event's reaction is stored already (a repeat after a crash).
    pub async fn done(&self, store: &EventStore) -> Result<bool, StoreError> {
        Ok(store.idempotency(&self.idempotency_key()).await?.is_some())
    }

    /// Appends the target context's decision as this event's reaction, at most once.
    pub async fn commit<T>(
        &self,
        store: &EventStore,
        context: &str,
        decision: Decision<T>,
    ) -> Result<Reaction, StoreError> {
        let record = IdempotencyRecord {
            key: self.idempotency_key(),
            request_hash: self.command_id().to_string(),
            status: 201,
            body: serde_json::json!({ "command_id": self.command_id() }).to_string(),
        };
        let (batch, _) = decision.into_batch(context, self.metadata(), Some(record));
        match store.append(batch).await {
            Ok(_) | Err(StoreError::IdempotencyKeyTaken { .. }) => Ok(Reaction::Done),
            Err(error) => Err(error),
        }
    }
}

/// What a reactor did with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// The command was stored (now or before).
    Done,
    /// Nothing to do for this event.
    Ignored,
    /// The target context refused the command: into suspense with the reason.
    Rejected {
        reason: String,
        problem: serde_json::Value,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReactorError {
    /// Worth retrying later: the database or a dependency is away.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reactor {reactor}: {reason}")]
    Failed {
        reactor: &'static str,
        reason: String,
    },
}

/// A follower of other contexts' events that issues commands.
#[async_trait::async_trait]
pub trait Reactor: Send + Sync {
    /// Unique across modules: `<context>.<what it does>`, e.g. `finance.materials-postings`.
    fn name(&self) -> &'static str;
    /// The (qualified) aggregate types whose events it reads.
    fn follows(&self) -> &'static [&'static str];
    async fn react(&self, platform: &Platform, cause: &Cause<'_>)
    -> Result<Reaction, ReactorError>;
}

/// A rejected reaction waiting in suspense.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suspended {
    pub reactor: String,
    pub event_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub correlation_id: Option<String>,
    pub reason: String,
    pub problem: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    /// The causing event's company, when it has one.
    pub company: Option<String>,
}

/// The company an event belongs to: its payload's `company` field, when it has one.
pub fn company_of(event: &EventEnvelope) -> Option<&str> {
    event.payload.get("company").and_then(|c| c.as_str())
}

/// Suspense and follower positions in the event store's database.
pub struct Follow<'a> {
    pub store: &'a EventStore,
}

impl Follow<'_> {
    /// Records (or, on a retry, updates) a rejected reaction.
    pub async fn suspend(
        &self,
        cause: &Cause<'_>,
        reason: &str,
        problem: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let event = cause.event;
        let problem = problem.to_string();
        let correlation = cause.correlation_id();
        match self.store.database() {
            Database::Sqlite { write, .. } => {
                let now = Utc::now().to_rfc3339();
                sqlx::query(
                    "INSERT INTO reactor_suspense (reactor, event_id, event_type, aggregate_type, aggregate_id, \
                     correlation_id, reason, problem, status, attempts, created_at, updated_at, company) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', 1, ?, ?, ?) \
                     ON CONFLICT (reactor, event_id) DO UPDATE SET reason = excluded.reason, \
                     problem = excluded.problem, status = 'open', attempts = reactor_suspense.attempts + 1, \
                     updated_at = excluded.updated_at",
                )
                .bind(cause.reactor)
                .bind(event.id.to_string())
                .bind(&event.event_type)
                .bind(&event.aggregate_type)
                .bind(&event.aggregate_id)
                .bind(correlation)
                .bind(reason)
                .bind(problem)
                .bind(&now)
                .bind(&now)
                .bind(company_of(event))
                .execute(&write)
                .await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO reactor_suspense (reactor, event_id, event_type, aggregate_type, aggregate_id, \
                     correlation_id, reason, problem, status, attempts, company) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', 1, $9) \
                     ON CONFLICT (reactor, event_id) DO UPDATE SET reason = excluded.reason, \
                     problem = excluded.problem, status = 'open', attempts = reactor_suspense.attempts + 1, \
                     updated_at = now()",
                )
                .bind(cause.reactor)
                .bind(event.id.to_string())
                .bind(&event.event_type)
                .bind(&event.aggregate_type)
                .bind(&event.aggregate_id)
                .bind(correlation)
                .bind(reason)
                .bind(problem)
                .bind(company_of(event))
                .execute(&pool)
                .await?;
            }
        }
        Ok(())
    }

    /// How many of `reactor`'s reactions wait in suspense (open).
    pub async fn open_suspense(&self, reactor: &str) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM reactor_suspense WHERE reactor = $1 AND status = 'open'";
        Ok(crate::on_database!(self.store.database(), false, |pool| {
            sqlx::query_scalar(sql)
                .bind(reactor)
                .fetch_one(&pool)
                .await?
        }))
    }

    /// Marks a suspended reaction resolved (its retry was stored).
    pub async fn resolve(&self, reactor: &str, event_id: Uuid) -> Result<(), StoreError> {
        match self.store.database() {
            Database::Sqlite { write, .. } => {
                sqlx::query(
                    "UPDATE reactor_suspense SET status = 'resolved', attempts = attempts + 1, \
                     updated_at = ? WHERE reactor = ? AND event_id = ?",
                )
                .bind(Utc::now().to_rfc3339())
                .bind(reactor)
                .bind(event_id.to_string())
                .execute(&write)
                .await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "UPDATE reactor_suspense SET status = 'resolved', attempts = attempts + 1, \
                     updated_at = now() WHERE reactor = $1 AND event_id = $2",
                )
                .bind(reactor)
                .bind(event_id.to_string())
                .execute(&pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Suspended reactions, newest first; `status` filters (`open`, `resolved`),
    /// `companies` (when given) keeps those of these companies.
    pub async fn suspended(
        &self,
        status: Option<&str>,
        companies: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<Suspended>, StoreError> {
        const COLUMNS: &str = "reactor, event_id, event_type, aggregate_type, aggregate_id, \
            correlation_id, reason, problem, status, attempts, company";
        // $1 status, $2 limit, $3… the companies (`?n` on SQLite).
        let of_companies = companies.map_or(String::new(), |companies| {
            let placeholders: Vec<String> = (0..companies.len())
                .map(|i| format!("${}", i + 3))
                .collect();
            if placeholders.is_empty() {
                " AND false".to_owned()
            } else {
                format!(" AND company IN ({})", placeholders.join(", "))
            }
        });
        let sql = format!(
            "SELECT {COLUMNS} FROM reactor_suspense WHERE ($1 IS NULL OR status = $1){of_companies} \
             ORDER BY created_at DESC LIMIT $2"
        );
        let rows = match self.store.database() {
            Database::Sqlite { read, .. } => {
                let sql = sql.replace('$', "?");
                let mut query = sqlx::query(&sql).bind(status).bind(limit);
                for company in companies.unwrap_or_default() {
                    query = query.bind(company);
                }
                query
                    .fetch_all(&read)
                    .await?
                    .iter()
                    .map(suspended_from_row)
                    .collect::<Result<Vec<_>, _>>()?
            }
            Database::Postgres(pool) => {
                let sql = sql.replace("($1 IS NULL", "($1::text IS NULL");
                let mut query = sqlx::query(&sql).bind(status).bind(limit);
                for company in companies.unwrap_or_default() {
                    query = query.bind(company);
                }
                query
                    .fetch_all(&pool)
                    .await?
                    .iter()
                    .map(suspended_from_row)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(rows)
    }

    /// Where a follower stands in a stream (`None`: it never saved a position).
    pub async fn position(&self, follower: &str, stream: &str) -> Result<Option<i64>, StoreError> {
        Ok(match self.store.database() {
            Database::Sqlite { read, .. } => {
                sqlx::query_scalar(
                    "SELECT position FROM follower_positions WHERE follower = ? AND stream = ?",
                )
                .bind(follower)
                .bind(stream)
                .fetch_optional(&read)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT position FROM follower_positions WHERE follower = $1 AND stream = $2",
                )
                .bind(follower)
                .bind(stream)
                .fetch_optional(&pool)
                .await?
            }
        })
    }

    /// Saves `follower`'s position in `stream`, unless a later one is saved already: a Kafka
    /// consumer that lost the partition in a rebalance may save after the new owner did.
    pub async fn save_position(
        &self,
        follower: &str,
        stream: &str,
        position: i64,
    ) -> Result<(), StoreError> {
        match self.store.database() {
            Database::Sqlite { write, .. } => {
                sqlx::query(
                    "INSERT INTO follower_positions (follower, stream, position, updated_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (follower, stream) DO UPDATE SET \
                     position = max(follower_positions.position, excluded.position), \
                     updated_at = excluded.updated_at",
                )
                .bind(follower)
                .bind(stream)
                .bind(position)
                .bind(Utc::now().to_rfc3339())
                .execute(&write)
                .await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO follower_positions (follower, stream, position) VALUES ($1, $2, $3) \
                     ON CONFLICT (follower, stream) DO UPDATE SET \
                     position = greatest(follower_positions.position, excluded.position), \
                     updated_at = now()",
                )
                .bind(follower)
                .bind(stream)
                .bind(position)
                .execute(&pool)
                .await?;
            }
        }
        Ok(())
    }
}

fn suspended_from_row<R: Row>(row: &R) -> Result<Suspended, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database>,
    i64: sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database>,
    i32: sqlx::Type<R::Database>,
{
    let problem: String = row.try_get("problem")?;
    let attempts: i64 = match row.try_get::<i64, _>("attempts") {
        Ok(value) => value,
        Err(_) => i64::from(row.try_get::<i32, _>("attempts")?),
    };
    Ok(Suspended {
        reactor: row.try_get("reactor")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        correlation_id: row.try_get("correlation_id")?,
        reason: row.try_get("reason")?,
        problem: serde_json::from_str(&problem).unwrap_or(serde_json::Value::Null),
        status: row.try_get("status")?,
        attempts,
        company: row.try_get("company")?,
    })
}

/// Runs one event through a reactor: stored, ignored, or into suspense.
pub async fn handle(
    platform: &Platform,
    reactor: &dyn Reactor,
    event: &EventEnvelope,
) -> Result<Reaction, ReactorError> {
    let cause = Cause {
        reactor: reactor.name(),
        event,
    };
    if cause.done(&platform.store).await? {
        return Ok(Reaction::Done);
    }
    // The reaction continues the trace of the command that appended its event: its own
    // command's events carry this span's traceparent on.
    let span = tracing::info_span!(
        "reaction",
        reactor = reactor.name(),
        event_type = %event.event_type,
        event_id = %event.id,
        request_id = event.metadata.request_id.as_deref(),
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, event.metadata.traceparent.as_deref());
    let reaction = reactor.react(platform, &cause).instrument(span).await?;
    if let Reaction::Rejected { reason, problem } = &reaction {
        tracing::warn!(reactor = reactor.name(), event_id = %event.id, reason, "reaction rejected: into suspense");
        Follow {
            store: &platform.store,
        }
        .suspend(&cause, reason, problem)
        .await?;
    }
    Ok(reaction)
}

/// Retries a suspended reaction (after its cause was fixed): resolved when stored now.
pub async fn retry(
    platform: &Platform,
    reactor: &dyn Reactor,
    event_id: Uuid,
) -> Result<Option<Reaction>, ReactorError> {
    let Some(event) = platform.store.event(event_id).await? else {
        return Ok(None);
    };
    let reaction = handle(platform, reactor, &event).await?;
    if reaction == Reaction::Done {
        Follow {
            store: &platform.store,
        }
        .resolve(reactor.name(), event_id)
        .await?;
    }
    Ok(Some(reaction))
}
