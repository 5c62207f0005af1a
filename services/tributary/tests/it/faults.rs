//! Infrastructure faults: the database going away and coming back.

use crate::helpers::{TestApp, TestDatabase, config};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy that can be cut (every connection dropped, new ones refused) and restored: to
/// the client it looks exactly like the server going down and coming back.
struct CuttableProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl CuttableProxy {
    async fn start(upstream: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, up_rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut up_rx = up_rx.clone();
                if !*up_rx.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = up_rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        CuttableProxy { addr, up }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// PostgreSQL down: writes answer 503 with a problem naming the cause, reads from the lake
/// keep working, and everything recovers without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_means_503_for_writes_reads_keep_working_and_it_recovers() {
    let database = TestDatabase::create().await;
    let proxy = CuttableProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = database.alias(
        database
            .url
            .replace("127.0.0.1:5432", &proxy.addr.to_string()),
    );
    let dir = tempfile::tempdir().unwrap();
    let running = tributary::start(config(dir.path(), Some(&proxied)))
        .await
        .unwrap();
    let app = TestApp::attach(running, dir, proxied).await;
    app.setup_ledger().await;
    app.post_entry(
        "2026-01-10",
        &[("1000", "debit", "70.00"), ("4000", "credit", "70.00")],
    )
    .await;
    app.settle().await;

    proxy.cut();
    let entry = json!({"posting_date": "2026-01-11", "lines": [
        {"account": "1000", "debit": "5.00", "currency": "EUR"}, {"account": "4000", "credit": "5.00", "currency": "EUR"}]});
    let (status, content_type, problem) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/journal-entries",
            Some(&entry.to_string()),
            &[],
        )
        .await;
    assert_eq!(
        (status, content_type.as_str()),
        (503, "application/problem+json"),
        "{problem}"
    );
    assert_eq!(
        problem["type"],
        "https://tributary.dev/problems/event_store_unavailable"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{problem}"
    );
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, 503, "health reports the database");
    assert_eq!(health["status"], "unavailable");
    assert!(
        health.get("error").is_none(),
        "no internal error text: {health}"
    );
    // Reads from the lake do not need the database.
    assert_eq!(
        app.sql("SELECT sum(debit) FROM gl_journal_lines").await[0],
        json!(["70.0000"])
    );

    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app.post("/api/v1/journal-entries", entry.clone()).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes did not recover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.settle().await;
    assert_eq!(
        app.sql("SELECT sum(debit) FROM gl_journal_lines").await[0],
        json!(["75.0000"])
    );
    app.stop().await;
}

/// A private tansu started by `tools/kafka-broker` (the one place that knows how to run it);
/// killed with SIGKILL by [`Broker::kill`] or when dropped.
pub(crate) struct Broker {
    pid: Option<u32>,
}

impl Broker {
    pub(crate) fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            // Until the process is gone (a zombie counts as gone: its sockets are closed).
            for _ in 0..100 {
                let state = std::fs::read_to_string(format!("/proc/{pid}/stat"));
                if state.map_or(true, |s| s.contains(") Z ")) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a private tansu on `port` with its storage in `dir` (kept across restarts).
pub(crate) async fn start_broker(dir: &std::path::Path, port: u16) -> Broker {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/kafka-broker");
    let output = tokio::process::Command::new(script)
        .env("TRIBUTARY_BROKER_PORT", port.to_string())
        .env("TRIBUTARY_BROKER_DIR", dir)
        .output()
        .await
        .expect("tools/kafka-broker runs");
    assert!(
        output.status.success(),
        "tools/kafka-broker failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let pid = std::fs::read_to_string(dir.join("broker.pid"))
        .expect("tools/kafka-broker writes broker.pid")
        .trim()
        .parse()
        .expect("a process id in broker.pid");
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Broker { pid: Some(pid) };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tansu did not listen on port {port}");
}

async fn journal_lines(app: &TestApp) -> i64 {
    app.sql("SELECT count(*) FROM gl_journal_lines").await[0][0]
        .as_i64()
        .unwrap_or(0)
}

/// Waits until the lake holds exactly `expected` journal lines, never more.
async fn wait_lines(app: &TestApp, expected: i64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let have = journal_lines(app).await;
        if have == expected {
            return;
        }
        assert!(
            have < expected,
            "more lines than posted: {have} > {expected}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lake holds {have} of {expected} lines"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Broker stopped for 30 s: the API keeps accepting entries (they wait in PostgreSQL) and the
/// lake catches up when the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_30s_api_keeps_accepting_and_the_lake_catches_up() {
    let broker_dir = tempfile::tempdir().unwrap();
    let port = crate::helpers::free_port();
    let mut broker = start_broker(broker_dir.path(), port).await;

    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path(), Some(&database));
    settings.kafka_brokers = Some(format!("127.0.0.1:{port}"));
    settings.roles = tributary::Roles::all();
    let running = tributary::start(settings).await.unwrap();
    let app = TestApp::attach(running, dir, database.alias(database.url.clone())).await;
    app.setup_ledger().await;
    let post = |i: usize| {
        let app = &app;
        async move {
            let amount = format!("{}.00", 1 + i);
            app.post_entry(
                "2026-03-03",
                &[("1000", "debit", &amount), ("4000", "credit", &amount)],
            )
            .await
        }
    };
    for i in 0..10 {
        post(i).await;
    }
    wait_lines(&app, 20, Duration::from_secs(60)).await;

    broker.kill();
    let down = tokio::time::Instant::now();
    let mut posted = 10;
    while down.elapsed() < Duration::from_secs(30) {
        post(posted).await; // every one answers 201: they wait in PostgreSQL
        posted += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        journal_lines(&app).await,
        20,
        "nothing new reaches the lake without the broker"
    );

    let _broker = start_broker(broker_dir.path(), port).await;
    wait_lines(&app, 2 * posted as i64, Duration::from_secs(180)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let bronze = app.sql("SELECT count(*), count(DISTINCT event_id) FROM bronze_events WHERE event_type = 'JournalEntryPosted'").await;
        let (rows, distinct) = (
            bronze[0][0].as_i64().unwrap_or(0),
            bronze[0][1].as_i64().unwrap_or(0),
        );
        assert_eq!(rows, distinct, "bronze holds no event twice");
        if rows == posted as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bronze holds {rows} of {posted} entries"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.stop().await;
}
