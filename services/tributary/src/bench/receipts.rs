//! `tributary bench-receipts`: goods receipts per second over HTTP with finance's automatic
//! GL postings flowing, against journal entries per second over HTTP in the same run, on the
//! same database (PostgreSQL with `--postgres-url`, else the embedded SQLite).
//!
//! One process runs every role of the embedded default: the api, the pipelines and the
//! reactors. Each client receives against purchase orders of its own materials (a receipt
//! appends to the order and to the stock of the material, so two clients never contend for
//! one stream). Throughput is measured without probes (polling SQL costs CPU the posting
//! would compete for); then receipts are posted one at a time and each is probed: how long
//! until its movement is in `stock_movements` and its GL posting in `gl_journal_lines`.
// Floats here are timings and ratios for display, never money.
#![allow(clippy::float_arithmetic)]

use super::{FRESHNESS_WAIT_MAX, entry_body, fresh_postgres_database, percentile_ms, wait_counted};
use crate::{Config, start};
use anyhow::Context;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::Mutex;

#[derive(clap::Args, Debug, Clone)]
pub struct ReceiptBenchArgs {
    /// Goods receipts to post (and as many journal entries for the comparison).
    #[arg(long, default_value_t = 2_000)]
    pub receipts: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Materials (each with its own purchase order) per client.
    #[arg(long, default_value_t = 4)]
    pub materials_per_client: usize,
    /// Receipts posted one at a time afterwards, each probed for stock and GL visibility.
    #[arg(long, default_value_t = 50)]
    pub probes: usize,
    /// A PostgreSQL server URL; a fresh database is created and dropped on it. Without it the
    /// embedded SQLite store is measured.
    #[arg(long, env = "TRIBUTARY_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
}

/// What one load run measured.
pub(crate) struct Load {
    pub(crate) per_s: f64,
    pub(crate) latency_ms: (f64, f64),
}

/// Posts `count` requests made by `request(i, client)` with `clients` concurrent clients.
pub(crate) async fn drive(
    client: &reqwest::Client,
    base: &str,
    count: usize,
    clients: usize,
    request: fn(usize, usize) -> (&'static str, Value),
) -> anyhow::Result<Load> {
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..clients {
        let (client, base, next, latencies) = (
            client.clone(),
            base.to_owned(),
            next.clone(),
            latencies.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let sent = Instant::now();
                post(&client, &base, request(i, worker)).await?;
                latencies.lock().await.push(sent.elapsed());
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().await.clone();
    Ok(Load {
        per_s: count as f64 / elapsed.as_secs_f64(),
        latency_ms: (
            percentile_ms(&mut latencies, 50),
            percentile_ms(&mut latencies, 99),
        ),
    })
}

/// Posts one command; its answer (201 expected).
pub(crate) async fn post(
    client: &reqwest::Client,
    base: &str,
    (path, body): (&'static str, Value),
) -> anyhow::Result<Value> {
    let response = client
        .post(format!("{base}/api/v1/{path}"))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    anyhow::ensure!(
        status.as_u16() == 201,
        "{path} failed with {status}: {answer}"
    );
    Ok(answer)
}

/// Materials per client, set by `run` before the load starts (requests are plain functions).
static MATERIALS_PER_CLIENT: AtomicUsize = AtomicUsize::new(1);

fn receipt(i: usize, worker: usize) -> (&'static str, Value) {
    let per_client = MATERIALS_PER_CLIENT.load(Ordering::Relaxed).max(1);
    let material = worker * per_client + i % per_client;
    (
        "goods-receipts",
        json!({"purchase_order": format!("PO-{material}"), "line": 10, "quantity": "2",
               "posting_date": format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28)}),
    )
}

fn journal_entry(i: usize, _: usize) -> (&'static str, Value) {
    ("journal-entries", entry_body(i))
}

/// Sends one set-up request; fails naming it unless it succeeded.
pub(crate) async fn setup_request(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> anyhow::Result<()> {
    let response = client
        .request(method, format!("{base}/api/v1/{path}"))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "setup {path} {body} failed with {status}: {}",
        response.text().await?
    );
    Ok(())
}

/// What the goods-flow benchmarks start from: `accounts` (number, type), the fiscal year 2026,
/// the account determination's `defaults`, plant P1 with storage location S1, vendor V1.
pub(crate) async fn setup_basics(
    client: &reqwest::Client,
    base: &str,
    accounts: &[(&str, &str)],
    defaults: Value,
) -> anyhow::Result<()> {
    use reqwest::Method;
    for (number, kind) in accounts {
        let account = json!({"number": number, "name": number, "type": kind, "currency": "EUR"});
        setup_request(client, base, Method::POST, "accounts", account).await?;
    }
    for (method, path, body) in [
        (Method::POST, "fiscal-years", json!({"year": 2026})),
        (
            Method::PUT,
            "account-determination/materials",
            json!({ "defaults": defaults }),
        ),
        (
            Method::POST,
            "plants",
            json!({"code": "P1", "name": "Plant", "currency": "EUR"}),
        ),
        (
            Method::POST,
            "plants/P1/storage-locations",
            json!({"code": "S1", "name": "Store"}),
        ),
        (
            Method::POST,
            "vendors",
            json!({"number": "V1", "name": "Vendor", "currency": "EUR",
                   "payment_terms": {"net_days": 30}}),
        ),
    ] {
        setup_request(client, base, method, path, body).await?;
    }
    Ok(())
}

async fn setup(client: &reqwest::Client, base: &str, materials: usize) -> anyhow::Result<()> {
    setup_basics(
        client,
        base,
        &[
            ("1000", "asset"),
            ("1300", "asset"),
            ("2100", "liability"),
            ("4000", "revenue"),
        ],
        json!({"inventory": "1300", "gr_ir_clearing": "2100"}),
    )
    .await?;
    let post = |path: &'static str, body: Value| {
        setup_request(client, base, reqwest::Method::POST, path, body)
    };
    for m in 0..materials {
        post(
            "materials",
            json!({"number": format!("M-{m}"), "description": "Part", "base_unit": "PC",
                   "type": "raw", "valuation_class": "3000",
                   "plants": [{"plant": "P1", "valuation_method": "moving_average"}]}),
        )
        .await?;
        post(
            "purchase-orders",
            json!({"number": format!("PO-{m}"), "vendor": "V1", "order_date": "2026-01-01",
                   "lines": [{"material": format!("M-{m}"), "plant": "P1", "storage_location": "S1",
                              "quantity": "100000000", "unit_price": "1.25",
                              "delivery_date": "2026-01-02"}]}),
        )
        .await?;
    }
    Ok(())
}

pub async fn run(args: ReceiptBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.receipts > 0 && args.clients > 0 && args.materials_per_client > 0,
        "--receipts, --clients and --materials-per-client must be at least 1"
    );
    MATERIALS_PER_CLIENT.store(args.materials_per_client, Ordering::Relaxed);
    let (database_url, drop_database) = match &args.postgres_url {
        Some(server) => {
            let (url, drop) = fresh_postgres_database(server).await?;
            (Some(url), Some(drop))
        }
        None => (None, None),
    };
    let backend = if database_url.is_some() {
        "postgres"
    } else {
        "sqlite (embedded)"
    };
    let result = measure(&args, database_url, backend).await;
    if let Some(drop) = drop_database {
        drop.await;
    }
    result
}

async fn measure(
    args: &ReceiptBenchArgs,
    database_url: Option<String>,
    backend: &str,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::embedded(dir.path().to_path_buf(), "127.0.0.1:0".parse()?);
    config.database_url = database_url;
    config.pg = None;
    super::bench_identity(&mut config);
    let running = start(config).await?;
    let base = format!("http://{}", running.addr);
    let client = super::bench_client(&base, args.clients * 4).await?;
    let materials = args.clients * args.materials_per_client;
    println!(
        "tributary bench-receipts on {backend}: {} receipts and {} journal entries, {} clients, {materials} materials",
        args.receipts, args.receipts, args.clients
    );
    setup(&client, &base, materials)
        .await
        .context("while setting up master data")?;
    running.wait_for_reactors(FRESHNESS_WAIT_MAX).await?;

    progress!("{backend}: goods receipts over HTTP, GL postings flowing ... ");
    let receipts = drive(&client, &base, args.receipts, args.clients, receipt).await?;
    let posted = Instant::now();
    running.wait_for_reactors(FRESHNESS_WAIT_MAX * 4).await?;
    println!(
        "done; the last GL posting {:.1} s after the last receipt",
        posted.elapsed().as_secs_f64()
    );
    running.wait_for_pipelines(FRESHNESS_WAIT_MAX).await?;

    progress!("{backend}: journal entries over HTTP (same process, same database) ... ");
    let entries = drive(&client, &base, args.receipts, args.clients, journal_entry).await?;
    println!("done");
    running.wait_for_pipelines(FRESHNESS_WAIT_MAX).await?;

    progress!(
        "{backend}: {} receipts one at a time, each probed until its stock movement and its GL posting show in SQL ... ",
        args.probes
    );
    let (mut stock_fresh, mut gl_fresh) = (Vec::new(), Vec::new());
    for k in 0..args.probes {
        let answer = post(&client, &base, receipt(args.receipts + k, 0)).await?;
        let accepted = Instant::now();
        let id = answer["movements"][0]["movement_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let movement =
            format!("SELECT count(*) AS n FROM stock_movements WHERE movement_id = '{id}'");
        let posting =
            format!("SELECT count(*) AS n FROM gl_journal_lines WHERE reference = 'MM {id}'");
        let (in_stock, in_gl) = tokio::join!(
            wait_counted(&client, &base, movement),
            wait_counted(&client, &base, posting)
        );
        stock_fresh.extend(in_stock.map(|at| at - accepted));
        gl_fresh.extend(in_gl.map(|at| at - accepted));
    }
    println!("done");
    running.stop().await;

    println!();
    println!(
        "{:<26} {:>9} {:>9} {:>9}",
        "over HTTP", "per s", "p50 ms", "p99 ms"
    );
    for (label, load) in [("goods receipts", &receipts), ("journal entries", &entries)] {
        println!(
            "{:<26} {:>9.0} {:>9.1} {:>9.1}",
            label, load.per_s, load.latency_ms.0, load.latency_ms.1
        );
    }
    println!(
        "ratio receipts/s over journal entries/s: {:.2} (a receipt appends to the order and the stock, and causes a posting)",
        receipts.per_s / entries.per_s
    );
    println!(
        "receipt → stock visible in SQL: p50 {:.1} ms, p99 {:.1} ms ({} probes)",
        percentile_ms(&mut stock_fresh, 50),
        percentile_ms(&mut stock_fresh, 99),
        stock_fresh.len()
    );
    println!(
        "receipt → GL posting visible in SQL: p50 {:.1} ms, p99 {:.1} ms ({} probes)",
        percentile_ms(&mut gl_fresh, 50),
        percentile_ms(&mut gl_fresh, 99),
        gl_fresh.len()
    );
    Ok(())
}
