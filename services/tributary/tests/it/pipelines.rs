//! Pipelines per context (issue 13, point 3): undecodable events go to the dead letters and
//! never stop the stream, a table behind the others backfills without holding them back,
//! pipeline SQL joins lake tables, and a table whose definition gains a column evolves in place.

use crate::helpers::{Backend, TestApp, clean_lake, open_lake, pipelines};
use serde_json::{Value, json};
use tributary_ingest::EventSource;
use tributary_kernel::lake::{ColumnSpec, ColumnType, LakeTable};
use tributary_kernel::{AppendBatch, NewEvent, StreamWrite};
use tributary_lakehouse::catalog::TableDefinition;
use tributary_lakehouse::{Lake, QueryLimits, QueryService};
use tributary_pipelines::{Pipeline, Pipelines, Runner, RunnerOptions};

/// A JournalEntryPosted written straight to the store with the given payload.
fn posted(payload: Value) -> AppendBatch {
    AppendBatch {
        context: "finance".into(),
        writes: vec![StreamWrite {
            aggregate_type: "finance.journal_entry".into(),
            aggregate_id: uuid::Uuid::now_v7().to_string(),
            expected_version: 0,
            events: vec![NewEvent {
                event_type: "JournalEntryPosted".into(),
                event_version: 1,
                payload,
            }],
        }],
        reads: vec![],
        metadata: Default::default(),
        idempotency: None,
        time: chrono::Utc::now(),
    }
}

async fn rows(query: &QueryService, sql: &str) -> Vec<Vec<tributary_kernel::lake::Cell<'static>>> {
    use tributary_kernel::lake::LakeReader;
    query.rows(sql, vec![]).await.unwrap().rows
}

#[tokio::test]
async fn undecodable_events_go_to_the_dead_letters_once_and_the_stream_goes_on() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    app.post_entry(
        "2026-01-05",
        &[("1000", "debit", "10.00"), ("4000", "credit", "10.00")],
    )
    .await;
    let store = app.running().store.clone();
    // Not an entry at all, and an entry whose amount is finer than the lake's four decimals.
    let broken = store
        .append(posted(json!({"entry_id": "not-a-uuid", "lines": 7})))
        .await
        .unwrap();
    let mut fine_grained = serde_json::from_str::<Value>(include_str!(
        "../../../finance/fixtures/events/finance.journal_entry/JournalEntryPosted.v1.json"
    ))
    .unwrap();
    fine_grained["lines"][0]["debit"] = json!("0.00001");
    let too_fine = store.append(posted(fine_grained)).await.unwrap();
    app.post_entry(
        "2026-01-06",
        &[("1000", "debit", "20.00"), ("4000", "credit", "20.00")],
    )
    .await;
    app.settle().await;

    let lines = app
        .sql("SELECT count(*), sum(debit) FROM gl_journal_lines")
        .await;
    assert_eq!(lines[0][0], 4, "the entries around the broken ones landed");
    assert_eq!(lines[0][1], "30.0000");
    let letters = app
        .sql("SELECT context, relation, stream, position, event_id, event_type, payload, error FROM pipeline_dead_letters ORDER BY position")
        .await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0][0], "finance");
    assert_eq!(letters[0][1], "finance_journal_lines");
    assert_eq!(letters[0][2], "feed");
    assert_eq!(letters[0][3], broken[0].cursor);
    assert_eq!(letters[0][4], broken[0].id.to_string());
    assert_eq!(letters[0][5], "JournalEntryPosted");
    assert!(letters[0][6].as_str().unwrap().contains("not-a-uuid"));
    assert!(!letters[0][7].as_str().unwrap().is_empty());
    assert_eq!(letters[1][3], too_fine[0].cursor);
    assert!(
        letters[1][7]
            .as_str()
            .unwrap()
            .contains("more than 4 decimals"),
        "{:?}",
        letters[1][7]
    );

    // A restart reads the same events again: no dead letter twice, and the stream goes on.
    app.restart().await;
    app.post_entry(
        "2026-01-07",
        &[("1000", "debit", "5.00"), ("4000", "credit", "5.00")],
    )
    .await;
    app.settle().await;
    assert_eq!(
        app.sql("SELECT count(*) FROM pipeline_dead_letters").await[0][0],
        2
    );
    assert_eq!(
        app.sql("SELECT count(*) FROM gl_journal_lines").await[0][0],
        6
    );
}

#[tokio::test]
async fn a_table_behind_backfills_without_holding_back_the_others() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    for i in 0..6 {
        app.post_sample_entry(i, 3, 100).await;
    }
    let store = app.running().store.clone();
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().display().to_string();
    let options = || RunnerOptions {
        batch_events_max: 2,
        ..RunnerOptions::default()
    };
    let mut runner = Runner::new(
        "finance",
        EventSource::Store(store.clone()),
        open_lake(&location).await.unwrap(),
        pipelines(),
        options(),
    )
    .await
    .unwrap();
    runner.catch_up().await.unwrap();
    // gl_account_changes starts over, as a newly added table does.
    std::fs::remove_dir_all(dir.path().join("gl_account_changes")).unwrap();
    let lake = open_lake(&location).await.unwrap();
    let query = QueryService::new(lake.clone(), QueryLimits::default());
    let entry = app
        .post_entry(
            "2026-03-03",
            &[("1000", "debit", "77.00"), ("4000", "credit", "77.00")],
        )
        .await;
    let mut runner = Runner::new(
        "finance",
        EventSource::Store(store.clone()),
        lake.clone(),
        pipelines(),
        options(),
    )
    .await
    .unwrap();
    let (_clean_dir, clean) = clean_lake(&store).await;
    let clean = QueryService::new(clean, QueryLimits::default());
    runner.step().await.unwrap();
    let id = entry["id"].as_str().unwrap();
    let fresh = rows(
        &query,
        &format!("SELECT count(*) FROM gl_journal_lines WHERE entry_id = '{id}'"),
    )
    .await;
    assert_eq!(
        fresh[0][0],
        tributary_kernel::lake::Cell::Int64(2),
        "the new entry is in the lake after one step"
    );
    let count = "SELECT count(*) FROM gl_account_changes";
    let (changes, all) = (rows(&query, count).await, rows(&clean, count).await);
    assert!(
        changes[0][0].to_json().as_i64() < all[0][0].to_json().as_i64(),
        "the backfill has read only its first two events: {changes:?} of {all:?}"
    );
    runner.catch_up().await.unwrap();
    // Movements are per micro-batch: the same once rolled up.
    for sql in [
        "SELECT * FROM gl_account_changes ORDER BY event_position",
        "SELECT * FROM gl_journal_lines ORDER BY event_position, line_no",
        "SELECT company, account, currency, posting_date, sum(debit), sum(credit), sum(line_count) \
         FROM gl_account_movements GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    ] {
        assert_eq!(
            rows(&query, sql).await,
            rows(&clean, sql).await,
            "{sql}: equals a clean run's"
        );
    }
}

#[tokio::test]
async fn pipeline_sql_joins_lake_tables_besides_the_micro_batch() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    app.post_entry(
        "2026-01-05",
        &[("1000", "debit", "10.00"), ("4000", "credit", "10.00")],
    )
    .await;
    let store = app.running().store.clone();
    let dir = tempfile::tempdir().unwrap();
    let named = LakeTable {
        name: "test_named_lines",
        description: "journal lines with the account's name from the lake",
        columns: vec![
            ColumnSpec::new("entry_id", ColumnType::Text, false),
            ColumnSpec::new("account", ColumnType::Text, false),
            ColumnSpec::new("account_name", ColumnType::Text, true),
        ],
        partition_columns: &[],
        stats_columns: None,
    };
    let mut tables = tributary::modules::tables(&tributary::modules::all());
    tables.push(TableDefinition::of(&named));
    let lake = Lake::open(&dir.path().display().to_string(), tables)
        .await
        .unwrap();
    // The chart of accounts reaches the lake first, then the joining pipeline runs.
    Runner::new(
        "finance",
        EventSource::Store(store.clone()),
        lake.clone(),
        pipelines(),
        RunnerOptions::default(),
    )
    .await
    .unwrap()
    .catch_up()
    .await
    .unwrap();
    let joining = Pipelines {
        pipelines: vec![Pipeline {
            table: "test_named_lines",
            sql: "SELECT l.entry_id, l.account, c.name AS account_name \
                  FROM finance_journal_lines l LEFT JOIN gl_account_changes c \
                  ON c.company = l.company AND c.account = l.account AND c.change = 'AccountCreated'",
        }],
        relations: pipelines().relations,
    };
    Runner::new(
        "test",
        EventSource::Store(store.clone()),
        lake.clone(),
        joining,
        RunnerOptions::default(),
    )
    .await
    .unwrap()
    .catch_up()
    .await
    .unwrap();
    let query = QueryService::new(lake, QueryLimits::default());
    let named = rows(
        &query,
        "SELECT account, account_name FROM test_named_lines ORDER BY account",
    )
    .await;
    assert_eq!(
        named,
        vec![
            vec![
                tributary_kernel::lake::Cell::owned("1000".into()),
                tributary_kernel::lake::Cell::owned("Bank".into())
            ],
            vec![
                tributary_kernel::lake::Cell::owned("4000".into()),
                tributary_kernel::lake::Cell::owned("Revenue".into())
            ],
        ]
    );
}

#[tokio::test]
async fn a_table_whose_definition_gains_a_column_evolves_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().display().to_string();
    let mut table = LakeTable {
        name: "test_evolving",
        description: "a table that gains a column",
        columns: vec![
            ColumnSpec::new("id", ColumnType::Int64, false),
            ColumnSpec::new("amount", ColumnType::MONEY, false),
        ],
        partition_columns: &[],
        stats_columns: None,
    };
    let append = |lake: Lake, definition: TableDefinition, id: i64| async move {
        use datafusion::arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray};
        let mut columns: Vec<ArrayRef> = vec![
            std::sync::Arc::new(Int64Array::from(vec![id])),
            std::sync::Arc::new(
                Decimal128Array::from(vec![12_500])
                    .with_precision_and_scale(38, 4)
                    .unwrap(),
            ),
        ];
        if definition.schema.fields().len() == 3 {
            columns.push(std::sync::Arc::new(StringArray::from(vec!["new"])));
        }
        let batch =
            datafusion::arrow::record_batch::RecordBatch::try_new(definition.schema, columns)
                .unwrap();
        lake.append(definition.name, vec![batch], &[])
            .await
            .unwrap();
    };
    let first = TableDefinition::of(&table);
    let lake = Lake::open(&location, vec![first.clone()]).await.unwrap();
    append(lake, first, 1).await;

    table
        .columns
        .push(ColumnSpec::new("note", ColumnType::Text, true));
    let second = TableDefinition::of(&table);
    let lake = Lake::open(&location, vec![second.clone()]).await.unwrap();
    append(lake.clone(), second, 2).await;
    let query = QueryService::new(lake, QueryLimits::default());
    use tributary_kernel::lake::Cell;
    assert_eq!(
        rows(
            &query,
            "SELECT id, amount, note FROM test_evolving ORDER BY id"
        )
        .await,
        vec![
            vec![
                Cell::Int64(1),
                Cell::Decimal("1.2500".parse().unwrap()),
                Cell::Null
            ],
            vec![
                Cell::Int64(2),
                Cell::Decimal("1.2500".parse().unwrap()),
                Cell::owned("new".into())
            ],
        ]
    );

    table
        .columns
        .push(ColumnSpec::new("required", ColumnType::Int32, false));
    let error = Lake::open(&location, vec![TableDefinition::of(&table)])
        .await
        .expect_err("a new NOT NULL column is refused");
    assert!(
        error
            .to_string()
            .contains("new column required must be nullable"),
        "{error}"
    );
    table.columns.remove(0);
    let error = Lake::open(&location, vec![TableDefinition::of(&table)])
        .await
        .expect_err("a dropped column is refused");
    assert!(error.to_string().contains("column id"), "{error}");
}

#[tokio::test]
async fn a_batch_interval_spaces_the_commits_of_a_steady_stream() {
    use std::time::{Duration, Instant};
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    let store = app.running().store.clone();
    let dir = tempfile::tempdir().unwrap();
    let lake = open_lake(&dir.path().display().to_string()).await.unwrap();
    let interval = Duration::from_millis(1_000);
    let mut runner = Runner::new(
        "finance",
        EventSource::Store(store.clone()),
        lake.clone(),
        pipelines(),
        RunnerOptions {
            batch_interval_min: interval,
            ..RunnerOptions::default()
        },
    )
    .await
    .unwrap();
    runner.catch_up().await.unwrap();
    let version = |status: tributary_lakehouse::TableStatus| status.version.unwrap_or(0);
    let before = version(lake.status("gl_journal_lines").await.unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(runner.run(stopped));
    // A steady stream: an entry every 50 ms, each waking the runner.
    let started = Instant::now();
    let entries = 30;
    for i in 0..entries {
        app.post_sample_entry(i, 3, 100).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while lake.row_count("gl_journal_lines").await.unwrap() < 2 * entries as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the lake did not get every line"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    stop.send_replace(true);
    task.await.unwrap();
    assert_eq!(
        lake.row_count("gl_journal_lines").await.unwrap(),
        2 * entries as u64,
        "every line once"
    );
    let commits = version(lake.status("gl_journal_lines").await.unwrap()) - before;
    // At most one batch per interval (and the first at once); without the interval each entry
    // would be a batch of its own.
    let most = u64::try_from(elapsed.as_millis() / interval.as_millis()).unwrap() + 2;
    assert!(
        (2..=most).contains(&commits),
        "{commits} commits in {elapsed:?} with a batch every {interval:?} at most"
    );
}
