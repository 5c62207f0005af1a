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
    refused(
        &app,
        "/api/v1/prices",
        unknown,
        422,
        "material",
        "material_not_found",
    )
    .await;
    refused(
        &app,
        "/api/v1/prices",
        json!({"material": "BOLT-M8", "currency": "USD", "customer": "C-100",
               "valid_from": "2026-01-01", "unit_price": "0.40"}),
        422,
        "currency",
        "currency_mismatch",
    )
    .await;
    refused(
        &app,
        "/api/v1/prices",
        json!({"material": "BOLT-M8", "currency": "EUR", "customer": "C-999",
               "valid_from": "2026-01-01", "unit_price": "0.40"}),
        422,
        "customer",
        "customer_not_found",
    )
    .await;
    refused(
        &app,
        "/api/v1/prices",
        json!({"material": "BOLT-M8", "currency": "GBP", "valid_from": "2026-01-01",
               "scale": [{"from_quantity": "10", "unit_price": "1"}]}),
        422,
        "scale",
        "starts_at_zero",
    )
    .await;
    refused(
        &app,
        "/api/v1/prices",
        json!({"material": "BOLT-M8", "currency": "GBP", "valid_from": "2026-05-01",
               "valid_to": "2026-04-01", "unit_price": "1"}),
        422,
        "valid_to",
        "after_valid_from",
    )
    .await;
    refused(
        &app,
        "/api/v1/discounts",
        json!({"material_group": "FASTENERS", "valid_from": "2026-07-01", "percent": "4"}),
        422,
        "valid_from",
        "discount_overlap",
    )
    .await;
    refused(
        &app,
        "/api/v1/discounts",
        json!({"valid_from": "2026-07-01", "percent": "4"}),
        422,
        "customer",
        "customer_or_material_group",
    )
    .await;
    refused(
        &app,
        "/api/v1/tax-rates",
        json!({"customer_class": "full", "material_class": "full", "valid_from": "2026-01-01",
               "percent": "20"}),
        422,
        "valid_from",
        "tax_rate_overlap",
    )
    .await;
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
