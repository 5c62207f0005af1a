//! The reports' own tables in the event store's database (SQLite or PostgreSQL, one SQL text:
//! `$n` placeholders in order of first use, times as epoch milliseconds).

use crate::definition::Definition;
use tributary_kernel::on_database as on;
use tributary_kernel::store::Database;
use tributary_lakehouse::query::ReadScope;

pub type Error = sqlx::Error;

/// A run as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRecord {
    pub id: String,
    pub report: String,
    pub parameters: String,
    pub formats: String,
    pub trigger: String,
    pub slot: Option<i64>,
    pub status: String,
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub row_count: Option<i64>,
    pub error: Option<String>,
    pub outputs: Option<String>,
    /// The user who asked for the run; `None`: the scheduler.
    pub requested_by: Option<String>,
    /// What the run reads ([`ReadScope`] as JSON); `None`: everything (a scheduled run).
    pub scope: Option<String>,
}

impl RunRecord {
    /// What the run's SQL may read.
    pub fn read_scope(&self) -> Result<ReadScope, String> {
        self.scope
            .as_deref()
            .map_or(Ok(ReadScope::everything()), |text| {
                serde_json::from_str(text).map_err(|e| format!("the run's stored scope: {e}"))
            })
    }
}

/// A run to queue.
#[derive(Debug)]
pub struct NewRun<'a> {
    pub id: &'a str,
    pub report: &'a str,
    pub parameters: &'a str,
    pub formats: &'a str,
    pub trigger: &'a str,
    pub slot: Option<i64>,
    pub requested_by: Option<&'a str>,
    pub scope: Option<&'a ReadScope>,
}

const RUN_COLUMNS: &str = "id, report, parameters, formats, trigger, slot, status, queued_at, \
     started_at, finished_at, row_count, error, outputs, requested_by, scope";

/// How long a claimed run is its claimer's; a run still `running` after that (its process
/// died) is claimed again.
pub const LEASE_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct ReportStore {
    db: Database,
}

impl ReportStore {
    pub fn new(db: Database) -> ReportStore {
        ReportStore { db }
    }

    pub async fn definitions(&self) -> Result<Vec<Definition>, Error> {
        let rows: Vec<(String,)> = on!(&self.db, false, |pool| {
            sqlx::query_as("SELECT definition FROM report_definitions ORDER BY name")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(text,)| serde_json::from_str(&text).ok())
            .collect())
    }

    pub async fn definition(&self, name: &str) -> Result<Option<Definition>, Error> {
        let row: Option<(String,)> = on!(&self.db, false, |pool| {
            sqlx::query_as("SELECT definition FROM report_definitions WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(text,)| serde_json::from_str(&text).ok()))
    }

    /// Inserts the definition; `false` when one of that name exists.
    pub async fn create_definition(
        &self,
        definition: &Definition,
        now: i64,
    ) -> Result<bool, Error> {
        let text = serde_json::to_string(definition).map_err(|e| Error::Protocol(e.to_string()))?;
        let result = on!(&self.db, true, |pool| {
            sqlx::query(
                "INSERT INTO report_definitions (name, definition, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&definition.name)
            .bind(&text)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result == 1)
    }

    /// Replaces the definition; `false` when there is none of that name.
    pub async fn update_definition(
        &self,
        definition: &Definition,
        now: i64,
    ) -> Result<bool, Error> {
        let text = serde_json::to_string(definition).map_err(|e| Error::Protocol(e.to_string()))?;
        let result = on!(&self.db, true, |pool| {
            sqlx::query(
                "UPDATE report_definitions SET definition = $1, updated_at = $2 WHERE name = $3",
            )
            .bind(&text)
            .bind(now)
            .bind(&definition.name)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result == 1)
    }

    pub async fn delete_definition(&self, name: &str) -> Result<bool, Error> {
        let result = on!(&self.db, true, |pool| {
            sqlx::query("DELETE FROM report_definitions WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(result == 1)
    }

    /// Queues a run; a scheduled run whose (report, slot) exists already is not queued again
    /// (`false`).
    #[allow(clippy::too_many_arguments)]
    pub async fn queue(&self, run: NewRun<'_>, now: i64) -> Result<bool, Error> {
        let scope = run
            .scope
            .map(|scope| serde_json::to_string(scope).unwrap_or_default());
        let result = on!(&self.db, true, |pool| {
            sqlx::query(
                "INSERT INTO report_runs (id, report, parameters, formats, trigger, slot, status, queued_at, requested_by, scope) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(run.id)
            .bind(run.report)
            .bind(run.parameters)
            .bind(run.formats)
            .bind(run.trigger)
            .bind(run.slot)
            .bind(now)
            .bind(run.requested_by)
            .bind(&scope)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result == 1)
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM report_runs WHERE id = $1");
        Ok(on!(&self.db, false, |pool| {
            sqlx::query_as::<_, RunRecord>(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The newest runs of a report.
    pub async fn runs_of(&self, report: &str, limit: i64) -> Result<Vec<RunRecord>, Error> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM report_runs WHERE report = $1 ORDER BY queued_at DESC, id LIMIT $2"
        );
        Ok(on!(&self.db, false, |pool| {
            sqlx::query_as::<_, RunRecord>(&sql)
                .bind(report)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Takes the oldest waiting run (or one whose claimer's lease ran out) for this process.
    pub async fn claim(&self, now: i64) -> Result<Option<RunRecord>, Error> {
        // The outer condition is checked again on the locked row (PostgreSQL re-reads it after
        // waiting for a concurrent claimer), so of two instances one gets the run.
        let sql = format!(
            "UPDATE report_runs SET status = 'running', started_at = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM report_runs WHERE status = 'queued' OR (status = 'running' AND lease_until < $1) \
                         ORDER BY queued_at, id LIMIT 1) \
               AND (status = 'queued' OR (status = 'running' AND lease_until < $1)) \
             RETURNING {RUN_COLUMNS}"
        );
        Ok(on!(&self.db, true, |pool| {
            sqlx::query_as::<_, RunRecord>(&sql)
                .bind(now)
                .bind(now + LEASE_MS)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Records how a run ended.
    pub async fn finish(
        &self,
        id: &str,
        status: &str,
        now: i64,
        row_count: Option<i64>,
        error: Option<&str>,
        outputs: &str,
    ) -> Result<(), Error> {
        on!(&self.db, true, |pool| {
            sqlx::query(
                "UPDATE report_runs SET status = $1, finished_at = $2, row_count = $3, error = $4, \
                 outputs = $5, lease_until = NULL WHERE id = $6",
            )
            .bind(status)
            .bind(now)
            .bind(row_count)
            .bind(error)
            .bind(outputs)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn last_slot(&self, report: &str) -> Result<Option<i64>, Error> {
        let row: Option<(i64,)> = on!(&self.db, false, |pool| {
            sqlx::query_as("SELECT last_slot FROM report_schedules WHERE report = $1")
                .bind(report)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(slot,)| slot))
    }

    /// Moves the schedule's last slot forward (never back).
    pub async fn save_slot(&self, report: &str, slot: i64) -> Result<(), Error> {
        on!(&self.db, true, |pool| {
            sqlx::query(
                "INSERT INTO report_schedules (report, last_slot) VALUES ($1, $2) \
                 ON CONFLICT (report) DO UPDATE SET last_slot = excluded.last_slot \
                 WHERE report_schedules.last_slot < excluded.last_slot",
            )
            .bind(report)
            .bind(slot)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}
