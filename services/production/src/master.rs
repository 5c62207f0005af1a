//! Production's master data, as pure aggregates: a material's planning data in a plant
//! (`production.planning`), its bill of material (`production.bom`), work centres
//! (`production.work_center`), routings (`production.routing`) and planned independent
//! requirements (`production.requirements`). Each is set as a whole by its command and
//! published as one event; what they must satisfy across aggregates (materials exist, work
//! centres exist, no bill of material cycle) is checked by the commands before deciding.

use crate::mrp::{Component, LotProcedure, LotSizing, PlanningData, Procurement};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::http::FieldError;
use tributary_kernel::master::CompanyCode;
use tributary_materials::domain::{MaterialNumber, PlantCode};

/// The longest lead time planning data may have (a year of working and other days).
pub const LEAD_TIME_DAYS_MAX: u32 = 365;
/// Components of one bill of material.
pub const COMPONENTS_MAX: usize = 500;
/// Operations of one routing.
pub const OPERATIONS_MAX: usize = 200;
/// Requirement entries one command sets.
pub const REQUIREMENTS_MAX: usize = 1_000;

pub type Violations = Vec<FieldError>;

/// The largest quantity planning data and requirements take (a trillion base units).
pub fn quantity_max() -> Decimal {
    Decimal::from(1_000_000_000_000_i64)
}

/// The largest quantity of a component per base unit of its parent.
pub fn component_quantity_max() -> Decimal {
    Decimal::from(1_000_000)
}

fn too_large(field: impl Into<String>, max: Decimal) -> FieldError {
    FieldError::new(field, "quantity_range", format!("at most {max}"))
}

fn fail(field: impl Into<String>, rule: &str, detail: impl Into<String>) -> Violations {
    vec![FieldError::new(field, rule, detail)]
}

tributary_kernel::code!(
    WorkCenterCode,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);

/// `company/plant/material`: the stream of a material's planning data, bill of material,
/// routing or requirements in a plant.
pub fn material_key(company: &CompanyCode, plant: &PlantCode, material: &MaterialNumber) -> String {
    format!("{company}/{plant}/{material}")
}

// ----- planning data --------------------------------------------------------------------------

/// A material's planning data in a plant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planning {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub material: MaterialNumber,
    #[serde(flatten)]
    pub data: PlanningData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanningEvent {
    PlanningDataSet(Planning),
}

impl DomainEvent for PlanningEvent {}

pub struct PlanningRecord;

/// What planning data must satisfy on its own.
pub fn check_planning(data: &PlanningData) -> Result<(), Violations> {
    let mut violations = Vec::new();
    if data.lead_time_days > LEAD_TIME_DAYS_MAX {
        violations.push(FieldError::new(
            "lead_time_days",
            "lead_time_range",
            format!("a lead time is 0 to {LEAD_TIME_DAYS_MAX} days"),
        ));
    }
    if data.safety_stock < Decimal::ZERO {
        violations.push(FieldError::new(
            "safety_stock",
            "not_negative",
            "safety stock cannot be negative",
        ));
    }
    let lot = &data.lot_sizing;
    match lot.procedure {
        LotProcedure::FixedOrderQuantity { quantity } if quantity <= Decimal::ZERO => {
            violations.push(FieldError::new(
                "lot_sizing.quantity",
                "positive",
                "a fixed order quantity must be positive",
            ));
        }
        LotProcedure::FixedPeriods { periods } if !(1..=52).contains(&periods) => {
            violations.push(FieldError::new(
                "lot_sizing.periods",
                "periods_range",
                "fixed periods of supply cover 1 to 52 buckets",
            ));
        }
        _ => {}
    }
    let fixed = match lot.procedure {
        LotProcedure::FixedOrderQuantity { quantity } => quantity,
        _ => Decimal::ZERO,
    };
    for (field, value) in [
        ("safety_stock", data.safety_stock),
        ("lot_sizing.quantity", fixed),
        ("lot_sizing.minimum", lot.minimum),
        ("lot_sizing.rounding", lot.rounding),
    ] {
        if value > quantity_max() {
            violations.push(too_large(field, quantity_max()));
        }
    }
    for (field, value) in [("minimum", lot.minimum), ("rounding", lot.rounding)] {
        if value < Decimal::ZERO {
            violations.push(FieldError::new(
                format!("lot_sizing.{field}"),
                "not_negative",
                format!("the lot size {field} cannot be negative (zero: none)"),
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

impl Aggregate for PlanningRecord {
    const TYPE: &'static str = "production.planning";
    type State = Option<Planning>;
    type Event = PlanningEvent;
    type Command = Planning;
    type Rejection = Violations;

    fn decide(
        state: &Option<Planning>,
        command: Planning,
    ) -> Result<Vec<PlanningEvent>, Violations> {
        check_planning(&command.data)?;
        if state.as_ref() == Some(&command) {
            return Ok(vec![]);
        }
        Ok(vec![PlanningEvent::PlanningDataSet(command)])
    }

    fn apply(state: &mut Option<Planning>, event: &PlanningEvent) {
        let PlanningEvent::PlanningDataSet(planning) = event;
        *state = Some(planning.clone());
    }
}

impl Planning {
    pub fn procurement(&self) -> Procurement {
        self.data.procurement
    }
}

impl Default for LotSizing {
    fn default() -> Self {
        LotSizing::LOT_FOR_LOT
    }
}

// ----- bills of material ----------------------------------------------------------------------

/// A material's bill of material in a plant: what one base unit of it is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bom {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub material: MaterialNumber,
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BomEvent {
    /// The components as they are now (none: the material has no bill of material any more).
    BomSet(Bom),
}

impl DomainEvent for BomEvent {}

pub struct BillOfMaterial;

/// What a bill of material must satisfy on its own (cycles through other bills are the
/// command's to check).
pub fn check_bom(bom: &Bom) -> Result<(), Violations> {
    let mut violations = Vec::new();
    if bom.components.len() > COMPONENTS_MAX {
        violations.push(FieldError::new(
            "components",
            "too_many",
            format!("a bill of material has at most {COMPONENTS_MAX} components"),
        ));
    }
    for (index, c) in bom.components.iter().enumerate() {
        let field = |name: &str| format!("components[{index}].{name}");
        if c.material == bom.material.as_str() {
            violations.push(FieldError::new(
                field("material"),
                "bom_cycle",
                format!("{} cannot be a component of itself", bom.material),
            ));
        }
        if c.quantity <= Decimal::ZERO {
            violations.push(FieldError::new(
                field("quantity"),
                "positive",
                "a component quantity must be positive",
            ));
        } else if c.quantity > component_quantity_max() {
            violations.push(too_large(field("quantity"), component_quantity_max()));
        }
        if c.scrap_percent < Decimal::ZERO || c.scrap_percent >= Decimal::ONE_HUNDRED {
            violations.push(FieldError::new(
                field("scrap_percent"),
                "percent_range",
                "scrap is 0 to less than 100 percent",
            ));
        }
        if let (Some(from), Some(to)) = (c.valid_from, c.valid_to)
            && to < from
        {
            violations.push(FieldError::new(
                field("valid_to"),
                "validity_order",
                format!("valid to {to} is before valid from {from}"),
            ));
        }
        let overlaps = bom.components[..index]
            .iter()
            .any(|earlier| earlier.material == c.material && overlap(earlier, c));
        if overlaps {
            violations.push(FieldError::new(
                field("material"),
                "duplicate_component",
                format!(
                    "{} is already a component on some of these dates: give it once, or give each line its own validity",
                    c.material
                ),
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

fn overlap(a: &Component, b: &Component) -> bool {
    let start = |c: &Component| c.valid_from.unwrap_or(NaiveDate::MIN);
    let end = |c: &Component| c.valid_to.unwrap_or(NaiveDate::MAX);
    start(a) <= end(b) && start(b) <= end(a)
}

impl Aggregate for BillOfMaterial {
    const TYPE: &'static str = "production.bom";
    type State = Option<Bom>;
    type Event = BomEvent;
    type Command = Bom;
    type Rejection = Violations;

    fn decide(state: &Option<Bom>, command: Bom) -> Result<Vec<BomEvent>, Violations> {
        check_bom(&command)?;
        let unchanged = match state {
            Some(bom) => bom == &command,
            None => command.components.is_empty(),
        };
        if unchanged {
            return Ok(vec![]);
        }
        Ok(vec![BomEvent::BomSet(command)])
    }

    fn apply(state: &mut Option<Bom>, event: &BomEvent) {
        let BomEvent::BomSet(bom) = event;
        *state = Some(bom.clone());
    }
}

/// The stream every bill of material change of a plant (`company/plant`) also appends to, at
/// the version its cycle check started from: two changes can never close a cycle between them
/// (a stream that does not exist yet cannot be locked, so pinning the bills read would not do).
pub struct BomStructure;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BomStructureEvent {
    BomChanged { material: MaterialNumber },
}

impl DomainEvent for BomStructureEvent {}

impl Aggregate for BomStructure {
    const TYPE: &'static str = "production.bom_structure";
    type State = ();
    type Event = BomStructureEvent;
    type Command = BomStructureEvent;
    type Rejection = Violations;

    fn decide(_: &(), command: BomStructureEvent) -> Result<Vec<BomStructureEvent>, Violations> {
        Ok(vec![command])
    }

    fn apply(_: &mut (), _: &BomStructureEvent) {}
}

// ----- work centres ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCenter {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub code: WorkCenterCode,
    pub description: String,
    /// Hours it can work per day.
    pub capacity_hours_per_day: Decimal,
    /// What an hour costs, in the company's currency.
    pub cost_rate_per_hour: Decimal,
    /// Where its costs are collected.
    pub cost_center: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkCenterEvent {
    WorkCenterSet(WorkCenter),
}

impl DomainEvent for WorkCenterEvent {}

pub struct WorkCenterRecord;

impl Aggregate for WorkCenterRecord {
    const TYPE: &'static str = "production.work_center";
    type State = Option<WorkCenter>;
    type Event = WorkCenterEvent;
    type Command = WorkCenter;
    type Rejection = Violations;

    fn decide(
        state: &Option<WorkCenter>,
        command: WorkCenter,
    ) -> Result<Vec<WorkCenterEvent>, Violations> {
        if command.capacity_hours_per_day <= Decimal::ZERO
            || command.capacity_hours_per_day > Decimal::from(24)
        {
            return Err(fail(
                "capacity_hours_per_day",
                "hours_range",
                "a work centre works more than 0 and at most 24 hours a day",
            ));
        }
        if command.cost_rate_per_hour < Decimal::ZERO {
            return Err(fail(
                "cost_rate_per_hour",
                "not_negative",
                "a cost rate cannot be negative",
            ));
        }
        if state.as_ref() == Some(&command) {
            return Ok(vec![]);
        }
        Ok(vec![WorkCenterEvent::WorkCenterSet(command)])
    }

    fn apply(state: &mut Option<WorkCenter>, event: &WorkCenterEvent) {
        let WorkCenterEvent::WorkCenterSet(center) = event;
        *state = Some(center.clone());
    }
}

// ----- routings -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// 10, 20, …: the order the operations run in.
    pub number: u32,
    pub description: String,
    pub work_center: WorkCenterCode,
    /// Once per order.
    pub setup_hours: Decimal,
    /// Per base unit of the material.
    pub run_hours_per_unit: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub material: MaterialNumber,
    pub operations: Vec<Operation>,
}

impl Routing {
    /// Hours an order of `quantity` takes at each operation: (operation, setup + run).
    pub fn hours(&self, quantity: Decimal) -> impl Iterator<Item = (&Operation, Decimal)> {
        self.operations
            .iter()
            .map(move |o| (o, o.setup_hours + o.run_hours_per_unit * quantity))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoutingEvent {
    RoutingSet(Routing),
}

impl DomainEvent for RoutingEvent {}

pub struct RoutingRecord;

pub fn check_routing(routing: &Routing) -> Result<(), Violations> {
    let mut violations = Vec::new();
    if routing.operations.is_empty() || routing.operations.len() > OPERATIONS_MAX {
        violations.push(FieldError::new(
            "operations",
            "operations_count",
            format!("a routing has 1 to {OPERATIONS_MAX} operations"),
        ));
    }
    let mut previous = 0;
    for (index, o) in routing.operations.iter().enumerate() {
        let field = |name: &str| format!("operations[{index}].{name}");
        if o.number <= previous {
            violations.push(FieldError::new(
                field("number"),
                "ascending",
                "operation numbers are positive and ascending",
            ));
        }
        previous = o.number;
        for (name, value) in [
            ("setup_hours", o.setup_hours),
            ("run_hours_per_unit", o.run_hours_per_unit),
        ] {
            if value < Decimal::ZERO {
                violations.push(FieldError::new(
                    field(name),
                    "not_negative",
                    "times cannot be negative",
                ));
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

impl Aggregate for RoutingRecord {
    const TYPE: &'static str = "production.routing";
    type State = Option<Routing>;
    type Event = RoutingEvent;
    type Command = Routing;
    type Rejection = Violations;

    fn decide(state: &Option<Routing>, command: Routing) -> Result<Vec<RoutingEvent>, Violations> {
        check_routing(&command)?;
        if state.as_ref() == Some(&command) {
            return Ok(vec![]);
        }
        Ok(vec![RoutingEvent::RoutingSet(command)])
    }

    fn apply(state: &mut Option<Routing>, event: &RoutingEvent) {
        let RoutingEvent::RoutingSet(routing) = event;
        *state = Some(routing.clone());
    }
}

// ----- planned independent requirements -------------------------------------------------------

/// A material's planned independent requirements in a plant: quantity by date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    pub by_date: BTreeMap<NaiveDate, Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequirementsEvent {
    /// These dates' quantities as they are now (zero: none on that date any more).
    RequirementsSet {
        company: CompanyCode,
        plant: PlantCode,
        material: MaterialNumber,
        entries: Vec<(NaiveDate, Decimal)>,
        /// `manual`, or the forecast they were released from.
        source: String,
    },
}

impl DomainEvent for RequirementsEvent {}

pub struct PlannedRequirements;

pub struct SetRequirements {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub material: MaterialNumber,
    pub entries: Vec<(NaiveDate, Decimal)>,
    pub source: String,
}

impl Aggregate for PlannedRequirements {
    const TYPE: &'static str = "production.requirements";
    type State = Requirements;
    type Event = RequirementsEvent;
    type Command = SetRequirements;
    type Rejection = Violations;

    fn decide(
        state: &Requirements,
        command: SetRequirements,
    ) -> Result<Vec<RequirementsEvent>, Violations> {
        if command.entries.is_empty() || command.entries.len() > REQUIREMENTS_MAX {
            return Err(fail(
                "entries",
                "entries_count",
                format!("give 1 to {REQUIREMENTS_MAX} dates"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, (date, quantity)) in command.entries.iter().enumerate() {
            if *quantity < Decimal::ZERO {
                return Err(fail(
                    format!("entries[{index}].quantity"),
                    "not_negative",
                    "a requirement cannot be negative (zero removes the date's)",
                ));
            }
            if *quantity > quantity_max() {
                return Err(vec![too_large(
                    format!("entries[{index}].quantity"),
                    quantity_max(),
                )]);
            }
            if !seen.insert(*date) {
                return Err(fail(
                    format!("entries[{index}].date"),
                    "duplicate_date",
                    format!("{date} is given twice"),
                ));
            }
        }
        let changed: Vec<(NaiveDate, Decimal)> = command
            .entries
            .into_iter()
            .filter(|(date, quantity)| {
                state.by_date.get(date).copied().unwrap_or_default() != *quantity
            })
            .collect();
        if changed.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![RequirementsEvent::RequirementsSet {
            company: command.company,
            plant: command.plant,
            material: command.material,
            entries: changed,
            source: command.source,
        }])
    }

    fn apply(state: &mut Requirements, event: &RequirementsEvent) {
        let RequirementsEvent::RequirementsSet { entries, .. } = event;
        for (date, quantity) in entries {
            if quantity.is_zero() {
                state.by_date.remove(date);
            } else {
                state.by_date.insert(*date, *quantity);
            }
        }
    }
}
