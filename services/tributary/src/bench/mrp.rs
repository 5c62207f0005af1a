//! `tributary bench-mrp`: MRP over a generated plant, full runs and net change.
//!
//! ```text
//!  generated  --materials in --levels (end items, assemblies, …, purchased parts); every
//!             material above the last level a bill of 2 to 4 components from the levels below
//!             it (shared: each is used by several parents); planning data, stock, open
//!             purchase orders for a fifth of the purchased parts; --demand-lines confirmed
//!             sales order lines of the end items over the horizon
//!  settle     the context's pipelines read the generated events (timed and printed apart)
//!  full run   POST /mrp-runs over --buckets weeks, timed to its completion, twice (the
//!             planning worker reads the events from the first planning data on, while they
//!             are generated; the first run waits for what it has not read yet)
//!  net change one sales order line's confirmed quantity changed (as sales appends it), timed
//!             until the plant's new plan version is committed to the lake, --changes times
//!  memory     the process's resident set before, after the runs and after the changes
//! ```
//!
//! The generated events go straight into the store (the commands' checks are not measured
//! here); the process runs the identity and production contexts only, so the other contexts'
//! pipelines do not compete with the planning worker.
// Floats here are timings for display, never quantities.
#![allow(clippy::float_arithmetic)]

use super::sales::{
    COMPANY, Rng, append_all, demand_writes, event, ordered, stocked, with_database, write,
};
use super::{bench_client, bench_identity, percentile_ms};
use crate::{Config, Roles, start};
use anyhow::Context;
use chrono::NaiveDate;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tributary_kernel::store::{EventStore, StreamWrite};

const PLANT: &str = "P1";

#[derive(clap::Args, Debug, Clone)]
pub struct MrpBenchArgs {
    /// Materials of the generated plant.
    #[arg(long, default_value_t = 10_000)]
    pub materials: usize,
    /// Levels of the bills of material (end items first, purchased parts last).
    #[arg(long, default_value_t = 5)]
    pub levels: usize,
    /// Weekly buckets planned.
    #[arg(long, default_value_t = 52)]
    pub buckets: u32,
    /// Confirmed open sales order lines of the end items.
    #[arg(long, default_value_t = 100_000)]
    pub demand_lines: usize,
    /// Net changes timed.
    #[arg(long, default_value_t = 200)]
    pub changes: usize,
    /// A PostgreSQL server URL; a fresh database is created and dropped on it. Without it the
    /// embedded SQLite store is measured.
    #[arg(long, env = "TRIBUTARY_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
}

pub async fn run(args: MrpBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.levels >= 2 && args.materials >= 2 * args.levels,
        "--levels must be at least 2, with at least two materials per level"
    );
    // The generated lead times reach three weeks: the horizon must be longer.
    anyhow::ensure!(
        (4..=104).contains(&args.buckets),
        "--buckets: 4 to 104 weeks"
    );
    with_database(&args.postgres_url, |url, backend| {
        measure(&args, url, backend)
    })
    .await
}

fn material(m: usize) -> String {
    format!("M{m:06}")
}

/// The first monday planned.
fn horizon_start() -> anyhow::Result<NaiveDate> {
    NaiveDate::from_ymd_opt(2027, 1, 4).context("date")
}

/// The level of material `m` (0: end items).
fn level_of(m: usize, args: &MrpBenchArgs) -> usize {
    m * args.levels / args.materials
}

/// The first material of `level`.
fn first_of(level: usize, args: &MrpBenchArgs) -> usize {
    (level * args.materials).div_ceil(args.levels)
}

async fn generate(
    store: &EventStore,
    args: &MrpBenchArgs,
) -> anyhow::Result<(usize, Vec<(usize, String)>)> {
    use tributary_materials::domain::PlantEvent;
    use tributary_production::master::{BomEvent, PlanningEvent};
    use tributary_sales::demand::MaterialDemandEvent;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let start = horizon_start()?;
    let plant: PlantEvent = event(
        "PlantCreated",
        json!({"company": COMPANY, "plant": PLANT, "name": "Benchmark plant", "currency": "EUR"}),
    )?;
    let mut total = append_all(
        store,
        "materials",
        vec![write(
            "materials.plant",
            format!("{COMPANY}/{PLANT}"),
            &[plant],
        )],
    )
    .await?;
    let last = args.levels - 1;
    let mut master: Vec<StreamWrite> = Vec::new();
    let mut supply: Vec<StreamWrite> = Vec::new();
    for m in 0..args.materials {
        let level = level_of(m, args);
        let buy = level == last;
        let lot_sizing = match rng.below(3) {
            0 => json!({"procedure": "lot_for_lot", "minimum": "0", "rounding": "0"}),
            1 => {
                json!({"procedure": "fixed_order_quantity", "quantity": (50 + rng.below(200)).to_string(),
                        "minimum": "0", "rounding": "0"})
            }
            _ => json!({"procedure": "lot_for_lot", "minimum": "0",
                        "rounding": (10 * (1 + rng.below(10))).to_string()}),
        };
        let planning: PlanningEvent = event(
            "PlanningDataSet",
            json!({"company": COMPANY, "plant": PLANT, "material": material(m),
                   "procurement": if buy { "buy" } else { "make" },
                   "lead_time_days": 7 * (1 + rng.below(3)), "lot_sizing": lot_sizing,
                   "safety_stock": (rng.below(4) * 10).to_string()}),
        )?;
        master.push(write(
            "production.planning",
            format!("{COMPANY}/{PLANT}/{}", material(m)),
            &[planning],
        ));
        if !buy {
            // From the next level mostly, now and then from deeper (a component on two levels).
            let mut components: Vec<Value> = Vec::new();
            for _ in 0..2 + rng.below(3) {
                let below = (level + 1 + usize::from(rng.below(5) == 0)).min(last);
                let (from, to) = (first_of(below, args), first_of(below + 1, args));
                let c = material(from + rng.below((to - from) as u64) as usize);
                if !components.iter().any(|x| x["material"] == c) {
                    components.push(json!({"material": c, "quantity": (1 + rng.below(3)).to_string(),
                                           "scrap_percent": "0", "valid_from": null, "valid_to": null}));
                }
            }
            let bom: BomEvent = event(
                "BomSet",
                json!({"company": COMPANY, "plant": PLANT, "material": material(m),
                       "components": components}),
            )?;
            master.push(write(
                "production.bom",
                format!("{COMPANY}/{PLANT}/{}", material(m)),
                &[bom],
            ));
        }
        supply.push(stocked(&material(m), PLANT, rng.below(200), start)?);
        if buy && rng.below(5) == 0 {
            let due = start + chrono::Days::new(7 * rng.below(u64::from(args.buckets)));
            supply.push(ordered(
                &format!("PO{m:06}"),
                &material(m),
                PLANT,
                100 + rng.below(400),
                due,
            )?);
        }
    }
    total += append_all(store, "production", master).await?;
    total += append_all(store, "materials", supply).await?;
    // The end items' confirmed order lines, one demand stream per end item.
    let end_items = first_of(1, args);
    let mut demand: Vec<Vec<MaterialDemandEvent>> = vec![Vec::new(); end_items];
    let mut lines = Vec::with_capacity(args.demand_lines);
    for k in 0..args.demand_lines {
        let (order, line) = (format!("SO{:07}", k / 10), 10 * (1 + k % 10) as u32);
        let changed: MaterialDemandEvent = event(
            "DemandChanged",
            json!({"order": order, "line": line,
                   "schedule": [{"date": start + chrono::Days::new(rng.below(7 * u64::from(args.buckets))),
                                 "quantity": (1 + rng.below(20)).to_string()}]}),
        )?;
        demand[k % end_items].push(changed);
        lines.push((k % end_items, format!("{order}/{line}")));
    }
    total += append_all(store, "sales", demand_writes(demand, PLANT, material)).await?;
    Ok((total, lines))
}

/// The process's resident set in MiB (Linux), or NaN.
fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Starts a run and waits for it; answers the run as its status URL last showed it.
async fn full_run(
    client: &reqwest::Client,
    base: &str,
    buckets: u32,
) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let answer: Value = client
        .post(format!("{base}/api/v1/mrp-runs"))
        .json(
            &json!({"plant": PLANT, "horizon_start": horizon_start()?, "bucket": "week",
                      "buckets": buckets}),
        )
        .send()
        .await?
        .json()
        .await?;
    let url = answer["status_url"]
        .as_str()
        .with_context(|| format!("no run started: {answer}"))?;
    loop {
        let run: Value = client
            .get(format!("{base}{url}"))
            .send()
            .await?
            .json()
            .await?;
        if run["status"] != "requested" {
            anyhow::ensure!(run["status"] == "completed", "the run failed: {run}");
            return Ok((started.elapsed(), run));
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1_800),
            "the run never ended"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn measure(
    args: &MrpBenchArgs,
    database_url: Option<String>,
    backend: &str,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::embedded(dir.path().to_path_buf(), "127.0.0.1:0".parse()?);
    config.database_url = database_url;
    config.roles = Roles::parse("api,pipelines,query").map_err(anyhow::Error::msg)?;
    config.contexts = Some(vec!["identity".into(), "production".into()]);
    config.pg = None;
    config.compaction = None;
    bench_identity(&mut config);
    let before = resident_mib();
    let running = start(config).await?;
    let store = running.store.clone();
    let generated = Instant::now();
    let (events, lines) = generate(&store, args).await?;
    println!(
        "tributary bench-mrp on {backend}: {events} events generated in {:.1} s ({} materials on {} levels, {} confirmed sales order lines, {} weekly buckets)",
        generated.elapsed().as_secs_f64(),
        args.materials,
        args.levels,
        args.demand_lines,
        args.buckets
    );
    // The runs are timed on a settled system: the context's pipelines first read what was
    // generated (an installation plans on data entered over days, not in the last second).
    let settling = Instant::now();
    running
        .wait_for_pipelines(Duration::from_secs(1_800))
        .await?;
    println!(
        "pipelines caught up with the generated events in {:.1} s",
        settling.elapsed().as_secs_f64()
    );
    let base = format!("http://{}", running.addr);
    let client = bench_client(&base, 4).await?;
    println!(
        "\nfull MRP run          wall ms  planning ms  writing ms  materials  proposals  exceptions"
    );
    for label in ["first", "second"] {
        let (took, run) = full_run(&client, &base, args.buckets).await?;
        let proposals = run["planned_orders"].as_u64().unwrap_or(0)
            + run["purchase_requisitions"].as_u64().unwrap_or(0);
        println!(
            "{label:<22}{:>7.0}  {:>11}  {:>10}  {:>9}  {:>9}  {:>10}",
            took.as_secs_f64() * 1_000.0,
            run["planning_ms"],
            run["writing_ms"],
            run["materials"],
            proposals,
            run["exceptions"]
        );
    }
    let after_runs = resident_mib();
    // Net change: one line's confirmed quantity changes, as sales appends it.
    let app_id = format!("mrp/{COMPANY}/{PLANT}");
    let table = tributary_production::lake::PLAN_ROWS;
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut latencies = Vec::with_capacity(args.changes);
    for change in 0..args.changes {
        let (end_item, source) = &lines[rng.below(lines.len() as u64) as usize];
        let (order, line) = source.split_once('/').context("order/line")?;
        let id = tributary_sales::demand::demand_id(COMPANY, &material(*end_item), PLANT);
        let version = store
            .load("sales.material_demand", std::slice::from_ref(&id))
            .await?
            .get(&id)
            .map_or(0, Vec::len) as i64;
        let changed: tributary_sales::demand::MaterialDemandEvent = event(
            "DemandChanged",
            json!({"order": order, "line": line.parse::<u32>()?,
                   "schedule": [{"date": horizon_start()? + chrono::Days::new(rng.below(7 * u64::from(args.buckets))),
                                 // Never a quantity a line had: each change changes something.
                                 "quantity": (100 + change).to_string()}]}),
        )?;
        let planned = running.lake.txn_version(table, &app_id).await?;
        let mut change = write("sales.material_demand", id, &[changed]);
        change.expected_version = version;
        let started = Instant::now();
        append_all(&store, "sales", vec![change]).await?;
        loop {
            if running.lake.txn_version(table, &app_id).await? > planned {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "net change never committed"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
    }
    let after_changes = resident_mib();
    println!(
        "\nnet change after one sales order line changes ({} changes): p50 {:.1} ms, p99 {:.1} ms (appended to committed in the lake)",
        args.changes,
        percentile_ms(&mut latencies, 50),
        percentile_ms(&mut latencies, 99)
    );
    println!(
        "resident memory: {before:.0} MiB at start, {after_runs:.0} MiB after the runs, {after_changes:.0} MiB after the changes"
    );
    println!("targets (issue 16): full run at most 5 s, net change at most 100 ms");
    running.stop().await;
    Ok(())
}
