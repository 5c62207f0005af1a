//! Finance REST API under `/api/v1`: routes and DTOs only.
//!
//! Amounts are JSON strings; a JSON number for an amount is refused (422), because a float
//! cannot carry every cent. Every POST honours `Idempotency-Key`.

use crate::commands::{self, CONTEXT, FinanceError};
use crate::domain::*;
use crate::permissions;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, CompanyScope, Routes};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::http::{ApiError, FieldError};
use tributary_kernel::money::Currency;
use tributary_kernel::store::EventStore;
use uuid::Uuid;

pub const REFERENCE_LENGTH_MAX: usize = 100;
pub const COST_CENTER_LENGTH_MAX: usize = 20;

impl From<FinanceError> for ApiError {
    fn from(error: FinanceError) -> Self {
        match error {
            FinanceError::Rejected(violations) => ApiError::validation(
                violations
                    .iter()
                    .map(|v| FieldError::new(v.field(), v.rule(), v.to_string()))
                    .collect(),
            ),
            FinanceError::NotFound { what, id } => {
                ApiError::not_found(format!("{what} {id} does not exist"))
            }
            FinanceError::CompanyRequired { count } => ApiError::field(
                "company",
                "required",
                format!("{count} companies exist: name the company this request is for"),
            ),
            FinanceError::Store(error) => error.into(),
            error @ FinanceError::Unreadable(_) => ApiError::internal(&error),
        }
    }
}

/// The command routes (and the reads answered from the event store), each with its
/// permission.
pub fn router() -> Routes {
    use permissions::*;
    Routes::new()
        .post(
            "/api/v1/companies",
            Permission(&COMPANY_WRITE),
            create_company,
        )
        .accepts::<CreateCompanyBody>()
        .get(
            "/api/v1/companies",
            Permission(&COMPANY_READ),
            list_companies,
        )
        .post(
            "/api/v1/accounts",
            Permission(&ACCOUNT_WRITE),
            create_account,
        )
        .accepts::<CreateAccountBody>()
        .get("/api/v1/accounts", Permission(&ACCOUNT_READ), list_accounts)
        .patch(
            "/api/v1/accounts/{number}",
            Permission(&ACCOUNT_WRITE),
            change_account,
        )
        .accepts::<ChangeAccountBody>()
        .get(
            "/api/v1/accounts/{number}",
            Permission(&ACCOUNT_READ),
            get_account,
        )
        .post(
            "/api/v1/fiscal-years",
            Permission(&FISCAL_YEAR_WRITE),
            create_fiscal_year,
        )
        .accepts::<CreateFiscalYearBody>()
        .post(
            "/api/v1/periods/{period}/close",
            Permission(&PERIOD_CLOSE),
            close_period,
        )
        .post(
            "/api/v1/periods/{period}/reopen",
            Permission(&PERIOD_REOPEN),
            reopen_period,
        )
        .post(
            "/api/v1/journal-entries",
            Permission(&JOURNAL_ENTRY_POST),
            post_journal_entry,
        )
        .accepts::<PostEntryBody>()
        .get(
            "/api/v1/journal-entries/{id}",
            Permission(&JOURNAL_ENTRY_READ),
            get_journal_entry,
        )
        .post(
            "/api/v1/journal-entries/{id}/reverse",
            Permission(&JOURNAL_ENTRY_REVERSE),
            reverse_journal_entry,
        )
        .accepts::<ReverseBody>()
        .merge(crate::determination::router())
}

/// The company a request names (or the only one), which the caller must hold the route's
/// permission in.
pub(crate) async fn authorized_company(
    store: &EventStore,
    auth: &Auth,
    requested: Option<&str>,
) -> Result<CompanyCode, ApiError> {
    let company = commands::resolve_company(store, requested).await?;
    auth.company(company.as_str())?;
    Ok(company)
}

/// 403 before anything is looked up when the caller may not act in the company a request
/// defaults to (a company it names was checked by the route's guard or the command's
/// extractor already).
pub(crate) async fn authorize_default(
    store: &EventStore,
    auth: &Auth,
    requested: Option<&str>,
) -> Result<(), ApiError> {
    if requested.is_some() || auth.scope() == CompanyScope::All {
        return Ok(());
    }
    authorized_company(store, auth, None).await.map(|_| ())
}

pub(crate) use tributary_kernel::module::CompanyQuery;

// ----- companies ------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateCompanyBody {
    code: String,
    name: String,
}

async fn create_company(
    State(Platform { store, .. }): State<Platform>,
    Command { body, request }: Command<CreateCompanyBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let code = checks.check("code", "company_code", CompanyCode::parse(&body.code));
    let name = checks.text("name", Some(body.name.clone()), NAME_LENGTH_MAX, true);
    checks.finish()?;
    let (Some(code), Some(name)) = (code, name) else {
        return Err(ApiError::field("code", "required", "missing"));
    };
    request.auth.company(code.as_str())?;
    let scope = code.clone();
    let decision = commands::create_company(&store, code, name).await?;
    request
        .commit(
            &store,
            CONTEXT,
            scope.as_str(),
            decision,
            StatusCode::CREATED,
            company_json,
        )
        .await
}

fn company_json(company: &Company) -> Value {
    json!({ "code": company.code, "name": company.name })
}

async fn list_companies(
    State(Platform { store, .. }): State<Platform>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    let companies = commands::companies(&store).await?;
    let scope = auth.scope();
    Ok(Json(Value::Array(
        companies
            .iter()
            .filter(|c| {
                c.code
                    .as_ref()
                    .is_some_and(|code| scope.includes(code.as_str()))
            })
            .map(company_json)
            .collect(),
    )))
}

// ----- accounts -------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateAccountBody {
    company: Option<String>,
    number: String,
    name: String,
    #[serde(rename = "type")]
    account_type: String,
    currency: String,
}

pub fn account_json(account: &Account) -> Value {
    json!({
        "company": account.company,
        "number": account.number,
        "name": account.name,
        "type": account.account_type.as_str(),
        "currency": account.currency,
        "blocked": account.blocked,
    })
}

async fn create_account(
    State(Platform { store, .. }): State<Platform>,
    Command { body, request }: Command<CreateAccountBody>,
) -> Result<Response, ApiError> {
    let dto = body;
    let mut checks = Checks::default();
    let number = checks.check(
        "number",
        "account_number",
        AccountNumber::parse(&dto.number),
    );
    let name = checks.text("name", Some(dto.name), NAME_LENGTH_MAX, true);
    let account_type = checks.check(
        "type",
        "account_type",
        AccountType::parse(&dto.account_type),
    );
    let currency = checks.check("currency", "currency_code", Currency::parse(&dto.currency));
    checks.finish()?;
    let company =
        crate::api::authorized_company(&store, &request.auth, dto.company.as_deref()).await?;
    let scope = company.clone();
    let (Some(number), Some(name), Some(account_type), Some(currency)) =
        (number, name, account_type, currency)
    else {
        return Err(ApiError::field("", "required", "missing fields"));
    };
    let decision =
        commands::create_account(&store, company, number, name, account_type, currency).await?;
    request
        .commit(
            &store,
            CONTEXT,
            scope.as_str(),
            decision,
            StatusCode::CREATED,
            account_json,
        )
        .await
}

async fn list_accounts(
    State(Platform { store, .. }): State<Platform>,
    auth: Auth,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = crate::api::authorized_company(&store, &auth, query.company.as_deref()).await?;
    let accounts = commands::list_accounts(&store, &company).await?;
    Ok(Json(Value::Array(
        accounts.iter().map(account_json).collect(),
    )))
}

/// The account named in a path, or 404.
pub async fn find_account(
    store: &EventStore,
    company: &CompanyCode,
    number: &str,
) -> Result<Account, ApiError> {
    let parsed = AccountNumber::parse(number)
        .map_err(|_| ApiError::not_found(format!("account {number} does not exist")))?;
    let mut accounts =
        commands::load_accounts(store, company, std::slice::from_ref(&parsed)).await?;
    accounts
        .remove(&parsed)
        .map(|(account, _)| account)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "account {number} does not exist in company {}",
                company.as_str()
            ))
        })
}

async fn get_account(
    State(Platform { store, .. }): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = crate::api::authorized_company(&store, &auth, query.company.as_deref()).await?;
    Ok(Json(account_json(
        &find_account(&store, &company, &number).await?,
    )))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeAccountBody {
    name: Option<String>,
    blocked: Option<bool>,
}

async fn change_account(
    State(Platform { store, .. }): State<Platform>,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
    Command { body, request }: Command<ChangeAccountBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let name = checks.text("name", body.name, NAME_LENGTH_MAX, true);
    checks.finish()?;
    let company =
        crate::api::authorized_company(&store, &request.auth, query.company.as_deref()).await?;
    let scope = company.clone();
    let account = find_account(&store, &company, &number).await?;
    let change = ChangeAccount {
        name,
        blocked: body.blocked,
    };
    let decision = commands::change_account(&store, company, account.number, change).await?;
    request
        .commit(
            &store,
            CONTEXT,
            scope.as_str(),
            decision,
            StatusCode::OK,
            account_json,
        )
        .await
}

// ----- fiscal years and periods ---------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateFiscalYearBody {
    company: Option<String>,
    year: i32,
    start_month: Option<u32>,
}

async fn create_fiscal_year(
    State(Platform { store, .. }): State<Platform>,
    Command { body, request }: Command<CreateFiscalYearBody>,
) -> Result<Response, ApiError> {
    let dto = body;
    let mut checks = Checks::default();
    let year = checks.check(
        "year",
        "year_range",
        if (1900..=9998).contains(&dto.year) {
            Ok(dto.year)
        } else {
            Err("must be between 1900 and 9998")
        },
    );
    let start_month = dto.start_month.unwrap_or(1);
    checks.check(
        "start_month",
        "month",
        if (1..=12).contains(&start_month) {
            Ok(())
        } else {
            Err("must be a month number 1 to 12")
        },
    );
    checks.finish()?;
    let company =
        crate::api::authorized_company(&store, &request.auth, dto.company.as_deref()).await?;
    let year = year.unwrap_or(dto.year);
    let decision = commands::create_fiscal_year(&store, company.clone(), year, start_month).await?;
    request.commit(&store, CONTEXT, company.as_str(), decision, StatusCode::CREATED, |periods| {
        json!({
            "company": company,
            "year": year,
            "start_month": start_month,
            "periods": periods.iter().map(|p| json!({
                "period": p.period, "start_date": p.start_date, "end_date": p.end_date, "status": "open"
            })).collect::<Vec<_>>(),
        })
    })
    .await
}

async fn close_period(
    state: State<Platform>,
    path: Path<String>,
    query: Query<CompanyQuery>,
    command: Command<()>,
) -> Result<Response, ApiError> {
    set_period(state, path, query, command, true).await
}

async fn reopen_period(
    state: State<Platform>,
    path: Path<String>,
    query: Query<CompanyQuery>,
    command: Command<()>,
) -> Result<Response, ApiError> {
    set_period(state, path, query, command, false).await
}

async fn set_period(
    State(Platform { store, .. }): State<Platform>,
    Path(period): Path<String>,
    Query(query): Query<CompanyQuery>,
    Command { request, .. }: Command<()>,
    close: bool,
) -> Result<Response, ApiError> {
    let period =
        Period::parse(&period).map_err(|rule| ApiError::field("period", "period_format", rule))?;
    let company =
        crate::api::authorized_company(&store, &request.auth, query.company.as_deref()).await?;
    let scope = company.clone();
    let decision = commands::set_period_closed(&store, company, period, close).await?;
    request
        .commit(
            &store,
            CONTEXT,
            scope.as_str(),
            decision,
            StatusCode::OK,
            |state| {
                json!({
                    "company": state.company,
                    "period": state.period,
                    "fiscal_year": state.fiscal_year,
                    "status": if state.closed { "closed" } else { "open" },
                })
            },
        )
        .await
}

// ----- journal entries ------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct LineBody {
    account: String,
    #[serde(default)]
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "Option<String>")]
    debit: Option<Value>,
    #[serde(default)]
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "Option<String>")]
    credit: Option<Value>,
    currency: String,
    cost_center: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PostEntryBody {
    company: Option<String>,
    posting_date: String,
    document_date: Option<String>,
    reference: Option<String>,
    text: Option<String>,
    lines: Vec<LineBody>,
}

/// A journal entry as the API answers it, serialized straight into the response (every posting
/// answers one; a `serde_json::Value` built first took a few dozen allocations), its keys in
/// the order a `Value` writes them (sorted).
#[derive(serde::Serialize)]
pub struct EntryJson {
    company: CompanyCode,
    document_date: Option<chrono::NaiveDate>,
    id: Uuid,
    lines: Vec<LineJson>,
    period: Period,
    posting_date: chrono::NaiveDate,
    reference: Option<String>,
    reversal_of: Option<Uuid>,
    reversed_by: Option<Uuid>,
    text: Option<String>,
}

#[derive(serde::Serialize)]
struct LineJson {
    account: AccountNumber,
    cost_center: Option<String>,
    credit: Option<rust_decimal::Decimal>,
    currency: Currency,
    debit: Option<rust_decimal::Decimal>,
    line_no: u32,
    text: Option<String>,
}

pub fn entry_json(entry: &JournalEntry) -> EntryJson {
    let amount = |value: rust_decimal::Decimal| (!value.is_zero()).then_some(value);
    EntryJson {
        company: entry.company.clone(),
        document_date: entry.document_date,
        id: entry.entry_id,
        lines: entry
            .lines
            .iter()
            .map(|line| LineJson {
                account: line.account.clone(),
                cost_center: line.cost_center.clone(),
                credit: amount(line.credit),
                currency: line.currency.clone(),
                debit: amount(line.debit),
                line_no: line.line_no,
                text: line.text.clone(),
            })
            .collect(),
        period: entry.period,
        posting_date: entry.posting_date,
        reference: entry.reference.clone(),
        reversal_of: entry.reversal_of,
        reversed_by: entry.reversed_by,
        text: entry.text.clone(),
    }
}

async fn post_journal_entry(
    State(Platform { store, .. }): State<Platform>,
    Command { body, request }: Command<PostEntryBody>,
) -> Result<Response, ApiError> {
    let dto = body;
    authorize_default(&store, &request.auth, dto.company.as_deref()).await?;
    let mut checks = Checks::default();
    let posting_date = checks.date("posting_date", &dto.posting_date);
    let document_date = dto
        .document_date
        .as_deref()
        .and_then(|d| checks.date("document_date", d));
    let reference = checks.text("reference", dto.reference, REFERENCE_LENGTH_MAX, false);
    let text = checks.text("text", dto.text, TEXT_LENGTH_MAX, false);
    if !(ENTRY_LINES_MIN..=ENTRY_LINES_MAX).contains(&dto.lines.len()) {
        checks.0.push(FieldError::new(
            "lines",
            "line_count",
            Violation::LineCount {
                count: dto.lines.len(),
            }
            .to_string(),
        ));
    }
    let mut lines = Vec::with_capacity(dto.lines.len());
    for (index, line) in dto.lines.into_iter().enumerate().take(ENTRY_LINES_MAX + 1) {
        let field = |name: &str| format!("lines[{index}].{name}");
        let account = checks.check(
            &field("account"),
            "account_number",
            AccountNumber::parse(&line.account),
        );
        let currency = checks.check(
            &field("currency"),
            "currency_code",
            Currency::parse(&line.currency),
        );
        let debit = checks.amount(&field("debit"), line.debit.as_ref());
        let credit = checks.amount(&field("credit"), line.credit.as_ref());
        let had_error = checks
            .0
            .iter()
            .any(|e| e.field.starts_with(&format!("lines[{index}].")));
        let side = match (debit, credit) {
            (Some(debit), None) => Some(Side::Debit(debit)),
            (None, Some(credit)) => Some(Side::Credit(credit)),
            (Some(_), Some(_)) => {
                checks.0.push(FieldError::new(
                    field("credit"),
                    "debit_xor_credit",
                    "set exactly one of debit and credit, not both",
                ));
                None
            }
            (None, None) if !had_error => {
                checks.0.push(FieldError::new(
                    field("debit"),
                    "debit_xor_credit",
                    "set exactly one of debit and credit",
                ));
                None
            }
            (None, None) => None,
        };
        let cost_center = checks.text(
            &field("cost_center"),
            line.cost_center,
            COST_CENTER_LENGTH_MAX,
            false,
        );
        let line_text = checks.text(&field("text"), line.text, TEXT_LENGTH_MAX, false);
        if let (Some(account), Some(currency), Some(side)) = (account, currency, side) {
            lines.push(LineInput {
                account,
                side,
                currency,
                cost_center,
                text: line_text,
            });
        }
    }
    checks.finish()?;
    let Some(posting_date) = posting_date else {
        return Err(ApiError::field("posting_date", "required", "missing"));
    };
    let numbers: Vec<AccountNumber> = lines.iter().map(|l| l.account.clone()).collect();
    let entry_id = Uuid::now_v7();
    let company = dto.company;
    request
        .commit_retrying(
            &store,
            CONTEXT,
            StatusCode::CREATED,
            || {
                let (store, company, numbers) = (&store, company.as_deref(), &numbers);
                let (reference, text, lines) = (&reference, &text, &lines);
                Box::pin(async move {
                    let decision = commands::decide_posting(
                        store,
                        company,
                        posting_date,
                        numbers,
                        |company| PostJournalEntry {
                            entry_id,
                            company,
                            posting_date,
                            document_date,
                            reference: reference.clone(),
                            text: text.clone(),
                            lines: lines.clone(),
                        },
                    )
                    .await?;
                    Ok(decision)
                })
            },
            entry_json,
        )
        .await
}

tributary_kernel::of_company! {
    JournalEntry => |it| &it.company,
}

fn entry_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::not_found(format!("journal entry {id} does not exist")))
}

async fn get_journal_entry(
    State(Platform { store, .. }): State<Platform>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<EntryJson>, ApiError> {
    let (entry, _) = commands::journal_entry(&store, entry_id(&id)?).await?;
    auth.company(entry.company.as_str())?;
    Ok(Json(entry_json(&entry)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReverseBody {
    posting_date: String,
}

async fn reverse_journal_entry(
    State(Platform { store, .. }): State<Platform>,
    Path(id): Path<String>,
    Command { body, request }: Command<ReverseBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let posting_date = checks.date("posting_date", &body.posting_date);
    checks.finish()?;
    let original = entry_id(&id)?;
    let Some(posting_date) = posting_date else {
        return Err(ApiError::field("posting_date", "required", "missing"));
    };
    let (entry, _) = commands::journal_entry(&store, original).await?;
    request.auth.company(entry.company.as_str())?;
    let decision =
        commands::reverse_journal_entry(&store, original, Uuid::now_v7(), posting_date).await?;
    request
        .commit(
            &store,
            CONTEXT,
            entry.company.as_str(),
            decision,
            StatusCode::CREATED,
            |(_, reversal)| entry_json(reversal),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry as answered is what a `serde_json::Value` of it wrote before: every field,
    /// absent ones as null, only the non-zero side of each line, keys sorted.
    #[test]
    fn an_entry_is_answered_with_every_field_and_its_keys_sorted() {
        let date = |text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date");
        let amount = |text: &str| text.parse::<rust_decimal::Decimal>().expect("an amount");
        let line = |line_no, account, debit, credit, text: Option<&str>| JournalLine {
            line_no,
            account: AccountNumber::parse(account).expect("an account"),
            debit: amount(debit),
            credit: amount(credit),
            currency: Currency::parse("EUR").expect("a currency"),
            cost_center: None,
            text: text.map(str::to_owned),
        };
        let id = Uuid::now_v7();
        let entry = JournalEntry {
            entry_id: id,
            company: CompanyCode::parse("MAIN").expect("a company"),
            posting_date: date("2026-03-04"),
            document_date: None,
            period: Period::of(date("2026-03-04")),
            reference: Some("INV-1".into()),
            text: None,
            lines: vec![
                line(1, "1000", "12.50", "0", Some("cash")),
                line(2, "4000", "0", "12.50", None),
            ],
            reversal_of: None,
            reversed_by: None,
        };
        let expected = json!({
            "id": id, "company": "MAIN", "posting_date": "2026-03-04", "document_date": null,
            "period": "2026-03", "reference": "INV-1", "text": null,
            "lines": [
                {"line_no": 1, "account": "1000", "debit": "12.50", "credit": null,
                 "currency": "EUR", "cost_center": null, "text": "cash"},
                {"line_no": 2, "account": "4000", "debit": null, "credit": "12.50",
                 "currency": "EUR", "cost_center": null, "text": null},
            ],
            "reversal_of": null, "reversed_by": null,
        });
        let answered = serde_json::to_string(&entry_json(&entry)).expect("serialized");
        assert_eq!(answered, expected.to_string());
    }
}
