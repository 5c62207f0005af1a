//! Quotations and sales orders over REST.
//!
//! - `POST /quotations`, `GET /quotations/{number}`
//! - `POST /sales-orders` (lines, or `quotation` to accept one), `GET /sales-orders/{number}`
//! - `PATCH /sales-orders/{number}/lines/{line}`, `POST .../lines/{line}/cancel`
//! - `POST /sales-orders/{number}/release-credit` (credit management)

use super::{missing, path_document};
use crate::commands::{self, LineChange, NewDocument, NewLine, OrderContext};
use crate::customer::CustomerNumber;
use crate::demand::SalesIndexes;
use crate::order::*;
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
use tributary_kernel::master::{Currency, UnitOfMeasure};
use tributary_kernel::module::CompanyQuery;
use tributary_materials::domain::{MaterialNumber, PlantCode};

/// Lines one document may have.
pub const LINES_MAX: usize = 500;
/// Days a quotation is valid when the request does not say.
pub const QUOTATION_DAYS: u64 = 30;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post(
            "/api/v1/quotations",
            Permission(&ORDER_WRITE),
            create_quotation,
        )
        .accepts::<QuotationBody>()
        .get(
            "/api/v1/quotations/{number}",
            Permission(&ORDER_READ),
            get_document,
        )
        .post(
            "/api/v1/sales-orders",
            Permission(&ORDER_WRITE),
            create_order,
        )
        .accepts::<OrderBody>()
        .get(
            "/api/v1/sales-orders/{number}",
            Permission(&ORDER_READ),
            get_document,
        )
        .patch(
            "/api/v1/sales-orders/{number}/lines/{line}",
            Permission(&ORDER_WRITE),
            change_line,
        )
        .accepts::<ChangeLineBody>()
        .post(
            "/api/v1/sales-orders/{number}/lines/{line}/cancel",
            Permission(&ORDER_WRITE),
            cancel_line,
        )
        .accepts::<super::CompanyBody>()
        .post(
            "/api/v1/sales-orders/{number}/release-credit",
            Permission(&CREDIT_MANAGE),
            release_credit,
        )
        .accepts::<super::CompanyBody>()
}

/// Sales' indexes and materials' availability, as the installation keeps them.
pub(super) fn order_context(platform: &Platform) -> Result<OrderContext<'_>, ApiError> {
    let indexes = platform
        .settings
        .extensions
        .get::<SalesIndexes>()
        .ok_or_else(|| ApiError::internal(&"sales' indexes are not kept here"))?;
    let availability = platform.settings.availability.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "availability_unavailable",
            "Availability not known",
            "this installation runs no materials context to check availability against",
        )
    })?;
    Ok(OrderContext {
        store: &platform.store,
        indexes,
        availability,
    })
}

pub(crate) fn document_json(document: &SalesDocument) -> Value {
    let live = || document.lines.iter().filter(|l| !l.cancelled);
    let sum = |f: fn(&OrderLine) -> Decimal| live().map(f).sum::<Decimal>();
    json!({
        "company": document.company,
        "number": document.number,
        "kind": match document.kind {
            DocumentKind::Quotation => "quotation",
            DocumentKind::Order => "order",
        },
        "customer": document.customer,
        "currency": document.currency,
        "document_date": document.document_date,
        "valid_to": document.valid_to,
        "quotation": document.quotation,
        "accepted_as": document.accepted_as,
        "status": document.status(),
        "payment_terms": document.payment_terms.as_ref().map(|t| json!({
            "discount_percent": t.discount_percent,
            "discount_days": t.discount_days,
            "net_days": t.net_days,
        })),
        "credit": document.credit.as_ref().map(|c| json!({
            "status": match document.credit_status {
                CreditStatus::Clear => "clear",
                CreditStatus::Blocked => "blocked",
                CreditStatus::Released => "released",
            },
            "limit": c.limit,
            "exposure": c.exposure,
            "order_value": c.order_value,
            "released_by": document.released_by,
        })),
        "net_value": sum(|l| l.entry.price.net_value),
        "tax": sum(|l| l.entry.price.tax),
        "gross_value": sum(|l| l.entry.price.gross_value),
        "lines": document.lines.iter().map(|l| json!({
            "line": l.entry.line,
            "material": l.entry.material,
            "material_group": l.entry.material_group,
            "plant": l.entry.plant,
            "quantity": l.entry.quantity,
            "unit": l.entry.unit,
            "base_quantity": l.entry.base_quantity(),
            "requested_date": l.entry.requested_date,
            "status": l.status(),
            "confirmed_quantity": l.entry.confirmed(),
            "schedule": l.entry.schedule,
            "delivered_quantity": l.delivered,
            "billed_quantity": l.billed,
            "price": l.entry.price,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize, schemars::JsonSchema, Clone)]
#[serde(deny_unknown_fields)]
struct LineBody {
    line: u32,
    material: String,
    /// A decimal number as a string, e.g. "12".
    #[schemars(with = "String")]
    quantity: Value,
    /// One of the material's units; its base unit without.
    unit: Option<String>,
    plant: String,
    /// YYYY-MM-DD.
    requested_date: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    company: Option<String>,
    number: String,
    customer: String,
    /// The customer's currency; an order in another is refused.
    currency: Option<String>,
    /// Today without (the pricing date and the date availability is checked from).
    document_date: Option<String>,
    /// A quotation to accept: the order takes its lines and prices.
    quotation: Option<String>,
    #[serde(default)]
    lines: Vec<LineBody>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct QuotationBody {
    company: Option<String>,
    number: String,
    customer: String,
    currency: Option<String>,
    document_date: Option<String>,
    /// The last day it can be accepted (30 days after its date without).
    valid_to: Option<String>,
    lines: Vec<LineBody>,
}

struct Header<'a> {
    company: Option<&'a str>,
    number: &'a str,
    customer: &'a str,
    currency: Option<&'a str>,
    document_date: Option<&'a str>,
    lines: &'a [LineBody],
}

/// The document a request describes, every broken rule at once.
fn new_document(
    platform: &Platform,
    auth: &Auth,
    checks: &mut Checks,
    header: Header<'_>,
) -> Result<Option<NewDocument>, ApiError> {
    let company = platform.requested_company(checks, auth, header.company)?;
    let number = checks.check(
        "number",
        "document_number",
        DocumentNumber::parse(header.number),
    );
    let customer = checks.check(
        "customer",
        "customer_number",
        CustomerNumber::parse(header.customer),
    );
    let currency = header
        .currency
        .and_then(|c| checks.check("currency", "currency_code", Currency::parse(c)));
    let document_date = match header.document_date {
        Some(date) => checks.date("document_date", date),
        None => Some(chrono::Utc::now().date_naive()),
    };
    if header.lines.len() > LINES_MAX {
        checks.fail("lines", "max_items", format!("at most {LINES_MAX} lines"));
    }
    let mut lines = Vec::new();
    for (index, line) in header.lines.iter().enumerate().take(LINES_MAX) {
        let field = |name: &str| format!("lines[{index}].{name}");
        let material = checks.check(
            &field("material"),
            "material_number",
            MaterialNumber::parse(&line.material),
        );
        let quantity = checks.required_amount(&field("quantity"), Some(&line.quantity));
        let unit = line
            .unit
            .as_deref()
            .and_then(|u| checks.check(&field("unit"), "unit_code", UnitOfMeasure::parse(u)));
        let plant = checks.check(&field("plant"), "plant_code", PlantCode::parse(&line.plant));
        let requested_date = checks.date(&field("requested_date"), &line.requested_date);
        if let (Some(material), Some(quantity), Some(plant), Some(requested_date)) =
            (material, quantity, plant, requested_date)
        {
            lines.push(NewLine {
                line: line.line,
                material,
                quantity,
                unit,
                plant,
                requested_date,
            });
        }
    }
    let (Some(company), Some(number), Some(customer), Some(document_date)) =
        (company, number, customer, document_date)
    else {
        return Ok(None);
    };
    Ok(Some(NewDocument {
        company,
        number,
        customer,
        currency,
        document_date,
        lines,
    }))
}

async fn create_quotation(
    State(platform): State<Platform>,
    Command { body, request }: Command<QuotationBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let new = new_document(
        &platform,
        &request.auth,
        &mut checks,
        Header {
            company: body.company.as_deref(),
            number: &body.number,
            customer: &body.customer,
            currency: body.currency.as_deref(),
            document_date: body.document_date.as_deref(),
            lines: &body.lines,
        },
    )?;
    let valid_to = body
        .valid_to
        .as_deref()
        .and_then(|date| checks.date("valid_to", date));
    checks.finish()?;
    let Some(new) = new else {
        return Err(missing());
    };
    let valid_to = valid_to.unwrap_or(new.document_date + chrono::Days::new(QUOTATION_DAYS));
    let decision = commands::create_quotation(&platform.store, new, valid_to).await?;
    super::commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        document_json,
    )
    .await
}

async fn create_order(
    State(platform): State<Platform>,
    Command { body, request }: Command<OrderBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let new = new_document(
        &platform,
        &request.auth,
        &mut checks,
        Header {
            company: body.company.as_deref(),
            number: &body.number,
            customer: &body.customer,
            currency: body.currency.as_deref(),
            document_date: body.document_date.as_deref(),
            lines: &body.lines,
        },
    )?;
    let quotation = body
        .quotation
        .as_deref()
        .and_then(|q| checks.check("quotation", "document_number", DocumentNumber::parse(q)));
    if body.quotation.is_none() && body.lines.is_empty() {
        checks.fail(
            "lines",
            "required",
            "an order has lines (or names a quotation)",
        );
    }
    checks.finish()?;
    let Some(new) = new else {
        return Err(missing());
    };
    let context = order_context(&platform)?;
    request
        .commit_retrying(
            &platform.store,
            crate::CONTEXT,
            StatusCode::CREATED,
            || {
                let (context, new, quotation) = (&context, new.clone(), quotation.clone());
                Box::pin(async move { Ok(commands::create_order(context, new, quotation).await?) })
            },
            document_json,
        )
        .await
}

async fn get_document(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let parsed = path_document(&number)?;
    let loaded = commands::document(&platform.store, &company, &parsed).await?;
    let document = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("sales document {number} does not exist")))?;
    Ok(Json(document_json(&document)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeLineBody {
    company: Option<String>,
    /// A decimal number as a string: the line's new quantity.
    #[schemars(with = "Option<String>")]
    quantity: Option<Value>,
    /// The unit of the new quantity (the line's without).
    unit: Option<String>,
    /// YYYY-MM-DD.
    requested_date: Option<String>,
}

async fn change_line(
    State(platform): State<Platform>,
    Path((number, line)): Path<(String, u32)>,
    Command { body, request }: Command<ChangeLineBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let quantity = body
        .quantity
        .as_ref()
        .and_then(|q| checks.required_amount("quantity", Some(q)));
    let unit = body
        .unit
        .as_deref()
        .and_then(|u| checks.check("unit", "unit_code", UnitOfMeasure::parse(u)));
    let requested_date: Option<NaiveDate> = body
        .requested_date
        .as_deref()
        .and_then(|date| checks.date("requested_date", date));
    if body.unit.is_some() && body.quantity.is_none() {
        checks.fail(
            "unit",
            "unit_without_quantity",
            "a unit is the unit of a new quantity: give the quantity too",
        );
    }
    if body.quantity.is_none() && body.requested_date.is_none() {
        checks.fail(
            "quantity",
            "nothing_to_change",
            "give a new quantity or requested date",
        );
    }
    checks.finish()?;
    let number = path_document(&number)?;
    let Some(company) = company else {
        return Err(missing());
    };
    let context = order_context(&platform)?;
    request
        .commit_retrying(
            &platform.store,
            crate::CONTEXT,
            StatusCode::OK,
            || {
                let change = LineChange {
                    quantity: quantity.map(|q| (q, unit.clone())),
                    requested_date,
                };
                let (context, company, number) = (&context, &company, &number);
                Box::pin(async move {
                    Ok(commands::change_line(context, company, number, line, change).await?)
                })
            },
            document_json,
        )
        .await
}

async fn cancel_line(
    State(platform): State<Platform>,
    Path((number, line)): Path<(String, u32)>,
    Command { body, request }: Command<Option<super::CompanyBody>>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let requested = body.unwrap_or_default().company;
    let company = platform.requested_company(&mut checks, &request.auth, requested.as_deref())?;
    checks.finish()?;
    let number = path_document(&number)?;
    let Some(company) = company else {
        return Err(missing());
    };
    let context = order_context(&platform)?;
    request
        .commit_retrying(
            &platform.store,
            crate::CONTEXT,
            StatusCode::OK,
            || {
                let (context, company, number) = (&context, &company, &number);
                Box::pin(
                    async move { Ok(commands::cancel_line(context, company, number, line).await?) },
                )
            },
            document_json,
        )
        .await
}

async fn release_credit(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<Option<super::CompanyBody>>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let requested = body.unwrap_or_default().company;
    let company = platform.requested_company(&mut checks, &request.auth, requested.as_deref())?;
    checks.finish()?;
    let number = path_document(&number)?;
    let Some(company) = company else {
        return Err(missing());
    };
    let by = request.auth.caller.user.clone();
    let decision = commands::release_credit(&platform.store, &company, &number, by).await?;
    super::commit(&platform, request, decision, StatusCode::OK, document_json).await
}
