//! Lake upkeep: what each table holds (`tributary lake status`), removing the data files
//! compaction replaced once they are older than the retention (vacuum), and reading a table
//! as it was at an earlier version or time (time travel, which reaches back as far as the
//! retention).
//!
//! ```text
//!  append ─► v1 (a) ─► v2 (a b) ─► compact: v3 (ab') ─► vacuum after retention: a, b deleted
//!                                                        │
//!  SELECT * FROM as_of('t', 2) ─► v2's files a, b ───────┘ (an error naming the retention
//!                                                           once they are gone)
//! ```

use crate::lake::{Lake, LakeError, delta_error};
use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// How long replaced data files are kept (and time travel reaches back) by default: 7 days,
/// Delta's own default.
pub const VACUUM_RETENTION_DEFAULT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The log directory of a Delta table, relative to its root.
const LOG_DIR: &str = "_delta_log/";

/// One table of the lake as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableStatus {
    pub table: String,
    /// The newest version.
    pub version: Option<u64>,
    /// When the newest version was committed.
    pub committed_at: Option<DateTime<Utc>>,
    /// Data files of the newest version, their bytes and rows.
    pub files: usize,
    pub bytes: u64,
    pub rows: u64,
    /// Data files in storage that the newest version no longer reads (replaced by compaction,
    /// kept for time travel until a vacuum after the retention), and their bytes.
    pub replaced_files: usize,
    pub replaced_bytes: u64,
    /// The version of the newest checkpoint (where a reader starts reading the log).
    pub checkpoint: Option<u64>,
    /// The oldest version still in the log: time travel reaches back to it at most.
    pub oldest_version: Option<u64>,
}

/// What one vacuum did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vacuumed {
    pub files_deleted: usize,
}

/// Which earlier state of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    /// The newest version committed at or before this time.
    Time(DateTime<Utc>),
}

impl std::fmt::Display for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsOf::Version(version) => write!(f, "version {version}"),
            AsOf::Time(time) => write!(f, "time {}", time.to_rfc3339()),
        }
    }
}

/// A file in the table's storage: its path relative to the table root and its size.
struct Stored {
    data: BTreeMap<String, u64>,
    /// Commit and checkpoint versions in the log, and when each commit was written.
    commits: BTreeMap<u64, DateTime<Utc>>,
    checkpoints: Vec<u64>,
}

async fn stored(table: &str, loaded: &DeltaTable) -> Result<Stored, LakeError> {
    let store = loaded.log_store().object_store(None);
    let mut listing = store.list(None);
    let mut found = Stored {
        data: BTreeMap::new(),
        commits: BTreeMap::new(),
        checkpoints: Vec::new(),
    };
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|source| delta_error(table, loaded, source.into()))?
    {
        let path = meta.location.to_string();
        if let Some(name) = path.strip_prefix(LOG_DIR) {
            let version = name
                .split('.')
                .next()
                .and_then(|digits| digits.parse::<u64>().ok());
            match version {
                Some(version) if name.ends_with(".json") && !name.contains('/') => {
                    found.commits.insert(version, meta.last_modified);
                }
                Some(version) if name.contains(".checkpoint") => found.checkpoints.push(version),
                _ => {}
            }
        } else if path.ends_with(".parquet") {
            found.data.insert(path, meta.size);
        }
    }
    Ok(found)
}

/// The paths (relative to the table root) of the data files `loaded` reads.
fn active_paths(table: &str, loaded: &DeltaTable) -> Result<HashSet<String>, LakeError> {
    Ok(loaded
        .snapshot()
        .map_err(|source| delta_error(table, loaded, source))?
        .log_data()
        .iter()
        .map(|file| file.object_store_path().to_string())
        .collect())
}

impl Lake {
    /// The rows `table` holds now, from the log's file statistics (no listing of its files,
    /// unlike [`Lake::status`]).
    pub async fn row_count(&self, table: &str) -> Result<u64, LakeError> {
        let current = self.latest(table).await?;
        let snapshot = current
            .snapshot()
            .map_err(|source| delta_error(table, &current, source))?;
        Ok(snapshot
            .log_data()
            .iter()
            .map(|file| file.num_records().map_or(0, |n| n as u64))
            .sum())
    }

    /// What `table` holds now: versions, files, bytes, rows, checkpoint, replaced files.
    pub async fn status(&self, table: &str) -> Result<TableStatus, LakeError> {
        let current = self.latest(table).await?;
        let snapshot = current
            .snapshot()
            .map_err(|source| delta_error(table, &current, source))?;
        let (mut files, mut bytes, mut rows) = (0usize, 0u64, 0u64);
        let mut active = HashSet::new();
        for file in snapshot.log_data().iter() {
            files += 1;
            bytes += u64::try_from(file.size()).unwrap_or(0);
            rows += file.num_records().map_or(0, |n| n as u64);
            active.insert(file.object_store_path().to_string());
        }
        let stored = stored(table, &current).await?;
        let replaced: Vec<u64> = stored
            .data
            .iter()
            .filter(|(path, _)| !active.contains(*path))
            .map(|(_, size)| *size)
            .collect();
        let version = current.version();
        Ok(TableStatus {
            table: table.to_owned(),
            version,
            committed_at: version.and_then(|v| stored.commits.get(&v).copied()),
            files,
            bytes,
            rows,
            replaced_files: replaced.len(),
            replaced_bytes: replaced.iter().sum(),
            checkpoint: stored.checkpoints.iter().max().copied(),
            oldest_version: stored
                .commits
                .keys()
                .next()
                .copied()
                .into_iter()
                .chain(stored.checkpoints.iter().min().copied())
                .min(),
        })
    }

    /// Every table's [`TableStatus`], by name.
    pub async fn statuses(&self) -> Result<Vec<TableStatus>, LakeError> {
        let mut names: Vec<&'static str> = self.definitions().map(|d| d.name).collect();
        names.sort_unstable();
        let mut statuses = Vec::with_capacity(names.len());
        for name in names {
            statuses.push(self.status(name).await?);
        }
        Ok(statuses)
    }

    /// Deletes the data files of `table` that no version younger than `retention` reads (Delta
    /// VACUUM, full mode: also files a crashed writer left without committing them). Versions
    /// committed within the retention stay readable by [`Lake::as_of`].
    pub async fn vacuum(&self, table: &str, retention: Duration) -> Result<Vacuumed, LakeError> {
        let retention =
            chrono::Duration::from_std(retention).map_err(|error| LakeError::TimeTravel {
                table: table.to_owned(),
                reason: format!("vacuum retention out of range: {error}"),
            })?;
        let (_, mut guard) = self.locked(table).await?;
        let (vacuumed, metrics) = guard
            .clone()
            .vacuum()
            .with_retention_period(retention)
            // Ours to choose: the table's own minimum (7 days) would refuse a shorter one.
            .with_enforce_retention_duration(false)
            .with_mode(deltalake::operations::vacuum::VacuumMode::Full)
            .await
            .map_err(|source| delta_error(table, &guard, source))?;
        if vacuumed.version() != guard.version() {
            *guard = vacuumed;
            self.reload_if_long(self.entry(table)?, &guard, true);
        }
        Ok(Vacuumed {
            files_deleted: metrics.files_deleted.len(),
        })
    }

    /// `table` as it was at `at`: an error that says why when that version is not in the log,
    /// is newer than the table, or reads files a vacuum has deleted since.
    pub async fn as_of(&self, table: &str, at: AsOf) -> Result<DeltaTable, LakeError> {
        let travel = |reason: String| LakeError::TimeTravel {
            table: table.to_owned(),
            reason,
        };
        let mut loaded = self.latest(table).await?;
        let newest = loaded.version().unwrap_or(0);
        match at {
            AsOf::Version(version) if version > newest => {
                return Err(travel(format!(
                    "there is no version {version}: the newest is {newest}"
                )));
            }
            AsOf::Version(version) if version == newest => return Ok(loaded),
            AsOf::Version(version) => loaded.load_version(version).await,
            AsOf::Time(time) => loaded.load_with_datetime(time).await,
        }
        .map_err(|error| {
            travel(format!(
                "{at} cannot be read: {error} (the log keeps versions for the table's log retention, 30 days by default)"
            ))
        })?;
        let stored = stored(table, &loaded).await?;
        let missing = active_paths(table, &loaded)?
            .into_iter()
            .filter(|path| !stored.data.contains_key(path))
            .count();
        if missing > 0 {
            return Err(travel(format!(
                "{at} (version {}) reads {missing} data files a vacuum has deleted: time travel reaches back as far as the vacuum retention (--vacuum-retention-hours)",
                loaded.version().unwrap_or(0)
            )));
        }
        Ok(loaded)
    }
}

/// What [`Lake::replace_from`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The table now reads the rebuilt files, in one commit at `version`.
    Done {
        version: u64,
        files_removed: usize,
        files_added: usize,
    },
    /// The rebuilt table has not yet reached the live table's progress: nothing changed.
    Behind {
        live: Option<i64>,
        rebuilt: Option<i64>,
    },
}

impl Lake {
    /// Replaces every row of `table` by the rows of the same table in `rebuilt` (another lake
    /// on the same store), in one Delta commit that also carries the rebuilt progress marker
    /// `app_id`: readers see the old rows up to that commit and the rebuilt ones from it; a
    /// writer of the old rows resumes from the rebuilt marker at its next commit (its marker
    /// moved). Refused ([`Replaced::Behind`]) while the rebuilt marker is behind the live one.
    /// The rebuilt files are copied under `rebuild-<id>/` in the table; the old ones stay for
    /// time travel until a vacuum.
    pub async fn replace_from(
        &self,
        table: &str,
        rebuilt: &Lake,
        app_id: &str,
    ) -> Result<Replaced, LakeError> {
        use deltalake::kernel::Action;
        use object_store::path::Path;

        let source = rebuilt.latest(table).await?;
        let rebuilt_marker = rebuilt.txn_version(table, app_id).await?;
        let (_, mut guard) = self.locked(table).await?;
        if let Some(other) = recent_progress(table, &guard, app_id).await? {
            return Err(LakeError::Unsupported {
                table: table.to_owned(),
                reason: format!(
                    "its pipeline records its progress as {other} (Kafka offsets), which a rebuild from the event store cannot give it"
                ),
            });
        }
        let live_marker = self.marker(table, &guard, app_id).await?;
        if rebuilt_marker < live_marker {
            return Ok(Replaced::Behind {
                live: live_marker,
                rebuilt: rebuilt_marker,
            });
        }
        let directory = format!("rebuild-{}", uuid::Uuid::now_v7().simple());
        let store = guard.log_store().root_object_store(None);
        let from_root = Path::from_url_path(source.table_url().path())
            .map_err(|source| delta_error(table, &guard, source.into()))?;
        let to_root = Path::from_url_path(guard.table_url().path())
            .map_err(|source| delta_error(table, &guard, source.into()))?;
        let mut actions = Vec::new();
        let live_files = guard
            .snapshot()
            .map_err(|source| delta_error(table, &guard, source))?
            .log_data();
        let files_removed = live_files.iter().count();
        actions.extend(
            live_files
                .iter()
                .map(|file| Action::Remove(file.remove_action(true))),
        );
        let source_files = source
            .snapshot()
            .map_err(|error| delta_error(table, &source, error))?
            .log_data();
        let mut files_added = 0;
        for file in source_files.iter() {
            let relative = file.object_store_path();
            let target = format!("{directory}/{relative}");
            let from: Path = from_root.parts().chain(relative.parts()).collect();
            let to: Path = to_root
                .parts()
                .chain(Path::from(target.as_str()).parts())
                .collect();
            store
                .copy(&from, &to)
                .await
                .map_err(|source| delta_error(table, &guard, source.into()))?;
            #[allow(deprecated)]
            let mut add = file.add_action();
            add.path = target;
            add.data_change = true;
            actions.push(Action::Add(add));
            files_added += 1;
        }
        let transactions = rebuilt_marker
            .map(|version| deltalake::kernel::Transaction::new(app_id, version))
            .into_iter()
            .collect();
        let version = self
            .commit_actions(
                table,
                &mut guard,
                actions,
                transactions,
                deltalake::protocol::SaveMode::Overwrite,
            )
            .await?;
        Ok(Replaced::Done {
            version,
            files_removed,
            files_added,
        })
    }

    /// Deletes every file of every table of this lake (a rebuild's scratch lake once its
    /// tables were taken over).
    pub async fn delete_all(&self) -> Result<usize, LakeError> {
        let mut deleted = 0;
        for definition in self.definitions() {
            let current = self.latest(definition.name).await?;
            let store = current.log_store().object_store(None);
            let paths: Vec<object_store::path::Path> = store
                .list(None)
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .map_err(|source| delta_error(definition.name, &current, source.into()))?;
            for path in paths {
                store
                    .delete(&path)
                    .await
                    .map_err(|source| delta_error(definition.name, &current, source.into()))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// Commits looked at (newest first) for the progress markers a table's writer records.
const RECENT_COMMITS: u64 = 100;

/// A progress marker of another stream than `app_id` (`app_id-<topic>-<partition>`) in the
/// newest commit of `loaded` that records progress, within the last [`RECENT_COMMITS`].
async fn recent_progress(
    table: &str,
    loaded: &DeltaTable,
    app_id: &str,
) -> Result<Option<String>, LakeError> {
    let Some(newest) = loaded.version() else {
        return Ok(None);
    };
    let streams = format!("{app_id}-");
    for version in (newest.saturating_sub(RECENT_COMMITS)..=newest).rev() {
        let Some(bytes) = loaded
            .log_store()
            .read_commit_entry(version)
            .await
            .map_err(|source| delta_error(table, loaded, source))?
        else {
            return Ok(None);
        };
        let markers: Vec<String> = bytes
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice::<crate::lake::CommitLine>(line).ok())
            .filter_map(|line| line.txn)
            .map(|txn| txn.app_id)
            .collect();
        if !markers.is_empty() {
            return Ok(markers.into_iter().find(|id| id.starts_with(&streams)));
        }
    }
    Ok(None)
}
