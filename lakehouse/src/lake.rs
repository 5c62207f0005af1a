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
}

/// The lake's tables, each kept loaded at its latest known version.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    tables: Arc<HashMap<&'static str, (TableDefinition, Mutex<DeltaTable>)>>,
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
            tables.insert(definition.name, (definition, Mutex::new(table)));
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
        self.tables.values().map(|(definition, _)| definition)
    }

    fn entry(&self, table: &str) -> Result<&(TableDefinition, Mutex<DeltaTable>), LakeError> {
        self.tables
            .get(table)
            .ok_or_else(|| LakeError::UnknownTable {
                table: table.to_owned(),
            })
    }

    /// The table's handle, locked and brought to its newest committed version.
    async fn locked(
        &self,
        table: &str,
    ) -> Result<(&TableDefinition, tokio::sync::MutexGuard<'_, DeltaTable>), LakeError> {
        let (definition, handle) = self.entry(table)?;
        let mut guard = handle.lock().await;
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
        Ok((definition, guard))
    }

    /// The table at its newest committed version.
    pub async fn latest(&self, table: &str) -> Result<DeltaTable, LakeError> {
        Ok(self.locked(table).await?.1.clone())
    }

    /// The last version committed by `app_id` into `table`, from the Delta log itself.
    pub async fn txn_version(&self, table: &str, app_id: &str) -> Result<Option<i64>, LakeError> {
        let current = self.latest(table).await?;
        let snapshot = current
            .snapshot()
            .map_err(|source| delta_error(table, &current, source))?;
        snapshot
            .transaction_version(current.log_store().as_ref(), app_id)
            .await
            .map_err(|source| delta_error(table, &current, source))
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
        let definition = &self.entry(table)?.0;
        for batch in &batches {
            if batch.schema().fields() != definition.schema.fields() {
                return Err(LakeError::Schema {
                    table: table.to_owned(),
                    reason: format!("expected {:?}, got {:?}", definition.schema, batch.schema()),
                });
            }
        }
        let (_, mut guard) = self.locked(table).await?;
        {
            let snapshot = guard
                .snapshot()
                .map_err(|source| delta_error(table, &guard, source))?;
            for marker in progress {
                let found = snapshot
                    .transaction_version(guard.log_store().as_ref(), &marker.app_id)
                    .await
                    .map_err(|source| delta_error(table, &guard, source))?;
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
        let commit = CommitProperties::default().with_application_transactions(transactions);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            let operation = DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            };
            let snapshot = guard
                .snapshot()
                .map_err(|source| delta_error(table, &guard, source))?;
            let finalized = CommitBuilder::from(commit)
                .build(Some(snapshot), guard.log_store(), operation)
                .await
                .map_err(|source| delta_error(table, &guard, source))?;
            let version = finalized.version();
            guard
                .update_incremental(None)
                .await
                .map_err(|source| delta_error(table, &guard, source))?;
            return Ok(version);
        }
        let mut write = guard
            .clone()
            .write(batches)
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
        Ok(guard.version().unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl tributary_kernel::lake::LakeWriter for Lake {
    async fn append_rows(
        &self,
        table: &str,
        rows: Vec<Vec<tributary_kernel::lake::Cell<'static>>>,
        progress: Option<tributary_kernel::lake::ProgressMarker>,
    ) -> Result<(), String> {
        let schema = self
            .entry(table)
            .map_err(|e| e.to_string())?
            .0
            .schema
            .clone();
        let batch = crate::cells::batch_of(&schema, &rows)
            .map_err(|error| format!("rows for {table}: {error}"))?;
        let progress: Vec<Progress> = progress
            .into_iter()
            .map(|m| Progress {
                app_id: m.app_id,
                expected: m.expected,
                version: m.version,
            })
            .collect();
        self.append(table, vec![batch], &progress)
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

    /// Rewrites the table's small files into files of about `target_bytes` (Delta OPTIMIZE,
    /// bin-packing adjacent files, so rows keep their order). The rows, and every progress
    /// marker, are unchanged; readers of older versions still find the old files.
    pub async fn compact(&self, table: &str, target_bytes: u64) -> Result<Compaction, LakeError> {
        let (_, mut guard) = self.locked(table).await?;
        let files_before = file_count(table, &guard)?;
        // Row groups of 64 Ki rows: a compacted table is few files, and row groups are what
        // the cores read in parallel and what statistics prune.
        let properties = deltalake::parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(COMPACTED_ROW_GROUP_ROWS))
            .build();
        let mut optimize = guard
            .clone()
            .optimize()
            .with_type(deltalake::operations::optimize::OptimizeType::Compact)
            .with_writer_properties(properties);
        if let Some(target) = std::num::NonZeroU64::new(target_bytes) {
            optimize = optimize.with_target_size(target);
        }
        let (compacted, metrics) = optimize
            .await
            .map_err(|source| delta_error(table, &guard, source))?;
        *guard = compacted;
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

fn delta_error(table: &str, current: &DeltaTable, source: DeltaTableError) -> LakeError {
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
    let mut table = DeltaTable::try_from_url(url).await.map_err(error)?;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    let schema: deltalake::kernel::StructType = definition
        .schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| LakeError::Schema {
            table: definition.name.to_owned(),
            reason: e.to_string(),
        })?;
    if table.verify_deltatable_existence().await.map_err(error)? {
        table.load().await.map_err(error)?;
        return evolve(table, definition, &schema).await;
    }
    table
        .create()
        .with_table_name(definition.name)
        .with_comment(definition.description)
        .with_columns(schema.fields().cloned())
        .with_partition_columns(definition.partition_columns.iter().map(|c| (*c).to_owned()))
        .with_save_mode(SaveMode::Ignore)
        .await
        .map_err(error)
}
