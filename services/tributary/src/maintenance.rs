//! Lake maintenance: every pipeline batch adds one small Parquet file per table, so the writer
//! roles compact tables whose file count has grown (Delta OPTIMIZE; rows, their order and the
//! pipelines' progress markers unchanged). Queries then open a few large files instead of
//! thousands of small ones. The files compaction replaced stay for time travel until they are
//! older than the vacuum retention (7 days by default); then a vacuum deletes them.
//!
//! Compaction is tiered and looks every few seconds: at 2,000 entries/s the pipelines commit
//! about 30 files a second to each table, and every commit and every query's reload of a table
//! parses the statistics of all its files again (the Delta log replay), so a table must not
//! gather thousands of them (a minute's worth made 14% of the pipelines process's time and an
//! entry's visibility in SQL p99 720 ms; looking every 5 s: 378 ms). Small files are merged
//! into files of up to [`CompactionOptions::small_target_bytes`] (a rewrite of at most that
//! much, so it runs every few seconds beside the writes); once enough of those gather they are
//! merged into files of [`CompactionOptions::middle_target_bytes`] (every few minutes), and
//! those into files of [`CompactionOptions::target_bytes`] (rarely: a large rewrite). Only
//! files below half a tier's target start it (see [`CompactionOptions::target_for`]); Delta
//! OPTIMIZE then merges every file up to the target into files of at most the target, so a
//! tier's rewrite is bounded by its target per file written: with a first tier of 8 MB, up to
//! 8 MB were rewritten every 5 s while posting, and meanwhile the pipelines' commits to that
//! table retried or waited (an entry's visibility in SQL p99 410–630 ms; with no compaction at
//! all 330–390 ms; `bench --runs apart`, 2026-12-06).
//!
//! Each table is compacted by one role only: the ingest role its bronze tables, the pipelines
//! role every other; and, as those roles run in several processes, by one process at a time: a
//! lease per table in the event store (`lake-compaction/<table>`, a PostgreSQL advisory lock
//! held on its own connection). Two processes compacting one table at once would both commit
//! (Delta lets a second OPTIMIZE of the same files through: its removes change no data, and
//! deltalake's conflict checker counts only removes that do), and every row of the files both
//! rewrote would then be in the table twice. Under the lease the table is brought to its newest
//! version before it is rewritten, so a process never compacts files another one already
//! replaced.

use std::time::Duration;
use tokio::sync::watch;
use tributary_kernel::store::{EventStore, RelayLease};
use tributary_lakehouse::Lake;

#[derive(Debug, Clone)]
pub struct CompactionOptions {
    /// How often the tables are looked at.
    pub interval: Duration,
    /// A table is compacted once it has at least this many files below a tier's target.
    pub files_min: usize,
    /// Size the first tier's files aim for: the small files are merged into these.
    pub small_target_bytes: u64,
    /// Size the second tier's files aim for: the first tier's files are merged into these.
    pub middle_target_bytes: u64,
    /// Size the compacted files aim for: the second tier's files are merged into these.
    pub target_bytes: u64,
    /// Which tables this process compacts (and vacuums).
    pub tables: Compacting,
    /// How long replaced files are kept: time travel reaches back this far.
    pub vacuum_retention: Duration,
    /// How often the tables are vacuumed (a vacuum lists each table's files).
    pub vacuum_interval: Duration,
}

/// The tables a process compacts: those of the writer roles it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compacting {
    /// Every table (a process that runs both the ingest and the pipelines role).
    All,
    /// The bronze tables (the ingest role).
    Bronze,
    /// Every table but the bronze ones (the pipelines role).
    AllButBronze,
}

impl Compacting {
    /// What a process running these writer roles compacts; none when it runs neither.
    pub fn of_roles(ingest: bool, pipelines: bool) -> Option<Compacting> {
        match (ingest, pipelines) {
            (true, true) => Some(Compacting::All),
            (true, false) => Some(Compacting::Bronze),
            (false, true) => Some(Compacting::AllButBronze),
            (false, false) => None,
        }
    }

    pub fn includes(self, table: &str) -> bool {
        let bronze = tributary_lakehouse::catalog::bronze()
            .iter()
            .any(|definition| definition.name == table);
        match self {
            Compacting::All => true,
            Compacting::Bronze => bronze,
            Compacting::AllButBronze => !bronze,
        }
    }
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            interval: Duration::from_secs(5),
            files_min: 32,
            small_target_bytes: 1024 * 1024,
            middle_target_bytes: 16 * 1024 * 1024,
            target_bytes: 128 * 1024 * 1024,
            tables: Compacting::All,
            vacuum_retention: tributary_lakehouse::VACUUM_RETENTION_DEFAULT,
            vacuum_interval: Duration::from_secs(3600),
        }
    }
}

/// The lease a process holds while it compacts or vacuums `table`; `None` while another
/// process does.
pub async fn lease_table(store: &EventStore, table: &str) -> anyhow::Result<Option<RelayLease>> {
    let lease = store
        .try_lease_relay(&format!("lake-compaction/{table}"))
        .await?;
    if lease.is_none() {
        tracing::debug!(table, "another process compacts this table; skipped");
    }
    Ok(lease)
}

impl CompactionOptions {
    /// The target size to compact a table with these data file sizes to, or `None` while it
    /// needs no compaction: the smallest tier's target with `files_min` files below half of
    /// it. (A file of half a target or more is one a compaction to that target made: counting
    /// it would rewrite the same files again and again.)
    pub fn target_for(&self, sizes: &[u64]) -> Option<u64> {
        let below = |bytes: u64| sizes.iter().filter(|size| **size < bytes).count();
        [
            self.small_target_bytes,
            self.middle_target_bytes,
            self.target_bytes,
        ]
        .into_iter()
        .find(|target| below(target / 2) >= self.files_min)
    }
}

/// Compacts every table of `lake` this process compacts that has `files_min` files below a
/// tier's target and that no other process is compacting; returns how many it compacted.
pub async fn compact_once(
    lake: &Lake,
    store: &EventStore,
    options: &CompactionOptions,
) -> anyhow::Result<usize> {
    let mut compacted = 0;
    for name in compacted_tables(lake, options.tables) {
        if options.target_for(&lake.file_sizes(name).await?).is_none() {
            continue;
        }
        let Some(_lease) = lease_table(store, name).await? else {
            continue;
        };
        // `compact` loads the table's newest version first: what another process compacted
        // before this one took the lease is not rewritten again.
        let Some(target) = options.target_for(&lake.file_sizes(name).await?) else {
            continue;
        };
        let done = lake.compact(name, target).await?;
        tracing::info!(
            table = name,
            target_bytes = target,
            files_before = done.files_before,
            files_removed = done.files_removed,
            files_added = done.files_added,
            "compacted"
        );
        compacted += 1;
    }
    Ok(compacted)
}

/// Vacuums every table of `lake` this process compacts: deletes the files no version younger
/// than `retention` reads; answers how many files it deleted.
pub async fn vacuum_once(
    lake: &Lake,
    store: &EventStore,
    tables: Compacting,
    retention: Duration,
) -> anyhow::Result<usize> {
    let mut deleted = 0;
    for name in compacted_tables(lake, tables) {
        let Some(_lease) = lease_table(store, name).await? else {
            continue;
        };
        let done = lake.vacuum(name, retention).await?;
        if done.files_deleted > 0 {
            tracing::info!(
                table = name,
                files_deleted = done.files_deleted,
                retention_hours = retention.as_secs() / 3600,
                "vacuumed"
            );
        }
        deleted += done.files_deleted;
    }
    Ok(deleted)
}

fn compacted_tables(lake: &Lake, tables: Compacting) -> Vec<&'static str> {
    lake.definitions()
        .map(|d| d.name)
        .filter(|name| tables.includes(name))
        .collect()
}

/// Runs [`compact_once`] every `interval`, and [`vacuum_once`] every `vacuum_interval`, until
/// shutdown; errors are logged and retried at the next interval.
pub async fn run(
    lake: Lake,
    store: EventStore,
    options: CompactionOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut vacuumed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(options.interval) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        }
        if let Err(error) = compact_once(&lake, &store, &options).await {
            tracing::warn!(error = %format!("{error:#}"), "lake compaction failed; retrying later");
        }
        if vacuumed.elapsed() >= options.vacuum_interval {
            vacuumed = tokio::time::Instant::now();
            if let Err(error) =
                vacuum_once(&lake, &store, options.tables, options.vacuum_retention).await
            {
                tracing::warn!(error = %format!("{error:#}"), "lake vacuum failed; retrying later");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Compacting, CompactionOptions};

    #[test]
    fn small_files_go_to_the_first_tier_and_each_tiers_files_to_the_next() {
        const MB: u64 = 1024 * 1024;
        let options = CompactionOptions {
            files_min: 3,
            small_target_bytes: MB,
            middle_target_bytes: 16 * MB,
            target_bytes: 128 * MB,
            ..CompactionOptions::default()
        };
        // Too few files below any target: nothing to do.
        assert_eq!(options.target_for(&[]), None);
        assert_eq!(options.target_for(&[10_000, 20_000, 200 * MB]), None);
        // Enough small files: merged into first-tier files, the larger ones left alone.
        assert_eq!(
            options.target_for(&[10_000, 20_000, 300_000, 3 * MB, 200 * MB]),
            Some(MB)
        );
        // First-tier files do not start the first tier again: the second one takes them.
        assert_eq!(
            options.target_for(&[MB, 700_000, 10_000, 20_000, 200 * MB]),
            Some(16 * MB)
        );
        // Enough second-tier files (and too few smaller ones): merged into full-size files.
        assert_eq!(
            options.target_for(&[16 * MB, 9 * MB, 10_000, 60 * MB, 100 * MB]),
            Some(128 * MB)
        );
        // Files a full compaction made are not rewritten again.
        assert_eq!(
            options.target_for(&[100 * MB, 120 * MB, 130 * MB, 10_000]),
            None
        );
    }

    #[test]
    fn each_table_has_one_compacting_role() {
        let ingest = Compacting::of_roles(true, false).unwrap();
        let pipelines = Compacting::of_roles(false, true).unwrap();
        for table in [
            "bronze_events",
            "bronze_dead_letters",
            "gl_journal_lines",
            "mrp_records",
        ] {
            assert!(
                ingest.includes(table) != pipelines.includes(table),
                "{table}: exactly one of ingest and pipelines compacts it"
            );
            assert!(Compacting::of_roles(true, true).unwrap().includes(table));
        }
        assert!(ingest.includes("bronze_events"));
        assert!(pipelines.includes("gl_journal_lines"));
        assert_eq!(Compacting::of_roles(false, false), None);
    }
}
