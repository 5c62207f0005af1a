//! kill -9 of the real `tributary up` process while it posts and runs pipelines, again and
//! again: after a restart every accepted entry is in the lake exactly once, and the lake equals
//! a clean run over the same events.

use crate::helpers::{config, setup_ledger};
use crate::restart::lake_contents;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tributary_kernel::EventStore;

/// Starts `tributary up` on the data directory with extra flags and environment; returns the
/// child and its base URL.
pub(crate) async fn spawn_up(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, String) {
    spawn_up_logging(dir, args, envs, Stdio::null()).await
}

/// [`spawn_up`] with its stderr (the log) going to `stderr`; RUST_LOG defaults to errors only.
pub(crate) async fn spawn_up_logging(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
    stderr: Stdio,
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "up",
            "--data-dir",
            &dir.display().to_string(),
            "--http-addr",
            "127.0.0.1:0",
            "--pg-addr",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("RUST_LOG", "error")
        .envs(envs.iter().copied())
        .env(
            "TRIBUTARY_ADMIN_PASSWORD",
            crate::helpers::TEST_ADMIN_PASSWORD,
        )
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("tributary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(rest) = line.trim().strip_prefix("HTTP API") {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("tributary prints its address")
    .expect("an HTTP API line");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut client;
    let mut accepted = 0usize;
    for cycle in 0..6u64 {
        let (mut child, base) = spawn_up(dir.path(), &[], &[]).await;
        client = crate::helpers::admin_client(&base).await;
        if cycle == 0 {
            setup_ledger(&client, &base).await;
        }
        // Post concurrently, then kill -9 at a point that moves from cycle to cycle, while
        // requests and pipeline batches are in flight.
        let mut posts = Vec::new();
        for i in 0..40u64 {
            let (client, base) = (client.clone(), base.clone());
            posts.push(tokio::spawn(async move {
                let amount = format!("{}.{:02}", 1 + cycle * 100 + i, i);
                let body = json!({"posting_date": format!("2026-{:02}-10", 1 + (i % 12)), "lines": [
                    {"account": "1000", "debit": amount, "currency": "EUR"},
                    {"account": "4000", "credit": amount, "currency": "EUR"}]});
                match client
                    .post(format!("{base}/api/v1/journal-entries"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) if response.status() == 201 => {
                        response.json::<Value>().await.is_ok()
                    }
                    _ => false,
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(40 + cycle * 37)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        for post in posts {
            accepted += usize::from(post.await.unwrap_or(false));
        }
    }
    assert!(accepted > 0, "some posts were accepted before the kills");

    // Restart in-process on the same directory and let the pipelines catch up.
    let running = tributary::start(config(dir.path(), None)).await.unwrap();
    running
        .wait_for_pipelines(Duration::from_secs(30))
        .await
        .unwrap();
    let stored_entries = {
        let store = &running.store;
        let feed = store.read_feed(0, 50_000).await.unwrap();
        feed.events
            .iter()
            .filter(|e| e.event_type == "JournalEntryPosted")
            .count()
    };
    // Every accepted entry is stored (an entry whose response was cut by the kill may be too).
    assert!(
        stored_entries >= accepted,
        "accepted {accepted}, stored {stored_entries}"
    );
    println!(
        "kill -9 test: 6 kills, {accepted} posts answered 201, {stored_entries} entries stored"
    );
    let live = lake_contents(&running.lake).await;
    let lines = live[0].lines().filter(|l| l.starts_with("| MAIN")).count();
    assert_eq!(
        lines,
        stored_entries * 2,
        "each stored entry's two lines are in the lake exactly once"
    );

    // A clean run over the same events builds the same lake.
    let store = EventStore::connect(
        &format!("sqlite://{}", dir.path().join("events.db").display()),
        2,
    )
    .await
    .unwrap();
    let (_clean_dir, clean_lake) = crate::helpers::clean_lake(&store).await;
    assert_eq!(
        live,
        lake_contents(&clean_lake).await,
        "the lake after 6 kills equals a clean run"
    );
    running.stop().await;
}

/// kill -9 of `tributary up` while goods receipts and issues are posted and finance's reactor
/// posts them to the ledger, again and again: after a restart every valued movement has
/// exactly one journal entry, caused by it, and the inventory account equals the stock's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_the_reactor_posts_loses_and_doubles_no_posting() {
    use crate::helpers::post_created;
    const MATERIALS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let mut client;
    let mut accepted = 0usize;
    for cycle in 0..8u64 {
        let (mut child, base) = spawn_up(dir.path(), &[], &[]).await;
        client = crate::helpers::admin_client(&base).await;
        let url = |path: &str| format!("{base}/api/v1/{path}");
        if cycle == 0 {
            for (number, kind) in [
                ("1000", "asset"),
                ("1300", "asset"),
                ("2100", "liability"),
                ("5000", "expense"),
            ] {
                let body =
                    json!({"number": number, "name": number, "type": kind, "currency": "EUR"});
                post_created(&client, &url("accounts"), &body).await;
            }
            post_created(&client, &url("fiscal-years"), &json!({"year": 2026})).await;
            let determination = client
                .put(url("account-determination/materials"))
                .json(
                    &json!({"defaults": {"inventory": "1300", "gr_ir_clearing": "2100",
                                           "consumption": "5000"}}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(determination.status(), 200);
            post_created(
                &client,
                &url("plants"),
                &json!({"code": "P1", "name": "Plant", "currency": "EUR"}),
            )
            .await;
            post_created(
                &client,
                &url("plants/P1/storage-locations"),
                &json!({"code": "S1", "name": "Store"}),
            )
            .await;
            post_created(
                &client,
                &url("vendors"),
                &json!({"number": "V1", "name": "Vendor", "currency": "EUR",
                        "payment_terms": {"net_days": 30}}),
            )
            .await;
            for m in 0..MATERIALS {
                post_created(
                    &client,
                    &url("materials"),
                    &json!({"number": format!("M-{m}"), "description": "Part", "base_unit": "PC",
                            "type": "raw", "valuation_class": "3000",
                            "plants": [{"plant": "P1", "valuation_method": if m % 2 == 0 { "moving_average" } else { "fifo" }}]}),
                )
                .await;
                post_created(
                    &client,
                    &url("purchase-orders"),
                    &json!({"number": format!("PO-{m}"), "vendor": "V1", "order_date": "2026-03-01",
                            "lines": [{"material": format!("M-{m}"), "plant": "P1", "storage_location": "S1",
                                       "quantity": "100000", "unit_price": "1.25", "delivery_date": "2026-03-02"}]}),
                )
                .await;
            }
        }
        // Each material receives and issues in turn while the reactor posts; the kill comes at
        // a point that moves from cycle to cycle.
        let mut posts = Vec::new();
        for m in 0..MATERIALS {
            let (client, base) = (client.clone(), base.clone());
            posts.push(tokio::spawn(async move {
                let mut accepted = 0usize;
                for i in 0..8 {
                    let (path, body) = if i % 2 == 0 {
                        (
                            "goods-receipts",
                            json!({"purchase_order": format!("PO-{m}"), "line": 10,
                                                  "quantity": "3", "posting_date": "2026-03-02"}),
                        )
                    } else {
                        (
                            "goods-issues",
                            json!({"material": format!("M-{m}"), "plant": "P1",
                                                "storage_location": "S1", "quantity": "1",
                                                "cost_center": "CC", "posting_date": "2026-03-03"}),
                        )
                    };
                    match client
                        .post(format!("{base}/api/v1/{path}"))
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(response) if response.status() == 201 => accepted += 1,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                accepted
            }));
        }
        tokio::time::sleep(Duration::from_millis(60 + cycle * 53)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        for post in posts {
            accepted += post.await.unwrap_or(0);
        }
    }
    assert!(
        accepted > 0,
        "some movements were accepted before the kills"
    );

    let running = tributary::start(config(dir.path(), None)).await.unwrap();
    running
        .wait_for_reactors(Duration::from_secs(30))
        .await
        .unwrap();
    running
        .wait_for_pipelines(Duration::from_secs(30))
        .await
        .unwrap();
    let store = &running.store;
    let valued: Vec<String> = store
        .load_type("materials.stock")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "GoodsMovementPosted")
        .map(|e| e.id.to_string())
        .collect();
    assert!(
        valued.len() >= accepted,
        "accepted {accepted}, stored {}",
        valued.len()
    );
    let mut causes = std::collections::BTreeMap::<String, usize>::new();
    for entry in store.load_type("finance.journal_entry").await.unwrap() {
        let cause = entry
            .metadata
            .causation_id
            .expect("a posting names its cause");
        *causes.entry(cause).or_default() += 1;
    }
    for id in &valued {
        assert_eq!(causes.get(id), Some(&1), "movement {id}: one posting");
    }
    assert_eq!(
        causes.len(),
        valued.len(),
        "no posting without its movement"
    );
    let open = tributary_kernel::reactor::Follow { store }
        .suspended(Some("open"), None, 10)
        .await
        .unwrap();
    assert!(open.is_empty(), "nothing in suspense: {open:?}");
    println!(
        "kill -9 reactor test: 8 kills, {accepted} movements answered 201, {} stored, each posted once",
        valued.len()
    );
    assert_eq!(
        crate::helpers::lake_count(
            &running.query,
            "SELECT count(*) FROM inventory_reconciliation"
        )
        .await,
        0,
        "the inventory account equals the stock's value"
    );
    assert_eq!(
        crate::helpers::lake_count(
            &running.query,
            "SELECT count(*) FROM gl_journal_lines WHERE account = '1300'"
        )
        .await,
        i64::try_from(valued.len()).unwrap(),
        "one inventory line per movement in the lake"
    );
    running.stop().await;
}
