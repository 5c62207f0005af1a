//! `tributary bench --postgres-url … --kafka-brokers …`: the production path's throughput.
//!
//! ```text
//!  N posted entries appended straight to a fresh PostgreSQL event store
//!   ─► relay (store → Kafka)            vs raw rdkafka produce of the same encoded messages
//!   ─► pipelines (Kafka → Delta)        vs raw rdkafka consume (and decode) of the same topic
//!   ─► pipelines (store feed → Delta)   the runner's own capacity, no broker in the way
//! ```
//! Each figure is events per second over the whole run of that stage, measured in one run.
// Floats here are timings and ratios for display, never money.
#![allow(clippy::float_arithmetic)]

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};
use tributary_finance::commands::{CONTEXT, JOURNAL_ENTRY};
use tributary_finance::domain::{
    AccountNumber, CompanyCode, JournalEntryEvent, JournalLine, Period,
};
use tributary_ingest::relay::{Relay, RelayOptions};
use tributary_ingest::{EventSource, KafkaEvents, kafka};
use tributary_kernel::money::Currency;
use tributary_kernel::store::{AppendBatch, EventStore, StreamWrite};
use tributary_kernel::{EventEnvelope, to_new_event};
use tributary_lakehouse::Lake;
use tributary_pipelines::{Pipelines, Runner, RunnerOptions};

/// Longest wait for the next message or batch before a stage counts as stuck.
const STAGE_IDLE_MAX: Duration = Duration::from_secs(60);
/// Events per pipeline micro-batch in the benchmark (the product's default is 5,000).
const BENCH_BATCH_EVENTS: usize = 20_000;
/// Partitions of the topic the workers stage shares (as the scale-out test's topics).
const WORKER_PARTITIONS: i32 = 6;
/// Messages produced at once by the raw producer (its queue holds 100,000 by default).
const PRODUCE_CHUNK: usize = 50_000;
/// The worker counts the workers stage runs.
const WORKER_COUNTS: [usize; 3] = [1, 2, 3];

/// Appends `count` posted two-line journal entries (one event each) to company MAIN, numbered
/// from `first` (deterministic ids, dates and amounts), in transactions of 1,000 events.
pub async fn append_synthetic_entries(
    store: &EventStore,
    first: usize,
    count: usize,
) -> anyhow::Result<()> {
    let company = CompanyCode::parse("MAIN").map_err(anyhow::Error::msg)?;
    let eur = Currency::parse("EUR").map_err(anyhow::Error::msg)?;
    let (bank, revenue) = (
        AccountNumber::parse("1000").map_err(anyhow::Error::msg)?,
        AccountNumber::parse("4000").map_err(anyhow::Error::msg)?,
    );
    for chunk_start in (first..first + count).step_by(1_000) {
        let mut writes = Vec::new();
        for i in chunk_start..(chunk_start + 1_000).min(first + count) {
            let date =
                chrono::NaiveDate::from_ymd_opt(2026, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
                    .context("synthetic posting date")?;
            let amount = rust_decimal::Decimal::new(100 + (i as i64 % 9_900), 2);
            let line = |no: u32, account: &AccountNumber, debit, credit| JournalLine {
                line_no: no,
                account: account.clone(),
                debit,
                credit,
                currency: eur.clone(),
                cost_center: None,
                text: None,
            };
            let id = uuid::Uuid::from_u128(i as u128 + 1);
            let event = JournalEntryEvent::JournalEntryPosted {
                entry_id: id,
                company: company.clone(),
                posting_date: date,
                document_date: None,
                period: Period::of(date),
                reference: Some(format!("GEN-{i}")),
                text: None,
                lines: vec![
                    line(1, &bank, amount, rust_decimal::Decimal::ZERO),
                    line(2, &revenue, rust_decimal::Decimal::ZERO, amount),
                ],
                reversal_of: None,
            };
            writes.push(StreamWrite {
                aggregate_type: JOURNAL_ENTRY.into(),
                aggregate_id: id.to_string(),
                expected_version: 0,
                events: vec![to_new_event(&event, 1)],
            });
        }
        store
            .append(AppendBatch {
                context: CONTEXT.into(),
                writes,
                reads: vec![],
                metadata: Default::default(),
                idempotency: None,
                time: chrono::Utc::now(),
            })
            .await?;
    }
    Ok(())
}

pub struct StreamingReport {
    pub events: usize,
    pub relay: f64,
    pub raw_produce: f64,
    pub pipelines_kafka: f64,
    pub raw_consume: f64,
    pub pipelines_store: f64,
    /// Events per second with one, two and three pipeline workers sharing one topic, and the
    /// events each worker read.
    pub workers: Vec<(usize, f64, Vec<usize>)>,
}

impl StreamingReport {
    pub fn print(&self) {
        println!();
        println!(
            "{:<36} {:>12} {:>16} {:>7}",
            "stage", "events/s", "baseline ev/s", "ratio"
        );
        let row = |stage: &str, rate: f64, baseline: Option<f64>| match baseline {
            Some(base) => println!("{stage:<36} {rate:>12.0} {base:>16.0} {:>7.2}", rate / base),
            None => println!("{stage:<36} {rate:>12.0} {:>16} {:>7}", "-", "-"),
        };
        row(
            "relay (PostgreSQL → Kafka)",
            self.relay,
            Some(self.raw_produce),
        );
        row(
            "pipelines (Kafka → Delta)",
            self.pipelines_kafka,
            Some(self.raw_consume),
        );
        row("pipelines (store feed → Delta)", self.pipelines_store, None);
        let one = self.workers.first().map(|(_, rate, _)| *rate);
        for (workers, rate, _) in &self.workers {
            row(
                &format!("pipelines (Kafka → Delta), {workers} worker(s)"),
                *rate,
                one,
            );
        }
        for (workers, _, each) in &self.workers {
            println!(
                "{workers} worker(s): events read by each {each:?} (with events read again after a partition moved)"
            );
        }
        println!(
            "({} events; baselines: raw rdkafka produce of the same encoded messages, raw consume and decode of the relay's topic; the workers' rows against one worker, all over one topic of {WORKER_PARTITIONS} partitions shared through PostgreSQL, each worker in its own task with its own lake handle and Kafka consumer: on a machine with 2 cores they show that the work is shared without loss or doubling, not a speed-up)",
            self.events
        );
    }
}

/// Runs every stage on a fresh database `database_url` (already migrated by `connect`).
pub async fn run(
    database_url: &str,
    brokers: &str,
    events: usize,
) -> anyhow::Result<StreamingReport> {
    let store = EventStore::connect(database_url, 8).await?;
    progress!("streaming: appending {events} events to the event store ... ");
    let started = Instant::now();
    append_synthetic_entries(&store, 0, events).await?;
    println!("{:.1} s", started.elapsed().as_secs_f64());

    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("bench-{run_id}.");
    let topic = format!("{prefix}{}", kafka::topic_for(CONTEXT));
    kafka::ensure_topics(
        brokers,
        std::slice::from_ref(&topic),
        crate::KAFKA_PARTITIONS,
    )
    .await?;

    progress!("streaming: relay ... ");
    let mut options = RelayOptions::new(brokers);
    options.topic_prefix = prefix.clone();
    options.name = format!("bench-{run_id}");
    let mut relay = Relay::new(store.clone(), options)?;
    let started = Instant::now();
    let mut relayed = 0;
    while relayed < events {
        let published = tokio::time::timeout(STAGE_IDLE_MAX, relay.step())
            .await
            .context("the relay made no progress for 60 s")??;
        anyhow::ensure!(published > 0, "the relay stopped at {relayed} of {events}");
        relayed += published;
    }
    let relay_rate = rate(events, started.elapsed());
    println!("{relay_rate:.0} events/s");

    progress!("streaming: raw produce of the same messages ... ");
    let feed = all_events(&store, events).await?;
    let raw_produce = produce_raw(
        brokers,
        &format!("{prefix}raw"),
        &feed,
        crate::KAFKA_PARTITIONS,
    )
    .await?;
    println!("{raw_produce:.0} messages/s");

    progress!("streaming: pipelines from Kafka ... ");
    let (_lake_dir, lake) = fresh_lake().await?;
    let pipelines = Pipelines::of(&crate::modules::all()).pipelines;
    let source = KafkaEvents::new(
        brokers,
        &format!("bench-{run_id}"),
        None,
        std::slice::from_ref(&topic),
        tributary_pipelines::kafka_start(lake.clone(), pipelines.clone()),
        Duration::from_millis(crate::KAFKA_BATCH_WAIT_MS),
        Some(&store),
    )?;
    let pipelines_kafka = run_pipelines(EventSource::Kafka(source), lake, events).await?;
    println!("{pipelines_kafka:.0} events/s");

    progress!("streaming: raw consume of the relay's topic ... ");
    let raw_consume = consume_raw(brokers, &topic, events).await?;
    println!("{raw_consume:.0} messages/s");

    progress!("streaming: pipelines from the store feed ... ");
    let (_lake_dir, lake) = fresh_lake().await?;
    let pipelines_store = run_pipelines(EventSource::Store(store.clone()), lake, events).await?;
    println!("{pipelines_store:.0} events/s");

    let shared = format!("{prefix}workers");
    produce_raw(brokers, &shared, &feed, WORKER_PARTITIONS).await?;
    let mut workers = Vec::new();
    for count in WORKER_COUNTS {
        progress!(
            "streaming: pipelines from Kafka, {count} worker(s) over {WORKER_PARTITIONS} partitions ... "
        );
        let group = format!("bench-{run_id}-workers-{count}");
        let (rate, each) = run_workers(&store, brokers, &group, &shared, count, events).await?;
        println!("{rate:.0} events/s");
        workers.push((count, rate, each));
    }

    Ok(StreamingReport {
        events,
        relay: relay_rate,
        raw_produce,
        pipelines_kafka,
        raw_consume,
        pipelines_store,
        workers,
    })
}

/// `count` pipeline workers (each its own lake handle, Kafka consumer and membership of
/// `group`, as separate processes have) over `topic` until the lake holds every entry's lines;
/// events/s from their start, rebalancing included, and the events each worker read (events
/// read again after a partition moved included: a worker starts a partition from the lowest
/// marker of its tables). Fails unless the lake then holds each entry's lines exactly once.
async fn run_workers(
    store: &EventStore,
    brokers: &str,
    group: &str,
    topic: &str,
    count: usize,
    events: usize,
) -> anyhow::Result<(f64, Vec<usize>)> {
    let (dir, first) = fresh_lake().await?;
    let location = dir.path().display().to_string();
    let lines = 2 * events as u64;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..count {
        let lake = crate::modules::open_lake(&location, &crate::modules::all()).await?;
        let pipelines = Pipelines::of(&crate::modules::all());
        let source = KafkaEvents::new(
            brokers,
            group,
            None,
            &[topic.to_owned()],
            tributary_pipelines::kafka_start(lake.clone(), pipelines.pipelines.clone()),
            Duration::from_millis(crate::KAFKA_BATCH_WAIT_MS),
            Some(store),
        )?;
        let options = RunnerOptions {
            batch_events_max: BENCH_BATCH_EVENTS,
            ..RunnerOptions::default()
        };
        let mut runner = Runner::new(
            "finance",
            EventSource::Kafka(source),
            lake,
            pipelines,
            options,
        )
        .await?;
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = 0;
            while !*stopped.borrow() {
                mine += runner.step().await?;
            }
            anyhow::Ok(mine)
        }));
    }
    // Done when the lake holds every line (the workers' read counts include events read again).
    let mut seen = (0, Instant::now());
    let result = loop {
        let held = first.row_count("gl_journal_lines").await?;
        if held >= lines {
            break Ok(started.elapsed());
        }
        if held > seen.0 {
            seen = (held, Instant::now());
        } else if seen.1.elapsed() > STAGE_IDLE_MAX {
            break Err(anyhow::anyhow!(
                "{count} workers: the lake held {held} of {lines} journal lines for 60 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.send_replace(true);
    let mut each = Vec::with_capacity(count);
    for task in tasks {
        each.push(task.await??);
    }
    let elapsed = result?;
    let held = first.row_count("gl_journal_lines").await?;
    anyhow::ensure!(
        held == lines,
        "{count} workers left {held} journal lines in the lake, not {lines}"
    );
    Ok((rate(events, elapsed), each))
}

/// An empty lake with the pipelines' tables in a temporary directory (removed on drop).
async fn fresh_lake() -> anyhow::Result<(tempfile::TempDir, Lake)> {
    let dir = tempfile::tempdir()?;
    let lake = crate::modules::open_lake(&dir.path().display().to_string(), &crate::modules::all())
        .await?;
    Ok((dir, lake))
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Every stored event, in feed order.
async fn all_events(store: &EventStore, events: usize) -> anyhow::Result<Vec<EventEnvelope>> {
    let mut all = Vec::with_capacity(events);
    let mut cursor = 0;
    while all.len() < events {
        let batch = store.read_feed(cursor, 10_000).await?;
        anyhow::ensure!(!batch.events.is_empty(), "the feed ended early");
        cursor = batch.cursor;
        all.extend(batch.events);
    }
    Ok(all)
}

/// Runs the pipelines over `source` until they have read `events` events; events/s. For
/// Kafka the clock starts after a first micro-batch of at most 100 events, which includes
/// joining the consumer group (the raw consumer assigns its partitions without a group).
async fn run_pipelines(source: EventSource, lake: Lake, events: usize) -> anyhow::Result<f64> {
    let warm_up = matches!(source, EventSource::Kafka(_));
    let options = RunnerOptions {
        batch_events_max: if warm_up { 100 } else { BENCH_BATCH_EVENTS },
        ..RunnerOptions::default()
    };
    let mut runner = Runner::new(
        "finance",
        source,
        lake,
        Pipelines::of(&crate::modules::all()),
        options,
    )
    .await?;
    let mut started = Instant::now();
    let mut timed = 0;
    let mut read = 0;
    let mut idle_since = Instant::now();
    while read < events {
        let n = runner.step().await?;
        if n > 0 {
            if read == 0 && warm_up {
                runner.set_batch_events_max(BENCH_BATCH_EVENTS);
                started = Instant::now();
            } else {
                timed += n;
            }
            idle_since = Instant::now();
        }
        anyhow::ensure!(
            idle_since.elapsed() < STAGE_IDLE_MAX,
            "the pipelines read nothing for 60 s at {read} of {events}"
        );
        read += n;
    }
    Ok(rate(timed, started.elapsed()))
}

/// Raw rdkafka produce (the relay's producer settings and encoding); messages/s.
async fn produce_raw(
    brokers: &str,
    topic: &str,
    events: &[EventEnvelope],
    partitions: i32,
) -> anyhow::Result<f64> {
    kafka::ensure_topics(brokers, &[topic.to_owned()], partitions).await?;
    let producer: FutureProducer = kafka::producer_config(brokers).create()?;
    let encoded: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, event)| kafka::encode(event, i as i64 + 1))
        .collect();
    let started = Instant::now();
    // In chunks smaller than the producer's queue: a send that finds the queue full waits and
    // enqueues later, out of order, and consumers drop a message whose relay sequence is below
    // one they saw as a repeat (200,000 sent at once left half of them out of the lake).
    for chunk in encoded.chunks(PRODUCE_CHUNK) {
        let deliveries = chunk.iter().map(|(key, value, headers)| {
            let producer = producer.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(key)
                            .payload(value)
                            .headers(headers.clone()),
                        rdkafka::util::Timeout::Never,
                    )
                    .await
            }
        });
        for result in futures::future::join_all(deliveries).await {
            result.map_err(|(error, _)| error)?;
        }
    }
    Ok(rate(events.len(), started.elapsed()))
}

/// Raw rdkafka consume and decode of `count` messages from the beginning (explicit
/// assignment, as Tributary's consumers assign from Delta); messages/s.
async fn consume_raw(brokers: &str, topic: &str, count: usize) -> anyhow::Result<f64> {
    let consumer: StreamConsumer =
        kafka::consumer_config(brokers, &format!("{topic}-raw-reader"), None).create()?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..crate::KAFKA_PARTITIONS {
        assignment.add_partition_offset(topic, partition, rdkafka::Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    for _ in 0..count {
        let message = tokio::time::timeout(STAGE_IDLE_MAX, consumer.recv())
            .await
            .context("no message for 60 s")??;
        kafka::decode(&message.detach()).context("decoding a relayed message")?;
    }
    Ok(rate(count, started.elapsed()))
}
