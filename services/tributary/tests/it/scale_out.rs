//! Issue 19, point 3: pipelines and reactors across worker processes. Three `serve --role
//! pipelines` and three `serve --role reactors` processes share topics of six partitions
//! (through PostgreSQL, see `tributary_ingest::partitions`) while entries and goods receipts
//! are posted; one of each is killed with SIGKILL mid-stream. Afterwards the lake equals one
//! clean run over the same events and every goods movement is posted to the ledger once.

use crate::helpers::{Backend, TestApp, TestDatabase, lake_count as count};
use crate::procure_to_pay::{materials_ledger, movements_and_postings};
use crate::restart::lake_contents;
use serde_json::json;
use std::time::Duration;
use tokio::process::{Child, Command};
use tributary_lakehouse::{QueryLimits, QueryService};

const PARTITIONS: i32 = 6;
const WORKERS: usize = 3;
/// Goods receipts posted, each with a journal entry beside it.
const RECEIPTS: usize = 60;

fn spawn_worker(
    role: &str,
    n: usize,
    database: &TestDatabase,
    prefix: &str,
    dir: &std::path::Path,
    lake: &str,
) -> Child {
    let data = dir.join(format!("{role}-{n}"));
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::File::create(dir.join(format!("{role}-{n}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["serve", "--role", role, "--database-url", &database.url])
        .args(["--kafka-brokers", &crate::kafka::brokers()])
        .args(["--topic-prefix", prefix])
        .args(["--topic-partitions", &PARTITIONS.to_string()])
        .args(["--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0"])
        .args(["--lake", lake])
        .arg("--data-dir")
        .arg(&data)
        .env(
            "RUST_LOG",
            "info,buoyant_kernel=off,delta_kernel=off,deltalake_core=warn",
        )
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// How many partitions of `group` each live member holds, in ascending order (one database
/// connection per member holds all of its partition locks).
async fn shares(database: &sqlx::PgPool, group: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND classid = hashtext('tributary-parts/' || $1)::oid \
         GROUP BY pid ORDER BY 1",
    )
    .bind(group)
    .fetch_all(database)
    .await
    .unwrap()
}

/// Waits until `members` processes hold `group`'s partitions in equal shares; the partitions.
async fn shared_evenly(
    database: &sqlx::PgPool,
    group: &str,
    members: usize,
    logs: &dyn Fn() -> String,
) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let shares = shares(database, group).await;
        let total: i64 = shares.iter().sum();
        if shares.len() == members
            && total % PARTITIONS as i64 == 0
            && shares.iter().all(|share| *share == total / members as i64)
        {
            return total;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{group}: after 60 s the members hold {shares:?} partitions, not {members} equal shares; logs:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_share_six_partitions_and_a_killed_ones_move_to_the_others() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let workers_dir = tempfile::tempdir().unwrap();
    let lake_location = workers_dir.path().join("lake").display().to_string();
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    // This process takes commands and relays them; the workers do the rest.
    let mut config = crate::helpers::config(dir.path(), Some(&database));
    config.roles = tributary::Roles {
        api: true,
        relay: true,
        ingest: false,
        pipelines: false,
        query: false,
        reactors: false,
        reports: false,
    };
    config.kafka_brokers = Some(crate::kafka::brokers());
    config.topic_prefix = prefix.clone();
    config.topic_partitions = PARTITIONS;
    let running = tributary::start(config).await.unwrap();
    let app = TestApp::wrap(running, dir, None, Backend::Postgres).await;
    materials_ledger(&app).await;
    app.ok(
        "/api/v1/purchase-orders",
        json!({"number": "PO-S", "vendor": "V-ACME", "order_date": "2026-03-01",
               "lines": [{"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
                          "quantity": "100000", "unit_price": "2.50", "delivery_date": "2026-03-02"}]}),
    )
    .await;

    let roles = ["pipelines", "reactors"];
    let mut workers: Vec<(&str, Child)> = Vec::new();
    for role in roles {
        for n in 0..WORKERS {
            let child = spawn_worker(
                role,
                n,
                &database,
                &prefix,
                workers_dir.path(),
                &lake_location,
            );
            workers.push((role, child));
        }
    }
    let logs = || {
        workers_dir
            .path()
            .read_dir()
            .unwrap()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                (path.extension()? == "log").then(|| std::fs::read_to_string(path).ok())?
            })
            .map(|log| log[log.len().saturating_sub(1_500)..].to_owned())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let lake = crate::helpers::open_lake(&lake_location).await.unwrap();
    let query = QueryService::new(lake.clone(), QueryLimits::default());
    let store = app.running().store.clone();

    let post = |i: usize| {
        let app = &app;
        async move {
            app.ok(
                "/api/v1/goods-receipts",
                json!({"purchase_order": "PO-S", "line": 10, "quantity": "1", "posting_date": "2026-03-02"}),
            )
            .await;
            app.post_entry(
                "2026-03-03",
                &[
                    ("5000", "debit", &format!("{i}.25")),
                    ("1000", "credit", &format!("{i}.25")),
                ],
            )
            .await;
        }
    };
    // The first half, then one worker of each kind killed once both kinds have written.
    for i in 1..=RECEIPTS / 2 {
        post(i).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let lines = count(&query, "SELECT count(*) FROM gl_journal_lines").await;
        let posted = movements_and_postings(&store).await.1.len();
        if lines > 0 && posted > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 120 s the workers wrote {lines} lines and posted {posted} movements"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every group's partitions in three equal shares, then two after the kill.
    let database_pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let groups = [
        format!("{prefix}{}-finance", tributary::PIPELINES_GROUP),
        format!("{prefix}tributary-reactor-finance.materials-postings"),
    ];
    let mut partitions = Vec::new();
    for group in &groups {
        partitions.push(shared_evenly(&database_pool, group, WORKERS, &logs).await);
    }
    for killed in [0, WORKERS] {
        workers[killed].1.start_kill().unwrap();
        workers[killed].1.wait().await.unwrap();
    }
    for (group, partitions) in groups.iter().zip(partitions) {
        assert_eq!(
            shared_evenly(&database_pool, group, WORKERS - 1, &logs).await,
            partitions,
            "{group}: the survivors hold every partition"
        );
    }
    // The second half reaches every partition: the killed workers' ones too.
    for i in RECEIPTS / 2 + 1..=RECEIPTS {
        post(i).await;
    }

    // Every movement posted by the surviving reactors, then every line in the lake.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (movements, causes) = movements_and_postings(&store).await;
        assert_eq!(movements.len(), RECEIPTS);
        if causes.len() >= RECEIPTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 180 s {} of {RECEIPTS} movements are posted; logs:\n{}",
            causes.len(),
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_clean_dir, clean_lake) = crate::helpers::clean_lake(&store).await;
    let clean = lake_contents(&clean_lake).await;
    let expected_lines = count(
        &QueryService::new(clean_lake.clone(), QueryLimits::default()),
        "SELECT count(*) FROM gl_journal_lines",
    )
    .await;
    loop {
        let lines = count(&query, "SELECT count(*) FROM gl_journal_lines").await;
        if lines >= expected_lines {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 180 s the lake holds {lines} of {expected_lines} lines; logs:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A moment for anything that would come twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (movements, causes) = movements_and_postings(&store).await;
    for movement in &movements {
        assert_eq!(
            causes.iter().filter(|c| *c == movement).count(),
            1,
            "movement {movement} posted once"
        );
    }
    assert_eq!(causes.len(), movements.len(), "no other posting");
    assert!(
        lake_contents(&lake).await == clean,
        "the lake of three workers, one killed, differs from a clean run; logs:\n{}",
        logs()
    );
    for (_, child) in &mut workers {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    app.stop().await;
}
