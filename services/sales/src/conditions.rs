//! Condition records as aggregates: a material's sales data (`sales.material_pricing`, one per
//! company and material: its tax classification and its price records, list and
//! customer-specific, in every currency) and a company's discounts and tax rates
//! (`sales.conditions`, one per company). Records are numbered as they come and never change;
//! one that would share a day with another of the same keys is refused, naming it. Orders load
//! the pricing of their materials and the company's conditions, nothing more.

use crate::customer::TaxClassification;
use crate::pricing::{DiscountRecord, PriceRecord, Record, TaxRecord, overlap};
use serde::{Deserialize, Serialize};
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::master::CompanyCode;

use crate::customer::{Violation, violation};

// ----- a material's sales data ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaterialPricingEvent {
    PriceRecorded {
        company: CompanyCode,
        material: String,
        record: PriceRecord,
    },
    TaxClassificationSet {
        company: CompanyCode,
        material: String,
        tax_classification: TaxClassification,
    },
}

impl DomainEvent for MaterialPricingEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialPricing {
    pub company: CompanyCode,
    pub material: String,
    /// How the material is taxed (full until set).
    pub tax_classification: TaxClassification,
    pub prices: Vec<PriceRecord>,
}

#[derive(Debug)]
pub enum MaterialPricingCommand {
    /// A new price record (its id is given here: `<material>/<currency>/<n>`).
    RecordPrice {
        company: CompanyCode,
        record: PriceRecord,
    },
    SetTaxClassification {
        company: CompanyCode,
        material: String,
        tax_classification: TaxClassification,
    },
}

impl MaterialPricing {
    /// The id the next price record of `material` in `currency` gets.
    pub fn next_price_id(
        state: &Option<MaterialPricing>,
        material: &str,
        currency: &str,
    ) -> String {
        let count = state.as_ref().map_or(0, |s| {
            s.prices.iter().filter(|p| p.currency == currency).count()
        });
        format!("{material}/{currency}/{}", count + 1)
    }
}

fn check_scale(record: &PriceRecord) -> Vec<Violation> {
    let mut violations = Vec::new();
    if record.scale.is_empty() {
        violations.push(violation("scale", "required", "a price needs a unit price"));
    }
    if record
        .scale
        .first()
        .is_some_and(|s| !s.from_quantity.is_zero())
    {
        violations.push(violation(
            "scale",
            "starts_at_zero",
            "the first step of a quantity scale starts at quantity 0",
        ));
    }
    if record
        .scale
        .windows(2)
        .any(|w| w[1].from_quantity <= w[0].from_quantity)
    {
        violations.push(violation(
            "scale",
            "ascending",
            "the steps of a quantity scale ascend by quantity",
        ));
    }
    if record.scale.iter().any(|s| s.unit_price.is_sign_negative()) {
        violations.push(violation(
            "scale",
            "not_negative",
            "a unit price is zero or more",
        ));
    }
    violations
}

fn check_validity<R: Record>(record: &R) -> Option<Violation> {
    let validity = record.validity();
    validity.to.is_some_and(|to| to < validity.from).then(|| {
        violation(
            "valid_to",
            "after_valid_from",
            "a record's validity cannot end before it starts",
        )
    })
}

impl Aggregate for MaterialPricing {
    const TYPE: &'static str = "sales.material_pricing";
    type State = Option<MaterialPricing>;
    type Event = MaterialPricingEvent;
    type Command = MaterialPricingCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<MaterialPricing>,
        command: MaterialPricingCommand,
    ) -> Result<Vec<MaterialPricingEvent>, Vec<Violation>> {
        match command {
            MaterialPricingCommand::RecordPrice { company, record } => {
                let mut violations = check_scale(&record);
                violations.extend(check_validity(&record));
                let existing = state.as_ref().map_or(&[][..], |s| &s.prices[..]);
                if let Err(detail) = overlap(existing, &record) {
                    violations.push(violation("valid_from", "price_overlap", detail));
                }
                if !violations.is_empty() {
                    return Err(violations);
                }
                Ok(vec![MaterialPricingEvent::PriceRecorded {
                    company,
                    material: record.material.clone(),
                    record,
                }])
            }
            MaterialPricingCommand::SetTaxClassification {
                company,
                material,
                tax_classification,
            } => Ok(state
                .as_ref()
                .is_none_or(|s| s.tax_classification != tax_classification)
                .then_some(MaterialPricingEvent::TaxClassificationSet {
                    company,
                    material,
                    tax_classification,
                })
                .into_iter()
                .collect()),
        }
    }

    fn apply(state: &mut Option<MaterialPricing>, event: &MaterialPricingEvent) {
        let (company, material) = match event {
            MaterialPricingEvent::PriceRecorded {
                company, material, ..
            }
            | MaterialPricingEvent::TaxClassificationSet {
                company, material, ..
            } => (company, material),
        };
        let pricing = state.get_or_insert_with(|| MaterialPricing {
            company: company.clone(),
            material: material.clone(),
            tax_classification: TaxClassification::Full,
            prices: Vec::new(),
        });
        match event {
            MaterialPricingEvent::PriceRecorded { record, .. } => {
                pricing.prices.push(record.clone());
            }
            MaterialPricingEvent::TaxClassificationSet {
                tax_classification, ..
            } => pricing.tax_classification = *tax_classification,
        }
    }
}

// ----- a company's discounts and tax rates ----------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionsEvent {
    DiscountRecorded {
        company: CompanyCode,
        record: DiscountRecord,
    },
    TaxRateRecorded {
        company: CompanyCode,
        record: TaxRecord,
    },
}

impl DomainEvent for ConditionsEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyConditions {
    pub company: CompanyCode,
    pub discounts: Vec<DiscountRecord>,
    pub taxes: Vec<TaxRecord>,
}

#[derive(Debug)]
pub enum ConditionsCommand {
    /// A new discount (its id: `D<n>`, set by [`CompanyConditions::next_ids`]).
    RecordDiscount {
        company: CompanyCode,
        record: DiscountRecord,
    },
    /// A new tax rate (its id: `T<n>`).
    RecordTaxRate {
        company: CompanyCode,
        record: TaxRecord,
    },
}

impl CompanyConditions {
    /// The ids the next discount and the next tax rate get.
    pub fn next_ids(state: &Option<CompanyConditions>) -> (String, String) {
        let (discounts, taxes) = state
            .as_ref()
            .map_or((0, 0), |s| (s.discounts.len(), s.taxes.len()));
        (format!("D{}", discounts + 1), format!("T{}", taxes + 1))
    }
}

impl Aggregate for CompanyConditions {
    const TYPE: &'static str = "sales.conditions";
    type State = Option<CompanyConditions>;
    type Event = ConditionsEvent;
    type Command = ConditionsCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<CompanyConditions>,
        command: ConditionsCommand,
    ) -> Result<Vec<ConditionsEvent>, Vec<Violation>> {
        let (discounts, taxes) = state
            .as_ref()
            .map_or((&[][..], &[][..]), |s| (&s.discounts[..], &s.taxes[..]));
        match command {
            ConditionsCommand::RecordDiscount { company, record } => {
                let mut violations: Vec<Violation> = check_validity(&record).into_iter().collect();
                if let Err(detail) = overlap(discounts, &record) {
                    violations.push(violation("valid_from", "discount_overlap", detail));
                }
                if record.customer.is_none() && record.material_group.is_none() {
                    violations.push(violation(
                        "customer",
                        "customer_or_material_group",
                        "a discount is for a customer, a material group or both",
                    ));
                }
                if violations.is_empty() {
                    Ok(vec![ConditionsEvent::DiscountRecorded { company, record }])
                } else {
                    Err(violations)
                }
            }
            ConditionsCommand::RecordTaxRate { company, record } => {
                let mut violations: Vec<Violation> = check_validity(&record).into_iter().collect();
                if let Err(detail) = overlap(taxes, &record) {
                    violations.push(violation("valid_from", "tax_rate_overlap", detail));
                }
                if violations.is_empty() {
                    Ok(vec![ConditionsEvent::TaxRateRecorded { company, record }])
                } else {
                    Err(violations)
                }
            }
        }
    }

    fn apply(state: &mut Option<CompanyConditions>, event: &ConditionsEvent) {
        let company = match event {
            ConditionsEvent::DiscountRecorded { company, .. }
            | ConditionsEvent::TaxRateRecorded { company, .. } => company,
        };
        let conditions = state.get_or_insert_with(|| CompanyConditions {
            company: company.clone(),
            discounts: Vec::new(),
            taxes: Vec::new(),
        });
        match event {
            ConditionsEvent::DiscountRecorded { record, .. } => {
                conditions.discounts.push(record.clone());
            }
            ConditionsEvent::TaxRateRecorded { record, .. } => {
                conditions.taxes.push(record.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_golden_fixture() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events/");
        let mut problems = tributary_kernel::event::check_fixtures::<MaterialPricingEvent>(
            std::path::Path::new(&format!("{dir}sales.material_pricing")),
        );
        problems.extend(tributary_kernel::event::check_fixtures::<ConditionsEvent>(
            std::path::Path::new(&format!("{dir}sales.conditions")),
        ));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
