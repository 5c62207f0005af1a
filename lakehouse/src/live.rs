//! Lake tables and `sql/views` that are always current, planned once.
//!
//! A [`LiveTable`] resolves its table's newest Delta version when a plan scans it, not when the
//! plan is made; views are created once over live tables, so a view's plan is built once and
//! still reads the newest data. Contexts are then cheap to make (no table is loaded until a
//! statement scans it), for HTTP and for the shared context of the wire protocol alike.

use crate::lake::{Lake, LakeError};
use crate::query::ReadScope;
use crate::upkeep::AsOf;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// A lake table read at its newest committed version at scan time.
#[derive(Debug)]
pub struct LiveTable {
    name: &'static str,
    lake: Lake,
    /// Partitioned tables (the bronze events) are scanned by deltalake's own provider, which
    /// turns partition directories into columns; the others by [`LiveTable::scan_files`].
    partitioned: bool,
    /// The definition's partition columns (the last columns of its schema).
    partition_columns: &'static [&'static str],
    /// The schema of the version seen at creation (fixed: the tables are append-only with the
    /// catalog's schema), or with its text read as `Utf8View` (see
    /// [`LiveTable::with_string_views`]).
    schema: SchemaRef,
    /// An earlier state to read instead of the newest (the `as_of` table function).
    at: Option<AsOf>,
}

impl LiveTable {
    pub async fn open(lake: &Lake, name: &'static str) -> Result<LiveTable, LakeError> {
        let partition_columns = lake
            .definitions()
            .find(|definition| definition.name == name)
            .map_or(&[][..], |definition| definition.partition_columns);
        let schema = provider(lake, name)
            .await
            .map_err(|error| LakeError::Schema {
                table: name.to_owned(),
                reason: error.to_string(),
            })?
            .schema();
        Ok(LiveTable {
            name,
            lake: lake.clone(),
            partitioned: !partition_columns.is_empty(),
            partition_columns,
            schema,
            at: None,
        })
    }

    /// This table with its text columns read as `Utf8View` (for SQL: grouping, joining and
    /// comparing short strings is cheaper on views, and the Parquet reader decodes
    /// dictionary-encoded text into views over the dictionary instead of copying every value:
    /// the trial balance straight from 10M journal lines, grouped by account and currency,
    /// spent a quarter of its time hashing and copying strings). Pipelines keep `Utf8`: what
    /// they join flows into tables written as `Utf8`. Partitioned tables keep theirs too:
    /// deltalake's own scan reads them.
    pub fn with_string_views(mut self) -> LiveTable {
        if !self.partitioned {
            self.schema = string_views(&self.schema);
        }
        self
    }

    /// This table as it was at `at`.
    pub fn at(&self, at: AsOf) -> LiveTable {
        LiveTable {
            name: self.name,
            lake: self.lake.clone(),
            partitioned: self.partitioned,
            partition_columns: self.partition_columns,
            schema: self.schema.clone(),
            at: Some(at),
        }
    }
}

async fn provider(lake: &Lake, name: &str) -> Result<Arc<dyn TableProvider>, DataFusionError> {
    let table = lake
        .latest(name)
        .await
        .map_err(|error| DataFusionError::External(Box::new(error)))?;
    table.table_provider().await
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        // The scan applies every filter itself (see `LiveTable::scan`): it drops the ones the
        // Delta log's statistics prove true for every row read, and filters the rows by the
        // rest right above the Parquet reader, whose statistics and page index still prune.
        Ok(filters
            .iter()
            .map(|filter| {
                if filter.is_volatile() {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    TableProviderFilterPushDown::Exact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let table = match self.at {
            None => self.lake.latest(self.name).await,
            Some(at) => self.lake.as_of(self.name, at).await,
        }
        .map_err(|error| DataFusionError::External(Box::new(error)))?;
        let conjuncts: Vec<Expr> = filters
            .iter()
            .flat_map(split_conjunction)
            .cloned()
            .collect();
        // For the Ballista cluster every table, partitioned or not, is a plain Parquet scan:
        // deltalake's own scan node cannot be sent to executors.
        let distributed = crate::cluster::distributed(state.config());
        if (distributed || !self.partitioned)
            && let Some(plan) =
                self.scan_files(&table, state, projection, &conjuncts, limit, distributed)?
        {
            return Ok(plan);
        }
        let read = Read::new(&self.schema(), projection, &conjuncts);
        let provider = table.table_provider().await?;
        let plan = if provider.schema() == self.schema {
            provider
                .scan(state, read.columns.as_ref(), filters, read.limit(limit))
                .await?
        } else {
            // The filters are typed for the views: the rows are filtered above the cast.
            let plan = provider
                .scan(state, read.columns.as_ref(), &[], read.limit(limit))
                .await?;
            as_string_views(plan)?
        };
        read.filter(state, without_row_filters(plan)?, limit)
    }
}

/// `schema` with its `Utf8` columns as `Utf8View`.
fn string_views(schema: &SchemaRef) -> SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8 => field.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `plan`'s rows with its `Utf8` columns cast to `Utf8View`.
fn as_string_views(
    plan: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::physical_expr::expressions::{CastExpr, Column};
    use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
    let schema = plan.schema();
    let columns = schema.fields().iter().enumerate().map(|(index, field)| {
        let column = Arc::new(Column::new(field.name(), index));
        let expr: Arc<dyn datafusion::physical_expr::PhysicalExpr> = match field.data_type() {
            DataType::Utf8 => Arc::new(CastExpr::new(column, DataType::Utf8View, None)),
            _ => column,
        };
        ProjectionExpr::new(expr, field.name().clone())
    });
    Ok(Arc::new(ProjectionExec::try_new(columns, plan)?))
}

/// The columns a scan reads and the filters it applies to them: the columns asked for plus
/// the ones only the filters use, which the filter then projects away.
struct Read<'a> {
    conjuncts: &'a [Expr],
    /// Indices into the table schema; `None`: all columns.
    columns: Option<Vec<usize>>,
    /// The asked-for columns as indices into `columns`, when they differ from it.
    output: Option<Vec<usize>>,
}

impl<'a> Read<'a> {
    fn new(schema: &SchemaRef, projection: Option<&Vec<usize>>, conjuncts: &'a [Expr]) -> Read<'a> {
        let Some(projection) = projection else {
            return Read {
                conjuncts,
                columns: None,
                output: None,
            };
        };
        let mut columns = projection.clone();
        for conjunct in conjuncts {
            for column in conjunct.column_refs() {
                if let Ok(index) = schema.index_of(&column.name)
                    && !columns.contains(&index)
                {
                    columns.push(index);
                }
            }
        }
        let output = (columns.len() != projection.len()).then(|| (0..projection.len()).collect());
        Read {
            conjuncts,
            columns: Some(columns),
            output,
        }
    }

    /// The row limit the reader itself may apply: only when no filter runs above it.
    fn limit(&self, limit: Option<usize>) -> Option<usize> {
        if self.conjuncts.is_empty() {
            limit
        } else {
            None
        }
    }

    /// `plan` (reading `columns`) with the rows filtered, the filter-only columns dropped and
    /// the limit applied after the filter.
    fn filter(
        &self,
        state: &dyn Session,
        plan: Arc<dyn ExecutionPlan>,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        use datafusion::common::DFSchema;
        use datafusion::physical_plan::filter::FilterExecBuilder;
        let Some(predicate) = conjunction(self.conjuncts.iter().cloned()) else {
            return Ok(plan);
        };
        let predicate =
            state.create_physical_expr(predicate, &DFSchema::try_from(plan.schema())?)?;
        Ok(Arc::new(
            FilterExecBuilder::new(predicate, plan)
                .apply_projection(self.output.clone())?
                .with_fetch(limit)
                .build()?,
        ))
    }
}

impl LiveTable {
    /// Each file's `stats` JSON, parsed once per file and kept (by path: a file's statistics
    /// never change) for the next statement: the freshness probe's statements spent a fifth
    /// of their time parsing every live file's statistics again.
    fn parsed_statistics(
        &self,
        files: &deltalake::kernel::LogDataHandler<'_>,
    ) -> Vec<Option<Arc<serde_json::Value>>> {
        let parse = |file: &deltalake::kernel::LogicalFileView| {
            file.stats()
                .and_then(|text| serde_json::from_str(&text).ok())
                .map(Arc::new)
        };
        let Ok(entry) = self.lake.entry(self.name) else {
            return files.iter().map(|file| parse(&file)).collect();
        };
        let mut parsed = entry.parsed_statistics();
        let mut kept = std::collections::HashMap::with_capacity(files.num_files());
        let statistics = files
            .iter()
            .map(|file| {
                let path = file.path().into_owned();
                let stats = parsed.remove(&path).unwrap_or_else(|| parse(&file));
                kept.insert(path, stats.clone());
                stats
            })
            .collect();
        // Only the files this statement saw stay: the cache never outgrows one version.
        *parsed = kept;
        statistics
    }

    /// The version's Parquet files as DataFusion's own file scan, or `None` when a file has a
    /// deletion vector (the tables are append-only; compaction rewrites without them).
    ///
    /// `distributed` (a session of plans for the Ballista cluster, see [`crate::cluster`]):
    /// the files are named by absolute `file://` path and read by DataFusion's own reader, so
    /// that the scan serialises and every executor opens the same files; partition values
    /// come from the log per file; a snapshot this cannot read (deletion vectors, column
    /// mapping) is refused rather than read wrong.
    ///
    /// deltalake's scan wraps the Parquet scan in its own node: DataFusion then reads all the
    /// files in one partition (one core) and planning took ~1.5 ms per table. Here files are
    /// pruned by the Delta log's statistics, split across cores by byte range, and their
    /// footers come from the session's metadata cache. Rows are not filtered inside the Parquet
    /// reader (the session's `pushdown_filters` is off): the predicate prunes row groups and
    /// pages, and a filter right above the scan removes the rows. Filters the log's statistics
    /// prove true for every row of every file read are not evaluated at all (a dashboard's
    /// company and full date range), as DuckDB skips them per row group.
    fn scan_files(
        &self,
        table: &deltalake::DeltaTable,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        conjuncts: &[Expr],
        limit: Option<usize>,
        distributed: bool,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>, DataFusionError> {
        use datafusion::common::stats::Precision;
        use datafusion::common::{DFSchema, Statistics};
        use datafusion::datasource::listing::PartitionedFile;
        use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
        use datafusion::datasource::physical_plan::{
            FileGroup, FileScanConfigBuilder, ParquetSource,
        };
        use datafusion::datasource::source::DataSourceExec;
        use datafusion::datasource::table_schema::TableSchema;
        use datafusion::execution::object_store::ObjectStoreUrl;
        use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
        use object_store::ObjectMeta;

        let snapshot = table.snapshot()?;
        // Files written before a column was added lack it: their footers say what they hold.
        // (An earlier version may predate the evolution its table's schema went through.)
        let evolved = self.at.is_some()
            || snapshot
                .metadata()
                .configuration()
                .contains_key(crate::lake::SCHEMA_EVOLVED_PROPERTY);
        let files = snapshot.log_data();
        let refused = |feature: &'static str| {
            DataFusionError::External(Box::new(crate::cluster::ClusterError::Unsupported {
                table: self.name.to_owned(),
                version: snapshot.version(),
                feature,
            }))
        };
        if files
            .iter()
            .any(|file| file.deletion_vector_descriptor().is_some())
        {
            if distributed {
                return Err(refused("deletion vectors"));
            }
            return Ok(None);
        }
        if distributed
            && snapshot
                .metadata()
                .configuration()
                .get("delta.columnMapping.mode")
                .is_some_and(|mode| mode != "none")
        {
            return Err(refused("column mapping"));
        }
        let schema = self.schema();
        let partitioning = Partitioning::of(self.name, &schema, self.partition_columns)?;
        let df_schema = DFSchema::try_from(Arc::clone(&schema))?;
        // Which files may hold matching rows, by the statistics in the log, and which filters
        // those files' statistics prove true for all their rows. A predicate that cannot
        // prune (or fails to build) keeps every file, as in the reader.
        let (keep, unproven) = match conjunction(conjuncts.iter().cloned()) {
            None => (vec![true; files.num_files()], Vec::new()),
            Some(predicate) => {
                let statistics = LogStatistics {
                    schema: Arc::clone(&schema),
                    files: self.parsed_statistics(&files),
                    rows: files
                        .iter()
                        .map(|file| file.num_records().and_then(|n| u64::try_from(n).ok()))
                        .collect(),
                };
                let keep = match PruningPredicateBuilder::new()
                    .with_file_schema(Arc::clone(&schema))
                    .build(state.create_physical_expr(predicate, &df_schema)?)
                {
                    Some(pruning) => pruning.prune(&statistics)?,
                    None => vec![true; files.num_files()],
                };
                let unproven: Vec<Expr> = conjuncts
                    .iter()
                    .filter(|conjunct| !proven(state, &df_schema, conjunct, &statistics, &keep))
                    .cloned()
                    .collect();
                (keep, unproven)
            }
        };
        let read = Read::new(&schema, projection, &unproven);
        let log_store = table.log_store();
        // Distributed: absolute paths under the local file system's or the bucket's store,
        // which every executor has (a `delta-rs://` store of the table's root exists only
        // here).
        let root = if distributed {
            let root_url = log_store.root_url();
            let (store, root) = match (root_url.scheme(), root_url.host_str()) {
                ("file", _) => (
                    ObjectStoreUrl::local_filesystem(),
                    object_store::path::Path::from_url_path(root_url.path())?,
                ),
                (scheme @ ("s3" | "s3a"), Some(bucket)) => {
                    let url = ObjectStoreUrl::parse(format!("{scheme}://{bucket}"))?;
                    // A statement that also reads catalog tables runs here.
                    let runtime = state.runtime_env();
                    if runtime.object_store(&url).is_err() {
                        runtime
                            .register_object_store(url.as_ref(), log_store.root_object_store(None));
                    }
                    // Parsed as the lake's S3 factory parses it (`crate::s3`): the objects'
                    // keys are the URL's path as written.
                    (url, object_store::path::Path::parse(root_url.path())?)
                }
                _ => {
                    return Err(DataFusionError::External(Box::new(
                        crate::cluster::ClusterError::Location {
                            table: self.name.to_owned(),
                            location: root_url.to_string(),
                        },
                    )));
                }
            };
            Some((store, root))
        } else {
            None
        };
        let mut scanned = Vec::new();
        let (mut rows, mut bytes) = (Some(0usize), 0usize);
        for (file, keep) in files.iter().zip(keep) {
            if !keep {
                continue;
            }
            rows = rows.zip(file.num_records()).map(|(sum, n)| sum + n);
            let size = u64::try_from(file.size()).map_err(|_| {
                DataFusionError::Execution(format!(
                    "{}: file {} has a negative size in the Delta log",
                    self.name,
                    file.path()
                ))
            })?;
            let below_root = file.object_store_path();
            let location = match &root {
                // The table's root and the file's path below it, as one absolute path.
                Some((_, root)) => root.parts().chain(below_root.parts()).collect(),
                None => below_root,
            };
            let mut scanned_file = PartitionedFile::new_from_meta(ObjectMeta {
                location,
                last_modified: file.modification_datetime()?,
                size,
                e_tag: None,
                version: None,
            });
            if !partitioning.columns.is_empty() {
                scanned_file.partition_values =
                    partitioning.values(&file.partition_values_map())?;
            }
            // Every file of an unpartitioned table is written (appended or compacted) with the
            // table's schema, unless the schema evolved: the reader need not decode it from
            // each footer again.
            if !evolved {
                scanned_file.arrow_schema = Some(Arc::clone(&partitioning.file_schema));
            }
            bytes = bytes.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
            scanned.push(scanned_file);
        }

        // No predicate here: the physical optimizer hands the filter's predicate to the
        // source for statistics and page pruning (setting it here too evaluated it twice).
        let source = ParquetSource::new(
            TableSchema::builder(Arc::clone(&partitioning.file_schema))
                .with_table_partition_cols(partitioning.columns.clone())
                .build(),
        )
        .with_table_parquet_options(state.table_options().parquet.clone())
        .with_pushdown_filters(false);
        let (url, source) = if let Some((store, _)) = root {
            // DataFusion's own reader: a reader factory is not serialised, and the executors'
            // metadata caches are their own.
            (store, source)
        } else {
            let url = log_store.object_store_url();
            let store =
                crate::reads::LocalReads::over(log_store.object_store(None), log_store.root_url());
            let runtime = state.runtime_env();
            if runtime.object_store(&url).is_err() {
                runtime.register_object_store(url.as_ref(), Arc::clone(&store));
            }
            let metadata_cache = runtime.cache_manager.get_file_metadata_cache();
            let source = source.with_parquet_file_reader_factory(Arc::new(
                CachedParquetFileReaderFactory::new(store, metadata_cache),
            ));
            (url, source)
        };
        // Row counts from the log (Inexact: filters above the scan still apply) let the
        // planner see a small table, e.g. build a join's hash table from it without first
        // repartitioning the other side.
        let statistics = Statistics {
            num_rows: rows.map_or(Precision::Absent, Precision::Inexact),
            total_byte_size: Precision::Inexact(bytes),
            column_statistics: Statistics::unknown_column(&schema),
        };
        let config = FileScanConfigBuilder::new(url, Arc::new(source))
            .with_statistics(statistics)
            .with_file_group(FileGroup::new(scanned))
            .with_projection_indices(read.columns.clone())?
            .with_limit(read.limit(limit))
            .build();
        read.filter(state, DataSourceExec::from_data_source(config), limit)
            .map(Some)
    }
}

/// A table's partition columns as a file scan takes them: the columns the files hold, the
/// partition columns after them (the order of every partitioned table's definition), and each
/// file's values of them from the Delta log.
struct Partitioning {
    /// The table's columns without its partition columns.
    file_schema: SchemaRef,
    columns: Vec<datafusion::arrow::datatypes::FieldRef>,
}

impl Partitioning {
    fn of(
        table: &str,
        schema: &SchemaRef,
        columns: &[&str],
    ) -> Result<Partitioning, DataFusionError> {
        if columns.is_empty() {
            return Ok(Partitioning {
                file_schema: Arc::clone(schema),
                columns: Vec::new(),
            });
        }
        let count = schema.fields().len();
        let (file_fields, partition_fields) = schema
            .fields()
            .split_at(count.saturating_sub(columns.len()));
        let last: Vec<&str> = partition_fields.iter().map(|f| f.name().as_str()).collect();
        if last != columns {
            return Err(DataFusionError::Plan(format!(
                "table {table}: its partition columns {columns:?} must be its last columns, in that order, to be scanned as files; its last columns are {last:?}"
            )));
        }
        Ok(Partitioning {
            file_schema: Arc::new(datafusion::arrow::datatypes::Schema::new(
                file_fields.to_vec(),
            )),
            columns: partition_fields.to_vec(),
        })
    }

    /// A file's partition values (the log's text, `None` for null) typed as their columns.
    fn values(
        &self,
        text: &std::collections::HashMap<String, Option<String>>,
    ) -> Result<Vec<datafusion::common::ScalarValue>, DataFusionError> {
        use datafusion::common::ScalarValue;
        self.columns
            .iter()
            .map(|column| match text.get(column.name()).cloned().flatten() {
                Some(value) => ScalarValue::try_from_string(value, column.data_type()),
                None => ScalarValue::try_from(column.data_type()),
            })
            .collect()
    }
}

/// Whether the files' statistics prove `conjunct` true for every row of the kept files: no
/// kept file may hold a row where it is false or NULL (`NOT conjunct OR column IS NULL` prunes
/// them all). Anything the statistics cannot decide stays a filter.
fn proven(
    state: &dyn Session,
    schema: &datafusion::common::DFSchema,
    conjunct: &Expr,
    files: &LogStatistics,
    keep: &[bool],
) -> bool {
    use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
    let columns = conjunct.column_refs();
    if columns.is_empty() {
        return false;
    }
    let Some(negation) = negation(conjunct) else {
        return false;
    };
    let violated = columns.iter().fold(negation, |violated, column| {
        violated.or(Expr::Column((*column).clone()).is_null())
    });
    let Ok(violated) = state.create_physical_expr(violated, schema) else {
        return false;
    };
    let Some(pruning) = PruningPredicateBuilder::new()
        .with_file_schema(Arc::clone(schema.inner()))
        .build(violated)
    else {
        return false;
    };
    pruning.prune(files).is_ok_and(|may_violate| {
        may_violate
            .iter()
            .zip(keep)
            .all(|(may_violate, kept)| !(*may_violate && *kept))
    })
}

/// The files' minimum, maximum and null count per column from their Delta log entries (the
/// `stats` JSON), for DataFusion's pruning. deltalake's own statistics of the log answer
/// nothing here (deltalake 1.1.3 looks the parsed statistics up in the wrong schema), so
/// nothing was pruned by them.
///
/// Only bounds that are exact are given: integers, dates, text and booleans. Timestamps are
/// cut to milliseconds in the log (a maximum can lie below the real one) and decimals and
/// floats are written as JSON floating-point numbers.
struct LogStatistics {
    schema: SchemaRef,
    files: Vec<Option<Arc<serde_json::Value>>>,
    rows: Vec<Option<u64>>,
}

impl LogStatistics {
    fn bounds(&self, column: &datafusion::common::Column, key: &str) -> Option<ArrayRef> {
        use datafusion::arrow::array::StringArray;
        use datafusion::arrow::datatypes::DataType;
        let field = self.schema.field_with_name(&column.name).ok()?;
        let exact = matches!(
            field.data_type(),
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Date32
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Boolean
        );
        if !exact {
            return None;
        }
        let texts: StringArray = self
            .files
            .iter()
            .map(|stats| match stats.as_ref()?.get(key)?.get(&column.name)? {
                serde_json::Value::String(text) => Some(text.clone()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                serde_json::Value::Bool(flag) => Some(flag.to_string()),
                _ => None,
            })
            .collect();
        // A value that does not parse as the column's type becomes NULL: unknown, kept.
        datafusion::arrow::compute::cast(&texts, field.data_type()).ok()
    }
}

impl datafusion::common::pruning::PruningStatistics for LogStatistics {
    fn min_values(&self, column: &datafusion::common::Column) -> Option<ArrayRef> {
        self.bounds(column, "minValues")
    }

    fn max_values(&self, column: &datafusion::common::Column) -> Option<ArrayRef> {
        self.bounds(column, "maxValues")
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &datafusion::common::Column) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter(self.files.iter().map(
            |stats| {
                stats
                    .as_ref()?
                    .get("nullCount")?
                    .get(&column.name)?
                    .as_u64()
            },
        ))))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from(self.rows.clone())))
    }

    fn contained(
        &self,
        _column: &datafusion::common::Column,
        _values: &std::collections::HashSet<datafusion::common::ScalarValue>,
    ) -> Option<datafusion::arrow::array::BooleanArray> {
        None
    }
}

/// The Delta scan turns Parquet row-level filtering ("late materialization") on whenever a
/// predicate reaches it. Over the dashboards' filters (a company, a date range: most rows
/// match) that decodes the filter columns twice and was 5x slower (entries per day over 10M
/// lines: 436 ms with it, 76–85 ms without). The predicate stays for statistics pruning.
fn without_row_filters(
    plan: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::datasource::physical_plan::{
        FileScanConfig, FileScanConfigBuilder, ParquetSource,
    };
    use datafusion::datasource::source::DataSourceExec;
    plan.transform_up(|node| {
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
            return Ok(Transformed::no(node));
        };
        let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>() else {
            return Ok(Transformed::no(node));
        };
        let source = parquet.clone().with_pushdown_filters(false);
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build();
        Ok(Transformed::yes(
            DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
        ))
    })
    .map(|transformed| transformed.data)
}

/// Every lake table as a [`LiveTable`] and every view of `sql/views` over them.
#[derive(Debug, Clone)]
pub struct LiveCatalog {
    pub tables: Vec<(&'static str, Arc<dyn TableProvider>)>,
    pub views: Vec<(&'static str, Arc<dyn TableProvider>)>,
}

impl LiveCatalog {
    pub async fn open(
        lake: &Lake,
        context: &SessionContext,
    ) -> Result<LiveCatalog, DataFusionError> {
        let mut tables: Vec<(&'static str, Arc<dyn TableProvider>)> = Vec::new();
        for definition in lake.definitions() {
            let table = LiveTable::open(lake, definition.name)
                .await
                .map_err(|error| DataFusionError::External(Box::new(error)))?
                .with_string_views();
            context.register_table(definition.name, Arc::new(table))?;
            tables.push((
                definition.name,
                context.table_provider(definition.name).await?,
            ));
        }
        let mut views = Vec::new();
        for view in lake.views() {
            context.sql(view.sql).await?;
            views.push((view.name, context.table_provider(view.name).await?));
        }
        Ok(LiveCatalog { tables, views })
    }

    /// The table or view called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn TableProvider>> {
        self.tables
            .iter()
            .chain(self.views.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, provider)| provider)
    }
}

/// `NOT conjunct` for the comparisons the statistics can decide, written as the opposite
/// comparison (the pruning cannot see through a `NOT`); `None` for anything else.
fn negation(conjunct: &Expr) -> Option<Expr> {
    use datafusion::logical_expr::{Between, BinaryExpr, Operator};
    match conjunct {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
            ) =>
        {
            op.negate()
                .map(|op| Expr::BinaryExpr(BinaryExpr::new(left.clone(), op, right.clone())))
        }
        Expr::Between(between) => Some(Expr::Between(Between {
            negated: !between.negated,
            ..between.clone()
        })),
        _ => None,
    }
}

/// `as_of('table', version)` or `as_of('table', 'time')`: a lake table as it was at that
/// version, or at the newest version committed at or before that time (RFC 3339, or
/// `YYYY-MM-DD[ HH:MM:SS]` in UTC), seen through the caller's scope like the table itself.
#[derive(Debug)]
pub struct AsOfFunction {
    tables: Vec<(&'static str, Arc<dyn TableProvider>)>,
    scope: ReadScope,
}

/// The name SQL calls [`AsOfFunction`] by.
pub const AS_OF: &str = "as_of";

impl AsOfFunction {
    pub fn new(catalog: &LiveCatalog, scope: ReadScope) -> AsOfFunction {
        AsOfFunction {
            tables: catalog.tables.clone(),
            scope,
        }
    }
}

impl datafusion::catalog::TableFunctionImpl for AsOfFunction {
    fn call_with_args(
        &self,
        args: datafusion::catalog::TableFunctionArgs,
    ) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        use datafusion::common::ScalarValue;
        let usage = |problem: String| {
            DataFusionError::Plan(format!(
                "{AS_OF}(table, version or time): {problem}; e.g. {AS_OF}('gl_journal_lines', 12) or {AS_OF}('gl_journal_lines', '2026-11-30 17:00:00')"
            ))
        };
        let literal = |expr: &Expr| match expr {
            Expr::Literal(value, _) => Some(value.clone()),
            _ => None,
        };
        let [table, at] = args.exprs() else {
            return Err(usage(format!(
                "takes 2 arguments, not {}",
                args.exprs().len()
            )));
        };
        let name = match literal(table) {
            Some(ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name))) => name,
            _ => return Err(usage("table must be a table name in quotes".into())),
        };
        let Some((name, provider)) = self.tables.iter().find(|(n, _)| *n == name) else {
            return Err(usage(format!(
                "{name:?} is not a lake table (views and system tables have no versions)"
            )));
        };
        let version = |v: i64| {
            u64::try_from(v)
                .map(AsOf::Version)
                .map_err(|_| usage(format!("version {v} is negative")))
        };
        let at = match literal(at) {
            Some(ScalarValue::Int64(Some(v))) => version(v)?,
            Some(ScalarValue::Int32(Some(v))) => version(i64::from(v))?,
            Some(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text))) => {
                AsOf::Time(parse_time(&text).ok_or_else(|| {
                    usage(format!(
                        "{text:?} is not a time (RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in UTC)"
                    ))
                })?)
            }
            _ => {
                return Err(usage(
                    "the second argument must be a version number or a time in quotes".into(),
                ));
            }
        };
        let live = provider
            .downcast_ref::<LiveTable>()
            .ok_or_else(|| usage(format!("{name} is not a versioned table")))?;
        crate::scope::scoped(name, Arc::new(live.at(at)), &self.scope)
    }
}

/// A time as `as_of` takes it: RFC 3339, or a date and time (or a date) in UTC.
fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime};
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&chrono::Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
}
