//! Sales read APIs answered from the lake (the query role). The SQL lives in `reads/`;
//! parameters are bound, never spliced.
//!
//! - `GET /api/v1/ar-aging?as_of=YYYY-MM-DD&company=`: open customer items as of a date, per
//!   customer, in buckets by due date (current, 1-30, 31-60, 61-90, over 90 days past due).
//! - `GET /api/v1/dunning-proposal?as_of=YYYY-MM-DD&company=`: the past-due invoices as of a
//!   date by dunning level (1: up to 30 days past due, 2: 31-60, 3: over 60), per customer.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::http::ApiError;
use tributary_kernel::lake::Cell;
use tributary_kernel::module::CompanyQuery;

const AR_AGING_SQL: &str = include_str!("../reads/ar_aging.sql");

/// The aging buckets, in order.
pub const BUCKETS: [&str; 5] = [
    "current",
    "past_due_1_30",
    "past_due_31_60",
    "past_due_61_90",
    "past_due_over_90",
];

pub fn router() -> Routes {
    use crate::permissions::RECEIVABLES_READ;
    Routes::new()
        .get("/api/v1/ar-aging", Permission(&RECEIVABLES_READ), ar_aging)
        .get(
            "/api/v1/dunning-proposal",
            Permission(&RECEIVABLES_READ),
            dunning_proposal,
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgingQuery {
    company: Option<String>,
    as_of: Option<String>,
}

/// The aging rows of the query's company as of its date.
async fn aging_rows(
    platform: &Platform,
    auth: &Auth,
    query: &AgingQuery,
) -> Result<
    (
        tributary_kernel::master::CompanyCode,
        chrono::NaiveDate,
        tributary_kernel::lake::Rows,
    ),
    ApiError,
> {
    let company = platform.queried_company(
        auth,
        &CompanyQuery {
            company: query.company.clone(),
        },
    )?;
    let as_of = match &query.as_of {
        Some(text) => tributary_kernel::master::parse_date(text)
            .map_err(|rule| ApiError::field("as_of", "date", rule))?,
        None => chrono::Utc::now().date_naive(),
    };
    let parameters = vec![Cell::owned(company.to_string()), Cell::Date(as_of)];
    let rows = platform.lake()?.rows(AR_AGING_SQL, parameters).await?;
    Ok((company, as_of, rows))
}

async fn ar_aging(
    State(platform): State<Platform>,
    auth: Auth,
    Query(query): Query<AgingQuery>,
) -> Result<Json<Value>, ApiError> {
    let (company, as_of, rows) = aging_rows(&platform, &auth, &query).await?;
    Ok(Json(json!({
        "company": company,
        "as_of": as_of,
        "customers": tributary_materials::reads::aged(&rows, "customer", &BUCKETS),
    })))
}

/// The dunning level of a past-due bucket.
fn level(bucket: &str) -> Option<u8> {
    match bucket {
        "past_due_1_30" => Some(1),
        "past_due_31_60" => Some(2),
        "past_due_61_90" | "past_due_over_90" => Some(3),
        _ => None,
    }
}

async fn dunning_proposal(
    State(platform): State<Platform>,
    auth: Auth,
    Query(query): Query<AgingQuery>,
) -> Result<Json<Value>, ApiError> {
    let (company, as_of, rows) = aging_rows(&platform, &auth, &query).await?;
    let mut customers: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for row in &rows.rows {
        let amount = row[5].decimal_or_zero();
        let Some(level) = row[6].as_str().and_then(level) else {
            continue;
        };
        if row[2].as_str() != Some("invoice") || amount <= rust_decimal::Decimal::ZERO {
            continue;
        }
        customers
            .entry(row[0].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(json!({
                "document": row[1].as_str(),
                "due_date": row[3].to_json(),
                "currency": row[4].as_str(),
                "open_amount": tributary_kernel::money::display_amount(amount),
                "dunning_level": level,
            }));
    }
    Ok(Json(json!({
        "company": company,
        "as_of": as_of,
        "customers": customers.into_iter().map(|(customer, items)| {
            let highest = items.iter().filter_map(|i| i["dunning_level"].as_u64()).max();
            json!({"customer": customer, "dunning_level": highest, "items": items})
        }).collect::<Vec<_>>(),
    })))
}
