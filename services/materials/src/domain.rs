//! Materials management (MM) domain: plants and storage locations, the material master with
//! units of measure, vendors with payment terms, and the stock of a material in a plant with
//! its valuation. Pure: no I/O, no clock; ids and dates come in as data.
//!
//! Aggregates (types qualified by the context) and their ids:
//! - `materials.plant`: `<company>/<plant>` (its storage locations inside)
//! - `materials.material`: `<company>/<material>` (the plants it is valued in, and how)
//! - `materials.vendor`: `<company>/<vendor>`
//! - `materials.stock`: `<company>/<material>/<plant>`: quantities per storage location and
//!   the valuation; every goods movement is an event of this stream, valued when decided
//!
//! Invariants protected here: stock never goes negative (per storage location and in total),
//! quantities are in the material's base unit once decided, a movement's value is decided by the
//! valuation method and carried in the event (see [`crate::valuation`] for the rounding).

use crate::valuation::{Shortage, Valuation, ValuationMethod, round_amount};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use uuid::Uuid;

pub const NAME_LENGTH_MAX: usize = 200;

macro_rules! code {
    ($name:ident, $len:expr, $rule:expr, $extra:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<$name, &'static str> {
                let extra: &[u8] = $extra;
                if (1..=$len).contains(&text.len())
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || extra.contains(&b))
                {
                    Ok($name(text.to_owned()))
                } else {
                    Err($rule)
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

code!(PlantCode, 8, "must be 1 to 8 characters A-Z or 0-9", b"");
code!(LocationCode, 8, "must be 1 to 8 characters A-Z or 0-9", b"");
code!(
    MaterialNumber,
    40,
    "must be 1 to 40 characters A-Z, 0-9, '-', '_' or '.'",
    b"-_."
);
code!(
    VendorNumber,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);
code!(
    ValuationClass,
    10,
    "must be 1 to 10 characters A-Z or 0-9",
    b""
);
code!(
    MaterialGroup,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialType {
    Raw,
    SemiFinished,
    Finished,
    Trading,
}

impl MaterialType {
    pub fn parse(text: &str) -> Result<MaterialType, &'static str> {
        match text {
            "raw" => Ok(MaterialType::Raw),
            "semi_finished" => Ok(MaterialType::SemiFinished),
            "finished" => Ok(MaterialType::Finished),
            "trading" => Ok(MaterialType::Trading),
            _ => Err("must be one of raw, semi_finished, finished, trading"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialType::Raw => "raw",
            MaterialType::SemiFinished => "semi_finished",
            MaterialType::Finished => "finished",
            MaterialType::Trading => "trading",
        }
    }
}

/// An alternative unit: `factor` base units make one of it (a box of 12 pieces: BOX, 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitConversion {
    pub unit: UnitOfMeasure,
    pub factor: Decimal,
}

/// Payment terms such as 2/10 net 30: `discount_percent` off when paid within
/// `discount_days`, the full amount due after `net_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTerms {
    pub discount_percent: Decimal,
    pub discount_days: u32,
    pub net_days: u32,
}

impl PaymentTerms {
    pub fn net(net_days: u32) -> PaymentTerms {
        PaymentTerms {
            discount_percent: Decimal::ZERO,
            discount_days: 0,
            net_days,
        }
    }

    /// The due date of an invoice dated `invoice_date`.
    pub fn due_date(&self, invoice_date: NaiveDate) -> NaiveDate {
        invoice_date + chrono::Days::new(u64::from(self.net_days))
    }

    /// The cash discount on `amount` when paid on `payment_date` (zero after the discount period).
    pub fn discount(
        &self,
        amount: Decimal,
        invoice_date: NaiveDate,
        payment_date: NaiveDate,
    ) -> Decimal {
        let last_day = invoice_date + chrono::Days::new(u64::from(self.discount_days));
        if payment_date <= last_day {
            round_amount(amount * self.discount_percent / Decimal::ONE_HUNDRED)
        } else {
            Decimal::ZERO
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------------------------

/// A broken business rule, with the input field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("plant {plant} already exists")]
    PlantExists { plant: PlantCode },
    #[error("storage location {location} already exists in plant {plant}")]
    LocationExists {
        plant: PlantCode,
        location: LocationCode,
    },
    #[error("material {material} already exists")]
    MaterialExists { material: MaterialNumber },
    #[error("vendor {vendor} already exists")]
    VendorExists { vendor: VendorNumber },
    #[error("plant {plant} does not exist")]
    PlantNotFound { field: String, plant: PlantCode },
    #[error("storage location {location} does not exist in plant {plant}")]
    LocationNotFound {
        field: String,
        plant: PlantCode,
        location: LocationCode,
    },
    #[error("material {material} is not valued in plant {plant}; extend it to the plant first")]
    MaterialNotInPlant {
        field: String,
        material: MaterialNumber,
        plant: PlantCode,
    },
    #[error("material {material} is already valued in plant {plant}")]
    MaterialAlreadyInPlant {
        material: MaterialNumber,
        plant: PlantCode,
    },
    #[error("unit {unit} is not a unit of material {material} (base {base})")]
    UnitNotOfMaterial {
        field: String,
        unit: UnitOfMeasure,
        material: MaterialNumber,
        base: UnitOfMeasure,
    },
    #[error("unit {unit} is listed twice or is the base unit")]
    UnitTwice { field: String, unit: UnitOfMeasure },
    #[error("the quantity must be greater than zero")]
    QuantityNotPositive { field: String },
    #[error("only {on_hand} on hand in storage location {location}, {requested} requested")]
    StockShort {
        field: String,
        location: LocationCode,
        requested: Decimal,
        on_hand: Decimal,
    },
    #[error("a transfer needs two different storage locations")]
    TransferToItself,
}

impl Violation {
    pub fn field(&self) -> String {
        match self {
            Violation::PlantExists { .. } => "code".into(),
            Violation::LocationExists { .. } => "location".into(),
            Violation::MaterialExists { .. } | Violation::MaterialAlreadyInPlant { .. } => {
                "number".into()
            }
            Violation::VendorExists { .. } => "number".into(),
            Violation::PlantNotFound { field, .. }
            | Violation::LocationNotFound { field, .. }
            | Violation::MaterialNotInPlant { field, .. }
            | Violation::UnitNotOfMaterial { field, .. }
            | Violation::UnitTwice { field, .. }
            | Violation::QuantityNotPositive { field }
            | Violation::StockShort { field, .. } => field.clone(),
            Violation::TransferToItself => "to_location".into(),
        }
    }

    pub fn rule(&self) -> &'static str {
        match self {
            Violation::PlantExists { .. } => "plant_exists",
            Violation::LocationExists { .. } => "location_exists",
            Violation::MaterialExists { .. } => "material_exists",
            Violation::VendorExists { .. } => "vendor_exists",
            Violation::PlantNotFound { .. } => "plant_not_found",
            Violation::LocationNotFound { .. } => "location_not_found",
            Violation::MaterialNotInPlant { .. } => "material_not_in_plant",
            Violation::MaterialAlreadyInPlant { .. } => "material_in_plant",
            Violation::UnitNotOfMaterial { .. } => "unit_not_of_material",
            Violation::UnitTwice { .. } => "unit_twice",
            Violation::QuantityNotPositive { .. } => "positive",
            Violation::StockShort { .. } => "stock_short",
            Violation::TransferToItself => "transfer_to_itself",
        }
    }
}

fn reject<T>(violation: Violation) -> Result<T, Vec<Violation>> {
    Err(vec![violation])
}

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
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    pub company: CompanyCode,
    pub number: VendorNumber,
    pub name: String,
    pub currency: Currency,
    pub payment_terms: PaymentTerms,
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
        }])
    }

    pub fn apply(_: Option<Vendor>, event: &VendorEvent) -> Option<Vendor> {
        let VendorEvent::VendorCreated {
            company,
            vendor,
            name,
            currency,
            payment_terms,
        } = event;
        Some(Vendor {
            company: company.clone(),
            number: vendor.clone(),
            name: name.clone(),
            currency: currency.clone(),
            payment_terms: payment_terms.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Stock of a material in a plant, and its goods movements
// ---------------------------------------------------------------------------------------------

/// What moved goods, with what it references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MovementKind {
    /// A goods receipt, against a purchase order line when there is one.
    Receipt {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        purchase_order: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vendor: Option<VendorNumber>,
    },
    /// Consumption on a cost centre.
    Issue {
        cost_center: String,
    },
    /// Scrapped, with the reason.
    Scrap {
        reason: String,
    },
    /// Goods going back to the vendor of a purchase order line.
    ReturnToVendor {
        purchase_order: String,
        line: u32,
        vendor: VendorNumber,
    },
    TransferOut {
        to_location: LocationCode,
    },
    TransferIn {
        from_location: LocationCode,
    },
    /// A physical count's difference (positive: found, negative: missing).
    CountDifference {
        counted: Decimal,
        book: Decimal,
    },
}

impl MovementKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            MovementKind::Receipt { .. } => "receipt",
            MovementKind::Issue { .. } => "issue",
            MovementKind::Scrap { .. } => "scrap",
            MovementKind::ReturnToVendor { .. } => "return_to_vendor",
            MovementKind::TransferOut { .. } => "transfer_out",
            MovementKind::TransferIn { .. } => "transfer_in",
            MovementKind::CountDifference { .. } => "count_difference",
        }
    }
}

/// One posted movement: quantity in the base unit and value, both signed (in: positive), with
/// the stock's quantity, value and moving-average price after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub movement_id: Uuid,
    pub posting_date: NaiveDate,
    pub location: LocationCode,
    pub kind: MovementKind,
    pub quantity: Decimal,
    pub value: Decimal,
    pub currency: Currency,
    pub stock_quantity_after: Decimal,
    pub stock_value_after: Decimal,
    pub moving_average_after: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockEvent {
    /// The stock was opened when the material was extended to the plant.
    StockOpened {
        company: CompanyCode,
        material: MaterialNumber,
        plant: PlantCode,
        valuation_method: ValuationMethod,
        base_unit: UnitOfMeasure,
        currency: Currency,
        valuation_class: ValuationClass,
    },
    /// One or two movements posted together (a transfer is out and in at once).
    GoodsMovementPosted {
        company: CompanyCode,
        material: MaterialNumber,
        plant: PlantCode,
        valuation_class: ValuationClass,
        movements: Vec<Movement>,
    },
}

/// The stock of a material in a plant: what each storage location holds and its valuation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub company: CompanyCode,
    pub material: MaterialNumber,
    pub plant: PlantCode,
    pub base_unit: UnitOfMeasure,
    pub currency: Currency,
    pub valuation_class: ValuationClass,
    pub locations: BTreeMap<LocationCode, Decimal>,
    pub valuation: Valuation,
    pub movements: u64,
}

/// A movement to decide: kind, where, how much in the base unit, and for receipts what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostMovement {
    pub movement_id: Uuid,
    pub posting_date: NaiveDate,
    pub location: LocationCode,
    pub kind: MovementKind,
    /// Base unit, strictly positive: the kind says the direction.
    pub quantity: Decimal,
    /// Receipts: what the quantity cost (rounded here). Others: ignored.
    pub receipt_value: Decimal,
}

impl Stock {
    pub fn open(material: &Material, plant: &Plant, method: ValuationMethod) -> StockEvent {
        StockEvent::StockOpened {
            company: material.company.clone(),
            material: material.number.clone(),
            plant: plant.code.clone(),
            valuation_method: method,
            base_unit: material.base_unit.clone(),
            currency: plant.currency.clone(),
            valuation_class: material.valuation_class.clone(),
        }
    }

    pub fn on_hand(&self, location: &LocationCode) -> Decimal {
        self.locations.get(location).copied().unwrap_or_default()
    }

    fn posted(&self, movements: Vec<Movement>) -> StockEvent {
        StockEvent::GoodsMovementPosted {
            company: self.company.clone(),
            material: self.material.clone(),
            plant: self.plant.clone(),
            valuation_class: self.valuation_class.clone(),
            movements,
        }
    }

    fn movement(
        &self,
        command: &PostMovement,
        quantity: Decimal,
        value: Decimal,
        valuation: &Valuation,
    ) -> Movement {
        Movement {
            movement_id: command.movement_id,
            posting_date: command.posting_date,
            location: command.location.clone(),
            kind: command.kind.clone(),
            quantity,
            value,
            currency: self.currency.clone(),
            stock_quantity_after: valuation.quantity,
            stock_value_after: valuation.value,
            moving_average_after: valuation.average_price(),
        }
    }

    /// Values and records a movement. Receipts add at their cost; issues, scrap and returns
    /// leave at the valuation's cost; transfers move quantity between locations at no value; a
    /// count posts the difference to the book quantity (a surplus at the moving average).
    pub fn decide_post(&self, command: PostMovement) -> Result<Vec<StockEvent>, Vec<Violation>> {
        if command.quantity <= Decimal::ZERO
            && !matches!(command.kind, MovementKind::CountDifference { .. })
        {
            return reject(Violation::QuantityNotPositive {
                field: "quantity".into(),
            });
        }
        let mut valuation = self.valuation.clone();
        let short = |requested: Decimal, on_hand: Decimal| Violation::StockShort {
            field: "quantity".into(),
            location: command.location.clone(),
            requested,
            on_hand,
        };
        let shortage = |s: Shortage| short(s.requested, s.on_hand);
        match &command.kind {
            MovementKind::Receipt { .. } => {
                let value = round_amount(command.receipt_value);
                valuation.receive(command.quantity, value);
                let movement = self.movement(&command, command.quantity, value, &valuation);
                Ok(vec![self.posted(vec![movement])])
            }
            MovementKind::Issue { .. }
            | MovementKind::Scrap { .. }
            | MovementKind::ReturnToVendor { .. } => {
                let on_hand = self.on_hand(&command.location);
                if command.quantity > on_hand {
                    return reject(short(command.quantity, on_hand));
                }
                let value = valuation
                    .issue(command.quantity)
                    .map_err(|s| vec![shortage(s)])?;
                let movement = self.movement(&command, -command.quantity, -value, &valuation);
                Ok(vec![self.posted(vec![movement])])
            }
            MovementKind::TransferOut { to_location } => {
                if *to_location == command.location {
                    return reject(Violation::TransferToItself);
                }
                let on_hand = self.on_hand(&command.location);
                if command.quantity > on_hand {
                    return reject(short(command.quantity, on_hand));
                }
                let out = self.movement(&command, -command.quantity, Decimal::ZERO, &valuation);
                let arrival = PostMovement {
                    location: to_location.clone(),
                    kind: MovementKind::TransferIn {
                        from_location: command.location.clone(),
                    },
                    ..command.clone()
                };
                let into = self.movement(&arrival, command.quantity, Decimal::ZERO, &valuation);
                Ok(vec![self.posted(vec![out, into])])
            }
            MovementKind::TransferIn { .. } => reject(Violation::TransferToItself),
            MovementKind::CountDifference { counted, .. } => {
                let book = self.on_hand(&command.location);
                let difference = *counted - book;
                if difference.is_zero() {
                    return Ok(Vec::new());
                }
                let value = if difference > Decimal::ZERO {
                    // A surplus enters at the stock's exact average value per unit (both
                    // methods alike); with nothing on hand there is no price: it enters at zero.
                    let value = if self.valuation.quantity.is_zero() {
                        Decimal::ZERO
                    } else {
                        round_amount(difference * self.valuation.value / self.valuation.quantity)
                    };
                    valuation.receive(difference, value);
                    value
                } else {
                    -valuation
                        .issue(-difference)
                        .map_err(|s| vec![shortage(s)])?
                };
                let counted_command = PostMovement {
                    kind: MovementKind::CountDifference {
                        counted: *counted,
                        book,
                    },
                    ..command.clone()
                };
                let movement = self.movement(&counted_command, difference, value, &valuation);
                Ok(vec![self.posted(vec![movement])])
            }
        }
    }

    pub fn apply(state: Option<Stock>, event: &StockEvent) -> Option<Stock> {
        match (state, event) {
            (
                _,
                StockEvent::StockOpened {
                    company,
                    material,
                    plant,
                    valuation_method,
                    base_unit,
                    currency,
                    valuation_class,
                },
            ) => Some(Stock {
                company: company.clone(),
                material: material.clone(),
                plant: plant.clone(),
                base_unit: base_unit.clone(),
                currency: currency.clone(),
                valuation_class: valuation_class.clone(),
                locations: BTreeMap::new(),
                valuation: Valuation::new(*valuation_method),
                movements: 0,
            }),
            (Some(mut stock), StockEvent::GoodsMovementPosted { movements, .. }) => {
                for movement in movements {
                    *stock
                        .locations
                        .entry(movement.location.clone())
                        .or_default() += movement.quantity;
                    // Replaying the decided movements decides nothing new: a receipt adds its
                    // carried value, an outflow takes what the same valuation gave then.
                    match &movement.kind {
                        MovementKind::TransferOut { .. } | MovementKind::TransferIn { .. } => {}
                        _ if movement.quantity > Decimal::ZERO => {
                            stock.valuation.receive(movement.quantity, movement.value);
                        }
                        _ => {
                            let taken = stock.valuation.issue(-movement.quantity);
                            assert_eq!(
                                taken.ok(),
                                Some(-movement.value),
                                "replayed outflow {} takes the value decided then",
                                movement.movement_id
                            );
                        }
                    }
                    stock.movements += 1;
                }
                Some(stock)
            }
            (None, StockEvent::GoodsMovementPosted { .. }) => None,
        }
    }
}
