//! Stores written before aggregate types were qualified by context (`account` →
//! `finance.account`, issue 13) keep working: migrated on start, every stream loads, versions
//! continue, idempotency keys replay.
//!
//! The fixtures were written by the `tributary` binary of commit f555316 (the last before
//! issue 13) with the same requests on SQLite and on PostgreSQL (`pg_dump --inserts`): three
//! accounts (6000 renamed "Office rent"), fiscal year 2026, CAP-1 on 2026-01-05 (500.00, under
//! Idempotency-Key `legacy-1`), RENT-1 on 2026-01-20 (120.00) reversed on 2026-01-31, period
//! 2026-01 closed, INV-2 on 2026-02-03 (80.00).

use crate::helpers::{Backend, TestApp, TestDatabase, config};
use serde_json::json;

const SQLITE_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/legacy-store.sqlite"
);
const POSTGRES_FIXTURE: &str = include_str!("../fixtures/legacy-store.postgres.sql");

/// The fixtures' idempotency keys were recorded on 2026-12-01: kept for a century here, so the
/// replay is checked whenever the test runs (the default 24 hours expired them the next day).
fn kept_keys(mut config: tributary::Config) -> tributary::Config {
    config.idempotency_ttl = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    config
}

#[tokio::test]
async fn a_sqlite_store_written_before_qualified_aggregate_types_still_works() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(SQLITE_FIXTURE, dir.path().join("events.db")).unwrap();
    let running = tributary::start(kept_keys(config(dir.path(), None)))
        .await
        .unwrap();
    let app = TestApp::wrap(running, dir, None, Backend::Sqlite).await;
    the_legacy_history_loads_and_continues(&app).await;
}

#[tokio::test]
async fn a_postgres_store_written_before_qualified_aggregate_types_still_works() {
    let database = TestDatabase::create().await;
    {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
        sqlx::raw_sql(POSTGRES_FIXTURE)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let running = tributary::start(kept_keys(config(dir.path(), Some(&database))))
        .await
        .unwrap();
    let app = TestApp::wrap(running, dir, Some(database), Backend::Postgres).await;
    the_legacy_history_loads_and_continues(&app).await;
}

async fn the_legacy_history_loads_and_continues(app: &TestApp) {
    // Every stored event carries a qualified type now.
    let store = &app.running().store;
    let mut types = std::collections::BTreeSet::new();
    for event in store.read_feed(0, 1_000).await.unwrap().events {
        types.insert(event.aggregate_type);
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        vec![
            "finance.account",
            "finance.company",
            "finance.fiscal_year",
            "finance.journal_entry",
            "finance.period",
            // The first administrator, created on the first start of this version.
            "identity.user"
        ]
    );

    // The chart of accounts folds from the old streams, the rename included.
    let (status, accounts) = app.get("/api/v1/accounts").await;
    assert_eq!(status, 200, "{accounts}");
    let names: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Bank", "Revenue", "Office rent"]);

    // The idempotency key stored then still replays its response (the same bytes as then).
    let capital = r#"{"posting_date":"2026-01-05","reference":"CAP-1","lines":[{"account":"1000","debit":"500.00","currency":"EUR"},{"account":"4000","credit":"500.00","currency":"EUR"}]}"#;
    let (status, _, replay) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/journal-entries",
            Some(capital),
            &[("idempotency-key", "legacy-1")],
        )
        .await;
    assert_eq!(status, 201, "{replay}");
    assert_eq!(replay["reference"], "CAP-1");

    // The closed period is closed; reopening continues its stream; posting then works.
    let january = json!({"posting_date":"2026-01-25","lines":[
        {"account":"6000","debit":"10.00","currency":"EUR"},
        {"account":"1000","credit":"10.00","currency":"EUR"}]});
    let (status, refused) = app.post("/api/v1/journal-entries", january.clone()).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["rule"], "period_closed");
    app.ok("/api/v1/periods/2026-01/reopen", json!(null)).await;
    app.ok("/api/v1/journal-entries", january).await;
    app.post_entry(
        "2026-02-10",
        &[("1000", "debit", "7.00"), ("4000", "credit", "7.00")],
    )
    .await;

    // The reversed entry loads as reversed: a second reversal is refused.
    app.settle().await;
    let rent = app
        .sql("SELECT entry_id FROM gl_journal_lines WHERE reference = 'RENT-1' AND reversal_of IS NULL AND line_no = 1")
        .await;
    let rent = rent[0][0].as_str().unwrap().to_owned();
    let (status, again) = app
        .post(
            &format!("/api/v1/journal-entries/{rent}/reverse"),
            json!({"posting_date": "2026-02-28"}),
        )
        .await;
    assert_eq!(status, 422, "{again}");
    assert_eq!(again["errors"][0]["rule"], "entry_already_reversed");

    // The ledger from the migrated store: 500 - 120 + 120 - 10 + 80 + 7 in the bank.
    let (status, balance) = app.get("/api/v1/accounts/1000/balance").await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["balance"], "577.00");
}
