//! Limits that protect the service: the bytes of one answer (over HTTP and the wire), the
//! memory queries share, the time of one request, the wire endpoint's connections.

use crate::helpers::TestApp;
use crate::wire::url;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_hungry_queries_and_extra_connections_are_refused_clearly() {
    use sqlx::Connection;
    let app = TestApp::spawn_with(|settings| {
        settings.query_limits = tributary_lakehouse::QueryLimits {
            timeout_ms: 20_000,
            answer_bytes_max: 1 << 20,
            memory_bytes_max: 16 << 20,
            wire_connections_max: 1,
            ..Default::default()
        };
    })
    .await;
    let pg_addr = app.running().pg_addr.unwrap();

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

    // A join whose build side holds 400,000 100-byte values needs more than the 16 MiB queries
    // share, all at once. (Not count(DISTINCT v) or an ORDER BY: DataFusion groups and sorts
    // spill to disk and then answer, depending on how batches reach their partitions; a hash
    // join's build side is held in memory, always.)
    let values = "SELECT CAST(i AS VARCHAR) || repeat('y', 100) AS v FROM generate_series(1, 400000) AS t(i)";
    let (status, problem) = app
        .post(
            "/api/v1/sql",
            json!({"sql": format!("SELECT count(*) FROM ({values}) AS a JOIN ({values}) AS b ON a.v = b.v")}),
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
    let app = TestApp::spawn_with(|settings| settings.http_timeout = Duration::from_secs(1)).await;
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

/// The test configuration with `requests` per user and hour, counted in Redis at `redis`.
fn limited(requests: u64, redis: Option<String>) -> impl FnOnce(&mut tributary::Config) {
    move |settings| {
        settings.rate_limit = Some(tributary_kernel::ratelimit::RateLimit {
            requests,
            window: Duration::from_secs(3_600),
        });
        settings.redis_url = redis;
    }
}

/// Sends `GET /api/v1/auth/me` as the app's admin until one is refused; answers how many
/// passed and the refusal.
async fn requests_until_limited(
    base: &str,
    client: &reqwest::Client,
    most: usize,
) -> (usize, u16, Option<String>, serde_json::Value) {
    for sent in 0..most {
        let response = client
            .get(format!("{base}/api/v1/auth/me"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            return (sent, status, retry_after, response.json().await.unwrap());
        }
    }
    (most, 200, None, serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_past_the_request_limit_gets_429_counted_in_the_process_or_in_redis() {
    // Redis is on this machine kind (README); its counts are shared by both apps below.
    let redis = std::env::var("TRIBUTARY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    for shared in [None, Some(redis)] {
        if let Some(url) = &shared {
            // The administrators of earlier runs counted in this Redis too.
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("tributary:rate:admin:*")
                .query_async(&mut connection)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
            }
        }
        let app = TestApp::spawn_with(limited(20, shared.clone())).await;
        // A user of this app only: Redis keys are per user name, and other runs of this test
        // share the Redis server.
        let name = format!("rl{}", uuid::Uuid::new_v4().simple());
        let name = &name[..20];
        app.ok(
            "/api/v1/users",
            json!({"username": name, "name": "Rate", "password": "rate limited user",
                   "roles": [{"company": "*", "role": "analyst"}]}),
        )
        .await;
        let user = tributary::client::logged_in(&app.base, name, "rate limited user", 4)
            .await
            .unwrap();
        let (passed, status, retry_after, problem) =
            requests_until_limited(&app.base, &user, 40).await;
        assert_eq!((passed, status), (20, 429), "{problem}");
        assert_eq!(
            problem["type"],
            "https://tributary.dev/problems/rate_limited"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("20 requests"),
            "{problem}"
        );
        let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=3_600).contains(&seconds), "{seconds}");
        // Other users are not limited by this one.
        assert_eq!(app.get("/api/v1/auth/me").await.0, 200);
        if shared.is_some() {
            // A second process of the installation counts on from the same Redis keys.
            let other = TestApp::spawn_with(limited(20, shared.clone())).await;
            other
                .ok(
                    "/api/v1/users",
                    json!({"username": name, "name": "Rate", "password": "rate limited user",
                           "roles": [{"company": "*", "role": "analyst"}]}),
                )
                .await;
            let user = tributary::client::logged_in(&other.base, name, "rate limited user", 4)
                .await
                .unwrap();
            let (passed, status, _, problem) = requests_until_limited(&other.base, &user, 5).await;
            assert_eq!((passed, status), (0, 429), "{problem}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_admits_requests_without_holding_them_up() {
    // Nothing listens on port 1.
    let app = TestApp::spawn_with(limited(1, Some("redis://127.0.0.1:1".into()))).await;
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/auth/me").await.0, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?} for three requests",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_expire_after_their_time() {
    let app =
        TestApp::spawn_with(|settings| settings.idempotency_ttl = Duration::from_secs(2)).await;
    app.setup_ledger().await;
    let body = json!({"posting_date": "2026-05-02", "lines": [
        {"account": "1000", "debit": "42.00", "currency": "EUR"},
        {"account": "4000", "credit": "42.00", "currency": "EUR"}]})
    .to_string();
    let key = [("idempotency-key", "expiring-1")];
    let post = |body: String| {
        let app = &app;
        async move {
            app.request(
                reqwest::Method::POST,
                "/api/v1/journal-entries",
                Some(&body),
                &key,
            )
            .await
        }
    };
    let (status, _, first) = post(body.clone()).await;
    assert_eq!(status, 201, "{first}");
    // Within its time another body under the key is refused; after it, the key is free.
    let other = body.replace("42.00", "43.00");
    let (status, _, _) = post(other.clone()).await;
    assert_eq!(status, 409, "the key is remembered at first");
    let started = Instant::now();
    loop {
        let (status, _, answer) = post(other.clone()).await;
        if status == 201 {
            assert_ne!(answer["id"], first["id"], "a new entry");
            break;
        }
        assert_eq!(status, 409, "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the key never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
