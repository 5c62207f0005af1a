//! Production read APIs answered from the lake (the query role); the SQL lives in `reads/`.
//!
//! - `GET /api/v1/plants/{plant}/materials/{material}/mrp-record?company=`: the material's
//!   time-phased record as last planned (by a run or net change), with its planned orders and
//!   exception messages.
//! - `POST /api/v1/planned-orders/{id}/conversion`: a planned order of the current plan into a
//!   production order, a purchase requisition into a purchase order (a command, served here
//!   because the plan is in the lake); each is converted once.

use crate::CONTEXT;
use crate::api::command_company;
use crate::order::OrderNumber;
use crate::orders::{self, CreateOrder};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::http::ApiError;
use tributary_kernel::lake::{Cell, Rows};
use tributary_kernel::master::CompanyCode;
use tributary_kernel::module::CompanyQuery;
use tributary_kernel::store::Decision;
use tributary_materials::domain::{
    LocationCode, MaterialNumber, NewOrderLine, NewPurchaseOrder, PlantCode, PurchaseOrderNumber,
    VendorNumber,
};

const RECORD_SQL: &str = include_str!("../reads/mrp_record.sql");
const ORDERS_SQL: &str = include_str!("../reads/material_planned_orders.sql");
const EXCEPTIONS_SQL: &str = include_str!("../reads/material_exceptions.sql");
const PLANNED_ORDER_SQL: &str = include_str!("../reads/planned_order.sql");

pub fn router() -> Routes {
    use crate::permissions::{MRP_READ, ORDER_WRITE};
    Routes::new()
        .get(
            "/api/v1/plants/{plant}/materials/{material}/mrp-record",
            Permission(&MRP_READ),
            mrp_record,
        )
        .post(
            "/api/v1/planned-orders/{id}/conversion",
            Permission(&ORDER_WRITE),
            convert,
        )
        .accepts::<ConversionBody>()
        .merge(crate::forecasting::router())
}

/// Rows as JSON objects by column name.
fn objects(rows: &Rows) -> Vec<Value> {
    rows.rows
        .iter()
        .map(|row| {
            let object: Map<String, Value> = rows
                .columns
                .iter()
                .zip(row)
                .map(|(name, cell)| (name.clone(), cell.to_json()))
                .collect();
            Value::Object(object)
        })
        .collect()
}

async fn mrp_record(
    State(platform): State<Platform>,
    auth: Auth,
    Path((plant, material)): Path<(String, String)>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let not_planned = || {
        ApiError::not_found(format!(
            "material {material} has not been planned in plant {plant}: start an MRP run"
        ))
    };
    let (Ok(plant_code), Ok(number)) = (PlantCode::parse(&plant), MaterialNumber::parse(&material))
    else {
        return Err(not_planned());
    };
    let parameters = || {
        vec![
            Cell::owned(company.to_string()),
            Cell::owned(plant_code.to_string()),
            Cell::owned(number.to_string()),
        ]
    };
    let lake = platform.lake()?;
    let records = lake.rows(RECORD_SQL, parameters()).await?;
    if records.rows.is_empty() {
        return Err(not_planned());
    }
    let first = &objects(&records)[0];
    // The orders and exceptions of the same plan version as the record.
    let version = || {
        let mut all = parameters();
        all.push(Cell::owned(
            first["version"].as_str().unwrap_or_default().to_owned(),
        ));
        all
    };
    let orders = lake.rows(ORDERS_SQL, version()).await?;
    let exceptions = lake.rows(EXCEPTIONS_SQL, version()).await?;
    Ok(Json(json!({
        "company": company,
        "plant": plant_code,
        "material": number,
        "low_level_code": first["low_level_code"],
        "sequence": first["sequence"],
        "run": first["run"],
        "buckets": objects(&records).into_iter().map(|mut b| {
            if let Value::Object(map) = &mut b {
                map.remove("low_level_code");
                map.remove("sequence");
                map.remove("version");
                map.remove("run");
            }
            b
        }).collect::<Vec<_>>(),
        "planned_orders": objects(&orders),
        "exceptions": objects(&exceptions),
    })))
}

// ----- conversion -----------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConversionBody {
    company: Option<String>,
    /// The production order's or purchase order's number.
    number: String,
    /// Storage location: a production order's, or where a purchase order delivers.
    location: String,
    /// Production orders: `standard` (default) or `actual`.
    #[serde(default)]
    receipt_valuation: Option<String>,
    /// Purchase requisitions: the vendor to order from.
    #[serde(default)]
    vendor: Option<String>,
    /// Purchase requisitions: the price per base unit (decimal string).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    unit_price: Option<Value>,
}

/// What a conversion answers.
pub struct Converted {
    company: CompanyCode,
    planned_order: String,
    into: &'static str,
    document: Value,
}

tributary_kernel::of_company! {
    Converted => |it| &it.company,
}

/// A planned order of the current plan, as the lake holds it.
struct PlannedOrder {
    plant: PlantCode,
    material: MaterialNumber,
    proposal_type: String,
    quantity: Decimal,
    receipt_date: NaiveDate,
    release_date: NaiveDate,
    feed_position: i64,
}

async fn planned_order(
    platform: &Platform,
    company: &CompanyCode,
    id: &str,
) -> Result<PlannedOrder, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "planned order {id} is not in the current plan of company {company}"
        ))
    };
    let rows = platform
        .lake()?
        .rows(
            PLANNED_ORDER_SQL,
            vec![Cell::owned(company.to_string()), Cell::owned(id.to_owned())],
        )
        .await?;
    let Some(row) = objects(&rows).into_iter().next() else {
        return Err(not_found());
    };
    let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
    let date = |name: &str| tributary_kernel::master::parse_date(&text(name)).ok();
    // Decimals come as JSON strings (or numbers): their text, exactly.
    let quantity = row["quantity"]
        .to_string()
        .trim_matches('"')
        .parse::<Decimal>()
        .ok();
    match (
        PlantCode::parse(&text("plant")),
        MaterialNumber::parse(&text("material")),
        quantity,
        date("receipt_date"),
        date("release_date"),
        row["feed_position"].as_i64(),
    ) {
        (
            Ok(plant),
            Ok(material),
            Some(quantity),
            Some(receipt_date),
            Some(release_date),
            Some(feed_position),
        ) => Ok(PlannedOrder {
            plant,
            material,
            proposal_type: text("proposal_type"),
            quantity,
            receipt_date,
            release_date,
            feed_position,
        }),
        _ => Err(ApiError::internal(&format!(
            "planned order {id} cannot be read from the lake"
        ))),
    }
}

async fn convert(
    State(platform): State<Platform>,
    Path(id): Path<String>,
    Command { body, request }: Command<ConversionBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &request, body.company.as_deref())?;
    let location = checks.check(
        "location",
        "location_code",
        LocationCode::parse(&body.location),
    );
    checks.finish()?;
    let (Some(company), Some(location)) = (company, location) else {
        return Err(ApiError::missing_fields());
    };
    // A planned order of another company is none of the caller's (`company-plant-…`).
    if !id.starts_with(&format!("{company}-")) {
        return Err(ApiError::not_found(format!(
            "planned order {id} is not in the current plan of company {company}"
        )));
    }
    // Converted once: the plan it came from may have been replaced since.
    if let Some(document) = orders::converted(&platform.store, &id).await? {
        return Err(ApiError::field(
            "planned_order",
            "already_converted",
            format!("planned order {id} was converted into {document} already"),
        ));
    }
    let planned = planned_order(&platform, &company, &id).await?;
    let mut checks = Checks::default();
    let (into, number, mut decision) = if planned.proposal_type == "purchase_requisition" {
        request.auth.caller.require(
            &tributary_materials::permissions::PURCHASE_ORDER_WRITE,
            company.as_str(),
        )?;
        let number = checks.check(
            "number",
            "purchase_order_number",
            PurchaseOrderNumber::parse(&body.number),
        );
        let vendor = match &body.vendor {
            Some(vendor) => checks.check("vendor", "vendor_number", VendorNumber::parse(vendor)),
            None => {
                checks.fail(
                    "vendor",
                    "required",
                    "a purchase requisition is ordered from a vendor",
                );
                None
            }
        };
        let price = checks.required_amount("unit_price", body.unit_price.as_ref());
        checks.finish()?;
        let (Some(number), Some(vendor), Some(unit_price)) = (number, vendor, price) else {
            return Err(ApiError::missing_fields());
        };
        let decision = tributary_materials::commands::create_purchase_order(
            &platform.store,
            NewPurchaseOrder {
                company: company.clone(),
                number,
                vendor,
                currency: None,
                order_date: chrono::Utc::now().date_naive(),
                over_delivery_percent: Decimal::ZERO,
                lines: vec![NewOrderLine {
                    line: 10,
                    material: planned.material.clone(),
                    plant: planned.plant.clone(),
                    location,
                    quantity: planned.quantity,
                    unit: None,
                    unit_price,
                    delivery_date: planned.receipt_date,
                }],
            },
        )
        .await?;
        let document = json!({
            "purchase_order": decision.outcome.number,
            "vendor": decision.outcome.vendor,
            "material": planned.material,
            "quantity": planned.quantity,
            "delivery_date": planned.receipt_date,
        });
        (
            "purchase_order",
            decision.outcome.number.to_string(),
            Decision {
                writes: decision.writes,
                reads: decision.reads,
                outcome: document,
            },
        )
    } else {
        let number = checks.check("number", "order_number", OrderNumber::parse(&body.number));
        let valuation =
            crate::orders_api::receipt_valuation(&mut checks, body.receipt_valuation.as_deref());
        checks.finish()?;
        let (Some(number), Some(receipt_valuation)) = (number, valuation) else {
            return Err(ApiError::missing_fields());
        };
        let decision = orders::create_order(
            &platform.store,
            CreateOrder {
                company: company.clone(),
                plant: planned.plant.clone(),
                number,
                material: planned.material.clone(),
                quantity: planned.quantity,
                location,
                start_date: Some(planned.release_date),
                finish_date: planned.receipt_date,
                planned_order: Some(id.clone()),
                receipt_valuation,
            },
        )
        .await?;
        let document = crate::orders_api::order_json(&decision.outcome);
        (
            "production_order",
            decision.outcome.order.number.to_string(),
            Decision {
                writes: decision.writes,
                reads: decision.reads,
                outcome: document,
            },
        )
    };
    let converting = orders::Converting {
        planned_order: &id,
        company: &company,
        plant: &planned.plant,
        material: &planned.material,
        feed_position: planned.feed_position,
    };
    decision
        .writes
        .extend(orders::conversion(&platform.store, &converting, into, &number).await?);
    let decision = Decision {
        writes: decision.writes,
        reads: decision.reads,
        outcome: Converted {
            company,
            planned_order: id,
            into,
            document: decision.outcome,
        },
    };
    platform
        .commit(CONTEXT, request, decision, StatusCode::CREATED, |c| {
            json!({
                "planned_order": c.planned_order,
                "converted_into": c.into,
                c.into: c.document,
            })
        })
        .await
}
