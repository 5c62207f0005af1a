//! Production read APIs answered from the lake (the query role); the SQL lives in `reads/`.
//!
//! - `GET /api/v1/plants/{plant}/materials/{material}/mrp-record?company=`: the material's
//!   time-phased record as last planned (by a run or net change), with its planned orders and
//!   exception messages.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::http::ApiError;
use tributary_kernel::lake::{Cell, Rows};
use tributary_kernel::module::CompanyQuery;
use tributary_materials::domain::{MaterialNumber, PlantCode};

const RECORD_SQL: &str = include_str!("../reads/mrp_record.sql");
const ORDERS_SQL: &str = include_str!("../reads/material_planned_orders.sql");
const EXCEPTIONS_SQL: &str = include_str!("../reads/material_exceptions.sql");

pub fn router() -> Routes {
    use crate::permissions::MRP_READ;
    Routes::new().get(
        "/api/v1/plants/{plant}/materials/{material}/mrp-record",
        Permission(&MRP_READ),
        mrp_record,
    )
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
