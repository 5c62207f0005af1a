//! Production commands: load what a command needs, check what spans aggregates (plants and
//! materials exist, components have planning data, work centres exist, no bill of material
//! cycle), decide, and plan the append (the API commits it with the idempotency record).

use crate::master::*;
use crate::mrp::path_down;
use crate::run::{MrpRun, Run, RunCommand};
use std::collections::{BTreeMap, HashMap};
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::http::{ApiError, FieldError};
use tributary_kernel::master::CompanyCode;
use tributary_kernel::store::{Decision, EventStore, StreamRead};
use tributary_kernel::{Aggregate, RepositoryError};
use tributary_materials::domain::{Material, MaterialNumber, Plant, PlantCode};

fn rejected(field: impl Into<String>, rule: &str, detail: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, rule, detail)])
}

/// The writes of a decided command on an aggregate that exists afterwards, with `reads`
/// pinned; answers its state.
fn decide<A: Aggregate<State = Option<T>, Rejection = Violations>, T>(
    loaded: &Loaded<A>,
    command: A::Command,
    reads: Vec<StreamRead>,
) -> Result<Decision<T>, ApiError> {
    loaded
        .decide(command)
        .map_err(ApiError::validation)?
        .decision(reads, |state| state)
        .ok_or_else(|| ApiError::internal(&"a decided aggregate has no state"))
}

pub async fn existing_plant(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
) -> Result<Plant, ApiError> {
    aggregate::load::<Plant>(
        store,
        &tributary_materials::commands::plant_id(company, plant),
    )
    .await?
    .state
    .ok_or_else(|| {
        ApiError::not_found(format!("plant {plant} does not exist in company {company}"))
    })
}

/// The material `field` names, or why it cannot be used: it does not exist, or it is not
/// kept in the plant.
async fn material_in_plant(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
    material: &MaterialNumber,
    field: &str,
) -> Result<Result<Material, FieldError>, RepositoryError> {
    let Some(found) = aggregate::load::<Material>(
        store,
        &tributary_materials::commands::material_id(company, material),
    )
    .await?
    .state
    else {
        return Ok(Err(FieldError::new(
            field,
            "material_not_found",
            format!("material {material} does not exist in company {company}"),
        )));
    };
    if !found.plants.contains_key(plant) {
        return Ok(Err(FieldError::new(
            field,
            "material_not_in_plant",
            format!(
                "material {material} is not kept in plant {plant}: extend it to the plant first"
            ),
        )));
    }
    Ok(Ok(found))
}

/// The material `field` names: 422 when it does not exist or is not kept in the plant.
pub async fn existing_material(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
    material: &MaterialNumber,
    field: &str,
) -> Result<Material, ApiError> {
    material_in_plant(store, company, plant, material, field)
        .await?
        .map_err(|problem| ApiError::validation(vec![problem]))
}

// ----- planning data --------------------------------------------------------------------------

pub async fn planning(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
    material: &MaterialNumber,
) -> Result<Loaded<PlanningRecord>, RepositoryError> {
    aggregate::load::<PlanningRecord>(store, &material_key(company, plant, material)).await
}

pub async fn set_planning(
    store: &EventStore,
    new: Planning,
) -> Result<Decision<Planning>, ApiError> {
    existing_plant(store, &new.company, &new.plant).await?;
    existing_material(store, &new.company, &new.plant, &new.material, "material").await?;
    let loaded = planning(store, &new.company, &new.plant, &new.material).await?;
    decide(&loaded, new, vec![])
}

// ----- bills of material ----------------------------------------------------------------------

pub async fn bom(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
    material: &MaterialNumber,
) -> Result<Loaded<BillOfMaterial>, RepositoryError> {
    aggregate::load::<BillOfMaterial>(store, &material_key(company, plant, material)).await
}

/// Sets a material's bill of material: every component a material kept in the plant with
/// planning data there, and no component that is (or contains) the material itself. The change
/// is appended with the plant's [`BomStructure`] at the version read before the cycle check: a
/// concurrent change in the plant fails this append (409), so two changes can never close a
/// cycle between them.
/// `units`: the unit each component line was given in, if any (it must be the component's
/// base unit).
pub async fn set_bom(
    store: &EventStore,
    new: Bom,
    units: &[Option<String>],
) -> Result<Decision<Bom>, ApiError> {
    let (company, plant) = (&new.company, &new.plant);
    existing_plant(store, company, plant).await?;
    existing_material(store, company, plant, &new.material, "material").await?;
    check_bom(&new).map_err(ApiError::validation)?;
    let structure = aggregate::load::<BomStructure>(store, &format!("{company}/{plant}")).await?;
    let mut violations = Vec::new();
    let mut numbers = Vec::new();
    for (index, component) in new.components.iter().enumerate() {
        let field = format!("components[{index}].material");
        let Ok(number) = MaterialNumber::parse(&component.material) else {
            violations.push(FieldError::new(
                field,
                "material_number",
                format!("{:?} cannot be a material number", component.material),
            ));
            continue;
        };
        let found = match material_in_plant(store, company, plant, &number, &field).await? {
            Ok(found) => found,
            Err(problem) => {
                violations.push(problem);
                continue;
            }
        };
        if let Some(Some(unit)) = units.get(index)
            && unit != found.base_unit.as_str()
        {
            violations.push(FieldError::new(
                format!("components[{index}].unit"),
                "unit_not_base",
                format!(
                    "{number} is kept in {}, not {unit}: give component quantities in the base unit",
                    found.base_unit.as_str()
                ),
            ));
        }
        if planning(store, company, plant, &number)
            .await?
            .state
            .is_none()
        {
            violations.push(FieldError::new(
                field,
                "planning_data_missing",
                format!(
                    "component {number} has no planning data in plant {plant}: set it first (PUT …/materials/{number}/planning)"
                ),
            ));
        }
        numbers.push(number);
    }
    if !violations.is_empty() {
        return Err(ApiError::validation(violations));
    }
    // Every bill below the new components, level by level, each loaded once.
    let mut below: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut level: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
    while !level.is_empty() {
        let ids: Vec<String> = level
            .iter()
            .filter(|m| !below.contains_key(*m))
            .map(|m| format!("{company}/{plant}/{m}"))
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
        let loaded: HashMap<String, Loaded<BillOfMaterial>> =
            aggregate::load_many::<BillOfMaterial>(store, &ids).await?;
        let mut next = Vec::new();
        for (id, bill) in loaded {
            let material = id.rsplit('/').next().unwrap_or_default().to_owned();
            let components: Vec<String> = bill
                .state
                .map(|b| b.components.into_iter().map(|c| c.material).collect())
                .unwrap_or_default();
            next.extend(components.iter().cloned());
            below.insert(material, components);
        }
        level = next;
        level.retain(|m| !below.contains_key(m));
    }
    let parent = new.material.to_string();
    for (index, component) in new.components.iter().enumerate() {
        let down = |m: &str| below.get(m).cloned().unwrap_or_default();
        if let Some(path) = path_down(&component.material, &parent, down) {
            return Err(rejected(
                format!("components[{index}].material"),
                "bom_cycle",
                format!(
                    "{} contains {parent} already ({} → {}): a material cannot contain itself",
                    component.material,
                    parent,
                    path.join(" → ")
                ),
            ));
        }
    }
    let material = new.material.clone();
    let loaded = bom(store, company, plant, &new.material).await?;
    if loaded.state.is_none() && new.components.is_empty() {
        // No bill to remove: nothing to store, the answer is the empty bill.
        return Ok(Decision {
            writes: vec![],
            reads: vec![],
            outcome: new,
        });
    }
    let mut decision = decide(&loaded, new, vec![])?;
    if !decision.writes.is_empty() {
        decision
            .writes
            .push(structure.write(&[BomStructureEvent::BomChanged { material }]));
    }
    Ok(decision)
}

// ----- work centres and routings --------------------------------------------------------------

pub fn work_center_id(company: &CompanyCode, plant: &PlantCode, code: &WorkCenterCode) -> String {
    format!("{company}/{plant}/{code}")
}

pub async fn work_center(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
    code: &WorkCenterCode,
) -> Result<Loaded<WorkCenterRecord>, RepositoryError> {
    aggregate::load::<WorkCenterRecord>(store, &work_center_id(company, plant, code)).await
}

pub async fn set_work_center(
    store: &EventStore,
    new: WorkCenter,
) -> Result<Decision<WorkCenter>, ApiError> {
    existing_plant(store, &new.company, &new.plant).await?;
    let loaded = work_center(store, &new.company, &new.plant, &new.code).await?;
    decide(&loaded, new, vec![])
}

pub async fn routing(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
    material: &MaterialNumber,
) -> Result<Loaded<RoutingRecord>, RepositoryError> {
    aggregate::load::<RoutingRecord>(store, &material_key(company, plant, material)).await
}

/// Sets a material's routing: every operation at a work centre of the plant (pinned, so the
/// routing never names one that a concurrent change removed).
pub async fn set_routing(store: &EventStore, new: Routing) -> Result<Decision<Routing>, ApiError> {
    existing_plant(store, &new.company, &new.plant).await?;
    existing_material(store, &new.company, &new.plant, &new.material, "material").await?;
    check_routing(&new).map_err(ApiError::validation)?;
    let ids: Vec<String> = new
        .operations
        .iter()
        .map(|o| work_center_id(&new.company, &new.plant, &o.work_center))
        .collect();
    let centers = aggregate::load_many::<WorkCenterRecord>(store, &ids).await?;
    let mut violations = Vec::new();
    let mut reads = Vec::new();
    for (index, (operation, id)) in new.operations.iter().zip(&ids).enumerate() {
        match centers.get(id) {
            Some(center) if center.state.is_some() => reads.push(center.pin()),
            _ => violations.push(FieldError::new(
                format!("operations[{index}].work_center"),
                "work_center_not_found",
                format!(
                    "work centre {} does not exist in plant {}",
                    operation.work_center, new.plant
                ),
            )),
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::validation(violations));
    }
    let loaded = routing(store, &new.company, &new.plant, &new.material).await?;
    decide(&loaded, new, reads)
}

// ----- planned independent requirements -------------------------------------------------------

pub async fn requirements(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
    material: &MaterialNumber,
) -> Result<Loaded<PlannedRequirements>, RepositoryError> {
    aggregate::load::<PlannedRequirements>(store, &material_key(company, plant, material)).await
}

/// What a requirements command answers: the material's requirements after it.
#[derive(Debug, Clone)]
pub struct RequirementsOf {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub material: MaterialNumber,
    pub requirements: Requirements,
}

pub async fn set_requirements(
    store: &EventStore,
    command: SetRequirements,
) -> Result<Decision<RequirementsOf>, ApiError> {
    let (company, plant, material) = (
        command.company.clone(),
        command.plant.clone(),
        command.material.clone(),
    );
    existing_plant(store, &company, &plant).await?;
    existing_material(store, &company, &plant, &material, "material").await?;
    if planning(store, &company, &plant, &material)
        .await?
        .state
        .is_none()
    {
        return Err(rejected(
            "material",
            "planning_data_missing",
            format!("material {material} has no planning data in plant {plant}: set it first"),
        ));
    }
    let loaded = requirements(store, &company, &plant, &material).await?;
    loaded
        .decide(command)
        .map_err(ApiError::validation)?
        .decision(vec![], |requirements| {
            Some(RequirementsOf {
                company,
                plant,
                material,
                requirements,
            })
        })
        .ok_or_else(|| ApiError::internal(&"no requirements"))
}

// ----- MRP runs -------------------------------------------------------------------------------

pub async fn request_run(
    store: &EventStore,
    id: &str,
    command: RunCommand,
) -> Result<Decision<Run>, ApiError> {
    let loaded = aggregate::load::<MrpRun>(store, id).await?;
    loaded
        .decide(command)
        .map_err(ApiError::validation)?
        .decision(vec![], |state| state)
        .ok_or_else(|| ApiError::internal(&"no run"))
}
