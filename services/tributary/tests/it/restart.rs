//! Restarts and crashes: nothing accepted is lost, nothing is counted twice.

use crate::helpers::{Backend, TestApp};
use serde_json::json;
use tributary_ingest::EventSource;
use tributary_kernel::EventStore;
use tributary_lakehouse::{Lake, QueryLimits, QueryService};
use tributary_pipelines::{PipelineError, Runner, RunnerOptions};

crate::on_both_backends!(
    a_restart_keeps_balances_and_new_posts_continue,
    a_pipeline_crashing_between_commits_resumes_to_the_clean_lake
);

async fn a_restart_keeps_balances_and_new_posts_continue(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.setup_ledger().await;
    for day in 1..=5 {
        app.post_entry(
            &format!("2026-01-{day:02}"),
            &[("1000", "debit", "100.25"), ("4000", "credit", "100.25")],
        )
        .await;
    }
    app.settle().await;
    let (_, before) = app.get("/api/v1/accounts/1000/balance").await;
    assert_eq!(before["balance"], "501.25");

    app.restart().await;
    app.settle().await;
    let (_, after) = app.get("/api/v1/accounts/1000/balance").await;
    assert_eq!(after, before, "a restart changes no balance");

    app.post_entry(
        "2026-01-06",
        &[("1000", "debit", "0.75"), ("4000", "credit", "0.75")],
    )
    .await;
    app.settle().await;
    let (_, continued) = app.get("/api/v1/accounts/1000/balance").await;
    assert_eq!(continued["balance"], "502.00");
    assert_eq!(
        app.sql("SELECT count(*) FROM gl_journal_lines").await[0],
        json!([12])
    );
    app.stop().await;
}

/// Every table's rows in a canonical order; the movements rolled up by key, because their
/// rows are per-micro-batch partial sums whose split depends on where batches ended.
pub(crate) async fn lake_contents(lake: &Lake) -> Vec<String> {
    // Whole tables are compared: no row limit worth the name.
    let limits = QueryLimits {
        timeout_ms: 600_000,
        rows_max: 100_000_000,
        answer_bytes_max: usize::MAX,
        ..Default::default()
    };
    let query = QueryService::new(lake.clone(), limits);
    let mut contents = Vec::new();
    for sql in [
        "SELECT * FROM gl_journal_lines ORDER BY event_position, line_no",
        "SELECT * FROM gl_account_changes ORDER BY event_position",
        "SELECT company, account, currency, period, posting_date, sum(debit), sum(credit), sum(line_count) \
         FROM gl_account_movements GROUP BY company, account, currency, period, posting_date ORDER BY 1, 2, 3, 4, 5",
    ] {
        let result = query
            .query(sql, &tributary_lakehouse::ReadScope::everything())
            .await
            .expect("lake query");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&result.batches)
            .expect("format")
            .to_string();
        contents.push(text);
    }
    contents
}

async fn a_pipeline_crashing_between_commits_resumes_to_the_clean_lake(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.setup_ledger().await;
    for i in 0..60 {
        app.post_sample_entry(i, 3, 10).await;
        if i % 20 == 0 {
            let (status, _, _) = app
                .request(
                    reqwest::Method::PATCH,
                    "/api/v1/accounts/6000",
                    Some(&format!(r#"{{"name":"Rent {i}"}}"#)),
                    &[],
                )
                .await;
            assert_eq!(status, 200);
        }
    }
    let url = app.running().store.backend().to_owned();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", app.dir.path().join("events.db").display()),
        Backend::Postgres => app.database.as_ref().expect("database").url.clone(),
    };
    let store = EventStore::connect(&database_url, 4)
        .await
        .expect("connect");
    assert_eq!(store.backend(), url);

    // Crash run: small batches, and a failure after 1, 2 or 3 table commits, again and again.
    let crash_dir = tempfile::tempdir().expect("temp dir");
    let crash_lake = crate::helpers::open_lake(&crash_dir.path().display().to_string())
        .await
        .expect("lake");
    let mut crashes = 0;
    for attempt in 0..1_000 {
        let options = RunnerOptions {
            batch_events_max: 3,
            fault_after_commits: Some(1 + attempt % 3),
            ..RunnerOptions::default()
        };
        let mut runner = Runner::new(
            "finance",
            EventSource::Store(store.clone()),
            crash_lake.clone(),
            crate::helpers::pipelines(),
            options,
        )
        .await
        .expect("runner");
        match runner.catch_up().await {
            Ok(()) => break,
            Err(PipelineError::InjectedFault { .. }) => crashes += 1,
            Err(other) => panic!("unexpected pipeline error: {other}"),
        }
    }
    assert!(
        crashes >= 20,
        "the run should have crashed at many points, crashed {crashes} times"
    );

    // Clean run: one runner, default batches, over the same events.
    let (_clean_dir, clean_lake) = crate::helpers::clean_lake(&store).await;

    let crashed = lake_contents(&crash_lake).await;
    let clean = lake_contents(&clean_lake).await;
    assert!(
        clean[0].lines().count() > 120,
        "the clean lake holds every line: {}",
        clean[0].lines().count()
    );
    assert_eq!(
        crashed, clean,
        "after {crashes} crashes the lake equals a clean run"
    );

    // And the live app's own lake agrees too.
    app.settle().await;
    assert_eq!(lake_contents(&app.running().lake).await, clean);
    app.stop().await;
}
