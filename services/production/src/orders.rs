//! Production order commands: load what a command needs (the bill of material, routing, work
//! centres and stock valuations of an order to create; the stocks an issue or receipt moves),
//! decide, and plan one append with materials' goods movements.

use crate::commands::{existing_material, existing_plant, planning};
use crate::master::{BillOfMaterial, RoutingRecord, WorkCenterRecord, material_key};
use crate::order::*;
use crate::planning::PlantKey;
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::event::DomainEvent;
use tributary_kernel::http::{ApiError, FieldError};
use tributary_kernel::master::CompanyCode;
use tributary_kernel::store::{Decision, EventStore, StreamWrite};
use tributary_kernel::{Aggregate, RepositoryError};
use tributary_materials::commands::{MaterialsError, MovementRequest, post_movement};
use tributary_materials::domain::{LocationCode, MaterialNumber, MovementKind, PlantCode};
use uuid::Uuid;

pub async fn order(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
) -> Result<Loaded<ProductionOrderRecord>, RepositoryError> {
    aggregate::load::<ProductionOrderRecord>(store, &order_id(company, number)).await
}

/// The order a path names: 404 when it does not exist.
pub async fn existing_order(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
) -> Result<(Loaded<ProductionOrderRecord>, ProductionOrder), ApiError> {
    let loaded = order(store, company, number).await?;
    let state = loaded.state.clone().ok_or_else(|| {
        ApiError::not_found(format!(
            "production order {number} does not exist in company {company}"
        ))
    })?;
    Ok((loaded, state))
}

fn decided(
    loaded: &Loaded<ProductionOrderRecord>,
    command: OrderCommand,
    mut writes: Vec<StreamWrite>,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let decided = loaded.decide(command).map_err(ApiError::validation)?;
    let state = decided
        .state
        .clone()
        .ok_or_else(|| ApiError::internal(&"a decided order has no state"))?;
    // The order's event first: readers of the feed see the order before its movements.
    let mut all = decided.writes();
    all.append(&mut writes);
    Ok(Decision {
        writes: all,
        reads: vec![],
        outcome: state,
    })
}

/// Materials' refusal as this command's, its fields under `prefix` (`lines[0].`).
fn from_materials(error: MaterialsError, prefix: &str) -> ApiError {
    match error {
        MaterialsError::Rejected(violations) => ApiError::validation(
            violations
                .iter()
                .map(|v| FieldError::new(format!("{prefix}{}", v.field()), v.rule(), v.to_string()))
                .collect(),
        ),
        other => other.into(),
    }
}

/// An order as a command gives it: dates, location and valuation, the rest from master data.
#[derive(Debug, Clone)]
pub struct CreateOrder {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub number: OrderNumber,
    pub material: MaterialNumber,
    pub quantity: Decimal,
    pub location: LocationCode,
    /// Defaults to the finish date less the material's lead time.
    pub start_date: Option<NaiveDate>,
    pub finish_date: NaiveDate,
    pub planned_order: Option<String>,
    pub receipt_valuation: ReceiptValuation,
}

/// Creates an order: components from the bill of material valid on its start date, operations
/// from the routing at each work centre's rate, the cost estimate from the components' stock
/// valuation.
pub async fn create_order(
    store: &EventStore,
    new: CreateOrder,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (company, plant) = (&new.company, &new.plant);
    let found_plant = existing_plant(store, company, plant).await?;
    existing_material(store, company, plant, &new.material, "material").await?;
    if !found_plant.locations.contains_key(&new.location) {
        return Err(ApiError::field(
            "location",
            "location_not_found",
            format!("plant {plant} has no storage location {}", new.location),
        ));
    }
    let loaded = order(store, company, &new.number).await?;
    if loaded.exists() {
        return Err(ApiError::field(
            "number",
            "order_exists",
            format!(
                "production order {} exists in company {company}",
                new.number
            ),
        ));
    }
    let lead_time = planning(store, company, plant, &new.material)
        .await?
        .state
        .map_or(0, |p| p.data.lead_time_days);
    let start_date = new
        .start_date
        .unwrap_or(new.finish_date - Duration::days(i64::from(lead_time)));
    let key = material_key(company, plant, &new.material);
    let bom = aggregate::load::<BillOfMaterial>(store, &key).await?.state;
    let components: Vec<_> = bom
        .map(|b| b.components)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.valid_on(start_date))
        .collect();
    // Each component at its stock's value per unit (zero when nothing is on hand).
    let mut planned_components = Vec::new();
    for component in components {
        let material = MaterialNumber::parse(&component.material).map_err(|rule| {
            ApiError::internal(&format!("component {}: {rule}", component.material))
        })?;
        let stock = tributary_materials::commands::stock(store, company, &material, plant).await?;
        let unit_price = stock
            .map(|s| s.valuation)
            .filter(|v| v.quantity > Decimal::ZERO)
            .map_or(Decimal::ZERO, |v| (v.value / v.quantity).round_dp(4));
        planned_components.push(PlannedComponent {
            quantity_per_unit: component.requirement(Decimal::ONE),
            required: component.requirement(new.quantity),
            backflush: component.backflush,
            unit_price,
            material,
        });
    }
    let routing = aggregate::load::<RoutingRecord>(store, &key).await?.state;
    let mut operations = Vec::new();
    let mut reads = Vec::new();
    for operation in routing.map(|r| r.operations).unwrap_or_default() {
        let center = aggregate::load::<WorkCenterRecord>(
            store,
            &crate::commands::work_center_id(company, plant, &operation.work_center),
        )
        .await?;
        let Some(found) = center.state.clone() else {
            return Err(ApiError::field(
                "material",
                "work_center_not_found",
                format!(
                    "operation {} of the routing names work centre {}, which does not exist",
                    operation.number, operation.work_center
                ),
            ));
        };
        reads.push(center.pin());
        operations.push(PlannedOperation {
            number: operation.number,
            description: operation.description,
            work_center: operation.work_center,
            cost_center: found.cost_center,
            setup_hours: operation.setup_hours,
            run_hours_per_unit: operation.run_hours_per_unit,
            cost_rate_per_hour: found.cost_rate_per_hour,
        });
    }
    let currency = tributary_materials::commands::stock(store, company, &new.material, plant)
        .await?
        .map(|s| s.currency)
        .ok_or_else(|| {
            ApiError::field(
                "material",
                "material_not_in_plant",
                format!("material {} has no stock in plant {plant}", new.material),
            )
        })?;
    let standard = StandardCost::estimate(new.quantity, &planned_components, &operations);
    let command = OrderCommand::Create(Box::new(NewOrder {
        company: new.company,
        plant: new.plant,
        number: new.number,
        material: new.material,
        quantity: new.quantity,
        location: new.location,
        start_date,
        finish_date: new.finish_date,
        planned_order: new.planned_order,
        receipt_valuation: new.receipt_valuation,
        currency,
        components: planned_components,
        operations,
        standard,
    }));
    let mut decision = decided(&loaded, command, vec![])?;
    decision.reads = reads;
    Ok(decision)
}

pub async fn release(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    date: NaiveDate,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, _) = existing_order(store, company, number).await?;
    decided(&loaded, OrderCommand::Release { date }, vec![])
}

/// Issues `lines` (material, quantity) from the order's location, each valued by its stock.
async fn issue_movements(
    store: &EventStore,
    order: &ProductionOrder,
    posting_date: NaiveDate,
    lines: &[(MaterialNumber, Decimal)],
    field: &str,
) -> Result<(Vec<IssuedLine>, Vec<StreamWrite>), ApiError> {
    let mut issued = Vec::new();
    let mut writes = Vec::new();
    for (index, (material, quantity)) in lines.iter().enumerate() {
        let decision = post_movement(
            store,
            MovementRequest {
                company: order.order.company.clone(),
                material: material.clone(),
                plant: order.order.plant.clone(),
                location: order.order.location.clone(),
                quantity: *quantity,
                unit: None,
                posting_date,
                movement_id: Uuid::now_v7(),
                kind: MovementKind::ProductionIssue {
                    order: order.order.number.to_string(),
                },
                value: None,
            },
        )
        .await
        .map_err(|error| from_materials(error, &format!("{field}[{index}].")))?;
        let value: Decimal = -decision
            .outcome
            .movements
            .iter()
            .map(|m| m.value)
            .sum::<Decimal>();
        issued.push(IssuedLine {
            material: material.clone(),
            quantity: *quantity,
            value,
        });
        writes.extend(decision.writes);
    }
    Ok((issued, writes))
}

/// Issues components to a released order at their stock's valuation.
pub async fn issue(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    posting_date: NaiveDate,
    lines: Vec<(MaterialNumber, Decimal)>,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, state) = existing_order(store, company, number).await?;
    state.check_issue(&lines).map_err(ApiError::validation)?;
    let movement_id = Uuid::now_v7();
    let (issued, writes) = issue_movements(store, &state, posting_date, &lines, "lines").await?;
    decided(
        &loaded,
        OrderCommand::Issue {
            posting_date,
            movement_id,
            lines: issued,
        },
        writes,
    )
}

/// Confirms an operation; the last operation's confirmation backflushes the components marked
/// so in the same append.
pub async fn confirm(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    confirmation: Confirmation,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, state) = existing_order(store, company, number).await?;
    let backflush = state
        .check_confirmation(&confirmation)
        .map_err(ApiError::validation)?;
    let (backflush, writes) = if backflush.is_empty() {
        (None, Vec::new())
    } else {
        let movement_id = Uuid::now_v7();
        let (issued, writes) = issue_movements(
            store,
            &state,
            confirmation.posting_date,
            &backflush,
            "backflush",
        )
        .await?;
        (Some((movement_id, issued)), writes)
    };
    decided(
        &loaded,
        OrderCommand::Confirm {
            confirmation,
            backflush,
        },
        writes,
    )
}

/// Receives the order's output into its location at the value the order gives it.
pub async fn receive(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    posting_date: NaiveDate,
    quantity: Decimal,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, state) = existing_order(store, company, number).await?;
    let value = state
        .receipt_value(quantity)
        .map_err(ApiError::validation)?;
    let movement_id = Uuid::now_v7();
    let receipt = post_movement(
        store,
        MovementRequest {
            company: company.clone(),
            material: state.order.material.clone(),
            plant: state.order.plant.clone(),
            location: state.order.location.clone(),
            quantity,
            unit: None,
            posting_date,
            movement_id,
            kind: MovementKind::ProductionReceipt {
                order: number.to_string(),
            },
            value: Some(value),
        },
    )
    .await
    .map_err(|error| from_materials(error, ""))?;
    decided(
        &loaded,
        OrderCommand::Receive {
            posting_date,
            movement_id,
            quantity,
        },
        receipt.writes,
    )
}

pub async fn complete(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    date: NaiveDate,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, _) = existing_order(store, company, number).await?;
    decided(&loaded, OrderCommand::Complete { date }, vec![])
}

pub async fn settle(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    posting_date: NaiveDate,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, _) = existing_order(store, company, number).await?;
    decided(&loaded, OrderCommand::Settle { posting_date }, vec![])
}

// ----- planned order conversion ---------------------------------------------------------------

/// What a planned order became: one stream per planned order id, so it is converted once.
pub struct PlannedOrderConversion;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversionEvent {
    PlannedOrderConverted {
        company: CompanyCode,
        plant: PlantCode,
        material: MaterialNumber,
        /// `production_order` or `purchase_order`.
        into: String,
        document: String,
    },
}

impl DomainEvent for ConversionEvent {}

impl Aggregate for PlannedOrderConversion {
    const TYPE: &'static str = "production.planned_order_conversion";
    type State = Option<String>;
    type Event = ConversionEvent;
    type Command = ConversionEvent;
    type Rejection = crate::master::Violations;

    fn decide(
        state: &Option<String>,
        command: ConversionEvent,
    ) -> Result<Vec<ConversionEvent>, crate::master::Violations> {
        if let Some(document) = state {
            return Err(vec![FieldError::new(
                "planned_order",
                "already_converted",
                format!("the planned order was converted into {document} already"),
            )]);
        }
        Ok(vec![command])
    }

    fn apply(state: &mut Option<String>, event: &ConversionEvent) {
        let ConversionEvent::PlannedOrderConverted { into, document, .. } = event;
        *state = Some(format!("{into} {document}"));
    }
}

/// What `planned_order` was converted into, if it was.
pub async fn converted(
    store: &EventStore,
    planned_order: &str,
) -> Result<Option<String>, RepositoryError> {
    Ok(
        aggregate::load::<PlannedOrderConversion>(store, planned_order)
            .await?
            .state,
    )
}

/// The write that marks `planned_order` converted, or why it cannot be.
pub async fn conversion(
    store: &EventStore,
    planned_order: &str,
    plant: &PlantKey,
    material: &MaterialNumber,
    into: &str,
    document: &str,
) -> Result<StreamWrite, ApiError> {
    let loaded = aggregate::load::<PlannedOrderConversion>(store, planned_order).await?;
    let (company, plant_code) = plant;
    let event = ConversionEvent::PlannedOrderConverted {
        company: CompanyCode::parse(company)
            .map_err(|rule| ApiError::internal(&format!("company {company}: {rule}")))?,
        plant: PlantCode::parse(plant_code)
            .map_err(|rule| ApiError::internal(&format!("plant {plant_code}: {rule}")))?,
        material: material.clone(),
        into: into.to_owned(),
        document: document.to_owned(),
    };
    Ok(loaded.decide(event).map_err(ApiError::validation)?.write)
}
