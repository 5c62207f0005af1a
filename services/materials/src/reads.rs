//! Materials read APIs answered from the lake (the query role). The SQL lives in `reads/`;
//! parameters are bound, never spliced.
//!
//! - `GET /api/v1/ap-aging?as_of=YYYY-MM-DD&company=`: open vendor documents as of a date,
//!   per vendor, in buckets by due date (not due, 1-30, 31-60, 61-90, over 90 days overdue).

use axum::Json;
use axum::extract::{Query, State};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::http::ApiError;
use tributary_kernel::lake::Cell;
use tributary_kernel::module::CompanyQuery;
use tributary_kernel::money::display_amount;

const AP_AGING_SQL: &str = include_str!("../reads/ap_aging.sql");

/// The aging buckets, in order.
pub const BUCKETS: [&str; 5] = [
    "not_due",
    "overdue_1_30",
    "overdue_31_60",
    "overdue_61_90",
    "overdue_over_90",
];

pub fn router() -> Routes {
    Routes::new().get(
        "/api/v1/ap-aging",
        Permission(&crate::permissions::VENDOR_INVOICE_READ),
        ap_aging,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgingQuery {
    company: Option<String>,
    as_of: Option<String>,
}

/// A party's open amount per bucket and its open documents.
type Party = (BTreeMap<&'static str, Decimal>, Vec<Value>);

fn text(cell: &Cell<'_>) -> String {
    cell.as_str().unwrap_or_default().to_owned()
}

async fn ap_aging(
    State(platform): State<Platform>,
    auth: Auth,
    Query(query): Query<AgingQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(
        &auth,
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
    let result = platform.lake()?.rows(AP_AGING_SQL, parameters).await?;
    let vendors = aged(&result, "vendor", &BUCKETS);
    Ok(Json(json!({
        "company": company,
        "as_of": as_of,
        "vendors": vendors,
    })))
}

/// Aging rows (party, document, type, due date, currency, open amount, bucket) per party and
/// currency: the amount in each of `buckets` (the last takes what names none), the total, the
/// items. Payables and receivables alike.
pub fn aged(
    result: &tributary_kernel::lake::Rows,
    party: &str,
    buckets: &[&'static str; 5],
) -> Vec<Value> {
    let mut parties: BTreeMap<(String, String), Party> = BTreeMap::new();
    for row in &result.rows {
        let (name, currency) = (text(&row[0]), text(&row[4]));
        let amount = row[5].decimal_or_zero();
        let bucket = buckets
            .iter()
            .copied()
            .find(|b| Some(*b) == row[6].as_str())
            .unwrap_or(buckets[4]);
        let entry = parties.entry((name, currency)).or_default();
        *entry.0.entry(bucket).or_default() += amount;
        entry.1.push(json!({
            "document": text(&row[1]),
            "type": text(&row[2]),
            "due_date": row[3].to_json(),
            "open_amount": display_amount(amount),
            "bucket": bucket,
        }));
    }
    parties
        .into_iter()
        .map(|((name, currency), (amounts, items))| {
            let mut answer = json!({party: name, "currency": currency});
            let mut total = Decimal::ZERO;
            for bucket in buckets {
                let amount = amounts.get(bucket).copied().unwrap_or_default();
                total += amount;
                answer[*bucket] = json!(display_amount(amount));
            }
            answer["total"] = json!(display_amount(total));
            answer["items"] = json!(items);
            answer
        })
        .collect()
}
