//! Finance read APIs answered from the lake: account balance and trial balance.
//! The SQL lives in `reads/`; parameters are bound, never spliced.

use crate::api::find_account;
use crate::domain::Period;
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::http::ApiError;
use tributary_kernel::lake::Cell;
use tributary_kernel::money::display_amount;

const TRIAL_BALANCE_SQL: &str = include_str!("../reads/trial_balance.sql");
const ACCOUNT_BALANCE_SQL: &str = include_str!("../reads/account_balance.sql");

/// The read routes (the query role).
pub fn router() -> Routes {
    use crate::permissions::BALANCE_READ;
    Routes::new()
        .get(
            "/api/v1/accounts/{number}/balance",
            Permission(&BALANCE_READ),
            account_balance,
        )
        .get(
            "/api/v1/trial-balance",
            Permission(&BALANCE_READ),
            trial_balance,
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceQuery {
    as_of: Option<String>,
    company: Option<String>,
}

fn text(value: &str) -> Cell<'static> {
    Cell::owned(value.to_owned())
}

fn text_cell(cell: &Cell<'_>) -> Option<String> {
    match cell {
        Cell::Null => None,
        other => other.to_json().as_str().map(str::to_owned),
    }
}

async fn account_balance(
    State(state): State<Platform>,
    auth: Auth,
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
    let company =
        crate::api::authorized_company(&state.store, &auth, query.company.as_deref()).await?;
    let account = find_account(&state.store, &company, &number).await?;
    let parameters = vec![
        text(company.as_str()),
        text(account.number.as_str()),
        text(account.currency.as_str()),
        Cell::Date(as_of.min(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(as_of))),
    ];
    let result = state.lake()?.rows(ACCOUNT_BALANCE_SQL, parameters).await?;
    let (mut debit, mut credit) = (Decimal::ZERO, Decimal::ZERO);
    for row in &result.rows {
        debit += row[0].decimal_or_zero();
        credit += row[1].decimal_or_zero();
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
    State(state): State<Platform>,
    auth: Auth,
    Query(query): Query<TrialBalanceQuery>,
) -> Result<Json<Value>, ApiError> {
    let period_text = query.period.ok_or_else(|| {
        ApiError::field("period", "required", "give the period as ?period=YYYY-MM")
    })?;
    let period = Period::parse(&period_text)
        .map_err(|rule| ApiError::field("period", "period_format", rule))?;
    let company =
        crate::api::authorized_company(&state.store, &auth, query.company.as_deref()).await?;
    let parameters = vec![text(company.as_str()), text(&period.to_string())];
    let result = state.lake()?.rows(TRIAL_BALANCE_SQL, parameters).await?;
    let mut rows = Vec::new();
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    for cells in &result.rows {
        let currency = text_cell(&cells[3]).unwrap_or_default();
        let (opening, debit, credit, closing) = (
            cells[4].decimal_or_zero(),
            cells[5].decimal_or_zero(),
            cells[6].decimal_or_zero(),
            cells[7].decimal_or_zero(),
        );
        // Protects what is reported: closing = opening + debit - credit, always.
        if closing != opening + debit - credit {
            return Err(ApiError::internal(&format!(
                "trial balance row for account {:?} does not roll forward: {opening} + {debit} - {credit} != {closing}",
                text_cell(&cells[0])
            )));
        }
        let total = totals.entry(currency.clone()).or_default();
        total.opening += opening;
        total.debit += debit;
        total.credit += credit;
        total.closing += closing;
        rows.push(json!({
            "account": text_cell(&cells[0]),
            "name": text_cell(&cells[1]),
            "type": text_cell(&cells[2]),
            "currency": currency,
            "opening_balance": display_amount(opening),
            "period_debit": display_amount(debit),
            "period_credit": display_amount(credit),
            "closing_balance": display_amount(closing),
        }));
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
