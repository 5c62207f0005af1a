//! Issue 19, point 2: lake queries on a Ballista cluster of this binary's own scheduler and two
//! executors (separate processes on loopback, a work directory and one task slot each) answer
//! what local DataFusion answers, run on both executors, and survive losing an executor.
//!
//! Which executor ran tasks is read from the executors' work directories: an executor writes
//! every task's output (shuffle files, and the final stage's results the client fetches) under
//! `<work dir>/<job id>/` (beside DataFusion's `datafusion-*` spill directories, which are not
//! counted), so each job directory is a job this executor finished at least one task of. The files stay for the scheduler's
//! `--finished-job-data-seconds` (300 s by default), longer than this test.
//!
//! Losing an executor mid-query: the scheduler (push scheduling) learns of the death when a
//! task launch to it fails or its heartbeats stop (`--executor-timeout-seconds`, 4 s here),
//! puts its running tasks back to pending, rolls back the stages whose shuffle output lived on
//! it and runs them again on the executors left; a reader that cannot fetch a lost shuffle
//! file makes its map stage run again (at most 4 times per stage). So Ballista 55 finishes the
//! query with the right answer, later by up to the timeout plus the reaper's interval; the
//! test asserts exactly that. Seen here: executor 1 is killed (SIGKILL) once it has written a
//! task's output of the job, while it runs another; nothing is launched to it, so the
//! scheduler waits for the heartbeat timeout ("heartbeat timed out after 4s"), resets the
//! running task and the job finishes about 4.6 s after it was queued. Killed before its first
//! output, the next launch to it failed at once and the job lost no time.

use crate::helpers::{Backend, TEST_ADMIN_PASSWORD, TestApp, config};
use datafusion::arrow::util::pretty::pretty_format_batches;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use tributary::cluster::{LocalCluster, LocalClusterOptions};
use tributary::grafana::{self, TimeRange};
use tributary_lakehouse::cluster::Cluster;
use tributary_lakehouse::{QueryLimits, QueryResult, QueryService, ReadScope};

/// Journal entries posted over HTTP besides the goods receipt's posting.
const ENTRIES: usize = 120;
/// Hash partitions of the main query service's shuffles: more than the two task slots, so a
/// stage's tasks must go to both executors.
const TARGET_PARTITIONS: usize = 4;

pub(crate) struct TestCluster {
    _dir: tempfile::TempDir,
    processes: LocalCluster,
}

impl TestCluster {
    /// A scheduler and two executors, one task slot each; returns when the scheduler is
    /// ready (both executors registered). Dead executors are noticed within seconds.
    async fn start() -> TestCluster {
        TestCluster::start_with(&[]).await
    }

    /// [`TestCluster::start`] with `envs` set in every process.
    pub(crate) async fn start_with(envs: &[(&str, &str)]) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let options = LocalClusterOptions {
            executors: 2,
            task_slots: 1,
            executor_timeout_seconds: 4,
            expire_dead_executor_interval_seconds: 1,
            heartbeat_interval_seconds: 1,
            envs: envs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..LocalClusterOptions::default()
        };
        let processes = LocalCluster::start(
            Path::new(env!("CARGO_BIN_EXE_tributary")),
            dir.path(),
            &options,
        )
        .await
        .unwrap();
        TestCluster {
            _dir: dir,
            processes,
        }
    }

    pub(crate) fn address(&self) -> String {
        self.processes.address()
    }

    /// The jobs executor `n` ran tasks of (its work directory's job directories).
    fn jobs(&self, executor: usize) -> BTreeSet<String> {
        std::fs::read_dir(self.processes.work_dir(executor))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.path().is_dir())
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    // DataFusion's spill directories of the executor's task runtimes.
                    .filter(|name| !name.starts_with("datafusion-"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every job either executor ran tasks of.
    pub(crate) fn all_jobs(&self) -> BTreeSet<String> {
        let mut jobs = self.jobs(0);
        jobs.extend(self.jobs(1));
        jobs
    }

    pub(crate) fn logs(&self) -> String {
        self.processes.logs()
    }
}

/// A result as comparable text: its schema and its rows in order.
fn table(result: &QueryResult) -> String {
    format!(
        "{:?}\n{}",
        result.schema,
        pretty_format_batches(&result.batches).unwrap()
    )
}

/// The finance dashboard's panels and the trial balance from journal lines, as Grafana sends
/// them, plus a join of finance's ledger with materials' stock.
fn statements() -> Vec<(String, String)> {
    let range = TimeRange {
        from: "2026-01-01T00:00:00Z".into(),
        to: "2026-12-31T23:59:59Z".into(),
    };
    let variables = [("company", "MAIN")];
    let mut statements: Vec<(String, String)> = grafana::panel_queries(grafana::FINANCE_DASHBOARD)
        .unwrap()
        .into_iter()
        .map(|panel| {
            let sql = grafana::expand(&panel.sql, &range, &variables).unwrap();
            (panel.title, sql)
        })
        .collect();
    statements.push((
        "trial balance from journal lines".into(),
        "SELECT account, currency, sum(debit) AS debit, sum(credit) AS credit, \
         sum(debit) - sum(credit) AS balance FROM gl_journal_lines \
         WHERE company = 'MAIN' GROUP BY account, currency ORDER BY account, currency"
            .into(),
    ));
    statements.push((
        "ledger and stock across finance and materials".into(),
        "SELECT s.material, s.plant, s.quantity, s.value, m.account, \
         sum(m.debit) - sum(m.credit) AS ledger \
         FROM stock_levels s JOIN gl_account_movements m ON m.company = s.company \
         WHERE m.account = '1300' \
         GROUP BY s.material, s.plant, s.quantity, s.value, m.account \
         ORDER BY s.material, s.plant"
            .into(),
    ));
    statements.push((
        "the inventory reconciliation view".into(),
        "SELECT * FROM inventory_reconciliation ORDER BY account".into(),
    ));
    statements
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lake_queries_on_a_ballista_cluster_match_local_datafusion_and_survive_a_lost_executor() {
    let mut cluster = TestCluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path(), None);
    settings.ballista = Some(
        Cluster::parse(&cluster.address())
            .unwrap()
            .with_target_partitions(TARGET_PARTITIONS)
            .unwrap(),
    );
    let running = tributary::start(settings).await.unwrap();
    let app = TestApp::wrap(running, dir, None, Backend::Sqlite).await;

    // Finance and materials data: a goods receipt posted to the ledger, and entries over 2026.
    crate::procure_to_pay::one_open_purchase_order(&app).await;
    app.ok(
        "/api/v1/goods-receipts",
        json!({"purchase_order": "4500000077", "line": 10, "quantity": "2", "posting_date": "2026-03-02"}),
    )
    .await;
    for i in 0..ENTRIES {
        let amount = format!("{}.{:02}", 100 + i, i % 100);
        let (debit, credit) = if i % 3 == 0 {
            ("5000", "1000")
        } else {
            ("1000", "5900")
        };
        app.post_entry(
            &format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
            &[(debit, "debit", &amount), (credit, "credit", &amount)],
        )
        .await;
    }
    app.settle_reactors().await;
    app.settle().await;

    let lake = app.running().lake.clone();
    let on_cluster = app.running().query.clone();
    assert!(
        on_cluster.cluster().is_some(),
        "the query role has --ballista"
    );
    let local = QueryService::new(lake.clone(), QueryLimits::default());
    let everything = ReadScope::everything();

    // Every statement runs on the cluster (a new job) and answers what DataFusion answers here.
    for (name, sql) in statements() {
        let jobs = cluster.all_jobs();
        let expected = local.query(&sql, &everything).await.unwrap();
        let answered = on_cluster
            .query(&sql, &everything)
            .await
            .unwrap_or_else(|error| panic!("{name} on the cluster: {error}\n{}", cluster.logs()));
        assert_eq!(table(&answered), table(&expected), "{name}: {sql}");
        assert!(
            cluster.all_jobs().len() > jobs.len(),
            "{name} ran no job on the cluster: {sql}"
        );
    }
    assert!(crate::helpers::lake_count(&local, "SELECT count(*) FROM stock_levels").await > 0);

    // The trial balance report as a report run binds and runs it.
    let definition = tributary_reports::definition::builtin()
        .iter()
        .find(|definition| definition.name == "trial-balance")
        .unwrap();
    let values = BTreeMap::from([
        ("period".to_owned(), "2026-06".to_owned()),
        ("company".to_owned(), "MAIN".to_owned()),
    ]);
    let bound = || tributary_reports::parameters::bind(definition, &values).unwrap();
    let jobs = cluster.all_jobs();
    let expected = local
        .query_with_named_parameters(&definition.sql, bound(), &everything)
        .await
        .unwrap();
    let answered = on_cluster
        .query_with_named_parameters(&definition.sql, bound(), &everything)
        .await
        .unwrap();
    assert_eq!(expected.row_count(), 5, "{}", table(&expected));
    assert_eq!(
        table(&answered),
        table(&expected),
        "the trial balance report"
    );
    assert!(
        cluster.all_jobs().len() > jobs.len(),
        "the report ran no job"
    );

    // Over HTTP and over the wire too; catalog queries stay in the query role.
    let jobs = cluster.all_jobs();
    let rows = app.sql("SELECT count(*) AS n FROM gl_journal_lines").await;
    assert_eq!(rows[0][0], json!(2 * ENTRIES + 2), "{rows:?}");
    assert!(
        cluster.all_jobs().len() > jobs.len(),
        "/api/v1/sql ran no job"
    );
    let pg = app.running().pg_addr.unwrap();
    let options = tributary_lakehouse::wire::connection_string(pg, "admin")
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .password(TEST_ADMIN_PASSWORD);
    let mut wire = {
        use sqlx::Connection;
        sqlx::PgConnection::connect_with(&options).await.unwrap()
    };
    let jobs = cluster.all_jobs();
    let total: String =
        sqlx::query_scalar("SELECT CAST(sum(debit) AS VARCHAR) FROM gl_journal_lines")
            .fetch_one(&mut wire)
            .await
            .unwrap();
    let expected = local
        .query(
            "SELECT CAST(sum(debit) AS VARCHAR) FROM gl_journal_lines",
            &everything,
        )
        .await
        .unwrap();
    assert!(
        table(&expected).contains(&total),
        "{total} vs {}",
        table(&expected)
    );
    assert!(
        cluster.all_jobs().len() > jobs.len(),
        "the wire query ran no job"
    );
    // A statement with parameters (bound over the extended protocol) runs there too.
    let jobs = cluster.all_jobs();
    let bound: String = sqlx::query_scalar(
        "SELECT CAST(sum(debit) AS VARCHAR) FROM gl_journal_lines WHERE account = $1",
    )
    .bind("1000")
    .fetch_one(&mut wire)
    .await
    .unwrap();
    let expected = local
        .query(
            "SELECT CAST(sum(debit) AS VARCHAR) FROM gl_journal_lines WHERE account = '1000'",
            &everything,
        )
        .await
        .unwrap();
    assert!(
        table(&expected).contains(&bound) && bound != "0",
        "{bound} vs {}",
        table(&expected)
    );
    assert!(
        cluster.all_jobs().len() > jobs.len(),
        "the parameterised wire query ran no job"
    );
    let jobs = cluster.all_jobs();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_catalog.pg_class")
        .fetch_one(&mut wire)
        .await
        .unwrap();
    assert!(tables > 0);
    let _: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'gl_journal_lines'",
    )
    .fetch_one(&mut wire)
    .await
    .unwrap();
    assert_eq!(
        cluster.all_jobs(),
        jobs,
        "catalog queries ran on the cluster"
    );

    // Both executors ran tasks.
    for executor in 0..2 {
        assert!(
            !cluster.jobs(executor).is_empty(),
            "executor {executor} ran no task; logs:\n{}",
            cluster.logs()
        );
    }

    // An executor killed mid-query: the query still answers what DataFusion answers here.
    let heavy = "SELECT a.account, count(*) AS pairs, sum(b.debit) AS debit, sum(b.credit) AS credit \
                 FROM gl_journal_lines a JOIN gl_journal_lines b \
                   ON a.company = b.company AND a.period = b.period AND a.account = b.account \
                 GROUP BY a.account ORDER BY a.account";
    let expected = local.query(heavy, &everything).await.unwrap();
    // Many small tasks, so that the job is still running when the first of its tasks is done.
    let wide = QueryService::new(
        lake.clone(),
        QueryLimits {
            timeout_ms: 120_000,
            ..QueryLimits::default()
        },
    )
    .with_cluster(
        Cluster::parse(&cluster.address())
            .unwrap()
            .with_target_partitions(32)
            .unwrap(),
    );
    let before = cluster.jobs(1);
    let query = tokio::spawn({
        let wide = wide.clone();
        let everything = everything.clone();
        async move { wide.query(heavy, &everything).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while cluster.jobs(1) == before {
        assert!(
            !query.is_finished(),
            "the query ended before executor 1 ran a task of it: make it longer"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "executor 1 ran no task of the query in 60 s; logs:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.processes.kill_executor(1).await.unwrap();
    assert!(
        !query.is_finished(),
        "the query ended before executor 1 was killed: make it longer"
    );
    let answered = query.await.unwrap().unwrap_or_else(|error| {
        panic!(
            "the query failed after executor 1 was killed: {error}\n{}",
            cluster.logs()
        )
    });
    assert_eq!(
        table(&answered),
        table(&expected),
        "after losing an executor"
    );
}
