//! Scheduled reports and financial statements, black-box over REST: runs, outputs (CSV, XLSX,
//! Parquet, PDF), bad input, failures and the scheduler.
//!
//! The statements are checked against a published example: OpenStax, *Principles of
//! Accounting, Volume 1: Financial Accounting* (Franklin, Graybeal, Cooper; Rice University,
//! 2019), the service company "Printing Plus" in January 2019: its twelve transactions in
//! section 3.5 ("Use Journal Entries to Record Transactions and Post to T-Accounts"), its five
//! adjusting entries in 4.3 ("Record and Post the Common Types of Adjusting Entries"), the
//! adjusted trial balance in 4.4 (35,715 on each side) and the statements in 4.5 ("Prepare
//! Financial Statements Using the Adjusted Trial Balance"): net income 4,665, total assets
//! 29,965, total liabilities 5,400, total stockholders' equity 24,565.

use crate::helpers::{Backend, TestApp};
use chrono::{Duration as Days, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Printing Plus's chart of accounts (numbers are ours; the book numbers only Cash 101 and
/// Common Stock 301). Dividends is an equity account with a debit balance, Accumulated
/// Depreciation an asset account with a credit balance.
const ACCOUNTS: [(&str, &str, &str); 17] = [
    ("1010", "Cash", "asset"),
    ("1020", "Accounts Receivable", "asset"),
    ("1030", "Interest Receivable", "asset"),
    ("1040", "Supplies", "asset"),
    ("1100", "Equipment", "asset"),
    ("1110", "Accumulated Depreciation: Equipment", "asset"),
    ("2010", "Accounts Payable", "liability"),
    ("2020", "Salaries Payable", "liability"),
    ("2030", "Unearned Revenue", "liability"),
    ("3010", "Common Stock", "equity"),
    ("3020", "Dividends", "equity"),
    ("4010", "Service Revenue", "revenue"),
    ("4020", "Interest Revenue", "revenue"),
    ("5010", "Supplies Expense", "expense"),
    ("5020", "Depreciation Expense: Equipment", "expense"),
    ("5030", "Salaries Expense", "expense"),
    ("5040", "Utility Expense", "expense"),
];

/// (date, debit account, credit account, amount): transactions 1–12 (3.5), then the
/// adjusting entries 13–17 (4.3), all January 2019.
const ENTRIES: [(&str, &str, &str, &str); 17] = [
    ("2019-01-03", "1010", "3010", "20000"),
    ("2019-01-05", "1100", "2010", "3500"),
    ("2019-01-09", "1010", "2030", "4000"),
    ("2019-01-10", "1020", "4010", "5500"),
    ("2019-01-12", "5040", "1010", "300"),
    ("2019-01-14", "3020", "1010", "100"),
    ("2019-01-17", "1010", "4010", "2800"),
    ("2019-01-18", "2010", "1010", "3500"),
    ("2019-01-20", "5030", "1010", "3600"),
    ("2019-01-23", "1010", "1020", "5500"),
    ("2019-01-27", "1020", "4010", "1200"),
    ("2019-01-30", "1040", "2010", "500"),
    ("2019-01-31", "5010", "1040", "100"),
    ("2019-01-31", "5020", "1110", "75"),
    ("2019-01-31", "2030", "4010", "600"),
    ("2019-01-31", "1030", "4020", "140"),
    ("2019-01-31", "5030", "2020", "1500"),
];

async fn printing_plus(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    for (number, name, kind) in ACCOUNTS {
        app.ok(
            "/api/v1/accounts",
            json!({"number": number, "name": name, "type": kind, "currency": "USD"}),
        )
        .await;
    }
    app.ok("/api/v1/fiscal-years", json!({"year": 2019})).await;
    for (date, debit, credit, amount) in ENTRIES {
        let lines = json!([
            {"account": debit, "debit": amount, "currency": "USD"},
            {"account": credit, "credit": amount, "currency": "USD"},
        ]);
        app.ok(
            "/api/v1/journal-entries",
            json!({"posting_date": date, "lines": lines}),
        )
        .await;
    }
    app.settle().await;
    app
}

/// Queues a run and waits until it has finished; returns its status document.
pub(crate) async fn run_report(app: &TestApp, report: &str, body: Value) -> Value {
    let (status, queued) = app
        .post(&format!("/api/v1/reports/{report}/runs"), body)
        .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().expect("run id").to_owned();
    wait_for_run(app, &id).await
}

async fn wait_for_run(app: &TestApp, id: &str) -> Value {
    for _ in 0..300 {
        let (status, run) = app.get(&format!("/api/v1/report-runs/{id}")).await;
        assert_eq!(status, 200, "{run}");
        if run["status"] == "succeeded" || run["status"] == "failed" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {id} did not finish within 30 s");
}

/// The report's runs once at least `count` exist and all of them have finished.
async fn finished_runs(app: &TestApp, report: &str, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let (_, body) = app.get(&format!("/api/v1/reports/{report}/runs")).await;
        let runs = body["runs"].as_array().cloned().unwrap_or_default();
        if runs.len() >= count
            && runs
                .iter()
                .all(|r| r["status"] == "succeeded" || r["status"] == "failed")
        {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{count} runs of {report} did not finish within 30 s");
}

/// The slots of scheduled runs after `after` (the service's own scheduler may have seen a
/// definition before the test's first call and queued that call's slot; later slots are the
/// test's alone), sorted.
fn slots_after(runs: &[Value], after: chrono::DateTime<Utc>) -> Vec<String> {
    let after = after.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut slots: Vec<String> = runs
        .iter()
        .filter_map(|r| r["slot"].as_str())
        .filter(|slot| *slot > after.as_str())
        .map(str::to_owned)
        .collect();
    slots.sort();
    slots
}

pub(crate) async fn download(app: &TestApp, run: &Value, format: &str) -> Vec<u8> {
    let url = run["outputs"]
        .as_array()
        .and_then(|outputs| outputs.iter().find(|o| o["format"] == format))
        .and_then(|o| o["url"].as_str())
        .unwrap_or_else(|| panic!("no {format} output in {run}"));
    let (status, content_type, bytes) = app
        .request_bytes(reqwest::Method::GET, url, None, &[])
        .await;
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&bytes));
    assert!(!content_type.is_empty());
    bytes
}

/// Runs a report for its CSV only; the rows of that CSV.
async fn csv_of_run(
    app: &TestApp,
    report: &str,
    parameters: Value,
) -> Vec<HashMap<String, String>> {
    let run = run_report(
        app,
        report,
        json!({"parameters": parameters, "formats": ["csv"]}),
    )
    .await;
    csv_rows(&download(app, &run, "csv").await)
}

/// The PDF's text, laid out as on the page (`pdftotext -layout`).
pub(crate) fn pdf_text(pdf: &std::path::Path) -> String {
    let output = std::process::Command::new("pdftotext")
        .args(["-layout", pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(output.status.success(), "pdftotext reads the PDF");
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// CSV rows as maps of column → text (the statements' names hold no commas or quotes).
pub(crate) fn csv_rows(bytes: &[u8]) -> Vec<HashMap<String, String>> {
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 CSV");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

/// The row whose `name` is `name`.
fn line<'a>(rows: &'a [HashMap<String, String>], name: &str) -> &'a HashMap<String, String> {
    rows.iter()
        .find(|row| row["name"] == name)
        .unwrap_or_else(|| panic!("no line {name:?} in {rows:?}"))
}

fn amount(text: &str) -> rust_decimal::Decimal {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not an amount"))
}

fn d(text: &str) -> rust_decimal::Decimal {
    amount(text)
}

crate::on_both_backends!(
    statements_of_a_textbook_month_match_the_book_to_the_cent,
    the_balance_sheet_balances_for_any_posted_entries,
);

async fn statements_of_a_textbook_month_match_the_book_to_the_cent(backend: Backend) {
    let app = printing_plus(backend).await;

    // Adjusted trial balance (4.4): 35,715 on each side.
    let rows = csv_of_run(&app, "trial-balance", json!({"period": "2019-01"})).await;
    let total = line(&rows, "Total");
    assert_eq!(amount(&total["closing_debit"]), d("35715"));
    assert_eq!(amount(&total["closing_credit"]), d("35715"));
    // The month's movements are every entry posted (50,500 of transactions, 2,415 of
    // adjustments, which the book's worksheet totals).
    let posted: rust_decimal::Decimal = ENTRIES.iter().map(|(_, _, _, a)| amount(a)).sum();
    assert_eq!(posted, d("52915"));
    assert_eq!(amount(&total["period_debit"]), posted);
    assert_eq!(amount(&total["period_credit"]), posted);
    for (name, debit, credit) in [
        ("Cash", "24800", "0"),
        ("Accounts Receivable", "1200", "0"),
        ("Interest Receivable", "140", "0"),
        ("Supplies", "400", "0"),
        ("Equipment", "3500", "0"),
        ("Dividends", "100", "0"),
        ("Supplies Expense", "100", "0"),
        ("Depreciation Expense: Equipment", "75", "0"),
        ("Salaries Expense", "5100", "0"),
        ("Utility Expense", "300", "0"),
        ("Accumulated Depreciation: Equipment", "0", "75"),
        ("Accounts Payable", "0", "500"),
        ("Salaries Payable", "0", "1500"),
        ("Unearned Revenue", "0", "3400"),
        ("Common Stock", "0", "20000"),
        ("Interest Revenue", "0", "140"),
        ("Service Revenue", "0", "10100"),
    ] {
        let row = line(&rows, name);
        assert_eq!(
            (
                amount(&row["closing_debit"]),
                amount(&row["closing_credit"])
            ),
            (d(debit), d(credit)),
            "{name}"
        );
    }

    // Income statement (4.5): revenues 10,240, expenses 5,575, net income 4,665; the month is
    // also the year to date, and the month before had nothing.
    let rows = csv_of_run(&app, "income-statement", json!({"period": "2019-01"})).await;
    for (name, expected) in [
        ("Service Revenue", "10100"),
        ("Interest Revenue", "140"),
        ("Total revenue", "10240"),
        ("Supplies Expense", "100"),
        ("Depreciation Expense: Equipment", "75"),
        ("Salaries Expense", "5100"),
        ("Utility Expense", "300"),
        ("Total expenses", "5575"),
        ("Net income", "4665"),
    ] {
        let row = line(&rows, name);
        assert_eq!(amount(&row["period"]), d(expected), "{name}");
        assert_eq!(
            amount(&row["year_to_date"]),
            d(expected),
            "{name} year to date"
        );
        assert_eq!(
            amount(&row["previous_period"]),
            d("0"),
            "{name} previous period"
        );
    }

    // Balance sheet (4.5): total assets 29,965 = liabilities 5,400 + equity 24,565 (common
    // stock 20,000, dividends (100), net income 4,665: the book's ending retained earnings
    // 4,565 before closing).
    let rows = csv_of_run(
        &app,
        "balance-sheet",
        json!({"period": "2019-01", "company": "MAIN"}),
    )
    .await;
    for (name, expected) in [
        ("Cash", "24800"),
        ("Accumulated Depreciation: Equipment", "-75"),
        ("Total assets", "29965"),
        ("Unearned Revenue", "3400"),
        ("Total liabilities", "5400"),
        ("Common Stock", "20000"),
        ("Dividends", "-100"),
        ("Net income (not yet closed)", "4665"),
        ("Total equity", "24565"),
        ("Total liabilities and equity", "29965"),
    ] {
        assert_eq!(amount(&line(&rows, name)["balance"]), d(expected), "{name}");
        assert_eq!(
            amount(&line(&rows, name)["previous_period_balance"]),
            d("0"),
            "{name} a month earlier"
        );
    }
    // The run is in the Delta table too.
    let recorded = app
        .sql("SELECT report, status, row_count FROM report_runs WHERE report = 'balance-sheet'")
        .await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0][1], "succeeded");
    app.stop().await;
}

#[tokio::test]
async fn pdf_and_xlsx_outputs_carry_the_sql_results() {
    let app = printing_plus(Backend::Sqlite).await;
    let run = run_report(
        &app,
        "balance-sheet",
        json!({"parameters": {"period": "2019-01"}}),
    )
    .await;
    let formats: Vec<&str> = run["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["format"].as_str().unwrap())
        .collect();
    assert_eq!(
        formats,
        ["csv", "xlsx", "parquet", "pdf"],
        "all formats by default"
    );
    let rows = csv_rows(&download(&app, &run, "csv").await);

    // PDF: renders, and every amount of the SQL result is in its text, formatted.
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("balance-sheet.pdf");
    std::fs::write(&pdf, download(&app, &run, "pdf").await).unwrap();
    let text = pdf_text(&pdf);
    for needle in [
        "Balance sheet",
        "Company: MAIN Main company",
        "Currency: USD",
        "Period: 2019-01 (2019-01-01 to 2019-01-31)",
        "Generated ",
        "Page 1 of 1",
        "Total liabilities and equity",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the PDF text:\n{text}"
        );
    }
    for row in &rows {
        if row["line_type"] == "heading" {
            continue;
        }
        let shown = tributary_reports::render::amount_text(amount(&row["balance"]));
        let pdf_line = text
            .lines()
            .find(|l| l.contains(&format!(" {} ", row["name"])))
            .unwrap_or_else(|| panic!("no line for {:?} in the PDF:\n{text}", row["name"]));
        assert!(
            pdf_line.contains(&shown),
            "{:?}: {shown} not in PDF line {pdf_line:?}",
            row["name"]
        );
    }
    assert!(
        text.contains("29,965.00") && text.contains("(75.00)"),
        "{text}"
    );
    let png = dir.path().join("page");
    let rendered = std::process::Command::new("pdftoppm")
        .args([
            "-png",
            "-r",
            "50",
            "-f",
            "1",
            "-l",
            "1",
            pdf.to_str().unwrap(),
            png.to_str().unwrap(),
        ])
        .status()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(rendered.success(), "pdftoppm renders the PDF");
    let page = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".png"))
        .expect("a PNG page");
    assert!(
        page.metadata().unwrap().len() > 1000,
        "the page image is not empty"
    );

    // XLSX: amounts are numbers, headings text, totals equal to the SQL result.
    use calamine::{Data, DataType as _, Reader, Xlsx};
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(download(&app, &run, "xlsx").await))
            .unwrap();
    let sheet = book.worksheet_range("Report").unwrap();
    assert_eq!(
        sheet.get_value((0, 0)),
        Some(&Data::String("Balance sheet".into()))
    );
    let header = (0..sheet.height() as u32)
        .find(|&r| sheet.get_value((r, 0)) == Some(&Data::String("Currency".into())))
        .expect("a header row");
    let name_column = (0..sheet.width() as u32)
        .find(|&c| sheet.get_value((header, c)) == Some(&Data::String("Name".into())))
        .unwrap();
    let balance_column = (0..sheet.width() as u32)
        .find(|&c| sheet.get_value((header, c)) == Some(&Data::String("Balance".into())))
        .unwrap();
    let mut checked = 0;
    for r in header + 1..sheet.height() as u32 {
        let Some(Data::String(name)) = sheet.get_value((r, name_column)) else {
            continue;
        };
        let expected = line(&rows, name.trim())["balance"].clone();
        match sheet.get_value((r, balance_column)) {
            Some(Data::Float(value)) => {
                assert_eq!(
                    format!("{value:.2}"),
                    format!("{:.2}", amount(&expected)),
                    "{name}"
                );
                checked += 1;
            }
            Some(Data::Empty) | None => {
                assert_eq!(line(&rows, name.trim())["line_type"], "heading")
            }
            other => panic!("{name}: balance cell {other:?} is not a number"),
        }
    }
    assert!(checked >= 10, "{checked} amounts checked");

    // A report of our own with dates: created over REST, its XLSX has real dates.
    let definition = json!({
        "name": "january-lines",
        "title": "Journal lines of a month",
        "parameters": [{"name": "period", "type": "month"}],
        "formats": ["xlsx", "parquet"],
        "sql": "SELECT posting_date, account, debit, credit, recorded_at FROM gl_journal_lines WHERE posting_date BETWEEN $period_start AND $period_end ORDER BY posting_date, account, line_no",
    });
    let (status, created) = app.post("/api/v1/reports", definition).await;
    assert_eq!(status, 201, "{created}");
    let run = run_report(
        &app,
        "january-lines",
        json!({"parameters": {"period": "2019-01"}}),
    )
    .await;
    assert_eq!(run["row_count"], 34);
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(download(&app, &run, "xlsx").await))
            .unwrap();
    let sheet = book.worksheet_range("Report").unwrap();
    let header = (0..sheet.height() as u32)
        .find(|&r| sheet.get_value((r, 0)) == Some(&Data::String("Posting date".into())))
        .unwrap();
    let first = sheet.get_value((header + 1, 0)).unwrap();
    assert!(
        matches!(first, Data::DateTime(_)),
        "a date cell, got {first:?}"
    );
    assert_eq!(first.as_date(), chrono::NaiveDate::from_ymd_opt(2019, 1, 3));
    assert_eq!(
        sheet.get_value((header + 1, 1)),
        Some(&Data::String("1010".into()))
    );
    assert_eq!(
        sheet.get_value((header + 1, 2)),
        Some(&Data::Float(20000.0))
    );
    assert!(
        matches!(sheet.get_value((header + 1, 4)), Some(Data::DateTime(_))),
        "timestamps are date-times"
    );
    // A long report runs over pages: each numbered "Page i of n", column titles repeated.
    let long = json!({
        "name": "numbers", "title": "Numbers", "formats": ["pdf"],
        "sql": "SELECT value AS n, CAST(value AS DECIMAL(38, 4)) / 8 AS eighth FROM range(1, 151)",
    });
    let (status, created) = app.post("/api/v1/reports", long).await;
    assert_eq!(status, 201, "{created}");
    let long_run = run_report(&app, "numbers", json!({})).await;
    std::fs::write(&pdf, download(&app, &long_run, "pdf").await).unwrap();
    let text = pdf_text(&pdf);
    let pages = text.matches("Page ").count();
    assert!(pages >= 2, "150 rows need more than one page:\n{text}");
    for page in 1..=pages {
        assert!(
            text.contains(&format!("Page {page} of {pages}")),
            "page {page} of {pages}:\n{text}"
        );
    }
    assert_eq!(
        text.matches("Eighth").count(),
        pages,
        "the column titles are on every page"
    );
    assert!(
        text.contains("18.75") && text.contains("0.125"),
        "150 / 8 and 1 / 8 are shown exactly:\n{text}"
    );

    // Parquet has the exact decimals.
    let parquet = bytes::Bytes::from(download(&app, &run, "parquet").await);
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(parquet)
            .unwrap()
            .build()
            .unwrap();
    let rows: usize = reader.map(|batch| batch.unwrap().num_rows()).sum();
    assert_eq!(rows, 34);
    app.stop().await;
}

#[tokio::test]
async fn bad_report_input_is_refused_naming_the_field_and_changes_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    let (status, body) = app
        .post(
            "/api/v1/reports/no-such-report/runs",
            json!({"parameters": {"period": "2026-01"}}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    for (body, field, rule) in [
        (json!({"parameters": {}}), "parameters.period", "required"),
        (
            json!({"parameters": {"period": "2026-13"}}),
            "parameters.period",
            "month",
        ),
        (
            json!({"parameters": {"period": 202601}}),
            "parameters.period",
            "month",
        ),
        (
            json!({"parameters": {"period": "2026-01", "year": 2026}}),
            "parameters.year",
            "unknown_parameter",
        ),
        (
            json!({"parameters": {"period": "2026-01", "company": "NOPE"}}),
            "parameters.company",
            "company",
        ),
        (
            json!({"parameters": {"period": "2026-01"}, "formats": ["docx"]}),
            "formats[0]",
            "format",
        ),
        (
            json!({"parameters": {"period": "2026-01"}, "formats": []}),
            "formats",
            "required",
        ),
    ] {
        let (status, problem) = app
            .post("/api/v1/reports/trial-balance/runs", body.clone())
            .await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body} → {problem}");
        assert_eq!(problem["errors"][0]["rule"], rule, "{body} → {problem}");
    }
    let (_, runs) = app.get("/api/v1/reports/trial-balance/runs").await;
    assert_eq!(runs["runs"], json!([]), "no run was queued");

    let good = json!({"name": "monthly", "title": "Monthly", "schedule": "0 6 1 * *", "sql": "SELECT 1 AS one"});
    for (change, field, rule) in [
        (json!({"schedule": "61 6 1 * *"}), "schedule", "cron"),
        (json!({"schedule": "0 6 1 *"}), "schedule", "cron"),
        (json!({"name": "Monthly Report"}), "name", "name_format"),
        (
            json!({"sql": "DROP TABLE gl_journal_lines"}),
            "sql",
            "read_only",
        ),
        (json!({"sql": "SELECT * FROM no_such_table"}), "sql", "sql"),
        (json!({"sql": "SELECT $undeclared AS x"}), "sql", "sql"),
        (
            json!({"parameters": [{"name": "p", "type": "money"}]}),
            "parameters[0].type",
            "invalid_value",
        ),
    ] {
        let mut body = good.clone();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let (status, problem) = app.post("/api/v1/reports", body.clone()).await;
        assert!(
            status == 422 || status == 400,
            "{body} → {status} {problem}"
        );
        if status == 422 && rule != "invalid_value" {
            assert_eq!(problem["errors"][0]["field"], field, "{body} → {problem}");
            assert_eq!(problem["errors"][0]["rule"], rule, "{body} → {problem}");
        }
    }
    let (_, list) = app.get("/api/v1/reports").await;
    let names: Vec<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "trial-balance",
            "balance-sheet",
            "income-statement",
            "statement-of-account"
        ],
        "nothing was created"
    );
    let (status, _, _) = app
        .request(
            reqwest::Method::DELETE,
            "/api/v1/reports/trial-balance",
            None,
            &[],
        )
        .await;
    assert_eq!(status, 409, "built-in definitions cannot be deleted");
    app.stop().await;
}

#[tokio::test]
async fn definitions_have_a_rest_lifecycle_and_a_failing_report_is_recorded_while_the_scheduler_goes_on()
 {
    let app = printing_plus(Backend::Sqlite).await;
    let reports = app
        .running()
        .reports
        .clone()
        .expect("the reports service runs");
    let broken = json!({
        "name": "broken", "title": "Broken", "schedule": "0 * * * *", "formats": ["csv"],
        // Plans, but fails on the data: account names are not numbers.
        "sql": "SELECT CAST(name AS INTEGER) AS n FROM gl_accounts",
    });
    let working = json!({
        "name": "accounts", "title": "Accounts", "schedule": "0 * * * *", "formats": ["csv"],
        "sql": "SELECT account, name FROM gl_accounts ORDER BY account",
    });
    for definition in [&broken, &working] {
        let (status, body) = app.post("/api/v1/reports", definition.clone()).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = app.post("/api/v1/reports", working.clone()).await;
    assert_eq!(status, 409, "{body}");
    // The text of a definition file is accepted too.
    let file = "-- name: balances\n-- title: Balances\n-- parameter: company company optional\n-- formats: csv\nSELECT account, balance FROM gl_account_balances WHERE company = $company ORDER BY account\n";
    let (status, _, created) = app
        .request(reqwest::Method::POST, "/api/v1/reports", Some(file), &[])
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["parameters"][0]["type"], "company");
    let run = run_report(&app, "balances", json!({})).await;
    assert_eq!(
        run["parameters"]["company"], "MAIN",
        "the only company fills the left-out parameter"
    );
    let (status, _, problem) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/reports",
            Some("-- name: x\n-- schedule: every day\nSELECT 1"),
            &[],
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (422, json!("title")),
        "{problem}"
    );
    let (status, read) = app.get("/api/v1/reports/accounts").await;
    assert_eq!(
        (status, read["schedule"].clone(), read["builtin"].clone()),
        (200, json!("0 * * * *"), json!(false))
    );
    // What GET answers can be sent back changed.
    let mut renamed = read.clone();
    renamed["title"] = json!("Chart of accounts");
    let (status, _, updated) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/reports/accounts",
            Some(&renamed.to_string()),
            &[],
        )
        .await;
    assert_eq!(
        (status, updated["title"].clone()),
        (200, json!("Chart of accounts"))
    );

    // Slots a day ahead, so the scheduler's own clock never reaches them in this test.
    let base = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        + Days::days(2);
    reports
        .schedule_due(base + Days::minutes(30))
        .await
        .unwrap(); // first sight: from 00:00 on
    reports
        .schedule_due(base + Days::minutes(90))
        .await
        .unwrap(); // the 01:00 slot
    reports
        .schedule_due(base + Days::minutes(95))
        .await
        .unwrap(); // nothing new
    // Down from 01:35 to 05:10: of the missed 02:00..05:00 slots, only 05:00 runs, once.
    reports
        .schedule_due(base + Days::minutes(310))
        .await
        .unwrap();
    let broken_runs = finished_runs(&app, "broken", 2).await;
    let working_runs = finished_runs(&app, "accounts", 2).await;
    let expected: Vec<String> = [60, 300]
        .iter()
        .map(|m| (base + Days::minutes(*m)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .collect();
    assert_eq!(slots_after(&broken_runs, base), expected);
    assert_eq!(slots_after(&working_runs, base), expected);
    assert!(
        working_runs.len() <= 3,
        "at most the first call's 00:00 besides: {working_runs:?}"
    );
    for run in &broken_runs {
        assert_eq!(run["status"], "failed", "{run}");
        assert!(
            run["error"].as_str().unwrap().contains("Cannot cast"),
            "{run}"
        );
        assert_eq!(run["trigger"], "schedule");
    }
    for run in &working_runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["row_count"], 17);
    }
    let recorded = app
        .sql(&format!(
            "SELECT report, status, count(*) AS n FROM report_runs WHERE slot > TIMESTAMP '{}' \
             GROUP BY report, status ORDER BY report",
            base.format("%Y-%m-%d %H:%M:%S")
        ))
        .await;
    assert_eq!(
        recorded,
        vec![
            json!(["accounts", "succeeded", 2]),
            json!(["broken", "failed", 2])
        ]
    );

    // After a restart the schedule goes on from where it was: no slot runs twice.
    let mut app = app;
    app.restart().await;
    let reports = app.running().reports.clone().unwrap();
    reports
        .schedule_due(base + Days::minutes(310))
        .await
        .unwrap();
    reports
        .schedule_due(base + Days::minutes(361))
        .await
        .unwrap();
    let runs = finished_runs(&app, "accounts", working_runs.len() + 1).await;
    assert_eq!(runs.len(), working_runs.len() + 1, "one more run: {runs:?}");
    assert_eq!(
        slots_after(&runs, base + Days::minutes(300)),
        [(base + Days::minutes(360)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)],
        "for 06:00"
    );

    let (status, _, _) = app
        .request(reqwest::Method::DELETE, "/api/v1/reports/broken", None, &[])
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/api/v1/reports/broken").await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Random balanced entries over every account type, in several months and currencies of
/// accounts: every month's balance sheet has total assets equal to total liabilities and
/// equity, also a month before and a year before.
async fn the_balance_sheet_balances_for_any_posted_entries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let accounts = [
        ("1000", "asset"),
        ("1500", "asset"),
        ("2000", "liability"),
        ("3000", "equity"),
        ("4000", "revenue"),
        ("6000", "expense"),
        ("6100", "expense"),
    ];
    for (number, kind) in accounts {
        app.ok(
            "/api/v1/accounts",
            json!({"number": number, "name": format!("Account {number}"), "type": kind, "currency": "EUR"}),
        )
        .await;
    }
    app.ok("/api/v1/fiscal-years", json!({"year": 2026})).await;
    // A small linear congruential generator: the same entries every run.
    let mut seed: u64 = 0x5eed;
    let mut next = |bound: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    for _ in 0..40 {
        let lines_count = 2 + next(3) as usize;
        let mut lines = Vec::new();
        let mut total_cents: u64 = 0;
        for _ in 0..lines_count - 1 {
            let cents = 1 + next(1_000_000);
            total_cents += cents;
            let (account, _) = accounts[next(accounts.len() as u64) as usize];
            lines.push(json!({"account": account, "debit": format!("{}.{:02}", cents / 100, cents % 100), "currency": "EUR"}));
        }
        let (account, _) = accounts[next(accounts.len() as u64) as usize];
        lines.push(json!({"account": account, "credit": format!("{}.{:02}", total_cents / 100, total_cents % 100), "currency": "EUR"}));
        let date = format!("2026-{:02}-{:02}", 1 + next(4), 1 + next(28));
        app.ok(
            "/api/v1/journal-entries",
            json!({"posting_date": date, "lines": lines}),
        )
        .await;
    }
    app.settle().await;
    for period in ["2026-01", "2026-02", "2026-04"] {
        let rows = csv_of_run(&app, "balance-sheet", json!({ "period": period })).await;
        for column in [
            "balance",
            "previous_period_balance",
            "previous_year_balance",
        ] {
            let assets = amount(&line(&rows, "Total assets")[column]);
            let other_side = amount(&line(&rows, "Total liabilities and equity")[column]);
            assert_eq!(assets, other_side, "{period} {column}");
        }
        assert_ne!(
            amount(&line(&rows, "Total assets")["balance"]),
            d("0"),
            "{period}: entries were posted"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn two_instances_queue_one_run_per_slot() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.setup_ledger().await;
    let definition = json!({
        "name": "hourly", "title": "Hourly", "schedule": "0 * * * *", "formats": ["csv"],
        "sql": "SELECT count(*) AS accounts FROM gl_accounts",
    });
    let (status, body) = app.post("/api/v1/reports", definition).await;
    assert_eq!(status, 201, "{body}");
    // A second instance on the same database and lake.
    let running = app.running();
    let options = tributary_reports::ReportOptions {
        outputs: app.dir.path().join("reports").display().to_string(),
        structure: tributary_reports::statement::Structure::default_by_account_type(),
        tick: Duration::from_secs(1),
    };
    let first = running.reports.clone().unwrap();
    let second = tributary_reports::Reports::new(
        running.store.clone(),
        running.query.clone(),
        running.lake.clone(),
        &options,
    )
    .unwrap();
    let base = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        + Days::days(2);
    first.schedule_due(base).await.unwrap();
    for minutes in [61, 125, 180, 241] {
        let at = base + Days::minutes(minutes);
        let (a, b) = tokio::join!(first.schedule_due(at), second.schedule_due(at));
        a.unwrap();
        b.unwrap();
    }
    let runs = finished_runs(&app, "hourly", 4).await;
    let slots = slots_after(&runs, base);
    assert_eq!(slots.len(), 4, "one run per slot: {runs:?}");
    let mut distinct = slots.clone();
    distinct.dedup();
    assert_eq!(distinct, slots, "one run per slot: {runs:?}");
    app.stop().await;
}
