//! `POST /api/v1/sql` in every format it serves: Arrow IPC and Parquet carry the same typed
//! values as JSON (decimals exact); a format it does not serve is refused with 406.

use crate::helpers::{Backend, TestApp};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};
use tributary_lakehouse::catalog::MONEY_SCALE;

const SQL: &str = "SELECT account, posting_date, debit, credit, line_no FROM gl_journal_lines \
                   ORDER BY posting_date, line_no";

/// Every cell as text, the way the JSON answer spells it.
fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    rows
}

fn json_cells(rows: &[Value]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| {
            row.as_array()
                .expect("a row is an array")
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .collect()
}

fn assert_types(batches: &[RecordBatch]) {
    let schema = batches.first().expect("at least one batch").schema();
    let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
    assert!(
        matches!(
            types[0],
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        ),
        "{types:?}"
    );
    assert_eq!(types[1], &DataType::Date32, "{types:?}");
    assert!(
        matches!(types[2], DataType::Decimal128(_, s) if *s == MONEY_SCALE) && types[2] == types[3],
        "money is an exact decimal: {types:?}"
    );
    assert_eq!(types[4], &DataType::Int32, "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_answers_arrow_ipc_and_parquet_with_the_json_values() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    app.post_entry(
        "2026-01-05",
        &[("1000", "debit", "1234.56"), ("4000", "credit", "1234.56")],
    )
    .await;
    app.post_entry(
        "2026-02-07",
        &[("1000", "debit", "0.01"), ("4000", "credit", "0.01")],
    )
    .await;
    app.settle().await;
    let expected = json_cells(&app.sql(SQL).await);
    assert_eq!(expected.len(), 4);
    assert_eq!(expected[0][2], "1234.5600");
    let body = json!({ "sql": SQL }).to_string();
    let fetch = |accept: &'static str| {
        let body = body.clone();
        let app = &app;
        async move {
            app.request_bytes(
                reqwest::Method::POST,
                "/api/v1/sql",
                Some(&body),
                &[("accept", accept)],
            )
            .await
        }
    };

    let (status, content_type, bytes) = fetch("application/vnd.apache.arrow.stream").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.apache.arrow.stream")
    );
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .expect("an Arrow IPC stream");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("a batch")).collect();
    assert_types(&batches);
    assert_eq!(cells(&batches), expected);

    // A client listing several types gets the first one served.
    let (status, content_type, bytes) =
        fetch("application/xml, application/vnd.apache.parquet;q=0.9, */*;q=0.1").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.apache.parquet")
    );
    let batches: Vec<RecordBatch> =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .expect("a Parquet file")
        .build()
        .expect("a reader")
        .map(|b| b.expect("a batch"))
        .collect();
    assert_types(&batches);
    assert_eq!(cells(&batches), expected);

    let (status, _, bytes) = fetch("text/csv").await;
    let csv = String::from_utf8(bytes).expect("utf-8");
    assert_eq!(status, 200);
    assert!(
        csv.starts_with("account,posting_date,debit,credit,line_no\n1000,2026-01-05,1234.5600,"),
        "{csv}"
    );

    let (status, content_type, problem) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/sql",
            Some(&body),
            &[("accept", "application/xml")],
        )
        .await;
    assert_eq!(
        (status, content_type.as_str(), problem["type"].as_str()),
        (
            406,
            "application/problem+json",
            Some("https://tributary.dev/problems/not_acceptable")
        )
    );
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("application/xml") && detail.contains("application/vnd.apache.parquet"),
        "{detail}"
    );
    app.stop().await;
}
