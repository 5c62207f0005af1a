//! `tributary rebuild`: the lake made again from the event store, also after a backup and a
//! restore of the store alone (docs/runbook.md "Backup and restore"), and while the product
//! runs (readers switch over at one commit, the live pipelines go on from the rebuilt tables).

use crate::helpers::{Backend, TestApp, succeeded, tributary};

/// Every balance of the ledger: lines, debits and credits per company and account, from the
/// journal lines and from the account movements.
const BALANCES: &str = "SELECT company, account, count(*) AS lines, CAST(sum(debit) AS VARCHAR) AS debits, \
                        CAST(sum(credit) AS VARCHAR) AS credits FROM gl_journal_lines \
                        GROUP BY company, account ORDER BY company, account";
const MOVEMENTS: &str = "SELECT count(*) AS movements, CAST(sum(debit) AS VARCHAR) AS debits, \
                         CAST(sum(credit) AS VARCHAR) AS credits, sum(line_count) AS lines FROM gl_account_movements";

async fn shell(program: &str, arguments: &[&str]) {
    let output = tokio::process::Command::new(program)
        .args(arguments)
        .output()
        .await
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_wipe_restore_and_rebuild_give_the_same_balances() {
    let mut app = TestApp::spawn(Backend::Postgres).await;
    app.setup_ledger().await;
    for i in 1..=8 {
        app.post_sample_entry(i, 3, 100).await;
    }
    app.settle().await;
    let balances = app.sql(BALANCES).await;
    let movements = app.sql(MOVEMENTS).await;
    assert!(balances.len() >= 4, "{balances:?}");
    app.running.take().unwrap().stop().await;

    // Backup: the event store only (the lake can always be made again from it).
    let url = app.database.as_ref().unwrap().url.clone();
    let (server, name) = url.rsplit_once('/').unwrap();
    let dump = app.dir.path().join("store.dump");
    let dump = dump.to_str().unwrap();
    shell("pg_dump", &["--format=custom", "--file", dump, &url]).await;

    // Lost: the database and the lake.
    let admin = format!("{server}/postgres");
    shell(
        "psql",
        &[&admin, "-c", &format!("DROP DATABASE {name} WITH (FORCE)")],
    )
    .await;
    std::fs::remove_dir_all(app.dir.path().join("lake")).unwrap();

    // Restore, rebuild, start.
    shell("psql", &[&admin, "-c", &format!("CREATE DATABASE {name}")]).await;
    shell("pg_restore", &["--dbname", &url, dump]).await;
    let data_dir = app.dir.path().to_str().unwrap().to_owned();
    let rebuilt =
        succeeded(&tributary(&["rebuild", "--data-dir", &data_dir, "--database-url", &url]).await);
    assert!(
        rebuilt
            .lines()
            .any(|l| l.starts_with("gl_journal_lines: rebuilt")),
        "{rebuilt}"
    );
    assert!(
        !app.dir.path().join("lake").join("_rebuild").exists()
            || std::fs::read_dir(app.dir.path().join("lake").join("_rebuild"))
                .unwrap()
                .next()
                .is_none(),
        "the scratch lake is removed"
    );
    app.restart().await;
    app.settle().await;
    assert_eq!(app.sql(BALANCES).await, balances);
    assert_eq!(app.sql(MOVEMENTS).await, movements);
    // And the ledger goes on from there.
    app.post_sample_entry(9, 3, 100).await;
    app.settle().await;
    let lines: i64 = app.sql("SELECT count(*) AS n FROM gl_journal_lines").await[0][0]
        .as_i64()
        .unwrap();
    let before: i64 = balances.iter().map(|b| b[2].as_i64().unwrap()).sum();
    assert_eq!(lines, before + 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_the_product_runs_switches_readers_at_one_commit() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    for i in 1..=6 {
        app.post_sample_entry(i, 3, 100).await;
        app.settle().await;
    }
    let balances = app.sql(BALANCES).await;
    let lake = app.running().lake.clone();
    let before = lake.status("gl_journal_lines").await.unwrap();
    assert!(before.files >= 6, "{before:?}");
    let data_dir = app.dir.path().to_str().unwrap().to_owned();

    // Only tables a pipeline makes.
    let refused = tributary(&[
        "rebuild",
        "--data-dir",
        &data_dir,
        "--tables",
        "bronze_events",
    ])
    .await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        error.contains("--tables: \"bronze_events\" is not made by a pipeline"),
        "{error}"
    );

    let rebuilt = succeeded(
        &tributary(&[
            "rebuild",
            "--data-dir",
            &data_dir,
            "--tables",
            "gl_journal_lines",
        ])
        .await,
    );
    assert!(rebuilt.contains("rebuilt 1 tables"), "{rebuilt}");
    // One commit replaced every small file by the rebuilt ones (one per batch of the rebuild).
    let after = lake.status("gl_journal_lines").await.unwrap();
    assert_eq!(after.version, before.version.map(|v| v + 1), "{after:?}");
    assert!(after.files < before.files, "{before:?} {after:?}");
    assert_eq!(after.rows, before.rows);
    assert_eq!(app.sql(BALANCES).await, balances);
    // The old rows are still there to travel back to.
    let old = format!(
        "SELECT count(*) AS n FROM as_of('gl_journal_lines', {})",
        before.version.unwrap()
    );
    let old_rows = app.sql(&old).await;
    assert_eq!(
        old_rows[0][0].as_u64(),
        Some(before.rows),
        "time travel to before the rebuild: {old_rows:?}"
    );

    // The running pipeline finds its progress moved and goes on from the rebuilt table.
    app.post_sample_entry(7, 3, 100).await;
    app.settle().await;
    let counts = app
        .sql("SELECT count(*) AS n, count(DISTINCT entry_id || '/' || CAST(line_no AS VARCHAR)) AS d FROM gl_journal_lines")
        .await;
    assert_eq!(counts[0][0].as_u64(), Some(before.rows + 2), "{counts:?}");
    assert_eq!(counts[0][0], counts[0][1], "no line twice");
    app.stop().await;
}
