//! `tributary bench-sales`: the order-to-cash chain over HTTP with finance's postings flowing
//! (against journal entries over HTTP in the same run), the availability check in process and
//! over gRPC over a large order book, and the receivables aging over many open items against
//! DuckDB on the same Parquet files.
//!
//! ```text
//!  o2c    one process (api, pipelines, reactors) on PostgreSQL (--postgres-url) or SQLite;
//!         each client runs order → delivery → invoice → payment for a customer and material
//!         of its own; then as many journal entries over HTTP
//!  atp    a generated store: --materials stocks and open purchase orders, --order-lines
//!         confirmed order lines (their demand on sales.material_demand, 10 lines an order);
//!         the same random checks through materials in process and over gRPC (loopback)
//!  aging  the same store with --open-items customer invoices (a fifth of them paid in part),
//!         the lake built by the pipelines; the aging over the wire and in DuckDB
//! ```
// Floats here are timings and ratios for display, never money.
#![allow(clippy::float_arithmetic)]

use super::queries::{against_duckdb, compact_all};
use super::receipts::post;
use super::{FRESHNESS_WAIT_MAX, entry_body, fresh_postgres_database, percentile_ms};
use crate::{Config, Roles, start};
use anyhow::Context;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_kernel::event::{DomainEvent, decode_payload, encode};
use tributary_kernel::master::CompanyCode;
use tributary_kernel::store::{AppendBatch, EventStore, StreamWrite};

#[derive(clap::Args, Debug, Clone)]
pub struct SalesBenchArgs {
    /// What to measure, comma-separated: o2c, atp, aging.
    #[arg(long, value_delimiter = ',', default_value = "o2c,atp,aging")]
    pub parts: Vec<String>,
    /// Order-to-cash chains over HTTP (four documents each: order, delivery, invoice, payment).
    #[arg(long, default_value_t = 500)]
    pub chains: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Materials of the availability check's data.
    #[arg(long, default_value_t = 10_000)]
    pub materials: usize,
    /// Confirmed open sales order lines of the availability check's data.
    #[arg(long, default_value_t = 1_000_000)]
    pub order_lines: usize,
    /// Availability checks timed per path (in process, over gRPC).
    #[arg(long, default_value_t = 10_000)]
    pub checks: usize,
    /// Open customer invoices of the aging's data.
    #[arg(long, default_value_t = 1_000_000)]
    pub open_items: usize,
    /// Timed runs of each aging query per engine.
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Untimed runs of each aging query per engine before the timed ones.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Python with the duckdb package for the aging's baseline.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// A PostgreSQL server URL; fresh databases are created and dropped on it. Without it the
    /// embedded SQLite store is measured.
    #[arg(long, env = "TRIBUTARY_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
}

pub async fn run(args: SalesBenchArgs) -> anyhow::Result<()> {
    for part in &args.parts {
        anyhow::ensure!(
            ["o2c", "atp", "aging"].contains(&part.as_str()),
            "unknown part {part:?}: o2c, atp, aging"
        );
    }
    anyhow::ensure!(
        args.chains > 0 && args.clients > 0 && args.materials > 0 && args.checks > 0,
        "--chains, --clients, --materials and --checks must be at least 1"
    );
    let wants = |part: &str| args.parts.iter().any(|p| p == part);
    if wants("o2c") {
        with_database(&args.postgres_url, |url, backend| {
            order_to_cash(&args, url, backend)
        })
        .await?;
    }
    if wants("atp") || wants("aging") {
        with_database(&args.postgres_url, |url, backend| {
            checks_and_aging(&args, url, backend, (wants("atp"), wants("aging")))
        })
        .await?;
    }
    Ok(())
}

/// Runs `measure` on a fresh PostgreSQL database (dropped afterwards) or the embedded SQLite.
/// Measures on a fresh PostgreSQL database of `postgres_url` (dropped afterwards), or on the
/// embedded SQLite store.
pub(super) async fn with_database<F, Fut>(
    postgres_url: &Option<String>,
    measure: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Option<String>, &'static str) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    match postgres_url {
        Some(server) => {
            let (url, drop) = fresh_postgres_database(server).await?;
            let result = measure(Some(url), "postgres").await;
            drop.await;
            result
        }
        None => measure(None, "sqlite (embedded)").await,
    }
}

// ----- order to cash over HTTP ----------------------------------------------------------------

async fn o2c_setup(client: &reqwest::Client, base: &str, clients: usize) -> anyhow::Result<()> {
    super::receipts::setup_basics(
        client,
        base,
        &[
            ("1000", "asset"),
            ("1200", "asset"),
            ("1300", "asset"),
            ("2100", "liability"),
            ("2300", "liability"),
            ("4000", "revenue"),
            ("4100", "revenue"),
            ("4200", "revenue"),
            ("5100", "expense"),
        ],
        json!({"inventory": "1300", "gr_ir_clearing": "2100", "bank": "1000",
               "cost_of_goods_sold": "5100", "receivable": "1200", "revenue": "4000",
               "sales_returns": "4100", "sales_discount": "4200", "tax_payable": "2300"}),
    )
    .await?;
    let post = |path: &'static str, body: Value| {
        super::receipts::setup_request(client, base, reqwest::Method::POST, path, body)
    };
    post(
        "tax-rates",
        json!({"customer_class": "full", "material_class": "full", "valid_from": "2020-01-01",
               "percent": "19"}),
    )
    .await?;
    for w in 0..clients {
        post(
            "materials",
            json!({"number": format!("M{w}"), "description": "Part", "base_unit": "PC",
                   "type": "trading", "group": "PARTS", "valuation_class": "3100",
                   "plants": [{"plant": "P1", "valuation_method": "moving_average"}]}),
        )
        .await?;
        post(
            "purchase-orders",
            json!({"number": format!("PO{w}"), "vendor": "V1", "order_date": "2026-01-01",
                   "lines": [{"material": format!("M{w}"), "plant": "P1", "storage_location": "S1",
                              "quantity": "100000000", "unit_price": "0.50",
                              "delivery_date": "2026-03-01"}]}),
        )
        .await?;
        post(
            "goods-receipts",
            json!({"purchase_order": format!("PO{w}"), "line": 10, "quantity": "100000000",
                   "posting_date": "2026-03-01"}),
        )
        .await?;
        post(
            "prices",
            json!({"material": format!("M{w}"), "currency": "EUR", "valid_from": "2026-01-01",
                   "unit_price": "1.00"}),
        )
        .await?;
        post(
            "customers",
            json!({"number": format!("C{w}"), "name": "Customer", "currency": "EUR",
                   "addresses": [{"kind": "billing", "street": "1 Market St",
                                  "postal_code": "10115", "city": "Berlin", "country": "DE"}],
                   "payment_terms": {"discount_percent": "2", "discount_days": 10, "net_days": 30},
                   "credit_limit": "1000000000", "tax_classification": "full"}),
        )
        .await?;
    }
    Ok(())
}

/// The four documents of chain `i` of client `w`: 10 pieces at 1.00 and 19 % tax (11.90),
/// delivered and invoiced on 10 March, paid on the 15th less 2 % (11.66 and 0.24 discount).
fn chain(w: usize, i: usize) -> [(&'static str, Value); 4] {
    let (order, invoice) = (format!("SO{w}-{i}"), format!("IN{w}-{i}"));
    [
        (
            "sales-orders",
            json!({"number": order, "customer": format!("C{w}"), "document_date": "2026-03-02",
                   "lines": [{"line": 10, "material": format!("M{w}"), "quantity": "10",
                              "plant": "P1", "requested_date": "2026-03-10"}]}),
        ),
        (
            "deliveries",
            json!({"number": format!("DL{w}-{i}"), "order": order, "posting_date": "2026-03-10",
                   "storage_location": "S1", "lines": [{"line": 10, "quantity": "10"}]}),
        ),
        (
            "invoices",
            json!({"number": invoice, "order": order, "posting_date": "2026-03-10"}),
        ),
        (
            "customer-payments",
            json!({"number": format!("PY{w}-{i}"), "customer": format!("C{w}"),
                   "payment_date": "2026-03-15", "amount": "11.66",
                   "invoices": [{"number": invoice}]}),
        ),
    ]
}

const DOCUMENTS: [&str; 4] = ["order", "delivery", "invoice", "payment"];

/// Latencies of each document kind, and the elapsed time of the whole load.
struct ChainLoad {
    latencies: [Vec<Duration>; 4],
    elapsed: Duration,
}

async fn drive_chains(
    client: &reqwest::Client,
    base: &str,
    chains: usize,
    clients: usize,
) -> anyhow::Result<ChainLoad> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..clients {
        let (client, base) = (client.clone(), base.to_owned());
        // Chains w, w + clients, w + 2 clients, …: client w's customer and material.
        let mine: Vec<usize> = (w..chains).step_by(clients).collect();
        workers.push(tokio::spawn(async move {
            let mut latencies: [Vec<Duration>; 4] = Default::default();
            for i in mine {
                for (kind, request) in chain(w, i).into_iter().enumerate() {
                    let sent = Instant::now();
                    post(&client, &base, request).await?;
                    latencies[kind].push(sent.elapsed());
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies: [Vec<Duration>; 4] = Default::default();
    for worker in workers {
        for (all, mine) in latencies.iter_mut().zip(worker.await??) {
            all.extend(mine);
        }
    }
    Ok(ChainLoad {
        latencies,
        elapsed: started.elapsed(),
    })
}

async fn order_to_cash(
    args: &SalesBenchArgs,
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
    let clients = args.clients.min(args.chains);
    println!(
        "tributary bench-sales, order to cash on {backend}: {} chains of 4 documents, {clients} clients (one customer and material each)",
        args.chains
    );
    o2c_setup(&client, &base, clients)
        .await
        .context("while setting up master data")?;
    running.wait_for_reactors(FRESHNESS_WAIT_MAX).await?;

    progress!("{backend}: order, delivery, invoice, payment over HTTP, GL postings flowing ... ");
    let load = drive_chains(&client, &base, args.chains, clients).await?;
    let posted = Instant::now();
    running.wait_for_reactors(FRESHNESS_WAIT_MAX * 4).await?;
    println!(
        "done; the last GL posting {:.1} s after the last payment",
        posted.elapsed().as_secs_f64()
    );
    running.wait_for_pipelines(FRESHNESS_WAIT_MAX).await?;
    // Everything posted and in the lake: the receivables account equals the open items.
    let (status, reconciliation) = sql(&client, &base, "SELECT * FROM ar_reconciliation").await?;
    anyhow::ensure!(
        status == 200 && reconciliation["rows"] == json!([]),
        "the receivables do not reconcile: {reconciliation}"
    );

    let documents = 4 * args.chains;
    progress!(
        "{backend}: {documents} journal entries over HTTP (same process, same database) ... "
    );
    let entries = super::receipts::drive(&client, &base, documents, clients, |i, _| {
        ("journal-entries", entry_body(i))
    })
    .await?;
    println!("done");
    running.stop().await;

    let per_s = documents as f64 / load.elapsed.as_secs_f64();
    println!();
    println!(
        "{:<26} {:>9} {:>9} {:>9}",
        "over HTTP", "per s", "p50 ms", "p99 ms"
    );
    println!(
        "{:<26} {:>9.0} {:>9} {:>9}",
        "order-to-cash documents", per_s, "", ""
    );
    let mut all: Vec<Duration> = load.latencies.iter().flatten().copied().collect();
    for (kind, mut latencies) in DOCUMENTS.iter().zip(load.latencies) {
        println!(
            "{:<26} {:>9} {:>9.1} {:>9.1}",
            format!("  {kind}"),
            "",
            percentile_ms(&mut latencies, 50),
            percentile_ms(&mut latencies, 99)
        );
    }
    println!(
        "{:<26} {:>9} {:>9.1} {:>9.1}",
        "  any document",
        "",
        percentile_ms(&mut all, 50),
        percentile_ms(&mut all, 99)
    );
    println!(
        "{:<26} {:>9.0} {:>9.1} {:>9.1}",
        "journal entries", entries.per_s, entries.latency_ms.0, entries.latency_ms.1
    );
    println!(
        "ratio documents/s over journal entries/s: {:.2} (an order checks availability and credit; a delivery appends to order, stock and demand; each causes postings); receivables reconcile with the ledger",
        per_s / entries.per_s
    );
    Ok(())
}

async fn sql(client: &reqwest::Client, base: &str, sql: &str) -> anyhow::Result<(u16, Value)> {
    let response = client
        .post(format!("{base}/api/v1/sql"))
        .json(&json!({ "sql": sql }))
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

// ----- generated data for the availability check and the aging ----------------------------

/// A small deterministic generator (xorshift), so that every run checks the same lines.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub(super) use super::COMPANY;
const PLANT: &str = "P1";

fn material(m: usize) -> String {
    format!("M{m:06}")
}

fn day(first: NaiveDate, offset: u64) -> NaiveDate {
    first + chrono::Days::new(offset)
}

/// An event of `E` from its payload (checked against the type: a wrong field fails here).
pub(super) fn event<E: DomainEvent>(event_type: &str, payload: Value) -> anyhow::Result<E> {
    decode_payload::<E>(event_type, payload)
        .map_err(|error| anyhow::anyhow!("generated {event_type}: {error}"))
}

pub(super) fn write<E: DomainEvent>(aggregate_type: &str, id: String, events: &[E]) -> StreamWrite {
    StreamWrite {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: id,
        expected_version: 0,
        events: events.iter().map(encode).collect(),
    }
}

/// Appends `writes` in batches of at most the store's largest append.
pub(super) async fn append_all(
    store: &EventStore,
    context: &str,
    writes: Vec<StreamWrite>,
) -> anyhow::Result<usize> {
    let (mut batch, mut events, mut total) = (Vec::new(), 0, 0);
    let limit = tributary_kernel::store::APPEND_EVENTS_MAX;
    let flush = |batch: Vec<StreamWrite>| async {
        store
            .append(AppendBatch {
                context: context.into(),
                writes: batch,
                reads: vec![],
                metadata: Default::default(),
                idempotency: None,
                time: chrono::Utc::now(),
            })
            .await
            .context("while appending generated events")
    };
    for write in writes {
        if events + write.events.len() > limit && !batch.is_empty() {
            flush(std::mem::take(&mut batch)).await?;
            events = 0;
        }
        events += write.events.len();
        total += write.events.len();
        batch.push(write);
    }
    if !batch.is_empty() {
        flush(batch).await?;
    }
    Ok(total)
}

/// A goods receipt of `quantity` (valued at 1.00 each) that puts a material in stock.
pub(super) fn stocked(
    material: &str,
    plant: &str,
    quantity: u64,
    date: NaiveDate,
) -> anyhow::Result<StreamWrite> {
    let stocked: tributary_materials::domain::StockEvent = event(
        "GoodsMovementPosted",
        json!({"company": COMPANY, "material": material, "plant": plant,
               "valuation_class": "3100",
               "movements": [{"movement_id": uuid::Uuid::now_v7(), "posting_date": date,
                              "location": "S1", "kind": {"type": "receipt"},
                              "quantity": quantity.to_string(), "value": quantity.to_string(),
                              "currency": "EUR",
                              "stock_quantity_after": quantity.to_string(),
                              "stock_value_after": quantity.to_string(),
                              "moving_average_after": "1"}]}),
    )?;
    Ok(write(
        "materials.stock",
        format!("{COMPANY}/{material}/{plant}"),
        &[stocked],
    ))
}

/// A purchase order `number` of one open line of `quantity` due on `due`.
pub(super) fn ordered(
    number: &str,
    material: &str,
    plant: &str,
    quantity: u64,
    due: NaiveDate,
) -> anyhow::Result<StreamWrite> {
    let ordered: tributary_materials::domain::PurchaseOrderEvent = event(
        "PurchaseOrderCreated",
        json!({"company": COMPANY, "number": number, "vendor": "V1",
               "currency": "EUR", "order_date": "2026-02-01", "over_delivery_percent": "0",
               "lines": [{"line": 10, "material": material, "plant": plant,
                          "location": "S1", "quantity": quantity.to_string(),
                          "unit": "PC", "factor": "1", "unit_price": "1.00",
                          "delivery_date": due}]}),
    )?;
    Ok(write(
        "materials.purchase_order",
        format!("{COMPANY}/{number}"),
        &[ordered],
    ))
}

/// Each material's demand stream (by index, named by `material`) in `plant`: its events in one
/// write.
pub(super) fn demand_writes(
    demand: Vec<Vec<tributary_sales::demand::MaterialDemandEvent>>,
    plant: &str,
    material: fn(usize) -> String,
) -> Vec<StreamWrite> {
    demand
        .into_iter()
        .enumerate()
        .filter(|(_, events)| !events.is_empty())
        .map(|(m, events)| {
            write(
                "sales.material_demand",
                tributary_sales::demand::demand_id(COMPANY, &material(m), plant),
                &events,
            )
        })
        .collect()
}

/// Stock and one open purchase order line per material; `order_lines` confirmed order lines
/// spread over the materials (10 lines an order), each with a schedule line in March to May.
async fn generate_availability(
    store: &EventStore,
    materials: usize,
    order_lines: usize,
) -> anyhow::Result<usize> {
    use tributary_sales::demand::MaterialDemandEvent;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let first = NaiveDate::from_ymd_opt(2026, 3, 1).context("date")?;
    let mut supply = Vec::with_capacity(2 * materials);
    for m in 0..materials {
        supply.push(stocked(&material(m), PLANT, 500 + rng.below(1_500), first)?);
        let due = day(first, 10 + rng.below(60));
        supply.push(ordered(
            &format!("PO{m:06}"),
            &material(m),
            PLANT,
            200 + rng.below(800),
            due,
        )?);
    }
    let mut total = append_all(store, "materials", supply).await?;
    // Each material's demand stream: its lines, one event each, in one write.
    let mut demand: Vec<Vec<MaterialDemandEvent>> = vec![Vec::new(); materials];
    for k in 0..order_lines {
        let changed: MaterialDemandEvent = event(
            "DemandChanged",
            json!({"order": format!("SO{:07}", k / 10), "line": 10 * (1 + k % 10),
                   "schedule": [{"date": day(first, rng.below(90)),
                                 "quantity": (1 + rng.below(20)).to_string()}]}),
        )?;
        demand[k % materials].push(changed);
    }
    total += append_all(store, "sales", demand_writes(demand, PLANT, material)).await?;
    Ok(total)
}

/// `open_items` customer invoices over a year to 30 June 2026 for 10,000 customers (fewer when
/// there are fewer items), net 30; every fifth paid in part; a payment on account for every
/// hundredth.
async fn generate_receivables(store: &EventStore, open_items: usize) -> anyhow::Result<usize> {
    use tributary_sales::billing::{BillingEvent, PaymentEvent};
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let first = NaiveDate::from_ymd_opt(2025, 7, 1).context("date")?;
    let customers = open_items.clamp(1, 10_000) as u64;
    let mut writes = Vec::with_capacity(open_items);
    for n in 0..open_items {
        let posted = day(first, rng.below(365));
        let cents = 1_000 + rng.below(999_000);
        let gross = Decimal::new(cents as i64, 2);
        let number = format!("{:08}", 90_000_000 + n);
        let mut events: Vec<BillingEvent> = vec![event(
            "BillingDocumentPosted",
            json!({"company": COMPANY, "number": number, "kind": "invoice",
                   "customer": format!("C{:05}", rng.below(customers)), "currency": "EUR",
                   "order": format!("SO{n:07}"), "invoice": null, "posting_date": posted,
                   "due_date": posted + chrono::Days::new(30),
                   "discount_date": posted + chrono::Days::new(10), "discount_percent": "0",
                   "lines": [{"line": 10, "material": material(n % 1_000), "material_group": "PARTS",
                              "quantity": "1", "net_value": gross, "tax_percent": "0",
                              "tax": "0.00", "cost": "0.00"}],
                   "net_value": gross, "tax": "0.00", "gross_value": gross}),
        )?];
        if n % 5 == 0 {
            events.push(event(
                "ItemCleared",
                json!({"by": format!("PY{n:07}"), "kind": "payment",
                       "date": posted + chrono::Days::new(20),
                       "amount": (gross / Decimal::TWO).round_dp(2), "discount": "0"}),
            )?);
        }
        writes.push(write(
            "sales.invoice",
            format!("{COMPANY}/{number}"),
            &events,
        ));
        // Every hundredth: a payment no invoice took, on account (a negative open item).
        if n % 100 == 0 {
            let payment = format!("PA{n:07}");
            let received: PaymentEvent = event(
                "PaymentReceived",
                json!({"company": COMPANY, "number": payment,
                       "customer": format!("C{:05}", rng.below(customers)), "currency": "EUR",
                       "date": posted, "amount": "100.00", "items": [], "on_account": "100.00"}),
            )?;
            writes.push(write(
                "sales.payment",
                format!("{COMPANY}/{payment}"),
                &[received],
            ));
        }
    }
    append_all(store, "sales", writes).await
}

// ----- the availability check, in process and over gRPC, and the aging -------------------

async fn checks_and_aging(
    args: &SalesBenchArgs,
    database_url: Option<String>,
    backend: &str,
    (atp, aging): (bool, bool),
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::embedded(dir.path().to_path_buf(), "127.0.0.1:0".parse()?);
    config.database_url = database_url;
    config.grpc_addr = Some("127.0.0.1:0".parse()?);
    // Generated first, then the lake built once: the pipelines start only for the aging.
    config.roles = Roles::parse("api").map_err(anyhow::Error::msg)?;
    config.pg = None;
    config.compaction = None;
    super::bench_identity(&mut config);
    let running = start(config.clone()).await?;
    let store = running.store.clone();
    let started = Instant::now();
    let mut events = 0;
    if atp {
        events += generate_availability(&store, args.materials, args.order_lines).await?;
    }
    if aging {
        events += generate_receivables(&store, args.open_items).await?;
    }
    println!(
        "tributary bench-sales on {backend}: {events} events generated in {:.1} s ({} materials, {} open order lines, {} open items)",
        started.elapsed().as_secs_f64(),
        if atp { args.materials } else { 0 },
        if atp { args.order_lines } else { 0 },
        if aging { args.open_items } else { 0 },
    );
    if atp {
        let grpc = running.grpc_addr.context("no gRPC address")?;
        availability_checks(args, &store, &format!("http://{grpc}")).await?;
    }
    running.stop().await;
    if aging {
        let mut config = config;
        config.roles = Roles::parse("pipelines,query").map_err(anyhow::Error::msg)?;
        config.grpc_addr = None;
        let mut wire = tributary_lakehouse::wire::WireOptions::embedded();
        wire.addr = "127.0.0.1:0".parse()?;
        config.pg = Some(wire);
        config.query_limits = tributary_lakehouse::QueryLimits {
            timeout_ms: 600_000,
            rows_max: 10_000_000,
            answer_bytes_max: usize::MAX,
            ..Default::default()
        };
        receivables_aging(args, config).await?;
    }
    Ok(())
}

async fn availability_checks(
    args: &SalesBenchArgs,
    store: &EventStore,
    grpc_url: &str,
) -> anyhow::Result<()> {
    use tributary_sales::commands::{OrderContext, check_availability};
    let indexes = tributary_sales::demand::SalesIndexes::new(store.clone());
    let local = tributary_materials::availability::local(store.clone());
    let remote: Arc<dyn tributary_kernel::availability::Availability> = Arc::new(
        tributary_materials::grpc::RemoteAvailability::new(grpc_url).map_err(anyhow::Error::msg)?,
    );
    let company = CompanyCode::parse(COMPANY).map_err(anyhow::Error::msg)?;
    let today = NaiveDate::from_ymd_opt(2026, 3, 1).context("date")?;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let asked: Vec<(String, NaiveDate, Decimal)> = (0..args.checks)
        .map(|_| {
            (
                material(rng.below(args.materials as u64) as usize),
                day(today, rng.below(90)),
                Decimal::from(1 + rng.below(500)),
            )
        })
        .collect();
    let mut answers = Vec::new();
    let mut rows = Vec::new();
    for (path, availability) in [("in process", local), ("over gRPC", remote)] {
        let context = OrderContext {
            store,
            indexes: &indexes,
            availability: availability.as_ref(),
        };
        // The first check catches the indexes up with the store (the demand index once for
        // both paths; materials' supply in this process, and in the serving one over gRPC).
        // A call over gRPC gives up after 10 s; the serving index keeps what it applied, so
        // the first check is repeated until its catch-up is done.
        let started = Instant::now();
        let mut attempts = 0;
        while let Err(error) = check_availability(
            &context,
            &company,
            (&material(0), PLANT),
            today,
            today,
            Decimal::ONE,
        )
        .await
        {
            attempts += 1;
            anyhow::ensure!(attempts < 60, "the first check {path} failed: {error}");
        }
        let caught_up = started.elapsed();
        let mut samples = Vec::with_capacity(asked.len());
        let mut confirmed = Vec::with_capacity(asked.len());
        let started = Instant::now();
        for (material, requested, quantity) in &asked {
            let sent = Instant::now();
            let confirmation = check_availability(
                &context,
                &company,
                (material, PLANT),
                today,
                *requested,
                *quantity,
            )
            .await?;
            samples.push(sent.elapsed());
            confirmed.push(confirmation.schedule);
        }
        let per_s = asked.len() as f64 / started.elapsed().as_secs_f64();
        rows.push((path, per_s, samples, caught_up));
        answers.push(confirmed);
    }
    anyhow::ensure!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "the availability check answered differently in process and over gRPC"
    );
    let full = answers[0]
        .iter()
        .zip(&asked)
        .filter(|(schedule, (_, requested, quantity))| {
            schedule.len() == 1
                && schedule[0].date == *requested
                && schedule[0].quantity == *quantity
        })
        .count();
    println!();
    println!(
        "availability check of one line: {} materials, {} confirmed open order lines, {} checks per path",
        args.materials, args.order_lines, args.checks
    );
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>16}",
        "path", "checks/s", "p50 ms", "p99 ms", "first (catch-up)"
    );
    let mut p50s = Vec::new();
    for (path, per_s, mut samples, caught_up) in rows {
        let p50 = percentile_ms(&mut samples, 50);
        p50s.push(p50);
        println!(
            "{:<12} {:>9.0} {:>9.3} {:>9.3} {:>14.1} s",
            path,
            per_s,
            p50,
            percentile_ms(&mut samples, 99),
            caught_up.as_secs_f64()
        );
    }
    println!(
        "both paths gave the same {} confirmations ({full} in full on the requested date); p50 over gRPC / in process: {:.1}",
        args.checks,
        p50s[1] / p50s[0]
    );
    Ok(())
}

/// The aging by customer and bucket as of 30 June 2026 (GET /ar-aging's query, summed per
/// bucket), and the `ar_aging` view (as of today), over the wire and in DuckDB.
async fn receivables_aging(args: &SalesBenchArgs, config: Config) -> anyhow::Result<()> {
    use sqlx::Connection;
    let running = start(config).await?;
    let started = Instant::now();
    running
        .wait_for_pipelines(Duration::from_secs(3_600))
        .await
        .context("while building the lake")?;
    println!(
        "lake built from the store in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    compact_all(&running, false).await?;
    let addr = running.pg_addr.context("no SQL endpoint")?;
    let options = tributary_lakehouse::wire::connection_string(addr, "admin")
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .password(super::BENCH_ADMIN_PASSWORD);
    let mut connection = sqlx::PgConnection::connect_with(&options).await?;
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM ar_open_items")
        .fetch_one(&mut connection)
        .await?;
    let read = include_str!("../../../sales/reads/ar_aging.sql")
        .replace("$1", &format!("'{COMPANY}'"))
        .replace("$2", "DATE '2026-06-30'");
    let queries = vec![
        (
            "Aging by customer and bucket, 30 June".to_owned(),
            format!(
                "SELECT customer, bucket, count(*) AS items, sum(open_amount) AS open_amount \
                 FROM ({read}) AS aged GROUP BY customer, bucket ORDER BY customer, bucket"
            ),
        ),
        (
            "Aging view (as of today)".to_owned(),
            "SELECT * FROM ar_aging ORDER BY customer".to_owned(),
        ),
    ];
    println!(
        "receivables aging: {items} open items, {} runs per query after {} warm-up",
        args.iterations, args.warmup
    );
    let worst = against_duckdb(
        connection,
        &running,
        &queries,
        &args.python,
        (args.warmup, args.iterations),
    )
    .await?
    .into_iter()
    .fold(0.0, f64::max);
    running.stop().await;
    println!("ratio = Tributary p50 / DuckDB p50; worst ratio {worst:.2}");
    Ok(())
}
