//! Sales commands: load what a command needs, decide, and plan the append (the API commits it
//! with the idempotency record). Quotations and orders: [`orders`].

mod billing;
mod deliveries;
mod orders;

pub use billing::*;
pub use deliveries::*;
pub use orders::*;

use crate::conditions::*;
use crate::customer::{
    Customer, CustomerCommand, CustomerNumber, TaxClassification, Violation, violation,
};
use crate::pricing::{
    Conditions, DiscountRecord, Line, Price, PriceRecord, PricingError, ScaleStep, TaxRecord,
    Validity, determine,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::master::{CompanyCode, Currency};
use tributary_kernel::store::{Decision, EventStore, StoreError};
use tributary_kernel::{Aggregate, RepositoryError};
use tributary_materials::domain::{Material, MaterialNumber};

#[derive(Debug, thiserror::Error)]
pub enum SalesError {
    #[error("rejected: {0:?}")]
    Rejected(Vec<Violation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A published query interface another context serves did not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl From<Vec<Violation>> for SalesError {
    fn from(violations: Vec<Violation>) -> Self {
        SalesError::Rejected(violations)
    }
}

/// One decided aggregate's writes, answering with its state after the events; `NotFound`
/// when there is none.
fn decision<A: Aggregate<State = Option<T>>, T>(
    loaded: &Loaded<A>,
    command: A::Command,
    what: &'static str,
    id: String,
) -> Result<Decision<T>, SalesError>
where
    SalesError: From<A::Rejection>,
{
    loaded
        .decide(command)?
        .decision(vec![], |state| state)
        .ok_or(SalesError::NotFound { what, id })
}

// ----- customers ------------------------------------------------------------------------------

pub fn customer_id(company: &CompanyCode, customer: &CustomerNumber) -> String {
    format!("{company}/{customer}")
}

pub async fn customer(
    store: &EventStore,
    company: &CompanyCode,
    number: &CustomerNumber,
) -> Result<Loaded<Customer>, SalesError> {
    Ok(aggregate::load::<Customer>(store, &customer_id(company, number)).await?)
}

pub async fn create_customer(
    store: &EventStore,
    new: Customer,
) -> Result<Decision<Customer>, SalesError> {
    let loaded = customer(store, &new.company, &new.number).await?;
    let id = new.number.to_string();
    decision(
        &loaded,
        CustomerCommand::Create(Box::new(new)),
        "customer",
        id,
    )
}

/// A credit limit change, a block or an unblock of an existing customer.
pub async fn change_customer(
    store: &EventStore,
    company: &CompanyCode,
    number: &CustomerNumber,
    command: CustomerCommand,
) -> Result<Decision<Customer>, SalesError> {
    let loaded = customer(store, company, number).await?;
    if loaded.state.is_none() {
        return Err(SalesError::NotFound {
            what: "customer",
            id: number.to_string(),
        });
    }
    decision(&loaded, command, "customer", number.to_string())
}

/// The customer a command names: 422 naming `field` when it does not exist.
pub async fn existing_customer(
    store: &EventStore,
    company: &CompanyCode,
    number: &CustomerNumber,
    field: &str,
) -> Result<Customer, SalesError> {
    customer(store, company, number)
        .await?
        .state
        .ok_or_else(|| {
            SalesError::Rejected(vec![violation(
                field,
                "customer_not_found",
                format!("customer {number} does not exist in company {company}"),
            )])
        })
}

/// The material a command names: 422 naming `field` when it does not exist.
pub async fn existing_material(
    store: &EventStore,
    company: &CompanyCode,
    number: &MaterialNumber,
    field: &str,
) -> Result<Material, SalesError> {
    let loaded = aggregate::load::<Material>(
        store,
        &tributary_materials::commands::material_id(company, number),
    )
    .await?;
    loaded.state.ok_or_else(|| {
        SalesError::Rejected(vec![violation(
            field,
            "material_not_found",
            format!("material {number} does not exist in company {company}"),
        )])
    })
}

// ----- pricing --------------------------------------------------------------------------------

pub fn material_pricing_id(company: &CompanyCode, material: &MaterialNumber) -> String {
    format!("{company}/{material}")
}

pub async fn material_pricing(
    store: &EventStore,
    company: &CompanyCode,
    material: &MaterialNumber,
) -> Result<Loaded<MaterialPricing>, SalesError> {
    Ok(aggregate::load::<MaterialPricing>(store, &material_pricing_id(company, material)).await?)
}

pub async fn company_conditions(
    store: &EventStore,
    company: &CompanyCode,
) -> Result<Loaded<CompanyConditions>, SalesError> {
    Ok(aggregate::load::<CompanyConditions>(store, company.as_str()).await?)
}

/// A price record as a command gives it (the id is numbered here).
pub struct NewPrice {
    pub company: CompanyCode,
    pub material: MaterialNumber,
    pub currency: Currency,
    pub customer: Option<CustomerNumber>,
    pub validity: Validity,
    pub scale: Vec<ScaleStep>,
}

/// Records a price for an existing material (and customer, whose currency it must be in).
pub async fn record_price(
    store: &EventStore,
    new: NewPrice,
) -> Result<Decision<MaterialPricing>, SalesError> {
    existing_material(store, &new.company, &new.material, "material").await?;
    if let Some(number) = &new.customer {
        let customer = existing_customer(store, &new.company, number, "customer").await?;
        if customer.currency != new.currency {
            return Err(SalesError::Rejected(vec![violation(
                "currency",
                "currency_mismatch",
                format!(
                    "customer {number} buys in {}, not {}",
                    customer.currency, new.currency
                ),
            )]));
        }
    }
    let loaded = material_pricing(store, &new.company, &new.material).await?;
    let record = PriceRecord {
        id: MaterialPricing::next_price_id(
            &loaded.state,
            new.material.as_str(),
            new.currency.as_str(),
        ),
        material: new.material.to_string(),
        currency: new.currency.to_string(),
        customer: new.customer.map(|c| c.to_string()),
        validity: new.validity,
        scale: new.scale,
    };
    let command = MaterialPricingCommand::RecordPrice {
        company: new.company,
        record,
    };
    decision(&loaded, command, "material", new.material.to_string())
}

pub async fn set_tax_classification(
    store: &EventStore,
    company: CompanyCode,
    material: MaterialNumber,
    tax_classification: TaxClassification,
) -> Result<Decision<MaterialPricing>, SalesError> {
    existing_material(store, &company, &material, "material").await?;
    let loaded = material_pricing(store, &company, &material).await?;
    let command = MaterialPricingCommand::SetTaxClassification {
        company,
        material: material.to_string(),
        tax_classification,
    };
    decision(&loaded, command, "material", material.to_string())
}

/// A discount or a tax rate, numbered here; a discount's customer must exist.
pub async fn record_condition(
    store: &EventStore,
    company: CompanyCode,
    condition: NewCondition,
) -> Result<Decision<CompanyConditions>, SalesError> {
    let loaded = company_conditions(store, &company).await?;
    let (discount_id, tax_id) = CompanyConditions::next_ids(&loaded.state);
    let command = match condition {
        NewCondition::Discount(mut record) => {
            if let Some(customer) = &record.customer {
                let number = CustomerNumber::parse(customer).map_err(|detail| {
                    SalesError::Rejected(vec![violation("customer", "customer_number", detail)])
                })?;
                existing_customer(store, &company, &number, "customer").await?;
            }
            record.id = discount_id;
            ConditionsCommand::RecordDiscount { company, record }
        }
        NewCondition::TaxRate(mut record) => {
            record.id = tax_id;
            ConditionsCommand::RecordTaxRate { company, record }
        }
    };
    decision(&loaded, command, "conditions", String::new())
}

pub enum NewCondition {
    Discount(DiscountRecord),
    TaxRate(TaxRecord),
}

/// The price of `quantity` of `material` for `customer` on `date`, in the customer's currency
/// (a `currency` named must be it).
#[allow(clippy::too_many_arguments)]
pub async fn price(
    store: &EventStore,
    company: &CompanyCode,
    customer: &CustomerNumber,
    material: &MaterialNumber,
    currency: Option<Currency>,
    quantity: Decimal,
    date: NaiveDate,
) -> Result<Price, SalesError> {
    let customer = existing_customer(store, company, customer, "customer").await?;
    if let Some(currency) = currency.filter(|c| *c != customer.currency) {
        return Err(SalesError::Rejected(vec![violation(
            "currency",
            "currency_mismatch",
            format!(
                "customer {} buys in {}, not {currency}",
                customer.number, customer.currency
            ),
        )]));
    }
    let material = existing_material(store, company, material, "material").await?;
    let pricing = material_pricing(store, company, &material.number)
        .await?
        .state;
    let conditions = company_conditions(store, company).await?.state;
    let line = PricedLine {
        customer: &customer,
        material: &material,
        pricing: pricing.as_ref(),
        quantity,
        date,
    };
    line.price(conditions.as_ref(), "material")
        .map_err(|v| SalesError::Rejected(vec![v]))
}

/// What pricing one line needs, loaded.
pub struct PricedLine<'a> {
    pub customer: &'a Customer,
    pub material: &'a Material,
    pub pricing: Option<&'a MaterialPricing>,
    pub quantity: Decimal,
    pub date: NaiveDate,
}

impl PricedLine<'_> {
    /// The line's price from its material's records and the company's conditions; a missing
    /// price or tax rate, or overlapping records, break a rule named on `field`.
    pub fn price(
        &self,
        conditions: Option<&CompanyConditions>,
        field: &str,
    ) -> Result<Price, Violation> {
        let records = Conditions {
            prices: self.pricing.map(|p| p.prices.clone()).unwrap_or_default(),
            discounts: conditions.map(|c| c.discounts.clone()).unwrap_or_default(),
            taxes: conditions.map(|c| c.taxes.clone()).unwrap_or_default(),
        };
        let material_class = self
            .pricing
            .map_or(TaxClassification::Full, |p| p.tax_classification);
        let line = Line {
            customer: self.customer.number.as_str(),
            customer_tax_class: self.customer.tax_classification.as_str(),
            material: self.material.number.as_str(),
            material_group: self.material.material_group.as_ref().map(|g| g.as_str()),
            material_tax_class: material_class.as_str(),
            currency: self.customer.currency.as_str(),
            quantity: self.quantity,
            pricing_date: self.date,
        };
        determine(&records, &line).map_err(|error| {
            let rule = match error {
                PricingError::NoPrice { .. } => "no_price",
                PricingError::NoTaxRate { .. } => "no_tax_rate",
                PricingError::Overlap { .. } => "condition_overlap",
            };
            violation(field, rule, error.to_string())
        })
    }
}
