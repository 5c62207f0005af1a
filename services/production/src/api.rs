//! Production REST API under `/api/v1`: routes and DTOs only. Decimals are JSON strings.
//!
//! - `PUT|GET /plants/{plant}/materials/{material}/planning`: planning data (make or buy, lead
//!   time, lot sizing, safety stock)
//! - `PUT|GET /plants/{plant}/materials/{material}/bom`: the bill of material (checked for
//!   cycles through every bill below it)
//! - `PUT|GET /plants/{plant}/work-centers/{code}`, `PUT|GET /plants/{plant}/materials/{material}/routing`
//! - `PUT|GET /plants/{plant}/materials/{material}/planned-requirements`: planned independent
//!   requirements by date (zero removes a date's)
//! - `POST /mrp-runs` (202, carried out by the planning worker), `GET /mrp-runs/{run}`
//!
//! `company` may be left out: the installation's default company is meant.

use crate::commands;
use crate::master::*;
use crate::mrp::{
    BucketSize, Component, Horizon, LotProcedure, LotSizing, PlanningData, Procurement,
};
use crate::run::{Run, RunCommand, RunStatus};
use crate::{CONTEXT, planning::PlanningView};
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
use tributary_materials::domain::{MaterialNumber, PlantCode};

/// The longest horizon a run may plan: two years.
pub const HORIZON_DAYS_MAX: i64 = 731;
/// Text fields (descriptions, cost centres).
const TEXT_LENGTH_MAX: usize = 200;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .put(
            "/api/v1/plants/{plant}/materials/{material}/planning",
            Permission(&MASTER_DATA_WRITE),
            set_planning,
        )
        .accepts::<PlanningBody>()
        .get(
            "/api/v1/plants/{plant}/materials/{material}/planning",
            Permission(&MASTER_DATA_READ),
            get_planning,
        )
        .put(
            "/api/v1/plants/{plant}/materials/{material}/bom",
            Permission(&MASTER_DATA_WRITE),
            set_bom,
        )
        .accepts::<BomBody>()
        .get(
            "/api/v1/plants/{plant}/materials/{material}/bom",
            Permission(&MASTER_DATA_READ),
            get_bom,
        )
        .put(
            "/api/v1/plants/{plant}/work-centers/{code}",
            Permission(&MASTER_DATA_WRITE),
            set_work_center,
        )
        .accepts::<WorkCenterBody>()
        .get(
            "/api/v1/plants/{plant}/work-centers/{code}",
            Permission(&MASTER_DATA_READ),
            get_work_center,
        )
        .put(
            "/api/v1/plants/{plant}/materials/{material}/routing",
            Permission(&MASTER_DATA_WRITE),
            set_routing,
        )
        .accepts::<RoutingBody>()
        .get(
            "/api/v1/plants/{plant}/materials/{material}/routing",
            Permission(&MASTER_DATA_READ),
            get_routing,
        )
        .put(
            "/api/v1/plants/{plant}/materials/{material}/planned-requirements",
            Permission(&REQUIREMENTS_WRITE),
            set_requirements,
        )
        .accepts::<RequirementsBody>()
        .get(
            "/api/v1/plants/{plant}/materials/{material}/planned-requirements",
            Permission(&MASTER_DATA_READ),
            get_requirements,
        )
        .post("/api/v1/mrp-runs", Permission(&MRP_RUN), start_run)
        .accepts::<RunBody>()
        .get("/api/v1/mrp-runs/{run}", Permission(&MRP_READ), get_run)
        .merge(crate::orders_api::router())
}

tributary_kernel::of_company! {
    Planning => |it| &it.company,
    Bom => |it| &it.company,
    WorkCenter => |it| &it.company,
    Routing => |it| &it.company,
    commands::RequirementsOf => |it| &it.company,
    Run => |it| &it.company,
}

/// The plant and material a path names: 404 when they cannot be codes.
pub(crate) fn path_keys(
    plant: &str,
    material: &str,
) -> Result<(PlantCode, MaterialNumber), ApiError> {
    let plant_code = PlantCode::parse(plant)
        .map_err(|_| ApiError::not_found(format!("plant {plant} does not exist")))?;
    let number = MaterialNumber::parse(material)
        .map_err(|_| ApiError::not_found(format!("material {material} does not exist")))?;
    Ok((plant_code, number))
}

/// A quantity that may be left out (zero) but not negative; at most four decimals.
pub(crate) fn zero_or_more(
    checks: &mut Checks,
    field: &str,
    value: Option<&Value>,
) -> Option<Decimal> {
    match value {
        None | Some(Value::Null) => Some(Decimal::ZERO),
        given => checks.amount_or_zero(field, given),
    }
}

fn optional_date(
    checks: &mut Checks,
    field: &str,
    value: Option<&str>,
) -> Option<Option<NaiveDate>> {
    match value {
        None => Some(None),
        Some(text) => checks.date(field, text).map(Some),
    }
}

/// The company a command names, checked; 403 first when the caller may not act there.
pub(crate) fn command_company(
    platform: &Platform,
    checks: &mut Checks,
    request: &CommandRequest,
    company: Option<&str>,
) -> Result<Option<CompanyCode>, ApiError> {
    platform.requested_company(checks, &request.auth, company)
}

// ----- planning data --------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct LotSizingBody {
    /// `lot_for_lot`, `fixed_order_quantity` (with `quantity`) or `fixed_periods` (with
    /// `periods`: how many buckets one proposal covers).
    procedure: String,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    quantity: Option<Value>,
    #[serde(default)]
    periods: Option<i64>,
    /// At least this much per proposal (decimal string; none when left out).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    minimum: Option<Value>,
    /// Proposals are rounded up to a multiple of this (decimal string; none when left out).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    rounding: Option<Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PlanningBody {
    company: Option<String>,
    /// `make` (planned orders) or `buy` (purchase requisitions).
    procurement: String,
    /// Calendar days from release to receipt, 0 to 365.
    lead_time_days: i64,
    lot_sizing: LotSizingBody,
    /// Decimal string; zero when left out.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    safety_stock: Option<Value>,
}

fn lot_sizing(checks: &mut Checks, body: &LotSizingBody) -> Option<LotSizing> {
    let procedure = match body.procedure.as_str() {
        "lot_for_lot" => Some(LotProcedure::LotForLot),
        "fixed_order_quantity" => checks
            .required_amount("lot_sizing.quantity", body.quantity.as_ref())
            .map(|quantity| LotProcedure::FixedOrderQuantity { quantity }),
        "fixed_periods" => match body.periods.map(u32::try_from) {
            Some(Ok(periods)) if (1..=52).contains(&periods) => {
                Some(LotProcedure::FixedPeriods { periods })
            }
            _ => {
                checks.fail(
                    "lot_sizing.periods",
                    "periods_range",
                    "fixed periods of supply cover 1 to 52 buckets",
                );
                None
            }
        },
        other => {
            checks.fail(
                "lot_sizing.procedure",
                "lot_procedure",
                format!("{other:?} is not one of lot_for_lot, fixed_order_quantity, fixed_periods"),
            );
            None
        }
    };
    let minimum = zero_or_more(checks, "lot_sizing.minimum", body.minimum.as_ref());
    let rounding = zero_or_more(checks, "lot_sizing.rounding", body.rounding.as_ref());
    Some(LotSizing {
        procedure: procedure?,
        minimum: minimum?,
        rounding: rounding?,
    })
}

async fn set_planning(
    State(platform): State<Platform>,
    Path((plant, material)): Path<(String, String)>,
    Command { body, request }: Command<PlanningBody>,
) -> Result<Response, ApiError> {
    let (plant, material) = path_keys(&plant, &material)?;
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    let procurement = match body.procurement.as_str() {
        "make" => Some(Procurement::Make),
        "buy" => Some(Procurement::Buy),
        other => {
            checks.fail(
                "procurement",
                "procurement_type",
                format!("{other:?} is not make or buy"),
            );
            None
        }
    };
    let lead_time_days = match u32::try_from(body.lead_time_days) {
        Ok(days) if days <= LEAD_TIME_DAYS_MAX => Some(days),
        _ => {
            checks.fail(
                "lead_time_days",
                "lead_time_range",
                format!("a lead time is 0 to {LEAD_TIME_DAYS_MAX} days"),
            );
            None
        }
    };
    let lot_sizing = lot_sizing(&mut checks, &body.lot_sizing);
    let safety_stock = zero_or_more(&mut checks, "safety_stock", body.safety_stock.as_ref());
    checks.finish()?;
    let (
        Some(company),
        Some(procurement),
        Some(lead_time_days),
        Some(lot_sizing),
        Some(safety_stock),
    ) = (
        company,
        procurement,
        lead_time_days,
        lot_sizing,
        safety_stock,
    )
    else {
        return Err(ApiError::missing_fields());
    };
    let new = Planning {
        company,
        plant,
        material,
        data: PlanningData {
            procurement,
            lead_time_days,
            lot_sizing,
            safety_stock,
        },
    };
    let decision = commands::set_planning(&platform.store, new).await?;
    platform
        .commit(CONTEXT, request, decision, StatusCode::OK, planning_json)
        .await
}

fn lot_sizing_json(lot: &LotSizing) -> Value {
    let mut value = json!({
        "minimum": lot.minimum,
        "rounding": lot.rounding,
    });
    match lot.procedure {
        LotProcedure::LotForLot => value["procedure"] = json!("lot_for_lot"),
        LotProcedure::FixedOrderQuantity { quantity } => {
            value["procedure"] = json!("fixed_order_quantity");
            value["quantity"] = json!(quantity);
        }
        LotProcedure::FixedPeriods { periods } => {
            value["procedure"] = json!("fixed_periods");
            value["periods"] = json!(periods);
        }
    }
    value
}

fn planning_json(planning: &Planning) -> Value {
    json!({
        "company": planning.company,
        "plant": planning.plant,
        "material": planning.material,
        "procurement": planning.data.procurement.as_str(),
        "lead_time_days": planning.data.lead_time_days,
        "lot_sizing": lot_sizing_json(&planning.data.lot_sizing),
        "safety_stock": planning.data.safety_stock,
    })
}

async fn get_planning(
    State(platform): State<Platform>,
    auth: Auth,
    Path((plant, material)): Path<(String, String)>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let (plant, material) = path_keys(&plant, &material)?;
    let planning = commands::planning(&platform.store, &company, &plant, &material)
        .await?
        .state
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "material {material} has no planning data in plant {plant}"
            ))
        })?;
    Ok(Json(planning_json(&planning)))
}

// ----- bills of material ----------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ComponentBody {
    material: String,
    /// Per one base unit of the parent, in the component's base unit (decimal string).
    #[schemars(with = "String")]
    quantity: Value,
    /// The component's base unit, when given: checked against the material.
    #[serde(default)]
    unit: Option<String>,
    /// Percent added for what is lost in production (decimal string, 0 to less than 100).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    scrap_percent: Option<Value>,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_to: Option<String>,
    /// Issued to production orders by the confirmation of their last operation (false: by
    /// hand, `POST /production-orders/{number}/component-issues`).
    #[serde(default)]
    backflush: bool,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct BomBody {
    company: Option<String>,
    /// None: the material has no bill of material any more.
    components: Vec<ComponentBody>,
}

async fn set_bom(
    State(platform): State<Platform>,
    Path((plant, material)): Path<(String, String)>,
    Command { body, request }: Command<BomBody>,
) -> Result<Response, ApiError> {
    let (plant, material) = path_keys(&plant, &material)?;
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    if body.components.len() > COMPONENTS_MAX {
        checks.fail(
            "components",
            "too_many",
            format!("a bill of material has at most {COMPONENTS_MAX} components"),
        );
    }
    let mut components = Vec::new();
    let mut units = Vec::new();
    for (index, c) in body.components.iter().enumerate() {
        let field = |name: &str| format!("components[{index}].{name}");
        let number = checks.check(
            &field("material"),
            "material_number",
            MaterialNumber::parse(&c.material),
        );
        let quantity = checks.required_amount(&field("quantity"), Some(&c.quantity));
        let scrap_percent = zero_or_more(
            &mut checks,
            &field("scrap_percent"),
            c.scrap_percent.as_ref(),
        );
        let valid_from = optional_date(&mut checks, &field("valid_from"), c.valid_from.as_deref());
        let valid_to = optional_date(&mut checks, &field("valid_to"), c.valid_to.as_deref());
        if let (
            Some(number),
            Some(quantity),
            Some(scrap_percent),
            Some(valid_from),
            Some(valid_to),
        ) = (number, quantity, scrap_percent, valid_from, valid_to)
        {
            components.push(Component {
                material: number.to_string(),
                quantity,
                scrap_percent,
                valid_from,
                valid_to,
                backflush: c.backflush,
            });
            units.push(c.unit.clone());
        }
    }
    checks.finish()?;
    let company = company.ok_or_else(ApiError::missing_fields)?;
    let new = Bom {
        company,
        plant,
        material,
        components,
    };
    let decision = commands::set_bom(&platform.store, new, &units).await?;
    platform
        .commit(CONTEXT, request, decision, StatusCode::OK, bom_json)
        .await
}

fn bom_json(bom: &Bom) -> Value {
    json!({
        "company": bom.company,
        "plant": bom.plant,
        "material": bom.material,
        "components": bom.components.iter().map(|c| json!({
            "material": c.material,
            "quantity": c.quantity,
            "scrap_percent": c.scrap_percent,
            "valid_from": c.valid_from,
            "valid_to": c.valid_to,
            "backflush": c.backflush,
        })).collect::<Vec<_>>(),
    })
}

async fn get_bom(
    State(platform): State<Platform>,
    auth: Auth,
    Path((plant, material)): Path<(String, String)>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let (plant, material) = path_keys(&plant, &material)?;
    let bom = commands::bom(&platform.store, &company, &plant, &material)
        .await?
        .state
        .filter(|b| !b.components.is_empty())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "material {material} has no bill of material in plant {plant}"
            ))
        })?;
    Ok(Json(bom_json(&bom)))
}

// ----- work centres ---------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct WorkCenterBody {
    company: Option<String>,
    description: String,
    /// Hours it can work per day (decimal string, more than 0, at most 24).
    #[schemars(with = "String")]
    capacity_hours_per_day: Value,
    /// What an hour costs in the company's currency (decimal string).
    #[schemars(with = "String")]
    cost_rate_per_hour: Value,
    cost_center: String,
}

fn path_work_center(plant: &str, code: &str) -> Result<(PlantCode, WorkCenterCode), ApiError> {
    let plant_code = PlantCode::parse(plant)
        .map_err(|_| ApiError::not_found(format!("plant {plant} does not exist")))?;
    let code = WorkCenterCode::parse(code)
        .map_err(|_| ApiError::not_found(format!("work centre {code} does not exist")))?;
    Ok((plant_code, code))
}

async fn set_work_center(
    State(platform): State<Platform>,
    Path((plant, code)): Path<(String, String)>,
    Command { body, request }: Command<WorkCenterBody>,
) -> Result<Response, ApiError> {
    let (plant, code) = path_work_center(&plant, &code)?;
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    let description = checks.text("description", Some(body.description), TEXT_LENGTH_MAX, true);
    let capacity =
        checks.required_amount("capacity_hours_per_day", Some(&body.capacity_hours_per_day));
    let rate = checks.amount_or_zero("cost_rate_per_hour", Some(&body.cost_rate_per_hour));
    let rate = checks.cents("cost_rate_per_hour", rate);
    let cost_center = checks.text("cost_center", Some(body.cost_center), 20, true);
    checks.finish()?;
    let (Some(company), Some(description), Some(capacity), Some(rate), Some(cost_center)) =
        (company, description, capacity, rate, cost_center)
    else {
        return Err(ApiError::missing_fields());
    };
    let new = WorkCenter {
        company,
        plant,
        code,
        description,
        capacity_hours_per_day: capacity,
        cost_rate_per_hour: rate,
        cost_center,
    };
    let decision = commands::set_work_center(&platform.store, new).await?;
    platform
        .commit(CONTEXT, request, decision, StatusCode::OK, work_center_json)
        .await
}

fn work_center_json(center: &WorkCenter) -> Value {
    json!({
        "company": center.company,
        "plant": center.plant,
        "code": center.code,
        "description": center.description,
        "capacity_hours_per_day": center.capacity_hours_per_day,
        "cost_rate_per_hour": center.cost_rate_per_hour,
        "cost_center": center.cost_center,
    })
}

async fn get_work_center(
    State(platform): State<Platform>,
    auth: Auth,
    Path((plant, code)): Path<(String, String)>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let (plant, code) = path_work_center(&plant, &code)?;
    let center = commands::work_center(&platform.store, &company, &plant, &code)
        .await?
        .state
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "work centre {code} does not exist in plant {plant}"
            ))
        })?;
    Ok(Json(work_center_json(&center)))
}

// ----- routings -------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct OperationBody {
    /// 10, 20, …: ascending.
    number: i64,
    description: String,
    work_center: String,
    /// Decimal string, hours once per order.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    setup_hours: Option<Value>,
    /// Decimal string, hours per base unit.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    run_hours_per_unit: Option<Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RoutingBody {
    company: Option<String>,
    operations: Vec<OperationBody>,
}

async fn set_routing(
    State(platform): State<Platform>,
    Path((plant, material)): Path<(String, String)>,
    Command { body, request }: Command<RoutingBody>,
) -> Result<Response, ApiError> {
    let (plant, material) = path_keys(&plant, &material)?;
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    if body.operations.len() > OPERATIONS_MAX {
        checks.fail(
            "operations",
            "operations_count",
            format!("a routing has 1 to {OPERATIONS_MAX} operations"),
        );
    }
    let mut operations = Vec::new();
    for (index, o) in body.operations.into_iter().enumerate() {
        let field = |name: &str| format!("operations[{index}].{name}");
        let number = match u32::try_from(o.number) {
            Ok(number) if number > 0 => Some(number),
            _ => {
                checks.fail(
                    field("number"),
                    "positive",
                    "an operation number is positive",
                );
                None
            }
        };
        let description = checks.text(
            &field("description"),
            Some(o.description),
            TEXT_LENGTH_MAX,
            true,
        );
        let work_center = checks.check(
            &field("work_center"),
            "work_center_code",
            WorkCenterCode::parse(&o.work_center),
        );
        let setup_hours = zero_or_more(&mut checks, &field("setup_hours"), o.setup_hours.as_ref());
        let run_hours = zero_or_more(
            &mut checks,
            &field("run_hours_per_unit"),
            o.run_hours_per_unit.as_ref(),
        );
        if let (
            Some(number),
            Some(description),
            Some(work_center),
            Some(setup_hours),
            Some(run_hours_per_unit),
        ) = (number, description, work_center, setup_hours, run_hours)
        {
            operations.push(Operation {
                number,
                description,
                work_center,
                setup_hours,
                run_hours_per_unit,
            });
        }
    }
    checks.finish()?;
    let company = company.ok_or_else(ApiError::missing_fields)?;
    let new = Routing {
        company,
        plant,
        material,
        operations,
    };
    let decision = commands::set_routing(&platform.store, new).await?;
    platform
        .commit(CONTEXT, request, decision, StatusCode::OK, routing_json)
        .await
}

fn routing_json(routing: &Routing) -> Value {
    json!({
        "company": routing.company,
        "plant": routing.plant,
        "material": routing.material,
        "operations": routing.operations.iter().map(|o| json!({
            "number": o.number,
            "description": o.description,
            "work_center": o.work_center,
            "setup_hours": o.setup_hours,
            "run_hours_per_unit": o.run_hours_per_unit,
        })).collect::<Vec<_>>(),
    })
}

async fn get_routing(
    State(platform): State<Platform>,
    auth: Auth,
    Path((plant, material)): Path<(String, String)>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let (plant, material) = path_keys(&plant, &material)?;
    let routing = commands::routing(&platform.store, &company, &plant, &material)
        .await?
        .state
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "material {material} has no routing in plant {plant}"
            ))
        })?;
    Ok(Json(routing_json(&routing)))
}

// ----- planned independent requirements -------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RequirementBody {
    date: String,
    /// Decimal string; "0" removes the date's requirement.
    #[schemars(with = "String")]
    quantity: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RequirementsBody {
    company: Option<String>,
    entries: Vec<RequirementBody>,
}

async fn set_requirements(
    State(platform): State<Platform>,
    Path((plant, material)): Path<(String, String)>,
    Command { body, request }: Command<RequirementsBody>,
) -> Result<Response, ApiError> {
    let (plant, material) = path_keys(&plant, &material)?;
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    if body.entries.is_empty() || body.entries.len() > REQUIREMENTS_MAX {
        checks.fail(
            "entries",
            "entries_count",
            format!("give 1 to {REQUIREMENTS_MAX} dates"),
        );
    }
    let mut entries = Vec::new();
    for (index, e) in body.entries.iter().enumerate() {
        let date = checks.date(&format!("entries[{index}].date"), &e.date);
        let quantity =
            checks.amount_or_zero(&format!("entries[{index}].quantity"), Some(&e.quantity));
        if let (Some(date), Some(quantity)) = (date, quantity) {
            entries.push((date, quantity));
        }
    }
    checks.finish()?;
    let company = company.ok_or_else(ApiError::missing_fields)?;
    let command = SetRequirements {
        company,
        plant,
        material,
        entries,
        source: "manual".into(),
    };
    let decision = commands::set_requirements(&platform.store, command).await?;
    platform
        .commit(
            CONTEXT,
            request,
            decision,
            StatusCode::OK,
            requirements_json,
        )
        .await
}

pub(crate) fn requirements_json(of: &commands::RequirementsOf) -> Value {
    json!({
        "company": of.company,
        "plant": of.plant,
        "material": of.material,
        "entries": of.requirements.by_date.iter().map(|(date, quantity)| json!({
            "date": date,
            "quantity": quantity,
        })).collect::<Vec<_>>(),
    })
}

async fn get_requirements(
    State(platform): State<Platform>,
    auth: Auth,
    Path((plant, material)): Path<(String, String)>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let (plant, material) = path_keys(&plant, &material)?;
    let requirements = commands::requirements(&platform.store, &company, &plant, &material)
        .await?
        .state;
    Ok(Json(requirements_json(&commands::RequirementsOf {
        company,
        plant,
        material,
        requirements,
    })))
}

// ----- MRP runs -------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunBody {
    company: Option<String>,
    plant: String,
    /// The first day planned (YYYY-MM-DD); requirements before it fall in the first bucket.
    horizon_start: String,
    /// `day` or `week`.
    bucket: String,
    /// How many buckets: together at most two years.
    buckets: i64,
}

async fn start_run(
    State(platform): State<Platform>,
    Command { body, request }: Command<RunBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    let plant = checks.check("plant", "plant_code", PlantCode::parse(&body.plant));
    let start = checks.date("horizon_start", &body.horizon_start);
    let size = match body.bucket.as_str() {
        "day" => Some(BucketSize::Day),
        "week" => Some(BucketSize::Week),
        other => {
            checks.fail(
                "bucket",
                "bucket_size",
                format!("{other:?} is not day or week"),
            );
            None
        }
    };
    let count = match (u32::try_from(body.buckets), size) {
        (Ok(count), Some(size))
            if count >= 1 && i64::from(count) * size.days() <= HORIZON_DAYS_MAX =>
        {
            Some(count)
        }
        (_, Some(size)) => {
            checks.fail(
                "buckets",
                "horizon_range",
                format!(
                    "a run plans 1 to {} buckets of a {} ({HORIZON_DAYS_MAX} days at most)",
                    HORIZON_DAYS_MAX / size.days(),
                    size.as_str()
                ),
            );
            None
        }
        _ => None,
    };
    checks.finish()?;
    let (Some(company), Some(plant), Some(start), Some(size), Some(count)) =
        (company, plant, start, size, count)
    else {
        return Err(ApiError::missing_fields());
    };
    let known = tributary_kernel::aggregate::load::<tributary_materials::domain::Plant>(
        &platform.store,
        &tributary_materials::commands::plant_id(&company, &plant),
    )
    .await?;
    if known.state.is_none() {
        return Err(ApiError::field(
            "plant",
            "plant_not_found",
            format!("plant {plant} does not exist in company {company}"),
        ));
    }
    let horizon = Horizon { start, size, count };
    let view = platform
        .settings
        .extensions
        .get::<PlanningView>()
        .ok_or_else(|| ApiError::internal(&"production's planning view is not installed"))?;
    if let Some((material, days)) = view
        .longest_lead_time(company.as_str(), plant.as_str())
        .await?
        && i64::from(days) >= horizon.days()
    {
        return Err(ApiError::field(
            "buckets",
            "lead_time_beyond_horizon",
            format!(
                "material {material} has a lead time of {days} days, not shorter than the {} days planned: plan a longer horizon",
                horizon.days()
            ),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let command = RunCommand::Request {
        company,
        plant,
        horizon,
        requested_by: request.auth.caller.user.clone(),
    };
    let decision = commands::request_run(&platform.store, &id, command).await?;
    platform
        .commit(
            CONTEXT,
            request,
            decision,
            StatusCode::ACCEPTED,
            move |run| {
                let mut body = run_json(&id, run);
                body["status_url"] = json!(format!("/api/v1/mrp-runs/{id}"));
                body
            },
        )
        .await
}

fn run_json(id: &str, run: &Run) -> Value {
    let mut body = json!({
        "run": id,
        "company": run.company,
        "plant": run.plant,
        "horizon_start": run.horizon.start,
        "bucket": run.horizon.size.as_str(),
        "buckets": run.horizon.count,
        "requested_by": run.requested_by,
        "status": run.status.as_str(),
    });
    match &run.status {
        RunStatus::Requested => {}
        RunStatus::Completed(c) => {
            body["sequence"] = json!(c.sequence);
            body["feed_position"] = json!(c.feed_position);
            body["materials"] = json!(c.materials);
            body["planned_orders"] = json!(c.planned_orders);
            body["purchase_requisitions"] = json!(c.purchase_requisitions);
            body["exceptions"] = json!(c.exceptions);
            body["planning_ms"] = json!(c.planning_ms);
            body["writing_ms"] = json!(c.writing_ms);
        }
        RunStatus::Failed(reason) => body["reason"] = json!(reason),
    }
    body
}

async fn get_run(
    State(platform): State<Platform>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found(format!("MRP run {id} does not exist"));
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(not_found());
    }
    let run = tributary_kernel::aggregate::load::<crate::run::MrpRun>(&platform.store, &id)
        .await?
        .state
        .ok_or_else(not_found)?;
    // Only those who may read its company learn it exists.
    auth.company(run.company.as_str())
        .map_err(|_| not_found())?;
    Ok(Json(run_json(&id, &run)))
}
