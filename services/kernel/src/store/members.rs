//! Groups of processes sharing work by parts (Kafka partitions), coordinated in PostgreSQL.
//!
//! A member holds, on a connection of its own, a session advisory lock naming it in its group
//! and one lock per part it works on. The database releases them all when that connection
//! ends, also when the process is killed, so the others see one member fewer and may claim its
//! parts. Who holds what is read from `pg_locks`; nothing is written.

use super::{Backend, EventStore, StoreError};
use sqlx::Connection;

/// Lock namespaces (the first key of the two-key advisory lock) are these prefixes with the
/// group's name, hashed.
const MEMBERS: &str = "tributary-members/";
const PARTS: &str = "tributary-parts/";

/// This process's place in a group: dropping it (or the process ending) leaves the group and
/// releases every part it claimed.
pub struct Membership {
    connection: sqlx::PgConnection,
    group: String,
    member: i32,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("group", &self.group)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl EventStore {
    /// Joins `group` on a connection of its own; `None` on SQLite, whose store one process
    /// has to itself.
    pub async fn join_group(&self, group: &str) -> Result<Option<Membership>, StoreError> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        // Detached: closing it is what releases the locks (a pooled one would keep them).
        let mut connection = pool.acquire().await?.detach();
        loop {
            // Random, from a v4 UUID's bits; joined again on the rare clash.
            let member = uuid::Uuid::new_v4().as_u128() as i32;
            let joined: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1 || $2), $3)")
                    .bind(MEMBERS)
                    .bind(group)
                    .bind(member)
                    .fetch_one(&mut connection)
                    .await?;
            if joined {
                return Ok(Some(Membership {
                    connection,
                    group: group.to_owned(),
                    member,
                }));
            }
        }
    }
}

impl Membership {
    /// This member's number in its group (random, unique among the live members).
    pub fn member(&self) -> i32 {
        self.member
    }

    /// The group's live members, this one included.
    pub async fn members(&mut self) -> Result<usize, StoreError> {
        let members: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND classid = hashtext($1 || $2)::oid",
        )
        .bind(MEMBERS)
        .bind(&self.group)
        .fetch_one(&mut self.connection)
        .await?;
        Ok(usize::try_from(members).unwrap_or(0))
    }

    /// Claims `part` unless another member holds it; true when this member holds it now.
    pub async fn try_claim(&mut self, part: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1 || $2), hashtext($3))")
                .bind(PARTS)
                .bind(&self.group)
                .bind(part)
                .fetch_one(&mut self.connection)
                .await?,
        )
    }

    /// Gives `part` up, for another member to claim.
    pub async fn release(&mut self, part: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1 || $2), hashtext($3))")
            .bind(PARTS)
            .bind(&self.group)
            .bind(part)
            .execute(&mut self.connection)
            .await?;
        Ok(())
    }

    /// Leaves the group, releasing every part claimed.
    pub async fn leave(self) {
        let _ = self.connection.close().await;
    }
}
