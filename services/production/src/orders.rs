//! Production order commands: load what a command needs (the bill of material, routing, work
//! centres and stock valuations of an order to create; the stocks an issue or receipt moves),
//! decide, and plan one append with materials' goods movements.

use crate::commands::{existing_material, existing_plant, planning};
use crate::master::{BillOfMaterial, RoutingRecord, WorkCenterRecord, material_key};
use crate::order::*;
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::event::DomainEvent;
use tributary_kernel::http::{ApiError, FieldError};
use tributary_kernel::master::CompanyCode;
use tributary_kernel::store::{Decision, EventStore, StreamWrite};
use tributary_kernel::{Aggregate, RepositoryError};
use tributary_materials::commands::{MaterialsError, MovementRequest, post_movement};
use tributary_materials::domain::{
    LocationCode, MaterialNumber, MovementKind, PlantCode, ReservationEvent, Reservations,
};
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

/// What a released order holds of each component's stock: what is still to issue of it
/// (nothing before release and after completion).
fn reserved(order: Option<&ProductionOrder>) -> BTreeMap<MaterialNumber, Decimal> {
    order
        .into_iter()
        .flat_map(|order| {
            order.components.iter().map(|c| {
                let open = if order.status == OrderStatus::Released {
                    c.open()
                } else {
                    Decimal::ZERO
                };
                (c.planned.material.clone(), open)
            })
        })
        .collect()
}

/// The order's decision on `command`, appended with `writes` (materials' movements) and the
/// changes of what it reserves in materials' availability.
async fn decided(
    store: &EventStore,
    loaded: &Loaded<ProductionOrderRecord>,
    command: OrderCommand,
    mut writes: Vec<StreamWrite>,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let before = reserved(loaded.state.as_ref());
    let decided = loaded.decide(command).map_err(ApiError::validation)?;
    let state = decided
        .state
        .clone()
        .ok_or_else(|| ApiError::internal(&"a decided order has no state"))?;
    let after = reserved(Some(&state));
    // The order's event first: readers of the feed see the order before its movements.
    let mut all = decided.writes();
    let order = &state.order;
    for (material, quantity) in &after {
        if before.get(material).copied().unwrap_or_default() == *quantity {
            continue;
        }
        let id = tributary_materials::commands::stock_id(&order.company, material, &order.plant);
        let reservations = aggregate::load::<Reservations>(store, &id).await?;
        let Ok(decided) = reservations.decide(ReservationEvent::ReservationSet {
            company: order.company.clone(),
            material: material.clone(),
            plant: order.plant.clone(),
            reference: format!("production order {}", order.number),
            date: order.start_date,
            quantity: *quantity,
        });
        all.extend(decided.writes());
    }
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
    if let Some(start) = new.start_date
        && start > new.finish_date
    {
        return Err(ApiError::field(
            "start_date",
            "date_order",
            format!(
                "the start date {start} is after the finish date {}",
                new.finish_date
            ),
        ));
    }
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
            quantity: component.quantity,
            scrap_percent: component.scrap_percent,
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
    let standard = StandardCost::estimate(new.quantity, &planned_components, &operations)
        .ok_or_else(|| {
            ApiError::field(
                "quantity",
                "amount_range",
                format!(
                    "the cost estimate of {} would exceed {}",
                    new.quantity,
                    amount_max()
                ),
            )
        })?;
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
    let mut decision = decided(store, &loaded, command, vec![]).await?;
    decision.reads = reads;
    Ok(decision)
}

/// A change of status (release, technical completion, settlement): nothing but the order.
pub async fn change(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    command: OrderCommand,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, _) = existing_order(store, company, number).await?;
    decided(store, &loaded, command, vec![]).await
}

/// Where a refusal of an issue's stock goes: the line of the issue given by hand, or (a
/// backflush) the confirmed quantity, naming the component.
#[derive(Clone, Copy)]
enum IssuedBy {
    Hand,
    Backflush,
}

/// Issues `lines` (material, quantity) from the order's location, each valued by its stock,
/// all under `movement_id` (one issue document).
async fn issue_movements(
    store: &EventStore,
    order: &ProductionOrder,
    posting_date: NaiveDate,
    movement_id: Uuid,
    lines: &[(MaterialNumber, Decimal)],
    by: IssuedBy,
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
                movement_id,
                kind: MovementKind::ProductionIssue {
                    order: order.order.number.to_string(),
                },
                value: None,
            },
        )
        .await
        .map_err(|error| match (by, error) {
            (IssuedBy::Backflush, MaterialsError::Rejected(violations)) => ApiError::validation(
                violations
                    .iter()
                    .map(|v| {
                        FieldError::new(
                            "yield_quantity",
                            v.rule(),
                            format!("backflushing component {material}: {v}"),
                        )
                    })
                    .collect(),
            ),
            (_, error) => from_materials(error, &format!("lines[{index}].")),
        })?;
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
    let (issued, writes) = issue_movements(
        store,
        &state,
        posting_date,
        movement_id,
        &lines,
        IssuedBy::Hand,
    )
    .await?;
    decided(
        store,
        &loaded,
        OrderCommand::Issue {
            posting_date,
            movement_id,
            lines: issued,
        },
        writes,
    )
    .await
}

/// Confirms an operation; the last operation's confirmation backflushes the components marked
/// so in the same append. Without `hours_given`, the hours are the planned ones of the quantity
/// confirmed (the setup on the operation's first confirmation), from the order as loaded here.
pub async fn confirm(
    store: &EventStore,
    company: &CompanyCode,
    number: &OrderNumber,
    mut confirmation: Confirmation,
    hours_given: bool,
) -> Result<Decision<ProductionOrder>, ApiError> {
    let (loaded, state) = existing_order(store, company, number).await?;
    if !hours_given && let Some(operation) = state.operation(confirmation.operation) {
        let planned = &operation.planned;
        confirmation.setup_hours = if operation.confirmations == 0 {
            planned.setup_hours
        } else {
            Decimal::ZERO
        };
        confirmation.run_hours = planned
            .run_hours_per_unit
            .checked_mul(confirmation.yield_quantity + confirmation.scrap_quantity)
            .unwrap_or(Decimal::MAX);
    }
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
            movement_id,
            &backflush,
            IssuedBy::Backflush,
        )
        .await?;
        (Some((movement_id, issued)), writes)
    };
    decided(
        store,
        &loaded,
        OrderCommand::Confirm {
            confirmation,
            backflush,
        },
        writes,
    )
    .await
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
        store,
        &loaded,
        OrderCommand::Receive {
            posting_date,
            movement_id,
            quantity,
        },
        receipt.writes,
    )
    .await
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

/// Every conversion of a material's planned orders in a plant (stream `company/plant/material`):
/// a plan made before the last of them is outdated, as it did not see the order it became.
pub struct MaterialConversions;

impl Aggregate for MaterialConversions {
    const TYPE: &'static str = "production.material_conversions";
    type State = ();
    type Event = ConversionEvent;
    type Command = ConversionEvent;
    type Rejection = crate::master::Violations;

    fn decide(_: &(), command: ConversionEvent) -> Result<Vec<ConversionEvent>, Self::Rejection> {
        Ok(vec![command])
    }

    fn apply(_: &mut (), _: &ConversionEvent) {}
}

/// A planned order to convert: its id, where it is planned, and the feed position its plan
/// version was made at.
pub struct Converting<'a> {
    pub planned_order: &'a str,
    pub company: &'a CompanyCode,
    pub plant: &'a PlantCode,
    pub material: &'a MaterialNumber,
    pub feed_position: i64,
}

/// The writes that mark a planned order converted into `document` (once; and for its
/// material, so a plan made before this conversion cannot be converted after it), or why it
/// cannot be.
pub async fn conversion(
    store: &EventStore,
    converting: &Converting<'_>,
    into: &str,
    document: &str,
) -> Result<Vec<StreamWrite>, ApiError> {
    let event = ConversionEvent::PlannedOrderConverted {
        company: converting.company.clone(),
        plant: converting.plant.clone(),
        material: converting.material.clone(),
        into: into.to_owned(),
        document: document.to_owned(),
    };
    let id = material_key(converting.company, converting.plant, converting.material);
    let earlier = store
        .load(MaterialConversions::TYPE, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    if let Some(last) = earlier.last()
        && last.cursor > converting.feed_position
    {
        return Err(ApiError::field(
            "planned_order",
            "plan_outdated",
            format!(
                "the plan of {} was made before another of its planned orders was converted: wait for MRP to plan it again",
                converting.material
            ),
        ));
    }
    let conversions = Loaded::<MaterialConversions> {
        id,
        state: (),
        version: i64::try_from(earlier.len()).unwrap_or(i64::MAX),
    };
    let once = aggregate::load::<PlannedOrderConversion>(store, converting.planned_order).await?;
    Ok(vec![
        once.decide(event.clone())
            .map_err(ApiError::validation)?
            .write,
        conversions
            .decide(event)
            .map_err(ApiError::validation)?
            .write,
    ])
}
