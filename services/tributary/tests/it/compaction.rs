//! Compaction of the lake's small files: one file per pipeline batch becomes one file, the rows
//! and their sums are unchanged, and the pipelines go on from where they were, also after a
//! restart (their progress markers survive the rewrite).

use crate::helpers::{Backend, TestApp};
use tributary::maintenance::{CompactionOptions, compact_once, lease_table};

const COUNTS: &str = "SELECT count(*) AS lines, count(DISTINCT entry_id || '/' || CAST(line_no AS VARCHAR)) AS distinct_lines, \
                      CAST(sum(debit) AS VARCHAR) AS debits FROM gl_journal_lines";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_row_once_and_the_pipelines_going() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    // One batch, hence one file per table, per entry.
    for i in 1..=12 {
        app.post_sample_entry(i, 5, 10).await;
        app.settle().await;
    }
    let lake = app.running().lake.clone();
    let files_before = lake.file_count("gl_journal_lines").await.unwrap();
    assert!(files_before >= 12, "{files_before} files");
    let before = app.sql(COUNTS).await;

    let options = CompactionOptions {
        files_min: 4,
        ..CompactionOptions::default()
    };
    let compacted = compact_once(&lake, &app.running().store, &options)
        .await
        .unwrap();
    assert!(
        compacted >= 2,
        "journal lines and movements compacted: {compacted}"
    );
    assert_eq!(lake.file_count("gl_journal_lines").await.unwrap(), 1);
    assert_eq!(app.sql(COUNTS).await, before, "same rows after compaction");
    // A table under the threshold is left alone.
    assert_eq!(
        compact_once(&lake, &app.running().store, &options)
            .await
            .unwrap(),
        0
    );

    app.post_sample_entry(13, 5, 10).await;
    app.settle().await;
    let after = app.sql(COUNTS).await;
    assert_eq!(after[0][0], before[0][0].as_i64().unwrap() + 2);
    assert_eq!(after[0][0], after[0][1], "no line twice");

    app.restart().await;
    app.settle().await;
    assert_eq!(
        app.sql(COUNTS).await,
        after,
        "nothing replayed after a restart"
    );
    app.stop().await;
}

/// Pipeline workers in several processes compact the same tables: a lease per table lets one
/// process at a time rewrite a table, from its newest version. Two processes are two lake
/// handles over one location and two connections to one event store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_compacting_one_lake_leave_every_row_once() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.setup_ledger().await;
    let store = &app.running().store;
    let first = app.running().lake.clone();
    let location = tributary::lake_location(app.dir.path(), None);
    // The other process's handle, loaded now: stale once the first process commits.
    let second = tributary::modules::open_lake(&location, &tributary::modules::all())
        .await
        .unwrap();
    let options = CompactionOptions {
        files_min: 2,
        ..CompactionOptions::default()
    };
    let mut entry = 0;
    let mut post_files = async |count: u32| {
        for _ in 0..count {
            entry += 1;
            app.post_sample_entry(entry, 5, 10).await;
            app.settle().await;
        }
        app.sql(COUNTS).await
    };

    // While another process holds the table's lease, this one leaves the table alone.
    let before = post_files(4).await;
    let files = first.file_count("gl_journal_lines").await.unwrap();
    assert!(files >= 4, "{files} files");
    let held = lease_table(store, "gl_journal_lines")
        .await
        .unwrap()
        .unwrap();
    assert!(
        lease_table(store, "gl_journal_lines")
            .await
            .unwrap()
            .is_none()
    );
    compact_once(&second, store, &options).await.unwrap();
    assert_eq!(first.file_count("gl_journal_lines").await.unwrap(), files);
    drop(held);

    // Dropping the lease closes its connection: PostgreSQL lets the lock go once it notices.
    let started = std::time::Instant::now();
    while compact_once(&first, store, &options).await.unwrap() == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the lease was not let go"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The stale handle compacts nothing a second time after the first process compacted.
    assert_eq!(first.file_count("gl_journal_lines").await.unwrap(), 1);
    assert_eq!(compact_once(&second, store, &options).await.unwrap(), 0);
    assert_eq!(app.sql(COUNTS).await, before, "same rows after compaction");

    // Both at once, several times: every table is compacted by one of them, rows stay once.
    for _ in 0..3 {
        let before = post_files(3).await;
        let (one, other) = tokio::join!(
            compact_once(&first, store, &options),
            compact_once(&second, store, &options)
        );
        assert!(one.unwrap() + other.unwrap() >= 1);
        let after = app.sql(COUNTS).await;
        assert_eq!(after, before, "same rows after compacting twice at once");
        assert_eq!(after[0][0], after[0][1], "no line twice");
    }
    app.stop().await;
}

/// `tributary lake …` on the test's data directory; answers its standard output.
async fn lake_command(app: &TestApp, arguments: &[&str]) -> String {
    let data_dir = app.dir.path().to_str().unwrap();
    let mut all = vec!["lake"];
    all.extend_from_slice(arguments);
    all.extend_from_slice(&["--data-dir", data_dir]);
    crate::helpers::succeeded(&crate::helpers::tributary(&all).await)
}

async fn journal_lines_status(app: &TestApp) -> serde_json::Value {
    let statuses: serde_json::Value =
        serde_json::from_str(&lake_command(app, &["status", "--json"]).await).unwrap();
    statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["table"] == "gl_journal_lines")
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_files_stay_for_time_travel_until_a_vacuum_after_the_retention() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    let lake = app.running().lake.clone();
    for i in 1..=3 {
        app.post_sample_entry(i, 5, 10).await;
        app.settle().await;
    }
    let middle = lake.status("gl_journal_lines").await.unwrap();
    let middle_time = chrono::Utc::now();
    let middle_counts = app.sql(COUNTS).await;
    for i in 4..=6 {
        app.post_sample_entry(i, 5, 10).await;
        app.settle().await;
    }
    let newest_counts = app.sql(COUNTS).await;
    assert_ne!(newest_counts, middle_counts);
    let as_of = |at: String| {
        COUNTS.replace(
            "FROM gl_journal_lines",
            &format!("FROM as_of('gl_journal_lines', {at})"),
        )
    };

    // Compaction replaces the small files; they stay in storage for time travel.
    let options = CompactionOptions {
        files_min: 2,
        ..CompactionOptions::default()
    };
    compact_once(&lake, &app.running().store, &options)
        .await
        .unwrap();
    let compacted = journal_lines_status(&app).await;
    assert_eq!(compacted["files"], 1, "{compacted}");
    assert!(
        compacted["replaced_files"].as_u64().unwrap() >= 6,
        "{compacted}"
    );
    assert_eq!(
        compacted["rows"], newest_counts[0][0],
        "rows counted from the log: {compacted}"
    );
    assert!(compacted["checkpoint"].is_u64() || compacted["checkpoint"].is_null());
    let text = lake_command(&app, &["status"]).await;
    assert!(
        text.lines().any(|l| l.starts_with("gl_journal_lines ")),
        "{text}"
    );

    // Within the default retention (7 days) a vacuum deletes nothing, and earlier versions
    // read as they were, by version and by time.
    let deleted = tributary::maintenance::vacuum_once(
        &lake,
        &app.running().store,
        tributary::maintenance::Compacting::All,
        tributary_lakehouse::VACUUM_RETENTION_DEFAULT,
    )
    .await
    .unwrap();
    assert_eq!(deleted, 0);
    let version = middle.version.unwrap();
    assert_eq!(app.sql(&as_of(version.to_string())).await, middle_counts);
    assert_eq!(
        app.sql(&as_of(format!("'{}'", middle_time.to_rfc3339())))
            .await,
        middle_counts
    );
    assert_eq!(app.sql(COUNTS).await, newest_counts);

    // Bad input names the function's rule.
    for (sql, expected) in [
        (
            "SELECT * FROM as_of('no_such_table', 1)".to_owned(),
            "not a lake table",
        ),
        (as_of("999999".into()), "there is no version 999999"),
        (as_of("'last tuesday'".into()), "is not a time"),
        (as_of("-1".into()), "negative"),
    ] {
        let (status, body) = app
            .post("/api/v1/sql", serde_json::json!({ "sql": sql }))
            .await;
        assert!((400..500).contains(&status), "{sql}: {status} {body}");
        assert!(body.to_string().contains(expected), "{sql}: {body}");
    }

    // A vacuum with no retention deletes them; the version that read them says so.
    let vacuumed = lake_command(
        &app,
        &[
            "vacuum",
            "--retention-hours",
            "0",
            "--tables",
            "gl_journal_lines",
        ],
    )
    .await;
    let deleted: u64 = vacuumed
        .lines()
        .find_map(|l| l.strip_prefix("gl_journal_lines: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{vacuumed}"));
    assert!(
        deleted >= compacted["replaced_files"].as_u64().unwrap(),
        "{vacuumed}"
    );
    assert_eq!(journal_lines_status(&app).await["replaced_files"], 0);
    let (status, body) = app
        .post(
            "/api/v1/sql",
            serde_json::json!({ "sql": as_of(version.to_string()) }),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body.to_string().contains("vacuum retention"), "{body}");
    assert_eq!(
        app.sql(COUNTS).await,
        newest_counts,
        "the newest version reads on"
    );
    app.post_sample_entry(7, 5, 10).await;
    app.settle().await;
    assert_eq!(
        app.sql(COUNTS).await[0][0],
        newest_counts[0][0].as_i64().unwrap() + 2
    );
    app.stop().await;
}
