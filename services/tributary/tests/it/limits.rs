//! Limits that protect the service: the bytes of one answer (over HTTP and the wire), the
//! memory queries share, the time of one request, the wire endpoint's connections.

use crate::helpers::{Backend, TestApp, config};
use crate::wire::url;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_hungry_queries_and_extra_connections_are_refused_clearly() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path(), None);
    settings.query_limits = tributary_lakehouse::QueryLimits {
        timeout_ms: 20_000,
        answer_bytes_max: 1 << 20,
        memory_bytes_max: 16 << 20,
        wire_connections_max: 1,
        ..Default::default()
    };
    let running = tributary::start(settings).await.unwrap();
    let pg_addr = running.pg_addr.unwrap();
    let app = TestApp::wrap(running, dir, None, Backend::Sqlite).await;

    // A scalar function's 10 MB result is not sent (it is allocated outside any pool).
    let (status, problem) = app
        .post(
            "/api/v1/sql",
            json!({"sql": "SELECT repeat('x', 10000000) AS big"}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["type"],
        "https://tributary.dev/problems/query_answer_too_large"
    );
    let mut connection = sqlx::PgConnection::connect(&url(pg_addr)).await.unwrap();
    let refused = sqlx::query("SELECT repeat('x', 10000000) AS big")
        .fetch_all(&mut connection)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("larger than 1048576 bytes"),
        "{refused}"
    );

    // A second connection is one too many.
    let second = sqlx::PgConnection::connect(&url(pg_addr))
        .await
        .unwrap_err();
    assert!(second.to_string().contains("too many clients"), "{second}");
    connection.close().await.unwrap();

    // 400,000 distinct 100-byte values need more than the 16 MiB queries share.
    let (status, problem) = app
        .post(
            "/api/v1/sql",
            json!({"sql": "SELECT count(DISTINCT v) FROM (SELECT CAST(i AS VARCHAR) || repeat('y', 100) AS v \
                            FROM generate_series(1, 400000) AS t(i))"}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["type"],
        "https://tributary.dev/problems/query_memory_limit"
    );
}

#[tokio::test]
async fn a_request_longer_than_the_http_time_limit_is_answered_503_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path(), None);
    settings.http_timeout = Duration::from_secs(1);
    let running = tributary::start(settings).await.unwrap();
    let app = TestApp::wrap(running, dir, None, Backend::Sqlite).await;
    let started = Instant::now();
    let (status, problem) = app
        .post(
            "/api/v1/sql",
            json!({"sql": "SELECT count(*) FROM generate_series(1, 5000000000)"}),
        )
        .await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        problem["type"],
        "https://tributary.dev/problems/request_timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
