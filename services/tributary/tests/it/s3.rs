//! `--lake s3://bucket/prefix` against an S3-compatible server (moto's, from PyPI; `.ci/run`
//! installs it): every Delta table lives in the bucket, nothing in the data directory; posting
//! and SQL work; a restart finds the lake again.

use crate::helpers::{free_port, setup_ledger};
use crate::sigkill::spawn_up;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

async fn start_s3_server(port: u16) -> Child {
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("moto_server is installed (pip install 'moto[server]'; .ci/run does)");
    for _ in 0..150 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not listen on port {port}");
}

/// The JSON body the request answers.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The text body the request answers.
async fn text_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// The bucket's listing (S3 ListObjectsV2 XML) under `prefix`.
async fn list_bucket(client: &reqwest::Client, endpoint: &str, prefix: &str) -> String {
    text_of(client.get(format!(
        "{endpoint}/tributary-lake?list-type=2&prefix={prefix}"
    )))
    .await
}

async fn journal_line_totals(client: &reqwest::Client, base: &str) -> Value {
    let body = json_of(client.post(format!("{base}/api/v1/sql")).json(
        &json!({"sql": "SELECT count(*) AS lines, sum(debit) AS debit FROM gl_journal_lines"}),
    ))
    .await;
    body["rows"][0].clone()
}

/// An S3 server on a free port with the bucket `tributary-lake`: the server (killed when
/// dropped), its endpoint, and the `AWS_*` variables that reach it.
async fn bucket() -> (Child, String, [(&'static str, String); 5]) {
    let port = free_port();
    let server = start_s3_server(port).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/tributary-lake"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "bucket: {created:?}");
    let envs = [
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
        ("AWS_ACCESS_KEY_ID", "tributary".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "tributary".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    (server, endpoint, envs)
}

/// The ledger and three entries of 60.75 in all, posted at `base`; returns once the lake has
/// their six lines.
async fn three_entries(app: &reqwest::Client, base: &str) -> Value {
    setup_ledger(app, base).await;
    for amount in ["10.00", "20.50", "30.25"] {
        let body = json!({"posting_date": "2026-02-10", "lines": [
            {"account": "1000", "debit": amount, "currency": "EUR"},
            {"account": "4000", "credit": amount, "currency": "EUR"}]});
        let response = app
            .post(format!("{base}/api/v1/journal-entries"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let expected = json!([6, "60.7500"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while journal_line_totals(app, base).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lake did not reach {expected}: {}",
            journal_line_totals(app, base).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_lives_in_an_s3_bucket() {
    let (_server, endpoint, envs) = bucket().await;
    let envs = envs.each_ref().map(|(name, value)| (*name, value.as_str()));
    let client = reqwest::Client::new();
    let lake = [
        "--lake",
        "s3://tributary-lake/erp",
        "--reports",
        "s3://tributary-lake/reports",
    ];
    let dir = tempfile::tempdir().unwrap();

    let (mut child, base) = spawn_up(dir.path(), &lake, &envs).await;
    let app = crate::helpers::admin_client(&base).await;
    let expected = three_entries(&app, &base).await;
    // A report's outputs go to the bucket too, and download through the API.
    let queued = json_of(
        app.post(format!("{base}/api/v1/reports/trial-balance/runs"))
            .json(&json!({"parameters": {"period": "2026-02"}, "formats": ["csv", "pdf"]})),
    )
    .await;
    let run_url = format!("{base}{}", queued["url"].as_str().expect("run url"));
    let mut run = Value::Null;
    for _ in 0..300 {
        run = json_of(app.get(&run_url)).await;
        if run["status"] == "succeeded" || run["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run["status"], "succeeded", "{run}");
    let csv = text_of(app.get(format!(
        "{base}{}",
        run["outputs"][0]["url"].as_str().unwrap()
    )))
    .await;
    assert!(
        csv.contains("60.7500"),
        "the trial balance holds the postings: {csv}"
    );
    let listing = list_bucket(&client, &endpoint, "reports/").await;
    let id = run["id"].as_str().unwrap();
    for file in ["trial-balance.csv", "trial-balance.pdf"] {
        assert!(
            listing.contains(&format!("reports/{id}/{file}")),
            "{file} is in the bucket: {listing}"
        );
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(
        !dir.path().join("reports").exists(),
        "no report output is written to the data directory"
    );

    assert!(
        !dir.path().join("lake").exists(),
        "nothing of the lake is written to the data directory"
    );
    let listing = list_bucket(&client, &endpoint, "erp/gl_journal_lines/_delta_log/").await;
    assert!(
        listing.contains("erp/gl_journal_lines/_delta_log/00000000000000000001.json"),
        "the table's Delta log is in the bucket: {listing}"
    );

    let (_child, base) = spawn_up(dir.path(), &lake, &envs).await;
    let app = crate::helpers::admin_client(&base).await;
    assert_eq!(
        journal_line_totals(&app, &base).await,
        expected,
        "after a restart the lake in the bucket is found again"
    );
}

/// An `s3://` lake queried on a Ballista cluster: the executors open the bucket with the
/// query role's `AWS_*` variables and read the Delta snapshot's files there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_lake_is_queried_on_a_ballista_cluster() {
    let (_server, _, envs) = bucket().await;
    let envs = envs.each_ref().map(|(name, value)| (*name, value.as_str()));
    let cluster = crate::ballista::TestCluster::start_with(&envs).await;
    let address = cluster.address();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--lake",
        "s3://tributary-lake/cluster",
        "--ballista",
        &address,
    ];
    let (mut child, base) = spawn_up(dir.path(), &args, &envs).await;
    let app = crate::helpers::admin_client(&base).await;
    let jobs = cluster.all_jobs();
    three_entries(&app, &base).await;
    assert!(
        cluster.all_jobs().len() > jobs.len(),
        "the lake's queries ran no job on the cluster: {}",
        cluster.logs()
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
