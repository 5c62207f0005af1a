//! Materials REST API under `/api/v1`: routes and DTOs only. Decimals are JSON strings.
//!
//! - `POST /plants`, `GET /plants/{plant}`, `POST /plants/{plant}/storage-locations`
//! - `POST /materials` (with the plants it is valued in), `GET /materials/{material}`
//! - `POST /vendors`, `GET /vendors/{vendor}`
//! - purchase orders, goods movements and stock: [`purchasing`]
//!
//! `company` may be left out: the installation's default company is meant.

mod invoicing;
mod purchasing;

use crate::CONTEXT;
use crate::commands::{self, MaterialsError};
use crate::domain::*;
use crate::valuation::ValuationMethod;
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
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use tributary_kernel::module::CompanyQuery;
use tributary_kernel::store::Decision;

/// Alternative units one material may have.
pub const ALTERNATIVE_UNITS_MAX: usize = 20;
/// Plants one request may value a material in.
pub const PLANTS_MAX: usize = 100;

impl From<MaterialsError> for ApiError {
    fn from(error: MaterialsError) -> Self {
        match error {
            MaterialsError::Rejected(violations) => ApiError::validation(
                violations
                    .iter()
                    .map(|v| FieldError::new(v.field(), v.rule(), v.to_string()))
                    .collect(),
            ),
            MaterialsError::NotFound { what, id } => {
                ApiError::not_found(format!("{what} {id} does not exist"))
            }
            MaterialsError::Store(error) => error.into(),
            error @ MaterialsError::Repository(_) => ApiError::internal(&error),
        }
    }
}

pub fn router() -> Routes {
    use crate::permissions::*;
    Routes::new()
        .post("/api/v1/plants", Permission(&PLANT_WRITE), create_plant)
        .accepts::<CreatePlantBody>()
        .get(
            "/api/v1/plants/{plant}",
            Permission(&MASTER_DATA_READ),
            get_plant,
        )
        .post(
            "/api/v1/plants/{plant}/storage-locations",
            Permission(&PLANT_WRITE),
            add_storage_location,
        )
        .accepts::<AddLocationBody>()
        .post(
            "/api/v1/materials",
            Permission(&MATERIAL_WRITE),
            create_material,
        )
        .accepts::<CreateMaterialBody>()
        .get(
            "/api/v1/materials/{material}",
            Permission(&MASTER_DATA_READ),
            get_material,
        )
        .post("/api/v1/vendors", Permission(&VENDOR_WRITE), create_vendor)
        .accepts::<CreateVendorBody>()
        .get(
            "/api/v1/vendors/{vendor}",
            Permission(&MASTER_DATA_READ),
            get_vendor,
        )
        .merge(purchasing::router())
        .merge(invoicing::router())
}

/// The company a request names, or the installation's default; 403 before anything is
/// looked up when the caller may not act there.
fn company(
    checks: &mut Checks,
    platform: &Platform,
    auth: &Auth,
    requested: Option<&str>,
) -> Result<Option<CompanyCode>, ApiError> {
    platform.requested_company(checks, auth, requested)
}

tributary_kernel::of_company! {
    Plant => |it| &it.company,
    Material => |it| &it.company,
    Vendor => |it| &it.company,
    crate::domain::PurchaseOrder => |it| &it.company,
    crate::domain::VendorInvoice => |it| &it.company,
    crate::domain::VendorPayment => |it| &it.company,
    commands::PostedMovements => |it| &it.stock.company,
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

// ----- plants ---------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreatePlantBody {
    company: Option<String>,
    code: String,
    name: String,
    currency: String,
}

fn plant_json(plant: &Plant) -> Value {
    json!({
        "company": plant.company,
        "code": plant.code,
        "name": plant.name,
        "currency": plant.currency,
        "storage_locations": plant.locations.iter()
            .map(|(code, name)| json!({"code": code, "name": name}))
            .collect::<Vec<_>>(),
    })
}

async fn create_plant(
    State(platform): State<Platform>,
    Command { body, request }: Command<CreatePlantBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let code = checks.check("code", "plant_code", PlantCode::parse(&body.code));
    let name = checks.text("name", Some(body.name), NAME_LENGTH_MAX, true);
    let currency = checks.check("currency", "currency_code", Currency::parse(&body.currency));
    checks.finish()?;
    let (Some(company), Some(code), Some(name), Some(currency)) = (company, code, name, currency)
    else {
        return Err(missing());
    };
    let decision = commands::create_plant(&platform.store, company, code, name, currency).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        plant_json,
    )
    .await
}

async fn get_plant(
    State(platform): State<Platform>,
    auth: Auth,
    Path(code): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let not_found = || ApiError::not_found(format!("plant {code} does not exist"));
    let parsed = PlantCode::parse(&code).map_err(|_| not_found())?;
    let loaded = commands::plant(&platform.store, &company, &parsed).await?;
    Ok(Json(plant_json(&loaded.state.ok_or_else(not_found)?)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddLocationBody {
    company: Option<String>,
    code: String,
    name: String,
}

async fn add_storage_location(
    State(platform): State<Platform>,
    Path(plant): Path<String>,
    Command { body, request }: Command<AddLocationBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let location = checks.check("code", "location_code", LocationCode::parse(&body.code));
    let name = checks.text("name", Some(body.name), NAME_LENGTH_MAX, true);
    checks.finish()?;
    let plant = PlantCode::parse(&plant)
        .map_err(|_| ApiError::not_found(format!("plant {plant} does not exist")))?;
    let (Some(company), Some(location), Some(name)) = (company, location, name) else {
        return Err(missing());
    };
    let decision =
        commands::add_storage_location(&platform.store, company, plant, location, name).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        plant_json,
    )
    .await
}

// ----- materials ------------------------------------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct UnitBody {
    unit: String,
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "String")]
    factor: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PlantValuationBody {
    plant: String,
    valuation_method: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateMaterialBody {
    company: Option<String>,
    number: String,
    description: String,
    base_unit: String,
    #[serde(default)]
    alternative_units: Vec<UnitBody>,
    #[serde(rename = "type")]
    material_type: String,
    group: Option<String>,
    valuation_class: String,
    #[serde(default)]
    plants: Vec<PlantValuationBody>,
}

fn material_json(material: &Material) -> Value {
    json!({
        "company": material.company,
        "number": material.number,
        "description": material.description,
        "base_unit": material.base_unit,
        "alternative_units": material.alternative_units.iter()
            .map(|c| json!({"unit": c.unit, "factor": c.factor}))
            .collect::<Vec<_>>(),
        "type": material.material_type.as_str(),
        "group": material.material_group,
        "valuation_class": material.valuation_class,
        "plants": material.plants.iter()
            .map(|(plant, method)| json!({"plant": plant, "valuation_method": method.as_str()}))
            .collect::<Vec<_>>(),
    })
}

async fn create_material(
    State(platform): State<Platform>,
    Command { body, request }: Command<CreateMaterialBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let number = checks.check(
        "number",
        "material_number",
        MaterialNumber::parse(&body.number),
    );
    let description = checks.text("description", Some(body.description), NAME_LENGTH_MAX, true);
    let base_unit = checks.check(
        "base_unit",
        "unit_code",
        UnitOfMeasure::parse(&body.base_unit),
    );
    if body.alternative_units.len() > ALTERNATIVE_UNITS_MAX {
        checks.fail(
            "alternative_units",
            "max_items",
            format!("at most {ALTERNATIVE_UNITS_MAX} alternative units"),
        );
    }
    let mut alternative_units = Vec::new();
    for (index, unit) in body
        .alternative_units
        .iter()
        .enumerate()
        .take(ALTERNATIVE_UNITS_MAX)
    {
        let field = |name: &str| format!("alternative_units[{index}].{name}");
        let code = checks.check(
            &field("unit"),
            "unit_code",
            UnitOfMeasure::parse(&unit.unit),
        );
        let factor = checks.required_amount(&field("factor"), Some(&unit.factor));
        if let (Some(unit), Some(factor)) = (code, factor) {
            alternative_units.push(UnitConversion { unit, factor });
        }
    }
    let material_type = checks.check(
        "type",
        "material_type",
        MaterialType::parse(&body.material_type),
    );
    let group = body
        .group
        .as_deref()
        .and_then(|g| checks.check("group", "material_group", MaterialGroup::parse(g)));
    let valuation_class = checks.check(
        "valuation_class",
        "valuation_class",
        ValuationClass::parse(&body.valuation_class),
    );
    if body.plants.len() > PLANTS_MAX {
        checks.fail(
            "plants",
            "max_items",
            format!("at most {PLANTS_MAX} plants"),
        );
    }
    let mut plants = Vec::new();
    for (index, plant) in body.plants.iter().enumerate().take(PLANTS_MAX) {
        let field = |name: &str| format!("plants[{index}].{name}");
        let code = checks.check(
            &field("plant"),
            "plant_code",
            PlantCode::parse(&plant.plant),
        );
        let method = checks.check(
            &field("valuation_method"),
            "valuation_method",
            ValuationMethod::parse(&plant.valuation_method),
        );
        if let Some(code) = &code
            && plants.iter().any(|(_, c, _)| c == code)
        {
            checks.fail(field("plant"), "plant_twice", "the plant is listed twice");
        }
        if let (Some(code), Some(method)) = (code, method) {
            plants.push((field("plant"), code, method));
        }
    }
    checks.finish()?;
    let (
        Some(company),
        Some(number),
        Some(description),
        Some(base_unit),
        Some(material_type),
        Some(valuation_class),
    ) = (
        company,
        number,
        description,
        base_unit,
        material_type,
        valuation_class,
    )
    else {
        return Err(missing());
    };
    let new = NewMaterial {
        company,
        number,
        description,
        base_unit,
        alternative_units,
        material_type,
        material_group: group,
        valuation_class,
    };
    let decision = commands::create_material(&platform.store, new, plants).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        material_json,
    )
    .await
}

async fn get_material(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let not_found = || ApiError::not_found(format!("material {number} does not exist"));
    let parsed = MaterialNumber::parse(&number).map_err(|_| not_found())?;
    let loaded = commands::material(&platform.store, &company, &parsed).await?;
    Ok(Json(material_json(&loaded.state.ok_or_else(not_found)?)))
}

// ----- vendors --------------------------------------------------------------------------------

/// Payment terms as a request gives them (vendors', customers').
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsBody {
    #[serde(default)]
    /// A decimal number as a string, e.g. "12.50".
    #[schemars(with = "Option<String>")]
    pub discount_percent: Option<Value>,
    #[serde(default)]
    pub discount_days: u32,
    pub net_days: u32,
}

impl TermsBody {
    /// The terms, their broken rules checked into `checks` under `field`.
    pub fn parse(&self, checks: &mut Checks, field: &str) -> PaymentTerms {
        let percent_field = format!("{field}.discount_percent");
        let discount_percent = checks
            .amount(&percent_field, self.discount_percent.as_ref())
            .unwrap_or_default();
        if discount_percent >= rust_decimal::Decimal::ONE_HUNDRED {
            checks.fail(percent_field, "percent_below_100", "must be below 100");
        }
        if self.discount_days > self.net_days {
            checks.fail(
                format!("{field}.discount_days"),
                "discount_within_net",
                "the discount period cannot end after the net due date",
            );
        }
        PaymentTerms {
            discount_percent,
            discount_days: self.discount_days,
            net_days: self.net_days,
        }
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateVendorBody {
    company: Option<String>,
    number: String,
    name: String,
    currency: String,
    payment_terms: TermsBody,
    /// The IBAN the vendor is paid to.
    #[serde(default)]
    bank_account: Option<String>,
}

/// A vendor as answered: the bank account masked, unless `bank_account` is its clear value
/// (for holders of materials.vendor.bank_account.read).
fn vendor_json_with(vendor: &Vendor, bank_account: Option<String>) -> Value {
    json!({
        "company": vendor.company,
        "number": vendor.number,
        "name": vendor.name,
        "currency": vendor.currency,
        "payment_terms": {
            "discount_percent": vendor.payment_terms.discount_percent,
            "discount_days": vendor.payment_terms.discount_days,
            "net_days": vendor.payment_terms.net_days,
        },
        "bank_account": bank_account
            .or_else(|| vendor.bank_account.as_ref().map(|b| b.masked.clone())),
    })
}

fn vendor_json(vendor: &Vendor) -> Value {
    vendor_json_with(vendor, None)
}

async fn create_vendor(
    State(platform): State<Platform>,
    Command { body, request }: Command<CreateVendorBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let company = company(
        &mut checks,
        &platform,
        &request.auth,
        body.company.as_deref(),
    )?;
    let number = checks.check("number", "vendor_number", VendorNumber::parse(&body.number));
    let name = checks.text("name", Some(body.name), NAME_LENGTH_MAX, true);
    let currency = checks.check("currency", "currency_code", Currency::parse(&body.currency));
    let iban = body
        .bank_account
        .as_deref()
        .and_then(|text| checks.check("bank_account", "iban", parse_iban(text)));
    let payment_terms = body.payment_terms.parse(&mut checks, "payment_terms");
    checks.finish()?;
    let (Some(company), Some(number), Some(name), Some(currency)) =
        (company, number, name, currency)
    else {
        return Err(missing());
    };
    let bank_account = match iban {
        Some(iban) => Some(
            platform
                .field_keys()?
                .seal_masked(VENDOR_BANK_ACCOUNT_FIELD, &iban),
        ),
        None => None,
    };
    let vendor = Vendor {
        company,
        number,
        name,
        currency,
        bank_account,
        payment_terms,
    };
    let decision = commands::create_vendor(&platform.store, vendor).await?;
    commit(
        &platform,
        request,
        decision,
        StatusCode::CREATED,
        vendor_json,
    )
    .await
}

async fn get_vendor(
    State(platform): State<Platform>,
    auth: Auth,
    Path(number): Path<String>,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = platform.queried_company(&auth, &query)?;
    let not_found = || ApiError::not_found(format!("vendor {number} does not exist"));
    let parsed = VendorNumber::parse(&number).map_err(|_| not_found())?;
    let loaded = commands::vendor(&platform.store, &company, &parsed).await?;
    let vendor = loaded.state.ok_or_else(not_found)?;
    let clear = platform.open_sealed(
        &auth,
        &crate::permissions::VENDOR_BANK_ACCOUNT_READ,
        &company,
        VENDOR_BANK_ACCOUNT_FIELD,
        vendor.bank_account.as_ref(),
    )?;
    Ok(Json(vendor_json_with(&vendor, clear)))
}
