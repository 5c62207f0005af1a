//! Deliveries over REST: `POST /deliveries`, `GET /deliveries/{number}`.

use super::{FollowingDocument, missing, path_document};
use crate::commands::{self, NewDelivery};
use crate::delivery::Delivery;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::http::ApiError;
use tributary_kernel::master::UnitOfMeasure;
use tributary_kernel::module::CompanyQuery;
use tributary_materials::domain::LocationCode;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post(
            "/api/v1/deliveries",
            Permission(&DELIVERY_POST),
            post_delivery,
        )
        .accepts::<DeliveryBody>()
        .get(
            "/api/v1/deliveries/{number}",
            Permission(&ORDER_READ),
            get_delivery,
        )
}

fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "company": delivery.company,
        "number": delivery.number,
        "order": delivery.order,
        "customer": delivery.customer,
        "posting_date": delivery.posting_date,
        "lines": delivery.lines.iter().map(|l| json!({
            "line": l.line,
            "material": l.material,
            "plant": l.plant,
            "storage_location": l.location,
            "quantity": l.quantity,
            "cost": l.cost,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeliveryLineBody {
    /// The order line.
    line: u32,
    /// A decimal number as a string, e.g. "12".
    #[schemars(with = "String")]
    quantity: Value,
    /// The order line's unit without.
    unit: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeliveryBody {
    company: Option<String>,
    number: String,
    order: String,
    /// YYYY-MM-DD: the goods issue's posting date.
    posting_date: String,
    /// Where the goods leave from (in the plant of each order line).
    storage_location: String,
    lines: Vec<DeliveryLineBody>,
}

async fn post_delivery(
    State(platform): State<Platform>,
    Command { body, request }: Command<DeliveryBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let header = FollowingDocument::parse(
        &platform,
        &mut checks,
        &request.auth,
        body.company.as_deref(),
        &body.number,
        ("order", &body.order),
        &body.posting_date,
    )?;
    let location = checks.check(
        "storage_location",
        "location_code",
        LocationCode::parse(&body.storage_location),
    );
    if body.lines.is_empty() || body.lines.len() > super::orders::LINES_MAX {
        checks.fail(
            "lines",
            "items",
            format!("a delivery has 1 to {} lines", super::orders::LINES_MAX),
        );
    }
    let mut lines = Vec::new();
    for (index, line) in body.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{index}].{name}");
        let quantity = checks.required_amount(&field("quantity"), Some(&line.quantity));
        let unit = line
            .unit
            .as_deref()
            .and_then(|u| checks.check(&field("unit"), "unit_code", UnitOfMeasure::parse(u)));
        if let Some(quantity) = quantity {
            lines.push((line.line, quantity, unit));
        }
    }
    checks.finish()?;
    let (company, number, order, posting_date) = header.complete(&platform).await?;
    let Some(location) = location else {
        return Err(missing());
    };
    let new = NewDelivery {
        company,
        number,
        order,
        posting_date,
        location,
        lines,
    };
    let context = super::orders::order_context(&platform)?;
    request
        .commit_retrying(
            &platform.store,
            crate::CONTEXT,
            StatusCode::CREATED,
            || {
                let (context, new) = (&context, new.clone());
                Box::pin(async move { Ok(commands::post_delivery(context, new).await?) })
            },
            delivery_json,
        )
        .await
}

async fn get_delivery(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let parsed = path_document(&number)?;
    let loaded = commands::delivery(&platform.store, &company, &parsed).await?;
    let delivery = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("delivery {number} does not exist")))?;
    Ok(Json(delivery_json(&delivery)))
}
