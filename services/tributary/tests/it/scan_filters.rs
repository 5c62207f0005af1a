//! Lake scans apply the WHERE clause themselves: a filter the files' Delta log statistics prove
//! true for every row is not evaluated (a dashboard's company, its full date range), every
//! other filter still removes rows, also where a file's statistics look like a match but the
//! file holds NULLs, under a LIMIT, and on columns the query does not select.

use crate::helpers::{Backend, TestApp};
use serde_json::{Value, json};
use tributary::maintenance::{CompactionOptions, compact_once};

fn count(rows: &[Value]) -> i64 {
    rows[0][0].as_i64().expect("a count")
}

/// The physical plan of `sql` as EXPLAIN prints it.
async fn physical_plan(app: &TestApp, sql: &str) -> String {
    let rows = app.sql(&format!("EXPLAIN {sql}")).await;
    rows.iter()
        .find(|row| row[0] == "physical_plan")
        .and_then(|row| row[1].as_str())
        .unwrap_or_else(|| panic!("no physical plan in {rows:?}"))
        .to_owned()
}

/// `compacted`: one file holds every row; otherwise each entry is its own file.
async fn check_filters(app: &TestApp, compacted: bool) {
    // Three lines carry cost centre CC1; one line of the second entry has none (NULL): its
    // file's statistics still say min = max = 'CC1'.
    let cc1 = "SELECT count(*) FROM gl_journal_lines WHERE cost_center = 'CC1'";
    assert_eq!(count(&app.sql(cc1).await), 3, "the NULL line is not CC1");
    let selected = app
        .sql("SELECT entry_id FROM gl_journal_lines WHERE cost_center = 'CC1'")
        .await;
    assert_eq!(selected.len(), 3, "filter on a column not selected");

    let first_lines = "SELECT count(*) FROM gl_journal_lines WHERE company = 'MAIN' AND line_no = 1 \
                       AND posting_date BETWEEN '2026-01-01' AND '2026-12-31'";
    assert_eq!(
        count(&app.sql(first_lines).await),
        4,
        "one first line per entry"
    );
    let plan = physical_plan(app, first_lines).await;
    let filters: Vec<&str> = plan
        .lines()
        .filter(|line| line.contains("FilterExec"))
        .collect();
    assert_eq!(filters.len(), 1, "one filter over the scan: {plan}");
    assert!(
        filters[0].contains("line_no@"),
        "line_no is still filtered: {plan}"
    );
    assert!(
        !filters[0].contains("company@") && !filters[0].contains("posting_date@"),
        "company and the full date range are proven by the statistics, not evaluated: {plan}"
    );

    // A date range the statistics cannot prove keeps its filter and its answer.
    let spring = "SELECT count(*) FROM gl_journal_lines WHERE posting_date >= '2026-03-01'";
    assert_eq!(
        count(&app.sql(spring).await),
        5,
        "the March and May entries' lines"
    );
    let plan = physical_plan(app, spring).await;
    if compacted {
        assert!(plan.contains("FilterExec: posting_date@"), "{plan}");
    } else {
        // The January and February files are not read; the two files read hold only
        // March and May, so the date filter is proven for them.
        assert_eq!(plan.matches(".parquet").count(), 2, "{plan}");
        assert!(!plan.contains("FilterExec"), "{plan}");
    }
    let none = "SELECT count(*) FROM gl_journal_lines WHERE company = 'OTHER'";
    assert_eq!(count(&app.sql(none).await), 0);

    // The limit applies after the filter, not to the rows read.
    let limited = app
        .sql("SELECT line_no, account FROM gl_journal_lines WHERE line_no = 2 LIMIT 2")
        .await;
    assert_eq!(limited.len(), 2, "{limited:?}");
    assert!(limited.iter().all(|row| row[0] == 2), "{limited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_proven_by_file_statistics_are_skipped_and_the_others_still_filter() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    let entries = [
        (
            "2026-01-15",
            json!([
                {"account": "1200", "debit": "10.00", "currency": "EUR", "cost_center": "CC1"},
                {"account": "4000", "credit": "10.00", "currency": "EUR", "cost_center": "CC1"}
            ]),
        ),
        (
            "2026-02-15",
            json!([
                {"account": "6000", "debit": "7.50", "currency": "EUR", "cost_center": "CC1"},
                {"account": "1000", "credit": "7.50", "currency": "EUR"}
            ]),
        ),
        (
            "2026-03-15",
            json!([
                {"account": "1200", "debit": "3.00", "currency": "EUR"},
                {"account": "4000", "credit": "3.00", "currency": "EUR"}
            ]),
        ),
        (
            "2026-05-15",
            json!([
                {"account": "1200", "debit": "4.00", "currency": "EUR"},
                {"account": "4000", "credit": "1.00", "currency": "EUR"},
                {"account": "4000", "credit": "3.00", "currency": "EUR"}
            ]),
        ),
    ];
    // One pipeline batch, hence one Delta file, per entry.
    for (date, lines) in entries {
        app.ok(
            "/api/v1/journal-entries",
            json!({"posting_date": date, "lines": lines}),
        )
        .await;
        app.settle().await;
    }
    check_filters(&app, false).await;

    // The same answers over one compacted file holding every row.
    let lake = app.running().lake.clone();
    let options = CompactionOptions {
        files_min: 2,
        ..CompactionOptions::default()
    };
    assert!(
        compact_once(&lake, &app.running().store, &options)
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(lake.file_count("gl_journal_lines").await.unwrap(), 1);
    check_filters(&app, true).await;
    app.stop().await;
}
