//! Purchase orders, goods movements and stock under `/api/v1`:
//!
//! - `POST /purchase-orders`, `GET /purchase-orders/{po}`,
//!   `PATCH /purchase-orders/{po}/lines/{line}` (an open line's quantity, price, date),
//!   `POST /purchase-orders/{po}/lines/{line}/cancel`, `POST /purchase-orders/{po}/close`
//! - `POST /goods-receipts` (against an order line), `POST /vendor-returns`,
//!   `POST /goods-issues` (to a cost centre, or as scrap with a reason),
//!   `POST /stock-transfers`, `POST /physical-counts` (the difference is posted)
//! - `GET /stock/{material}?plant=` (the write model's stock and valuation)
//!
//! Every movement's posting date must lie in an open period of the company's books.

use super::{commit, company, missing};
use crate::aggregates::PurchaseOrderCommand;
use crate::commands::{self, MovementRequest, PostedMovements, ReceiptRequest};
use crate::domain::*;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::http::ApiError;
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use tributary_kernel::module::CompanyQuery;
use uuid::Uuid;

/// A cost centre, as finance's journal lines carry it.
pub const COST_CENTER_LENGTH_MAX: usize = 20;
/// A scrap reason.
pub const REASON_LENGTH_MAX: usize = 200;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post(
            "/api/v1/purchase-orders",
            Permission(&PURCHASE_ORDER_WRITE),
            create_purchase_order,
        )
        .accepts::<CreateOrderBody>()
        .get(
            "/api/v1/purchase-orders/{po}",
            Permission(&PURCHASE_ORDER_READ),
            get_purchase_order,
        )
        .patch(
            "/api/v1/purchase-orders/{po}/lines/{line}",
            Permission(&PURCHASE_ORDER_WRITE),
            change_line,
        )
        .accepts::<ChangeLineBody>()
        .post(
            "/api/v1/purchase-orders/{po}/lines/{line}/cancel",
            Permission(&PURCHASE_ORDER_WRITE),
            cancel_line,
        )
        .accepts::<CompanyBody>()
        .post(
            "/api/v1/purchase-orders/{po}/close",
            Permission(&PURCHASE_ORDER_WRITE),
            close_order,
        )
        .accepts::<CompanyBody>()
        .post(
            "/api/v1/goods-receipts",
            Permission(&GOODS_RECEIPT_POST),
            goods_receipt,
        )
        .accepts::<ReceiptBody>()
        .post(
            "/api/v1/vendor-returns",
            Permission(&VENDOR_RETURN_POST),
            vendor_return,
        )
        .accepts::<ReceiptBody>()
        .post(
            "/api/v1/goods-issues",
            Permission(&GOODS_ISSUE_POST),
            goods_issue,
        )
        .accepts::<IssueBody>()
        .post(
            "/api/v1/stock-transfers",
            Permission(&STOCK_TRANSFER_POST),
            stock_transfer,
        )
        .accepts::<TransferBody>()
        .post(
            "/api/v1/physical-counts",
            Permission(&PHYSICAL_COUNT_POST),
            physical_count,
        )
        .accepts::<CountBody>()
        .get(
            "/api/v1/stock/{material}",
            Permission(&STOCK_READ),
            get_stock,
        )
}

fn unit(checks: &mut Checks, field: &str, text: Option<&str>) -> Option<UnitOfMeasure> {
    text.and_then(|u| checks.check(field, "unit_code", UnitOfMeasure::parse(u)))
}

/// The path's order number, or 404.
fn path_order(number: &str) -> Result<PurchaseOrderNumber, ApiError> {
    PurchaseOrderNumber::parse(number)
        .map_err(|_| ApiError::not_found(format!("purchase order {number} does not exist")))
}

// ----- purchase orders ------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderLineBody {
    line: Option<u32>,
    material: String,
    plant: String,
    storage_location: String,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    quantity: Value,
    unit: Option<String>,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    unit_price: Value,
    delivery_date: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrderBody {
    company: Option<String>,
    number: String,
    vendor: String,
    currency: Option<String>,
    order_date: String,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "Option<String>")]
    over_delivery_tolerance_percent: Option<Value>,
    lines: Vec<OrderLineBody>,
}

fn order_json(order: &PurchaseOrder) -> Value {
    json!({
        "company": order.company,
        "number": order.number,
        "vendor": order.vendor,
        "currency": order.currency,
        "order_date": order.order_date,
        "over_delivery_tolerance_percent": order.over_delivery_percent,
        "status": order.status().as_str(),
        "lines": order.lines.values().map(|state| {
            let line = &state.ordered;
            json!({
                "line": line.line,
                "material": line.material,
                "plant": line.plant,
                "storage_location": line.location,
                "quantity": line.quantity,
                "unit": line.unit,
                "base_units_per_unit": line.factor,
                "unit_price": line.unit_price,
                "delivery_date": line.delivery_date,
                "status": state.status().as_str(),
                "received_quantity": state.received / line.factor,
                "received_value": state.received_value,
                "invoiced_quantity": state.invoiced / line.factor,
                "invoiced_amount": state.invoiced_amount,
                "still_receivable_quantity": order.receivable(state) / line.factor,
            })
        }).collect::<Vec<_>>(),
    })
}

async fn create_purchase_order(
    State(platform): State<Platform>,
    Command { body, request }: Command<CreateOrderBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let number = checks.check(
        "number",
        "purchase_order_number",
        PurchaseOrderNumber::parse(&body.number),
    );
    let vendor = checks.check("vendor", "vendor_number", VendorNumber::parse(&body.vendor));
    let currency = body
        .currency
        .as_deref()
        .and_then(|c| checks.check("currency", "currency_code", Currency::parse(c)));
    let order_date = checks.date("order_date", &body.order_date);
    let tolerance = match &body.over_delivery_tolerance_percent {
        None | Some(Value::Null) => Some(Decimal::ZERO),
        given => checks.amount_or_zero("over_delivery_tolerance_percent", given.as_ref()),
    };
    if tolerance.is_some_and(|t| t > Decimal::ONE_HUNDRED) {
        checks.fail(
            "over_delivery_tolerance_percent",
            "percent_at_most_100",
            "must be at most 100",
        );
    }
    if body.lines.is_empty() || body.lines.len() > ORDER_LINES_MAX {
        checks.fail(
            "lines",
            "line_count",
            format!("an order needs 1 to {ORDER_LINES_MAX} lines"),
        );
    }
    let mut lines = Vec::new();
    for (index, line) in body.lines.iter().enumerate().take(ORDER_LINES_MAX) {
        let field = |name: &str| format!("lines[{index}].{name}");
        let material = checks.check(
            &field("material"),
            "material_number",
            MaterialNumber::parse(&line.material),
        );
        let plant = checks.check(&field("plant"), "plant_code", PlantCode::parse(&line.plant));
        let location = checks.check(
            &field("storage_location"),
            "location_code",
            LocationCode::parse(&line.storage_location),
        );
        let quantity = checks.required_amount(&field("quantity"), Some(&line.quantity));
        let unit = unit(&mut checks, &field("unit"), line.unit.as_deref());
        let unit_price = checks.required_amount(&field("unit_price"), Some(&line.unit_price));
        let delivery_date = checks.date(&field("delivery_date"), &line.delivery_date);
        let number = line
            .line
            .unwrap_or_else(|| u32::try_from(index + 1).unwrap_or(u32::MAX) * 10);
        if number == 0 {
            checks.fail(field("line"), "positive", "line numbers start at 1");
        }
        if let (
            Some(material),
            Some(plant),
            Some(location),
            Some(quantity),
            Some(price),
            Some(date),
        ) = (
            material,
            plant,
            location,
            quantity,
            unit_price,
            delivery_date,
        ) {
            lines.push(NewOrderLine {
                line: number,
                material,
                plant,
                location,
                quantity,
                unit,
                unit_price: price,
                delivery_date: date,
            });
        }
    }
    checks.finish()?;
    let (Some(company), Some(number), Some(vendor), Some(order_date), Some(tolerance)) =
        (company, number, vendor, order_date, tolerance)
    else {
        return Err(missing());
    };
    let new = NewPurchaseOrder {
        company,
        number,
        vendor,
        currency,
        order_date,
        over_delivery_percent: tolerance,
        lines,
    };
    let decision = commands::create_purchase_order(&platform.store, new).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        order_json,
    )
    .await
}

async fn get_purchase_order(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let parsed = path_order(&number)?;
    let loaded = commands::purchase_order(&platform.store, &company, &parsed).await?;
    let order = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("purchase order {number} does not exist")))?;
    Ok(Json(order_json(&order)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeLineBody {
    company: Option<String>,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "Option<String>")]
    quantity: Option<Value>,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "Option<String>")]
    unit_price: Option<Value>,
    delivery_date: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompanyBody {
    company: Option<String>,
}

/// Commits a change to the order named in the path.
async fn commit_order_change(
    platform: &Platform,
    request: tributary_kernel::command::CommandRequest,
    company: CompanyCode,
    number: &str,
    command: PurchaseOrderCommand,
) -> Result<Response, ApiError> {
    let number = path_order(number)?;
    let decision =
        commands::change_purchase_order(&platform.store, &company, &number, command).await?;
    commit(platform, request, decision, StatusCode::OK, order_json).await
}

async fn change_line(
    State(platform): State<Platform>,
    Path((number, line)): Path<(String, u32)>,
    Command { body, request }: Command<ChangeLineBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let quantity = checks.amount("quantity", body.quantity.as_ref());
    let unit_price = checks.amount("unit_price", body.unit_price.as_ref());
    let delivery_date = body
        .delivery_date
        .as_deref()
        .and_then(|d| checks.date("delivery_date", d));
    if body.quantity.is_none() && body.unit_price.is_none() && body.delivery_date.is_none() {
        checks.fail(
            "quantity",
            "required",
            "give at least one of quantity, unit_price, delivery_date",
        );
    }
    checks.finish()?;
    let company = company.ok_or_else(missing)?;
    let change = LineChange {
        quantity,
        unit_price,
        delivery_date,
    };
    let command = PurchaseOrderCommand::ChangeLine { line, change };
    commit_order_change(&platform, request, company, &number, command).await
}

async fn cancel_line(
    State(platform): State<Platform>,
    Path((number, line)): Path<(String, u32)>,
    Command { body, request }: Command<Option<CompanyBody>>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    checks.finish()?;
    let company = company.ok_or_else(missing)?;
    let command = PurchaseOrderCommand::CancelLine { line };
    commit_order_change(&platform, request, company, &number, command).await
}

async fn close_order(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<Option<CompanyBody>>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    checks.finish()?;
    let company = company.ok_or_else(missing)?;
    commit_order_change(
        &platform,
        request,
        company,
        &number,
        PurchaseOrderCommand::Close,
    )
    .await
}

// ----- goods movements ------------------------------------------------------------------------

fn movements_json(posted: &PostedMovements) -> Value {
    let stock = &posted.stock;
    let mut answer = stock_json(stock);
    answer["movements"] = posted
        .movements
        .iter()
        .map(|m| {
            let mut movement = serde_json::to_value(&m.kind).unwrap_or_else(|_| json!({}));
            movement["movement_id"] = json!(m.movement_id);
            movement["posting_date"] = json!(m.posting_date);
            movement["storage_location"] = json!(m.location);
            movement["quantity"] = json!(m.quantity);
            movement["value"] = json!(m.value);
            movement["currency"] = json!(m.currency);
            movement["stock_quantity_after"] = json!(m.stock_quantity_after);
            movement["stock_value_after"] = json!(m.stock_value_after);
            movement["moving_average_after"] = json!(m.moving_average_after);
            movement
        })
        .collect::<Vec<_>>()
        .into();
    answer
}

fn stock_json(stock: &Stock) -> Value {
    json!({
        "company": stock.company,
        "material": stock.material,
        "plant": stock.plant,
        "base_unit": stock.base_unit,
        "currency": stock.currency,
        "valuation_class": stock.valuation_class,
        "valuation_method": stock.valuation.method.as_str(),
        "quantity": stock.valuation.quantity,
        "value": stock.valuation.value,
        "moving_average_price": stock.valuation.average_price(),
        "storage_locations": stock.locations.iter()
            .map(|(code, quantity)| json!({"code": code, "quantity": quantity}))
            .collect::<Vec<_>>(),
    })
}

/// Fields every movement request shares.
struct Posting {
    company: CompanyCode,
    posting_date: NaiveDate,
}

/// The company and posting date of a movement, checked for form.
fn posting_fields(
    checks: &mut Checks,
    platform: &Platform,
    auth: &tributary_kernel::auth::Auth,
    company: Option<&str>,
    posting_date: &str,
) -> Result<Option<Posting>, ApiError> {
    let company = self::company(checks, platform, auth, company)?;
    let posting_date = checks.date("posting_date", posting_date);
    Ok(company
        .zip(posting_date)
        .map(|(company, posting_date)| Posting {
            company,
            posting_date,
        }))
}

/// Every field error at once; then the posting date must be open in the books.
async fn open_posting(
    platform: &Platform,
    checks: Checks,
    posting: Option<Posting>,
) -> Result<Posting, ApiError> {
    checks.finish()?;
    let posting = posting.ok_or_else(missing)?;
    platform
        .check_posting_date(&posting.company, posting.posting_date, "posting_date")
        .await?;
    Ok(posting)
}

async fn commit_movements(
    platform: &Platform,
    request: tributary_kernel::command::CommandRequest,
    decision: tributary_kernel::Decision<PostedMovements>,
) -> Result<Response, ApiError> {
    commit(
        platform,
        request,
        decision,
        StatusCode::CREATED,
        movements_json,
    )
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiptBody {
    company: Option<String>,
    purchase_order: String,
    line: u32,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    quantity: Value,
    unit: Option<String>,
    storage_location: Option<String>,
    posting_date: String,
}

async fn receipt(
    platform: Platform,
    request: tributary_kernel::command::CommandRequest,
    body: ReceiptBody,
    returning: bool,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let number = checks.check(
        "purchase_order",
        "purchase_order_number",
        PurchaseOrderNumber::parse(&body.purchase_order),
    );
    let quantity = checks.required_amount("quantity", Some(&body.quantity));
    let unit = unit(&mut checks, "unit", body.unit.as_deref());
    let location = body
        .storage_location
        .as_deref()
        .and_then(|l| checks.check("storage_location", "location_code", LocationCode::parse(l)));
    let posting = posting_fields(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
        &body.posting_date,
    )?;
    let Posting {
        company,
        posting_date,
    } = open_posting(&platform, checks, posting).await?;
    let (Some(number), Some(quantity)) = (number, quantity) else {
        return Err(missing());
    };
    let receipt = ReceiptRequest {
        company,
        purchase_order: number,
        line: body.line,
        quantity,
        unit,
        location,
        posting_date,
        movement_id: Uuid::now_v7(),
        returning,
    };
    let decision = commands::receive(&platform.store, receipt).await?;
    commit_movements(&platform, request, decision).await
}

async fn goods_receipt(
    State(platform): State<Platform>,
    Command { body, request }: Command<ReceiptBody>,
) -> Result<Response, ApiError> {
    receipt(platform, request, body, false).await
}

async fn vendor_return(
    State(platform): State<Platform>,
    Command { body, request }: Command<ReceiptBody>,
) -> Result<Response, ApiError> {
    receipt(platform, request, body, true).await
}

/// The stock a movement concerns and its quantity, checked.
struct Target {
    material: Option<MaterialNumber>,
    plant: Option<PlantCode>,
    location: Option<LocationCode>,
    unit: Option<UnitOfMeasure>,
}

fn target(
    checks: &mut Checks,
    material: &str,
    plant: &str,
    location: &str,
    unit_code: Option<&str>,
) -> Target {
    Target {
        material: checks.check(
            "material",
            "material_number",
            MaterialNumber::parse(material),
        ),
        plant: checks.check("plant", "plant_code", PlantCode::parse(plant)),
        location: checks.check(
            "storage_location",
            "location_code",
            LocationCode::parse(location),
        ),
        unit: unit(checks, "unit", unit_code),
    }
}

/// Checks the rest of the request and posts the movement.
async fn post_movement(
    platform: Platform,
    request: tributary_kernel::command::CommandRequest,
    mut checks: Checks,
    (company, posting_date): (Option<&str>, &str),
    target: Target,
    quantity: Option<Decimal>,
    kind: Option<MovementKind>,
) -> Result<Response, ApiError> {
    let posting = posting_fields(&mut checks, &platform, &request.auth, company, posting_date)?;
    let Posting {
        company,
        posting_date,
    } = open_posting(&platform, checks, posting).await?;
    let (Some(material), Some(plant), Some(location), Some(quantity), Some(kind)) = (
        target.material,
        target.plant,
        target.location,
        quantity,
        kind,
    ) else {
        return Err(missing());
    };
    let movement = MovementRequest {
        company,
        material,
        plant,
        location,
        quantity,
        unit: target.unit,
        posting_date,
        movement_id: Uuid::now_v7(),
        kind,
        value: None,
    };
    let decision = commands::post_movement(&platform.store, movement).await?;
    commit_movements(&platform, request, decision).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    company: Option<String>,
    material: String,
    plant: String,
    storage_location: String,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    quantity: Value,
    unit: Option<String>,
    posting_date: String,
    cost_center: Option<String>,
    scrap_reason: Option<String>,
}

async fn goods_issue(
    State(platform): State<Platform>,
    Command { body, request }: Command<IssueBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let target = target(
        &mut checks,
        &body.material,
        &body.plant,
        &body.storage_location,
        body.unit.as_deref(),
    );
    let quantity = checks.required_amount("quantity", Some(&body.quantity));
    let kind = match (body.cost_center, body.scrap_reason) {
        (Some(cost_center), None) => checks
            .text(
                "cost_center",
                Some(cost_center),
                COST_CENTER_LENGTH_MAX,
                true,
            )
            .map(|cost_center| MovementKind::Issue { cost_center }),
        (None, Some(reason)) => checks
            .text("scrap_reason", Some(reason), REASON_LENGTH_MAX, true)
            .map(|reason| MovementKind::Scrap { reason }),
        _ => {
            checks.fail(
                "cost_center",
                "one_of",
                "give cost_center (consumption) or scrap_reason (scrap), exactly one",
            );
            None
        }
    };
    post_movement(
        platform,
        request,
        checks,
        (body.company.as_deref(), &body.posting_date),
        target,
        quantity,
        kind,
    )
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferBody {
    company: Option<String>,
    material: String,
    plant: String,
    storage_location: String,
    to_storage_location: String,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    quantity: Value,
    unit: Option<String>,
    posting_date: String,
}

async fn stock_transfer(
    State(platform): State<Platform>,
    Command { body, request }: Command<TransferBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let target = target(
        &mut checks,
        &body.material,
        &body.plant,
        &body.storage_location,
        body.unit.as_deref(),
    );
    let quantity = checks.required_amount("quantity", Some(&body.quantity));
    let kind = checks
        .check(
            "to_storage_location",
            "location_code",
            LocationCode::parse(&body.to_storage_location),
        )
        .map(|to_location| MovementKind::TransferOut { to_location });
    post_movement(
        platform,
        request,
        checks,
        (body.company.as_deref(), &body.posting_date),
        target,
        quantity,
        kind,
    )
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountBody {
    company: Option<String>,
    material: String,
    plant: String,
    storage_location: String,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    counted_quantity: Value,
    unit: Option<String>,
    posting_date: String,
}

async fn physical_count(
    State(platform): State<Platform>,
    Command { body, request }: Command<CountBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let target = target(
        &mut checks,
        &body.material,
        &body.plant,
        &body.storage_location,
        body.unit.as_deref(),
    );
    let counted = checks.amount_or_zero("counted_quantity", Some(&body.counted_quantity));
    let kind = counted.map(|counted| MovementKind::CountDifference {
        counted,
        book: Decimal::ZERO,
    });
    post_movement(
        platform,
        request,
        checks,
        (body.company.as_deref(), &body.posting_date),
        target,
        counted,
        kind,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockQuery {
    company: Option<String>,
    plant: String,
}

async fn get_stock(
    State(platform): State<Platform>,
    auth: Auth,
    Path(material): Path<String>,
    Query(query): Query<StockQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(
        &auth,
        &CompanyQuery {
            company: query.company.clone(),
        },
    )?;
    let not_found = || {
        ApiError::not_found(format!(
            "material {material} has no stock in plant {}",
            query.plant
        ))
    };
    let (Ok(number), Ok(plant)) = (
        MaterialNumber::parse(&material),
        PlantCode::parse(&query.plant),
    ) else {
        return Err(not_found());
    };
    let stock = commands::stock(&platform.store, &company, &number, &plant)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(stock_json(&stock)))
}
