//! Production orders over REST, under `/api/v1/production-orders`:
//!
//! - `POST /production-orders`: create by hand (components, operations and cost estimate from
//!   master data); `GET /production-orders/{number}`: the order with its components
//!   (reserved, issued), operations (confirmed) and costs (standard, actual, work in process)
//! - `POST …/{number}/release` (reserves the components), `…/component-issues`,
//!   `…/confirmations` (the last operation backflushes), `…/goods-receipts`, `…/complete`
//!   (technically complete), `…/settle` (variance; closed)
//!
//! Converting a planned order (`POST /planned-orders/{id}/conversion`) reads the plan from the
//! lake and is served by the query role ([`crate::reads`]).

use crate::CONTEXT;
use crate::api::{command_company, zero_or_more};
use crate::order::*;
use crate::orders::{self, CreateOrder};
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
use tributary_kernel::command::{Checks, Command, CommandRequest};
use tributary_kernel::http::ApiError;
use tributary_kernel::master::CompanyCode;
use tributary_kernel::module::CompanyQuery;
use tributary_kernel::store::Decision;
use tributary_materials::domain::{LocationCode, MaterialNumber, PlantCode};

/// Component lines one issue takes.
const ISSUE_LINES_MAX: usize = 500;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post(
            "/api/v1/production-orders",
            Permission(&ORDER_WRITE),
            create,
        )
        .accepts::<CreateBody>()
        .get(
            "/api/v1/production-orders/{number}",
            Permission(&ORDER_READ),
            get_order,
        )
        .post(
            "/api/v1/production-orders/{number}/release",
            Permission(&ORDER_WRITE),
            release,
        )
        .accepts::<DateBody>()
        .post(
            "/api/v1/production-orders/{number}/component-issues",
            Permission(&ORDER_CONFIRM),
            issue,
        )
        .accepts::<IssueBody>()
        .post(
            "/api/v1/production-orders/{number}/confirmations",
            Permission(&ORDER_CONFIRM),
            confirm,
        )
        .accepts::<ConfirmationBody>()
        .post(
            "/api/v1/production-orders/{number}/goods-receipts",
            Permission(&ORDER_CONFIRM),
            receive,
        )
        .accepts::<ReceiptBody>()
        .post(
            "/api/v1/production-orders/{number}/complete",
            Permission(&ORDER_WRITE),
            complete,
        )
        .accepts::<DateBody>()
        .post(
            "/api/v1/production-orders/{number}/settle",
            Permission(&ORDER_SETTLE),
            settle,
        )
        .accepts::<DateBody>()
}

tributary_kernel::of_company! {
    ProductionOrder => |it| &it.order.company,
}

/// The order number a path names: 404 when it cannot be one.
fn path_number(number: &str) -> Result<OrderNumber, ApiError> {
    OrderNumber::parse(number)
        .map_err(|_| ApiError::not_found(format!("production order {number} does not exist")))
}

pub(crate) fn receipt_valuation(
    checks: &mut Checks,
    given: Option<&str>,
) -> Option<ReceiptValuation> {
    match given {
        None | Some("standard") => Some(ReceiptValuation::Standard),
        Some("actual") => Some(ReceiptValuation::Actual),
        Some(other) => {
            checks.fail(
                "receipt_valuation",
                "receipt_valuation",
                format!("{other:?} is not standard or actual"),
            );
            None
        }
    }
}

/// A date a body may leave out (today), checked against the books' periods when it posts.
async fn posting_date(
    platform: &Platform,
    checks: &mut Checks,
    company: Option<&CompanyCode>,
    field: &str,
    given: Option<&str>,
) -> Result<Option<NaiveDate>, ApiError> {
    let date = match given {
        None => Some(chrono::Utc::now().date_naive()),
        Some(text) => checks.date(field, text),
    };
    if let (Some(company), Some(date)) = (company, date) {
        platform.check_posting_date(company, date, field).await?;
    }
    Ok(date)
}

/// Commits an order command's decision, answering the order.
async fn commit(
    platform: &Platform,
    request: CommandRequest,
    decision: Decision<ProductionOrder>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    platform
        .commit(CONTEXT, request, decision, status, order_json)
        .await
}

// ----- create ---------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    company: Option<String>,
    plant: String,
    /// The order's number (1 to 20 characters A-Z, 0-9, '-', '_').
    number: String,
    material: String,
    /// In the material's base unit (decimal string).
    #[schemars(with = "String")]
    quantity: Value,
    /// Where components are issued from and the output received into.
    location: String,
    /// YYYY-MM-DD; defaults to the finish date less the material's lead time.
    #[serde(default)]
    start_date: Option<String>,
    finish_date: String,
    /// `standard` (default) or `actual`: what goods receipts are valued at.
    #[serde(default)]
    receipt_valuation: Option<String>,
}

async fn create(
    State(platform): State<Platform>,
    Command { body, request }: Command<CreateBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    let plant = checks.check("plant", "plant_code", PlantCode::parse(&body.plant));
    let number = checks.check("number", "order_number", OrderNumber::parse(&body.number));
    let material = checks.check(
        "material",
        "material_number",
        MaterialNumber::parse(&body.material),
    );
    let quantity = checks.required_amount("quantity", Some(&body.quantity));
    let location = checks.check(
        "location",
        "location_code",
        LocationCode::parse(&body.location),
    );
    let start_date = match &body.start_date {
        None => Some(None),
        Some(text) => checks.date("start_date", text).map(Some),
    };
    let finish_date = checks.date("finish_date", &body.finish_date);
    let valuation = receipt_valuation(&mut checks, body.receipt_valuation.as_deref());
    checks.finish()?;
    let (
        Some(company),
        Some(plant),
        Some(number),
        Some(material),
        Some(quantity),
        Some(location),
        Some(start_date),
        Some(finish_date),
        Some(receipt_valuation),
    ) = (
        company,
        plant,
        number,
        material,
        quantity,
        location,
        start_date,
        finish_date,
        valuation,
    )
    else {
        return Err(ApiError::missing_fields());
    };
    let decision = orders::create_order(
        &platform.store,
        CreateOrder {
            company,
            plant,
            number,
            material,
            quantity,
            location,
            start_date,
            finish_date,
            planned_order: None,
            receipt_valuation,
        },
    )
    .await?;
    commit(&platform, request, decision, StatusCode::CREATED).await
}

pub(crate) fn order_json(order: &ProductionOrder) -> Value {
    let o = &order.order;
    json!({
        "company": o.company,
        "plant": o.plant,
        "number": o.number,
        "material": o.material,
        "quantity": o.quantity,
        "location": o.location,
        "start_date": o.start_date,
        "finish_date": o.finish_date,
        "planned_order": o.planned_order,
        "status": order.status.as_str(),
        "released_on": order.released_on,
        "completed_on": order.completed_on,
        "receipt_valuation": o.receipt_valuation.as_str(),
        "currency": o.currency,
        "received_quantity": order.received,
        "open_quantity": order.open_quantity(),
        "components": order.components.iter().map(|c| json!({
            "material": c.planned.material,
            "quantity_per_unit": c.planned.requirement(Decimal::ONE),
            "required": c.planned.required,
            "reserved": if order.status == OrderStatus::Released { c.open() } else { Decimal::ZERO },
            "issued": c.issued,
            "issued_value": c.issued_value,
            "backflush": c.planned.backflush,
            "standard_price": c.planned.unit_price,
        })).collect::<Vec<_>>(),
        "operations": order.operations.iter().map(|op| json!({
            "number": op.planned.number,
            "description": op.planned.description,
            "work_center": op.planned.work_center,
            "cost_center": op.planned.cost_center,
            "planned_hours": op.planned.planned_hours(o.quantity),
            "cost_rate_per_hour": op.planned.cost_rate_per_hour,
            "confirmations": op.confirmations,
            "yield_quantity": op.yield_quantity,
            "scrap_quantity": op.scrap_quantity,
            "actual_hours": op.hours,
            "activity_value": op.activity_value,
            "final_confirmed": op.final_confirmed,
        })).collect::<Vec<_>>(),
        "costs": {
            "standard": {
                "material": o.standard.material_cost,
                "activity": o.standard.activity_cost,
                "total": o.standard.total,
                "unit_cost": o.standard.unit_cost,
            },
            "actual": order.actual_cost(),
            "received_value": order.received_value,
            "work_in_process": order.work_in_process(),
            "variance": order.variance,
        },
    })
}

async fn get_order(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let number = path_number(&number)?;
    let (_, order) = orders::existing_order(&platform.store, &company, &number).await?;
    Ok(Json(order_json(&order)))
}

// ----- release, complete, settle --------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DateBody {
    company: Option<String>,
    /// YYYY-MM-DD; today when left out (the posting date of a settlement).
    #[serde(default)]
    date: Option<String>,
}

/// The company and date of a status change.
async fn dated(
    platform: &Platform,
    request: &CommandRequest,
    body: &DateBody,
    posts: bool,
) -> Result<(CompanyCode, NaiveDate), ApiError> {
    let mut checks = Checks::default();
    let company = command_company(platform, &mut checks, request, body.company.as_deref())?;
    let date = if posts {
        posting_date(
            platform,
            &mut checks,
            company.as_ref(),
            "date",
            body.date.as_deref(),
        )
        .await?
    } else {
        match body.date.as_deref() {
            None => Some(chrono::Utc::now().date_naive()),
            Some(text) => checks.date("date", text),
        }
    };
    checks.finish()?;
    company.zip(date).ok_or_else(ApiError::missing_fields)
}

/// A status change a body dates: release, technical completion, settlement (`posts`: its
/// date is a posting date the books must allow).
async fn status_change(
    platform: Platform,
    number: String,
    Command { body, request }: Command<DateBody>,
    posts: bool,
    command: fn(NaiveDate) -> OrderCommand,
) -> Result<Response, ApiError> {
    let number = path_number(&number)?;
    let (company, date) = dated(&platform, &request, &body, posts).await?;
    let decision = orders::change(&platform.store, &company, &number, command(date)).await?;
    commit(&platform, request, decision, StatusCode::OK).await
}

async fn release(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    command: Command<DateBody>,
) -> Result<Response, ApiError> {
    status_change(platform, number, command, false, |date| {
        OrderCommand::Release { date }
    })
    .await
}

async fn complete(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    command: Command<DateBody>,
) -> Result<Response, ApiError> {
    status_change(platform, number, command, false, |date| {
        OrderCommand::Complete { date }
    })
    .await
}

async fn settle(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    command: Command<DateBody>,
) -> Result<Response, ApiError> {
    status_change(platform, number, command, true, |posting_date| {
        OrderCommand::Settle { posting_date }
    })
    .await
}

// ----- issues, confirmations, receipts --------------------------------------------------------

/// The company and posting date a movement's body names, checked (the date against the
/// books); the checks go on with the rest of the body.
async fn posted(
    platform: &Platform,
    request: &CommandRequest,
    company: Option<&str>,
    date: Option<&str>,
) -> Result<(Checks, Option<CompanyCode>, Option<NaiveDate>), ApiError> {
    let mut checks = Checks::default();
    let company = command_company(platform, &mut checks, request, company)?;
    let date = posting_date(
        platform,
        &mut checks,
        company.as_ref(),
        "posting_date",
        date,
    )
    .await?;
    Ok((checks, company, date))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct IssueLineBody {
    material: String,
    /// In the component's base unit (decimal string).
    #[schemars(with = "String")]
    quantity: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    company: Option<String>,
    /// YYYY-MM-DD; today when left out.
    #[serde(default)]
    posting_date: Option<String>,
    lines: Vec<IssueLineBody>,
}

async fn issue(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<IssueBody>,
) -> Result<Response, ApiError> {
    let number = path_number(&number)?;
    let (mut checks, company, date) = posted(
        &platform,
        &request,
        body.company.as_deref(),
        body.posting_date.as_deref(),
    )
    .await?;
    if body.lines.is_empty() || body.lines.len() > ISSUE_LINES_MAX {
        checks.fail(
            "lines",
            "lines_count",
            format!("an issue has 1 to {ISSUE_LINES_MAX} lines"),
        );
    }
    let mut lines = Vec::new();
    for (index, line) in body.lines.iter().enumerate() {
        let material = checks.check(
            &format!("lines[{index}].material"),
            "material_number",
            MaterialNumber::parse(&line.material),
        );
        let quantity =
            checks.required_amount(&format!("lines[{index}].quantity"), Some(&line.quantity));
        if let (Some(material), Some(quantity)) = (material, quantity) {
            lines.push((material, quantity));
        }
    }
    checks.finish()?;
    let (Some(company), Some(date)) = (company, date) else {
        return Err(ApiError::missing_fields());
    };
    let decision = orders::issue(&platform.store, &company, &number, date, lines).await?;
    commit(&platform, request, decision, StatusCode::CREATED).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmationBody {
    company: Option<String>,
    operation: i64,
    /// YYYY-MM-DD; today when left out.
    #[serde(default)]
    posting_date: Option<String>,
    /// Good quantity (decimal string, base unit); zero when left out.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    yield_quantity: Option<Value>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    scrap_quantity: Option<Value>,
    /// Actual hours (decimal strings); when both are left out, the planned hours of the
    /// quantity confirmed (setup on the operation's first confirmation).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    setup_hours: Option<Value>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    run_hours: Option<Value>,
    /// No more confirmations of this operation follow.
    #[serde(default, rename = "final")]
    final_confirmation: bool,
}

async fn confirm(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<ConfirmationBody>,
) -> Result<Response, ApiError> {
    let number = path_number(&number)?;
    let (mut checks, company, date) = posted(
        &platform,
        &request,
        body.company.as_deref(),
        body.posting_date.as_deref(),
    )
    .await?;
    let operation = match u32::try_from(body.operation) {
        Ok(operation) => Some(operation),
        Err(_) => {
            checks.fail(
                "operation",
                "operation_not_found",
                "operation numbers are positive",
            );
            None
        }
    };
    let yield_quantity = zero_or_more(&mut checks, "yield_quantity", body.yield_quantity.as_ref());
    let scrap_quantity = zero_or_more(&mut checks, "scrap_quantity", body.scrap_quantity.as_ref());
    let hours_given = body.setup_hours.is_some() || body.run_hours.is_some();
    let setup_hours = zero_or_more(&mut checks, "setup_hours", body.setup_hours.as_ref());
    let run_hours = zero_or_more(&mut checks, "run_hours", body.run_hours.as_ref());
    checks.finish()?;
    let (
        Some(company),
        Some(posting_date),
        Some(operation),
        Some(yield_quantity),
        Some(scrap_quantity),
        Some(setup_hours),
        Some(run_hours),
    ) = (
        company,
        date,
        operation,
        yield_quantity,
        scrap_quantity,
        setup_hours,
        run_hours,
    )
    else {
        return Err(ApiError::missing_fields());
    };
    let confirmation = Confirmation {
        operation,
        posting_date,
        yield_quantity,
        scrap_quantity,
        setup_hours,
        run_hours,
        final_confirmation: body.final_confirmation,
    };
    let decision = orders::confirm(
        &platform.store,
        &company,
        &number,
        confirmation,
        hours_given,
    )
    .await?;
    commit(&platform, request, decision, StatusCode::CREATED).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReceiptBody {
    company: Option<String>,
    /// YYYY-MM-DD; today when left out.
    #[serde(default)]
    posting_date: Option<String>,
    /// In the material's base unit (decimal string).
    #[schemars(with = "String")]
    quantity: Value,
}

async fn receive(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<ReceiptBody>,
) -> Result<Response, ApiError> {
    let number = path_number(&number)?;
    let (mut checks, company, date) = posted(
        &platform,
        &request,
        body.company.as_deref(),
        body.posting_date.as_deref(),
    )
    .await?;
    let quantity = checks.required_amount("quantity", Some(&body.quantity));
    checks.finish()?;
    let (Some(company), Some(date), Some(quantity)) = (company, date, quantity) else {
        return Err(ApiError::missing_fields());
    };
    let decision = orders::receive(&platform.store, &company, &number, date, quantity).await?;
    commit(&platform, request, decision, StatusCode::CREATED).await
}
