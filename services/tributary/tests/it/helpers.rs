//! Starting Tributary for a test and talking to it like a client.

use serde_json::{Value, json};
use std::time::Duration;
use tributary::{Config, Running, start};

/// PostgreSQL server the tests create their databases on.
pub fn postgres_server_url() -> String {
    std::env::var("TRIBUTARY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty PostgreSQL database for one test; dropped when the test ends.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let name = format!("tributary_test_{}", uuid::Uuid::new_v4().simple());
        let server = postgres_server_url();
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .expect("PostgreSQL must be running for the tests (see .ci/run)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let base = server
            .rsplit_once('/')
            .map_or(server.as_str(), |(base, _)| base);
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl TestDatabase {
    /// The same database reached at another URL (a proxy); this handle does not drop it.
    pub fn alias(&self, url: String) -> TestDatabase {
        TestDatabase {
            url,
            name: String::new(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let name = self.name.clone();
        let server = postgres_server_url();
        // Best effort, on its own thread: Drop cannot await and the test runtime may be gone.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

/// A running Tributary and an HTTP client for it.
pub struct TestApp {
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub database: Option<TestDatabase>,
    pub backend: Backend,
}

/// The password of `admin`, the first user of every test's installation.
pub const TEST_ADMIN_PASSWORD: &str = "test administrator password";

/// A client of the installation at `base`, logged in as `admin`.
pub async fn admin_client(base: &str) -> reqwest::Client {
    tributary::client::logged_in(base, "admin", TEST_ADMIN_PASSWORD, 16)
        .await
        .expect("admin logs in")
}

pub fn config(dir: &std::path::Path, database: Option<&TestDatabase>) -> Config {
    let mut config = Config::embedded(dir.to_path_buf(), "127.0.0.1:0".parse().expect("address"));
    config.identity.admin_password = Some(TEST_ADMIN_PASSWORD.into());
    // Tests post as one user as fast as they can; the limit has its own test.
    config.rate_limit = None;
    config.database_url = database.map(|d| d.url.clone());
    config.runner.poll_interval_ms = 50;
    if let Some(pg) = &mut config.pg {
        pg.addr = "127.0.0.1:0".parse().expect("address");
    }
    config
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let running = start(config(dir.path(), database.as_ref()))
            .await
            .expect("tributary starts");
        TestApp::wrap(running, dir, database, backend).await
    }

    /// An app on SQLite started with `change` made to the test configuration.
    pub async fn spawn_with(change: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = config(dir.path(), None);
        change(&mut settings);
        let running = start(settings).await.expect("tributary starts");
        TestApp::wrap(running, dir, None, Backend::Sqlite).await
    }

    /// Wraps an app started by the test itself; its client is logged in as `admin`.
    pub async fn wrap(
        running: Running,
        dir: tempfile::TempDir,
        database: Option<TestDatabase>,
        backend: Backend,
    ) -> TestApp {
        let base = format!("http://{}", running.addr);
        TestApp {
            client: admin_client(&base).await,
            base,
            running: Some(running),
            dir,
            database,
            backend,
        }
    }

    /// Wraps an app started by the test itself (on PostgreSQL).
    pub async fn attach(
        running: Running,
        dir: tempfile::TempDir,
        database: TestDatabase,
    ) -> TestApp {
        TestApp::wrap(running, dir, Some(database), Backend::Postgres).await
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("the app is running")
    }

    /// Stops the app and starts it again on the same data directory and database.
    /// Company B with accounts 1000 and 4000, fiscal year 2026 and one entry of 77.00 (two
    /// lines), in the lake.
    pub async fn second_company(&self) {
        self.ok(
            "/api/v1/companies",
            json!({"code": "B", "name": "Company B"}),
        )
        .await;
        for (number, kind) in [("1000", "asset"), ("4000", "revenue")] {
            self.ok(
                "/api/v1/accounts",
                json!({"company": "B", "number": number, "name": number, "type": kind, "currency": "EUR"}),
            )
            .await;
        }
        self.ok(
            "/api/v1/fiscal-years",
            json!({"company": "B", "year": 2026}),
        )
        .await;
        self.ok(
            "/api/v1/journal-entries",
            json!({"company": "B", "posting_date": "2026-03-03", "lines": [
                {"account": "1000", "debit": "77.00", "currency": "EUR"},
                {"account": "4000", "credit": "77.00", "currency": "EUR"}]}),
        )
        .await;
        self.settle().await;
    }

    /// GET `path` with another user's access token: the JSON answer.
    pub async fn get_as(&self, path: &str, token: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("a JSON answer")
    }

    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Stops the app and starts it again with `change` made to its configuration.
    pub async fn restart_with(&mut self, change: impl FnOnce(&mut Config)) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        let mut settings = config(self.dir.path(), self.database.as_ref());
        change(&mut settings);
        let running = start(settings).await.expect("tributary restarts");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String, Value) {
        let (status, content_type, bytes) = self.request_bytes(method, path, body, headers).await;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, content_type, json)
    }

    /// A request; the status, the content type and the body as bytes.
    pub async fn request_bytes(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String, Vec<u8>) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.bytes().await.expect("body read").to_vec();
        (status, content_type, bytes)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, json) = self
            .request(reqwest::Method::POST, path, Some(&body.to_string()), &[])
            .await;
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, json) = self.request(reqwest::Method::GET, path, None, &[]).await;
        (status, json)
    }

    /// POST that must succeed; returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, json) = self.post(path, body.clone()).await;
        assert!(
            (200..300).contains(&status),
            "POST {path} {body} answered {status}: {json}"
        );
        json
    }

    /// Chart of accounts and fiscal year 2026 most tests start from.
    pub async fn setup_ledger(&self) {
        setup_ledger(&self.client, &self.base).await;
    }

    /// The `i`-th of a run of sample entries: every `rent_every`-th pays rent from the bank,
    /// the others invoice revenue; amounts `amount_base + i`.`i % 100`, dates spread over 2026.
    pub async fn post_sample_entry(
        &self,
        i: usize,
        rent_every: usize,
        amount_base: usize,
    ) -> Value {
        let amount = format!("{}.{:02}", amount_base + i, i % 100);
        let (debit, credit) = if i.is_multiple_of(rent_every) {
            ("6000", "1000")
        } else {
            ("1200", "4000")
        };
        self.post_entry(
            &format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
            &[(debit, "debit", &amount), (credit, "credit", &amount)],
        )
        .await
    }

    pub async fn post_entry(&self, date: &str, lines: &[(&str, &str, &str)]) -> Value {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(account, side, amount)| json!({"account": account, *side: amount, "currency": "EUR"}))
            .collect();
        self.ok(
            "/api/v1/journal-entries",
            json!({"posting_date": date, "lines": lines}),
        )
        .await
    }

    /// Waits until the pipelines have processed everything stored.
    pub async fn settle(&self) {
        self.running()
            .wait_for_pipelines(Duration::from_secs(20))
            .await
            .expect("pipelines catch up");
    }

    /// Waits until every reactor of the app has read everything stored (its reactions too).
    pub async fn settle_reactors(&self) {
        self.running()
            .wait_for_reactors(Duration::from_secs(20))
            .await
            .expect("reactors catch up");
    }

    /// Runs SQL; returns the rows.
    pub async fn sql(&self, sql: &str) -> Vec<Value> {
        let (status, body) = self.post("/api/v1/sql", json!({ "sql": sql })).await;
        assert_eq!(status, 200, "SQL {sql} failed: {body}");
        body["rows"].as_array().cloned().unwrap_or_default()
    }

    /// Events stored so far (an independent count straight from the database).
    pub async fn event_count(&self) -> i64 {
        let rows = match self.backend {
            Backend::Sqlite => {
                use sqlx::Connection;
                let url = format!("sqlite://{}", self.dir.path().join("events.db").display());
                let mut connection = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("open sqlite");
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
                    .fetch_one(&mut connection)
                    .await
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let url = &self.database.as_ref().expect("database").url;
                let mut connection = sqlx::PgConnection::connect(url)
                    .await
                    .expect("open postgres");
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
                    .fetch_one(&mut connection)
                    .await
            }
        };
        rows.expect("count events")
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

/// Declares one test per backend for an `async fn(Backend)` scenario.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() { super::$scenario($crate::helpers::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() { super::$scenario($crate::helpers::Backend::Postgres).await }
            )*
        }
    };
}

/// `count` synthetic `ThingHappened` events for one aggregate of `context`, appended at
/// `expected_version`.
pub fn thing_events(
    context: &str,
    aggregate_id: &str,
    expected_version: i64,
    count: usize,
) -> tributary_kernel::AppendBatch {
    tributary_kernel::AppendBatch {
        context: context.into(),
        writes: vec![tributary_kernel::StreamWrite {
            aggregate_type: "thing".into(),
            aggregate_id: aggregate_id.into(),
            expected_version,
            events: (0..count)
                .map(|i| tributary_kernel::NewEvent {
                    event_type: "ThingHappened".into(),
                    event_version: 1,
                    payload: json!({ "i": i }),
                })
                .collect(),
        }],
        reads: vec![],
        metadata: Default::default(),
        idempotency: None,
        time: chrono::Utc::now(),
    }
}

/// The lake one clean run of the pipelines over the store's events builds, in a new directory.
pub async fn clean_lake(
    store: &tributary_kernel::EventStore,
) -> (tempfile::TempDir, tributary_lakehouse::Lake) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = crate::helpers::open_lake(&dir.path().display().to_string())
        .await
        .expect("lake");
    let mut runner = tributary_pipelines::Runner::new(
        "finance",
        tributary_ingest::EventSource::Store(store.clone()),
        lake.clone(),
        crate::helpers::pipelines(),
        tributary_pipelines::RunnerOptions::default(),
    )
    .await
    .expect("runner");
    runner.catch_up().await.expect("clean run");
    (dir, lake)
}

/// The chart of accounts (1000 Bank, 1100 Bank USD, 1200 Receivables, 3000 Equity, 4000
/// Revenue, 6000 Rent) and fiscal year 2026, over HTTP at `base`.
pub async fn setup_ledger(client: &reqwest::Client, base: &str) {
    for (number, name, kind, currency) in [
        ("1000", "Bank", "asset", "EUR"),
        ("1200", "Receivables", "asset", "EUR"),
        ("1100", "Bank USD", "asset", "USD"),
        ("3000", "Equity", "equity", "EUR"),
        ("4000", "Revenue", "revenue", "EUR"),
        ("6000", "Rent", "expense", "EUR"),
    ] {
        let body = json!({"number": number, "name": name, "type": kind, "currency": currency});
        post_created(client, &format!("{base}/api/v1/accounts"), &body).await;
    }
    post_created(
        client,
        &format!("{base}/api/v1/fiscal-years"),
        &json!({"year": 2026}),
    )
    .await;
}

pub(crate) async fn post_created(client: &reqwest::Client, url: &str, body: &Value) {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "POST {url} {body} answered {status}: {text}");
}

/// A count(*)-style query over the lake; the first column of the first row.
pub async fn lake_count(query: &tributary_lakehouse::QueryService, sql: &str) -> i64 {
    let result = query
        .query(sql, &tributary_lakehouse::ReadScope::everything())
        .await
        .unwrap();
    datafusion::arrow::array::cast::as_primitive_array::<datafusion::arrow::datatypes::Int64Type>(
        result.batches[0].column(0),
    )
    .value(0)
}

/// A loopback port nothing listens on right now (for a server the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Imports `module` in python3, installing `requirement` from PyPI first when it is missing.
pub fn ensure_python_package(module: &str, requirement: &str) {
    let present = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .expect("python3 runs");
    if present.success() {
        return;
    }
    let installed = std::process::Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", requirement])
        .status()
        .expect("pip runs");
    assert!(installed.success(), "pip install {requirement} failed");
}

/// Every module's pipelines and source relations.
pub fn pipelines() -> tributary_pipelines::Pipelines {
    tributary_pipelines::Pipelines::of(&tributary::modules::all())
}

/// A lake at `location` with every module's tables and views.
pub async fn open_lake(
    location: &str,
) -> Result<tributary_lakehouse::Lake, tributary_lakehouse::LakeError> {
    tributary::modules::open_lake(location, &tributary::modules::all()).await
}

/// Runs the `tributary` binary with `arguments` to its end.
pub async fn tributary(arguments: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(arguments)
        .output()
        .await
        .unwrap()
}

/// The standard output of a command that must have succeeded.
pub fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
