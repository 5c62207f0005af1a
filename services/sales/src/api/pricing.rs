//! Pricing over REST: price records per material and currency (list and customer-specific,
//! with quantity scales and validity), a material's tax classification, discounts and tax
//! rates per company, and the price a line would get, explained.
//!
//! - `POST /prices`, `GET /pricing/{material}`, `PUT /pricing/{material}/tax-classification`
//! - `POST /discounts`, `POST /tax-rates`, `GET /conditions`
//! - `GET /pricing/{material}/price?customer=&quantity=&date=`

use super::{commit, missing, path_material};
use crate::commands::{self, NewCondition, NewPrice};
use crate::conditions::{CompanyConditions, MaterialPricing};
use crate::customer::{CustomerNumber, TaxClassification};
use crate::pricing::{DiscountRecord, Reduction, ScaleStep, TaxRecord, Validity};
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
use tributary_kernel::master::Currency;
use tributary_kernel::module::CompanyQuery;
use tributary_materials::domain::{MaterialGroup, MaterialNumber};

/// Steps one quantity scale may have.
pub const SCALE_STEPS_MAX: usize = 50;

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post("/api/v1/prices", Permission(&PRICING_WRITE), record_price)
        .accepts::<PriceBody>()
        .get(
            "/api/v1/pricing/{material}",
            Permission(&MASTER_DATA_READ),
            get_pricing,
        )
        .put(
            "/api/v1/pricing/{material}/tax-classification",
            Permission(&PRICING_WRITE),
            set_tax_classification,
        )
        .accepts::<TaxClassificationBody>()
        .get(
            "/api/v1/pricing/{material}/price",
            Permission(&MASTER_DATA_READ),
            price_line,
        )
        .post(
            "/api/v1/discounts",
            Permission(&PRICING_WRITE),
            record_discount,
        )
        .accepts::<DiscountBody>()
        .post(
            "/api/v1/tax-rates",
            Permission(&PRICING_WRITE),
            record_tax_rate,
        )
        .accepts::<TaxRateBody>()
        .get(
            "/api/v1/conditions",
            Permission(&MASTER_DATA_READ),
            get_conditions,
        )
}

fn pricing_json(pricing: &MaterialPricing) -> Value {
    json!({
        "company": pricing.company,
        "material": pricing.material,
        "tax_classification": pricing.tax_classification.as_str(),
        "prices": pricing.prices,
    })
}

fn conditions_json(conditions: &CompanyConditions) -> Value {
    json!({
        "company": conditions.company,
        "discounts": conditions.discounts,
        "tax_rates": conditions.taxes,
    })
}

/// `valid_from` and `valid_to` of a record.
fn validity(checks: &mut Checks, from: &str, to: Option<&str>) -> Option<Validity> {
    let from = checks.date("valid_from", from);
    let to = match to {
        Some(to) => Some(checks.date("valid_to", to)?),
        None => None,
    };
    Some(Validity { from: from?, to })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScaleStepBody {
    /// A decimal number as a string; the first step starts at "0".
    #[schemars(with = "String")]
    from_quantity: Value,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    unit_price: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    company: Option<String>,
    material: String,
    currency: String,
    /// A customer's own price; a price list entry without.
    customer: Option<String>,
    valid_from: String,
    valid_to: Option<String>,
    /// One price for every quantity (or give `scale`).
    #[schemars(with = "Option<String>")]
    unit_price: Option<Value>,
    /// Prices by quantity in the material's base unit, ascending from quantity 0.
    scale: Option<Vec<ScaleStepBody>>,
}

async fn record_price(
    State(platform): State<Platform>,
    Command { body, request }: Command<PriceBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let material = checks.check(
        "material",
        "material_number",
        MaterialNumber::parse(&body.material),
    );
    let currency = checks.check("currency", "currency_code", Currency::parse(&body.currency));
    let customer = body
        .customer
        .as_deref()
        .and_then(|c| checks.check("customer", "customer_number", CustomerNumber::parse(c)));
    let validity = validity(&mut checks, &body.valid_from, body.valid_to.as_deref());
    let scale = match (&body.unit_price, &body.scale) {
        (Some(price), None) => checks
            .amount_or_zero("unit_price", Some(price))
            .map(|unit_price| {
                vec![ScaleStep {
                    from_quantity: rust_decimal::Decimal::ZERO,
                    unit_price,
                }]
            }),
        (None, Some(steps)) if !steps.is_empty() && steps.len() <= SCALE_STEPS_MAX => {
            let mut scale = Vec::new();
            for (index, step) in steps.iter().enumerate() {
                let from = checks.amount_or_zero(
                    &format!("scale[{index}].from_quantity"),
                    Some(&step.from_quantity),
                );
                let price = checks.amount_or_zero(
                    &format!("scale[{index}].unit_price"),
                    Some(&step.unit_price),
                );
                if let (Some(from_quantity), Some(unit_price)) = (from, price) {
                    scale.push(ScaleStep {
                        from_quantity,
                        unit_price,
                    });
                }
            }
            Some(scale)
        }
        (None, Some(_)) => {
            checks.fail(
                "scale",
                "items",
                format!("a scale has 1 to {SCALE_STEPS_MAX} steps"),
            );
            None
        }
        _ => {
            checks.fail(
                "unit_price",
                "unit_price_or_scale",
                "give either unit_price or scale",
            );
            None
        }
    };
    checks.finish()?;
    let (Some(company), Some(material), Some(currency), Some(validity), Some(scale)) =
        (company, material, currency, validity, scale)
    else {
        return Err(missing());
    };
    let new = NewPrice {
        company,
        material,
        currency,
        customer,
        validity,
        scale,
    };
    let decision = commands::record_price(&platform.store, new).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        |pricing| {
            let mut answer = pricing_json(pricing);
            answer["recorded"] = json!(pricing.prices.last());
            answer
        },
    )
    .await
}

async fn get_pricing(
    State(platform): State<Platform>,
    auth: Auth,
    Path(material): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let number = path_material(&material)?;
    let loaded = commands::material_pricing(&platform.store, &company, &number).await?;
    let pricing = loaded
        .state
        .ok_or_else(|| ApiError::not_found(format!("material {material} has no prices")))?;
    Ok(Json(pricing_json(&pricing)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TaxClassificationBody {
    company: Option<String>,
    /// `full`, `reduced` or `exempt`.
    tax_classification: String,
}

async fn set_tax_classification(
    State(platform): State<Platform>,
    Path(material): Path<String>,
    Command { body, request }: Command<TaxClassificationBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let class = checks.check(
        "tax_classification",
        "tax_classification",
        TaxClassification::parse(&body.tax_classification),
    );
    checks.finish()?;
    let number = path_material(&material)?;
    let (Some(company), Some(class)) = (company, class) else {
        return Err(missing());
    };
    let decision =
        commands::set_tax_classification(&platform.store, company, number, class).await?;
    commit(&platform, request, decision, StatusCode::OK, pricing_json).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DiscountBody {
    company: Option<String>,
    /// The customer it is for (with or without a material group).
    customer: Option<String>,
    /// The material group it is for (with or without a customer).
    material_group: Option<String>,
    valid_from: String,
    valid_to: Option<String>,
    /// Percent off the base price, e.g. "3" (or give `per_unit`).
    #[schemars(with = "Option<String>")]
    percent: Option<Value>,
    /// An amount off each unit, in `currency` (or give `percent`).
    #[schemars(with = "Option<String>")]
    per_unit: Option<Value>,
    /// The currency of a per-unit amount.
    currency: Option<String>,
}

async fn record_discount(
    State(platform): State<Platform>,
    Command { body, request }: Command<DiscountBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let customer = body
        .customer
        .as_deref()
        .and_then(|c| checks.check("customer", "customer_number", CustomerNumber::parse(c)));
    let group = body
        .material_group
        .as_deref()
        .and_then(|g| checks.check("material_group", "material_group", MaterialGroup::parse(g)));
    let validity = validity(&mut checks, &body.valid_from, body.valid_to.as_deref());
    let currency = body
        .currency
        .as_deref()
        .and_then(|c| checks.check("currency", "currency_code", Currency::parse(c)));
    let reduction = match (&body.percent, &body.per_unit) {
        (Some(percent), None) => {
            let percent = checks.required_amount("percent", Some(percent));
            if percent.is_some_and(|p| p >= rust_decimal::Decimal::ONE_HUNDRED) {
                checks.fail("percent", "percent_below_100", "must be below 100");
            }
            percent.map(Reduction::Percent)
        }
        (None, Some(amount)) => {
            if body.currency.is_none() {
                checks.fail(
                    "currency",
                    "required",
                    "an amount per unit is in a currency",
                );
            }
            checks
                .required_amount("per_unit", Some(amount))
                .map(Reduction::PerUnit)
        }
        _ => {
            checks.fail(
                "percent",
                "percent_or_per_unit",
                "give either percent or per_unit",
            );
            None
        }
    };
    checks.finish()?;
    let (Some(company), Some(validity), Some(reduction)) = (company, validity, reduction) else {
        return Err(missing());
    };
    let record = DiscountRecord {
        id: String::new(),
        customer: customer.map(|c| c.to_string()),
        material_group: group.map(|g| g.to_string()),
        currency: currency
            .filter(|_| matches!(reduction, Reduction::PerUnit(_)))
            .map(|c| c.to_string()),
        validity,
        reduction,
    };
    let decision =
        commands::record_condition(&platform.store, company, NewCondition::Discount(record))
            .await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        |conditions| {
            let mut answer = conditions_json(conditions);
            answer["recorded"] = json!(conditions.discounts.last());
            answer
        },
    )
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TaxRateBody {
    company: Option<String>,
    /// The customer's tax classification: `full`, `reduced` or `exempt`.
    customer_class: String,
    /// The material's tax classification: `full`, `reduced` or `exempt`.
    material_class: String,
    valid_from: String,
    valid_to: Option<String>,
    /// Percent of the net value, e.g. "19"; "0" for exempt.
    #[schemars(with = "String")]
    percent: Value,
}

async fn record_tax_rate(
    State(platform): State<Platform>,
    Command { body, request }: Command<TaxRateBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company =
        platform.requested_company(&mut checks, &request.auth, body.company.as_deref())?;
    let customer_class = checks.check(
        "customer_class",
        "tax_classification",
        TaxClassification::parse(&body.customer_class),
    );
    let material_class = checks.check(
        "material_class",
        "tax_classification",
        TaxClassification::parse(&body.material_class),
    );
    let validity = validity(&mut checks, &body.valid_from, body.valid_to.as_deref());
    let percent = checks.amount_or_zero("percent", Some(&body.percent));
    if percent.is_some_and(|p| p >= rust_decimal::Decimal::ONE_HUNDRED) {
        checks.fail("percent", "percent_below_100", "must be below 100");
    }
    checks.finish()?;
    let (Some(company), Some(customer_class), Some(material_class), Some(validity), Some(percent)) =
        (company, customer_class, material_class, validity, percent)
    else {
        return Err(missing());
    };
    let record = TaxRecord {
        id: String::new(),
        customer_class: customer_class.as_str().to_owned(),
        material_class: material_class.as_str().to_owned(),
        validity,
        percent,
    };
    let decision =
        commands::record_condition(&platform.store, company, NewCondition::TaxRate(record)).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        |conditions| {
            let mut answer = conditions_json(conditions);
            answer["recorded"] = json!(conditions.taxes.last());
            answer
        },
    )
    .await
}

async fn get_conditions(
    State(platform): State<Platform>,
    auth: Auth,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let loaded = commands::company_conditions(&platform.store, &company).await?;
    Ok(Json(loaded.state.map_or_else(
        || json!({"company": company, "discounts": [], "tax_rates": []}),
        |c| conditions_json(&c),
    )))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PriceQuery {
    company: Option<String>,
    customer: String,
    quantity: String,
    /// The pricing date (today without).
    date: Option<String>,
    /// The order currency (the customer's without).
    currency: Option<String>,
}

/// The price a line of `quantity` for `customer` would get on `date`, every step explained.
async fn price_line(
    State(platform): State<Platform>,
    auth: Auth,
    Path(material): Path<String>,
    Query(query): Query<PriceQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(
        &auth,
        &CompanyQuery {
            company: query.company.clone(),
        },
    )?;
    let mut checks = Checks::default();
    let customer = checks.check(
        "customer",
        "customer_number",
        CustomerNumber::parse(&query.customer),
    );
    let quantity = checks.required_amount("quantity", Some(&Value::String(query.quantity.clone())));
    let date = match &query.date {
        Some(date) => checks.date("date", date),
        None => Some(chrono::Utc::now().date_naive()),
    };
    let currency = query
        .currency
        .as_deref()
        .and_then(|c| checks.check("currency", "currency_code", Currency::parse(c)));
    let material = checks.check(
        "material",
        "material_number",
        MaterialNumber::parse(&material),
    );
    checks.finish()?;
    let (Some(customer), Some(quantity), Some(date), Some(material)) =
        (customer, quantity, date, material)
    else {
        return Err(missing());
    };
    let price = commands::price(
        &platform.store,
        &company,
        &customer,
        &material,
        currency,
        quantity,
        date,
    )
    .await?;
    Ok(Json(json!(price)))
}
