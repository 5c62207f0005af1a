//! Materials master data over REST (issue 13, point 5, first part): plants, storage locations,
//! materials valued per plant, vendors with payment terms; bad input names field and rule and
//! stores nothing.

use crate::helpers::{Backend, TestApp};
use serde_json::{Value, json};

pub(crate) async fn refused(
    app: &TestApp,
    path: &str,
    body: Value,
    status: u16,
    field: &str,
    rule: &str,
) {
    refused_as(app, reqwest::Method::POST, path, body, status, field, rule).await;
}

/// A command (`method` on `path` with `body`) refused with `status`, a 422 naming `field` and
/// `rule`; nothing stored.
pub(crate) async fn refused_as(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Value,
    status: u16,
    field: &str,
    rule: &str,
) {
    // The reactors' postings of earlier commands are not this request's doing.
    app.settle_reactors().await;
    let before = app.event_count().await;
    let (got, _, problem) = app
        .request(method.clone(), path, Some(&body.to_string()), &[])
        .await;
    assert_eq!(got, status, "{method} {path} {body}: {problem}");
    if status == 422 {
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field && e["rule"] == rule),
            "{method} {path} {body}: expected {field}/{rule} in {problem}"
        );
    }
    assert_eq!(
        app.event_count().await,
        before,
        "{path} {body} stored nothing"
    );
}

#[tokio::test]
async fn master_data_is_created_over_rest_and_bad_input_is_refused_naming_field_and_rule() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let plant = app
        .ok(
            "/api/v1/plants",
            json!({"code": "P100", "name": "Main plant", "currency": "EUR"}),
        )
        .await;
    assert_eq!(plant["company"], "MAIN", "the default company");
    let plant = app
        .ok(
            "/api/v1/plants/P100/storage-locations",
            json!({"code": "RAW", "name": "Raw materials"}),
        )
        .await;
    assert_eq!(plant["storage_locations"][0]["code"], "RAW");
    refused(
        &app,
        "/api/v1/plants",
        json!({"code": "P100", "name": "Again", "currency": "EUR"}),
        422,
        "code",
        "plant_exists",
    )
    .await;
    refused(
        &app,
        "/api/v1/plants",
        json!({"code": "p-1", "name": "x", "currency": "euro"}),
        422,
        "currency",
        "currency_code",
    )
    .await;
    refused(
        &app,
        "/api/v1/plants/P100/storage-locations",
        json!({"code": "RAW", "name": "x"}),
        422,
        "location",
        "location_exists",
    )
    .await;
    refused(
        &app,
        "/api/v1/plants/P999/storage-locations",
        json!({"code": "FG", "name": "x"}),
        404,
        "",
        "",
    )
    .await;

    let material = json!({
        "number": "BOLT-M8", "description": "Bolt M8 x 40", "base_unit": "PC",
        "alternative_units": [{"unit": "BOX", "factor": "12"}],
        "type": "raw", "group": "FASTENERS", "valuation_class": "3000",
        "plants": [{"plant": "P100", "valuation_method": "moving_average"}]});
    let (status, _, created) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/materials",
            Some(&material.to_string()),
            &[("idempotency-key", "material-1")],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["plants"][0]["valuation_method"], "moving_average");
    let (status, replayed_headers, replayed) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/materials",
            Some(&material.to_string()),
            &[("idempotency-key", "material-1")],
        )
        .await;
    assert_eq!(
        (status, replayed),
        (201, created.clone()),
        "{replayed_headers}"
    );
    let (status, fetched) = app.get("/api/v1/materials/BOLT-M8").await;
    assert_eq!(
        (status, fetched["alternative_units"][0]["factor"].clone()),
        (200, json!("12"))
    );
    // The stock of the material in the plant was opened with it.
    let stock = app
        .running()
        .store
        .load("materials.stock", &["MAIN/BOLT-M8/P100".to_owned()])
        .await
        .unwrap();
    assert_eq!(stock["MAIN/BOLT-M8/P100"][0].event_type, "StockOpened");

    refused(
        &app,
        "/api/v1/materials",
        material.clone(),
        422,
        "number",
        "material_exists",
    )
    .await;
    let with = |key: &str, value: Value| {
        let mut body = material.clone();
        body["number"] = json!("NUT-M8");
        body[key] = value;
        body
    };
    refused(
        &app,
        "/api/v1/materials",
        with(
            "plants",
            json!([{"plant": "P999", "valuation_method": "fifo"}]),
        ),
        422,
        "plants[0].plant",
        "plant_not_found",
    )
    .await;
    refused(
        &app,
        "/api/v1/materials",
        with(
            "plants",
            json!([{"plant": "P100", "valuation_method": "lifo"}]),
        ),
        422,
        "plants[0].valuation_method",
        "valuation_method",
    )
    .await;
    refused(
        &app,
        "/api/v1/materials",
        with("alternative_units", json!([{"unit": "PC", "factor": "1"}])),
        422,
        "alternative_units[0].unit",
        "unit_twice",
    )
    .await;
    refused(
        &app,
        "/api/v1/materials",
        with("alternative_units", json!([{"unit": "BOX", "factor": 12}])),
        422,
        "alternative_units[0].factor",
        "decimal_string",
    )
    .await;
    refused(
        &app,
        "/api/v1/materials",
        with("alternative_units", json!([{"unit": "BOX", "factor": "0"}])),
        422,
        "alternative_units[0].factor",
        "positive",
    )
    .await;
    refused(
        &app,
        "/api/v1/materials",
        with("type", json!("gadget")),
        422,
        "type",
        "material_type",
    )
    .await;
    refused(
        &app,
        "/api/v1/materials",
        with("base_unit", json!("pieces")),
        422,
        "base_unit",
        "unit_code",
    )
    .await;
    let (status, _) = app.get("/api/v1/materials/NUT-M8").await;
    assert_eq!(status, 404, "nothing of the refused material was stored");

    let vendor = json!({"number": "V-ACME", "name": "Acme Fasteners", "currency": "EUR",
        "payment_terms": {"discount_percent": "2", "discount_days": 10, "net_days": 30}});
    let created = app.ok("/api/v1/vendors", vendor.clone()).await;
    assert_eq!(created["payment_terms"]["discount_percent"], "2");
    refused(
        &app,
        "/api/v1/vendors",
        vendor.clone(),
        422,
        "number",
        "vendor_exists",
    )
    .await;
    refused(
        &app,
        "/api/v1/vendors",
        json!({"number": "V-2", "name": "x", "currency": "EUR",
        "payment_terms": {"discount_percent": "2", "discount_days": 40, "net_days": 30}}),
        422,
        "payment_terms.discount_days",
        "discount_within_net",
    )
    .await;
    refused(
        &app,
        "/api/v1/vendors",
        json!({"number": "V-2", "name": "x", "currency": "EUR",
        "payment_terms": {"discount_percent": 2, "net_days": 30}}),
        422,
        "payment_terms.discount_percent",
        "decimal_string",
    )
    .await;
    let (status, fetched) = app.get("/api/v1/vendors/V-ACME").await;
    assert_eq!(
        (status, fetched["payment_terms"]["net_days"].clone()),
        (200, json!(30))
    );
}

#[tokio::test]
async fn vendors_bank_accounts_are_sealed_in_events_and_shown_in_clear_with_the_permission_only() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let iban = "DE89370400440532013000";
    let vendor = json!({"number": "V-BANK", "name": "Bank Fasteners", "currency": "EUR",
        "payment_terms": {"net_days": 30}, "bank_account": "de89 3704 0044 0532 0130 00"});
    let created = app.ok("/api/v1/vendors", vendor.clone()).await;
    assert_eq!(
        created["bank_account"], "******************3000",
        "{created}"
    );
    let mut wrong = vendor.clone();
    wrong["number"] = json!("V-WRONG");
    wrong["bank_account"] = json!("DE89 3704 0044 0532 0130 01");
    refused(&app, "/api/v1/vendors", wrong, 422, "bank_account", "iban").await;
    assert_eq!(app.get("/api/v1/vendors/V-WRONG").await.0, 404);

    // The event store holds the sealed value and the masked form, never the number.
    let events = app
        .running()
        .store
        .load_type("materials.vendor")
        .await
        .unwrap();
    let payload = events[0].payload.to_string();
    assert!(
        !payload.contains(iban) && !payload.contains("0532"),
        "{payload}"
    );
    assert!(payload.contains("enc:v1:"), "{payload}");

    // A purchaser sees the masked form, an accountant (and the administrator) the number.
    let purchaser = crate::identity::user_with_roles(&app, "pete", &[("MAIN", "purchaser")]).await;
    let accountant = crate::identity::user_with_roles(&app, "acc", &[("MAIN", "accountant")]).await;
    for (token, shown) in [(purchaser, "******************3000"), (accountant, iban)] {
        let fetched = app.get_as("/api/v1/vendors/V-BANK", &token).await;
        assert_eq!(fetched["bank_account"], shown, "{fetched}");
    }
    assert_eq!(
        app.get("/api/v1/vendors/V-BANK").await.1["bank_account"],
        iban
    );

    // Keys configured later: the generated key still opens what it sealed (the administrator's
    // password hash, the IBAN), the configured one seals what comes.
    let mut app = app;
    let configured = tributary_kernel::sealed::FieldKeys::generate_config("k2").unwrap();
    app.restart_with(|settings| settings.field_keys = Some(configured))
        .await;
    tributary::client::logged_in(&app.base, "admin", crate::helpers::TEST_ADMIN_PASSWORD, 1)
        .await
        .expect("the administrator still logs in");
    assert_eq!(
        app.get("/api/v1/vendors/V-BANK").await.1["bank_account"],
        iban
    );
    let mut newer = vendor.clone();
    newer["number"] = json!("V-NEWER");
    app.ok("/api/v1/vendors", newer).await;
    let events = app
        .running()
        .store
        .load_type("materials.vendor")
        .await
        .unwrap();
    let newest = events
        .iter()
        .find(|e| e.aggregate_id.ends_with("V-NEWER"))
        .unwrap();
    assert!(
        newest.payload.to_string().contains("enc:v1:k2:"),
        "{}",
        newest.payload
    );
    assert_eq!(
        app.get("/api/v1/vendors/V-NEWER").await.1["bank_account"],
        iban
    );
}

/// Plants P100 (EUR, locations RAW and FG) and P200 (USD); BOLT-M8 (pieces, boxes of 12,
/// moving average in P100 and P200), NUT-M8 (FIFO in P100); vendor V-ACME (EUR, 2/10 net 30);
/// fiscal year 2026.
pub(crate) async fn purchasing_master_data(app: &TestApp) {
    // The year may be open already (a test that set up the ledger first).
    let (status, year) = app
        .post("/api/v1/fiscal-years", json!({"year": 2026}))
        .await;
    assert!(
        status == 201 || year["errors"][0]["rule"] == "fiscal_year_exists",
        "{year}"
    );
    app.ok(
        "/api/v1/plants",
        json!({"code": "P100", "name": "Main plant", "currency": "EUR"}),
    )
    .await;
    app.ok(
        "/api/v1/plants",
        json!({"code": "P200", "name": "US plant", "currency": "USD"}),
    )
    .await;
    for (plant, location) in [("P100", "RAW"), ("P100", "FG"), ("P200", "RAW")] {
        app.ok(
            &format!("/api/v1/plants/{plant}/storage-locations"),
            json!({"code": location, "name": location}),
        )
        .await;
    }
    app.ok(
        "/api/v1/materials",
        json!({"number": "BOLT-M8", "description": "Bolt M8 x 40", "base_unit": "PC",
               "alternative_units": [{"unit": "BOX", "factor": "12"}], "type": "raw",
               "valuation_class": "3000",
               "plants": [{"plant": "P100", "valuation_method": "moving_average"},
                          {"plant": "P200", "valuation_method": "moving_average"}]}),
    )
    .await;
    app.ok(
        "/api/v1/materials",
        json!({"number": "NUT-M8", "description": "Nut M8", "base_unit": "PC", "type": "raw",
               "valuation_class": "3000",
               "plants": [{"plant": "P100", "valuation_method": "fifo"}]}),
    )
    .await;
    app.ok(
        "/api/v1/vendors",
        json!({"number": "V-ACME", "name": "Acme Fasteners", "currency": "EUR",
               "payment_terms": {"discount_percent": "2", "discount_days": 10, "net_days": 30}}),
    )
    .await;
}

fn decimal(value: &Value) -> rust_decimal::Decimal {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a decimal string: {value}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn purchase_orders_and_goods_movements_value_stock_and_refuse_bad_input() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    purchasing_master_data(&app).await;
    let order = json!({
        "number": "4500000001", "vendor": "V-ACME", "order_date": "2026-03-01",
        "over_delivery_tolerance_percent": "10",
        "lines": [
            {"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW", "quantity": "20",
             "unit": "BOX", "unit_price": "4.80", "delivery_date": "2026-03-02"},
            {"material": "NUT-M8", "plant": "P100", "storage_location": "RAW", "quantity": "100",
             "unit_price": "0.05", "delivery_date": "2026-03-02"}]});
    let created = app.ok("/api/v1/purchase-orders", order.clone()).await;
    assert_eq!(
        (
            &created["status"],
            &created["currency"],
            &created["lines"][0]["line"],
            &created["lines"][1]["line"]
        ),
        (&json!("open"), &json!("EUR"), &json!(10), &json!(20))
    );

    // Bad purchase orders: each names its field and rule and stores nothing.
    let with = |path: &[&str], value: Value| {
        let mut body = order.clone();
        body["number"] = json!("4500000002");
        let mut target = &mut body;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                target[*key] = value.clone();
            } else if let Ok(index) = key.parse::<usize>() {
                target = &mut target[index];
            } else {
                target = &mut target[*key];
            }
        }
        body
    };
    for (body, field, rule) in [
        (order.clone(), "number", "purchase_order_exists"),
        (
            with(&["vendor"], json!("V-NONE")),
            "vendor",
            "vendor_not_found",
        ),
        (
            with(&["currency"], json!("USD")),
            "currency",
            "currency_mismatch",
        ),
        (with(&["lines"], json!([])), "lines", "line_count"),
        (
            with(&["lines", "0", "material"], json!("SCREW")),
            "lines[0].material",
            "material_not_found",
        ),
        (
            with(&["lines", "0", "plant"], json!("P999")),
            "lines[0].plant",
            "plant_not_found",
        ),
        (
            with(&["lines", "1", "plant"], json!("P200")),
            "lines[1].plant",
            "material_not_in_plant",
        ),
        (
            with(&["lines", "0", "plant"], json!("P200")),
            "lines[0].plant",
            "currency_mismatch",
        ),
        (
            with(&["lines", "0", "storage_location"], json!("XX")),
            "lines[0].storage_location",
            "location_not_found",
        ),
        (
            with(&["lines", "0", "unit"], json!("KG")),
            "lines[0].unit",
            "unit_not_of_material",
        ),
        (
            with(&["lines", "0", "quantity"], json!("0")),
            "lines[0].quantity",
            "positive",
        ),
        (
            with(&["lines", "0", "quantity"], json!("-3")),
            "lines[0].quantity",
            "positive",
        ),
        (
            with(&["lines", "0", "unit_price"], json!(4.8)),
            "lines[0].unit_price",
            "decimal_string",
        ),
        (
            with(&["lines", "1", "line"], json!(10)),
            "lines[1].line",
            "line_twice",
        ),
        (
            with(&["lines", "0", "line"], json!(20)),
            "lines[1].line",
            "line_twice",
        ),
        (
            with(&["over_delivery_tolerance_percent"], json!("150")),
            "over_delivery_tolerance_percent",
            "percent_at_most_100",
        ),
        (
            with(&["order_date"], json!("2026-02-30")),
            "order_date",
            "date",
        ),
    ] {
        refused(&app, "/api/v1/purchase-orders", body, 422, field, rule).await;
    }

    // Receipts in boxes: 10 boxes are 120 pieces at 4.80 / 12 = 0.40 each.
    let receipt = |quantity: &str, date: &str| {
        json!({"purchase_order": "4500000001", "line": 10, "quantity": quantity, "unit": "BOX",
               "posting_date": date})
    };
    let (status, _, first) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/goods-receipts",
            Some(&receipt("10", "2026-03-02").to_string()),
            &[("idempotency-key", "receipt-1")],
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let movement = &first["movements"][0];
    assert_eq!(
        (
            &movement["type"],
            &movement["quantity"],
            &movement["value"],
            &movement["purchase_order"],
            &movement["vendor"]
        ),
        (
            &json!("receipt"),
            &json!("120"),
            &json!("48.00"),
            &json!("4500000001"),
            &json!("V-ACME")
        )
    );
    let events = app.event_count().await;
    let (status, _, again) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/goods-receipts",
            Some(&receipt("10", "2026-03-02").to_string()),
            &[("idempotency-key", "receipt-1")],
        )
        .await;
    assert_eq!(
        (status, &again),
        (201, &first),
        "a repeat answers the first"
    );
    assert_eq!(app.event_count().await, events, "and stores nothing");
    let (_, po) = app.get("/api/v1/purchase-orders/4500000001").await;
    assert_eq!(po["status"], "partially_received");
    assert_eq!(po["lines"][0]["received_quantity"], "10");

    app.ok("/api/v1/goods-receipts", receipt("11", "2026-03-03"))
        .await;
    // 21 of 20 boxes received; 10% tolerance allows 22.
    refused(
        &app,
        "/api/v1/goods-receipts",
        receipt("2", "2026-03-04"),
        422,
        "quantity",
        "over_delivery_tolerance",
    )
    .await;
    let last = app
        .ok("/api/v1/goods-receipts", receipt("1", "2026-03-04"))
        .await;
    assert_eq!(
        (
            &last["quantity"],
            &last["value"],
            &last["moving_average_price"]
        ),
        (&json!("264"), &json!("105.60"), &json!("0.400000"))
    );
    let (_, po) = app.get("/api/v1/purchase-orders/4500000001").await;
    assert_eq!(
        (&po["status"], &po["lines"][0]["status"]),
        (&json!("partially_received"), &json!("received")),
        "line 20 is still open"
    );

    // Changing or cancelling: open lines only.
    let (status, _, problem) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/purchase-orders/4500000001/lines/10",
            Some(&json!({"quantity": "30"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(
        (status, &problem["errors"][0]["rule"]),
        (422, &json!("line_not_open")),
        "{problem}"
    );
    let (status, _, changed) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/purchase-orders/4500000001/lines/20",
            Some(&json!({"quantity": "200", "unit_price": "0.04"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(
        (status, &changed["lines"][1]["quantity"]),
        (200, &json!("200")),
        "{changed}"
    );
    let cancelled = app
        .ok(
            "/api/v1/purchase-orders/4500000001/lines/20/cancel",
            json!(null),
        )
        .await;
    assert_eq!(
        (&cancelled["lines"][1]["status"], &cancelled["status"]),
        (&json!("closed"), &json!("received"))
    );
    refused(
        &app,
        "/api/v1/goods-receipts",
        json!({"purchase_order": "4500000001", "line": 20, "quantity": "1", "posting_date": "2026-03-05"}),
        422,
        "line",
        "line_cancelled",
    )
    .await;
    refused(
        &app,
        "/api/v1/purchase-orders/4500009999/close",
        json!(null),
        404,
        "",
        "",
    )
    .await;

    // Issues leave at the moving average: 100 of 264 pieces worth 105.60 are 40.00.
    let issue = |quantity: &str| {
        json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
               "quantity": quantity, "posting_date": "2026-03-10", "cost_center": "CC-ASSEMBLY"})
    };
    let issued = app.ok("/api/v1/goods-issues", issue("100")).await;
    assert_eq!(
        (
            &issued["movements"][0]["value"],
            &issued["quantity"],
            &issued["value"]
        ),
        (&json!("-40.00"), &json!("164"), &json!("65.60"))
    );
    let transfer = |to: &str| {
        json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
               "to_storage_location": to, "quantity": "50", "posting_date": "2026-03-11"})
    };
    let moved = app.ok("/api/v1/stock-transfers", transfer("FG")).await;
    assert_eq!(
        (
            &moved["movements"][0]["quantity"],
            &moved["movements"][1]["quantity"],
            &moved["value"]
        ),
        (&json!("-50"), &json!("50"), &json!("65.60")),
        "a transfer moves quantity, not value"
    );
    let scrapped = app
        .ok(
            "/api/v1/goods-issues",
            json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "FG",
                   "quantity": "4", "posting_date": "2026-03-12", "scrap_reason": "damaged"}),
        )
        .await;
    assert_eq!(scrapped["movements"][0]["type"], "scrap");
    // RAW holds 114 by the book; 110 are counted: 4 missing at the average.
    let counted = app
        .ok(
            "/api/v1/physical-counts",
            json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
                   "counted_quantity": "110", "posting_date": "2026-03-31"}),
        )
        .await;
    let difference = &counted["movements"][0];
    assert_eq!(
        (
            &difference["type"],
            &difference["quantity"],
            &difference["book"]
        ),
        (&json!("count_difference"), &json!("-4"), &json!("114"))
    );
    // Two boxes go back to the vendor: they leave at the average, GR/IR clears at the order price.
    let returned = app
        .ok(
            "/api/v1/vendor-returns",
            json!({"purchase_order": "4500000001", "line": 10, "quantity": "2", "unit": "BOX",
                   "posting_date": "2026-03-31"}),
        )
        .await;
    let back = &returned["movements"][0];
    assert_eq!(
        (&back["type"], &back["quantity"], &back["order_value"]),
        (&json!("return_to_vendor"), &json!("-24"), &json!("9.60"))
    );
    let (_, stock) = app.get("/api/v1/stock/BOLT-M8?plant=P100").await;
    let quantity = decimal(&stock["quantity"]);
    assert_eq!(
        quantity,
        rust_decimal::Decimal::from(264 - 100 - 4 - 4 - 24)
    );
    let by_location: rust_decimal::Decimal = stock["storage_locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| decimal(&l["quantity"]))
        .sum();
    assert_eq!(by_location, quantity, "{stock}");
    let (_, po) = app.get("/api/v1/purchase-orders/4500000001").await;
    assert_eq!(po["lines"][0]["received_quantity"], "20");

    // Bad movements.
    app.ok("/api/v1/periods/2026-01/close", json!(null)).await;
    let mut bad: Vec<(&str, Value, &str, &str)> = vec![
        (
            "/api/v1/goods-issues",
            issue("1000"),
            "quantity",
            "stock_short",
        ),
        ("/api/v1/goods-issues", issue("0"), "quantity", "positive"),
        ("/api/v1/goods-issues", issue("-5"), "quantity", "positive"),
        (
            "/api/v1/stock-transfers",
            transfer("RAW"),
            "to_storage_location",
            "transfer_to_itself",
        ),
        (
            "/api/v1/stock-transfers",
            transfer("NOPE"),
            "to_storage_location",
            "location_not_found",
        ),
        (
            "/api/v1/goods-receipts",
            receipt("1", "2026-01-15"),
            "posting_date",
            "period_closed",
        ),
        (
            "/api/v1/goods-receipts",
            receipt("1", "2027-01-15"),
            "posting_date",
            "period_not_defined",
        ),
        (
            "/api/v1/goods-receipts",
            receipt("3", "2026-03-31"),
            "quantity",
            "over_delivery_tolerance",
        ),
        (
            "/api/v1/vendor-returns",
            json!({"purchase_order": "4500000001", "line": 10, "quantity": "30", "unit": "BOX", "posting_date": "2026-03-31"}),
            "quantity",
            "return_beyond_received",
        ),
        (
            "/api/v1/goods-receipts",
            json!({"purchase_order": "4500000404", "line": 10, "quantity": "1", "posting_date": "2026-03-31"}),
            "purchase_order",
            "purchase_order_not_found",
        ),
        (
            "/api/v1/goods-receipts",
            json!({"purchase_order": "4500000001", "line": 30, "quantity": "1", "posting_date": "2026-03-31"}),
            "line",
            "line_not_found",
        ),
        (
            "/api/v1/goods-receipts",
            json!({"purchase_order": "4500000001", "line": 10, "quantity": "1", "unit": "KG", "posting_date": "2026-03-31"}),
            "unit",
            "unit_not_of_material",
        ),
        (
            "/api/v1/goods-issues",
            json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW", "quantity": "1",
                "posting_date": "2026-03-10"}),
            "cost_center",
            "one_of",
        ),
        (
            "/api/v1/physical-counts",
            json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
                "counted_quantity": "-1", "posting_date": "2026-03-31"}),
            "counted_quantity",
            "positive",
        ),
    ];
    for (field, value, rule) in [
        ("material", json!("SCREW"), "material_not_found"),
        ("plant", json!("P999"), "plant_not_found"),
        ("storage_location", json!("NOPE"), "location_not_found"),
        ("unit", json!("KG"), "unit_not_of_material"),
        ("company", json!("OTHER"), "company_not_found"),
    ] {
        let mut body = issue("1");
        body[field] = value;
        bad.push(("/api/v1/goods-issues", body, field, rule));
    }
    let mut not_in_plant = issue("1");
    not_in_plant["material"] = json!("NUT-M8");
    not_in_plant["plant"] = json!("P200");
    not_in_plant["storage_location"] = json!("RAW");
    bad.push((
        "/api/v1/goods-issues",
        not_in_plant,
        "plant",
        "material_not_in_plant",
    ));
    for (path, body, field, rule) in bad {
        refused(&app, path, body, 422, field, rule).await;
    }
    app.stop().await;
}
