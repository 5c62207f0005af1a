//! `tributary bench-queries`: the Finance dashboard's panel queries and the trial balance over
//! the PostgreSQL wire protocol, against DuckDB running the same SQL over the same Parquet files
//! in the same run.
//!
//! ```text
//!  data dir (after `generate`) ──► pipelines catch up, then the query role ──► sqlx over the wire
//!                                    └──► tools/duckdb-bench.py: read_parquet(<files of each
//!                                         Delta table's current version>) + sql/views
//! ```
//! Each query runs `--warmup` times untimed, then `--iterations` times timed, on one connection
//! (Grafana's refresh is the same: one statement per panel), each run of Tributary beside one of
//! DuckDB (which goes first alternates), so that a slower stretch of the machine weighs on both.
//! Printed per query: queries/s, p50 and p99 for both, and the ratio of the p50s (Tributary over
//! DuckDB).
//!
//! With `--ballista-executors N` the run also starts a Ballista cluster of this binary (a
//! scheduler and N executors as processes on loopback, `crate::cluster::LocalCluster`) and runs
//! every query in this process on local DataFusion and on the cluster (issue 19's benchmark):
//! both planned by the same query service on the same lake, only the execution differs.

use super::percentile_ms;
use crate::cluster::{LocalCluster, LocalClusterOptions};
use crate::grafana::{self, TimeRange};
use crate::maintenance::CompactionOptions;
use crate::{Config, Roles, start};
use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;
use sqlx::{Connection, Row};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tributary_lakehouse::cluster::Cluster;
use tributary_lakehouse::wire::{WireOptions, connection_string};
use tributary_lakehouse::{QueryLimits, QueryService, ReadScope};

#[derive(clap::Args, Debug, Clone)]
pub struct QueryBenchArgs {
    /// Data directory with the history to query (e.g. filled by `tributary generate`). Repeat
    /// it to measure several sizes in one run (e.g. 1M and 10M journal lines): each is measured
    /// in turn, and the ratios of all are printed together at the end.
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = "./data")]
    pub data_dir: Vec<PathBuf>,
    /// Event store, when not the embedded SQLite file of --data-dir (one data directory only).
    #[arg(long, env = "TRIBUTARY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Lake location; default <data-dir>/lake (a local directory: DuckDB reads its files; one
    /// data directory only).
    #[arg(long, env = "TRIBUTARY_LAKE")]
    pub lake: Option<String>,
    /// Timed runs per query and engine.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Untimed runs per query and engine before the timed ones.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Python with the duckdb package (pip install duckdb) for the baseline.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Company the dashboard shows; default: the first one in the lake.
    #[arg(long)]
    pub company: Option<String>,
    /// Query the files as the pipelines wrote them (one per batch and table) instead of first
    /// compacting them as the writer roles' maintenance does.
    #[arg(long)]
    pub no_compact: bool,
    /// Also run every query on a Ballista cluster of this binary (`tributary ballista`: a
    /// scheduler and this many executors as processes on loopback) and print its p50 against
    /// local DataFusion's, both planned in this process on the same lake (0: no cluster).
    #[arg(long, default_value_t = 0)]
    pub ballista_executors: usize,
    /// Task slots of each executor of --ballista-executors.
    #[arg(long, default_value_t = 1)]
    pub ballista_task_slots: usize,
    /// Hash partitions of the cluster's shuffles (the query role's --ballista-target-partitions).
    #[arg(long, default_value_t = tributary_lakehouse::cluster::TARGET_PARTITIONS_DEFAULT)]
    pub ballista_target_partitions: usize,
}

/// A query's timings on one engine.
#[derive(Default)]
struct Measured {
    rows: usize,
    samples: Vec<Duration>,
}

impl Measured {
    /// Queries per second, p50 and p99 in ms.
    fn summary(&mut self) -> (f64, f64, f64) {
        let total: f64 = self.samples.iter().map(Duration::as_secs_f64).sum();
        (
            self.samples.len() as f64 / total,
            percentile_ms(&mut self.samples, 50),
            percentile_ms(&mut self.samples, 99),
        )
    }
}

/// DuckDB's answer to the bench's first line: its version and threads.
#[derive(Deserialize)]
struct DuckDbStarted {
    duckdb: String,
    threads: serde_json::Value,
}

/// DuckDB's answer to one run of a query.
#[derive(Deserialize)]
struct DuckDbRun {
    rows: Option<usize>,
    ms: Option<f64>,
    error: Option<String>,
}

/// The DuckDB side, run with `python3 -c` (also usable on its own: tools/duckdb-bench.py).
const DUCKDB_SCRIPT: &str = include_str!("../../../../tools/duckdb-bench.py");

/// The trial balance computed straight from every journal line (no pre-aggregation).
const TRIAL_BALANCE_FROM_LINES: &str = "SELECT account, currency, sum(debit) AS debit, \
    sum(credit) AS credit, sum(debit) - sum(credit) AS balance FROM gl_journal_lines \
    WHERE company = '$company' AND posting_date <= $__timeTo() \
    GROUP BY account, currency ORDER BY account, currency";

/// The ratio every query must stay at or below (Tributary p50 / DuckDB p50).
const RATIO_TARGET: f64 = 1.0;

/// One data set's figures: its journal lines, each query's ratio of the p50s (Tributary over
/// DuckDB) and, with a cluster, each query's ratio of the cluster's p50 over local DataFusion's.
struct SizeMeasured {
    lines: i64,
    ratios: Vec<(String, f64)>,
    cluster_ratios: Vec<(String, f64)>,
}

pub async fn run(args: QueryBenchArgs) -> anyhow::Result<()> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    if args.data_dir.is_empty() {
        bail!("--data-dir: name at least one data directory");
    }
    if args.data_dir.len() > 1 && (args.database_url.is_some() || args.lake.is_some()) {
        bail!(
            "--database-url and --lake name one data set: measure several --data-dir only with their embedded stores and lakes"
        );
    }
    // One cluster for every data set: its executors read each lake's files by absolute path.
    let cluster_dir = tempfile::tempdir()?;
    let cluster = match args.ballista_executors {
        0 => None,
        executors => {
            let options = LocalClusterOptions {
                executors,
                task_slots: args.ballista_task_slots,
                ..LocalClusterOptions::default()
            };
            let binary = std::env::current_exe().context("while finding this binary")?;
            let started = LocalCluster::start(&binary, cluster_dir.path(), &options).await?;
            println!(
                "Ballista cluster at {}: {executors} executors of {} task slots (logs in {})",
                started.address(),
                args.ballista_task_slots,
                cluster_dir.path().display()
            );
            Some(
                Cluster::parse(&started.address())?
                    .with_target_partitions(args.ballista_target_partitions)
                    .map(|cluster| (cluster, started))?,
            )
        }
    };
    let mut sizes = Vec::with_capacity(args.data_dir.len());
    for data_dir in &args.data_dir {
        sizes.push(
            measure(
                &args,
                data_dir,
                cluster.as_ref().map(|(cluster, _)| cluster),
            )
            .await
            .with_context(|| format!("while measuring {}", data_dir.display()))?,
        );
    }
    summarise(
        &sizes,
        "ratio = Tributary p50 / DuckDB p50",
        Some(RATIO_TARGET),
        |size| size.ratios.as_slice(),
    );
    if cluster.is_some() {
        summarise(
            &sizes,
            &format!(
                "ratio = Ballista cluster p50 / local DataFusion p50 ({} executors of {} task slots, {} target partitions; local: {} threads)",
                args.ballista_executors,
                args.ballista_task_slots,
                args.ballista_target_partitions,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            None,
            |size| size.cluster_ratios.as_slice(),
        );
    }
    Ok(())
}

/// Prints every data set's ratios (`ratios` of each) side by side, one column per size, with the
/// worst of each and, given a target, whether it is met.
fn summarise(
    sizes: &[SizeMeasured],
    title: &str,
    target: Option<f64>,
    ratios: fn(&SizeMeasured) -> &[(String, f64)],
) {
    let Some(first) = sizes.first() else {
        return;
    };
    println!();
    match target {
        Some(target) => {
            println!("{title} (target: at most {target:.2} for every query at every size)")
        }
        None => println!("{title}"),
    }
    let header: String = sizes
        .iter()
        .map(|size| format!(" {:>16}", format!("{} lines", size.lines)))
        .collect();
    println!("{:<40}{header}", "query");
    for (index, (name, _)) in ratios(first).iter().enumerate() {
        let cells: String = sizes
            .iter()
            .map(|size| {
                ratios(size)
                    .get(index)
                    .map(|(_, ratio)| format!(" {ratio:>16.2}"))
                    .unwrap_or_default()
            })
            .collect();
        println!("{name:<40}{cells}");
    }
    let mut met = true;
    let worst: String = sizes
        .iter()
        .map(|size| {
            let worst = ratios(size)
                .iter()
                .map(|(_, ratio)| *ratio)
                .fold(0.0, f64::max);
            met &= target.is_none_or(|target: f64| worst <= target);
            format!(" {worst:>16.2}")
        })
        .collect();
    println!("{:<40}{worst}", "worst");
    if target.is_some() {
        println!(
            "target {}",
            if met { "met at every size" } else { "NOT met" }
        );
    }
}

/// Measures the dashboard queries and the trial balance over one data directory.
async fn measure(
    args: &QueryBenchArgs,
    data_dir: &Path,
    cluster: Option<&Cluster>,
) -> anyhow::Result<SizeMeasured> {
    let mut config = Config::embedded(data_dir.to_owned(), "127.0.0.1:0".parse()?);
    config.database_url = args.database_url.clone();
    config.lake = args.lake.clone();
    if config.lake_location().contains("://") {
        bail!("bench-queries reads the lake's Parquet files with DuckDB: use a local --lake");
    }
    // The pipelines first bring the lake up to the store (nothing to do when `up` already
    // did), then idle while the queries run.
    config.roles = Roles {
        pipelines: true,
        query: true,
        ..Roles::default()
    };
    // Compaction is done once below, before measuring, not while measuring.
    config.compaction = None;
    config.query_limits = QueryLimits {
        timeout_ms: 600_000,
        rows_max: 10_000_000,
        answer_bytes_max: usize::MAX,
        ..Default::default()
    };
    let mut wire = WireOptions::embedded();
    wire.addr = "127.0.0.1:0".parse()?;
    config.pg = Some(wire);
    // A generated store has no users yet: its first start creates the administrator.
    super::bench_identity(&mut config);
    let running = start(config).await?;
    let addr = running
        .pg_addr
        .context("the query role serves no SQL endpoint")?;
    let started = Instant::now();
    running
        .wait_for_pipelines(Duration::from_secs(3_600))
        .await
        .context("while bringing the lake up to the event store")?;
    println!(
        "lake current with the event store after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    compact_all(&running, args.no_compact).await?;
    let options = connection_string(addr, "admin")
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .password(super::BENCH_ADMIN_PASSWORD);
    let mut connection = sqlx::PgConnection::connect_with(&options)
        .await
        .context("while logging in to the SQL endpoint as admin (a data directory whose administrator has another password cannot be benchmarked)")?;

    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM gl_journal_lines")
        .fetch_one(&mut connection)
        .await?;
    let company = match &args.company {
        Some(company) => company.clone(),
        None => sqlx::query_scalar::<_, String>("SELECT min(company) FROM gl_account_movements")
            .fetch_optional(&mut connection)
            .await?
            .context("the lake holds no journal lines: run `tributary generate` first")?,
    };
    let bounds = sqlx::query(
        "SELECT CAST(min(posting_date) AS VARCHAR) AS first, CAST(max(posting_date) AS VARCHAR) AS last \
         FROM gl_account_movements",
    )
    .fetch_one(&mut connection)
    .await?;
    let range = TimeRange {
        from: format!("{}T00:00:00Z", bounds.get::<String, _>("first")),
        to: format!("{}T23:59:59Z", bounds.get::<String, _>("last")),
    };
    println!(
        "tributary bench-queries: {lines} journal lines, company {company}, range {} .. {}, {} runs per query after {} warm-up",
        range.from, range.to, args.iterations, args.warmup
    );

    let variables = [("company", company.as_str())];
    let mut queries = Vec::new();
    for panel in grafana::panel_queries(grafana::FINANCE_DASHBOARD).map_err(anyhow::Error::msg)? {
        let sql = grafana::expand(&panel.sql, &range, &variables).map_err(anyhow::Error::msg)?;
        queries.push((panel.title, sql));
    }
    queries.push((
        "Trial balance from journal lines".to_owned(),
        grafana::expand(TRIAL_BALANCE_FROM_LINES, &range, &variables)
            .map_err(anyhow::Error::msg)?,
    ));

    let ratios = against_duckdb(
        connection,
        &running,
        &queries,
        &args.python,
        (args.warmup, args.iterations),
    )
    .await?;
    let cluster_ratios = match cluster {
        Some(cluster) => {
            against_cluster(&running, &queries, cluster, (args.warmup, args.iterations)).await?
        }
        None => Vec::new(),
    };
    running.stop().await;
    let named = |ratios: Vec<f64>| {
        queries
            .iter()
            .map(|(name, _)| name.clone())
            .zip(ratios)
            .collect()
    };
    Ok(SizeMeasured {
        lines,
        ratios: named(ratios),
        cluster_ratios: named(cluster_ratios),
    })
}

/// Runs `queries` (name, SQL) in this process on local DataFusion and on `cluster`, each
/// `warmup` untimed and `iterations` timed runs, query by query; prints them side by side and
/// answers each query's ratio of the p50s (cluster over local). Both are planned the same way
/// (scopes, views, limits of the running query role): only the execution differs.
async fn against_cluster(
    running: &crate::Running,
    queries: &[(String, String)],
    cluster: &Cluster,
    (warmup, iterations): (usize, usize),
) -> anyhow::Result<Vec<f64>> {
    // The bench's query role (no cluster), and the same service sending its plans to one.
    let local = &running.query;
    let distributed = running.query.clone().with_cluster(cluster.clone());
    let everything = ReadScope::everything();
    print_header(
        "local datafusion",
        &format!("ballista {}", cluster.scheduler_url()),
    );
    let mut ratios = Vec::with_capacity(queries.len());
    for (name, sql) in queries {
        let mut ours = in_process(local, sql, &everything, warmup, iterations)
            .await
            .with_context(|| format!("while running {name} locally"))?;
        let mut theirs = in_process(&distributed, sql, &everything, warmup, iterations)
            .await
            .with_context(|| format!("while running {name} on the cluster"))?;
        let (ours_summary, theirs_summary) = (ours.summary(), theirs.summary());
        // Here the cluster is the one measured against local DataFusion.
        let ratio = theirs_summary.1 / ours_summary.1;
        ratios.push(ratio);
        let note = (ours.rows != theirs.rows)
            .then(|| format!("  (the cluster returned {} rows)", theirs.rows));
        print_row(name, ours.rows, ours_summary, theirs_summary, ratio, note);
    }
    Ok(ratios)
}

/// Prints the head of a table of queries on two engines side by side (`ours`, `theirs`).
fn print_header(ours: &str, theirs: &str) {
    println!();
    println!(
        "{:<40} {:>7} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>6}",
        "query", "rows", "q/s", "p50 ms", "p99 ms", "q/s", "p50 ms", "p99 ms", "ratio"
    );
    println!("{:<40} {:>7} {ours:>29} | {theirs:>29} |", "", "");
}

/// Prints one query's row under [`print_header`]: queries/s, p50 and p99 on each engine (as
/// [`Measured::summary`] answers them), the ratio and a note when the answers differ.
fn print_row(
    name: &str,
    rows: usize,
    (queries_per_s, p50, p99): (f64, f64, f64),
    (their_queries_per_s, their_p50, their_p99): (f64, f64, f64),
    ratio: f64,
    note: Option<String>,
) {
    println!(
        "{:<40} {:>7} {:>9.1} {:>9.1} {:>9.1} | {:>9.1} {:>9.1} {:>9.1} | {:>6.2}{}",
        name,
        rows,
        queries_per_s,
        p50,
        p99,
        their_queries_per_s,
        their_p50,
        their_p99,
        ratio,
        note.unwrap_or_default()
    );
}

/// `warmup` untimed and `iterations` timed runs of `sql` on `service`.
async fn in_process(
    service: &QueryService,
    sql: &str,
    scope: &ReadScope,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<Measured> {
    let mut rows = 0;
    for _ in 0..warmup {
        rows = service.query(sql, scope).await?.row_count();
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        rows = service.query(sql, scope).await?.row_count();
        samples.push(started.elapsed());
    }
    Ok(Measured { rows, samples })
}

/// Runs `queries` (name, SQL) over the wire on `connection` (closed afterwards) and in DuckDB
/// over the same Parquet files, `warmup` untimed and `iterations` timed runs each, one engine's
/// run after the other's (which goes first alternates): a stretch in which the machine is slower
/// (another tenant, the CPU's clock) slows both alike instead of one engine's whole block of
/// queries. Prints them side by side and answers each query's ratio of the p50s.
pub(crate) async fn against_duckdb(
    mut connection: sqlx::PgConnection,
    running: &crate::Running,
    queries: &[(String, String)],
    python: &str,
    (warmup, iterations): (usize, usize),
) -> anyhow::Result<Vec<f64>> {
    let mut duckdb = DuckDb::start(python, running).await?;
    let mut measured = Vec::with_capacity(queries.len());
    for (name, sql) in queries {
        let (mut ours, mut theirs) = (Measured::default(), Measured::default());
        for run in 0..warmup + iterations {
            let timed = run >= warmup;
            for side in [run % 2, 1 - run % 2] {
                let (rows, took) = if side == 0 {
                    let started = Instant::now();
                    let rows = sqlx::query(sql)
                        .fetch_all(&mut connection)
                        .await
                        .with_context(|| format!("while running {name}"))?
                        .len();
                    (rows, started.elapsed())
                } else {
                    duckdb
                        .run(sql)
                        .await
                        .with_context(|| format!("while running {name} in DuckDB"))?
                };
                let measured = if side == 0 { &mut ours } else { &mut theirs };
                measured.rows = rows;
                if timed {
                    measured.samples.push(took);
                }
            }
        }
        println!(
            "  {name:<40} tributary p50 {:>9.1} ms, duckdb p50 {:>9.1} ms",
            percentile_ms(&mut ours.samples.clone(), 50),
            percentile_ms(&mut theirs.samples.clone(), 50)
        );
        measured.push((ours, theirs));
    }
    connection.close().await?;
    let engine = format!("duckdb {} with {} threads", duckdb.version, duckdb.threads);
    duckdb.stop().await?;
    print_header("tributary (wire)", "duckdb (same parquet)");
    let mut ratios = Vec::with_capacity(queries.len());
    for ((name, _), (mut ours, mut theirs)) in queries.iter().zip(measured) {
        let (ours_summary, theirs_summary) = (ours.summary(), theirs.summary());
        let ratio = ours_summary.1 / theirs_summary.1;
        ratios.push(ratio);
        let note =
            (ours.rows != theirs.rows).then(|| format!("  (duckdb returned {} rows)", theirs.rows));
        print_row(name, ours.rows, ours_summary, theirs_summary, ratio, note);
    }
    println!("{engine}");
    Ok(ratios)
}

/// Compacts every lake table's files as the writer roles' maintenance does (unless
/// `no_compact`), printing what it did.
pub(crate) async fn compact_all(running: &crate::Running, no_compact: bool) -> anyhow::Result<()> {
    for definition in running.lake.definitions() {
        let name = definition.name;
        let files = running.lake.file_count(name).await?;
        if no_compact || files < 2 {
            println!("  {name}: {files} files");
            continue;
        }
        let started = Instant::now();
        let done = running
            .lake
            .compact(name, CompactionOptions::default().target_bytes)
            .await?;
        println!(
            "  {name}: {files} files compacted into {} in {:.1} s (as the maintenance of the writer roles does)",
            done.files_after(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// tools/duckdb-bench.py running in `python` over the Parquet files of each table's current
/// Delta version, answering one run of a query at a time.
struct DuckDb {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    answers: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    version: String,
    threads: serde_json::Value,
}

impl DuckDb {
    async fn start(python: &str, running: &crate::Running) -> anyhow::Result<DuckDb> {
        use tokio::io::AsyncBufReadExt;
        let mut tables = serde_json::Map::new();
        for definition in running.lake.definitions() {
            let table = running.lake.latest(definition.name).await?;
            let files: Vec<String> = table
                .get_file_uris()?
                .map(|uri| uri.strip_prefix("file://").unwrap_or(&uri).to_owned())
                .collect();
            if !files.is_empty() {
                tables.insert(definition.name.to_owned(), json!(files));
            }
        }
        // Views over tables that have files (DuckDB cannot read an empty Delta table's
        // Parquet), in order, each only when every table and view it names made it in.
        let names: Vec<&str> = running.lake.definitions().map(|d| d.name).collect();
        let mut views: Vec<&str> = Vec::new();
        let mut made: Vec<&str> = Vec::new();
        for view in running.lake.views() {
            let words: std::collections::BTreeSet<&str> = view
                .sql
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .collect();
            let tables_there = names
                .iter()
                .filter(|name| words.contains(*name))
                .all(|name| tables.contains_key(*name));
            let views_there = running
                .lake
                .views()
                .iter()
                .filter(|other| other.name != view.name && words.contains(other.name))
                .all(|other| made.contains(&other.name));
            if tables_there && views_there {
                views.push(view.sql);
                made.push(view.name);
            }
        }
        let mut child = tokio::process::Command::new(python)
            .args(["-c", DUCKDB_SCRIPT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("while starting {python} for the DuckDB baseline"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("the DuckDB baseline's stdin and stdout were not piped");
        };
        let mut duckdb = DuckDb {
            child,
            stdin,
            answers: tokio::io::BufReader::new(stdout).lines(),
            version: String::new(),
            threads: serde_json::Value::Null,
        };
        let started: DuckDbStarted = duckdb
            .ask(json!({"tables": tables, "views": views}))
            .await
            .context("while opening the Parquet files in DuckDB (pip install duckdb?)")?;
        (duckdb.version, duckdb.threads) = (started.duckdb, started.threads);
        Ok(duckdb)
    }

    /// Sends one line and reads its answer.
    async fn ask<T: serde::de::DeserializeOwned>(
        &mut self,
        line: serde_json::Value,
    ) -> anyhow::Result<T> {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = self
            .answers
            .next_line()
            .await?
            .context("the DuckDB baseline exited")?;
        serde_json::from_str(&answer).context("while reading the DuckDB baseline's answer")
    }

    /// One run of `sql`: the rows it answered and how long DuckDB took.
    async fn run(&mut self, sql: &str) -> anyhow::Result<(usize, Duration)> {
        match self.ask::<DuckDbRun>(json!({ "sql": sql })).await? {
            DuckDbRun {
                rows: Some(rows),
                ms: Some(ms),
                ..
            } => Ok((rows, Duration::from_secs_f64(ms / 1_000.0))),
            DuckDbRun { error, .. } => bail!(
                "DuckDB refused the query: {}",
                error.unwrap_or_else(|| "no rows or time in its answer".to_owned())
            ),
        }
    }

    /// Closes its stdin and waits for it to exit.
    async fn stop(self) -> anyhow::Result<()> {
        let DuckDb {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = child.wait().await?;
        anyhow::ensure!(status.success(), "the DuckDB baseline exited with {status}");
        Ok(())
    }
}
