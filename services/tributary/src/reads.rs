//! Finance read APIs answered from the lake: account balance and trial balance.
//! The SQL lives in `sql/reads/`; parameters are bound, never spliced.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use datafusion::arrow::array::Array;
use datafusion::common::ScalarValue;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tributary_finance::api::find_account;
use tributary_finance::commands::resolve_company;
use tributary_finance::domain::Period;
use tributary_kernel::http::ApiError;
use tributary_kernel::store::EventStore;
use tributary_lakehouse::QueryService;
use tributary_lakehouse::decimal::display_amount;

const TRIAL_BALANCE_SQL: &str = include_str!("../../../sql/reads/trial_balance.sql");
const ACCOUNT_BALANCE_SQL: &str = include_str!("../../../sql/reads/account_balance.sql");

#[derive(Clone)]
pub struct ReadState {
    pub store: EventStore,
    pub query: QueryService,
}

pub fn router() -> Router<ReadState> {
    Router::new()
        .route("/api/v1/accounts/{number}/balance", get(account_balance))
        .route("/api/v1/trial-balance", get(trial_balance))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceQuery {
    as_of: Option<String>,
    company: Option<String>,
}

fn date_parameter(date: NaiveDate) -> ScalarValue {
    ScalarValue::Date32(Some(tributary_lakehouse::catalog::date32(date)))
}

fn text(value: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(value.to_owned()))
}

/// Reads a decimal cell; NULL (no movements) is zero.
fn decimal_cell(column: &dyn Array, row: usize) -> Result<Decimal, ApiError> {
    tributary_lakehouse::decimal::value_at(column, row).map_err(|error| ApiError::internal(&error))
}

fn string_cell(column: &dyn Array, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    let formatter =
        datafusion::arrow::util::display::ArrayFormatter::try_new(column, &Default::default())
            .ok()?;
    Some(formatter.value(row).to_string())
}

async fn account_balance(
    State(state): State<ReadState>,
    Path(number): Path<String>,
    Query(query): Query<BalanceQuery>,
) -> Result<Json<Value>, ApiError> {
    let as_of = match &query.as_of {
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::field(
                "as_of",
                "date",
                "must be a date YYYY-MM-DD such as \"2026-01-31\"",
            )
        })?,
        None => NaiveDate::MAX,
    };
    let company = resolve_company(&state.store, query.company.as_deref()).await?;
    let account = find_account(&state.store, &company, &number).await?;
    let parameters = vec![
        text(company.as_str()),
        text(account.number.as_str()),
        text(account.currency.as_str()),
        date_parameter(as_of.min(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(as_of))),
    ];
    let result = state
        .query
        .query_with_parameters(ACCOUNT_BALANCE_SQL, parameters)
        .await?;
    let (mut debit, mut credit) = (Decimal::ZERO, Decimal::ZERO);
    for batch in &result.batches {
        for row in 0..batch.num_rows() {
            debit += decimal_cell(batch.column(0).as_ref(), row)?;
            credit += decimal_cell(batch.column(1).as_ref(), row)?;
        }
    }
    Ok(Json(json!({
        "company": company,
        "account": account.number,
        "currency": account.currency,
        "as_of": query.as_of,
        "debit_total": display_amount(debit),
        "credit_total": display_amount(credit),
        "balance": display_amount(debit - credit),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrialBalanceQuery {
    period: Option<String>,
    company: Option<String>,
}

#[derive(Default)]
struct Totals {
    opening: Decimal,
    debit: Decimal,
    credit: Decimal,
    closing: Decimal,
}

async fn trial_balance(
    State(state): State<ReadState>,
    Query(query): Query<TrialBalanceQuery>,
) -> Result<Json<Value>, ApiError> {
    let period_text = query.period.ok_or_else(|| {
        ApiError::field("period", "required", "give the period as ?period=YYYY-MM")
    })?;
    let period = Period::parse(&period_text)
        .map_err(|rule| ApiError::field("period", "period_format", rule))?;
    let company = resolve_company(&state.store, query.company.as_deref()).await?;
    let parameters = vec![text(company.as_str()), text(&period.to_string())];
    let result = state
        .query
        .query_with_parameters(TRIAL_BALANCE_SQL, parameters)
        .await?;
    let mut rows = Vec::new();
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    for batch in &result.batches {
        for row in 0..batch.num_rows() {
            let column = |i: usize| batch.column(i).as_ref();
            let currency = string_cell(column(3), row).unwrap_or_default();
            let (opening, debit, credit, closing) = (
                decimal_cell(column(4), row)?,
                decimal_cell(column(5), row)?,
                decimal_cell(column(6), row)?,
                decimal_cell(column(7), row)?,
            );
            // Protects what is reported: closing = opening + debit - credit, always.
            if closing != opening + debit - credit {
                return Err(ApiError::internal(&format!(
                    "trial balance row for account {:?} does not roll forward: {opening} + {debit} - {credit} != {closing}",
                    string_cell(column(0), row)
                )));
            }
            let total = totals.entry(currency.clone()).or_default();
            total.opening += opening;
            total.debit += debit;
            total.credit += credit;
            total.closing += closing;
            rows.push(json!({
                "account": string_cell(column(0), row),
                "name": string_cell(column(1), row),
                "type": string_cell(column(2), row),
                "currency": currency,
                "opening_balance": display_amount(opening),
                "period_debit": display_amount(debit),
                "period_credit": display_amount(credit),
                "closing_balance": display_amount(closing),
            }));
        }
    }
    let totals: Vec<Value> = totals
        .into_iter()
        .map(|(currency, t)| {
            json!({
                "currency": currency,
                "opening_balance": display_amount(t.opening),
                "period_debit": display_amount(t.debit),
                "period_credit": display_amount(t.credit),
                "closing_balance": display_amount(t.closing),
            })
        })
        .collect();
    Ok(Json(
        json!({ "company": company, "period": period, "rows": rows, "totals": totals }),
    ))
}
