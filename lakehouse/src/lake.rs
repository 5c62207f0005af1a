//! Delta tables of the lake: open or create them, append with exactly-once progress markers.
//!
//! ```text
//!  pipeline batch ──► append(table, batches, app_id, version)
//!                        │ one Delta commit holds the data files AND
//!                        │ txn{app_id, version}: progress commits with the data, never beside it
//!                        ▼
//!  restart ──► txn_version(table, app_id) ──► resume after that version
//! ```
//! A crash before the commit leaves only unreferenced files; after it, the data and the
//! progress are both there. Either way a resumed pipeline neither skips nor repeats.

use crate::catalog::TableDefinition;
use datafusion::arrow::record_batch::RecordBatch;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::protocol::DeltaOperation;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Mutex;
use tributary_kernel::lake::ViewSql;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake location {location:?} is not usable: {reason}")]
    Location { location: String, reason: String },
    #[error("table {table} is not in the catalog")]
    UnknownTable { table: String },
    #[error("delta table {table} (version {version:?}): {source}")]
    Delta {
        table: String,
        version: Option<u64>,
        #[source]
        source: Box<DeltaTableError>,
    },
    #[error(
        "table {table}: progress of {app_id} is {found:?}, this writer expected {expected:?}; another writer moved it"
    )]
    ProgressMoved {
        table: String,
        app_id: String,
        expected: Option<i64>,
        found: Option<i64>,
    },
    #[error("table {table}: the pipeline's rows do not fit the table schema: {reason}")]
    Schema { table: String, reason: String },
    #[error("table {table}: {reason}")]
    TimeTravel { table: String, reason: String },
    #[error("table {table}: {reason}")]
    Unsupported { table: String, reason: String },
}

/// One table of the lake: its definition, its handle, and the progress markers read so far.
#[derive(Debug)]
pub(crate) struct Entry {
    definition: TableDefinition,
    table: Mutex<DeltaTable>,
    /// Read and changed only while `table` is locked.
    markers: std::sync::Mutex<Markers>,
    /// The version at which `table` was last loaded afresh (changed only while it is locked).
    loaded_at: AtomicU64,
    /// Whether a reload of `table` is under way.
    reloading: AtomicBool,
    /// The parsed `stats` of the files the last statement planned against, by path.
    parsed_statistics: std::sync::Mutex<ParsedStatistics>,
}

/// A file's parsed `stats` JSON from the log, by the file's path.
pub(crate) type ParsedStatistics = HashMap<String, Option<Arc<serde_json::Value>>>;

impl Entry {
    pub(crate) fn parsed_statistics(&self) -> std::sync::MutexGuard<'_, ParsedStatistics> {
        self.parsed_statistics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Commits a table handle applies one by one after it was loaded afresh; beyond them it is
/// reloaded from a checkpoint. deltalake keeps a loaded table's active files as one Arrow batch
/// per commit applied since its load and processes every batch again on each update: a small
/// write took 15 ms after 10 commits and 90 ms after 200 (bench-mrp's net change). A reload
/// from a checkpoint holds them in one batch; it is made beside the writes (a checkpoint and a
/// load took longer than the write they would have followed), and swapped in when done. A
/// writer first writes the checkpoint and removes the log files older than the table's log
/// retention there: its commits make neither (the cleanup lists the whole log each time).
const APPLIED_COMMITS_MAX: u64 = 20;

/// Progress markers (`txn` actions) of one table as of a table version. Delta's own lookup
/// replays the log from the last checkpoint on every call (up to 100 commit files); this keeps
/// what it found and brings it forward by reading only the commits after it, so a writer's
/// compare-and-set check and a reader's poll cost a lookup, not a log replay.
#[derive(Debug, Default)]
struct Markers {
    as_of: Option<u64>,
    /// The newest version of each app id looked up (None: never written).
    known: HashMap<String, Option<i64>>,
}

/// Commits read to bring the markers forward; beyond it they are looked up afresh.
const MARKER_COMMITS_MAX: u64 = 1_000;

/// One line of a Delta commit file; only `txn` actions are read.
#[derive(serde::Deserialize)]
pub(crate) struct CommitLine {
    pub(crate) txn: Option<Transaction>,
}

/// The lake's tables, each kept loaded at its latest known version.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    tables: Arc<HashMap<&'static str, Entry>>,
    /// Views over the tables, created in every query context.
    views: Arc<Vec<ViewSql>>,
}

impl Lake {
    /// Opens the lake at a local directory or URL, creating every catalog table that is missing.
    pub async fn open(
        location: &str,
        definitions: Vec<TableDefinition>,
    ) -> Result<Lake, LakeError> {
        let location_error = |reason: String| LakeError::Location {
            location: location.to_owned(),
            reason,
        };
        if !location.contains("://") {
            std::fs::create_dir_all(location).map_err(|e| location_error(e.to_string()))?;
        }
        crate::s3::register();
        let root =
            deltalake::ensure_table_uri(location).map_err(|e| location_error(e.to_string()))?;
        let mut tables = HashMap::new();
        for definition in definitions {
            let table = open_or_create(&root, &definition).await?;
            let loaded_at = AtomicU64::new(table.version().unwrap_or_default());
            tables.insert(
                definition.name,
                Entry {
                    definition,
                    table: Mutex::new(table),
                    markers: std::sync::Mutex::default(),
                    loaded_at,
                    reloading: AtomicBool::new(false),
                    parsed_statistics: std::sync::Mutex::default(),
                },
            );
        }
        Ok(Lake {
            root,
            tables: Arc::new(tables),
            views: Arc::default(),
        })
    }

    /// The lake with these views over its tables (the modules' `views/*.sql`).
    pub fn with_views(mut self, views: Vec<ViewSql>) -> Lake {
        self.views = Arc::new(views);
        self
    }

    pub fn views(&self) -> &[ViewSql] {
        &self.views
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn definitions(&self) -> impl Iterator<Item = &TableDefinition> {
        self.tables.values().map(|entry| &entry.definition)
    }

    pub(crate) fn entry(&self, table: &str) -> Result<&Entry, LakeError> {
        self.tables
            .get(table)
            .ok_or_else(|| LakeError::UnknownTable {
                table: table.to_owned(),
            })
    }

    /// The table's handle, locked and brought to its newest committed version.
    pub(crate) async fn locked(
        &self,
        table: &str,
    ) -> Result<(&TableDefinition, tokio::sync::MutexGuard<'_, DeltaTable>), LakeError> {
        let entry = self.entry(table)?;
        let (definition, mut guard) = (&entry.definition, entry.table.lock().await);
        // Commits are created with put-if-absent, one number after the other: without the next
        // commit file the loaded version is the newest, and one lookup says so (listing the
        // log took about 4 ms per table per statement with 700 commits).
        if let Some(version) = guard.version() {
            let next = guard
                .log_store()
                .read_commit_entry(version + 1)
                .await
                .map_err(|source| delta_error(table, &guard, source))?;
            if next.is_none() {
                return Ok((definition, guard));
            }
        }
        guard
            .update_incremental(None)
            .await
            .map_err(|source| delta_error(table, &guard, source))?;
        self.reload_if_long(entry, &guard, false);
        Ok((definition, guard))
    }

    /// Starts reloading the handle (locked by the caller) from a checkpoint once it has applied
    /// more than [`APPLIED_COMMITS_MAX`] commits since its last load: a writer (`checkpoint`)
    /// first writes the checkpoint at its version, a reader loads from the newest there is.
    pub(crate) fn reload_if_long(&self, entry: &Entry, loaded: &DeltaTable, checkpoint: bool) {
        let Some(version) = loaded.version() else {
            return;
        };
        if version.saturating_sub(entry.loaded_at.load(Ordering::Relaxed)) <= APPLIED_COMMITS_MAX
            || entry.reloading.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (lake, table, current) = (self.clone(), entry.definition.name, loaded.clone());
        tokio::spawn(async move {
            if let Err(error) = lake.reload(table, current, checkpoint).await {
                tracing::warn!(table, %error, "lake: reloading a table from a checkpoint failed; it is tried again after the next commit");
            }
            if let Ok(entry) = lake.entry(table) {
                entry.reloading.store(false, Ordering::Release);
            }
        });
    }

    /// Loads `current`'s version afresh (after checkpointing it, with `checkpoint`) and swaps it
    /// in, brought forward to what the handle has reached meanwhile.
    async fn reload(
        &self,
        table: &str,
        current: DeltaTable,
        checkpoint: bool,
    ) -> Result<(), LakeError> {
        let version = current.version().unwrap_or_default();
        if checkpoint {
            deltalake::checkpoints::create_checkpoint(&current, None)
                .await
                .map_err(|source| delta_error(table, &current, source))?;
            let cleanup = current
                .snapshot()
                .map(|snapshot| {
                    use deltalake::table::config::TablePropertiesExt;
                    snapshot.table_config().enable_expired_log_cleanup()
                })
                .unwrap_or(false);
            if cleanup {
                deltalake::checkpoints::cleanup_metadata(&current, None)
                    .await
                    .map_err(|source| delta_error(table, &current, source))?;
            }
        }
        let mut reloaded = DeltaTable::new(current.log_store());
        reloaded
            .load_version(version)
            .await
            .map_err(|source| delta_error(table, &current, source))?;
        let entry = self.entry(table)?;
        let mut guard = entry.table.lock().await;
        let Some(reached) = guard.version().filter(|reached| *reached >= version) else {
            return Ok(());
        };
        if reached > version {
            reloaded
                .update_incremental(Some(reached))
                .await
                .map_err(|source| delta_error(table, &guard, source))?;
        }
        *guard = reloaded;
        entry.loaded_at.store(version, Ordering::Relaxed);
        Ok(())
    }

    /// The table at its newest committed version.
    pub async fn latest(&self, table: &str) -> Result<DeltaTable, LakeError> {
        Ok(self.locked(table).await?.1.clone())
    }

    /// The last version committed by `app_id` into `table`, from the Delta log itself.
    pub async fn txn_version(&self, table: &str, app_id: &str) -> Result<Option<i64>, LakeError> {
        let (_, guard) = self.locked(table).await?;
        self.marker(table, &guard, app_id).await
    }

    /// `app_id`'s marker in the table version `loaded` holds (its lock held by the caller).
    pub(crate) async fn marker(
        &self,
        table: &str,
        loaded: &DeltaTable,
        app_id: &str,
    ) -> Result<Option<i64>, LakeError> {
        let entry = self.entry(table)?;
        let version = loaded.version();
        let as_of = entry.markers.lock().ok().and_then(|m| m.as_of);
        // Bring the known markers forward through the commits after them.
        let mut found: Vec<Transaction> = Vec::new();
        let mut forward = matches!((as_of, version), (Some(from), Some(to)) if from <= to && to - from <= MARKER_COMMITS_MAX);
        if forward && let (Some(from), Some(to)) = (as_of, version) {
            for commit in from + 1..=to {
                match loaded
                    .log_store()
                    .read_commit_entry(commit)
                    .await
                    .map_err(|source| delta_error(table, loaded, source))?
                {
                    Some(bytes) => found.extend(
                        bytes
                            .split(|b| *b == b'\n')
                            .filter(|line| !line.is_empty())
                            .filter_map(|line| serde_json::from_slice::<CommitLine>(line).ok())
                            .filter_map(|line| line.txn),
                    ),
                    // Cleaned up from the log: look up afresh.
                    None => {
                        forward = false;
                        break;
                    }
                }
            }
        }
        let known = {
            let mut markers = entry
                .markers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !forward {
                markers.known.clear();
            }
            for txn in found {
                markers.known.insert(txn.app_id, Some(txn.version));
            }
            markers.as_of = version;
            markers.known.get(app_id).copied()
        };
        if let Some(known) = known {
            return Ok(known);
        }
        let snapshot = loaded
            .snapshot()
            .map_err(|source| delta_error(table, loaded, source))?;
        let looked_up = snapshot
            .transaction_version(loaded.log_store().as_ref(), app_id)
            .await
            .map_err(|source| delta_error(table, loaded, source))?;
        entry
            .markers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .known
            .insert(app_id.to_owned(), looked_up);
        Ok(looked_up)
    }

    /// Appends rows and progress markers in one Delta commit, as a compare-and-set: every
    /// marker's current version must equal what the writer expects (`None`: never written),
    /// checked in the snapshot the commit is based on. A concurrent commit of the same app id
    /// makes Delta refuse this one, so two writers (a consumer that lost its partitions and the
    /// one that got them) can never both record the same progress. With no rows, only the
    /// markers are committed.
    pub async fn append(
        &self,
        table: &str,
        batches: Vec<RecordBatch>,
        progress: &[Progress],
    ) -> Result<u64, LakeError> {
        self.append_parts(table, vec![batches], progress).await
    }

    /// [`Lake::append`] of rows in parts, each written into its own file by its own task (one
    /// commit all the same).
    async fn append_parts(
        &self,
        table: &str,
        parts: Vec<Vec<RecordBatch>>,
        progress: &[Progress],
    ) -> Result<u64, LakeError> {
        let definition = &self.entry(table)?.definition;
        for batch in parts.iter().flatten() {
            if batch.schema().fields() != definition.schema.fields() {
                return Err(LakeError::Schema {
                    table: table.to_owned(),
                    reason: format!("expected {:?}, got {:?}", definition.schema, batch.schema()),
                });
            }
        }
        let (_, mut guard) = self.locked(table).await?;
        {
            for marker in progress {
                let found = self.marker(table, &guard, &marker.app_id).await?;
                if found != marker.expected {
                    return Err(LakeError::ProgressMoved {
                        table: table.to_owned(),
                        app_id: marker.app_id.clone(),
                        expected: marker.expected,
                        found,
                    });
                }
            }
        }
        let transactions: Vec<Transaction> = progress
            .iter()
            .map(|m| Transaction::new(&m.app_id, m.version))
            .collect();
        let rows: usize = parts.iter().flatten().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return self
                .commit_actions(
                    table,
                    &mut guard,
                    Vec::new(),
                    transactions,
                    SaveMode::Append,
                )
                .await;
        }
        // A small write (a pipeline's micro-batch, a net change's plans): one Parquet writer
        // straight into the commit, without planning a DataFusion write (about 15 ms a commit
        // in bench-mrp's net change).
        if parts.len() == 1 && rows < PARALLEL_ROWS_MIN {
            let started = std::time::Instant::now();
            let adds = write_files(table, &guard, parts.into_iter().flatten()).await?;
            let writing_ms = started.elapsed().as_millis();
            let version = self
                .commit_actions(table, &mut guard, adds, transactions, SaveMode::Append)
                .await?;
            tracing::debug!(
                table,
                rows,
                version,
                writing_ms,
                committing_ms = started.elapsed().as_millis() - writing_ms,
                "lake: rows appended"
            );
            return Ok(version);
        }
        let commit = commit_properties(transactions);
        // Each part is a partition of the input, written by its own task into its own file.
        let input = datafusion::datasource::MemTable::try_new(definition.schema.clone(), parts)
            .and_then(|rows| {
                datafusion::logical_expr::LogicalPlanBuilder::scan(
                    "rows",
                    datafusion::datasource::provider_as_source(Arc::new(rows)),
                    None,
                )?
                .build()
            })
            .map_err(|source| LakeError::Schema {
                table: table.to_owned(),
                reason: source.to_string(),
            })?;
        let mut write = guard
            .clone()
            .write(Vec::new())
            .with_input_plan(input)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(commit);
        if !definition.partition_columns.is_empty() {
            write = write.with_partition_columns(
                definition.partition_columns.iter().map(|c| (*c).to_owned()),
            );
        }
        let written = write
            .await
            .map_err(|source| delta_error(table, &guard, source))?;
        *guard = written;
        self.reload_if_long(self.entry(table)?, &guard, true);
        Ok(guard.version().unwrap_or_default())
    }
}

/// Writes `batches` into new data files of the table (partitioned as it is, with their
/// statistics); answers their add actions, not yet committed.
async fn write_files(
    table: &str,
    loaded: &DeltaTable,
    batches: impl Iterator<Item = RecordBatch>,
) -> Result<Vec<deltalake::kernel::Action>, LakeError> {
    use deltalake::writer::{DeltaWriter, RecordBatchWriter};
    let failed = |source: DeltaTableError| delta_error(table, loaded, source);
    let mut writer = RecordBatchWriter::for_table(loaded).map_err(failed)?;
    for batch in batches {
        writer.write(batch).await.map_err(failed)?;
    }
    Ok(writer
        .flush()
        .await
        .map_err(failed)?
        .into_iter()
        .map(deltalake::kernel::Action::Add)
        .collect())
}

/// The properties of every commit: its progress markers, and neither a checkpoint nor the
/// expired-log cleanup (which lists the whole log): those are made beside the writes when the
/// handle is reloaded (`reload_if_long`).
fn commit_properties(transactions: Vec<Transaction>) -> CommitProperties {
    CommitProperties::default()
        .with_application_transactions(transactions)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false))
}

impl Lake {
    /// Commits `actions` and `transactions` as a write in `mode` to the table whose handle the
    /// caller locked, and brings the handle forward; answers the new version.
    pub(crate) async fn commit_actions(
        &self,
        table: &str,
        guard: &mut DeltaTable,
        actions: Vec<deltalake::kernel::Action>,
        transactions: Vec<Transaction>,
        mode: SaveMode,
    ) -> Result<u64, LakeError> {
        let operation = DeltaOperation::Write {
            mode,
            partition_by: None,
            predicate: None,
        };
        let snapshot = guard
            .snapshot()
            .map_err(|source| delta_error(table, guard, source))?;
        let finalized = CommitBuilder::from(commit_properties(transactions))
            .with_actions(actions)
            .build(Some(snapshot), guard.log_store(), operation)
            .await
            .map_err(|source| delta_error(table, guard, source))?;
        let version = finalized.version();
        // The commit already brought the snapshot it was built on forward to its own version
        // (its post-commit step reads the new log entry): the handle takes that state instead
        // of listing the log and decoding the entry a second time (decoding commit JSON took a
        // fifth of the pipelines process's time while posting, most of it zeroing fresh memory).
        guard.state = Some(finalized.snapshot);
        self.reload_if_long(self.entry(table)?, guard, true);
        Ok(version)
    }
}

#[async_trait::async_trait]
impl tributary_kernel::lake::LakeWriter for Lake {
    async fn append_rows(
        &self,
        table: &str,
        chunks: tributary_kernel::lake::RowChunks<'_>,
        progress: Option<tributary_kernel::lake::ProgressMarker>,
    ) -> Result<(), String> {
        let schema = self
            .entry(table)
            .map_err(|e| e.to_string())?
            .definition
            .schema
            .clone();
        // Each chunk is turned into Arrow on a thread of its own while the next one is made,
        // then dropped: its cells' memory serves the next chunk (fresh pages cost: the first
        // full MRP run spent half its write in the kernel zeroing them). Both are CPU work of
        // 10 to 40 ms per net change: the runtime moves its other tasks off this thread first.
        let converted = off_the_runtime(|| {
            std::thread::scope(|scope| {
                let (send, receive) =
                    std::sync::mpsc::sync_channel::<Vec<Vec<tributary_kernel::lake::Cell<'_>>>>(1);
                let schema = &schema;
                let converting = scope.spawn(move || {
                    let mut batches = Vec::new();
                    for chunk in receive {
                        if !chunk.is_empty() {
                            batches.push(crate::cells::batch_of(schema, &chunk)?);
                        }
                    }
                    Ok::<_, datafusion::arrow::error::ArrowError>(batches)
                });
                for chunk in chunks {
                    if send.send(chunk).is_err() {
                        break;
                    }
                }
                drop(send);
                converting
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        });
        let batches = converted.map_err(|error| format!("rows for {table}: {error}"))?;
        // Large writes are written by every core, one part (file) each; small ones one file.
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let cores = if rows >= PARALLEL_ROWS_MIN {
            crate::cores()
        } else {
            1
        };
        let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); cores.min(batches.len().max(1))];
        let count = parts.len();
        for (index, batch) in batches.into_iter().enumerate() {
            parts[index % count].push(batch);
        }
        let progress: Vec<Progress> = progress
            .into_iter()
            .map(|m| Progress {
                app_id: m.app_id,
                expected: m.expected,
                version: m.version,
            })
            .collect();
        self.append_parts(table, parts, &progress)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    async fn progress(&self, table: &str, app_id: &str) -> Result<Option<i64>, String> {
        self.txn_version(table, app_id)
            .await
            .map_err(|error| error.to_string())
    }
}

/// Runs CPU-bound `work` on this thread after the runtime has handed this worker's other tasks
/// to another (on a multi-threaded runtime; a current-thread runtime runs it as it is).
fn off_the_runtime<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Rows from which [`LakeWriter::append_rows`](tributary_kernel::lake::LakeWriter) writes in
/// parallel.
const PARALLEL_ROWS_MIN: usize = 100_000;

/// Rows per row group in compacted files.
const COMPACTED_ROW_GROUP_ROWS: usize = 64 * 1024;

/// What a compaction did to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    pub files_before: usize,
    pub files_removed: u64,
    pub files_added: u64,
}

impl Compaction {
    /// The table's data files after the compaction.
    pub fn files_after(&self) -> u64 {
        self.files_before as u64 - self.files_removed + self.files_added
    }
}

impl Lake {
    /// The number of data files in the table's newest version.
    pub async fn file_count(&self, table: &str) -> Result<usize, LakeError> {
        file_count(table, &self.locked(table).await?.1)
    }

    /// The sizes in bytes of the data files in the table's newest version.
    pub async fn file_sizes(&self, table: &str) -> Result<Vec<u64>, LakeError> {
        let (_, current) = self.locked(table).await?;
        Ok(current
            .snapshot()
            .map_err(|source| delta_error(table, &current, source))?
            .log_data()
            .iter()
            .map(|file| u64::try_from(file.size()).unwrap_or(0))
            .collect())
    }

    /// Rewrites the table's small files into files of about `target_bytes` (Delta OPTIMIZE,
    /// bin-packing adjacent files, so rows keep their order). The rows, and every progress
    /// marker, are unchanged; readers of older versions still find the old files.
    ///
    /// The rewrite works on a copy of the newest version without holding the table: appends
    /// and queries go on meanwhile (holding it stalled the pipelines and the probe queries for
    /// the whole rewrite). Delta lets both commit: a compaction changes no data, so it checks
    /// no files added after it read (snapshot isolation), and blind appends read none of the
    /// files it removes; each side's commit is retried on top of the other's. Should appends win
    /// every attempt, the rewrite is made again holding the table.
    pub async fn compact(&self, table: &str, target_bytes: u64) -> Result<Compaction, LakeError> {
        let current = self.latest(table).await?;
        let files_before = file_count(table, &current)?;
        // Row groups of 64 Ki rows: a compacted table is few files, and row groups are what
        // the cores read in parallel and what statistics prune.
        let properties = deltalake::parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(COMPACTED_ROW_GROUP_ROWS))
            .build();
        let optimize = |table: DeltaTable| {
            let optimize = table
                .optimize()
                .with_type(deltalake::operations::optimize::OptimizeType::Compact)
                .with_writer_properties(properties.clone());
            match std::num::NonZeroU64::new(target_bytes) {
                Some(target) => optimize.with_target_size(target),
                None => optimize,
            }
        };
        let entry = self.entry(table)?;
        let (compacted, metrics) = match optimize(current.clone()).await {
            // Appends won every one of the commit's attempts (back-to-back small commits):
            // rewrite again holding the table, as compaction always did before.
            Err(DeltaTableError::Transaction {
                source: deltalake::kernel::transaction::TransactionError::MaxCommitAttempts(_),
            }) => {
                let (_, mut guard) = self.locked(table).await?;
                let (compacted, metrics) = optimize(guard.clone())
                    .await
                    .map_err(|source| delta_error(table, &guard, source))?;
                *guard = compacted;
                self.reload_if_long(entry, &guard, true);
                return Ok(Compaction {
                    files_before,
                    files_removed: metrics.num_files_removed,
                    files_added: metrics.num_files_added,
                });
            }
            other => other.map_err(|source| delta_error(table, &current, source))?,
        };
        // The shared handle moves on to the compacted version unless it got past it meanwhile
        // (an append retried on top of the compaction's commit): either state holds both.
        let mut guard = entry.table.lock().await;
        if guard.version() < compacted.version() {
            *guard = compacted;
        }
        self.reload_if_long(entry, &guard, true);
        Ok(Compaction {
            files_before,
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
        })
    }
}

fn file_count(table: &str, current: &DeltaTable) -> Result<usize, LakeError> {
    Ok(current
        .get_file_uris()
        .map_err(|source| delta_error(table, current, source))?
        .count())
}

/// A progress marker to commit with rows: Delta `txn(app_id, version)`, valid only if the
/// table's current version for `app_id` is still `expected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub app_id: String,
    pub expected: Option<i64>,
    pub version: i64,
}

/// Table property set once a table's schema has evolved: its older files lack the new columns.
pub const SCHEMA_EVOLVED_PROPERTY: &str = "tributary.schemaEvolved";

/// Brings an existing table to its definition: columns the definition gained (at its end,
/// nullable: the rows written before have no value) are added in place, a metadata-only
/// Delta commit. Anything else (a column dropped, moved, retyped, or new and NOT NULL) is
/// refused with the column named: the table's data would no longer fit its definition.
async fn evolve(
    table: DeltaTable,
    definition: &TableDefinition,
    wanted: &deltalake::kernel::StructType,
) -> Result<DeltaTable, LakeError> {
    let refuse = |reason: String| LakeError::Schema {
        table: definition.name.to_owned(),
        reason,
    };
    let current: Vec<deltalake::kernel::StructField> = {
        let snapshot = table
            .snapshot()
            .map_err(|source| delta_error(definition.name, &table, source))?;
        snapshot.schema().fields().cloned().collect()
    };
    let wanted: Vec<&deltalake::kernel::StructField> = wanted.fields().collect();
    for (index, field) in current.iter().enumerate() {
        match wanted.get(index) {
            Some(w) if w.name() == field.name() && w.data_type() == field.data_type() => {}
            Some(w) if w.name() == field.name() => {
                return Err(refuse(format!(
                    "column {} is {:?} in the table and {:?} in its definition; a column's type never changes",
                    field.name(),
                    field.data_type(),
                    w.data_type()
                )));
            }
            _ => {
                return Err(refuse(format!(
                    "column {} (position {index}) is not where the table's definition has it; \
                     columns are never dropped or moved, new ones go at the end",
                    field.name()
                )));
            }
        }
    }
    let added: Vec<deltalake::kernel::StructField> = wanted[current.len()..]
        .iter()
        .map(|f| (*f).clone())
        .collect();
    if added.is_empty() {
        return Ok(table);
    }
    if let Some(required) = added.iter().find(|f| !f.is_nullable()) {
        return Err(refuse(format!(
            "new column {} must be nullable: the rows written before it have no value",
            required.name()
        )));
    }
    tracing::info!(
        table = definition.name,
        columns = ?added.iter().map(|f| f.name().clone()).collect::<Vec<_>>(),
        "evolving the table's schema in place"
    );
    let name = definition.name;
    let delta = |source| LakeError::Delta {
        table: name.to_owned(),
        version: None,
        source: Box::new(source),
    };
    let table = table
        .add_columns()
        .with_fields(added)
        .await
        .map_err(delta)?;
    table
        .set_tbl_properties()
        // A property of Tributary's own, not one of Delta's.
        .with_raise_if_not_exists(false)
        .with_properties(HashMap::from([(
            SCHEMA_EVOLVED_PROPERTY.to_owned(),
            "true".to_owned(),
        )]))
        .await
        .map_err(delta)
}

pub(crate) fn delta_error(table: &str, current: &DeltaTable, source: DeltaTableError) -> LakeError {
    LakeError::Delta {
        table: table.to_owned(),
        version: current.version(),
        source: Box::new(source),
    }
}

async fn open_or_create(root: &Url, definition: &TableDefinition) -> Result<DeltaTable, LakeError> {
    let location = format!(
        "{}/{}",
        root.as_str().trim_end_matches('/'),
        definition.name
    );
    let url = deltalake::ensure_table_uri(&location).map_err(|e| LakeError::Location {
        location: location.clone(),
        reason: e.to_string(),
    })?;
    let error = |source: DeltaTableError| LakeError::Delta {
        table: definition.name.to_owned(),
        version: None,
        source: Box::new(source),
    };
    let table = DeltaTable::try_from_url(url.clone()).await.map_err(error)?;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    let schema: deltalake::kernel::StructType = definition
        .schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| LakeError::Schema {
            table: definition.name.to_owned(),
            reason: e.to_string(),
        })?;
    let existing = |mut table: DeltaTable| async {
        table.load().await.map_err(error)?;
        let table = evolve(table, definition, &schema).await?;
        with_stats_columns(table, definition).await
    };
    if table.verify_deltatable_existence().await.map_err(error)? {
        return existing(table).await;
    }
    let created = table
        .create()
        .with_table_name(definition.name)
        .with_comment(definition.description)
        .with_columns(schema.fields().cloned())
        .with_partition_columns(definition.partition_columns.iter().map(|c| (*c).to_owned()))
        .with_configuration(
            definition
                .stats_columns
                .map(|n| (STATS_COLUMNS_PROPERTY.to_owned(), Some(n.to_string()))),
        )
        .with_save_mode(SaveMode::Ignore)
        .await;
    match created {
        Ok(table) => Ok(table),
        Err(failed) => {
            // Processes started together on a fresh lake: another one created the table at
            // the same moment (its first commit won); open what it made.
            let table = DeltaTable::try_from_url(url).await.map_err(error)?;
            if table.verify_deltatable_existence().await.map_err(error)? {
                existing(table).await
            } else {
                Err(error(failed))
            }
        }
    }
}

/// Delta's table property: statistics for the first n columns.
const STATS_COLUMNS_PROPERTY: &str = "delta.dataSkippingNumIndexedCols";

/// Sets the table's statistics columns to its definition's when they differ (a table created
/// before the definition named them): files written from then on keep those.
async fn with_stats_columns(
    table: DeltaTable,
    definition: &TableDefinition,
) -> Result<DeltaTable, LakeError> {
    let Some(wanted) = definition.stats_columns else {
        return Ok(table);
    };
    let current = table
        .snapshot()
        .map_err(|source| delta_error(definition.name, &table, source))?
        .metadata()
        .configuration()
        .get(STATS_COLUMNS_PROPERTY)
        .cloned();
    if current.as_deref() == Some(wanted.to_string().as_str()) {
        return Ok(table);
    }
    tracing::info!(
        table = definition.name,
        columns = wanted,
        "keeping data-skipping statistics for the table's first columns only"
    );
    let name = definition.name;
    table
        .set_tbl_properties()
        .with_properties(HashMap::from([(
            STATS_COLUMNS_PROPERTY.to_owned(),
            wanted.to_string(),
        )]))
        .await
        .map_err(|source| LakeError::Delta {
            table: name.to_owned(),
            version: None,
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::{APPLIED_COMMITS_MAX, Lake, LakeError, Progress};
    use crate::catalog::{TableDefinition, schema_of};
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::record_batch::RecordBatch;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use tributary_kernel::lake::{ColumnSpec, ColumnType};

    fn definition() -> TableDefinition {
        TableDefinition {
            name: "numbers",
            description: "test",
            schema: schema_of(&[ColumnSpec::new("n", ColumnType::Int64, false)]),
            partition_columns: &[],
            stats_columns: None,
        }
    }

    fn rows(n: i64) -> Vec<RecordBatch> {
        let batch = RecordBatch::try_new(
            definition().schema,
            vec![Arc::new(Int64Array::from(vec![n]))],
        )
        .expect("a batch");
        vec![batch]
    }

    fn marker(app_id: &str, expected: Option<i64>, version: i64) -> Progress {
        Progress {
            app_id: app_id.into(),
            expected,
            version,
        }
    }

    /// Two handles on one lake directory are two processes: each sees the other's markers
    /// (read forward from the commits after what it knew), and a write that expects a marker
    /// the other moved is refused.
    #[tokio::test]
    async fn progress_markers_of_another_writer_are_seen_and_a_stale_expectation_is_refused() {
        let dir = tempfile::tempdir().expect("a directory");
        let location = dir.path().to_str().expect("a path");
        let a = Lake::open(location, vec![definition()])
            .await
            .expect("lake a");
        let b = Lake::open(location, vec![definition()])
            .await
            .expect("lake b");
        assert_eq!(b.txn_version("numbers", "x").await.expect("x"), None);
        a.append("numbers", rows(1), &[marker("x", None, 1)])
            .await
            .expect("a writes x 1");
        assert_eq!(b.txn_version("numbers", "x").await.expect("x"), Some(1));
        assert_eq!(b.txn_version("numbers", "y").await.expect("y"), None);
        a.append(
            "numbers",
            rows(2),
            &[marker("x", Some(1), 2), marker("y", None, 7)],
        )
        .await
        .expect("a writes x 2, y 7");
        a.append("numbers", rows(3), &[])
            .await
            .expect("a writes rows only");
        assert_eq!(b.txn_version("numbers", "x").await.expect("x"), Some(2));
        assert_eq!(b.txn_version("numbers", "y").await.expect("y"), Some(7));
        match b
            .append("numbers", rows(4), &[marker("x", Some(1), 2)])
            .await
        {
            Err(LakeError::ProgressMoved { found, .. }) => assert_eq!(found, Some(2)),
            other => panic!("a stale expectation must be refused, got {other:?}"),
        }
        b.append("numbers", rows(4), &[marker("x", Some(2), 3)])
            .await
            .expect("b writes x 3");
        assert_eq!(a.txn_version("numbers", "x").await.expect("x"), Some(3));
        // A new process reads the log afresh and agrees.
        let c = Lake::open(location, vec![definition()])
            .await
            .expect("lake c");
        assert_eq!(c.txn_version("numbers", "x").await.expect("x"), Some(3));
        assert_eq!(c.txn_version("numbers", "y").await.expect("y"), Some(7));
        assert_eq!(c.file_count("numbers").await.expect("files"), 4);
    }

    /// Rows, distinct values and their sum in the table's newest version.
    async fn counted(lake: &Lake) -> (i64, i64, i64) {
        use datafusion::arrow::array::AsArray;
        let context = datafusion::prelude::SessionContext::new();
        let table = lake.latest("numbers").await.expect("the table");
        context
            .register_table("numbers", table.table_provider().await.expect("a provider"))
            .expect("registered");
        let batches = context
            .sql("SELECT count(*), count(DISTINCT n), sum(n) FROM numbers")
            .await
            .expect("planned")
            .collect()
            .await
            .expect("counted");
        let column = |i: usize| {
            batches[0]
                .column(i)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0)
        };
        (column(0), column(1), column(2))
    }

    /// Compaction does not hold the table while it rewrites: appends commit meanwhile, and
    /// afterwards every row is there once, in this process and in another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_go_on_while_a_table_is_compacted_and_every_row_stays_once() {
        let dir = tempfile::tempdir().expect("a directory");
        let location = dir.path().to_str().expect("a path");
        let lake = Lake::open(location, vec![definition()])
            .await
            .expect("lake");
        let (before, after) = (60i64, 60i64);
        for n in 1..=before {
            lake.append(
                "numbers",
                rows(n),
                &[marker("x", (n > 1).then(|| n - 1), n)],
            )
            .await
            .expect("a write");
        }
        // When each append and each compaction ran: an append that began and ended within a
        // compaction committed while it rewrote (impossible while compaction held the table).
        let appends = {
            let writer = lake.clone();
            tokio::spawn(async move {
                let mut spans = Vec::new();
                for n in before + 1..=before + after {
                    let started = std::time::Instant::now();
                    writer
                        .append("numbers", rows(n), &[marker("x", Some(n - 1), n)])
                        .await
                        .expect("an append beside the compaction");
                    spans.push((started, std::time::Instant::now()));
                }
                spans
            })
        };
        let mut compactions = Vec::new();
        while !appends.is_finished() {
            let started = std::time::Instant::now();
            lake.compact("numbers", 0).await.expect("compacted");
            compactions.push((started, std::time::Instant::now()));
        }
        let appends = appends.await.expect("the appends");
        let within = appends
            .iter()
            .filter(|(a, b)| compactions.iter().any(|(c, d)| c < a && b < d))
            .count();
        assert!(
            within > 0,
            "none of {} appends ran within one of {} compactions",
            appends.len(),
            compactions.len()
        );
        let expected = (before + after, before + after, (1..=before + after).sum());
        assert_eq!(counted(&lake).await, expected);
        assert_eq!(
            lake.txn_version("numbers", "x").await.expect("x"),
            Some(before + after)
        );
        let other = Lake::open(location, vec![definition()])
            .await
            .expect("another process");
        assert_eq!(counted(&other).await, expected);
        lake.compact("numbers", 0).await.expect("compacted");
        assert_eq!(lake.file_count("numbers").await.expect("files"), 1);
        assert_eq!(counted(&lake).await, expected);
    }

    /// Processes started together on a fresh lake all open it: the ones whose creation of a
    /// table lost to another's open the table that one made.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_opening_a_fresh_lake_at_once_all_open_it() {
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("a directory");
            let location = dir.path().to_str().expect("a path");
            let opened =
                futures::future::join_all((0..6).map(|_| Lake::open(location, vec![definition()])))
                    .await;
            for lake in opened {
                let lake = lake.expect("every process opens the lake");
                assert_eq!(lake.file_count("numbers").await.expect("files"), 0);
            }
        }
    }

    /// Waits until the table's handle in `lake` was reloaded at a version after `after`;
    /// answers that version.
    async fn reloaded_after(lake: &Lake, after: u64) -> u64 {
        let entry = lake.entry("numbers").expect("the table");
        for _ in 0..3_000 {
            let loaded_at = entry.loaded_at.load(Ordering::Acquire);
            if loaded_at > after && !entry.reloading.load(Ordering::Acquire) {
                return loaded_at;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the handle was never reloaded");
    }

    /// A handle that applied many commits one by one is reloaded from a checkpoint beside the
    /// writes: the writer checkpoints its version first, a reader in another process loads
    /// from it, and what was committed meanwhile is neither lost nor its progress forgotten.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handle_long_brought_forward_is_reloaded_from_a_checkpoint_losing_nothing() {
        let dir = tempfile::tempdir().expect("a directory");
        let location = dir.path().to_str().expect("a path");
        let writer = Lake::open(location, vec![definition()])
            .await
            .expect("writer");
        let reader = Lake::open(location, vec![definition()])
            .await
            .expect("reader");
        let commits = APPLIED_COMMITS_MAX as i64 + 5;
        for n in 1..=commits {
            writer
                .append(
                    "numbers",
                    rows(n),
                    &[marker("x", (n > 1).then(|| n - 1), n)],
                )
                .await
                .expect("a write");
        }
        let loaded_at = reloaded_after(&writer, 1).await;
        assert!(loaded_at > APPLIED_COMMITS_MAX, "reloaded at {loaded_at}");
        let checkpoint = dir.path().join(format!(
            "numbers/_delta_log/{loaded_at:020}.checkpoint.parquet"
        ));
        assert!(checkpoint.exists(), "no checkpoint at {loaded_at}");
        // Current and complete, also for the commits made while it reloaded.
        assert_eq!(
            writer.file_count("numbers").await.expect("files"),
            commits as usize
        );
        assert_eq!(
            writer.txn_version("numbers", "x").await.expect("x"),
            Some(commits)
        );
        writer
            .append(
                "numbers",
                rows(0),
                &[marker("x", Some(commits), commits + 1)],
            )
            .await
            .expect("a write after the reload");
        // The reader brings its handle forward through every commit, then reloads it.
        assert_eq!(
            reader.txn_version("numbers", "x").await.expect("x"),
            Some(commits + 1)
        );
        assert!(reloaded_after(&reader, 1).await > APPLIED_COMMITS_MAX);
        assert_eq!(
            reader.file_count("numbers").await.expect("files"),
            commits as usize + 1
        );
    }
}
