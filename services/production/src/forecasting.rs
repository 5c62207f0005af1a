//! Demand planning from the sales history in the lake (the query role):
//!
//! - `GET /api/v1/plants/{plant}/materials/{material}/forecast?method=&bucket=&history=&horizon=…`:
//!   the history (ordered quantities of sales order lines not cancelled, by requested date, per
//!   week or month), each period's one-step-ahead fit, the forecast and its MAPE
//! - `POST …/forecast/release` (same parameters in the body): the forecast released as planned
//!   independent requirements on each forecast bucket's first day (the first on `as_of`;
//!   negative forecasts as none), which MRP then plans. Requirements are not consumed by the
//!   sales orders that come in against them: MRP counts both
//!
//! Methods: `moving_average` (`window`), `exponential_smoothing` (Holt-Winters: `alpha`,
//! `beta`, `gamma`, `season` in buckets; no season is Holt's trend-adjusted smoothing). The
//! history ends before the bucket of `as_of` (today when left out): only whole buckets count.

use crate::CONTEXT;
use crate::api::{command_company, path_keys};
use crate::forecast::{self, Fit, Smoothing};
use crate::master::{REQUIREMENTS_MAX, SetRequirements};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, Duration, Months, NaiveDate};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tributary_kernel::Platform;
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::http::ApiError;
use tributary_kernel::lake::Cell;
use tributary_kernel::master::CompanyCode;
use tributary_materials::domain::{MaterialNumber, PlantCode};

const HISTORY_SQL: &str = include_str!("../reads/sales_history.sql");
/// Buckets of history one forecast reads at most (three years of weeks).
const HISTORY_MAX: u32 = 156;
/// Buckets one forecast looks ahead at most (two years of weeks).
const HORIZON_MAX: u32 = 104;

pub fn router() -> Routes {
    use crate::permissions::{MASTER_DATA_READ, REQUIREMENTS_WRITE};
    Routes::new()
        .get(
            "/api/v1/plants/{plant}/materials/{material}/forecast",
            Permission(&MASTER_DATA_READ),
            get_forecast,
        )
        .post(
            "/api/v1/plants/{plant}/materials/{material}/forecast/release",
            Permission(&REQUIREMENTS_WRITE),
            release,
        )
        .accepts::<ForecastParameters>()
}

/// A forecast's parameters: the query of a GET, the body of a release. Decimals as strings.
#[derive(Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ForecastParameters {
    company: Option<String>,
    /// `moving_average` or `exponential_smoothing`.
    method: String,
    /// `week` or `month` (default).
    #[serde(default)]
    bucket: Option<String>,
    /// Buckets of history (default 24, at most 156).
    #[serde(default)]
    history: Option<u32>,
    /// Buckets ahead (default 6, at most 104).
    #[serde(default)]
    horizon: Option<u32>,
    /// Moving average: buckets averaged (default 3).
    #[serde(default)]
    window: Option<u32>,
    /// Exponential smoothing: the season's length in buckets (0: none; default 12 for months,
    /// 0 for weeks).
    #[serde(default)]
    season: Option<u32>,
    /// Exponential smoothing: level, trend and season constants, 0 to 1 (defaults 0.3, 0.1,
    /// 0.2).
    #[serde(default)]
    alpha: Option<String>,
    #[serde(default)]
    beta: Option<String>,
    #[serde(default)]
    gamma: Option<String>,
    /// YYYY-MM-DD: the first forecast bucket is the one holding it (default today).
    #[serde(default)]
    as_of: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Week,
    Month,
}

impl Bucket {
    fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Bucket::Month => date.with_day(1).unwrap_or(date),
        }
    }

    /// The start of the bucket `offset` buckets from the one starting on `start`.
    fn shift(self, start: NaiveDate, offset: i64) -> NaiveDate {
        match self {
            Bucket::Week => start + Duration::weeks(offset),
            Bucket::Month => {
                let months = Months::new(u32::try_from(offset.unsigned_abs()).unwrap_or(0));
                if offset >= 0 {
                    start.checked_add_months(months)
                } else {
                    start.checked_sub_months(months)
                }
                .unwrap_or(start)
            }
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }
}

enum Method {
    MovingAverage(usize),
    Smoothing(Smoothing),
}

/// What a forecast is made of, checked.
struct Request {
    company: CompanyCode,
    plant: PlantCode,
    material: MaterialNumber,
    method: Method,
    bucket: Bucket,
    history: u32,
    horizon: u32,
    as_of: NaiveDate,
}

fn constant(checks: &mut Checks, field: &str, given: Option<&str>, default: Decimal) -> Decimal {
    let Some(text) = given else {
        return default;
    };
    match text.trim().parse::<Decimal>() {
        Ok(value) if (Decimal::ZERO..=Decimal::ONE).contains(&value) => value,
        _ => {
            checks.fail(field, "constant_range", "a smoothing constant is 0 to 1");
            default
        }
    }
}

fn within(
    checks: &mut Checks,
    field: &str,
    given: Option<u32>,
    default: u32,
    range: (u32, u32),
) -> u32 {
    let value = given.unwrap_or(default);
    if value < range.0 || value > range.1 {
        checks.fail(
            field,
            "buckets_range",
            format!("{field} is {} to {} buckets", range.0, range.1),
        );
    }
    value
}

fn request(
    checks: &mut Checks,
    company: Option<CompanyCode>,
    plant: PlantCode,
    material: MaterialNumber,
    p: &ForecastParameters,
) -> Result<Request, ApiError> {
    let bucket = match p.bucket.as_deref() {
        None | Some("month") => Bucket::Month,
        Some("week") => Bucket::Week,
        Some(other) => {
            checks.fail(
                "bucket",
                "bucket_size",
                format!("{other:?} is not week or month"),
            );
            Bucket::Month
        }
    };
    let history = within(checks, "history", p.history, 24, (1, HISTORY_MAX));
    let horizon = within(
        checks,
        "horizon",
        p.horizon,
        6,
        (1, HORIZON_MAX.min(REQUIREMENTS_MAX as u32)),
    );
    let method = match p.method.as_str() {
        "moving_average" => {
            Method::MovingAverage(
                within(checks, "window", p.window, 3, (1, history.max(1))) as usize
            )
        }
        "exponential_smoothing" => {
            let default_season = if bucket == Bucket::Month { 12 } else { 0 };
            let season = within(checks, "season", p.season, default_season, (0, 52));
            if season == 1 || (season >= 2 && history < 2 * season) {
                checks.fail(
                    "season",
                    "season_length",
                    format!("a season of {season} buckets needs 2 or more buckets and two seasons of history ({} buckets)", 2 * season),
                );
            }
            Method::Smoothing(Smoothing {
                alpha: constant(checks, "alpha", p.alpha.as_deref(), Decimal::new(3, 1)),
                beta: constant(checks, "beta", p.beta.as_deref(), Decimal::new(1, 1)),
                gamma: constant(checks, "gamma", p.gamma.as_deref(), Decimal::new(2, 1)),
                season: season as usize,
            })
        }
        other => {
            checks.fail(
                "method",
                "forecast_method",
                format!("{other:?} is not moving_average or exponential_smoothing"),
            );
            Method::MovingAverage(1)
        }
    };
    let as_of = match p.as_of.as_deref() {
        None => Some(chrono::Utc::now().date_naive()),
        Some(text) => checks.date("as_of", text),
    };
    let taken = std::mem::take(checks);
    taken.finish()?;
    let (Some(company), Some(as_of)) = (company, as_of) else {
        return Err(ApiError::missing_fields());
    };
    Ok(Request {
        company,
        plant,
        material,
        method,
        bucket,
        history,
        horizon,
        as_of,
    })
}

/// The forecast of a request: history per bucket, the fit, and the forecast buckets' starts.
struct Forecasted {
    history: Vec<(NaiveDate, Decimal)>,
    fit: Fit,
    ahead: Vec<NaiveDate>,
}

async fn forecasted(platform: &Platform, request: &Request) -> Result<Forecasted, ApiError> {
    let first_ahead = request.bucket.start_of(request.as_of);
    let starts: Vec<NaiveDate> = (0..request.history)
        .map(|k| {
            request
                .bucket
                .shift(first_ahead, i64::from(k) - i64::from(request.history))
        })
        .collect();
    let rows = platform
        .lake()?
        .rows(
            HISTORY_SQL,
            vec![
                Cell::owned(request.company.to_string()),
                Cell::owned(request.plant.to_string()),
                Cell::owned(request.material.to_string()),
                Cell::Date(starts[0]),
                Cell::Date(first_ahead),
            ],
        )
        .await?;
    let mut by_bucket: BTreeMap<NaiveDate, Decimal> =
        starts.iter().map(|s| (*s, Decimal::ZERO)).collect();
    for row in &rows.rows {
        if let (Some(Cell::Date(date)), Some(quantity)) = (row.first(), row.get(1)) {
            *by_bucket.entry(request.bucket.start_of(*date)).or_default() +=
                quantity.decimal_or_zero();
        }
    }
    let history: Vec<(NaiveDate, Decimal)> = by_bucket.into_iter().collect();
    let quantities: Vec<Decimal> = history.iter().map(|(_, q)| *q).collect();
    let horizon = request.horizon as usize;
    let fit = match &request.method {
        Method::MovingAverage(window) => forecast::moving_average(&quantities, *window, horizon),
        Method::Smoothing(smoothing) => forecast::smooth(&quantities, *smoothing, None, horizon),
    }
    .map_err(|error| ApiError::field("history", "forecast_history", error.to_string()))?;
    let ahead = (0..request.horizon)
        .map(|k| request.bucket.shift(first_ahead, i64::from(k)))
        .collect();
    Ok(Forecasted {
        history,
        fit,
        ahead,
    })
}

fn rounded(value: Decimal) -> Decimal {
    value.round_dp(3)
}

fn method_json(request: &Request) -> Value {
    match &request.method {
        Method::MovingAverage(window) => json!({"method": "moving_average", "window": window}),
        Method::Smoothing(s) => json!({"method": "exponential_smoothing", "alpha": s.alpha,
                                       "beta": s.beta, "gamma": s.gamma, "season": s.season}),
    }
}

fn forecast_json(request: &Request, forecasted: &Forecasted) -> Value {
    json!({
        "company": request.company,
        "plant": request.plant,
        "material": request.material,
        "bucket": request.bucket.as_str(),
        "parameters": method_json(request),
        "mape": forecasted.fit.mape,
        "history": forecasted.history.iter().zip(&forecasted.fit.fitted).map(|((start, quantity), fitted)| json!({
            "bucket_start": start, "quantity": quantity, "fitted": fitted.map(rounded),
        })).collect::<Vec<_>>(),
        "forecast": forecasted.ahead.iter().zip(&forecasted.fit.forecast).map(|(start, quantity)| json!({
            "bucket_start": start, "quantity": rounded(*quantity),
        })).collect::<Vec<_>>(),
    })
}

async fn get_forecast(
    State(platform): State<Platform>,
    auth: Auth,
    Path((plant, material)): Path<(String, String)>,
    Query(parameters): Query<ForecastParameters>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(
        &auth,
        &tributary_kernel::module::CompanyQuery {
            company: parameters.company.clone(),
        },
    )?;
    let (plant, material) = path_keys(&plant, &material)?;
    let mut checks = Checks::default();
    let request = request(&mut checks, Some(company), plant, material, &parameters)?;
    let forecasted = forecasted(&platform, &request).await?;
    Ok(Json(forecast_json(&request, &forecasted)))
}

async fn release(
    State(platform): State<Platform>,
    Path((plant, material)): Path<(String, String)>,
    Command {
        body,
        request: command,
    }: Command<ForecastParameters>,
) -> Result<Response, ApiError> {
    let (plant, material) = path_keys(&plant, &material)?;
    let mut checks = Checks::default();
    let company = command_company(&platform, &mut checks, &command, body.company.as_deref())?;
    let request = request(&mut checks, company, plant, material, &body)?;
    let forecasted = forecasted(&platform, &request).await?;
    let entries = forecasted
        .ahead
        .iter()
        .zip(&forecasted.fit.forecast)
        // The bucket holding `as_of` from `as_of` on: nothing is required in the past.
        .map(|(start, quantity)| {
            (
                (*start).max(request.as_of),
                rounded(*quantity).max(Decimal::ZERO),
            )
        })
        .collect();
    let source = format!(
        "forecast {} as of {} (MAPE {})",
        method_json(&request)["method"].as_str().unwrap_or_default(),
        request.as_of,
        forecasted
            .fit
            .mape
            .map_or("none".to_owned(), |m| format!("{m} %"))
    );
    let decision = crate::commands::set_requirements(
        &platform.store,
        SetRequirements {
            company: request.company.clone(),
            plant: request.plant.clone(),
            material: request.material.clone(),
            entries,
            source,
        },
    )
    .await?;
    let body = forecast_json(&request, &forecasted);
    platform
        .commit(CONTEXT, command, decision, StatusCode::OK, move |of| {
            let mut body = body;
            body["released"] = crate::api::requirements_json(of);
            body
        })
        .await
}
