//! Vendor invoices, credit memos and payments under `/api/v1`:
//!
//! - `POST /vendor-invoices` (`type` invoice or credit_memo, lines against purchase order
//!   lines), `GET /vendor-invoices/{vendor}/{number}`,
//!   `POST /vendor-invoices/{vendor}/{number}/release` (a blocked invoice, for payment)
//! - `POST /vendor-payments` (documents of one vendor, in full with the cash discount their
//!   terms give, or in part), `GET /vendor-payments/{id}`
//!
//! Amounts are signed as they move the payable: a credit memo's are negative.

use super::{commit, company, missing};
use crate::commands;
use crate::domain::*;
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
use tributary_kernel::master::{Currency, UnitOfMeasure};
use tributary_kernel::module::CompanyQuery;
use uuid::Uuid;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post(
            "/api/v1/vendor-invoices",
            Permission(&VENDOR_INVOICE_POST),
            post_invoice,
        )
        .accepts::<InvoiceBody>()
        .get(
            "/api/v1/vendor-invoices/{vendor}/{number}",
            Permission(&VENDOR_INVOICE_READ),
            get_invoice,
        )
        .post(
            "/api/v1/vendor-invoices/{vendor}/{number}/release",
            Permission(&VENDOR_INVOICE_POST),
            release_invoice,
        )
        .accepts::<CompanyBody>()
        .post(
            "/api/v1/vendor-payments",
            Permission(&VENDOR_PAYMENT_POST),
            pay,
        )
        .accepts::<PaymentBody>()
        .get(
            "/api/v1/vendor-payments/{id}",
            Permission(&VENDOR_INVOICE_READ),
            get_payment,
        )
}

pub fn invoice_json(invoice: &VendorInvoice) -> Value {
    json!({
        "company": invoice.company,
        "vendor": invoice.vendor,
        "number": invoice.number,
        "type": invoice.kind.as_str(),
        "invoice_date": invoice.invoice_date,
        "posting_date": invoice.posting_date,
        "due_date": invoice.due_date,
        "currency": invoice.currency,
        "total": invoice.total,
        "open": invoice.open(),
        "discount_taken": invoice.discount_taken,
        "status": invoice.status(),
        "blocked_reason": invoice.blocked,
        "lines": invoice.lines.iter().map(|l| json!({
            "purchase_order": l.purchase_order,
            "line": l.line,
            "material": l.material,
            "plant": l.plant,
            "quantity": l.quantity,
            "amount": l.amount,
            "cleared_value": l.cleared_value,
            "stock_share": l.stock_share,
            "price_difference": l.price_difference,
        })).collect::<Vec<_>>(),
    })
}

fn payment_json(payment: &VendorPayment) -> Value {
    json!({
        "company": payment.company,
        "id": payment.payment_id,
        "vendor": payment.vendor,
        "payment_date": payment.payment_date,
        "currency": payment.currency,
        "bank_account": payment.bank_account,
        "paid": payment.paid,
        "invoices": payment.items.iter().map(|i| json!({
            "number": i.invoice,
            "type": i.kind.as_str(),
            "amount": i.amount,
            "discount": i.discount,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvoiceLineBody {
    purchase_order: String,
    line: u32,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    quantity: Value,
    unit: Option<String>,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    amount: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvoiceBody {
    company: Option<String>,
    vendor: String,
    number: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    invoice_date: String,
    posting_date: String,
    currency: Option<String>,
    lines: Vec<InvoiceLineBody>,
}

async fn post_invoice(
    State(platform): State<Platform>,
    Command { body, request }: Command<InvoiceBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let vendor = checks.check("vendor", "vendor_number", VendorNumber::parse(&body.vendor));
    let number = checks.check(
        "number",
        "invoice_number",
        InvoiceNumber::parse(&body.number),
    );
    let kind = checks.check(
        "type",
        "invoice_type",
        InvoiceKind::parse(body.kind.as_deref().unwrap_or("invoice")),
    );
    let invoice_date = checks.date("invoice_date", &body.invoice_date);
    let posting_date = checks.date("posting_date", &body.posting_date);
    let currency = body
        .currency
        .as_deref()
        .and_then(|c| checks.check("currency", "currency_code", Currency::parse(c)));
    if body.lines.is_empty() || body.lines.len() > INVOICE_LINES_MAX {
        checks.fail(
            "lines",
            "line_count",
            format!("a document needs 1 to {INVOICE_LINES_MAX} lines"),
        );
    }
    let mut lines = Vec::new();
    for (index, line) in body.lines.iter().enumerate().take(INVOICE_LINES_MAX) {
        let field = |name: &str| format!("lines[{index}].{name}");
        let order = checks.check(
            &field("purchase_order"),
            "purchase_order_number",
            PurchaseOrderNumber::parse(&line.purchase_order),
        );
        let quantity = checks.required_amount(&field("quantity"), Some(&line.quantity));
        let unit = line
            .unit
            .as_deref()
            .and_then(|u| checks.check(&field("unit"), "unit_code", UnitOfMeasure::parse(u)));
        let amount = checks.required_amount(&field("amount"), Some(&line.amount));
        let amount = checks.cents(&field("amount"), amount);
        if let (Some(purchase_order), Some(quantity), Some(amount)) = (order, quantity, amount) {
            lines.push(NewInvoiceLine {
                purchase_order,
                line: line.line,
                quantity,
                unit,
                amount,
            });
        }
    }
    checks.finish()?;
    let (
        Some(company),
        Some(vendor),
        Some(number),
        Some(kind),
        Some(invoice_date),
        Some(posting_date),
    ) = (company, vendor, number, kind, invoice_date, posting_date)
    else {
        return Err(missing());
    };
    platform
        .check_posting_date(&company, posting_date, "posting_date")
        .await?;
    let new = NewInvoice {
        company,
        vendor,
        number,
        kind,
        invoice_date,
        posting_date,
        currency,
        lines,
    };
    let decision = commands::post_invoice(&platform.store, new).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        invoice_json,
    )
    .await
}

fn path_document(vendor: &str, number: &str) -> Result<(VendorNumber, InvoiceNumber), ApiError> {
    match (VendorNumber::parse(vendor), InvoiceNumber::parse(number)) {
        (Ok(vendor), Ok(number)) => Ok((vendor, number)),
        _ => Err(ApiError::not_found(format!(
            "vendor {vendor} has no document {number}"
        ))),
    }
}

async fn get_invoice(
    State(platform): State<Platform>,
    auth: Auth,
    Path((vendor, number)): Path<(String, String)>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let (vendor_number, invoice_number) = path_document(&vendor, &number)?;
    let loaded =
        commands::invoice(&platform.store, &company, &vendor_number, &invoice_number).await?;
    let invoice = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("vendor {vendor} has no document {number}")))?;
    Ok(Json(invoice_json(&invoice)))
}

#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompanyBody {
    company: Option<String>,
}

async fn release_invoice(
    State(platform): State<Platform>,
    Path((vendor, number)): Path<(String, String)>,
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
    let (vendor, number) = path_document(&vendor, &number)?;
    let decision = commands::release_invoice(&platform.store, &company, &vendor, &number).await?;
    commit(&platform, request, decision, StatusCode::OK, invoice_json).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayDocumentBody {
    number: String,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "Option<String>")]
    amount: Option<Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentBody {
    company: Option<String>,
    vendor: String,
    payment_date: String,
    bank_account: Option<String>,
    invoices: Vec<PayDocumentBody>,
}

async fn pay(
    State(platform): State<Platform>,
    Command { body, request }: Command<PaymentBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let vendor = checks.check("vendor", "vendor_number", VendorNumber::parse(&body.vendor));
    let payment_date = checks.date("payment_date", &body.payment_date);
    let bank_account = checks.text("bank_account", body.bank_account, 20, true);
    if body.invoices.is_empty() || body.invoices.len() > INVOICE_LINES_MAX {
        checks.fail(
            "invoices",
            "line_count",
            format!("a payment settles 1 to {INVOICE_LINES_MAX} documents"),
        );
    }
    let mut documents = Vec::new();
    for (index, document) in body.invoices.iter().enumerate().take(INVOICE_LINES_MAX) {
        let number = checks.check(
            &format!("invoices[{index}].number"),
            "invoice_number",
            InvoiceNumber::parse(&document.number),
        );
        let amount = checks.amount(
            &format!("invoices[{index}].amount"),
            document.amount.as_ref(),
        );
        let amount = checks.cents(&format!("invoices[{index}].amount"), amount);
        if let Some(invoice) = number {
            documents.push(PayDocument { invoice, amount });
        }
    }
    checks.finish()?;
    let (Some(company), Some(vendor), Some(payment_date)) = (company, vendor, payment_date) else {
        return Err(missing());
    };
    platform
        .check_posting_date(&company, payment_date, "payment_date")
        .await?;
    if let Some(account) = &bank_account {
        let vendor_state = crate::commands::vendor(&platform.store, &company, &vendor).await?;
        if let Some(found) = vendor_state.state {
            platform
                .check_account(&company, account, &found.currency, "bank_account")
                .await?;
        }
    }
    let new = NewPayment {
        company,
        payment_id: Uuid::now_v7(),
        vendor,
        payment_date,
        bank_account,
        documents,
    };
    let decision = commands::pay(&platform.store, new).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        payment_json,
    )
    .await
}

async fn get_payment(
    State(platform): State<Platform>,
    auth: Auth,
    Path(id): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let not_found = || ApiError::not_found(format!("payment {id} does not exist"));
    let payment = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let loaded = tributary_kernel::aggregate::load::<VendorPayment>(
        &platform.store,
        &commands::payment_id(&company, payment),
    )
    .await
    .map_err(crate::commands::MaterialsError::from)?;
    Ok(Json(payment_json(&loaded.state.ok_or_else(not_found)?)))
}
