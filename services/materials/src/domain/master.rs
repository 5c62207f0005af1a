//! Master data: plants with their storage locations, the material master, vendors.

use super::*;
use crate::valuation::ValuationMethod;
use std::collections::BTreeMap;
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use tributary_kernel::sealed::Sealed;

// ---------------------------------------------------------------------------------------------
// Plant
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlantEvent {
    PlantCreated {
        company: CompanyCode,
        plant: PlantCode,
        name: String,
        currency: Currency,
    },
    StorageLocationAdded {
        company: CompanyCode,
        plant: PlantCode,
        location: LocationCode,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plant {
    pub company: CompanyCode,
    pub code: PlantCode,
    pub name: String,
    pub currency: Currency,
    pub locations: BTreeMap<LocationCode, String>,
}

impl Plant {
    pub fn decide_create(
        existing: Option<&Plant>,
        company: CompanyCode,
        plant: PlantCode,
        name: String,
        currency: Currency,
    ) -> Result<Vec<PlantEvent>, Vec<Violation>> {
        if existing.is_some() {
            return reject(Violation::PlantExists { plant });
        }
        Ok(vec![PlantEvent::PlantCreated {
            company,
            plant,
            name,
            currency,
        }])
    }

    pub fn decide_add_location(
        &self,
        location: LocationCode,
        name: String,
    ) -> Result<Vec<PlantEvent>, Vec<Violation>> {
        if self.locations.contains_key(&location) {
            return reject(Violation::LocationExists {
                plant: self.code.clone(),
                location,
            });
        }
        Ok(vec![PlantEvent::StorageLocationAdded {
            company: self.company.clone(),
            plant: self.code.clone(),
            location,
            name,
        }])
    }

    pub fn apply(state: Option<Plant>, event: &PlantEvent) -> Option<Plant> {
        match (state, event) {
            (
                _,
                PlantEvent::PlantCreated {
                    company,
                    plant,
                    name,
                    currency,
                },
            ) => Some(Plant {
                company: company.clone(),
                code: plant.clone(),
                name: name.clone(),
                currency: currency.clone(),
                locations: BTreeMap::new(),
            }),
            (Some(mut plant), PlantEvent::StorageLocationAdded { location, name, .. }) => {
                plant.locations.insert(location.clone(), name.clone());
                Some(plant)
            }
            (None, PlantEvent::StorageLocationAdded { .. }) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Material master
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaterialEvent {
    MaterialCreated {
        company: CompanyCode,
        material: MaterialNumber,
        description: String,
        base_unit: UnitOfMeasure,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alternative_units: Vec<UnitConversion>,
        material_type: MaterialType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        material_group: Option<MaterialGroup>,
        valuation_class: ValuationClass,
    },
    /// The material is valued in a plant from now on, with this method.
    MaterialExtendedToPlant {
        company: CompanyCode,
        material: MaterialNumber,
        plant: PlantCode,
        valuation_method: ValuationMethod,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    pub company: CompanyCode,
    pub number: MaterialNumber,
    pub description: String,
    pub base_unit: UnitOfMeasure,
    pub alternative_units: Vec<UnitConversion>,
    pub material_type: MaterialType,
    pub material_group: Option<MaterialGroup>,
    pub valuation_class: ValuationClass,
    pub plants: BTreeMap<PlantCode, ValuationMethod>,
}

/// A new material as a command gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMaterial {
    pub company: CompanyCode,
    pub number: MaterialNumber,
    pub description: String,
    pub base_unit: UnitOfMeasure,
    pub alternative_units: Vec<UnitConversion>,
    pub material_type: MaterialType,
    pub material_group: Option<MaterialGroup>,
    pub valuation_class: ValuationClass,
}

impl Material {
    pub fn decide_create(
        existing: Option<&Material>,
        new: NewMaterial,
    ) -> Result<Vec<MaterialEvent>, Vec<Violation>> {
        if existing.is_some() {
            return reject(Violation::MaterialExists {
                material: new.number,
            });
        }
        let mut violations = Vec::new();
        for (index, conversion) in new.alternative_units.iter().enumerate() {
            let twice = conversion.unit == new.base_unit
                || new.alternative_units[..index]
                    .iter()
                    .any(|c| c.unit == conversion.unit);
            if twice {
                violations.push(Violation::UnitTwice {
                    field: format!("alternative_units[{index}].unit"),
                    unit: conversion.unit.clone(),
                });
            }
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(vec![MaterialEvent::MaterialCreated {
            company: new.company,
            material: new.number,
            description: new.description,
            base_unit: new.base_unit,
            alternative_units: new.alternative_units,
            material_type: new.material_type,
            material_group: new.material_group,
            valuation_class: new.valuation_class,
        }])
    }

    pub fn decide_extend(
        &self,
        plant: &Plant,
        valuation_method: ValuationMethod,
    ) -> Result<Vec<MaterialEvent>, Vec<Violation>> {
        if self.plants.contains_key(&plant.code) {
            return reject(Violation::MaterialAlreadyInPlant {
                material: self.number.clone(),
                plant: plant.code.clone(),
            });
        }
        Ok(vec![MaterialEvent::MaterialExtendedToPlant {
            company: self.company.clone(),
            material: self.number.clone(),
            plant: plant.code.clone(),
            valuation_method,
        }])
    }

    /// `quantity` of `unit` in the base unit; `None` when the unit is not the material's.
    pub fn to_base(&self, quantity: Decimal, unit: &UnitOfMeasure) -> Option<Decimal> {
        if *unit == self.base_unit {
            return Some(quantity);
        }
        self.alternative_units
            .iter()
            .find(|c| c.unit == *unit)
            .map(|c| quantity * c.factor)
    }

    /// `quantity` of `unit` in the base unit, refused when the unit is not the material's
    /// (reported under `unit_field`) or the result has more than [`QUANTITY_DECIMALS`]
    /// decimals (under `quantity_field`).
    pub fn base_quantity(
        &self,
        quantity: Decimal,
        unit: &UnitOfMeasure,
        unit_field: String,
        quantity_field: String,
    ) -> Result<Decimal, Violation> {
        let Some(base) = self.to_base(quantity, unit) else {
            return Err(self.unit_violation(unit_field, unit.clone()));
        };
        if base.normalize().scale() > QUANTITY_DECIMALS {
            return Err(Violation::QuantityPrecision {
                field: quantity_field,
                quantity,
                unit: unit.clone(),
                base,
            });
        }
        Ok(base)
    }

    /// `unit` is not one of this material's units.
    pub fn unit_violation(&self, field: String, unit: UnitOfMeasure) -> Violation {
        Violation::UnitNotOfMaterial {
            field,
            unit,
            material: self.number.clone(),
            base: self.base_unit.clone(),
        }
    }

    pub fn apply(state: Option<Material>, event: &MaterialEvent) -> Option<Material> {
        match (state, event) {
            (
                _,
                MaterialEvent::MaterialCreated {
                    company,
                    material,
                    description,
                    base_unit,
                    alternative_units,
                    material_type,
                    material_group,
                    valuation_class,
                },
            ) => Some(Material {
                company: company.clone(),
                number: material.clone(),
                description: description.clone(),
                base_unit: base_unit.clone(),
                alternative_units: alternative_units.clone(),
                material_type: *material_type,
                material_group: material_group.clone(),
                valuation_class: valuation_class.clone(),
                plants: BTreeMap::new(),
            }),
            (
                Some(mut material),
                MaterialEvent::MaterialExtendedToPlant {
                    plant,
                    valuation_method,
                    ..
                },
            ) => {
                material.plants.insert(plant.clone(), *valuation_method);
                Some(material)
            }
            (None, MaterialEvent::MaterialExtendedToPlant { .. }) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Vendor
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VendorEvent {
    VendorCreated {
        company: CompanyCode,
        vendor: VendorNumber,
        name: String,
        currency: Currency,
        payment_terms: PaymentTerms,
        /// Since v2: the IBAN paid to, sealed (only the masked form is readable without the
        /// field keys).
        bank_account: Option<Sealed>,
    },
}

/// The field name vendors' bank accounts are sealed under.
pub const VENDOR_BANK_ACCOUNT_FIELD: &str = "materials.vendor.bank_account";

/// v1 of VendorCreated had no bank account.
pub const VENDOR_CREATED_V1: tributary_kernel::event::Upcaster =
    tributary_kernel::event::Upcaster {
        event_type: "VendorCreated",
        from_version: 1,
        upcast: |mut payload| {
            payload
                .as_object_mut()
                .ok_or("VendorCreated v1 is not an object")?
                .insert("bank_account".into(), serde_json::Value::Null);
            Ok(payload)
        },
    };

/// An IBAN (ISO 13616): 15 to 34 letters and digits, a country code, two check digits that
/// make the number modulo 97 equal 1; spaces are dropped, letters upper-cased.
pub fn parse_iban(text: &str) -> Result<String, String> {
    let iban: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !(15..=34).contains(&iban.len()) || !iban.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("must be an IBAN: 15 to 34 letters and digits".into());
    }
    let bytes = iban.as_bytes();
    if !bytes[..2].iter().all(u8::is_ascii_uppercase) || !bytes[2..4].iter().all(u8::is_ascii_digit)
    {
        return Err("must be an IBAN: a country code and two check digits first".into());
    }
    let rearranged = iban[4..].chars().chain(iban[..4].chars());
    let remainder = rearranged.fold(0u32, |acc, c| {
        let value = c.to_digit(36).unwrap_or(0);
        if value >= 10 {
            (acc * 100 + value) % 97
        } else {
            (acc * 10 + value) % 97
        }
    });
    if remainder != 1 {
        return Err("is not a valid IBAN: its check digits do not match".into());
    }
    Ok(iban)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    pub company: CompanyCode,
    pub number: VendorNumber,
    pub name: String,
    pub currency: Currency,
    pub payment_terms: PaymentTerms,
    pub bank_account: Option<Sealed>,
}

impl Vendor {
    pub fn decide_create(
        existing: Option<&Vendor>,
        vendor: Vendor,
    ) -> Result<Vec<VendorEvent>, Vec<Violation>> {
        if existing.is_some() {
            return reject(Violation::VendorExists {
                vendor: vendor.number,
            });
        }
        Ok(vec![VendorEvent::VendorCreated {
            company: vendor.company,
            vendor: vendor.number,
            name: vendor.name,
            currency: vendor.currency,
            payment_terms: vendor.payment_terms,
            bank_account: vendor.bank_account,
        }])
    }

    pub fn apply(_: Option<Vendor>, event: &VendorEvent) -> Option<Vendor> {
        let VendorEvent::VendorCreated {
            company,
            vendor,
            name,
            currency,
            payment_terms,
            bank_account,
        } = event;
        Some(Vendor {
            company: company.clone(),
            number: vendor.clone(),
            name: name.clone(),
            currency: currency.clone(),
            payment_terms: payment_terms.clone(),
            bank_account: bank_account.clone(),
        })
    }
}
