//! Compaction of the lake's small files: one file per pipeline batch becomes one file, the rows
//! and their sums are unchanged, and the pipelines go on from where they were, also after a
//! restart (their progress markers survive the rewrite).

use crate::helpers::{Backend, TestApp};
use tributary::maintenance::{CompactionOptions, compact_once};

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
    let compacted = compact_once(&lake, &options).await.unwrap();
    assert!(
        compacted >= 2,
        "journal lines and movements compacted: {compacted}"
    );
    assert_eq!(lake.file_count("gl_journal_lines").await.unwrap(), 1);
    assert_eq!(app.sql(COUNTS).await, before, "same rows after compaction");
    // A table under the threshold is left alone.
    assert_eq!(compact_once(&lake, &options).await.unwrap(), 0);

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
