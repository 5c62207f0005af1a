//! Issue 19, point 4: contexts kept in databases of their own (`--context-database-url`).
//! Finance (with identity and the platform's tables) on one PostgreSQL database, materials,
//! sales and production on another: every command appends to its context's database, a
//! delivery's goods issue with it; finance's reactors follow the other database's feed and
//! post each movement once; the pipelines and the planning worker read the feed of the
//! database holding their events; the lake gets everything. A later start without the same
//! map is refused instead of serving those contexts empty.

use crate::helpers::{Backend, TestApp, TestDatabase, config};
use crate::procure_to_pay::{
    balances, decimal, materials_ledger, movements_and_postings, receipts_and_issue,
};
use serde_json::json;
use std::collections::BTreeMap;

/// The contexts kept in the second database.
pub(crate) const LOGISTICS: [&str; 3] = ["materials", "sales", "production"];

fn routes(goods: &TestDatabase) -> Vec<(String, String)> {
    LOGISTICS
        .iter()
        .map(|context| ((*context).to_owned(), goods.url.clone()))
        .collect()
}

/// Events per context, counted straight from one database.
async fn events_by_context(database: &TestDatabase) -> BTreeMap<String, i64> {
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let counts = sqlx::query_as("SELECT context, count(*) FROM events GROUP BY context")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    pool.close().await;
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_and_logistics_in_two_databases_post_plan_and_fill_the_lake() {
    let (main, goods) = (TestDatabase::create().await, TestDatabase::create().await);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path(), Some(&main));
    settings.context_database_urls = routes(&goods);
    let running = tributary::start(settings).await.unwrap();
    let mut app = TestApp::wrap(running, dir, Some(main), Backend::Postgres).await;

    // Purchasing: six receipts and an issue, each posted to the ledger by finance's reactor.
    materials_ledger(&app).await;
    receipts_and_issue(&app, "PO-DB", 6, Some("7")).await;
    // Posted before the sales sample points the determination at other accounts.
    app.settle_reactors().await;
    // Sales (a delivery appends materials' goods issue in its transaction) and production
    // (an order received, an MRP run carried out by the planning worker).
    crate::sales::order_to_cash_sample(&app).await;
    crate::production::production_sample(&app).await;
    app.settle_reactors().await;
    app.settle().await;

    // Each database holds its contexts' events and no other's.
    let in_main = events_by_context(app.database.as_ref().unwrap()).await;
    let in_goods = events_by_context(&goods).await;
    assert_eq!(
        in_main.keys().map(String::as_str).collect::<Vec<_>>(),
        ["finance", "identity"],
        "{in_main:?}"
    );
    assert_eq!(
        in_goods.keys().map(String::as_str).collect::<Vec<_>>(),
        ["materials", "production", "sales"],
        "{in_goods:?}"
    );
    // Goods movements are posted by a reactor reading the goods database and appending to
    // the main one: none twice, and every one of the traded materials (receipts, the issue,
    // the delivery's goods issue) once.
    let store = app.running().store.clone();
    let (movements, causes) = movements_and_postings(&store).await;
    let traded: Vec<String> = store
        .load_type("materials.stock")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "GoodsMovementPosted")
        .filter(|e| ["BOLT-M8", "AMP-9"].contains(&e.payload["material"].as_str().unwrap_or("")))
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(
        traded.len(),
        9,
        "6 receipts and an issue of BOLT-M8, AMP-9 in and out"
    );
    for movement in &movements {
        let posted = causes.iter().filter(|c| *c == movement).count();
        let expected = usize::from(traded.contains(movement));
        assert!(posted <= 1, "movement {movement} posted {posted} times");
        assert!(posted >= expected, "movement {movement} not posted");
    }
    // The ledger agrees with the stock: 30 received and 7 issued at 2.50.
    let ledger = balances(&app).await;
    assert_eq!(ledger["1300"], decimal(&json!("57.50")), "{ledger:?}");
    let stock = app.get("/api/v1/stock/BOLT-M8?plant=P100").await.1;
    assert_eq!(decimal(&stock["value"]), ledger["1300"], "{stock}");
    assert_eq!(
        ledger.values().copied().sum::<rust_decimal::Decimal>(),
        rust_decimal::Decimal::ZERO,
        "the books balance: {ledger:?}"
    );
    // The lake has every context's rows, and each context's pipelines are current against
    // the feed of the database holding its events.
    let delivered = app.sql("SELECT sum(quantity) FROM delivery_lines").await;
    assert_eq!(
        decimal(&delivered[0][0]),
        decimal(&json!("90")),
        "the delivery in the lake"
    );
    let status = app
        .sql(
            "SELECT context, max(head_cursor), max(lag_events) FROM platform_pipelines \
             GROUP BY context ORDER BY context",
        )
        .await;
    for row in &status {
        let context = row[0].as_str().unwrap();
        let head = store.for_context(context).head_cursor().await.unwrap();
        assert_eq!(row[1], head, "{context}: the head of its database's feed");
        assert_eq!(row[2], 0, "{context} is current: {status:?}");
    }
    assert!(status.len() >= 4, "{status:?}");

    // Finance's periods live in the main database and still bind the other one: a goods
    // receipt dated in a closed period is refused, and neither database stores anything.
    let (status, closed) = app.post("/api/v1/periods/2026-03/close", json!(null)).await;
    assert_eq!(status, 200, "{closed}");
    let goods_before = events_by_context(&goods).await;
    crate::materials::refused(
        &app,
        "/api/v1/goods-receipts",
        json!({"purchase_order": "PO-DB", "line": 10, "quantity": "5", "posting_date": "2026-03-04"}),
        422,
        "posting_date",
        "period_closed",
    )
    .await;
    assert_eq!(events_by_context(&goods).await, goods_before);

    // The same map starts again; a start without it is refused, naming the context.
    app.restart_with(|settings| settings.context_database_urls = routes(&goods))
        .await;
    assert_eq!(
        app.get("/api/v1/stock/BOLT-M8?plant=P100").await.1["value"],
        stock["value"]
    );
    let running = app.running.take().unwrap();
    running.stop().await;
    let refused = tributary::start(config(app.dir.path(), app.database.as_ref()))
        .await
        .err()
        .expect("a start without the map is refused")
        .to_string();
    assert!(
        refused.contains("keeps the events of materials in another database"),
        "{refused}"
    );
    // Nor may a context move back into a database that holds another's events.
    let mut moved = config(app.dir.path(), Some(&goods));
    moved.context_database_urls =
        vec![("finance".into(), app.database.as_ref().unwrap().url.clone())];
    let refused = tributary::start(moved)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(refused.contains("holds events of"), "{refused}");
}

/// With Kafka between store and lake each database has its own relay: materials' events reach
/// finance's reactor and the pipelines through the goods database's relay, finance's through
/// the main one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kafka_each_database_relays_its_own_contexts() {
    let (main, goods) = (TestDatabase::create().await, TestDatabase::create().await);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path(), Some(&main));
    settings.context_database_urls = routes(&goods);
    settings.roles = tributary::Roles::all();
    settings.kafka_brokers = Some(crate::kafka::brokers());
    settings.topic_prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    let running = tributary::start(settings).await.unwrap();
    let app = TestApp::wrap(running, dir, Some(main), Backend::Postgres).await;
    materials_ledger(&app).await;
    receipts_and_issue(&app, "PO-K2", 3, None).await;
    let store = app.running().store.clone();
    let query = app.running().query.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut appended = store.for_context("finance").appended();
    let (movements, causes, rows) = loop {
        let (movements, causes) = movements_and_postings(&store).await;
        let rows = crate::helpers::lake_count(&query, "SELECT count(*) FROM stock_movements").await;
        if (causes.len() >= 3 && rows >= 3) || std::time::Instant::now() > deadline {
            break (movements, causes, rows);
        }
        let _ =
            tokio::time::timeout(std::time::Duration::from_millis(200), appended.changed()).await;
    };
    assert_eq!(movements.len(), 3);
    let mut posted = causes.clone();
    posted.sort();
    let mut expected = movements.clone();
    expected.sort();
    assert_eq!(posted, expected, "each receipt posted once, through Kafka");
    assert_eq!(rows, 3, "the receipts in the lake, through Kafka");
    // Both relays moved: each database keeps its own position (saved once the broker
    // acknowledged a batch, so perhaps a moment after the consumers saw it).
    for database in [app.database.as_ref().unwrap(), &goods] {
        let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
        let relayed = || async {
            sqlx::query_scalar::<_, Option<i64>>("SELECT max(cursor) FROM relay_positions")
                .fetch_one(&pool)
                .await
                .unwrap()
                .unwrap_or(0)
        };
        while relayed().await == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let head: i64 = sqlx::query_scalar("SELECT max(transaction_id)::text::bigint FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
        let cursor = relayed().await;
        assert!(
            cursor > 0 && cursor <= head,
            "{}: relayed to {cursor} of {head}",
            database.url
        );
        pool.close().await;
    }
    app.stop().await;
}

/// Contexts routed to a database of their own after the installation ran without: finance's
/// reactors had saved a position in the main database's feed, which says nothing of the new
/// one; they read the new feed from its start, so no goods movement is skipped. A later start
/// naming another database for them is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_routed_after_the_first_start_are_followed_from_their_new_feeds_start() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    // Forty events in the main database's feed, read by the reactors before the routing.
    for i in 0..40 {
        app.ok(
            "/api/v1/accounts",
            json!({"number": format!("8{i:03}"), "name": "Other expense", "type": "expense",
                   "currency": "EUR"}),
        )
        .await;
    }
    app.settle_reactors().await;
    let goods = |name: &str| format!("sqlite://{}", app.dir.path().join(name).display());
    let routes = |url: String| -> Vec<(String, String)> {
        LOGISTICS
            .iter()
            .map(|context| ((*context).to_owned(), url.clone()))
            .collect()
    };
    let (first, other) = (routes(goods("goods.db")), routes(goods("other.db")));
    app.restart_with(|settings| settings.context_database_urls = first.clone())
        .await;
    materials_ledger(&app).await;
    receipts_and_issue(&app, "PO-LATE", 3, Some("2")).await;
    app.settle_reactors().await;
    let store = app.running().store.clone();
    let (mut movements, mut causes) = movements_and_postings(&store).await;
    movements.sort();
    causes.sort();
    assert_eq!(movements.len(), 4);
    assert_eq!(causes, movements, "every movement posted once");

    let running = app.running.take().unwrap();
    running.stop().await;
    let mut elsewhere = config(app.dir.path(), None);
    elsewhere.context_database_urls = other;
    let refused = tributary::start(elsewhere)
        .await
        .err()
        .expect("another database for routed contexts is refused")
        .to_string();
    assert!(refused.contains("are kept at sqlite://"), "{refused}");
}
