//! `tributary bench-snapshots`: a command on a material with a long history (1,000,000 goods
//! movements by default), decided from a full replay and from the stock's snapshot.
//!
//! The history is decided by the materials domain (receipts and issues, moving average) and
//! appended straight to a fresh event store in batches; then the same command (a receipt) is
//! decided N times each way, loading the stock as the API will: `aggregate::load` (every event)
//! against `aggregate::load_snapshotted` (the snapshot plus the events after it).
// Floats here are timings and ratios for display, never money.
#![allow(clippy::float_arithmetic)]

use super::percentile_ms;
use anyhow::Context;
use rust_decimal::Decimal;
use std::time::{Duration, Instant};
use tributary_kernel::Aggregate;
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use tributary_kernel::store::{APPEND_EVENTS_MAX, AppendBatch, EventStore};
use tributary_materials::aggregates::{MaterialCommand, PlantCommand, StockCommand};
use tributary_materials::domain::*;
use tributary_materials::valuation::ValuationMethod;

#[derive(clap::Args, Debug, Clone)]
pub struct SnapshotBenchArgs {
    /// Goods movements in the material's history.
    #[arg(long, default_value_t = 1_000_000)]
    pub movements: usize,
    /// Commands decided each way (a full replay of a million events takes seconds).
    #[arg(long, default_value_t = 5)]
    pub commands: usize,
    /// Event store: postgres://… (a database that may be created); default a SQLite file in a
    /// temporary directory.
    #[arg(long)]
    pub database_url: Option<String>,
}

fn state<A: Aggregate>(events: &[A::Event]) -> A::State {
    let mut state = A::State::default();
    for event in events {
        A::apply(&mut state, event);
    }
    state
}

fn receipt(index: usize, quantity: Decimal, value: Decimal) -> PostMovement {
    PostMovement {
        movement_id: uuid::Uuid::now_v7(),
        posting_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default()
            + chrono::Days::new((index / 5_000) as u64 % 365),
        location: LocationCode::parse("RAW").unwrap_or_else(|_| unreachable!()),
        kind: MovementKind::Receipt {
            purchase_order: None,
            line: None,
            vendor: None,
        },
        quantity,
        receipt_value: value,
    }
}

pub async fn run(args: SnapshotBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.movements >= 2 && args.commands >= 1,
        "--movements ≥ 2, --commands ≥ 1"
    );
    let dir = tempfile::tempdir()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("events.db").display()));
    let store = EventStore::connect(&url, 4)
        .await
        .with_context(|| format!("while connecting {}", crate::redact(&url)))?;
    let company = CompanyCode::parse("MAIN").map_err(anyhow::Error::msg)?;
    let code = |text: &str| PlantCode::parse(text).map_err(anyhow::Error::msg);
    let unit = UnitOfMeasure::parse("PC").map_err(anyhow::Error::msg)?;

    // Master data, decided by the domain.
    let plant_events = <Plant as Aggregate>::decide(
        &None,
        PlantCommand::Create {
            company: company.clone(),
            plant: code("P100")?,
            name: "Bench plant".into(),
            currency: Currency::parse("EUR").map_err(anyhow::Error::msg)?,
        },
    )
    .map_err(|v| anyhow::anyhow!("{v:?}"))?;
    let plant: Option<Plant> = state::<Plant>(&plant_events);
    let material_events = <Material as Aggregate>::decide(
        &None,
        MaterialCommand::Create(NewMaterial {
            company: company.clone(),
            number: MaterialNumber::parse("BENCH-1").map_err(anyhow::Error::msg)?,
            description: "A material with a long history".into(),
            base_unit: unit,
            alternative_units: vec![],
            material_type: MaterialType::Raw,
            material_group: None,
            valuation_class: ValuationClass::parse("3000").map_err(anyhow::Error::msg)?,
        }),
    )
    .map_err(|v| anyhow::anyhow!("{v:?}"))?;
    let material: Option<Material> = state::<Material>(&material_events);
    let (Some(plant), Some(material)) = (plant, material) else {
        anyhow::bail!("master data not decided");
    };
    let id = format!("MAIN/{}/{}", material.number, plant.code);
    let mut stock = Loaded::<Stock>::new(id.clone());

    // The history: receipts and issues alternating, decided one by one, appended in batches.
    progress!(
        "snapshots: deciding and appending {} movements ... ",
        args.movements
    );
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut decided = 0;
    let open = StockCommand::Open {
        material: material.clone(),
        plant: plant.clone(),
        valuation_method: ValuationMethod::MovingAverage,
    };
    let mut next = Some(open);
    while decided < args.movements {
        let command = next.take().unwrap_or_else(|| {
            if decided % 2 == 1 {
                StockCommand::Post(receipt(
                    decided,
                    Decimal::from(10),
                    Decimal::new(1234 + (decided % 97) as i64, 2),
                ))
            } else {
                StockCommand::Post(PostMovement {
                    kind: MovementKind::Issue {
                        cost_center: "CC1".into(),
                    },
                    ..receipt(decided, Decimal::from(3), Decimal::ZERO)
                })
            }
        });
        let events = <Stock as Aggregate>::decide(&stock.state, command)
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
        for event in &events {
            <Stock as Aggregate>::apply(&mut stock.state, event);
        }
        decided += events.len().max(1);
        pending.extend(events);
        if pending.len() >= APPEND_EVENTS_MAX || decided >= args.movements {
            let write = stock.write(&pending);
            store
                .append(AppendBatch {
                    context: "materials".into(),
                    writes: vec![write],
                    reads: vec![],
                    metadata: Default::default(),
                    idempotency: None,
                    time: chrono::Utc::now(),
                })
                .await?;
            stock.version += pending.len() as i64;
            pending.clear();
        }
    }
    println!("{:.1} s", started.elapsed().as_secs_f64());

    let command = || StockCommand::Post(receipt(0, Decimal::from(10), Decimal::new(1500, 2)));
    let mut full = Vec::with_capacity(args.commands);
    for _ in 0..args.commands {
        let started = Instant::now();
        let loaded = aggregate::load::<Stock>(&store, &id).await?;
        loaded
            .decide(command())
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
        full.push(started.elapsed());
    }
    // The first snapshotted load replays everything once and takes the snapshot.
    let started = Instant::now();
    let first = aggregate::load_snapshotted::<Stock>(&store, &id).await?;
    let taking: Duration = started.elapsed();
    let mut snapshotted = Vec::with_capacity(args.commands);
    for _ in 0..args.commands {
        let started = Instant::now();
        let loaded = aggregate::load_snapshotted::<Stock>(&store, &id).await?;
        anyhow::ensure!(
            loaded.state == first.state && loaded.version == first.version,
            "the snapshot's state equals the replayed one"
        );
        loaded
            .decide(command())
            .map_err(|v| anyhow::anyhow!("{v:?}"))?;
        snapshotted.push(started.elapsed());
    }
    let (full_p50, snap_p50) = (
        percentile_ms(&mut full, 50),
        percentile_ms(&mut snapshotted, 50),
    );
    println!(
        "snapshots: {} ({} events), a receipt decided {} times each way",
        store.backend(),
        stock.version,
        args.commands
    );
    println!(
        "  full replay        p50 {full_p50:>10.2} ms   p99 {:>10.2} ms",
        percentile_ms(&mut full, 99)
    );
    println!(
        "  from the snapshot  p50 {snap_p50:>10.2} ms   p99 {:>10.2} ms",
        percentile_ms(&mut snapshotted, 99)
    );
    println!(
        "  (first snapshotted load, replaying and saving the snapshot: {:.2} ms)",
        taking.as_secs_f64() * 1_000.0
    );
    println!("  ratio full / snapshot: {:.0}", full_p50 / snap_p50);
    Ok(())
}
