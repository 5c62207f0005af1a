//! `tributary bench`: posting throughput, latency and freshness over real HTTP.
//!
//! Starts Tributary in-process on a fresh data directory (and, with `--postgres-url`, again on
//! a fresh PostgreSQL database), posts N balanced entries with C concurrent HTTP clients, and
//! samples how long an accepted entry takes to become visible to SQL. The baseline, measured in
//! the same run on the same backend, is the same commands appended straight to the event store
//! without HTTP: the ratio is what the HTTP layer and its checks cost.
//!
//! With `--postgres-url`, PostgreSQL is measured with the pipelines in the process, with the
//! pipelines in a process of their own (`tributary serve --role pipelines` on the same store
//! and lake, freshness probed through this process's SQL), and with the write side alone,
//! grouped and ungrouped; pgbench's TPC-B-like script runs on the same database with the same
//! client count as the grouped write side; with `--kafka-brokers` too, [`streaming`] measures the
//! relay and the pipelines against raw rdkafka produce and consume.
// Floats here are timings and ratios for display, never money.
#![allow(clippy::float_arithmetic)]

mod cpu;
pub mod mrp;
mod pgbench;
pub mod queries;
pub mod receipts;
pub mod sales;
pub mod snapshots;
pub mod store;
pub mod streaming;

use crate::{Config, start};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tributary_finance::commands;
use tributary_finance::domain::{AccountNumber, CompanyCode, LineInput, PostJournalEntry, Side};
use tributary_kernel::money::Currency;

/// The rows of the PostgreSQL write side alone, grouped and each command alone.
const API_ONLY: &str = "postgres api only";
const API_UNGROUPED: &str = "pg api, no groups";
/// The row of PostgreSQL with the pipelines in a process of their own.
const PIPELINES_APART: &str = "pg, pipelines apart";

/// Where a run's pipelines keep the lake current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipelines {
    /// In the bench's own process, as the embedded default runs them.
    InProcess,
    /// In a second process (`tributary serve --role pipelines`) on the same event store and
    /// lake, as production runs them; the bench's process, with the roles of production's api
    /// processes, reads the lake they write.
    Apart,
    /// Not at all: the write side alone, with the roles of production's api processes.
    Off,
}

/// Posting over HTTP against pgbench at the same client count (issue 18).
const POSTING_RATIO_TARGET: f64 = 2.0;
/// An accepted entry visible in SQL at p99 within this, while posting (issue 18).
const VISIBLE_P99_TARGET_MS: f64 = 500.0;

/// Longest wait for one entry to become visible before the probe gives up.
pub(crate) const FRESHNESS_WAIT_MAX: Duration = Duration::from_secs(30);

/// The visibility watcher's pause between its rounds. A figure it reports is at most this much
/// (plus its query's time) later than the moment the entry became visible, never earlier. At
/// 5 ms its statements took 8–9% of the machine's CPU in the apart run (`perf record -a`:
/// the api process's `tributary-query` threads), CPU the posting competed for and that no
/// dashboard spends; at 20 ms it asks about half as often.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Journal entries to post per backend.
    #[arg(long, default_value_t = 2_000)]
    pub entries: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Client counts of the api run, each against pgbench with as many clients (default:
    /// --clients). Group commit gains with concurrency, so the ratio depends on the count.
    #[arg(long, value_delimiter = ',')]
    pub api_clients: Vec<usize>,
    /// Also run on PostgreSQL: a server URL; a fresh database is created and dropped on it.
    #[arg(long, env = "TRIBUTARY_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Also measure the production path on these Kafka brokers (needs --postgres-url): relay
    /// and pipelines against raw rdkafka produce and consume of the same messages.
    #[arg(long, env = "TRIBUTARY_BENCH_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Events for the relay and pipelines measurement.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// How long pgbench runs (with --postgres-url).
    #[arg(long, default_value_t = 10)]
    pub pgbench_seconds: u64,
    /// The runs to make, of: sqlite, postgres, apart (pipelines in their own process),
    /// ungrouped (the write side, each command alone), api (the write side grouped, then
    /// pgbench). The PostgreSQL runs need --postgres-url.
    #[arg(long, value_delimiter = ',', default_values_t = Run::ALL)]
    pub runs: Vec<Run>,
    /// Probe freshness on every Nth entry.
    #[arg(long, default_value_t = 20)]
    pub freshness_every: usize,
    /// The group commit as the server takes it; with --postgres-url the api-only run is
    /// repeated with grouping off (--group-commit-max 1) for comparison.
    #[command(flatten)]
    pub group_commit: crate::GroupCommitArgs,
}

/// One run of `tributary bench`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Sqlite,
    Postgres,
    Apart,
    Ungrouped,
    Api,
}

impl Run {
    const ALL: [Run; 5] = [
        Run::Sqlite,
        Run::Postgres,
        Run::Apart,
        Run::Ungrouped,
        Run::Api,
    ];
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        let value = self.to_possible_value().ok_or(std::fmt::Error)?;
        f.write_str(value.get_name())
    }
}

struct Report {
    backend: String,
    entries_per_s: f64,
    latency_ms: (f64, f64),
    freshness_ms: (f64, f64),
    /// The probe's SQL queries (part of every freshness sample): p50, p99.
    probe_ms: (f64, f64),
    baseline_entries_per_s: f64,
}

pub(crate) fn percentile_ms(samples: &mut [Duration], percent: usize) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    let index = (samples.len() - 1) * percent / 100;
    samples[index].as_secs_f64() * 1_000.0
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.entries == 0 || args.clients == 0 || args.api_clients.contains(&0) {
        bail!("--entries, --clients and --api-clients must be at least 1");
    }
    println!(
        "tributary bench: {} entries, {} clients per backend",
        args.entries, args.clients
    );
    if args.kafka_brokers.is_some() && args.postgres_url.is_none() {
        bail!("--kafka-brokers needs --postgres-url: the relay reads the PostgreSQL event store");
    }
    let on_postgres = [Run::Postgres, Run::Apart, Run::Ungrouped, Run::Api];
    if args.postgres_url.is_none() && args.runs.iter().any(|r| on_postgres.contains(r)) {
        bail!("--runs postgres, apart, ungrouped and api need --postgres-url");
    }
    let run = |r: Run| args.runs.contains(&r);
    let mut reports = Vec::new();
    if run(Run::Sqlite) {
        reports.push(run_backend("sqlite (embedded)", None, &args, Pipelines::InProcess).await?);
    }
    let mut pgbench_tps = Vec::new();
    if let Some(server) = &args.postgres_url {
        if run(Run::Postgres) {
            reports.push(on_fresh_database(server, "postgres", &args, Pipelines::InProcess).await?);
        }
        if run(Run::Apart) {
            reports
                .push(on_fresh_database(server, PIPELINES_APART, &args, Pipelines::Apart).await?);
        }
        // The write side alone without grouping, for the comparison with the grouped run below.
        if run(Run::Ungrouped) && args.group_commit.group_commit_max > 1 {
            let mut ungrouped = args.clone();
            ungrouped.group_commit.group_commit_max = 1;
            reports
                .push(on_fresh_database(server, API_UNGROUPED, &ungrouped, Pipelines::Off).await?);
        }
        // The write side alone, as production runs it (pipelines in their own processes), on
        // its own fresh database, which pgbench then shares; at each client count asked for.
        if run(Run::Api) {
            let counts = match args.api_clients.as_slice() {
                [] => vec![args.clients],
                counts => counts.to_vec(),
            };
            for clients in counts {
                let label = if clients == args.clients {
                    API_ONLY.to_owned()
                } else {
                    format!("pg api, {clients} clients")
                };
                let at = BenchArgs {
                    clients,
                    ..args.clone()
                };
                let (url, drop_database) = fresh_postgres_database(server).await?;
                let result = async {
                    let report =
                        run_backend(&label, Some(url.clone()), &at, Pipelines::Off).await?;
                    progress!(
                        "postgres: pgbench TPC-B-like, {clients} clients, {} s, same database ... ",
                        args.pgbench_seconds
                    );
                    let tps = pgbench::tps(&url, clients, args.pgbench_seconds).await?;
                    println!("{tps:.0} transactions/s");
                    anyhow::Ok((report, tps))
                }
                .await;
                drop_database.await;
                let (report, tps) = result?;
                reports.push(report);
                pgbench_tps.push((label, clients, tps));
            }
        }
    }
    let mut streaming_report = None;
    if let (Some(brokers), Some(server)) = (&args.kafka_brokers, &args.postgres_url) {
        let (url, drop_database) = fresh_postgres_database(server).await?;
        let result = streaming::run(&url, brokers, args.events).await;
        drop_database.await;
        streaming_report = Some(result?);
    }
    println!();
    println!(
        "{:<18} {:>10} {:>9} {:>9} {:>12} {:>12} {:>14} {:>7}",
        "backend",
        "entries/s",
        "p50 ms",
        "p99 ms",
        "fresh p50",
        "fresh p99",
        "baseline e/s",
        "ratio"
    );
    for r in &reports {
        let fresh = |ms: f64| {
            if ms.is_nan() {
                "-".to_owned()
            } else {
                format!("{ms:.1} ms")
            }
        };
        println!(
            "{:<18} {:>10.0} {:>9.1} {:>9.1} {:>12} {:>12} {:>14.0} {:>7.2}",
            r.backend,
            r.entries_per_s,
            r.latency_ms.0,
            r.latency_ms.1,
            fresh(r.freshness_ms.0),
            fresh(r.freshness_ms.1),
            r.baseline_entries_per_s,
            r.entries_per_s / r.baseline_entries_per_s
        );
    }
    println!(
        "(ratio = HTTP entries/s over the baseline: the same commands appended to the event store without HTTP)"
    );
    let api = |label: &str| reports.iter().find(|r| r.backend == label);
    for (label, clients, tps) in &pgbench_tps {
        if let Some(postgres) = api(label) {
            println!(
                "posting on PostgreSQL (api role), {clients} clients: {:.0} entries/s over HTTP (p99 {:.1} ms) vs pgbench {tps:.0} transactions/s: ratio {:.2} (target ≥ {POSTING_RATIO_TARGET}, issue 18)",
                postgres.entries_per_s,
                postgres.latency_ms.1,
                postgres.entries_per_s / tps
            );
        }
    }
    if let (Some(grouped), Some(alone)) = (api(API_ONLY), api(API_UNGROUPED)) {
        println!(
            "group commit (at most {} commands, {} leaders): {:.0} entries/s (p99 {:.1} ms) vs {:.0} (p99 {:.1} ms) each command alone: ratio {:.2}",
            args.group_commit.group_commit_max,
            args.group_commit.group_commit_leaders,
            grouped.entries_per_s,
            grouped.latency_ms.1,
            alone.entries_per_s,
            alone.latency_ms.1,
            grouped.entries_per_s / alone.entries_per_s
        );
    }
    if let Some(apart) = api(PIPELINES_APART) {
        println!(
            "pipelines in their own process: {:.0} entries/s over HTTP (p99 {:.1} ms), accepted entry visible in SQL p50 {:.1} ms, p99 {:.1} ms",
            apart.entries_per_s, apart.latency_ms.1, apart.freshness_ms.0, apart.freshness_ms.1
        );
        // Both halves of the target at once: the rate with the lake kept current, against
        // pgbench at the same client count.
        if let Some((_, _, tps)) = pgbench_tps.iter().find(|(_, c, _)| *c == args.clients) {
            let ratio = apart.entries_per_s / tps;
            let met =
                ratio >= POSTING_RATIO_TARGET && apart.freshness_ms.1 <= VISIBLE_P99_TARGET_MS;
            println!(
                "posting with the lake kept current, {} clients: {ratio:.2} × pgbench ({tps:.0} tps), visible in SQL p99 {:.1} ms: target (≥ {POSTING_RATIO_TARGET} × pgbench and p99 ≤ {VISIBLE_P99_TARGET_MS} ms at once, issue 18) {}",
                args.clients,
                apart.freshness_ms.1,
                if met { "met" } else { "NOT met" }
            );
        }
    }
    println!(
        "accepted entry visible in SQL: target p99 ≤ {VISIBLE_P99_TARGET_MS} ms while posting (issue 18)"
    );
    for r in reports.iter().filter(|r| !r.probe_ms.0.is_nan()) {
        println!(
            "{}: the probe's SQL query (one per round, part of each freshness figure) took p50 {:.1} ms, p99 {:.1} ms",
            r.backend, r.probe_ms.0, r.probe_ms.1
        );
    }
    if let Some(report) = streaming_report {
        report.print();
    }
    Ok(())
}

/// Creates a fresh database on the server; returns its URL and a future that drops it.
pub(crate) async fn fresh_postgres_database(
    server: &str,
) -> anyhow::Result<(String, impl std::future::Future<Output = ()>)> {
    use sqlx::Connection;
    let name = format!(
        "tributary_bench_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .context("while connecting to the PostgreSQL server for the benchmark")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    let url = format!("{base}/{name}");
    let server = server.to_owned();
    let drop = async move {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    };
    Ok((url, drop))
}

/// The company every benchmark installation posts in: the default company, named in every
/// request as integrations name it (an unnamed company is looked up fresh on every posting).
pub(crate) const COMPANY: &str = "MAIN";

pub(crate) fn entry_body(i: usize) -> Value {
    let amount = format!("{}.{:02}", 10 + i % 990, i % 100);
    json!({
        "company": COMPANY,
        "posting_date": format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
        "reference": format!("BENCH-{i}"),
        "lines": [
            {"account": "1000", "debit": amount, "currency": "EUR"},
            {"account": "4000", "credit": amount, "currency": "EUR"}
        ]
    })
}

/// The administrator a benchmark's own installation starts with.
pub(crate) const BENCH_ADMIN_PASSWORD: &str = "benchmark administrator";

/// A benchmark's installation: its administrator's password known, tokens valid all run long.
pub(crate) fn bench_identity(config: &mut Config) {
    config.identity.admin_password = Some(BENCH_ADMIN_PASSWORD.into());
    // The benchmark's clients are one user posting as fast as they can.
    config.rate_limit = None;
    config.identity.access_token_ttl = Duration::from_secs(24 * 3600);
}

/// A client of a benchmark's installation, logged in as its administrator.
pub(crate) async fn bench_client(
    base: &str,
    idle_per_host: usize,
) -> anyhow::Result<reqwest::Client> {
    crate::client::logged_in(base, "admin", BENCH_ADMIN_PASSWORD, idle_per_host).await
}

/// [`run_backend`] on a fresh database of `server`, dropped afterwards.
async fn on_fresh_database(
    server: &str,
    label: &str,
    args: &BenchArgs,
    pipelines: Pipelines,
) -> anyhow::Result<Report> {
    let (url, drop_database) = fresh_postgres_database(server).await?;
    let result = run_backend(label, Some(url), args, pipelines).await;
    drop_database.await;
    result
}

/// Posts over HTTP (the api and query roles in this process); with pipelines, in this process
/// or in their own, freshness is probed; without them only the write side runs.
async fn run_backend(
    label: &str,
    database_url: Option<String>,
    args: &BenchArgs,
    pipelines: Pipelines,
) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::embedded(dir.path().to_path_buf(), "127.0.0.1:0".parse()?);
    config.database_url = database_url;
    config.roles.pipelines = pipelines == Pipelines::InProcess;
    if pipelines != Pipelines::InProcess {
        // The write side as production's api Deployment runs it (deploy/k8s/api.yaml: `--role
        // api,query`): reactors and reports run in processes of their own there, the pipelines
        // too (the apart run starts theirs beside this one).
        config.roles = crate::Roles::parse("api,query").map_err(anyhow::Error::msg)?;
    }
    let (store, lake) = (config.database_url.clone(), config.lake_location());
    // The posting bench needs no SQL endpoint (and must not collide with one running).
    config.pg = None;
    config.group_commit = args.group_commit.options();
    bench_identity(&mut config);
    let running = start(config).await?;
    // Started after this process made the store's schema and the lake's tables.
    let apart = match (pipelines, store) {
        (Pipelines::Apart, Some(url)) => Some(
            PipelinesProcess::start(&url, &lake, dir.path())
                .await
                .context("while starting the pipelines' own process")?,
        ),
        (Pipelines::Apart, None) => bail!("pipelines in their own process need PostgreSQL"),
        _ => None,
    };
    let base = format!("http://{}", running.addr);
    let client = bench_client(&base, args.clients * 2).await?;
    for body in [
        json!({"number": "1000", "name": "Bank", "type": "asset", "currency": "EUR"}),
        json!({"number": "4000", "name": "Revenue", "type": "revenue", "currency": "EUR"}),
    ] {
        let response = client
            .post(format!("{base}/api/v1/accounts"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "account setup failed: {}",
            response.text().await?
        );
    }
    let response = client
        .post(format!("{base}/api/v1/fiscal-years"))
        .json(&json!({"year": 2026}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "fiscal year setup failed: {}",
        response.text().await?
    );

    progress!("{label}: posting over HTTP ... ");
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(args.entries)));
    let watcher = (pipelines != Pipelines::Off).then(|| Visibility::watch(&client, &base));
    let pipelines_pid = apart.as_ref().and_then(|process| process.child.id());
    let cpu_before = cpu::Sample::take(pipelines_pid);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.clients {
        let (client, base, next, latencies, waiting) = (
            client.clone(),
            base.clone(),
            next.clone(),
            latencies.clone(),
            watcher.as_ref().map(|w| w.waiting.clone()),
        );
        let (entries, every) = (args.entries, args.freshness_every.max(1));
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= entries {
                    return Ok::<(), anyhow::Error>(());
                }
                let sent = Instant::now();
                let response = client
                    .post(format!("{base}/api/v1/journal-entries"))
                    .json(&entry_body(i))
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                let accepted = Instant::now();
                anyhow::ensure!(
                    status.as_u16() == 201,
                    "post {i} failed with {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                latencies.lock().await.push(accepted - sent);
                // Only a watched entry's answer is read (the clients share the cores with
                // the server they measure).
                if let Some(waiting) = waiting.as_ref().filter(|_| i % every == 0) {
                    #[derive(serde::Deserialize)]
                    struct Posted {
                        id: String,
                    }
                    let id = serde_json::from_slice::<Posted>(&body)?.id;
                    waiting.lock().await.push((id, accepted));
                }
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed();
    let cpu_spent = cpu_before
        .zip(cpu::Sample::take(pipelines_pid))
        .map(|(before, after)| before.spent_until(&after));
    let (mut freshness, mut probes) = match watcher {
        Some(watcher) => watcher.finish().await?,
        None => Default::default(),
    };
    if pipelines == Pipelines::InProcess {
        running.wait_for_pipelines(FRESHNESS_WAIT_MAX).await?;
    }
    if let Some(process) = apart {
        process.stop().await;
    }
    match running.store.group_sizes() {
        Some((groups, commands)) if groups > 0 => println!(
            "done in {:.1} s ({groups} transactions, {:.1} commands each on average)",
            elapsed.as_secs_f64(),
            commands as f64 / groups as f64
        ),
        _ => println!("done in {:.1} s", elapsed.as_secs_f64()),
    }
    if let Some(spent) = cpu_spent {
        println!("  {spent}");
    }

    progress!("{label}: baseline (event store append, no HTTP) ... ");
    let baseline = baseline_appends(&running.store, args).await?;
    println!("done");
    running.stop().await;
    let mut latencies = latencies.lock().await.clone();
    Ok(Report {
        backend: label.to_owned(),
        entries_per_s: args.entries as f64 / elapsed.as_secs_f64(),
        latency_ms: (
            percentile_ms(&mut latencies, 50),
            percentile_ms(&mut latencies, 99),
        ),
        freshness_ms: (
            percentile_ms(&mut freshness, 50),
            percentile_ms(&mut freshness, 99),
        ),
        probe_ms: (
            percentile_ms(&mut probes, 50),
            percentile_ms(&mut probes, 99),
        ),
        baseline_entries_per_s: baseline,
    })
}

/// `tributary serve --role pipelines` on an event store and lake, stopped when dropped.
struct PipelinesProcess {
    child: tokio::process::Child,
}

impl PipelinesProcess {
    /// Starts the process and waits until it answers its health check.
    async fn start(
        database_url: &str,
        lake: &str,
        dir: &std::path::Path,
    ) -> anyhow::Result<PipelinesProcess> {
        // A free port for its health check (its HTTP API serves no other role here).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data_dir = dir.join("pipelines");
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--role", "pipelines", "--lake", lake])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--database-url", database_url])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let health = format!("http://127.0.0.1:{port}/healthz");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("it exited with {status} before it was up");
            }
            let answered = client.get(&health).send().await;
            if answered.is_ok_and(|response| response.status().is_success()) {
                return Ok(PipelinesProcess { child });
            }
            if Instant::now() > deadline {
                bail!("it did not answer {health} within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Entries accepted and not yet seen in SQL: (entry id, when its posting was answered).
type Waiting = Arc<Mutex<Vec<(String, Instant)>>>;

/// One SQL client watching for the sampled entries, as one dashboard would: each round asks
/// for every entry still waiting in one query, so the probe's own load on the query side stays
/// that of one client however many entries wait (a poller per entry made ten or more clients
/// at a time, each asking every 5 ms).
struct Visibility {
    waiting: Waiting,
    posting: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<(Vec<Duration>, Vec<Duration>)>>,
}

impl Visibility {
    fn watch(client: &reqwest::Client, base: &str) -> Visibility {
        let waiting = Waiting::default();
        let (posting, done) = tokio::sync::watch::channel(true);
        let task = tokio::spawn(watch_visible(
            client.clone(),
            base.to_owned(),
            waiting.clone(),
            done,
        ));
        Visibility {
            waiting,
            posting,
            task,
        }
    }

    /// Once every entry waiting was seen (or waited [`FRESHNESS_WAIT_MAX`]): how long each
    /// took from its answer to the query that first saw it, and how long each query took.
    async fn finish(self) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
        self.posting.send_replace(false);
        self.task.await?
    }
}

async fn watch_visible(
    client: reqwest::Client,
    base: String,
    waiting: Waiting,
    posting: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut seen, mut probes) = (Vec::new(), Vec::new());
    loop {
        let asked: Vec<(String, Instant)> = {
            let mut waiting = waiting.lock().await;
            waiting.retain(|(_, accepted)| accepted.elapsed() < FRESHNESS_WAIT_MAX);
            waiting.clone()
        };
        if asked.is_empty() && !*posting.borrow() {
            return Ok((seen, probes));
        }
        let ids: Vec<String> = asked.iter().map(|(id, _)| format!("'{id}'")).collect();
        // Entry ids are UUIDv7, ordered by time as text: the range lets the log's statistics
        // skip every file older than the oldest entry waiting (DataFusion prunes by an IN list
        // of at most 20 values, and more wait at a high rate).
        if let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) {
            let sql = format!(
                "SELECT DISTINCT entry_id FROM gl_journal_lines \
                 WHERE entry_id BETWEEN {first} AND {last} AND entry_id IN ({})",
                ids.join(", ")
            );
            let asking = Instant::now();
            let response = client
                .post(format!("{base}/api/v1/sql"))
                .json(&json!({ "sql": sql }))
                .send()
                .await?;
            let body: Value = response.json().await?;
            let answered = Instant::now();
            probes.push(answered - asking);
            match body["rows"].as_array() {
                Some(rows) => {
                    let found: Vec<&str> = rows.iter().filter_map(|row| row[0].as_str()).collect();
                    waiting.lock().await.retain(|(id, accepted)| {
                        let visible = found.contains(&id.as_str());
                        if visible {
                            seen.push(answered - *accepted);
                        }
                        !visible
                    });
                }
                // Asked again next round; an entry never seen is left out of the figures.
                None => tracing::warn!(answer = %body, "watching for entries in SQL failed"),
            }
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// Polls SQL until `sql` (a count) counts a row; the instant it did.
pub(crate) async fn wait_counted(
    client: &reqwest::Client,
    base: &str,
    sql: String,
) -> Option<Instant> {
    let deadline = Instant::now() + FRESHNESS_WAIT_MAX;
    while Instant::now() < deadline {
        let response = client
            .post(format!("{base}/api/v1/sql"))
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        if body["rows"][0][0].as_i64().unwrap_or(0) > 0 {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// The same postings decided as the api decides them and appended directly, with the same
/// concurrency.
async fn baseline_appends(
    store: &tributary_kernel::EventStore,
    args: &BenchArgs,
) -> anyhow::Result<f64> {
    let company = CompanyCode::parse(COMPANY).map_err(anyhow::Error::msg)?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.clients {
        let (store, next, company, entries) =
            (store.clone(), next.clone(), company.clone(), args.entries);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= entries {
                    return Ok::<(), anyhow::Error>(());
                }
                let amount =
                    rust_decimal::Decimal::new((10 + i as i64 % 990) * 100 + i as i64 % 100, 2);
                let currency = Currency::parse("EUR").map_err(anyhow::Error::msg)?;
                let line = |account: &str, side| -> anyhow::Result<LineInput> {
                    Ok(LineInput {
                        account: AccountNumber::parse(account).map_err(anyhow::Error::msg)?,
                        side,
                        currency: currency.clone(),
                        cost_center: None,
                        text: None,
                    })
                };
                let command = PostJournalEntry {
                    entry_id: uuid::Uuid::now_v7(),
                    company: company.clone(),
                    posting_date: chrono::NaiveDate::from_ymd_opt(
                        2026,
                        1 + (i % 12) as u32,
                        1 + (i % 28) as u32,
                    )
                    .context("bench date")?,
                    document_date: None,
                    reference: Some(format!("BASE-{i}")),
                    text: None,
                    lines: vec![
                        line("1000", Side::Debit(amount))?,
                        line("4000", Side::Credit(amount))?,
                    ],
                };
                // Decided as the api decides a posting that names its company.
                let accounts: Vec<AccountNumber> =
                    command.lines.iter().map(|l| l.account.clone()).collect();
                let decision = commands::decide_posting(
                    &store,
                    Some(COMPANY),
                    command.posting_date,
                    &accounts,
                    |company| PostJournalEntry {
                        company,
                        ..command.clone()
                    },
                )
                .await?;
                let (batch, _) = decision.into_batch(commands::CONTEXT, Default::default(), None);
                store.append(batch).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(args.entries as f64 / started.elapsed().as_secs_f64())
}
