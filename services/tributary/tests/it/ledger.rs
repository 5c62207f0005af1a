//! Posting, reversing and period rules end to end: REST in, SQL and read APIs out.

use crate::helpers::{Backend, TestApp, TestDatabase};
use serde_json::json;

crate::on_both_backends!(
    posted_entries_appear_in_sql_with_exact_balances,
    a_reversal_nets_the_account_to_zero_and_links_both_entries,
    closed_periods_refuse_postings_until_reopened,
    idempotency_keys_replay_the_first_response_and_refuse_other_bodies,
    accounts_can_be_renamed_blocked_and_listed,
);

/// Two processes on one database. Postings keep the ledger streams they read for a moment, yet
/// one never goes through an account another process blocked meanwhile (the decision's pin
/// fails, and it is decided again), and an account another process created meanwhile is not
/// refused (a refusal is decided again from fresh streams).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postings_see_what_another_process_changed_a_moment_ago() {
    let database = TestDatabase::create().await;
    let other = database.alias(database.url.clone());
    let dir = tempfile::tempdir().unwrap();
    let running = tributary::start(crate::helpers::config(dir.path(), Some(&database)))
        .await
        .unwrap();
    let first = TestApp::attach(running, dir, database).await;
    let dir = tempfile::tempdir().unwrap();
    let running = tributary::start(crate::helpers::config(dir.path(), Some(&other)))
        .await
        .unwrap();
    let second = TestApp::attach(running, dir, other).await;
    first.setup_ledger().await;
    let (_, companies) = first.get("/api/v1/companies").await;
    let company = companies[0]["code"].as_str().expect("a company").to_owned();
    let entry = |debit: &str, credit: &str| {
        json!({"company": company, "posting_date": "2026-01-02", "lines": [
            {"account": debit, "debit": "5.00", "currency": "EUR"},
            {"account": credit, "credit": "5.00", "currency": "EUR"}]})
    };
    let refused = |answer: &(u16, serde_json::Value)| {
        (
            answer.0,
            answer.1["errors"][0]["rule"].as_str().map(str::to_owned),
        )
    };
    // The first process reads 1000, 4000 and 5000 (missing) and keeps them.
    first
        .ok("/api/v1/journal-entries", entry("1000", "4000"))
        .await;
    let answer = first
        .post("/api/v1/journal-entries", entry("1000", "5000"))
        .await;
    assert_eq!(
        refused(&answer),
        (422, Some("account_not_found".into())),
        "{answer:?}"
    );
    // The second blocks 4000 and creates 5000.
    let (status, _, body) = second
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/accounts/4000?company={company}"),
            Some(r#"{"blocked":true}"#),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    second
        .ok(
            "/api/v1/accounts",
            json!({"company": company, "number": "5000", "name": "Sales", "type": "revenue", "currency": "EUR"}),
        )
        .await;
    // 5000 first: the conflict of a stale pin drops everything the process kept.
    let (status, body) = first
        .post("/api/v1/journal-entries", entry("1000", "5000"))
        .await;
    assert_eq!(status, 201, "{body}");
    let answer = first
        .post("/api/v1/journal-entries", entry("1000", "4000"))
        .await;
    assert_eq!(
        refused(&answer),
        (422, Some("account_blocked".into())),
        "{answer:?}"
    );
    second.stop().await;
    first.stop().await;
}

async fn posted_entries_appear_in_sql_with_exact_balances(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.setup_ledger().await;
    app.post_entry(
        "2026-01-05",
        &[
            ("1000", "debit", "10000.00"),
            ("3000", "credit", "10000.00"),
        ],
    )
    .await;
    app.post_entry(
        "2026-01-15",
        &[("1200", "debit", "1250.10"), ("4000", "credit", "1250.10")],
    )
    .await;
    app.post_entry(
        "2026-01-20",
        &[
            ("6000", "debit", "0.1"),
            ("6000", "debit", "0.2"),
            ("1000", "credit", "0.3"),
        ],
    )
    .await;
    app.post_entry(
        "2026-02-03",
        &[("1000", "debit", "1250.10"), ("1200", "credit", "1250.10")],
    )
    .await;
    app.settle().await;

    let rows = app
        .sql("SELECT count(*) AS n, sum(debit) AS d, sum(credit) AS c FROM gl_journal_lines")
        .await;
    assert_eq!(rows[0], json!([9, "12500.5000", "12500.5000"]));
    // 0.1 + 0.2 is exactly 0.3 here: no float ever touched the amounts.
    let rent = app
        .sql("SELECT balance FROM gl_account_balances WHERE account = '6000'")
        .await;
    assert_eq!(rent[0], json!(["0.3000"]));

    let (status, balance) = app
        .get("/api/v1/accounts/1000/balance?as_of=2026-01-31")
        .await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(
        (
            balance["debit_total"].as_str(),
            balance["credit_total"].as_str(),
            balance["balance"].as_str()
        ),
        (Some("10000.00"), Some("0.30"), Some("9999.70"))
    );
    let (_, later) = app.get("/api/v1/accounts/1000/balance").await;
    assert_eq!(later["balance"], "11249.80");

    let (status, trial) = app.get("/api/v1/trial-balance?period=2026-02").await;
    assert_eq!(status, 200, "{trial}");
    let receivables = trial["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == "1200")
        .cloned()
        .unwrap();
    assert_eq!(
        receivables,
        json!({"account": "1200", "name": "Receivables", "type": "asset", "currency": "EUR", "opening_balance": "1250.10", "period_debit": "0.00", "period_credit": "1250.10", "closing_balance": "0.00"})
    );
    assert_eq!(
        trial["totals"],
        json!([{"currency": "EUR", "opening_balance": "0.00", "period_debit": "1250.10", "period_credit": "1250.10", "closing_balance": "0.00"}])
    );

    let (status, csv_type, _) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/sql",
            Some(r#"{"sql":"SELECT account, balance FROM gl_account_balances ORDER BY account"}"#),
            &[("accept", "text/csv")],
        )
        .await;
    assert_eq!((status, csv_type.starts_with("text/csv")), (200, true));
    app.stop().await;
}

async fn a_reversal_nets_the_account_to_zero_and_links_both_entries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.setup_ledger().await;
    let entry = app
        .post_entry(
            "2026-03-10",
            &[("6000", "debit", "800.00"), ("1000", "credit", "800.00")],
        )
        .await;
    let id = entry["id"].as_str().unwrap().to_owned();
    let (status, reversal) = app
        .post(
            &format!("/api/v1/journal-entries/{id}/reverse"),
            json!({"posting_date": "2026-03-31"}),
        )
        .await;
    assert_eq!(status, 201, "{reversal}");
    assert_eq!(reversal["reversal_of"], json!(id));
    assert_eq!(
        reversal["lines"][0],
        json!({"line_no": 1, "account": "6000", "debit": null, "credit": "800.00", "currency": "EUR", "cost_center": null, "text": null})
    );
    let (_, original) = app.get(&format!("/api/v1/journal-entries/{id}")).await;
    assert_eq!(original["reversed_by"], reversal["id"]);
    assert_eq!(
        original["lines"], entry["lines"],
        "the original entry is unchanged"
    );
    let (status, again) = app
        .post(
            &format!("/api/v1/journal-entries/{id}/reverse"),
            json!({"posting_date": "2026-03-31"}),
        )
        .await;
    assert_eq!(
        (status, again["errors"][0]["rule"].as_str()),
        (422, Some("entry_already_reversed"))
    );

    app.settle().await;
    let (_, balance) = app.get("/api/v1/accounts/6000/balance").await;
    assert_eq!(
        (
            balance["debit_total"].as_str(),
            balance["credit_total"].as_str(),
            balance["balance"].as_str()
        ),
        (Some("800.00"), Some("800.00"), Some("0.00"))
    );
    let links = app
        .sql(&format!(
            "SELECT count(*) FROM gl_journal_lines WHERE reversal_of = '{id}'"
        ))
        .await;
    assert_eq!(links[0], json!([2]));
    app.stop().await;
}

async fn closed_periods_refuse_postings_until_reopened(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.setup_ledger().await;
    let (status, closed) = app.post("/api/v1/periods/2026-04/close", json!(null)).await;
    assert_eq!(
        (status, closed["status"].as_str()),
        (200, Some("closed")),
        "{closed}"
    );
    let before = app.event_count().await;
    let (status, refused) = app
        .post("/api/v1/journal-entries", json!({"posting_date": "2026-04-10", "lines": [{"account": "1000", "debit": "5", "currency": "EUR"}, {"account": "4000", "credit": "5", "currency": "EUR"}]}))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        (
            refused["errors"][0]["field"].as_str(),
            refused["errors"][0]["rule"].as_str()
        ),
        (Some("posting_date"), Some("period_closed"))
    );
    assert_eq!(
        app.event_count().await,
        before,
        "a refused posting stores nothing"
    );
    let (status, twice) = app.post("/api/v1/periods/2026-04/close", json!(null)).await;
    assert_eq!(
        (status, twice["errors"][0]["rule"].as_str()),
        (422, Some("period_already_closed"))
    );
    let (status, _) = app
        .post("/api/v1/periods/2026-04/reopen", json!(null))
        .await;
    assert_eq!(status, 200);
    app.post_entry(
        "2026-04-10",
        &[("1000", "debit", "5"), ("4000", "credit", "5")],
    )
    .await;
    app.stop().await;
}

async fn idempotency_keys_replay_the_first_response_and_refuse_other_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.setup_ledger().await;
    let body = json!({"posting_date": "2026-05-02", "lines": [{"account": "1000", "debit": "42.00", "currency": "EUR"}, {"account": "4000", "credit": "42.00", "currency": "EUR"}]}).to_string();
    let key = [("idempotency-key", "order-17")];
    let (first_status, _, first) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/journal-entries",
            Some(&body),
            &key,
        )
        .await;
    let count = app.event_count().await;
    let (second_status, _, second) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/journal-entries",
            Some(&body),
            &key,
        )
        .await;
    assert_eq!((first_status, second_status), (201, 201));
    assert_eq!(
        first, second,
        "the same key and body replay the first response"
    );
    assert_eq!(app.event_count().await, count, "a replay stores nothing");
    let other = body.replace("42.00", "43.00");
    let (status, content_type, problem) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/journal-entries",
            Some(&other),
            &key,
        )
        .await;
    assert_eq!(
        (status, content_type.as_str(), problem["type"].as_str()),
        (
            409,
            "application/problem+json",
            Some("https://tributary.dev/problems/idempotency_key_reused")
        )
    );
    assert_eq!(app.event_count().await, count);
    app.settle().await;
    assert_eq!(
        app.sql("SELECT count(*) FROM gl_journal_lines").await[0],
        json!([2])
    );
    app.stop().await;
}

async fn accounts_can_be_renamed_blocked_and_listed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.setup_ledger().await;
    let (status, _, changed) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/accounts/4000",
            Some(r#"{"name":"Service revenue","blocked":true}"#),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["name"].as_str(), changed["blocked"].as_bool()),
        (Some("Service revenue"), Some(true))
    );
    let (_, accounts) = app.get("/api/v1/accounts").await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(6));
    let (status, refused) = app
        .post("/api/v1/journal-entries", json!({"posting_date": "2026-01-02", "lines": [{"account": "1000", "debit": "1", "currency": "EUR"}, {"account": "4000", "credit": "1", "currency": "EUR"}]}))
        .await;
    assert_eq!(
        (
            status,
            refused["errors"][0]["field"].as_str(),
            refused["errors"][0]["rule"].as_str()
        ),
        (422, Some("lines[1].account"), Some("account_blocked"))
    );
    app.settle().await;
    let current = app
        .sql("SELECT name, account_type, blocked FROM gl_accounts WHERE account = '4000'")
        .await;
    assert_eq!(current[0], json!(["Service revenue", "revenue", true]));
    let (status, _, _) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/accounts/9999",
            Some(r#"{"blocked":true}"#),
            &[],
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}
