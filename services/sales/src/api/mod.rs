//! Sales REST API under `/api/v1`: routes and DTOs only. Decimals are JSON strings.
//!
//! - `POST /customers`, `GET /customers/{customer}`
//! - `PUT /customers/{customer}/credit-limit`, `POST /customers/{customer}/block`,
//!   `POST /customers/{customer}/unblock` (credit management)
//! - prices, discounts, tax rates: [`pricing`]
//! - quotations and sales orders: [`orders`]; deliveries: [`deliveries`]; invoices, credit
//!   memos, payments and open items: [`billing`]
//!
//! `company` may be left out: the installation's default company is meant.

mod billing;
mod deliveries;
mod orders;
mod pricing;

use crate::CONTEXT;
use crate::commands::{self, SalesError};
use crate::customer::*;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::command::{Checks, Command, CommandRequest, OfCompany};
use tributary_kernel::http::{ApiError, FieldError};
use tributary_kernel::master::Currency;
use tributary_kernel::module::CompanyQuery;
use tributary_kernel::store::Decision;
use tributary_materials::api::TermsBody;
use tributary_materials::domain::{MaterialNumber, parse_iban};

/// Addresses one customer may have.
pub const ADDRESSES_MAX: usize = 20;

impl From<SalesError> for ApiError {
    fn from(error: SalesError) -> Self {
        match error {
            SalesError::Rejected(violations) => ApiError::validation(
                violations
                    .iter()
                    .map(|v| FieldError::new(v.field.clone(), v.rule, v.detail.clone()))
                    .collect(),
            ),
            SalesError::NotFound { what, id } => {
                ApiError::not_found(format!("{what} {id} does not exist"))
            }
            SalesError::Store(error) => error.into(),
            SalesError::Unavailable(detail) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "availability_unavailable",
                "Availability not known",
                detail,
            ),
            error @ SalesError::Repository(_) => ApiError::internal(&error),
        }
    }
}

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post(
            "/api/v1/customers",
            Permission(&CUSTOMER_WRITE),
            create_customer,
        )
        .accepts::<CreateCustomerBody>()
        .get(
            "/api/v1/customers/{customer}",
            Permission(&MASTER_DATA_READ),
            get_customer,
        )
        .put(
            "/api/v1/customers/{customer}/credit-limit",
            Permission(&CREDIT_MANAGE),
            set_credit_limit,
        )
        .accepts::<CreditLimitBody>()
        .post(
            "/api/v1/customers/{customer}/block",
            Permission(&CREDIT_MANAGE),
            block_customer,
        )
        .accepts::<BlockBody>()
        .post(
            "/api/v1/customers/{customer}/unblock",
            Permission(&CREDIT_MANAGE),
            unblock_customer,
        )
        .accepts::<CompanyBody>()
        .merge(pricing::router())
        .merge(orders::router())
        .merge(deliveries::router())
        .merge(billing::router())
}

tributary_kernel::of_company! {
    Customer => |it| &it.company,
    crate::conditions::MaterialPricing => |it| &it.company,
    crate::conditions::CompanyConditions => |it| &it.company,
    crate::order::SalesDocument => |it| &it.company,
    crate::delivery::Delivery => |it| &it.company,
    crate::billing::BillingDocument => |it| &it.company,
    crate::billing::Payment => |it| &it.company,
}

/// Appends a decision of this context with its idempotency record; answers `status` with the
/// JSON `body` makes of the outcome.
async fn commit<O: OfCompany>(
    platform: &Platform,
    request: CommandRequest,
    decision: Decision<O>,
    status: StatusCode,
    body: impl FnOnce(&O) -> Value,
) -> Result<Response, ApiError> {
    request
        .commit_outcome(&platform.store, CONTEXT, decision, status, body)
        .await
}

fn missing() -> ApiError {
    ApiError::field("", "required", "missing fields")
}

/// The header of a document that follows another (a delivery or an invoice of an order, a
/// credit memo of an invoice): the company, its own number, the document it follows and its
/// posting date, each checked into the request's checks.
struct FollowingDocument {
    company: Option<tributary_kernel::master::CompanyCode>,
    number: Option<crate::order::DocumentNumber>,
    follows: Option<crate::order::DocumentNumber>,
    posting_date: Option<chrono::NaiveDate>,
}

/// What [`FollowingDocument::complete`] gives: company, number, the followed document, date.
type Following = (
    tributary_kernel::master::CompanyCode,
    crate::order::DocumentNumber,
    crate::order::DocumentNumber,
    chrono::NaiveDate,
);

impl FollowingDocument {
    /// Checks `company`, `number`, the followed document (`follows`: its field and value) and
    /// `posting_date` into `checks`.
    fn parse(
        platform: &Platform,
        checks: &mut Checks,
        auth: &Auth,
        company: Option<&str>,
        number: &str,
        follows: (&str, &str),
        posting_date: &str,
    ) -> Result<FollowingDocument, ApiError> {
        use crate::order::DocumentNumber;
        Ok(FollowingDocument {
            company: platform.requested_company(checks, auth, company)?,
            number: checks.check("number", "document_number", DocumentNumber::parse(number)),
            follows: checks.check(
                follows.0,
                "document_number",
                DocumentNumber::parse(follows.1),
            ),
            posting_date: checks.date("posting_date", posting_date),
        })
    }

    /// After the checks passed: the header's values, its posting date open in the company's
    /// fiscal calendar.
    async fn complete(self, platform: &Platform) -> Result<Following, ApiError> {
        let (Some(company), Some(number), Some(follows), Some(posting_date)) =
            (self.company, self.number, self.follows, self.posting_date)
        else {
            return Err(missing());
        };
        platform
            .check_posting_date(&company, posting_date, "posting_date")
            .await?;
        Ok((company, number, follows, posting_date))
    }
}

/// A customer named in a path: 404 when the number cannot be one.
fn path_customer(number: &str) -> Result<CustomerNumber, ApiError> {
    CustomerNumber::parse(number)
        .map_err(|_| ApiError::not_found(format!("customer {number} does not exist")))
}

/// A sales document named in a path: 404 when the number cannot be one.
fn path_document(number: &str) -> Result<crate::order::DocumentNumber, ApiError> {
    crate::order::DocumentNumber::parse(number)
        .map_err(|_| ApiError::not_found(format!("sales document {number} does not exist")))
}

/// A material named in a path: 404 when the number cannot be one.
fn path_material(number: &str) -> Result<MaterialNumber, ApiError> {
    MaterialNumber::parse(number)
        .map_err(|_| ApiError::not_found(format!("material {number} does not exist")))
}

// ----- customers ------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    /// `billing` (sold-to, bill-to) or `shipping` (ship-to).
    kind: String,
    street: String,
    postal_code: String,
    city: String,
    /// ISO 3166-1 alpha-2, e.g. "DE".
    country: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateCustomerBody {
    company: Option<String>,
    number: String,
    name: String,
    addresses: Vec<AddressBody>,
    currency: String,
    payment_terms: TermsBody,
    /// A decimal number as a string, e.g. "50000.00"; zero (the default) allows no credit.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    credit_limit: Option<Value>,
    /// `full`, `reduced` or `exempt`.
    tax_classification: String,
    /// The IBAN the customer pays from (sealed at rest).
    #[serde(default)]
    bank_account: Option<String>,
}

/// A customer as answered: the bank account masked, unless `bank_account` is its clear value
/// (for holders of sales.customer.bank_account.read).
fn customer_json_with(customer: &Customer, bank_account: Option<String>) -> Value {
    json!({
        "company": customer.company,
        "number": customer.number,
        "name": customer.name,
        "addresses": customer.addresses.iter().map(|a| json!({
            "kind": a.kind.as_str(),
            "street": a.street,
            "postal_code": a.postal_code,
            "city": a.city,
            "country": a.country,
        })).collect::<Vec<_>>(),
        "currency": customer.currency,
        "payment_terms": {
            "discount_percent": customer.payment_terms.discount_percent,
            "discount_days": customer.payment_terms.discount_days,
            "net_days": customer.payment_terms.net_days,
        },
        "credit_limit": customer.credit_limit,
        "tax_classification": customer.tax_classification.as_str(),
        "bank_account": bank_account
            .or_else(|| customer.bank_account.as_ref().map(|b| b.masked.clone())),
        "blocked": customer.blocked.is_some(),
        "blocked_reason": customer.blocked,
    })
}

fn customer_json(customer: &Customer) -> Value {
    customer_json_with(customer, None)
}

fn address(checks: &mut Checks, index: usize, body: &AddressBody) -> Option<Address> {
    let field = |name: &str| format!("addresses[{index}].{name}");
    let kind = checks.check(
        &field("kind"),
        "address_kind",
        AddressKind::parse(&body.kind),
    );
    let street = checks.text(
        &field("street"),
        Some(body.street.clone()),
        TEXT_LENGTH_MAX,
        true,
    );
    let postal_code = checks.text(
        &field("postal_code"),
        Some(body.postal_code.clone()),
        20,
        true,
    );
    let city = checks.text(
        &field("city"),
        Some(body.city.clone()),
        TEXT_LENGTH_MAX,
        true,
    );
    let country = body.country.as_str();
    if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
        checks.fail(
            field("country"),
            "country_code",
            format!("{country:?} is not an ISO 3166 country code (two capital letters)"),
        );
        return None;
    }
    Some(Address {
        kind: kind?,
        street: street?,
        postal_code: postal_code?,
        city: city?,
        country: country.to_owned(),
    })
}

async fn create_customer(
    State(platform): State<Platform>,
    Command { body, request }: Command<CreateCustomerBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let number = checks.check(
        "number",
        "customer_number",
        CustomerNumber::parse(&body.number),
    );
    let name = checks.text("name", Some(body.name), TEXT_LENGTH_MAX, true);
    let currency = checks.check("currency", "currency_code", Currency::parse(&body.currency));
    if body.addresses.len() > ADDRESSES_MAX {
        checks.fail(
            "addresses",
            "max_items",
            format!("at most {ADDRESSES_MAX} addresses"),
        );
    }
    let addresses: Vec<Address> = body
        .addresses
        .iter()
        .enumerate()
        .take(ADDRESSES_MAX)
        .filter_map(|(index, a)| address(&mut checks, index, a))
        .collect();
    if !body.addresses.iter().any(|a| a.kind == "billing") {
        checks.fail(
            "addresses",
            "billing_address_required",
            "a customer needs a billing address",
        );
    }
    let payment_terms = body.payment_terms.parse(&mut checks, "payment_terms");
    let credit_limit = match &body.credit_limit {
        None => Some(rust_decimal::Decimal::ZERO),
        Some(limit) => checks
            .amount_or_zero("credit_limit", Some(limit))
            .and_then(|limit| checks.cents("credit_limit", Some(limit))),
    };
    let tax_classification = checks.check(
        "tax_classification",
        "tax_classification",
        TaxClassification::parse(&body.tax_classification),
    );
    let iban = body
        .bank_account
        .as_deref()
        .and_then(|text| checks.check("bank_account", "iban", parse_iban(text)));
    checks.finish()?;
    let (Some(company), Some(number), Some(name), Some(currency), Some(tax_classification)) =
        (company, number, name, currency, tax_classification)
    else {
        return Err(missing());
    };
    let bank_account = match iban {
        Some(iban) => Some(
            platform
                .field_keys()?
                .seal_masked(BANK_ACCOUNT_FIELD, &iban),
        ),
        None => None,
    };
    let customer = Customer {
        company,
        number,
        name,
        addresses,
        currency,
        payment_terms,
        credit_limit: credit_limit.unwrap_or_default(),
        tax_classification,
        bank_account,
        blocked: None,
    };
    let decision = commands::create_customer(&platform.store, customer).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        customer_json,
    )
    .await
}

async fn get_customer(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let parsed = path_customer(&number)?;
    let loaded = commands::customer(&platform.store, &company, &parsed).await?;
    let customer = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("customer {number} does not exist")))?;
    let clear = platform.open_sealed(
        &auth,
        &crate::permissions::CUSTOMER_BANK_ACCOUNT_READ,
        &company,
        BANK_ACCOUNT_FIELD,
        customer.bank_account.as_ref(),
    )?;
    Ok(Json(customer_json_with(&customer, clear)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreditLimitBody {
    company: Option<String>,
    /// A decimal number as a string, e.g. "50000.00".
    #[schemars(with = "String")]
    credit_limit: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct BlockBody {
    company: Option<String>,
    /// Why the customer gets no new orders.
    reason: String,
}

#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompanyBody {
    company: Option<String>,
}

/// Decides `command` on the customer in the path, in the company the body names (or the
/// default), once `checks` hold no broken rule.
async fn change_customer(
    platform: Platform,
    request: CommandRequest,
    mut checks: Checks,
    company: Option<&str>,
    number: &str,
    command: Option<CustomerCommand>,
) -> Result<Response, ApiError> {
    let company = platform.requested_company(&mut checks, &request.auth, company)?;
    checks.finish()?;
    let number = path_customer(number)?;
    let (Some(company), Some(command)) = (company, command) else {
        return Err(missing());
    };
    let decision = commands::change_customer(&platform.store, &company, &number, command).await?;
    commit(&platform, request, decision, StatusCode::OK, customer_json).await
}

async fn set_credit_limit(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<CreditLimitBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let limit = checks
        .amount_or_zero("credit_limit", Some(&body.credit_limit))
        .and_then(|limit| checks.cents("credit_limit", Some(limit)));
    let command = limit.map(CustomerCommand::SetCreditLimit);
    let company = body.company;
    change_customer(
        platform,
        request,
        checks,
        company.as_deref(),
        &number,
        command,
    )
    .await
}

async fn block_customer(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<BlockBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let reason = checks.text("reason", Some(body.reason), TEXT_LENGTH_MAX, true);
    let command = reason.map(|reason| CustomerCommand::Block { reason });
    let company = body.company;
    change_customer(
        platform,
        request,
        checks,
        company.as_deref(),
        &number,
        command,
    )
    .await
}

async fn unblock_customer(
    State(platform): State<Platform>,
    Path(number): Path<String>,
    Command { body, request }: Command<Option<CompanyBody>>,
) -> Result<Response, ApiError> {
    let company = body.unwrap_or_default().company;
    let checks = Checks::default();
    change_customer(
        platform,
        request,
        checks,
        company.as_deref(),
        &number,
        Some(CustomerCommand::Unblock),
    )
    .await
}
