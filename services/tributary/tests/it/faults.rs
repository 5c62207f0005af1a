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
    let app = TestApp::attach(running, dir, proxied);
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
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 503, "health reports the database");
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
