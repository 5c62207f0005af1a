//! The read-only SQL service over the lake.
//!
//! Each query runs in a fresh DataFusion context holding every table at its newest version, so
//! an answer is never older than the last pipeline commit. Only read statements run (SELECT,
//! WITH, EXPLAIN without ANALYZE of a write, SHOW, DESCRIBE); each has a time and a row limit.

use crate::cluster::Cluster;
use crate::lake::{Lake, LakeError};
use crate::live::LiveCatalog;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tributary_kernel::telemetry::names;

/// Limits every query runs under, so that one query or one client cannot take the process.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub timeout_ms: u64,
    pub rows_max: usize,
    /// Bytes of one answer (its Arrow batches over HTTP, its rows over the wire). Scalar
    /// functions allocate outside the memory pool (`repeat('x', 100000000)`): this stops
    /// their results from being sent.
    pub answer_bytes_max: usize,
    /// The memory pool every query of the process shares (sorts, joins, aggregates); a query
    /// that needs more fails with a clear error instead of exhausting the process.
    pub memory_bytes_max: usize,
    /// Queries running at once over HTTP and in report runs; more wait (within their time
    /// limit) for one to finish.
    pub concurrent_max: usize,
    /// Open connections of the wire endpoint; more are refused.
    pub wire_connections_max: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            timeout_ms: 30_000,
            rows_max: 100_000,
            answer_bytes_max: 64 << 20,
            memory_bytes_max: 2 << 30,
            concurrent_max: 16,
            wire_connections_max: 64,
        }
    }
}

/// Longest SQL text accepted.
pub const SQL_LENGTH_MAX: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "only read statements are allowed (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE); got {statement}"
    )]
    NotReadOnly { statement: String },
    #[error("send exactly one statement; got {count}")]
    StatementCount { count: usize },
    #[error("the SQL text is {length} characters long; at most {SQL_LENGTH_MAX} are accepted")]
    TooLong { length: usize },
    #[error("the query ran longer than its limit of {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("the query returned more than {rows_max} rows; add a LIMIT or aggregate")]
    TooManyRows { rows_max: usize },
    #[error("the answer is larger than {bytes_max} bytes; select fewer or shorter values")]
    TooLarge { bytes_max: usize },
    #[error("the query needs more memory than the {bytes_max} bytes queries may share: {detail}")]
    MemoryLimit { bytes_max: usize, detail: String },
    #[error("{running} queries are running, the most at once; none finished within the time limit")]
    Busy { running: usize },
    /// A table the caller's scope does not let them read.
    #[error("{reason}")]
    Forbidden { reason: String },
    #[error("{0}")]
    Sql(DataFusionError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

impl From<DataFusionError> for QueryError {
    fn from(error: DataFusionError) -> Self {
        match error.find_root() {
            DataFusionError::External(cause) => {
                if let Some(refused) = cause.downcast_ref::<crate::scope::ScopeRefusal>() {
                    return QueryError::Forbidden {
                        reason: refused.0.clone(),
                    };
                }
            }
            DataFusionError::ResourcesExhausted(detail) => {
                return QueryError::MemoryLimit {
                    bytes_max: 0,
                    detail: detail.clone(),
                };
            }
            _ => {}
        }
        QueryError::Sql(error)
    }
}

impl QueryError {
    /// Whether the error is the query's fault (a 4xx) rather than the service's.
    pub fn is_client_error(&self) -> bool {
        match self {
            QueryError::Lake(_) => false,
            QueryError::Sql(error) => match error.find_root() {
                DataFusionError::IoError(_)
                | DataFusionError::ObjectStore(_)
                | DataFusionError::Internal(_) => false,
                DataFusionError::External(cause) => !matches!(
                    cause.downcast_ref::<crate::cluster::ClusterError>(),
                    Some(crate::cluster::ClusterError::Job { .. })
                ),
                _ => true,
            },
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A table computed when read (platform status), served beside the lake's tables.
pub type SystemTable = (&'static str, Arc<dyn TableProvider>);

/// The tables that hold raw records of every company: read only with the scope's
/// `raw_events` (the permission `sql.raw_events.read` in every company).
pub const RAW_EVENT_TABLES: [&str; 4] = [
    "bronze_events",
    "bronze_dead_letters",
    "pipeline_dead_letters",
    // Every company's report runs (parameters, errors, output paths); REST shows each caller
    // the runs they may see.
    "report_runs",
];

/// What one caller's SQL may read, enforced where the tables are resolved (not by trusting
/// the statement's WHERE clause): a table or view with a `company` column shows the rows of
/// `companies` only, also inside views and joins; raw event tables need `raw_events`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ReadScope {
    /// The companies whose rows are shown; `None`: every company.
    pub companies: Option<std::collections::BTreeSet<String>>,
    pub raw_events: bool,
}

impl ReadScope {
    /// What `caller`'s SQL may read: the rows of the companies they hold `sql.read` in, raw
    /// events with `sql.raw_events.read` in every company.
    pub fn of(caller: &tributary_kernel::auth::Caller) -> ReadScope {
        use tributary_kernel::auth::{CompanyScope, platform};
        let companies = match caller.scope(&platform::SQL_READ) {
            CompanyScope::All => None,
            CompanyScope::Only(companies) => Some(companies),
        };
        ReadScope {
            companies,
            raw_events: caller.scope(&platform::RAW_EVENTS_READ) == CompanyScope::All,
        }
    }

    /// Everything: the installation's own SQL (reads behind REST routes, built-in reports).
    pub fn everything() -> ReadScope {
        ReadScope {
            companies: None,
            raw_events: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryService {
    lake: Lake,
    limits: QueryLimits,
    /// The memory pool and disk manager every query of the process shares.
    runtime: Arc<RuntimeEnv>,
    /// Permits of the queries running at once.
    running: Arc<tokio::sync::Semaphore>,
    system_tables: Arc<Vec<SystemTable>>,
    /// Live tables and views, made on first use (opening needs the lake's tables).
    live: Arc<tokio::sync::OnceCell<LiveCatalog>>,
    /// The Ballista cluster lake queries run on (`--ballista`); `None`: in this process.
    cluster: Option<Cluster>,
}

impl QueryService {
    pub fn new(lake: Lake, limits: QueryLimits) -> Self {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory_bytes_max, 1.0)
            .build_arc()
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "query memory pool not set up: queries share no limit");
                Arc::new(RuntimeEnv::default())
            });
        QueryService {
            lake,
            limits,
            runtime,
            running: Arc::new(tokio::sync::Semaphore::new(limits.concurrent_max.max(1))),
            system_tables: Arc::default(),
            live: Arc::default(),
            cluster: None,
        }
    }

    /// Runs lake queries on `cluster`: planned here as ever (scopes, views, limits), executed
    /// by its executors. Statements over catalog or system tables still run here, and so do
    /// the contexts' REST reads (small statements over pre-aggregated tables, whose answer
    /// would wait for a job's scheduling).
    pub fn with_cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// The DataFusion settings of this service's SQL contexts (HTTP, reports, the wire
    /// protocol): [`session_config`], fit for the cluster when there is one.
    pub(crate) fn session_config(&self) -> SessionConfig {
        match &self.cluster {
            Some(cluster) => cluster.session_config(session_config()),
            None => session_config(),
        }
    }

    /// Executes a plan made in one of this service's contexts: on the cluster when the
    /// context was made for it (see [`QueryService::session_config`]) and the plan reads lake
    /// tables only, here otherwise.
    pub async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        task: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, DataFusionError> {
        match &self.cluster {
            Some(cluster) if crate::cluster::distributed(task.session_config()) => {
                cluster.execute(plan, task).await
            }
            _ => datafusion::physical_plan::execute_stream(plan, task),
        }
    }

    /// Also serves `tables`, next to the lake's, over HTTP and the wire protocol.
    pub fn with_system_tables(mut self, tables: Vec<SystemTable>) -> Self {
        self.system_tables = Arc::new(tables);
        self
    }

    pub fn system_tables(&self) -> &[SystemTable] {
        &self.system_tables
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    fn new_context() -> SessionContext {
        SessionContext::new_with_config(session_config())
    }

    /// The runtime (memory pool) every query context of this service uses.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.runtime.clone()
    }

    pub(crate) async fn live(&self) -> Result<&LiveCatalog, QueryError> {
        self.live
            .get_or_try_init(|| async {
                LiveCatalog::open(&self.lake, &Self::new_context())
                    .await
                    .map_err(QueryError::from)
            })
            .await
    }

    /// The lake table, view or system table called `name`, always read at its newest version.
    pub async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, QueryError> {
        if let Some((_, table)) = self.system_tables.iter().find(|(n, _)| *n == name) {
            return Ok(Some(table.clone()));
        }
        Ok(self.live().await?.get(name).cloned())
    }

    /// Every name [`QueryService::table`] answers: lake tables, views of `sql/views`, system
    /// tables.
    pub fn table_names(&self) -> Vec<&'static str> {
        self.lake
            .definitions()
            .map(|definition| definition.name)
            .chain(self.lake.views().iter().map(|view| view.name))
            .chain(self.system_tables.iter().map(|(name, _)| *name))
            .collect()
    }

    /// A context with every lake table, every view of `sql/views` and every system table, each
    /// read at its newest version when a statement scans it.
    pub async fn context(&self) -> Result<SessionContext, QueryError> {
        self.scoped_context(&ReadScope::everything()).await
    }

    /// Like [`QueryService::context`], each table seen through `scope`.
    pub async fn scoped_context(&self, scope: &ReadScope) -> Result<SessionContext, QueryError> {
        self.context_of(scope, self.session_config()).await
    }

    /// A context of `scope` with `config`: the cluster's, or this process's own.
    async fn context_of(
        &self,
        scope: &ReadScope,
        config: SessionConfig,
    ) -> Result<SessionContext, QueryError> {
        let live = self.live().await?;
        let context = new_context(config, self.runtime.clone());
        for (name, table) in live
            .tables
            .iter()
            .chain(live.views.iter())
            .chain(self.system_tables.iter())
        {
            context.register_table(*name, crate::scope::scoped(name, table.clone(), scope)?)?;
        }
        context.register_udtf(
            crate::live::AS_OF,
            Arc::new(crate::live::AsOfFunction::new(live, scope.clone())),
        );
        Ok(context)
    }

    /// Runs one read statement given by a user, over what `scope` lets them read.
    pub async fn query(&self, sql: &str, scope: &ReadScope) -> Result<QueryResult, QueryError> {
        if is_explain(&check_read_only(sql)?)
            && let Some(reason) = explain_refusal(scope)
        {
            return Err(QueryError::Forbidden { reason });
        }
        self.run(
            Endpoint::Http,
            sql,
            ParamValues::List(Vec::new()),
            scope.clone(),
        )
        .await
    }

    /// Runs trusted SQL (from `sql/`) with `$1, $2, …` bound to `parameters`, never spliced.
    pub async fn query_with_parameters(
        &self,
        sql: &str,
        parameters: Vec<ScalarValue>,
    ) -> Result<QueryResult, QueryError> {
        self.run(
            Endpoint::Rest,
            sql,
            ParamValues::List(parameters.into_iter().map(Into::into).collect()),
            ReadScope::everything(),
        )
        .await
    }

    /// Runs SQL with `$name` placeholders bound to `parameters`, never spliced, seeing what
    /// `scope` shows.
    pub async fn query_with_named_parameters(
        &self,
        sql: &str,
        parameters: std::collections::HashMap<String, ScalarValue>,
        scope: &ReadScope,
    ) -> Result<QueryResult, QueryError> {
        self.run(
            Endpoint::Report,
            sql,
            ParamValues::Map(
                parameters
                    .into_iter()
                    .map(|(name, value)| (name, value.into()))
                    .collect(),
            ),
            scope.clone(),
        )
        .await
    }

    /// Runs a query and records its time and rows under `endpoint`'s label (the wire endpoint
    /// records its own).
    async fn run(
        &self,
        endpoint: Endpoint,
        sql: &str,
        parameters: ParamValues,
        scope: ReadScope,
    ) -> Result<QueryResult, QueryError> {
        let started = std::time::Instant::now();
        let span = query_span(endpoint.label());
        let result = tracing::Instrument::instrument(
            self.run_limited(endpoint, sql, parameters, scope),
            span.clone(),
        )
        .await;
        let rows = result.as_ref().map_or(0, QueryResult::row_count);
        record_query(&span, endpoint.label(), result.is_ok(), rows, started);
        result
    }

    async fn run_limited(
        &self,
        endpoint: Endpoint,
        sql: &str,
        parameters: ParamValues,
        scope: ReadScope,
    ) -> Result<QueryResult, QueryError> {
        let limits = self.limits;
        let (service, sql) = (self.clone(), sql.to_owned());
        // Waits its turn for at most the time limit, then runs for at most the time limit.
        let busy = || QueryError::Busy {
            running: limits.concurrent_max,
        };
        let permit = tokio::time::timeout(
            Duration::from_millis(limits.timeout_ms),
            self.running.clone().acquire_owned(),
        )
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
        let work = async move {
            let _permit = permit;
            let config = if endpoint.may_use_cluster() {
                service.session_config()
            } else {
                session_config()
            };
            let context = service.context_of(&scope, config).await?;
            let options = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let mut frame = context.sql_with_options(&sql, options).await?;
            let bound = match &parameters {
                ParamValues::List(values) => !values.is_empty(),
                ParamValues::Map(values) => !values.is_empty(),
            };
            if bound {
                frame = frame.with_param_values(parameters)?;
            }
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let task = Arc::new(frame.task_ctx());
            let plan = frame.create_physical_plan().await?;
            let mut stream = service.execute(plan, task).await?;
            let mut batches = Vec::new();
            let (mut rows, mut bytes) = (0usize, 0usize);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|error| match QueryError::from(error) {
                    QueryError::MemoryLimit { detail, .. } => QueryError::MemoryLimit {
                        bytes_max: limits.memory_bytes_max,
                        detail,
                    },
                    other => other,
                })?;
                rows += batch.num_rows();
                bytes += batch.get_array_memory_size();
                if rows > limits.rows_max {
                    return Err(QueryError::TooManyRows {
                        rows_max: limits.rows_max,
                    });
                }
                if bytes > limits.answer_bytes_max {
                    return Err(QueryError::TooLarge {
                        bytes_max: limits.answer_bytes_max,
                    });
                }
                batches.push(batch);
            }
            Ok(QueryResult { schema, batches })
        };
        // On the query runtime: a CPU-bound plan keeps its threads busy, not the threads that
        // answer HTTP and fire this timeout (under load the time limit was seen answered after
        // more than 10 s when both shared one runtime). Dropping the handle at the limit aborts
        // the query's task at its next yield.
        let mut task = AbortOnDrop(query_runtime().spawn(work));
        match tokio::time::timeout(Duration::from_millis(limits.timeout_ms), &mut task.0).await {
            Ok(Ok(Err(QueryError::MemoryLimit { detail, .. }))) => Err(QueryError::MemoryLimit {
                bytes_max: limits.memory_bytes_max,
                detail,
            }),
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(QueryError::Sql(DataFusionError::External(Box::new(
                join_error,
            )))),
            Err(_) => Err(QueryError::Timeout {
                timeout_ms: limits.timeout_ms,
            }),
        }
    }
}

/// The span of one query (its rows and outcome recorded by [`record_query`]).
/// Where a statement came from: its metrics label, and whether it may run on the cluster.
#[derive(Clone, Copy, Debug)]
enum Endpoint {
    /// `/api/v1/sql`.
    Http,
    /// The contexts' REST reads.
    Rest,
    /// Report runs.
    Report,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Http => "http",
            Endpoint::Rest => "rest",
            Endpoint::Report => "report",
        }
    }

    /// The contexts' REST reads stay in this process (see `with_cluster`); users' SQL and
    /// report runs go to the cluster when there is one.
    fn may_use_cluster(self) -> bool {
        !matches!(self, Endpoint::Rest)
    }
}

pub(crate) fn query_span(endpoint: &'static str) -> tracing::Span {
    tracing::info_span!(
        "query",
        endpoint,
        rows = tracing::field::Empty,
        outcome = tracing::field::Empty
    )
}

/// Records one query's time (by outcome) and rows in the query metrics and its span.
pub(crate) fn record_query(
    span: &tracing::Span,
    endpoint: &'static str,
    succeeded: bool,
    rows: usize,
    started: std::time::Instant,
) {
    let outcome = if succeeded { "ok" } else { "error" };
    span.record("rows", rows);
    span.record("outcome", outcome);
    metrics::histogram!(names::QUERY_DURATION, "endpoint" => endpoint, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(names::QUERY_ROWS, "endpoint" => endpoint).increment(rows as u64);
}

/// A context of SQL given by users and reports: `config` and `runtime`, with the lake's own
/// optimizer rules.
pub(crate) fn new_context(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let context = SessionContext::new_with_config_rt(config, runtime);
    context.add_optimizer_rule(Arc::new(crate::preaggregate::PreAggregateDates));
    context
}

/// The DataFusion settings of every SQL context (HTTP and the wire protocol).
pub(crate) fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("tributary", "public")
        // Split files from 1 MiB on (default 10 MiB) across the cores: compacted tables are
        // few files with several row groups each.
        .with_repartition_file_min_size(1 << 20)
        // One partition more than cores: a scan's byte ranges hold unequal rows, and with one
        // partition per core the core given more finishes alone. On 2 cores, the trial balance
        // straight from 10M journal lines: 213 ms with 2 partitions, 170 ms with 3, 180 ms
        // with 4; from 1M: 17.1, 18.2 and 20–24 ms.
        .with_target_partitions(crate::cores() + 1)
        // Text is read as each table's schema says (`Utf8View` for the live tables of SQL,
        // `Utf8` for the partitioned ones), not as views cast back to Utf8 on every scan.
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        // The lake's Parquet files carry no bloom filters: looking for them cost ~9 ms of
        // reader time per statement over 10M journal lines (157 row groups).
        .set_bool("datafusion.execution.parquet.bloom_filter_on_read", false);
    for (key, value) in datafusion_overrides() {
        // Checked when read: every value here is one DataFusion takes.
        let _ = config.options_mut().set(key, value);
    }
    config
}

/// The DataFusion settings given as `DATAFUSION_*` variables when the process started
/// (`DATAFUSION_EXECUTION_BATCH_SIZE=16384` sets `datafusion.execution.batch_size`), applied
/// over [`session_config`]'s own. A value DataFusion refuses is logged once and ignored.
fn datafusion_overrides() -> &'static [(String, String)] {
    static OVERRIDES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    OVERRIDES.get_or_init(|| {
        let mut check = datafusion::config::ConfigOptions::default();
        check
            .entries()
            .into_iter()
            .filter_map(|entry| {
                let variable = entry.key.to_uppercase().replace('.', "_");
                let value = std::env::var(&variable).ok()?;
                match check.set(&entry.key, &value) {
                    Ok(()) => {
                        tracing::info!(setting = %entry.key, %value, "DataFusion setting from {variable}");
                        Some((entry.key, value))
                    }
                    Err(error) => {
                        tracing::warn!(%variable, %value, %error, "DataFusion setting ignored");
                        None
                    }
                }
            })
            .collect()
    })
}

/// Aborts the task when the query's caller stops waiting (time limit, client gone).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The runtime SQL queries execute on, one worker per core, separate from the one serving HTTP.
pub(crate) fn query_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name("tributary-query")
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("cannot start the query runtime: {error}"))
    })
}

/// Refuses anything but one read statement, naming what was sent; answers the statement.
pub fn check_read_only(sql: &str) -> Result<Statement, QueryError> {
    if sql.len() > SQL_LENGTH_MAX {
        return Err(QueryError::TooLong { length: sql.len() });
    }
    let statements = DFParser::parse_sql(sql)?;
    if statements.len() != 1 {
        return Err(QueryError::StatementCount {
            count: statements.len(),
        });
    }
    let Some(statement) = statements.into_iter().next() else {
        return Err(QueryError::StatementCount { count: 0 });
    };
    if is_read(&statement) {
        Ok(statement)
    } else {
        Err(QueryError::NotReadOnly {
            statement: statement_name(&statement),
        })
    }
}

fn is_explain(statement: &Statement) -> bool {
    match statement {
        Statement::Explain(_) => true,
        Statement::Statement(inner) => is_explain_sql(inner),
        _ => false,
    }
}

/// `EXPLAIN [ANALYZE | VERBOSE] …` (not `DESCRIBE`, which shows columns only).
pub(crate) fn is_explain_sql(statement: &SqlStatement) -> bool {
    matches!(statement, SqlStatement::Explain { .. })
}

/// Why `scope` may not run `EXPLAIN`, if it may not: a plan lists the files a scan reads after
/// pruning them by the statistics of every company's rows in them, `EXPLAIN VERBOSE` their row
/// counts and `EXPLAIN ANALYZE` the rows read before the scope's filter (see [`crate::scope`]).
pub fn explain_refusal(scope: &ReadScope) -> Option<String> {
    scope.companies.is_some().then(|| {
        "EXPLAIN shows files, row counts and statistics of every company's rows: it needs sql.read in every company".to_owned()
    })
}

fn is_read(statement: &Statement) -> bool {
    match statement {
        Statement::Statement(inner) => is_read_sql(inner),
        Statement::Explain(explain) => is_read(&explain.statement),
        Statement::CreateExternalTable(_) | Statement::CopyTo(_) | Statement::Reset(_) => false,
    }
}

/// Whether a parsed SQL statement only reads: a query (not `SELECT … INTO`), `EXPLAIN` of one,
/// `SHOW`/`DESCRIBE`. The wire protocol adds its session statements on top.
pub(crate) fn is_read_sql(statement: &SqlStatement) -> bool {
    match statement {
        SqlStatement::Query(query) => !selects_into(query),
        SqlStatement::ExplainTable { .. }
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. }
        | SqlStatement::ShowFunctions { .. } => true,
        SqlStatement::Explain { statement, .. } => is_read_sql(statement),
        _ => false,
    }
}

/// `SELECT … INTO t`: a query that creates a table.
pub(crate) fn selects_into(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    use datafusion::sql::sqlparser::ast::SetExpr;
    match query.body.as_ref() {
        SetExpr::Select(select) => select.into.is_some(),
        _ => false,
    }
}

/// The statement's leading keywords, e.g. `INSERT INTO`, `DROP TABLE`.
fn statement_name(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let keep = if matches!(
        words.first().map(|w| w.to_ascii_uppercase()).as_deref(),
        Some("INSERT" | "CREATE" | "DROP" | "ALTER" | "COPY" | "TRUNCATE")
    ) {
        2
    } else {
        1
    };
    words[..keep.min(words.len())]
        .join(" ")
        .to_ascii_uppercase()
}

/// A context's read APIs query the lake through the kernel's reader: cells, not Arrow.
#[async_trait::async_trait]
impl tributary_kernel::lake::LakeReader for QueryService {
    async fn rows(
        &self,
        sql: &str,
        parameters: Vec<tributary_kernel::lake::Cell<'static>>,
    ) -> Result<tributary_kernel::lake::Rows, tributary_kernel::http::ApiError> {
        let parameters = parameters.iter().map(crate::cells::scalar).collect();
        let result = self.query_with_parameters(sql, parameters).await?;
        crate::cells::rows(&result.batches)
            .map_err(|error| tributary_kernel::http::ApiError::internal(&error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_statements_pass_and_refusals_name_the_statement() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "DESCRIBE gl_journal_lines",
        ] {
            assert!(check_read_only(sql).is_ok(), "{sql} should pass");
        }
        for (sql, name) in [
            ("INSERT INTO t VALUES (1)", "INSERT INTO"),
            ("DELETE FROM t", "DELETE"),
            ("DROP TABLE t", "DROP TABLE"),
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("UPDATE t SET a = 1", "UPDATE"),
            ("EXPLAIN ANALYZE INSERT INTO t VALUES (1)", "EXPLAIN"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY (SELECT"),
        ] {
            match check_read_only(sql) {
                Err(QueryError::NotReadOnly { statement }) => assert!(
                    statement.starts_with(name.split(' ').next().unwrap_or(name)),
                    "{sql}: {statement}"
                ),
                other => panic!("{sql} should be refused, got {other:?}"),
            }
        }
        assert!(matches!(
            check_read_only("SELECT 1; SELECT 2"),
            Err(QueryError::StatementCount { count: 2 })
        ));
    }

    /// Lake tables answer text as `Utf8View` (cheaper to group and compare), read from files
    /// written as `Utf8`: filters on it still prune by the log's statistics and filter the
    /// rows, joins with `Utf8` tables and views over them still answer, and `as_of` reads the
    /// same way.
    #[tokio::test]
    async fn lake_text_is_answered_as_views_and_filters_joins_and_views_still_work() {
        use crate::catalog::{TableDefinition, schema_of};
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::arrow::datatypes::DataType;
        use tributary_kernel::lake::{ColumnSpec, ColumnType};
        let definition = TableDefinition {
            name: "accounts_moved",
            description: "test",
            schema: schema_of(&[
                ColumnSpec::new("account", ColumnType::Text, false),
                ColumnSpec::new("amount", ColumnType::Int64, false),
            ]),
            partition_columns: &[],
            stats_columns: None,
        };
        let dir = tempfile::tempdir().expect("a directory");
        let lake = Lake::open(dir.path().to_str().expect("a path"), vec![definition.clone()])
            .await
            .expect("a lake")
            .with_views(vec![tributary_kernel::lake::ViewSql {
                name: "big_moves",
                sql: "CREATE VIEW big_moves AS SELECT account, amount FROM accounts_moved WHERE amount > 10",
            }]);
        // Two commits, two files: "1000"/"1100" in the first, "2000" in the second.
        for (accounts, amounts) in [
            (vec!["1000", "1100", "1000"], vec![5, 20, 30]),
            (vec!["2000"], vec![40]),
        ] {
            let batch = RecordBatch::try_new(
                definition.schema.clone(),
                vec![
                    Arc::new(StringArray::from(accounts)),
                    Arc::new(Int64Array::from(amounts)),
                ],
            )
            .expect("a batch");
            lake.append("accounts_moved", vec![batch], &[])
                .await
                .expect("appended");
        }
        let service = QueryService::new(lake.clone(), QueryLimits::default());
        let everything = ReadScope::everything();
        let answer = |sql: &'static str| {
            let service = service.clone();
            let everything = everything.clone();
            async move {
                let result = service
                    .query(sql, &everything)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let mut rows = Vec::new();
                for batch in &result.batches {
                    for row in 0..batch.num_rows() {
                        rows.push(
                            batch
                                .columns()
                                .iter()
                                .map(|column| {
                                    datafusion::arrow::util::display::array_value_to_string(
                                        column, row,
                                    )
                                    .expect("a value")
                                })
                                .collect::<Vec<_>>()
                                .join(" "),
                        );
                    }
                }
                (result, rows)
            }
        };
        let (result, rows) = answer(
            "SELECT account, sum(amount) AS total FROM accounts_moved \
             WHERE account >= '1000' AND account < '2000' GROUP BY account ORDER BY account",
        )
        .await;
        assert_eq!(result.schema.field(0).data_type(), &DataType::Utf8View);
        assert_eq!(rows, ["1000 35", "1100 20"]);
        let (_, rows) = answer(
            "SELECT m.account, n.name FROM big_moves AS m \
             JOIN (VALUES ('1100', 'Cash'), ('2000', 'Bank')) AS n(account, name) ON n.account = m.account \
             ORDER BY 1",
        )
        .await;
        assert_eq!(rows, ["1100 Cash", "2000 Bank"]);
        let (_, rows) = answer(
            "SELECT account || '-' || CAST(amount AS VARCHAR) AS moved FROM as_of('accounts_moved', 1) \
             WHERE account = '1000' ORDER BY 1",
        )
        .await;
        assert_eq!(rows, ["1000-30", "1000-5"]);

        // Each file's log statistics are parsed once and kept by path for the next statement:
        // the time-travel read above planned against version 1's one file, a read of the newest
        // version against both, the first of them not parsed again.
        let parsed = || {
            lake.entry("accounts_moved")
                .expect("the table")
                .parsed_statistics()
                .clone()
        };
        let at_version_1 = parsed();
        assert_eq!(at_version_1.len(), 1);
        let second_file = "SELECT count(*) FROM accounts_moved WHERE account = '2000'";
        assert_eq!(answer(second_file).await.1, ["1"]);
        let newest = parsed();
        assert_eq!(newest.len(), 2);
        let same = |a: &Option<Arc<serde_json::Value>>, b: &Option<Arc<serde_json::Value>>| matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(a, b));
        for (path, stats) in &at_version_1 {
            assert!(same(stats, &newest[path]), "{path} was parsed again");
        }
        assert_eq!(answer(second_file).await.1, ["1"]);
        let again = parsed();
        assert!(newest.iter().all(|(path, stats)| same(stats, &again[path])));
    }
}
