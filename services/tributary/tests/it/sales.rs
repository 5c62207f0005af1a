//! Sales and distribution (issue 15): customers over REST so far; bad input names field and
//! rule and stores nothing.

use crate::helpers::{Backend, TestApp};
use crate::materials::refused;
use serde_json::{Value, json};

fn customer(number: &str) -> Value {
    json!({
        "number": number,
        "name": "Brightway Retail",
        "addresses": [
            {"kind": "billing", "street": "1 Market St", "postal_code": "10115",
             "city": "Berlin", "country": "DE"},
            {"kind": "shipping", "street": "9 Dock Rd", "postal_code": "20457",
             "city": "Hamburg", "country": "DE"}],
        "currency": "EUR",
        "payment_terms": {"discount_percent": "2", "discount_days": 10, "net_days": 30},
        "credit_limit": "50000.00",
        "tax_classification": "full",
        "bank_account": "DE89 3704 0044 0532 0130 00",
    })
}

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let (status, _, json) = app
        .request(reqwest::Method::PUT, path, Some(&body.to_string()), &[])
        .await;
    (status, json)
}

#[tokio::test]
async fn customers_are_created_with_terms_and_sealed_bank_details_and_credit_is_managed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let created = app.ok("/api/v1/customers", customer("C-100")).await;
    assert_eq!(
        (
            &created["company"],
            &created["payment_terms"]["discount_percent"],
            &created["payment_terms"]["net_days"],
            &created["credit_limit"],
            &created["tax_classification"],
            &created["addresses"][1]["city"],
            &created["bank_account"],
            &created["blocked"],
        ),
        (
            &json!("MAIN"),
            &json!("2"),
            &json!(30),
            &json!("50000.00"),
            &json!("full"),
            &json!("Hamburg"),
            &json!("******************3000"),
            &json!(false),
        ),
        "{created}"
    );

    // The IBAN is sealed at rest; a sales clerk sees it masked, an accountant in clear.
    let events = app
        .running()
        .store
        .load_type("sales.customer")
        .await
        .unwrap();
    let payload = events[0].payload.to_string();
    assert!(
        !payload.contains("0532") && payload.contains("enc:v1:"),
        "{payload}"
    );
    let clerk = crate::identity::user_with_roles(&app, "sally", &[("MAIN", "sales_clerk")]).await;
    let accountant = crate::identity::user_with_roles(&app, "acc", &[("MAIN", "accountant")]).await;
    assert_eq!(
        app.get_as("/api/v1/customers/C-100", &clerk).await["bank_account"],
        "******************3000"
    );
    assert_eq!(
        app.get_as("/api/v1/customers/C-100", &accountant).await["bank_account"],
        "DE89370400440532013000"
    );

    // Credit management: a new limit, a block with its reason, an unblock.
    let (status, changed) = put(
        &app,
        "/api/v1/customers/C-100/credit-limit",
        json!({"credit_limit": "75000"}),
    )
    .await;
    assert_eq!(
        (status, &changed["credit_limit"]),
        (200, &json!("75000")),
        "{changed}"
    );
    let blocked = app
        .ok(
            "/api/v1/customers/C-100/block",
            json!({"reason": "payment behaviour under review"}),
        )
        .await;
    assert_eq!(
        (&blocked["blocked"], &blocked["blocked_reason"]),
        (&json!(true), &json!("payment behaviour under review"))
    );
    refused(
        &app,
        "/api/v1/customers/C-100/block",
        json!({"reason": "again"}),
        422,
        "blocked",
        "already_blocked",
    )
    .await;
    let unblocked = app.ok("/api/v1/customers/C-100/unblock", json!({})).await;
    assert_eq!(unblocked["blocked"], false);
    refused(
        &app,
        "/api/v1/customers/C-100/unblock",
        json!({}),
        422,
        "blocked",
        "not_blocked",
    )
    .await;
    // A sales clerk may not raise a credit limit.
    let (status, _, _) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/customers/C-100/credit-limit",
            Some(r#"{"credit_limit": "1000000"}"#),
            &[("authorization", &format!("Bearer {clerk}"))],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        app.get("/api/v1/customers/C-100").await.1["credit_limit"],
        "75000"
    );
}

#[tokio::test]
async fn bad_customers_are_refused_naming_field_and_rule_and_store_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.ok("/api/v1/customers", customer("C-1")).await;
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("number", json!("C 1"), "number", "customer_number"),
        ("number", json!("C-1"), "number", "customer_exists"),
        ("name", json!(" "), "name", "required"),
        ("currency", json!("euro"), "currency", "currency_code"),
        ("credit_limit", json!("-5"), "credit_limit", "positive"),
        ("credit_limit", json!(100), "credit_limit", "decimal_string"),
        (
            "credit_limit",
            json!("1.234"),
            "credit_limit",
            "max_2_decimal_places",
        ),
        (
            "tax_classification",
            json!("half"),
            "tax_classification",
            "tax_classification",
        ),
        (
            "bank_account",
            json!("DE89 3704 0044 0532 0130 01"),
            "bank_account",
            "iban",
        ),
        (
            "payment_terms",
            json!({"discount_percent": "2", "discount_days": 40, "net_days": 30}),
            "payment_terms.discount_days",
            "discount_within_net",
        ),
        (
            "addresses",
            json!([{"kind": "shipping", "street": "x", "postal_code": "1", "city": "y",
                    "country": "DE"}]),
            "addresses",
            "billing_address_required",
        ),
        (
            "addresses",
            json!([{"kind": "billing", "street": "x", "postal_code": "1", "city": "y",
                    "country": "Germany"}]),
            "addresses[0].country",
            "country_code",
        ),
        (
            "addresses",
            json!([{"kind": "home", "street": "x", "postal_code": "1", "city": "y",
                    "country": "DE"}]),
            "addresses[0].kind",
            "address_kind",
        ),
    ];
    for (field, value, named, rule) in cases {
        let mut body = customer("C-2");
        body[field] = value;
        if rule == "customer_exists" {
            body["number"] = json!("C-1");
        }
        refused(&app, "/api/v1/customers", body, 422, named, rule).await;
    }
    refused(
        &app,
        "/api/v1/customers/C-404/block",
        json!({"reason": "x"}),
        404,
        "",
        "",
    )
    .await;
    refused(
        &app,
        "/api/v1/customers/C-1/block",
        json!({"reason": ""}),
        422,
        "reason",
        "required",
    )
    .await;
    assert_eq!(app.get("/api/v1/customers/C-2").await.0, 404);
}

/// A plant, a trading material in group FASTENERS, customer C-100 (2/10 net 30, full tax) and
/// the tax rates full/full 19 %, full/reduced 7 %.
pub(crate) async fn sales_master_data(app: &TestApp) {
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
        "/api/v1/plants/P100/storage-locations",
        json!({"code": "FG", "name": "Finished goods"}),
    )
    .await;
    app.ok(
        "/api/v1/materials",
        json!({"number": "BOLT-M8", "description": "Bolt M8 x 40", "base_unit": "PC",
               "alternative_units": [{"unit": "BOX", "factor": "100"}], "type": "trading",
               "group": "FASTENERS", "valuation_class": "3100",
               "plants": [{"plant": "P100", "valuation_method": "moving_average"}]}),
    )
    .await;
    app.ok("/api/v1/customers", customer("C-100")).await;
    for (customer_class, material_class, percent) in
        [("full", "full", "19"), ("full", "reduced", "7")]
    {
        app.ok(
            "/api/v1/tax-rates",
            json!({"customer_class": customer_class, "material_class": material_class,
                   "valid_from": "2020-01-01", "percent": percent}),
        )
        .await;
    }
}

#[tokio::test]
async fn prices_discounts_and_taxes_price_a_line_explained_and_overlaps_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    sales_master_data(&app).await;
    let listed = app
        .ok(
            "/api/v1/prices",
            json!({"material": "BOLT-M8", "currency": "EUR", "valid_from": "2026-01-01",
                   "valid_to": "2026-12-31",
                   "scale": [{"from_quantity": "0", "unit_price": "0.50"},
                             {"from_quantity": "1000", "unit_price": "0.45"}]}),
        )
        .await;
    assert_eq!(listed["recorded"]["id"], "BOLT-M8/EUR/1", "{listed}");
    app.ok(
        "/api/v1/discounts",
        json!({"material_group": "FASTENERS", "valid_from": "2026-01-01", "percent": "3"}),
    )
    .await;
    app.ok(
        "/api/v1/discounts",
        json!({"customer": "C-100", "valid_from": "2026-01-01", "per_unit": "0.01",
               "currency": "EUR"}),
    )
    .await;

    // 1,200 pieces reach the second scale step: 0.45, less 3 % (0.0135) and 0.01 per unit is
    // 0.4265; 1,200 x 0.4265 = 511.80 net; 19 % tax 97.242 -> 97.24; gross 609.04.
    let (status, price) = app
        .get("/api/v1/pricing/BOLT-M8/price?customer=C-100&quantity=1200&date=2026-03-02")
        .await;
    assert_eq!(status, 200, "{price}");
    assert_eq!(
        (
            &price["base_price"],
            &price["net_price"],
            &price["net_value"],
            &price["tax"],
            &price["gross_value"]
        ),
        (
            &json!("0.45"),
            &json!("0.4265"),
            &json!("511.80"),
            &json!("97.24"),
            &json!("609.04")
        ),
        "{price}"
    );
    let steps: Vec<&str> = price["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["condition"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "list_price",
            "material_group_discount_percent",
            "customer_discount_per_unit",
            "tax"
        ],
        "{price}"
    );

    // The customer's own price wins over the list; a reduced-rate material is taxed at 7 %.
    app.ok(
        "/api/v1/prices",
        json!({"material": "BOLT-M8", "currency": "EUR", "customer": "C-100",
               "valid_from": "2026-01-01", "unit_price": "0.40"}),
    )
    .await;
    let (status, _, _) = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/pricing/BOLT-M8/tax-classification",
            Some(r#"{"tax_classification": "reduced"}"#),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let price = app
        .get("/api/v1/pricing/BOLT-M8/price?customer=C-100&quantity=10&date=2026-03-02")
        .await
        .1;
    // 0.40 - 0.012 - 0.01 = 0.378; 3.78 net; 7 % = 0.2646 -> 0.26.
    assert_eq!(
        (
            &price["steps"][0]["condition"],
            &price["net_value"],
            &price["tax"]
        ),
        (&json!("customer_price"), &json!("3.78"), &json!("0.26")),
        "{price}"
    );

    // Overlaps, unknown keys, currency mismatch: refused, naming field and rule.
    let price_body = |valid_from: &str| {
        json!({"material": "BOLT-M8", "currency": "EUR", "valid_from": valid_from,
               "unit_price": "0.55"})
    };
    refused(
        &app,
        "/api/v1/prices",
        price_body("2026-06-01"),
        422,
        "valid_from",
        "price_overlap",
    )
    .await;
    app.ok("/api/v1/prices", price_body("2027-01-01")).await;
    let mut unknown = price_body("2028-01-01");
    unknown["material"] = json!("NOPE");
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("/api/v1/prices", unknown, "material", "material_not_found"),
        (
            "/api/v1/prices",
            json!({"material": "BOLT-M8", "currency": "USD", "customer": "C-100",
                   "valid_from": "2026-01-01", "unit_price": "0.40"}),
            "currency",
            "currency_mismatch",
        ),
        (
            "/api/v1/prices",
            json!({"material": "BOLT-M8", "currency": "EUR", "customer": "C-999",
                   "valid_from": "2026-01-01", "unit_price": "0.40"}),
            "customer",
            "customer_not_found",
        ),
        (
            "/api/v1/prices",
            json!({"material": "BOLT-M8", "currency": "GBP", "valid_from": "2026-01-01",
                   "scale": [{"from_quantity": "10", "unit_price": "1"}]}),
            "scale",
            "starts_at_zero",
        ),
        (
            "/api/v1/prices",
            json!({"material": "BOLT-M8", "currency": "GBP", "valid_from": "2026-05-01",
                   "valid_to": "2026-04-01", "unit_price": "1"}),
            "valid_to",
            "after_valid_from",
        ),
        (
            "/api/v1/discounts",
            json!({"material_group": "FASTENERS", "valid_from": "2026-07-01", "percent": "4"}),
            "valid_from",
            "discount_overlap",
        ),
        (
            "/api/v1/discounts",
            json!({"valid_from": "2026-07-01", "percent": "4"}),
            "customer",
            "customer_or_material_group",
        ),
        (
            "/api/v1/tax-rates",
            json!({"customer_class": "full", "material_class": "full",
                   "valid_from": "2026-01-01", "percent": "20"}),
            "valid_from",
            "tax_rate_overlap",
        ),
    ];
    for (path, body, field, rule) in cases {
        refused(&app, path, body, 422, field, rule).await;
    }
    let (status, problem) = app
        .get("/api/v1/pricing/BOLT-M8/price?customer=C-100&quantity=0&date=2026-03-02")
        .await;
    assert_eq!(
        (
            status,
            &problem["errors"][0]["field"],
            &problem["errors"][0]["rule"]
        ),
        (422, &json!("quantity"), &json!("positive")),
        "{problem}"
    );
    let (status, problem) = app
        .get("/api/v1/pricing/BOLT-M8/price?customer=C-100&quantity=1&date=2025-03-02")
        .await;
    assert_eq!(
        (status, &problem["errors"][0]["rule"]),
        (422, &json!("no_price")),
        "{problem}"
    );
}

/// 1,000 pieces of BOLT-M8 received into P100/FG on 1 March and 500 more due on 20 March (an
/// open purchase order), a list price of 0.50 and a second material without prices.
async fn stock_and_supply(app: &TestApp) {
    app.ok(
        "/api/v1/vendors",
        json!({"number": "V-ACME", "name": "Acme Fasteners", "currency": "EUR",
               "payment_terms": {"net_days": 30}}),
    )
    .await;
    for (number, quantity, date) in [
        ("4500000001", "1000", "2026-03-01"),
        ("4500000002", "500", "2026-03-20"),
    ] {
        app.ok(
            "/api/v1/purchase-orders",
            json!({"number": number, "vendor": "V-ACME", "order_date": "2026-02-20",
                   "lines": [{"material": "BOLT-M8", "plant": "P100", "storage_location": "FG",
                              "quantity": quantity, "unit_price": "0.30", "delivery_date": date}]}),
        )
        .await;
    }
    app.ok(
        "/api/v1/goods-receipts",
        json!({"purchase_order": "4500000001", "line": 10, "quantity": "1000",
               "posting_date": "2026-03-01"}),
    )
    .await;
    app.ok(
        "/api/v1/prices",
        json!({"material": "BOLT-M8", "currency": "EUR", "valid_from": "2026-01-01",
               "unit_price": "0.50"}),
    )
    .await;
    app.ok(
        "/api/v1/materials",
        json!({"number": "NUT-M8", "description": "Nut M8", "base_unit": "PC", "type": "trading",
               "valuation_class": "3100",
               "plants": [{"plant": "P100", "valuation_method": "moving_average"}]}),
    )
    .await;
}

fn order(number: &str, customer: &str, quantity: &str, requested: &str) -> Value {
    json!({"number": number, "customer": customer, "document_date": "2026-03-02",
           "lines": [{"line": 10, "material": "BOLT-M8", "quantity": quantity, "plant": "P100",
                      "requested_date": requested}]})
}

fn schedule(document: &Value) -> Vec<(String, String)> {
    document["lines"][0]["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["date"].as_str().unwrap().to_owned(),
                s["quantity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn orders_are_priced_confirmed_by_cumulative_availability_and_checked_for_credit() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    sales_master_data(&app).await;
    stock_and_supply(&app).await;

    // 1,200 for the 10th: the 1,000 on hand then, the rest when the receipt of the 20th comes.
    let first = app
        .ok(
            "/api/v1/sales-orders",
            order("SO-1", "C-100", "1200", "2026-03-10"),
        )
        .await;
    assert_eq!(
        schedule(&first),
        pairs(&[("2026-03-10", "1000"), ("2026-03-20", "200")]),
        "{first}"
    );
    // 1,200 x 0.50 = 600.00 net, 19 % tax 114.00, 714.00 gross; the price is explained.
    assert_eq!(
        (
            &first["status"],
            &first["net_value"],
            &first["tax"],
            &first["gross_value"],
            &first["lines"][0]["price"]["steps"][0]["condition"],
            &first["credit"]["status"],
            &first["payment_terms"]["net_days"]
        ),
        (
            &json!("open"),
            &json!("600.00"),
            &json!("114.00"),
            &json!("714.00"),
            &json!("list_price"),
            &json!("clear"),
            &json!(30)
        ),
        "{first}"
    );
    // 400 for the 5th: the 1,000 are promised for the 10th, so nothing then; of the 500 coming
    // on the 20th, 300 are left: confirmed for the 20th, 100 not at all.
    let second = app
        .ok(
            "/api/v1/sales-orders",
            order("SO-2", "C-100", "400", "2026-03-05"),
        )
        .await;
    assert_eq!(
        schedule(&second),
        pairs(&[("2026-03-20", "300")]),
        "{second}"
    );
    assert_eq!(second["lines"][0]["status"], "partially_confirmed");

    // Cancelling the first order gives its quantities back: the second, re-entered, is
    // confirmed in full for the 5th.
    let cancelled = app
        .ok("/api/v1/sales-orders/SO-1/lines/10/cancel", json!({}))
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    let (status, _, changed) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/sales-orders/SO-2/lines/10",
            Some(r#"{"quantity": "400"}"#),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        schedule(&changed),
        pairs(&[("2026-03-05", "400")]),
        "{changed}"
    );

    // Credit: a customer with a limit of 100.00 ordering 178.50 gross is blocked until a
    // holder of sales.credit.manage releases the order; a sales clerk may not.
    let mut small = customer("C-200");
    small["credit_limit"] = json!("100.00");
    app.ok("/api/v1/customers", small).await;
    let blocked = app
        .ok(
            "/api/v1/sales-orders",
            order("SO-3", "C-200", "300", "2026-03-25"),
        )
        .await;
    assert_eq!(
        (
            &blocked["status"],
            &blocked["credit"]["status"],
            &blocked["credit"]["limit"],
            &blocked["credit"]["order_value"]
        ),
        (
            &json!("credit_blocked"),
            &json!("blocked"),
            &json!("100.00"),
            &json!("178.50")
        ),
        "{blocked}"
    );
    let clerk = crate::identity::user_with_roles(&app, "sally", &[("MAIN", "sales_clerk")]).await;
    let (status, _, _) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/sales-orders/SO-3/release-credit",
            Some("{}"),
            &[("authorization", &format!("Bearer {clerk}"))],
        )
        .await;
    assert_eq!(status, 403);
    let released = app
        .ok("/api/v1/sales-orders/SO-3/release-credit", json!({}))
        .await;
    assert_eq!(
        (&released["status"], &released["credit"]["released_by"]),
        (&json!("open"), &json!("admin"))
    );
    // The open order counts against the next one: 178.50 open + 59.50 is over 100.00 again.
    let next = app
        .ok(
            "/api/v1/sales-orders",
            order("SO-4", "C-200", "100", "2026-03-25"),
        )
        .await;
    assert_eq!(
        (&next["credit"]["exposure"], &next["status"]),
        (&json!("178.50"), &json!("credit_blocked")),
        "{next}"
    );

    // A quotation becomes an order with its lines and prices, once.
    let quotation = app
        .ok(
            "/api/v1/quotations",
            json!({"number": "Q-1", "customer": "C-100", "document_date": "2026-03-02",
                   "lines": [{"line": 10, "material": "BOLT-M8", "quantity": "2", "unit": "BOX",
                              "plant": "P100", "requested_date": "2026-03-28"}]}),
        )
        .await;
    assert_eq!(
        (
            &quotation["kind"],
            &quotation["valid_to"],
            &quotation["lines"][0]["base_quantity"]
        ),
        (&json!("quotation"), &json!("2026-04-01"), &json!("200")),
        "{quotation}"
    );
    let accepted = app
        .ok(
            "/api/v1/sales-orders",
            json!({"number": "SO-5", "customer": "C-100", "quotation": "Q-1",
                   "document_date": "2026-03-03"}),
        )
        .await;
    assert_eq!(
        (
            &accepted["quotation"],
            &accepted["gross_value"],
            &accepted["lines"][0]["unit"]
        ),
        (&json!("Q-1"), &json!("119.00"), &json!("BOX")),
        "{accepted}"
    );
    assert_eq!(
        app.get("/api/v1/quotations/Q-1").await.1["status"],
        "accepted"
    );
    refused(
        &app,
        "/api/v1/sales-orders",
        json!({"number": "SO-6", "customer": "C-100", "quotation": "Q-1",
               "document_date": "2026-03-03"}),
        422,
        "quotation",
        "quotation_accepted",
    )
    .await;
}

#[tokio::test]
async fn bad_orders_are_refused_naming_field_and_rule_and_store_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    sales_master_data(&app).await;
    stock_and_supply(&app).await;
    let mut blocked = customer("C-BLK");
    blocked["number"] = json!("C-BLK");
    app.ok("/api/v1/customers", blocked).await;
    app.ok(
        "/api/v1/customers/C-BLK/block",
        json!({"reason": "insolvent"}),
    )
    .await;
    let line = |field: &str, value: Value| {
        let mut body = order("SO-BAD", "C-100", "10", "2026-03-10");
        body["lines"][0][field] = value;
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            order("SO-BAD", "C-404", "10", "2026-03-10"),
            "customer",
            "customer_not_found",
        ),
        (
            order("SO-BAD", "C-BLK", "10", "2026-03-10"),
            "customer",
            "customer_blocked",
        ),
        (
            line("quantity", json!("0")),
            "lines[0].quantity",
            "positive",
        ),
        (
            line("quantity", json!("-3")),
            "lines[0].quantity",
            "positive",
        ),
        (
            line("unit", json!("KG")),
            "lines[0].unit",
            "unit_not_of_material",
        ),
        (
            line("material", json!("NOPE")),
            "lines[0].material",
            "material_not_found",
        ),
        (
            line("material", json!("NUT-M8")),
            "lines[0].material",
            "no_price",
        ),
        (
            line("plant", json!("P999")),
            "lines[0].plant",
            "material_not_in_plant",
        ),
        (
            line("requested_date", json!("2026-02-30")),
            "lines[0].requested_date",
            "date",
        ),
        (
            {
                let mut body = order("SO-BAD", "C-100", "10", "2026-03-10");
                body["currency"] = json!("USD");
                body
            },
            "currency",
            "currency_mismatch",
        ),
        (
            json!({"number": "SO-BAD", "customer": "C-100", "lines": []}),
            "lines",
            "required",
        ),
    ];
    for (body, field, rule) in cases {
        refused(&app, "/api/v1/sales-orders", body, 422, field, rule).await;
    }
    app.ok(
        "/api/v1/sales-orders",
        order("SO-1", "C-100", "10", "2026-03-10"),
    )
    .await;
    refused(
        &app,
        "/api/v1/sales-orders",
        order("SO-1", "C-100", "10", "2026-03-10"),
        422,
        "number",
        "document_exists",
    )
    .await;
    refused(
        &app,
        "/api/v1/sales-orders/SO-1/lines/20/cancel",
        json!({}),
        422,
        "line",
        "line_not_found",
    )
    .await;
    refused(
        &app,
        "/api/v1/sales-orders/SO-404/lines/10/cancel",
        json!({}),
        404,
        "",
        "",
    )
    .await;
    refused(
        &app,
        "/api/v1/sales-orders/SO-1/release-credit",
        json!({}),
        422,
        "credit",
        "not_credit_blocked",
    )
    .await;
    assert_eq!(app.get("/api/v1/sales-orders/SO-BAD").await.0, 404);
}

#[tokio::test]
async fn deliveries_issue_confirmed_quantities_at_the_stocks_valuation_and_release_their_demand() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    sales_master_data(&app).await;
    stock_and_supply(&app).await;
    app.ok(
        "/api/v1/sales-orders",
        order("SO-1", "C-100", "1200", "2026-03-10"),
    )
    .await;
    let delivery = |number: &str, order: &str, line: Value| {
        json!({"number": number, "order": order, "posting_date": "2026-03-10",
               "storage_location": "FG", "lines": [line]})
    };
    // 600 of the 1,000 received at 0.30 leave at the moving average: 180.00.
    let posted = app
        .ok(
            "/api/v1/deliveries",
            delivery("80000001", "SO-1", json!({"line": 10, "quantity": "600"})),
        )
        .await;
    assert_eq!(
        (
            &posted["lines"][0]["quantity"],
            &posted["lines"][0]["cost"],
            &posted["customer"]
        ),
        (&json!("600"), &json!("180.00"), &json!("C-100")),
        "{posted}"
    );
    let so1 = app.get("/api/v1/sales-orders/SO-1").await.1;
    assert_eq!(
        (&so1["status"], &so1["lines"][0]["delivered_quantity"]),
        (&json!("partially_delivered"), &json!("600")),
        "{so1}"
    );
    let stock = app.get("/api/v1/stock/BOLT-M8?plant=P100").await.1;
    assert_eq!(
        (&stock["quantity"], &stock["value"]),
        (&json!("400"), &json!("120.00")),
        "{stock}"
    );
    // The goods issue is materials' event, appended with the delivery in one transaction.
    let stock_events = app
        .running()
        .store
        .load_type("materials.stock")
        .await
        .unwrap();
    let issue = stock_events.last().unwrap();
    assert_eq!(
        (issue.context.as_str(), issue.event_type.as_str()),
        ("materials", "GoodsMovementPosted")
    );
    let payload = issue.payload.to_string();
    assert!(
        payload.contains("\"delivery_issue\"") && payload.contains("80000001"),
        "{payload}"
    );

    // The line re-entered as 800: the 600 delivered stay where they were confirmed, the 200
    // still open are confirmed again (400 on hand).
    let (status, _, changed) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/sales-orders/SO-1/lines/10",
            Some(r#"{"quantity": "800"}"#),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        schedule(&changed),
        pairs(&[("2026-03-10", "800")]),
        "{changed}"
    );
    assert_eq!(
        changed["gross_value"], "476.00",
        "800 x 0.50 x 1.19: {changed}"
    );

    // What was delivered is no longer demand, and no longer stock: of the 400 on hand, 200
    // are promised for the 10th; a new order for the 12th gets the other 200 then and 200 of
    // the 500 coming on the 20th.
    let next = app
        .ok(
            "/api/v1/sales-orders",
            order("SO-2", "C-100", "400", "2026-03-12"),
        )
        .await;
    assert_eq!(
        schedule(&next),
        pairs(&[("2026-03-12", "200"), ("2026-03-20", "200")]),
        "{next}"
    );
    // A new requested date alone keeps the price the line was given.
    let (status, _, moved) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/sales-orders/SO-2/lines/10",
            Some(r#"{"requested_date": "2026-03-13"}"#),
            &[],
        )
        .await;
    assert_eq!(
        (
            status,
            &moved["lines"][0]["price"],
            &moved["lines"][0]["requested_date"]
        ),
        (200, &next["lines"][0]["price"], &json!("2026-03-13")),
        "{moved}"
    );

    // Beyond what is confirmed and not delivered (200 open), beyond the stock, unknown lines
    // and units, a credit-blocked order: refused, stock and order unchanged.
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            delivery("80000002", "SO-1", json!({"line": 10, "quantity": "201"})),
            "lines[0].quantity",
            "beyond_confirmed",
        ),
        (
            delivery("80000002", "SO-1", json!({"line": 20, "quantity": "1"})),
            "lines[0].line",
            "line_not_found",
        ),
        (
            delivery(
                "80000002",
                "SO-1",
                json!({"line": 10, "quantity": "1", "unit": "KG"}),
            ),
            "lines[0].unit",
            "unit_not_of_material",
        ),
        (
            delivery("80000002", "SO-1", json!({"line": 10, "quantity": "0"})),
            "lines[0].quantity",
            "positive",
        ),
        (
            delivery(
                "80000002",
                "SO-1",
                json!({"line": 10, "quantity": "0.00001"}),
            ),
            "lines[0].quantity",
            "max_4_decimal_places",
        ),
        (
            delivery("80000002", "SO-404", json!({"line": 10, "quantity": "1"})),
            "order",
            "order_not_found",
        ),
        (
            delivery("80000001", "SO-1", json!({"line": 10, "quantity": "1"})),
            "number",
            "document_exists",
        ),
    ];
    for (body, field, rule) in cases {
        refused(&app, "/api/v1/deliveries", body, 422, field, rule).await;
    }
    app.ok(
        "/api/v1/deliveries",
        delivery("80000002", "SO-1", json!({"line": 10, "quantity": "200"})),
    )
    .await;
    assert_eq!(
        app.get("/api/v1/sales-orders/SO-1").await.1["status"],
        "delivered"
    );
    // 400 confirmed for SO-2, 200 on hand.
    refused(
        &app,
        "/api/v1/deliveries",
        delivery("80000003", "SO-2", json!({"line": 10, "quantity": "400"})),
        422,
        "lines[0].quantity",
        "stock_short",
    )
    .await;
    let mut small = customer("C-200");
    small["credit_limit"] = json!("0.50");
    app.ok("/api/v1/customers", small).await;
    app.ok(
        "/api/v1/sales-orders",
        order("SO-3", "C-200", "1", "2026-03-10"),
    )
    .await;
    refused(
        &app,
        "/api/v1/deliveries",
        delivery("80000003", "SO-3", json!({"line": 10, "quantity": "1"})),
        422,
        "order",
        "credit_blocked",
    )
    .await;
    // Boxes of 100 are delivered in pieces: 2 boxes are the 200 on hand, at 0.30.
    let boxes = app
        .ok(
            "/api/v1/deliveries",
            delivery(
                "80000004",
                "SO-2",
                json!({"line": 10, "quantity": "2", "unit": "BOX"}),
            ),
        )
        .await;
    assert_eq!(
        (&boxes["lines"][0]["quantity"], &boxes["lines"][0]["cost"]),
        (&json!("200"), &json!("60.00")),
        "{boxes}"
    );
    assert_eq!(
        app.get("/api/v1/stock/BOLT-M8?plant=P100").await.1["quantity"],
        "0"
    );
}

/// Eight orders at once for 200 each on the 10th, with 1,000 on hand and 500 due on the 20th
/// (`stock_and_supply`): however they interleave, exactly 1,000 are promised for the 10th and
/// 500 for the 20th.
async fn eight_orders_at_once_promise_no_stock_twice(app: &TestApp) {
    let orders = (0..8).map(|n| async move {
        app.ok(
            "/api/v1/sales-orders",
            order(&format!("SO-C{n}"), "C-100", "200", "2026-03-10"),
        )
        .await
    });
    let results = futures::future::join_all(orders).await;
    let mut by_date = std::collections::BTreeMap::<String, rust_decimal::Decimal>::new();
    for result in &results {
        for (date, quantity) in schedule(result) {
            *by_date.entry(date).or_default() += quantity.parse::<rust_decimal::Decimal>().unwrap();
        }
    }
    assert_eq!(
        by_date,
        std::collections::BTreeMap::from([
            ("2026-03-10".to_owned(), rust_decimal::Decimal::from(1000)),
            ("2026-03-20".to_owned(), rust_decimal::Decimal::from(500)),
        ]),
        "1,500 of 1,600 can be promised: {results:#?}"
    );
}

async fn concurrent_orders_never_promise_the_same_stock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    sales_master_data(&app).await;
    stock_and_supply(&app).await;
    eight_orders_at_once_promise_no_stock_twice(&app).await;
}

#[tokio::test]
async fn concurrent_orders_never_promise_the_same_stock_on_sqlite() {
    concurrent_orders_never_promise_the_same_stock(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_orders_never_promise_the_same_stock_on_postgres() {
    concurrent_orders_never_promise_the_same_stock(Backend::Postgres).await;
}

/// Sales and materials as separate services on one PostgreSQL event store: the materials
/// process serves its availability over gRPC (`--grpc-addr`), the sales process (sales only,
/// API role) asks it there (`--materials-url`). Its answers are the in-process ones, orders
/// placed at once through it still never promise stock twice, and without the service an
/// order is refused 503, storing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_over_grpc_answers_as_in_process_and_fails_clearly_without_the_service() {
    let database = crate::helpers::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::config(dir.path(), Some(&database));
    settings.grpc_addr = Some("127.0.0.1:0".parse().unwrap());
    let mut materials =
        TestApp::attach(tributary::start(settings).await.unwrap(), dir, database).await;
    let grpc = materials
        .running()
        .grpc_addr
        .expect("materials serves gRPC");
    sales_master_data(&materials).await;
    stock_and_supply(&materials).await;

    // The published query, both ways, over the same store.
    let company = tributary_kernel::master::CompanyCode::parse("MAIN").unwrap();
    let url = format!("http://{grpc}");
    let remote = tributary_materials::grpc::RemoteAvailability::new(&url).unwrap();
    let local = tributary_materials::availability::local(materials.running().store.clone());
    use tributary_kernel::availability::Availability;
    for (material, plant) in [("BOLT-M8", "P100"), ("NUT-M8", "P100"), ("NONE", "P999")] {
        let over_grpc = remote.supply(&company, material, plant).await.unwrap();
        let in_process = local.supply(&company, material, plant).await.unwrap();
        assert_eq!(over_grpc, in_process, "{material} in {plant}");
    }
    let bolts = remote.supply(&company, "BOLT-M8", "P100").await.unwrap();
    assert_eq!(
        (bolts.on_hand, bolts.receipts.len()),
        (rust_decimal::Decimal::from(1000), 1),
        "{bolts:?}"
    );

    // The sales service.
    let sales_dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::config(sales_dir.path(), materials.database.as_ref());
    settings.contexts = Some(vec!["sales".into()]);
    settings.roles = tributary::Roles::parse("api").unwrap();
    settings.materials_url = Some(url);
    let sales = TestApp::wrap(
        tributary::start(settings).await.unwrap(),
        sales_dir,
        None,
        Backend::Postgres,
    )
    .await;
    eight_orders_at_once_promise_no_stock_twice(&sales).await;

    // Materials stops: the check cannot be made, the order is refused and not stored.
    let database = materials.database.take();
    materials.stop().await;
    let (status, problem) = sales
        .post(
            "/api/v1/sales-orders",
            order("SO-X", "C-100", "10", "2026-03-25"),
        )
        .await;
    assert_eq!(
        (status, &problem["type"]),
        (
            503,
            &json!("https://tributary.dev/problems/availability_unavailable")
        ),
        "{problem}"
    );
    assert_eq!(sales.get("/api/v1/sales-orders/SO-X").await.0, 404);
    sales.stop().await;
    drop(database);
}

/// Weygandt, Kimmel, Kieso, *Accounting Principles* (13th ed.), chapter 5, "Recording Sales of
/// Merchandise" under a perpetual system: PW Audio Supply sells 3,800 of merchandise (cost
/// 2,400) to Sauk Stereo on 4 May, terms 2/10, n/30; Sauk returns goods sold at 300 (cost 140)
/// on 8 May; PW receives 3,430 on 12 May, 3,500 less the 2 % discount of 70. The merchandise:
/// 100 amplifiers at 35 (cost 22.60) and 10 speakers at 30 (cost 14), so that the return is
/// the 10 speakers. No sales tax (the customer is exempt).
pub(crate) async fn pw_audio_sale(app: &TestApp) {
    sales_master_data(app).await;
    app.ok(
        "/api/v1/accounts",
        json!({"number": "1000", "name": "Cash", "type": "asset", "currency": "EUR"}),
    )
    .await;
    sales_ledger(
        app,
        [
            "1200", "1300", "2100", "2300", "4000", "4100", "4200", "5100",
        ],
    )
    .await;
    app.ok(
        "/api/v1/vendors",
        json!({"number": "V-AUDIO", "name": "Audio Wholesale", "currency": "EUR",
               "payment_terms": {"net_days": 30}}),
    )
    .await;
    let received = |quantity, cost| (quantity, cost, "2026-05-01");
    stocked_material(app, "AMP-100", received("100", "22.60"), "V-AUDIO", "35.00").await;
    stocked_material(app, "SPK-20", received("10", "14.00"), "V-AUDIO", "30.00").await;
    exempt_rate(app).await;
    let mut sauk = customer("SAUK");
    sauk["name"] = json!("Sauk Stereo");
    sauk["tax_classification"] = json!("exempt");
    app.ok("/api/v1/customers", sauk).await;
    app.ok(
        "/api/v1/sales-orders",
        json!({"number": "SO-PW", "customer": "SAUK", "document_date": "2026-05-04",
               "lines": [
                   {"line": 10, "material": "AMP-100", "quantity": "100", "plant": "P100",
                    "requested_date": "2026-05-04"},
                   {"line": 20, "material": "SPK-20", "quantity": "10", "plant": "P100",
                    "requested_date": "2026-05-04"}]}),
    )
    .await;
    app.ok(
        "/api/v1/deliveries",
        json!({"number": "80000010", "order": "SO-PW", "posting_date": "2026-05-04",
               "storage_location": "FG",
               "lines": [{"line": 10, "quantity": "100"}, {"line": 20, "quantity": "10"}]}),
    )
    .await;
}

#[tokio::test]
async fn a_textbook_sale_on_credit_terms_its_return_and_payment_within_the_discount_period() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    pw_audio_sale(&app).await;
    // 4 May: the invoice of 3,800, due 3 June, 2 % until 14 May; cost of the goods 2,400.
    let invoice = app
        .ok(
            "/api/v1/invoices",
            json!({"number": "90000010", "order": "SO-PW", "posting_date": "2026-05-04"}),
        )
        .await;
    let cost: rust_decimal::Decimal = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["cost"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        (
            &invoice["gross_value"],
            &invoice["tax"],
            &invoice["due_date"],
            &invoice["discount_date"],
            cost
        ),
        (
            &json!("3800.00"),
            &json!("0.00"),
            &json!("2026-06-03"),
            &json!("2026-05-14"),
            rust_decimal::Decimal::from(2400)
        ),
        "{invoice}"
    );
    assert_eq!(
        app.get("/api/v1/sales-orders/SO-PW").await.1["status"],
        "completed"
    );

    // 8 May: the speakers come back, 300 credited, back in stock at their cost of 140.
    let memo = app
        .ok(
            "/api/v1/credit-memos",
            json!({"number": "91000010", "invoice": "90000010", "posting_date": "2026-05-08",
                   "storage_location": "FG", "lines": [{"line": 20, "quantity": "10"}]}),
        )
        .await;
    assert_eq!(
        (
            &memo["kind"],
            &memo["gross_value"],
            &memo["lines"][0]["cost"],
            &memo["open_amount"]
        ),
        (
            &json!("credit_memo"),
            &json!("300.00"),
            &json!("140.00"),
            &json!("0.00")
        ),
        "{memo}"
    );
    let speakers = app.get("/api/v1/stock/SPK-20?plant=P100").await.1;
    assert_eq!(
        (&speakers["quantity"], &speakers["value"]),
        (&json!("10"), &json!("140.00"))
    );
    assert_eq!(
        app.get("/api/v1/invoices/90000010").await.1["open_amount"],
        "3500.00"
    );

    // 12 May: 3,430 received settles the invoice with 70 cash discount.
    let paid = app
        .ok(
            "/api/v1/customer-payments",
            json!({"number": "PAY-1", "customer": "SAUK", "payment_date": "2026-05-12",
                   "amount": "3430.00"}),
        )
        .await;
    assert_eq!(
        (
            &paid["items"][0]["invoice"],
            &paid["items"][0]["amount"],
            &paid["items"][0]["discount"],
            &paid["on_account"]
        ),
        (
            &json!("90000010"),
            &json!("3430.00"),
            &json!("70.00"),
            &json!("0.00")
        ),
        "{paid}"
    );
    assert_eq!(
        app.get("/api/v1/invoices/90000010").await.1["open_amount"],
        "0.00"
    );
    let items = app.get("/api/v1/customers/SAUK/open-items").await.1;
    assert_eq!(
        (&items["open_items"], &items["total"]),
        (&json!([]), &json!("0")),
        "{items}"
    );

    // The ledger, posted by finance's reactors: the published entries of 4, 8 and 12 May.
    app.settle_reactors().await;
    app.settle().await;
    let rows = app
        .sql(
            "SELECT CAST(posting_date AS VARCHAR), account, sum(debit) - sum(credit) \
             FROM gl_journal_lines WHERE posting_date >= DATE '2026-05-04' \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await;
    let posted: std::collections::BTreeMap<(String, String), rust_decimal::Decimal> = rows
        .iter()
        .map(|row| {
            (
                (
                    row[0].as_str().unwrap().to_owned(),
                    row[1].as_str().unwrap().to_owned(),
                ),
                crate::procure_to_pay::decimal(&row[2]),
            )
        })
        .filter(|(_, amount)| !amount.is_zero())
        .collect();
    let published: std::collections::BTreeMap<(String, String), rust_decimal::Decimal> = [
        // 4 May: Accounts Receivable 3,800 / Sales Revenue 3,800; COGS 2,400 / Inventory 2,400
        ("2026-05-04", "1200", "3800"),
        ("2026-05-04", "4000", "-3800"),
        ("2026-05-04", "5100", "2400"),
        ("2026-05-04", "1300", "-2400"),
        // 8 May: Sales Returns and Allowances 300 / A/R 300; Inventory 140 / COGS 140
        ("2026-05-08", "4100", "300"),
        ("2026-05-08", "1200", "-300"),
        ("2026-05-08", "1300", "140"),
        ("2026-05-08", "5100", "-140"),
        // 12 May: Cash 3,430 and Sales Discounts 70 / Accounts Receivable 3,500
        ("2026-05-12", "1000", "3430"),
        ("2026-05-12", "4200", "70"),
        ("2026-05-12", "1200", "-3500"),
    ]
    .into_iter()
    .map(|(date, account, amount)| {
        (
            (date.to_owned(), account.to_owned()),
            amount.parse::<rust_decimal::Decimal>().unwrap(),
        )
    })
    .collect();
    assert_eq!(posted, published);

    // The lake: receivables agree with the ledger; revenue 3,500, cost 2,260, margin 1,240.
    assert_eq!(
        app.sql("SELECT * FROM ar_reconciliation").await,
        Vec::<Value>::new()
    );
    let revenue = app
        .sql(
            "SELECT sum(revenue), sum(cost), sum(margin) FROM sales_revenue \
             WHERE customer = 'SAUK' AND month = TIMESTAMP '2026-05-01 00:00:00'",
        )
        .await;
    assert_eq!(
        revenue[0]
            .as_array()
            .unwrap()
            .iter()
            .map(crate::procure_to_pay::decimal)
            .collect::<Vec<_>>(),
        [3500, 2260, 1240].map(rust_decimal::Decimal::from),
        "{revenue:?}"
    );

    // A settled item, more than billed or delivered: refused, nothing stored.
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "/api/v1/customer-payments",
            json!({"number": "PAY-2", "customer": "SAUK", "payment_date": "2026-05-13",
                   "amount": "10.00", "invoices": [{"number": "90000010"}]}),
            "invoices[0].number",
            "item_settled",
        ),
        (
            "/api/v1/credit-memos",
            json!({"number": "91000011", "invoice": "90000010", "posting_date": "2026-05-13",
                   "lines": [{"line": 20, "quantity": "1"}]}),
            "lines[0].quantity",
            "beyond_billed",
        ),
        (
            "/api/v1/invoices",
            json!({"number": "90000011", "order": "SO-PW", "posting_date": "2026-05-13",
                   "lines": [{"line": 10, "quantity": "1"}]}),
            "lines[0].quantity",
            "beyond_delivered",
        ),
        (
            "/api/v1/invoices",
            json!({"number": "90000011", "order": "SO-PW", "posting_date": "2026-05-13"}),
            "lines",
            "nothing_to_bill",
        ),
        (
            "/api/v1/customer-payments",
            json!({"number": "PAY-2", "customer": "SAUK", "payment_date": "2026-05-13",
                   "amount": "10.00", "currency": "USD"}),
            "currency",
            "currency_mismatch",
        ),
        (
            "/api/v1/credit-memos",
            json!({"number": "91000011", "invoice": "90000010", "posting_date": "2026-05-03",
                   "lines": [{"line": 10, "quantity": "1"}]}),
            "posting_date",
            "before_invoice",
        ),
    ];
    for (path, body, field, rule) in cases {
        refused(&app, path, body, 422, field, rule).await;
    }

    // 20 May, after the discounted payment: 5 amplifiers (175) come back. Sauk paid for them
    // less the 2 % discount, so 171.50 is owed back and 3.50 of the discount is reversed: Dr
    // Sales Returns 175 / Cr Accounts Receivable 171.50, Cr Sales Discounts 3.50.
    let late = app
        .ok(
            "/api/v1/credit-memos",
            json!({"number": "91000012", "invoice": "90000010", "posting_date": "2026-05-20",
                   "lines": [{"line": 10, "quantity": "5"}]}),
        )
        .await;
    assert_eq!(
        (
            &late["gross_value"],
            &late["discount_reversed"],
            &late["open_amount"]
        ),
        (&json!("175.00"), &json!("3.50"), &json!("171.50")),
        "{late}"
    );
    let items = app.get("/api/v1/customers/SAUK/open-items").await.1;
    assert_eq!(items["total"], "-171.50", "{items}");
    app.settle_reactors().await;
    app.settle().await;
    let rows = app
        .sql(
            "SELECT account, sum(debit) - sum(credit) FROM gl_journal_lines \
             WHERE posting_date = DATE '2026-05-20' GROUP BY account ORDER BY account",
        )
        .await;
    let posted: Vec<(String, rust_decimal::Decimal)> = rows
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                crate::procure_to_pay::decimal(&row[1]),
            )
        })
        .collect();
    let expected: Vec<(String, rust_decimal::Decimal)> =
        [("1200", "-171.50"), ("4100", "175"), ("4200", "-3.50")]
            .iter()
            .map(|(a, v)| ((*a).to_owned(), v.parse().unwrap()))
            .collect();
    assert_eq!(posted, expected);
    assert_eq!(
        app.sql("SELECT * FROM ar_reconciliation").await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn partial_payments_and_payments_on_account_are_matched_to_open_items() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    pw_audio_sale(&app).await;
    // Billed in two parts: 60 amplifiers (2,100) on 4 May, the rest (1,400 + 300) on 20 May.
    app.ok(
        "/api/v1/invoices",
        json!({"number": "90000020", "order": "SO-PW", "posting_date": "2026-05-04",
               "lines": [{"line": 10, "quantity": "60"}]}),
    )
    .await;
    let second = app
        .ok(
            "/api/v1/invoices",
            json!({"number": "90000021", "order": "SO-PW", "posting_date": "2026-05-20"}),
        )
        .await;
    assert_eq!(second["gross_value"], "1700.00", "{second}");
    // A payment dated before its invoice, or naming one invoice twice: refused.
    for (body, field, rule) in [
        (
            json!({"number": "PAY-X", "customer": "SAUK", "payment_date": "2026-05-03",
                   "amount": "10.00", "invoices": [{"number": "90000020"}]}),
            "payment_date",
            "before_invoice",
        ),
        (
            json!({"number": "PAY-X", "customer": "SAUK", "payment_date": "2026-05-30",
                   "amount": "10.00",
                   "invoices": [{"number": "90000020", "amount": "5.00"},
                                {"number": "90000020", "amount": "5.00"}]}),
            "invoices[1].number",
            "invoice_twice",
        ),
    ] {
        refused(&app, "/api/v1/customer-payments", body, 422, field, rule).await;
    }
    // 1,000 on 30 May (after both discount periods): the older invoice first, in part.
    let partial = app
        .ok(
            "/api/v1/customer-payments",
            json!({"number": "PAY-10", "customer": "SAUK", "payment_date": "2026-05-30",
                   "amount": "1000.00"}),
        )
        .await;
    assert_eq!(
        (
            &partial["items"][0]["invoice"],
            &partial["items"][0]["amount"],
            &partial["items"][0]["discount"]
        ),
        (&json!("90000020"), &json!("1000.00"), &json!("0")),
        "{partial}"
    );
    // 3,000 on 1 June: the rest of the first (1,100), all of the second (1,700), 200 on account.
    // Payments are numbered in a range of their own: this one has the second invoice's number.
    let rest = app
        .ok(
            "/api/v1/customer-payments",
            json!({"number": "90000021", "customer": "SAUK", "payment_date": "2026-06-01",
                   "amount": "3000.00"}),
        )
        .await;
    assert_eq!(
        (
            &rest["items"].as_array().unwrap().len(),
            &rest["on_account"]
        ),
        (&2, &json!("200.00")),
        "{rest}"
    );
    // The statement of account as of 31 May, a report run (PDF and CSV): both invoices, the
    // first payment's part, 2,800 owed.
    app.settle().await;
    let run = crate::reports::run_report(
        &app,
        "statement-of-account",
        json!({"parameters": {"customer": "SAUK", "as_of": "2026-05-31"},
               "formats": ["csv", "pdf"]}),
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let rows = crate::reports::csv_rows(&crate::reports::download(&app, &run, "csv").await);
    let amount = |text: &str| text.parse::<rust_decimal::Decimal>().unwrap();
    let lines: Vec<(&str, rust_decimal::Decimal, rust_decimal::Decimal)> = rows
        .iter()
        .map(|r| {
            (
                r["document"].as_str(),
                amount(&r["amount"]),
                amount(&r["balance"]),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("90000020", amount("2100"), amount("2100")),
            ("90000021", amount("1700"), amount("3800")),
            ("90000020", amount("-1000"), amount("2800")),
        ],
        "{rows:?}"
    );
    let pdf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        pdf.path(),
        crate::reports::download(&app, &run, "pdf").await,
    )
    .unwrap();
    let text = crate::reports::pdf_text(pdf.path());
    assert!(
        text.contains("Statement of account") && text.contains("2,800.00"),
        "{text}"
    );

    // Both invoices settled; the 200 on account are the customer's credit, and the
    // receivables account says the same once the postings are in.
    let items = app.get("/api/v1/customers/SAUK/open-items").await.1;
    assert_eq!(
        (
            &items["open_items"][0]["number"],
            &items["open_items"][0]["document_type"],
            &items["total"]
        ),
        (
            &json!("90000021"),
            &json!("payment_on_account"),
            &json!("-200.00")
        ),
        "{items}"
    );
    assert_eq!(items["open_items"].as_array().unwrap().len(), 1, "{items}");
    // In the lake too: the payment's item is its own (its date, what it left on account), not
    // merged with the invoice of the same number.
    let lake_items = app
        .sql(
            "SELECT document, document_type, CAST(posting_date AS VARCHAR), original_amount, \
             open_amount FROM ar_open_items",
        )
        .await;
    assert_eq!(
        (
            &lake_items.len(),
            &lake_items[0][0],
            &lake_items[0][1],
            &lake_items[0][2],
            crate::procure_to_pay::decimal(&lake_items[0][3]),
            crate::procure_to_pay::decimal(&lake_items[0][4])
        ),
        (
            &1,
            &json!("90000021"),
            &json!("payment_on_account"),
            &json!("2026-06-01"),
            rust_decimal::Decimal::from(-200),
            rust_decimal::Decimal::from(-200)
        ),
        "{lake_items:?}"
    );
    app.settle_reactors().await;
    app.settle().await;
    assert_eq!(
        crate::procure_to_pay::balances(&app).await["1200"],
        crate::procure_to_pay::decimal(&items["total"])
    );
    assert_eq!(
        app.sql("SELECT * FROM ar_reconciliation").await,
        Vec::<Value>::new()
    );

    // Aged as of 31 May (before the second payment): 1,100 and 1,700 not yet due; as of 20
    // June only the 200 on account, past due since 1 June.
    let aging = |as_of: &str| {
        let app = &app;
        let path = format!("/api/v1/ar-aging?as_of={as_of}");
        async move { app.get(&path).await.1 }
    };
    let may = aging("2026-05-31").await;
    assert_eq!(
        (
            &may["customers"][0]["current"],
            &may["customers"][0]["total"]
        ),
        (&json!("2800.00"), &json!("2800.00")),
        "{may}"
    );
    let june = aging("2026-06-20").await;
    assert_eq!(
        (
            &june["customers"][0]["past_due_1_30"],
            &june["customers"][0]["items"][0]["document"]
        ),
        (&json!("-200.00"), &json!("90000021")),
        "{june}"
    );
    let dunning = app.get("/api/v1/dunning-proposal?as_of=2026-06-20").await.1;
    assert_eq!(dunning["customers"], json!([]), "nothing to dun: {dunning}");

    // A later sale of 500: the 200 on account are applied to its invoice, 300 stay open.
    stocked_material(
        &app,
        "AMP-200",
        ("10", "20.00", "2026-06-01"),
        "V-AUDIO",
        "50.00",
    )
    .await;
    app.ok(
        "/api/v1/sales-orders",
        json!({"number": "SO-PW2", "customer": "SAUK", "document_date": "2026-06-02",
               "lines": [{"line": 10, "material": "AMP-200", "quantity": "10", "plant": "P100",
                          "requested_date": "2026-06-02"}]}),
    )
    .await;
    app.ok(
        "/api/v1/deliveries",
        json!({"number": "80000030", "order": "SO-PW2", "posting_date": "2026-06-02",
               "storage_location": "FG", "lines": [{"line": 10, "quantity": "10"}]}),
    )
    .await;
    app.ok(
        "/api/v1/invoices",
        json!({"number": "90000030", "order": "SO-PW2", "posting_date": "2026-06-02"}),
    )
    .await;
    refused(
        &app,
        "/api/v1/customer-payments/90000021/apply",
        json!({"date": "2026-05-31"}),
        422,
        "date",
        "before_payment",
    )
    .await;
    let applied = app
        .ok(
            "/api/v1/customer-payments/90000021/apply",
            json!({"date": "2026-06-05"}),
        )
        .await;
    assert_eq!(
        (
            &applied["open_on_account"],
            &applied["items"][2]["invoice"],
            &applied["items"][2]["amount"]
        ),
        (&json!("0.00"), &json!("90000030"), &json!("200.00")),
        "{applied}"
    );
    refused(
        &app,
        "/api/v1/customer-payments/90000021/apply",
        json!({"date": "2026-06-06"}),
        422,
        "payment",
        "nothing_on_account",
    )
    .await;
    let items = app.get("/api/v1/customers/SAUK/open-items").await.1;
    assert_eq!(
        (
            &items["open_items"][0]["number"],
            &items["open_items"].as_array().unwrap().len(),
            &items["total"]
        ),
        (&json!("90000030"), &1, &json!("300.00")),
        "{items}"
    );
    app.settle_reactors().await;
    app.settle().await;
    assert_eq!(
        crate::procure_to_pay::balances(&app).await["1200"],
        rust_decimal::Decimal::from(300)
    );
    assert_eq!(
        app.sql("SELECT * FROM ar_reconciliation").await,
        Vec::<Value>::new()
    );
    let lake_items = app
        .sql("SELECT document, document_type, open_amount FROM ar_open_items")
        .await;
    assert_eq!(
        (
            &lake_items.len(),
            &lake_items[0][0],
            crate::procure_to_pay::decimal(&lake_items[0][2])
        ),
        (&1, &json!("90000030"), rust_decimal::Decimal::from(300)),
        "{lake_items:?}"
    );
}

/// Sales data every dashboard panel has rows for, on top of another test's ledger and
/// purchasing data (plant P100 with FG, vendor V-ACME, the bank account 1000): a sale of 100
/// amplifiers delivered, invoiced and paid in part, and an order not yet delivered. Sales post
/// to accounts of their own (receivable 1210), so the receivables reconcile whatever else the
/// ledger holds.
pub(crate) async fn order_to_cash_sample(app: &TestApp) {
    sales_ledger(
        app,
        [
            "1210", "1310", "2110", "2310", "4010", "4110", "4210", "5110",
        ],
    )
    .await;
    stocked_material(
        app,
        "AMP-9",
        ("100", "22.60", "2026-05-01"),
        "V-ACME",
        "35.00",
    )
    .await;
    exempt_rate(app).await;
    let mut sauk = customer("SAUK");
    sauk["tax_classification"] = json!("exempt");
    app.ok("/api/v1/customers", sauk).await;
    let line = |quantity: &str, requested: &str| {
        json!([{"line": 10, "material": "AMP-9", "quantity": quantity, "plant": "P100",
                "requested_date": requested}])
    };
    app.ok(
        "/api/v1/sales-orders",
        json!({"number": "SO-1", "customer": "SAUK", "document_date": "2026-05-04",
               "lines": line("90", "2026-05-04")}),
    )
    .await;
    app.ok(
        "/api/v1/deliveries",
        json!({"number": "80000001", "order": "SO-1", "posting_date": "2026-05-04",
               "storage_location": "FG", "lines": [{"line": 10, "quantity": "90"}]}),
    )
    .await;
    app.ok(
        "/api/v1/invoices",
        json!({"number": "90000001", "order": "SO-1", "posting_date": "2026-05-04"}),
    )
    .await;
    app.ok(
        "/api/v1/customer-payments",
        json!({"number": "PAY-1", "customer": "SAUK", "payment_date": "2026-05-30",
               "amount": "1000.00"}),
    )
    .await;
    app.ok(
        "/api/v1/sales-orders",
        json!({"number": "SO-2", "customer": "SAUK", "document_date": "2026-05-20",
               "lines": line("5", "2026-06-15")}),
    )
    .await;
}

/// Lumen Learning, *Financial Accounting*, "Accounts Receivable Aging Analysis" (Larkin, Co.,
/// terms net 30, schedule as of 31 December): customers A to G, 250,000 owed, by age of
/// invoice 0-30 days 103,000, 31-60 days 97,500, 61-90 days 39,500, over 90 days 10,000. An
/// invoice up to 30 days old is not yet due, so these are Tributary's buckets current, 1-30
/// days past due, 31-60 days past due, and (the over-90-day invoices here being 77 days past
/// due) 61-90 days past due.
#[tokio::test]
async fn a_published_aging_schedule_gives_the_published_bucket_totals() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    sales_master_data(&app).await;
    app.ok(
        "/api/v1/vendors",
        json!({"number": "V-1", "name": "Supplier", "currency": "EUR",
               "payment_terms": {"net_days": 30}}),
    )
    .await;
    stocked_material(
        &app,
        "GOODS",
        ("300000", "0.50", "2026-09-01"),
        "V-1",
        "1.00",
    )
    .await;
    exempt_rate(&app).await;
    // Invoice dates by the schedule's age columns as of 31 December.
    let (age_0_30, age_31_60, age_61_90, age_over_90) =
        ("2026-12-15", "2026-11-30", "2026-10-31", "2026-09-15");
    let invoices: [(&str, &[(&str, &str)]); 7] = [
        ("A", &[("40000", age_0_30), ("17500", age_31_60)]),
        ("B", &[("22000", age_0_30)]),
        (
            "C",
            &[
                ("14500", age_0_30),
                ("50000", age_31_60),
                ("10000", age_61_90),
            ],
        ),
        ("D", &[("8000", age_over_90)]),
        ("E", &[("12500", age_61_90)]),
        ("F", &[("25000", age_0_30)]),
        (
            "G",
            &[
                ("1500", age_0_30),
                ("30000", age_31_60),
                ("17000", age_61_90),
                ("2000", age_over_90),
            ],
        ),
    ];
    let mut n = 0;
    for (name, amounts) in invoices {
        let mut body = customer(&format!("LARKIN-{name}"));
        body["tax_classification"] = json!("exempt");
        body["credit_limit"] = json!("1000000");
        body["payment_terms"] = json!({"net_days": 30});
        app.ok("/api/v1/customers", body).await;
        for (amount, date) in amounts {
            n += 1;
            app.ok(
                "/api/v1/sales-orders",
                json!({"number": format!("SO-{n}"), "customer": format!("LARKIN-{name}"),
                       "document_date": date,
                       "lines": [{"line": 10, "material": "GOODS", "quantity": amount,
                                  "plant": "P100", "requested_date": date}]}),
            )
            .await;
            app.ok(
                "/api/v1/deliveries",
                json!({"number": format!("D-{n}"), "order": format!("SO-{n}"),
                       "posting_date": date, "storage_location": "FG",
                       "lines": [{"line": 10, "quantity": amount}]}),
            )
            .await;
            app.ok(
                "/api/v1/invoices",
                json!({"number": format!("I-{n}"), "order": format!("SO-{n}"),
                       "posting_date": date}),
            )
            .await;
        }
    }
    app.settle().await;
    let aging = app.get("/api/v1/ar-aging?as_of=2026-12-31").await.1;
    let mut totals = std::collections::BTreeMap::<&str, rust_decimal::Decimal>::new();
    for customer in aging["customers"].as_array().unwrap() {
        for bucket in [
            "current",
            "past_due_1_30",
            "past_due_31_60",
            "past_due_61_90",
            "past_due_over_90",
            "total",
        ] {
            *totals.entry(bucket).or_default() += crate::procure_to_pay::decimal(&customer[bucket]);
        }
    }
    let published = [
        ("current", 103_000),
        ("past_due_1_30", 97_500),
        ("past_due_31_60", 39_500),
        ("past_due_61_90", 10_000),
        ("past_due_over_90", 0),
        ("total", 250_000),
    ]
    .map(|(bucket, amount)| (bucket, rust_decimal::Decimal::from(amount)));
    assert_eq!(
        totals,
        std::collections::BTreeMap::from(published),
        "{aging}"
    );
    // Customer C as published: 74,500 owed, 14,500 / 50,000 / 10,000.
    let c = aging["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["customer"] == "LARKIN-C")
        .unwrap();
    assert_eq!(
        (
            &c["current"],
            &c["past_due_1_30"],
            &c["past_due_31_60"],
            &c["total"]
        ),
        (
            &json!("14500.00"),
            &json!("50000.00"),
            &json!("10000.00"),
            &json!("74500.00")
        ),
        "{c}"
    );
    // Overdue invoices by dunning level: 1 for up to 30 days past due, 2 up to 60, 3 beyond.
    let dunning = app.get("/api/v1/dunning-proposal?as_of=2026-12-31").await.1;
    let g = dunning["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["customer"] == "LARKIN-G")
        .unwrap();
    let levels: Vec<u64> = g["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["dunning_level"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (levels, &g["dunning_level"]),
        (vec![3, 2, 1], &json!(3)),
        "{g}"
    );
    assert!(
        dunning["customers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["customer"] != "LARKIN-B" && c["customer"] != "LARKIN-F"),
        "customers with nothing past due are not dunned: {dunning}"
    );
}

/// The sales accounts (numbers from `first`: receivable, inventory, GR/IR, tax, revenue,
/// returns, discounts, COGS; the bank is 1000) and the company's determination for them.
async fn sales_ledger(app: &TestApp, accounts: [&str; 8]) {
    let [
        receivable,
        inventory,
        gr_ir,
        tax,
        revenue,
        returns,
        discounts,
        cogs,
    ] = accounts;
    for (number, name, kind) in [
        (receivable, "Accounts receivable", "asset"),
        (inventory, "Merchandise inventory", "asset"),
        (gr_ir, "GR/IR clearing", "liability"),
        (tax, "Sales taxes payable", "liability"),
        (revenue, "Sales revenue", "revenue"),
        (returns, "Sales returns and allowances", "revenue"),
        (discounts, "Sales discounts", "revenue"),
        (cogs, "Cost of goods sold", "expense"),
    ] {
        app.ok(
            "/api/v1/accounts",
            json!({"number": number, "name": name, "type": kind, "currency": "EUR"}),
        )
        .await;
    }
    let (status, set) = crate::procure_to_pay::put(
        app,
        "/api/v1/account-determination/materials",
        &json!({"defaults": {"inventory": inventory, "gr_ir_clearing": gr_ir,
                             "cost_of_goods_sold": cogs, "receivable": receivable,
                             "revenue": revenue, "sales_returns": returns,
                             "sales_discount": discounts, "tax_payable": tax, "bank": "1000"}}),
    )
    .await;
    assert_eq!(status, 200, "{set}");
}

/// A trading material of group AUDIO in P100, `quantity` received into FG on `date` at `cost`
/// from `vendor`, listed at `price`.
async fn stocked_material(
    app: &TestApp,
    material: &str,
    (quantity, cost, date): (&str, &str, &str),
    vendor: &str,
    price: &str,
) {
    app.ok(
        "/api/v1/materials",
        json!({"number": material, "description": material, "base_unit": "PC",
               "type": "trading", "group": "AUDIO", "valuation_class": "3100",
               "plants": [{"plant": "P100", "valuation_method": "moving_average"}]}),
    )
    .await;
    let po = format!("PO-{material}");
    app.ok(
        "/api/v1/purchase-orders",
        json!({"number": po, "vendor": vendor, "order_date": "2026-04-20",
               "lines": [{"material": material, "plant": "P100", "storage_location": "FG",
                          "quantity": quantity, "unit_price": cost, "delivery_date": date}]}),
    )
    .await;
    app.ok(
        "/api/v1/goods-receipts",
        json!({"purchase_order": po, "line": 10, "quantity": quantity, "posting_date": date}),
    )
    .await;
    app.ok(
        "/api/v1/prices",
        json!({"material": material, "currency": "EUR", "valid_from": "2026-01-01",
               "unit_price": price}),
    )
    .await;
}

/// An exempt customer's tax rate: 0 %.
async fn exempt_rate(app: &TestApp) {
    app.ok(
        "/api/v1/tax-rates",
        json!({"customer_class": "exempt", "material_class": "full", "valid_from": "2020-01-01",
               "percent": "0"}),
    )
    .await;
}
