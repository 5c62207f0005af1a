//! Materials commands: load what a command needs, decide, and plan the append (the API
//! commits it with the idempotency record).

use crate::aggregates::*;
use crate::domain::*;
use crate::valuation::ValuationMethod;
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::master::{CompanyCode, Currency};
use tributary_kernel::store::{Decision, EventStore, StoreError};
use tributary_kernel::{Aggregate, RepositoryError};

#[derive(Debug, thiserror::Error)]
pub enum MaterialsError {
    #[error("rejected: {0:?}")]
    Rejected(Vec<Violation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Vec<Violation>> for MaterialsError {
    fn from(violations: Vec<Violation>) -> Self {
        MaterialsError::Rejected(violations)
    }
}

pub fn plant_id(company: &CompanyCode, plant: &PlantCode) -> String {
    format!("{company}/{plant}")
}

pub fn material_id(company: &CompanyCode, material: &MaterialNumber) -> String {
    format!("{company}/{material}")
}

pub fn vendor_id(company: &CompanyCode, vendor: &VendorNumber) -> String {
    format!("{company}/{vendor}")
}

pub fn stock_id(company: &CompanyCode, material: &MaterialNumber, plant: &PlantCode) -> String {
    format!("{company}/{material}/{plant}")
}

/// One decided aggregate's writes, answering with its state after the events.
fn decision<A: Aggregate<State = Option<T>>, T>(
    loaded: &Loaded<A>,
    command: A::Command,
    what: &'static str,
    id: String,
) -> Result<Decision<T>, MaterialsError>
where
    MaterialsError: From<A::Rejection>,
{
    loaded
        .decide(command)?
        .decision(vec![], |state| state)
        .ok_or(MaterialsError::NotFound { what, id })
}

pub async fn plant(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
) -> Result<Loaded<Plant>, MaterialsError> {
    Ok(aggregate::load::<Plant>(store, &plant_id(company, plant)).await?)
}

pub async fn create_plant(
    store: &EventStore,
    company: CompanyCode,
    code: PlantCode,
    name: String,
    currency: Currency,
) -> Result<Decision<Plant>, MaterialsError> {
    let loaded = plant(store, &company, &code).await?;
    let id = code.to_string();
    let command = PlantCommand::Create {
        company,
        plant: code,
        name,
        currency,
    };
    decision(&loaded, command, "plant", id)
}

pub async fn add_storage_location(
    store: &EventStore,
    company: CompanyCode,
    code: PlantCode,
    location: LocationCode,
    name: String,
) -> Result<Decision<Plant>, MaterialsError> {
    let loaded = plant(store, &company, &code).await?;
    if loaded.state.is_none() {
        return Err(MaterialsError::NotFound {
            what: "plant",
            id: code.to_string(),
        });
    }
    decision(
        &loaded,
        PlantCommand::AddLocation { location, name },
        "plant",
        code.to_string(),
    )
}

pub async fn material(
    store: &EventStore,
    company: &CompanyCode,
    number: &MaterialNumber,
) -> Result<Loaded<Material>, MaterialsError> {
    Ok(aggregate::load::<Material>(store, &material_id(company, number)).await?)
}

/// Creates a material and values it in the given plants (each opening its stock), at once.
pub async fn create_material(
    store: &EventStore,
    new: NewMaterial,
    plants: Vec<(String, PlantCode, ValuationMethod)>,
) -> Result<Decision<Material>, MaterialsError> {
    let (company, number) = (new.company.clone(), new.number.clone());
    let loaded = material(store, &company, &number).await?;
    let mut decided = loaded.decide(MaterialCommand::Create(new))?;
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    let mut violations = Vec::new();
    let mut events = decided.events.clone();
    for (field, code, method) in plants {
        let plant_stream = plant(store, &company, &code).await?;
        let Some(plant_state) = plant_stream.state.clone() else {
            violations.push(Violation::PlantNotFound { field, plant: code });
            continue;
        };
        reads.push(plant_stream.pin());
        let Some(material_state) = decided.state.clone() else {
            continue;
        };
        match material_state.decide_extend(&plant_state, method) {
            Ok(extension) => {
                for event in &extension {
                    <Material as Aggregate>::apply(&mut decided.state, event);
                }
                events.extend(extension);
                let stock = Loaded::<Stock>::new(stock_id(&company, &number, &code));
                let opened = stock.decide(StockCommand::Open {
                    material: material_state,
                    plant: plant_state,
                    valuation_method: method,
                })?;
                writes.extend(opened.writes());
            }
            Err(refused) => violations.extend(refused),
        }
    }
    if !violations.is_empty() {
        return Err(MaterialsError::Rejected(violations));
    }
    writes.insert(0, loaded.write(&events));
    let outcome = decided.state.ok_or(MaterialsError::NotFound {
        what: "material",
        id: number.to_string(),
    })?;
    Ok(Decision {
        writes,
        reads,
        outcome,
    })
}

pub async fn vendor(
    store: &EventStore,
    company: &CompanyCode,
    number: &VendorNumber,
) -> Result<Loaded<Vendor>, MaterialsError> {
    Ok(aggregate::load::<Vendor>(store, &vendor_id(company, number)).await?)
}

pub async fn create_vendor(
    store: &EventStore,
    new: Vendor,
) -> Result<Decision<Vendor>, MaterialsError> {
    let loaded = vendor(store, &new.company, &new.number).await?;
    let id = new.number.to_string();
    decision(&loaded, new, "vendor", id)
}
