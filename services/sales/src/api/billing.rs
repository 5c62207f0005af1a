//! Billing and receivables over REST.
//!
//! - `POST /invoices` (from delivered quantities), `POST /credit-memos` (returns),
//!   `GET /invoices/{number}` (either)
//! - `POST /customer-payments`, `GET /customer-payments/{number}`,
//!   `POST /customer-payments/{number}/apply` (what stayed on account, to open invoices)
//! - `GET /customers/{customer}/open-items`

use super::{FollowingDocument, missing, path_customer, path_document};
use crate::billing::{BillingDocument, Payment};
use crate::commands::{self, NewCreditMemo, NewInvoice, NewPayment};
use crate::customer::CustomerNumber;
use crate::demand::SalesIndexes;
use crate::order::DocumentNumber;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::http::ApiError;
use tributary_kernel::master::{Currency, UnitOfMeasure};
use tributary_kernel::module::CompanyQuery;
use tributary_materials::domain::LocationCode;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post("/api/v1/invoices", Permission(&BILLING_POST), post_invoice)
        .accepts::<InvoiceBody>()
        .post(
            "/api/v1/credit-memos",
            Permission(&BILLING_POST),
            post_credit_memo,
        )
        .accepts::<CreditMemoBody>()
        .get(
            "/api/v1/invoices/{number}",
            Permission(&RECEIVABLES_READ),
            get_invoice,
        )
        .post(
            "/api/v1/customer-payments",
            Permission(&PAYMENT_POST),
            receive_payment,
        )
        .accepts::<PaymentBody>()
        .get(
            "/api/v1/customer-payments/{number}",
            Permission(&RECEIVABLES_READ),
            get_payment,
        )
        .post(
            "/api/v1/customer-payments/{number}/apply",
            Permission(&PAYMENT_POST),
            apply_on_account,
        )
        .accepts::<ApplyBody>()
        .get(
            "/api/v1/customers/{customer}/open-items",
            Permission(&RECEIVABLES_READ),
            open_items,
        )
}

fn indexes(platform: &Platform) -> Result<&SalesIndexes, ApiError> {
    platform
        .settings
        .extensions
        .get::<SalesIndexes>()
        .ok_or_else(|| ApiError::internal(&"sales' indexes are not kept here"))
}

fn billing_json(document: &BillingDocument) -> Value {
    json!({
        "company": document.company,
        "number": document.number,
        "kind": document.kind.as_str(),
        "customer": document.customer,
        "currency": document.currency,
        "order": document.order,
        "invoice": document.invoice,
        "posting_date": document.posting_date,
        "due_date": document.due_date,
        "discount_date": document.discount_date,
        "discount_percent": document.discount_percent,
        "net_value": document.net_value,
        "tax": document.tax,
        "gross_value": document.gross_value,
        "discount_reversed": document.discount_reversed,
        "open_amount": document.open_amount(),
        "lines": document.lines,
    })
}

fn payment_json(payment: &Payment) -> Value {
    json!({
        "company": payment.company,
        "number": payment.number,
        "customer": payment.customer,
        "currency": payment.currency,
        "payment_date": payment.date,
        "amount": payment.amount,
        "items": payment.items,
        "on_account": payment.on_account,
        "open_on_account": payment.open_on_account(),
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct BilledLineBody {
    /// The order line.
    line: u32,
    /// A decimal number as a string, in the line's unit.
    #[schemars(with = "String")]
    quantity: Value,
    /// The order line's unit (the only one accepted).
    unit: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct InvoiceBody {
    company: Option<String>,
    number: String,
    order: String,
    /// YYYY-MM-DD: the invoice date, from which its terms run.
    posting_date: String,
    /// What to bill; every line's delivered, not yet billed quantity without.
    #[serde(default)]
    lines: Vec<BilledLineBody>,
}

/// `lines[i]` of a billing request: line, quantity, unit.
fn billed_lines(
    checks: &mut Checks,
    lines: &[BilledLineBody],
) -> Vec<(u32, Decimal, Option<UnitOfMeasure>)> {
    let mut parsed = Vec::new();
    for (index, line) in lines.iter().enumerate().take(super::orders::LINES_MAX) {
        let field = |name: &str| format!("lines[{index}].{name}");
        let quantity = checks.required_amount(&field("quantity"), Some(&line.quantity));
        let unit = line
            .unit
            .as_deref()
            .and_then(|u| checks.check(&field("unit"), "unit_code", UnitOfMeasure::parse(u)));
        if let Some(quantity) = quantity {
            parsed.push((line.line, quantity, unit));
        }
    }
    parsed
}

async fn post_invoice(
    State(platform): State<Platform>,
    Command { body, request }: Command<InvoiceBody>,
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
    let lines = billed_lines(&mut checks, &body.lines);
    checks.finish()?;
    let (company, number, order, posting_date) = header.complete(&platform).await?;
    let new = NewInvoice {
        company,
        number,
        order,
        posting_date,
        lines,
    };
    let decision = commands::post_invoice(&platform.store, new).await?;
    super::commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        billing_json,
    )
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreditMemoBody {
    company: Option<String>,
    number: String,
    /// The invoice whose lines are returned.
    invoice: String,
    /// YYYY-MM-DD.
    posting_date: String,
    /// Where the returned goods go back into stock (at what they were issued at); without,
    /// the credit memo is an allowance and no goods come back.
    storage_location: Option<String>,
    lines: Vec<BilledLineBody>,
}

async fn post_credit_memo(
    State(platform): State<Platform>,
    Command { body, request }: Command<CreditMemoBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let header = FollowingDocument::parse(
        &platform,
        &mut checks,
        &request.auth,
        body.company.as_deref(),
        &body.number,
        ("invoice", &body.invoice),
        &body.posting_date,
    )?;
    let location = body
        .storage_location
        .as_deref()
        .and_then(|l| checks.check("storage_location", "location_code", LocationCode::parse(l)));
    if body.lines.is_empty() {
        checks.fail("lines", "required", "name the invoice lines returned");
    }
    if body.lines.iter().any(|l| l.unit.is_some()) {
        checks.fail(
            "lines",
            "base_unit",
            "credit memo quantities are in the material's base unit, as the invoice bills them",
        );
    }
    let lines = billed_lines(&mut checks, &body.lines)
        .into_iter()
        .map(|(line, quantity, _)| (line, quantity))
        .collect();
    checks.finish()?;
    let (company, number, invoice, posting_date) = header.complete(&platform).await?;
    let new = NewCreditMemo {
        company,
        number,
        invoice,
        posting_date,
        location,
        lines,
    };
    let decision = commands::post_credit_memo(&platform.store, new).await?;
    super::commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        billing_json,
    )
    .await
}

async fn get_invoice(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let parsed = path_document(&number)?;
    let loaded = commands::billing_document(&platform.store, &company, &parsed).await?;
    let document = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("billing document {number} does not exist")))?;
    Ok(Json(billing_json(&document)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AppliedBody {
    number: String,
    /// What of the payment goes to it (what settles it, less any cash discount, without).
    #[schemars(with = "Option<String>")]
    amount: Option<Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PaymentBody {
    company: Option<String>,
    number: String,
    customer: String,
    /// YYYY-MM-DD: the day the money came in (decides the cash discount).
    payment_date: String,
    /// A decimal number as a string: the amount received.
    #[schemars(with = "String")]
    amount: Value,
    /// The customer's currency (checked when given).
    currency: Option<String>,
    /// The invoices it pays; the customer's open invoices by due date without.
    #[serde(default)]
    invoices: Vec<AppliedBody>,
}

async fn receive_payment(
    State(platform): State<Platform>,
    Command { body, request }: Command<PaymentBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let number = checks.check(
        "number",
        "document_number",
        DocumentNumber::parse(&body.number),
    );
    let customer = checks.check(
        "customer",
        "customer_number",
        CustomerNumber::parse(&body.customer),
    );
    let date = checks.date("payment_date", &body.payment_date);
    let amount = checks
        .required_amount("amount", Some(&body.amount))
        .and_then(|a| checks.cents("amount", Some(a)));
    let currency = body
        .currency
        .as_deref()
        .and_then(|c| checks.check("currency", "currency_code", Currency::parse(c)));
    let invoices = applied_invoices(&mut checks, &body.invoices);
    checks.finish()?;
    let (Some(company), Some(number), Some(customer), Some(date), Some(amount)) =
        (company, number, customer, date, amount)
    else {
        return Err(missing());
    };
    platform
        .check_posting_date(&company, date, "payment_date")
        .await?;
    let new = NewPayment {
        company,
        number,
        customer,
        date,
        amount,
        currency,
        invoices,
    };
    let decision = commands::receive_payment(&platform.store, indexes(&platform)?, new).await?;
    super::commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        payment_json,
    )
    .await
}

/// `invoices[i]` of a payment request: number, amount.
fn applied_invoices(
    checks: &mut Checks,
    invoices: &[AppliedBody],
) -> Vec<(DocumentNumber, Option<Decimal>)> {
    let mut parsed = Vec::new();
    for (index, item) in invoices.iter().enumerate().take(super::orders::LINES_MAX) {
        let field = |name: &str| format!("invoices[{index}].{name}");
        let number = checks.check(
            &field("number"),
            "document_number",
            DocumentNumber::parse(&item.number),
        );
        let amount = item
            .amount
            .as_ref()
            .and_then(|a| checks.amount(&field("amount"), Some(a)))
            .and_then(|a| checks.cents(&field("amount"), Some(a)));
        if let Some(number) = number {
            parsed.push((number, amount));
        }
    }
    parsed
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    company: Option<String>,
    /// YYYY-MM-DD: the day the amount on account is applied.
    date: String,
    /// The invoices it settles; the customer's open invoices by due date without.
    #[serde(default)]
    invoices: Vec<AppliedBody>,
}

/// Applies what a payment left on account to open invoices.
async fn apply_on_account(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<ApplyBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let date = checks.date("date", &body.date);
    let invoices = applied_invoices(&mut checks, &body.invoices);
    checks.finish()?;
    let payment = path_document(&number)?;
    let (Some(company), Some(date)) = (company, date) else {
        return Err(missing());
    };
    platform.check_posting_date(&company, date, "date").await?;
    let apply = commands::ApplyOnAccount {
        company,
        payment,
        date,
        invoices,
    };
    let decision = commands::apply_on_account(&platform.store, indexes(&platform)?, apply).await?;
    super::commit(&platform, request, decision, StatusCode::OK, payment_json).await
}

async fn get_payment(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let parsed = path_document(&number)?;
    let loaded = commands::payment(&platform.store, &company, &parsed).await?;
    let payment = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("payment {number} does not exist")))?;
    Ok(Json(payment_json(&payment)))
}

/// The customer's open items (invoices, and credit memos not used up as negative items) as of
/// every event committed.
async fn open_items(
    State(platform): State<Platform>,
    auth: Auth,
    Path(customer): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let number = path_customer(&customer)?;
    let items = indexes(&platform)?
        .open_items(company.as_str(), number.as_str())
        .await
        .map_err(ApiError::from)?;
    let total: Decimal = items.iter().map(|i| i.open).sum();
    Ok(Json(json!({
        "company": company,
        "customer": number,
        "open_items": items.iter().map(|i| json!({
            "document_type": i.document_type,
            "number": i.number,
            "due_date": i.due_date,
            "open_amount": i.open,
        })).collect::<Vec<_>>(),
        "total": total,
    })))
}
