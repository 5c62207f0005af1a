//! Materials master data over REST (issue 13, point 5, first part): plants, storage locations,
//! materials valued per plant, vendors with payment terms; bad input names field and rule and
//! stores nothing.

use crate::helpers::{Backend, TestApp};
use serde_json::{Value, json};

async fn refused(app: &TestApp, path: &str, body: Value, status: u16, field: &str, rule: &str) {
    let before = app.event_count().await;
    let (got, problem) = app.post(path, body.clone()).await;
    assert_eq!(got, status, "{path} {body}: {problem}");
    if status == 422 {
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field && e["rule"] == rule),
            "{path} {body}: expected {field}/{rule} in {problem}"
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
