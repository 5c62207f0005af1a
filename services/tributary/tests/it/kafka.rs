//! The production path over a real Kafka-protocol broker (tansu, started by .ci/run through
//! tools/kafka-broker): relay from PostgreSQL to Kafka, bronze ingest into Delta.

use crate::helpers::{TestDatabase, lake_count as count};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;
use tributary_ingest::bronze::{BronzeIngest, BronzeOptions};
use tributary_ingest::relay::{Relay, RelayOptions};
use tributary_kernel::store::{AppendBatch, EventStore, RelayPosition};
use tributary_lakehouse::{Lake, QueryLimits, QueryService};

pub fn brokers() -> String {
    std::env::var("TRIBUTARY_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn events(aggregate: &str, count: usize) -> AppendBatch {
    crate::helpers::thing_events("finance", aggregate, 0, count)
}

/// As after a relay crash between publishing a batch and saving its position.
async fn forget_relay_position(store: &EventStore) {
    let start = RelayPosition {
        cursor: 0,
        next_sequence: 1,
    };
    store.save_relay_position("default", start).await.unwrap();
}

async fn relay_all(relay: &mut Relay) -> usize {
    let mut published = 0;
    loop {
        let n = relay.step().await.expect("relay step");
        if n == 0 {
            return published;
        }
        published += n;
    }
}

/// Every stored event reaches bronze exactly once, even when the relay publishes it twice, and
/// an undecodable message lands in the dead-letter table without stopping the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_bronze_land_every_event_exactly_once() {
    let database = TestDatabase::create().await;
    let store = EventStore::connect(&database.url, 4).await.unwrap();
    for aggregate in 0..50 {
        store
            .append(events(&format!("a{aggregate}"), 10))
            .await
            .unwrap();
    }
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    let mut options = RelayOptions::new(&brokers());
    options.topic_prefix = prefix.clone();
    options.batch_events_max = 128;
    let mut relay = Relay::new(store.clone(), options.clone()).unwrap();
    let mut published = 0;
    for _ in 0..100 {
        published += relay_all(&mut relay).await;
        if published >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(published, 500);
    // A relay that crashed after publishing and before saving its position publishes again.
    forget_relay_position(&store).await;
    assert_eq!(
        relay_all(&mut relay).await,
        500,
        "everything is published a second time"
    );

    let topic = format!("{prefix}finance.events");
    let producer: FutureProducer = tributary_ingest::kafka::producer_config(&brokers())
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic)
                .key("garbage")
                .payload("not an event"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let lake = crate::helpers::open_lake(&dir.path().display().to_string())
        .await
        .unwrap();
    let query = QueryService::new(lake.clone(), QueryLimits::default());
    let mut bronze_options = BronzeOptions::new(&brokers(), vec![topic.clone()]);
    bronze_options.group = format!("{prefix}bronze");
    let mut bronze = BronzeIngest::new(lake.clone(), bronze_options.clone()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        bronze.step(Duration::from_millis(500)).await.unwrap();
        let rows = count(&query, "SELECT count(*) FROM bronze_events").await;
        let dead = count(&query, "SELECT count(*) FROM bronze_dead_letters").await;
        if rows >= 500 && dead >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bronze holds {rows} events and {dead} dead letters after 90 s"
        );
    }
    drop(bronze);
    // A restarted consumer in the same group resumes from Delta and adds nothing.
    let mut again = BronzeIngest::new(lake.clone(), bronze_options).unwrap();
    for _ in 0..6 {
        again.step(Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(
        count(&query, "SELECT count(*) FROM bronze_events").await,
        500
    );
    assert_eq!(
        count(&query, "SELECT count(DISTINCT event_id) FROM bronze_events").await,
        500
    );
    assert_eq!(
        count(&query, "SELECT count(*) FROM bronze_dead_letters").await,
        1
    );
    assert_eq!(
        count(&query, "SELECT count(*) FROM bronze_dead_letters WHERE value = arrow_cast('not an event', 'Binary') AND error LIKE '%not JSON%'").await,
        1
    );
    assert_eq!(count(&query, "SELECT count(*) FROM bronze_events WHERE context = 'finance' AND event_type = 'ThingHappened'").await, 500);
}

/// Two pipeline runners in one consumer group, joining and leaving mid-stream (each a
/// rebalance), build exactly the lake a single clean run over the event store builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pipeline_runners_in_one_group_build_the_clean_lake() {
    use crate::helpers::{Backend, TestApp};
    use crate::restart::lake_contents;
    use tributary_ingest::{EventSource, KafkaEvents};
    use tributary_pipelines::{Runner, RunnerOptions, kafka_start};

    // The app on PostgreSQL posts entries; its own embedded pipelines build the clean lake.
    let app = TestApp::spawn(Backend::Postgres).await;
    app.setup_ledger().await;
    for i in 0..150 {
        app.post_sample_entry(i, 4, 1).await;
    }
    app.settle().await;
    let clean = lake_contents(&app.running().lake).await;

    // Relay everything to fresh topics (3 partitions).
    let store = app.running().store.clone();
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    let mut options = RelayOptions::new(&brokers());
    options.topic_prefix = prefix.clone();
    let mut relay = Relay::new(store.clone(), options).unwrap();
    let published = relay_all(&mut relay).await;
    // And again, as after a relay crash between publishing and saving its position.
    forget_relay_position(&store).await;
    assert_eq!(relay_all(&mut relay).await, published);
    let topics = vec![format!("{prefix}finance.events")];
    // A message that is not an event: a dead letter, once, and the stream goes on.
    let producer: FutureProducer = tributary_ingest::kafka::producer_config(&brokers())
        .create()
        .unwrap();
    let garbage = producer
        .send(
            FutureRecord::<str, str>::to(&topics[0])
                .partition(0)
                .payload("not an event"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let garbage_offset = garbage.offset;

    let dir = tempfile::tempdir().unwrap();
    let lake = crate::helpers::open_lake(&dir.path().display().to_string())
        .await
        .unwrap();
    let group = format!("{prefix}pipelines");
    let spawn_runner = |lake: Lake| {
        let (topics, group, store) = (topics.clone(), group.clone(), store.clone());
        async move {
            let start = kafka_start(lake.clone(), crate::helpers::pipelines().pipelines);
            // Partitions shared through the event store's PostgreSQL, as serve runs them.
            let source = KafkaEvents::new(
                &brokers(),
                &group,
                None,
                &topics,
                start,
                Duration::from_millis(300),
                Some(&store),
            )
            .unwrap();
            let options = RunnerOptions {
                batch_events_max: 40,
                poll_interval_ms: 50,
                ..RunnerOptions::default()
            };
            let runner = Runner::new(
                "finance",
                EventSource::Kafka(source),
                lake,
                crate::helpers::pipelines(),
                options,
            )
            .await
            .unwrap();
            let (stop, stopped) = tokio::sync::watch::channel(false);
            (tokio::spawn(runner.run(stopped)), stop)
        }
    };
    let expected_lines = clean[0].lines().filter(|l| l.starts_with("| MAIN")).count();
    let lines_in = |contents: &[String]| {
        contents[0]
            .lines()
            .filter(|l| l.starts_with("| MAIN"))
            .count()
    };

    let (first, stop_first) = spawn_runner(lake.clone()).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (second, stop_second) = spawn_runner(lake.clone()).await; // rebalance: partitions split
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop_first.send_replace(true); // rebalance: the second takes every partition
    first.await.unwrap();
    let query = QueryService::new(lake.clone(), QueryLimits::default());
    let dead_letters = || async {
        let letters = query
            .query(
                "SELECT stream, position, relation, payload FROM pipeline_dead_letters",
                &tributary_lakehouse::ReadScope::everything(),
            )
            .await
            .unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&letters.batches)
            .unwrap()
            .to_string()
    };
    // Until every line and the dead letter are in (a loaded machine takes its time).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let contents = lake_contents(&lake).await;
        if lines_in(&contents) >= expected_lines && dead_letters().await.contains("not an event") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Kafka lake holds {} of {expected_lines} lines",
            lines_in(&contents)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop_second.send_replace(true);
    second.await.unwrap();
    assert_eq!(
        lake_contents(&lake).await,
        clean,
        "the lake built from Kafka equals the clean run"
    );
    let letters = dead_letters().await;
    assert_eq!(
        letters
            .lines()
            .filter(|l| l.contains("not an event"))
            .count(),
        1,
        "{letters}"
    );
    assert!(
        letters.contains(&format!("| {}-0 ", topics[0]))
            && letters.contains(&format!("| {garbage_offset} ")),
        "{letters}"
    );
    app.stop().await;
}
