//! Procure to pay in the ledger (issue 13, point 5): finance's reactor posts every goods
//! movement by itself, with accounts determined per company and valuation class; a posting it
//! cannot make waits in suspense until the cause is fixed; the inventory account equals the
//! stock's value.

use crate::helpers::{Backend, TestApp};
use crate::materials::purchasing_master_data;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The accounts materials postings use, and the company's determination of them.
pub(crate) async fn materials_chart(app: &TestApp) {
    for (number, name, kind) in [
        ("1000", "Bank", "asset"),
        ("1300", "Inventory raw materials", "asset"),
        ("2000", "Accounts payable", "liability"),
        ("2100", "GR/IR clearing", "liability"),
        ("5000", "Consumption", "expense"),
        ("5200", "Price differences", "expense"),
        ("5300", "Scrap", "expense"),
        ("5400", "Inventory differences", "expense"),
        ("5900", "Cash discount received", "revenue"),
    ] {
        app.ok(
            "/api/v1/accounts",
            json!({"number": number, "name": name, "type": kind, "currency": "EUR"}),
        )
        .await;
    }
}

pub(crate) fn determination() -> Value {
    json!({"defaults": {
        "inventory": "1300", "gr_ir_clearing": "2100", "price_difference": "5200",
        "consumption": "5000", "scrap": "5300", "inventory_difference": "5400",
        "accounts_payable": "2000", "cash_discount": "5900", "bank": "1000"}})
}

pub(crate) async fn put(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, answer) = app
        .request(reqwest::Method::PUT, path, Some(&body.to_string()), &[])
        .await;
    (status, answer)
}

pub(crate) fn decimal(value: &Value) -> Decimal {
    match value {
        Value::String(text) => text.parse().unwrap(),
        Value::Number(number) => number.to_string().parse().unwrap(),
        Value::Null => Decimal::ZERO,
        other => panic!("not a decimal: {other}"),
    }
}

/// Balance (debit minus credit) per account in the lake.
pub(crate) async fn balances(app: &TestApp) -> BTreeMap<String, Decimal> {
    app.sql(
        "SELECT account, sum(debit) - sum(credit) AS balance FROM gl_journal_lines GROUP BY account",
    )
    .await
    .iter()
    .map(|row| {
        (
            row[0].as_str().unwrap().to_owned(),
            decimal(&row[1]),
        )
    })
    .collect()
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[tokio::test]
async fn goods_movements_post_to_the_ledger_by_themselves_once_each() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    purchasing_master_data(&app).await;
    materials_chart(&app).await;
    app.ok(
        "/api/v1/purchase-orders",
        json!({"number": "4500000010", "vendor": "V-ACME", "order_date": "2026-03-01",
               "lines": [
                {"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW", "quantity": "20",
                 "unit": "BOX", "unit_price": "4.80", "delivery_date": "2026-03-02"},
                {"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW", "quantity": "10",
                 "unit": "BOX", "unit_price": "6.00", "delivery_date": "2026-03-20"}]}),
    )
    .await;
    let receipt = |line: u32, boxes: &str, date: &str| json!({"purchase_order": "4500000010", "line": line, "quantity": boxes, "posting_date": date});

    // No account determination yet: the posting waits in suspense, the receipt stands.
    app.ok("/api/v1/goods-receipts", receipt(10, "10", "2026-03-02"))
        .await;
    app.settle_reactors().await;
    let (_, open) = app.get("/api/v1/suspense?status=open").await;
    let suspended = &open[0];
    assert_eq!(suspended["reactor"], "finance.materials-postings", "{open}");
    assert!(
        suspended["reason"]
            .as_str()
            .unwrap()
            .contains("no account determined for inventory, gr_ir_clearing"),
        "{suspended}"
    );

    // Bad determinations name the field and rule and store nothing.
    let events = app.event_count().await;
    let mut unknown_account = determination();
    unknown_account["defaults"]["inventory"] = json!("9999");
    let mut unknown_key = determination();
    unknown_key["defaults"]["treasure"] = json!("1000");
    let mut bad_class = determination();
    bad_class["valuation_classes"] = json!({"raw goods": {"inventory": "1300"}});
    for (body, field, rule) in [
        (unknown_account, "defaults.inventory", "account_not_found"),
        (unknown_key, "defaults.treasure", "account_key"),
        (bad_class, "valuation_classes.raw goods", "valuation_class"),
    ] {
        let (status, problem) = put(&app, "/api/v1/account-determination/materials", &body).await;
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field && e["rule"] == rule),
            "{field}/{rule} in {problem}"
        );
    }
    assert_eq!(app.event_count().await, events);

    let (status, set) = put(
        &app,
        "/api/v1/account-determination/materials",
        &determination(),
    )
    .await;
    assert_eq!(
        (status, &set["defaults"]["inventory"]),
        (200, &json!("1300")),
        "{set}"
    );
    let (status, retried) = app
        .post(
            &format!(
                "/api/v1/suspense/finance.materials-postings/{}/retry",
                suspended["event_id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, &retried["status"]),
        (200, &json!("resolved")),
        "{retried}"
    );

    // Receipts at the order price, an issue and scrap at the moving average, a count
    // difference, a receipt at another price, a return with a price difference, a transfer.
    app.ok("/api/v1/goods-receipts", receipt(10, "10", "2026-03-03"))
        .await;
    let issue = |extra: Value| {
        let mut body = json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
                              "posting_date": "2026-03-10"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    app.ok(
        "/api/v1/goods-issues",
        issue(json!({"quantity": "100", "cost_center": "CC-ASSEMBLY"})),
    )
    .await;
    app.ok(
        "/api/v1/goods-issues",
        issue(json!({"quantity": "4", "scrap_reason": "damaged"})),
    )
    .await;
    app.ok(
        "/api/v1/physical-counts",
        issue(json!({"counted_quantity": "130"})),
    )
    .await;
    app.ok("/api/v1/goods-receipts", receipt(20, "10", "2026-03-20"))
        .await;
    let returned = app
        .ok(
            "/api/v1/vendor-returns",
            json!({"purchase_order": "4500000010", "line": 10, "quantity": "1",
                   "posting_date": "2026-03-21"}),
        )
        .await;
    // 12 of 250 pieces worth 112.00 leave at 5.38; GR/IR clears the order's 4.80.
    assert_eq!(returned["movements"][0]["value"], "-5.38");
    app.ok(
        "/api/v1/stock-transfers",
        issue(json!({"quantity": "10", "to_storage_location": "FG"})),
    )
    .await;
    app.settle_reactors().await;
    app.settle().await;

    let (_, stock) = app.get("/api/v1/stock/BOLT-M8?plant=P100").await;
    assert_eq!(stock["value"], "106.62");
    let balances = balances(&app).await;
    let expected: BTreeMap<String, Decimal> = [
        ("1300", "106.62"),
        ("2100", "-151.20"),
        ("5000", "40.00"),
        ("5200", "0.58"),
        ("5300", "1.60"),
        ("5400", "2.40"),
    ]
    .into_iter()
    .map(|(account, balance)| (account.to_owned(), d(balance)))
    .collect();
    assert_eq!(balances, expected, "the ledger after the movements");
    assert_eq!(
        balances["1300"],
        decimal(&stock["value"]),
        "the inventory account equals the stock's value"
    );
    let entries = app
        .sql("SELECT count(DISTINCT entry_id) AS n FROM gl_journal_lines WHERE reference LIKE 'MM %'")
        .await;
    assert_eq!(
        entries[0][0], 7,
        "one entry per valued movement, the transfer none, none doubled"
    );
    let consumption = app
        .sql("SELECT cost_center FROM gl_journal_lines WHERE account = '5000'")
        .await;
    assert_eq!(consumption[0][0], "CC-ASSEMBLY");

    // Each posting names its cause (the stock event) and follows the request's correlation.
    let store = &app.running().store;
    let stock_events = store.load_type("materials.stock").await.unwrap();
    for entry in store.load_type("finance.journal_entry").await.unwrap() {
        let cause = entry.metadata.causation_id.clone().expect("a cause");
        let source = stock_events
            .iter()
            .find(|e| e.id.to_string() == cause)
            .expect("the cause is a stock event");
        assert_eq!(
            entry.metadata.correlation_id,
            source.metadata.correlation_id
        );
        assert!(source.metadata.correlation_id.is_some());
    }
    app.stop().await;
}
