//! `tributary bench-store --postgres-url …`: the PostgreSQL event store as it grows.
//!
//! A fresh database is filled with posted two-line journal entries (one event each, appended
//! through the store in transactions of 1,000, as [`super::streaming`] does) to each size in
//! turn; at each size the store is measured as the product uses it:
//! - appends: single-entry appends from concurrent clients (as the API's commands are),
//!   events/s and latency p50/p99;
//! - the feed: the newest 100,000 events read in pages of 1,000 from the cursor before them
//!   (a pipeline catching up), events/s and page p99;
//! - the sizes of the events table and of each of its indexes.
//!
//! Before each size is measured the tables are vacuumed and analyzed and a checkpoint is
//! written, so the figures are of a settled store, not of the bulk fill's aftermath.
//!
//! Flat means the figures at 10x the events are those at 1x: every index the appends touch is
//! either ordered by time (position, the feed's (transaction, position), the v7 event and
//! entry ids) so its hot pages stay the newest ones, or is looked up by key in O(log n).
// Floats here are timings and ratios for display, never money.
#![allow(clippy::float_arithmetic)]

use super::percentile_ms;
use super::streaming::append_synthetic_entries;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tributary_kernel::store::EventStore;

#[derive(clap::Args, Debug, Clone)]
pub struct StoreBenchArgs {
    /// PostgreSQL server (a fresh database is created on it and dropped afterwards).
    #[arg(long)]
    pub postgres_url: String,
    /// Event counts the store is filled to, in increasing order, measured at each.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    pub sizes: Vec<usize>,
    /// Single-entry appends timed at each size.
    #[arg(long, default_value_t = 5_000)]
    pub appends: usize,
    /// Concurrent appending clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Keep the database afterwards (its name is printed), to measure again or inspect.
    #[arg(long)]
    pub keep: bool,
}

/// Events read back from the newest end of the feed at each size.
const FEED_TAIL_EVENTS: usize = 100_000;
/// Events per feed page (a pipeline's default batch is 5,000; smaller pages show page cost).
const FEED_PAGE_EVENTS: usize = 1_000;
/// Connections filling the store at once.
const FILLERS: usize = 2;

struct AtSize {
    events: usize,
    fill_s: f64,
    appends_per_s: f64,
    append_ms: (f64, f64),
    feed_per_s: f64,
    page_p99_ms: f64,
    sizes: Vec<(String, i64)>,
}

pub async fn run(args: StoreBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.sizes.is_empty() && args.sizes.windows(2).all(|w| w[0] < w[1]),
        "--sizes must be event counts in increasing order, e.g. 1000000,10000000"
    );
    anyhow::ensure!(
        args.appends > 0 && args.clients > 0,
        "--appends and --clients must be at least 1"
    );
    let (url, drop_database) = super::fresh_postgres_database(&args.postgres_url).await?;
    println!("tributary bench-store: database {url}");
    let result = measure(&url, &args).await;
    if args.keep {
        println!("kept: {url}");
    } else {
        drop_database.await;
    }
    let rows = result?;
    println!();
    println!(
        "{:>12} {:>9} {:>11} {:>14} {:>11} {:>14} {:>9}",
        "events", "fill s", "appends/s", "append p50/p99", "feed ev/s", "feed page p99", "ratio"
    );
    let first = rows.first().map(|r| (r.appends_per_s, r.feed_per_s));
    for row in &rows {
        let (appends, feed) = first.unwrap_or((row.appends_per_s, row.feed_per_s));
        println!(
            "{:>12} {:>9.0} {:>11.0} {:>6.1}/{:<7.1} {:>11.0} {:>14.1} {:>4.2}/{:<4.2}",
            row.events,
            row.fill_s,
            row.appends_per_s,
            row.append_ms.0,
            row.append_ms.1,
            row.feed_per_s,
            row.page_p99_ms,
            row.appends_per_s / appends,
            row.feed_per_s / feed,
        );
    }
    println!(
        "(ratio: appends/s and feed events/s against the smallest size; appends are single journal entries from {} clients, the feed the newest {FEED_TAIL_EVENTS} events in pages of {FEED_PAGE_EVENTS})",
        args.clients
    );
    for row in &rows {
        let sizes: Vec<String> = row
            .sizes
            .iter()
            .map(|(name, bytes)| format!("{name} {:.1} MB", *bytes as f64 / 1e6))
            .collect();
        println!("at {} events: {}", row.events, sizes.join(", "));
    }
    Ok(())
}

async fn measure(url: &str, args: &StoreBenchArgs) -> anyhow::Result<Vec<AtSize>> {
    let store = EventStore::connect(url, (args.clients + FILLERS) as u32).await?;
    // One connection for the statements around the measurements.
    let mut connection = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(url).await?
    };
    let mut rows = Vec::new();
    // Entries are numbered in the order they are appended (their ids are ordered, as v7 ids).
    let mut filled = 0;
    for &size in &args.sizes {
        // Filled so that the timed appends bring the store to `size`.
        let target = size.saturating_sub(args.appends).max(filled);
        progress!("bench-store: filling to {size} events ... ");
        let started = Instant::now();
        fill(&store, filled, target).await?;
        let fill_s = started.elapsed().as_secs_f64();
        println!("{fill_s:.0} s");
        // Measured settled, as a store that grew over months is: right after a bulk fill the
        // insert-triggered autovacuum and the checkpoint's writes ran during the measurement.
        progress!("bench-store: VACUUM (ANALYZE) and CHECKPOINT ... ");
        let started = Instant::now();
        settle(&mut connection).await?;
        println!("{:.0} s", started.elapsed().as_secs_f64());
        filled = target;

        if rows.is_empty() {
            // The clients' connections opened and the statements prepared before any timing.
            let warm_up = StoreBenchArgs {
                appends: args.clients * 10,
                ..args.clone()
            };
            appends(&store, filled, &warm_up).await?;
            filled += warm_up.appends;
        }
        progress!("bench-store: {} single-entry appends ... ", args.appends);
        let (appends_per_s, mut latencies) = appends(&store, filled, args).await?;
        filled += args.appends;
        // Printed as soon as measured: a run stopped at a larger size keeps these.
        let append_ms = (
            percentile_ms(&mut latencies, 50),
            percentile_ms(&mut latencies, 99),
        );
        println!(
            "{appends_per_s:.0} appends/s, p50 {:.1} / p99 {:.1} ms",
            append_ms.0, append_ms.1
        );

        progress!("bench-store: reading the newest {FEED_TAIL_EVENTS} events of the feed ... ");
        let (feed_per_s, mut pages) = feed_tail(&store, &mut connection).await?;
        let page_p99_ms = percentile_ms(&mut pages, 99);
        println!("{feed_per_s:.0} events/s, page p99 {page_p99_ms:.1} ms");

        rows.push(AtSize {
            events: filled,
            fill_s,
            appends_per_s,
            append_ms,
            feed_per_s,
            page_p99_ms,
            sizes: relation_sizes(&mut connection).await?,
        });
    }
    Ok(rows)
}

/// Appends entries `from..to` in transactions of 1,000 on [`FILLERS`] connections at once.
async fn fill(store: &EventStore, from: usize, to: usize) -> anyhow::Result<()> {
    const CHUNK: usize = 100_000;
    let next = Arc::new(AtomicUsize::new(from));
    let mut fillers = Vec::new();
    for _ in 0..FILLERS {
        let (store, next) = (store.clone(), next.clone());
        fillers.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(CHUNK, Ordering::Relaxed);
                if first >= to {
                    return anyhow::Ok(());
                }
                append_synthetic_entries(&store, first, CHUNK.min(to - first)).await?;
            }
        }));
    }
    for filler in fillers {
        filler.await??;
    }
    Ok(())
}

/// `args.appends` single-entry appends numbered from `first`, from `args.clients` clients:
/// appends per second and each one's latency.
async fn appends(
    store: &EventStore,
    first: usize,
    args: &StoreBenchArgs,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let next = Arc::new(AtomicUsize::new(first));
    let end = first + args.appends;
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let (store, next) = (store.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return anyhow::Ok(latencies);
                }
                let sent = Instant::now();
                append_synthetic_entries(&store, i, 1).await?;
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(args.appends);
    for client in clients {
        latencies.extend(client.await??);
    }
    Ok((
        args.appends as f64 / started.elapsed().as_secs_f64(),
        latencies,
    ))
}

/// Reads the newest [`FEED_TAIL_EVENTS`] events from the feed cursor before them: events per
/// second and each page's time. Fails unless every one of them was read.
async fn feed_tail(
    store: &EventStore,
    connection: &mut sqlx::PgConnection,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    // The feed cursor is the writer's transaction id: the one of the transaction just before
    // the newest FEED_TAIL_EVENTS events.
    let cursor: Option<i64> = sqlx::query_scalar(
        "SELECT transaction_id::text::bigint FROM events \
         WHERE position <= (SELECT max(position) FROM events) - $1 \
         ORDER BY position DESC LIMIT 1",
    )
    .bind(FEED_TAIL_EVENTS as i64)
    .fetch_optional(&mut *connection)
    .await?;
    let after: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE transaction_id > ($1::bigint)::text::xid8",
    )
    .bind(cursor.unwrap_or(0))
    .fetch_one(&mut *connection)
    .await?;
    let mut cursor = cursor.unwrap_or(0);
    let (mut read, mut pages) = (0usize, Vec::new());
    let started = Instant::now();
    loop {
        let asked = Instant::now();
        let batch = store.read_feed(cursor, FEED_PAGE_EVENTS).await?;
        pages.push(asked.elapsed());
        if batch.events.is_empty() {
            break;
        }
        read += batch.events.len();
        cursor = batch.cursor;
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(
        read as i64 == after,
        "the feed gave {read} events after the cursor, the table holds {after}"
    );
    Ok((read as f64 / elapsed.as_secs_f64(), pages))
}

/// Vacuums and analyzes the store's tables and writes a checkpoint.
async fn settle(connection: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    for statement in [
        "VACUUM (ANALYZE) events",
        "VACUUM (ANALYZE) streams",
        "CHECKPOINT",
    ] {
        sqlx::query(statement).execute(&mut *connection).await?;
    }
    Ok(())
}

/// The events table's heap and each of its indexes, in bytes.
async fn relation_sizes(connection: &mut sqlx::PgConnection) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT 'events (heap and TOAST)', pg_table_size('events') \
         UNION ALL \
         SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) \
         FROM pg_index WHERE indrelid = 'events'::regclass \
         UNION ALL SELECT 'streams (with indexes)', pg_total_relation_size('streams')",
    )
    .fetch_all(&mut *connection)
    .await?)
}
