//! Deliveries: confirmed order quantities issued from stock in one append with the order's
//! delivered quantities, materials' goods issue (at the stock's valuation) and the demand
//! they no longer are.

use super::*;
use crate::delivery::{Delivery, DeliveryCommand, DeliveryLine};
use crate::demand::{MaterialDemand, MaterialDemandEvent, demand_id};
use crate::order::*;
use std::collections::BTreeMap;
use tributary_kernel::master::UnitOfMeasure;
use tributary_kernel::store::StreamWrite;
use tributary_materials::commands::{MaterialsError, MovementRequest, post_movement};
use tributary_materials::domain::{LocationCode, Movement, MovementKind};

/// A delivery as a command gives it.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub order: DocumentNumber,
    pub posting_date: NaiveDate,
    pub location: LocationCode,
    /// Order line, quantity, unit (the line's without).
    pub lines: Vec<(u32, Decimal, Option<UnitOfMeasure>)>,
}

pub fn delivery_id(company: &CompanyCode, number: &DocumentNumber) -> String {
    format!("{company}/{number}")
}

pub async fn delivery(
    store: &EventStore,
    company: &CompanyCode,
    number: &DocumentNumber,
) -> Result<Loaded<Delivery>, SalesError> {
    Ok(aggregate::load::<Delivery>(store, &delivery_id(company, number)).await?)
}

/// Materials' refusal as this command's: its field under `prefix` (`lines[0].`).
pub(super) fn from_materials(error: MaterialsError, prefix: &str) -> SalesError {
    match error {
        MaterialsError::Rejected(violations) => SalesError::Rejected(
            violations
                .iter()
                .map(|v| violation(format!("{prefix}{}", v.field()), v.rule(), v.to_string()))
                .collect(),
        ),
        MaterialsError::NotFound { what, id } => SalesError::NotFound { what, id },
        MaterialsError::Repository(error) => SalesError::Repository(error),
        MaterialsError::Store(error) => SalesError::Store(error),
    }
}

pub async fn post_delivery(
    context: &OrderContext<'_>,
    new: NewDelivery,
) -> Result<Decision<Delivery>, SalesError> {
    let store = context.store;
    let company = &new.company;
    let loaded = delivery(store, company, &new.number).await?;
    if loaded.exists() {
        return Err(rejected(
            "number",
            "document_exists",
            format!("delivery {} exists", new.number),
        ));
    }
    let order_loaded = document(store, company, &new.order).await?;
    let Some(order) = order_loaded.state.clone() else {
        return Err(rejected(
            "order",
            "order_not_found",
            format!("sales order {} does not exist", new.order),
        ));
    };
    // Quantities in the base unit: the line's unit (its factor) or another of the material's.
    let mut violations = Vec::new();
    let mut lines = Vec::new();
    for (index, (number, quantity, unit)) in new.lines.iter().enumerate() {
        let field = format!("lines[{index}]");
        let Some(line) = order.line(*number) else {
            violations.push(violation(
                format!("{field}.line"),
                "line_not_found",
                format!("order {} has no line {number}", order.number),
            ));
            continue;
        };
        let factor = match unit {
            None => Some(line.entry.factor),
            Some(unit) if *unit == line.entry.unit => Some(line.entry.factor),
            Some(unit) => existing_material(store, company, &line.entry.material, "material")
                .await?
                .to_base(Decimal::ONE, unit),
        };
        match factor.map(|factor| base_quantity(*quantity, factor)) {
            Some(Ok(base)) => lines.push((field, *number, base)),
            Some(Err((rule, detail))) => {
                violations.push(violation(format!("{field}.quantity"), rule, detail));
            }
            None => violations.push(violation(
                format!("{field}.unit"),
                "unit_not_of_material",
                format!(
                    "{} is not a unit of material {}",
                    unit.as_ref().map_or("", |u| u.as_str()),
                    line.entry.material
                ),
            )),
        }
    }
    if !violations.is_empty() {
        return Err(SalesError::Rejected(violations));
    }
    // The order's rules first (what is confirmed and open), before the stock's.
    let delivered = |costs: &[Decimal]| SalesDocumentCommand::Deliver {
        delivery: new.number.to_string(),
        lines: lines
            .iter()
            .zip(costs.iter().chain(std::iter::repeat(&Decimal::ZERO)))
            .map(|((field, line, quantity), cost)| DeliveredLine {
                field: field.clone(),
                line: *line,
                quantity: *quantity,
                cost: *cost,
            })
            .collect(),
    };
    order_loaded.decide(delivered(&[]))?;

    // One goods issue per material and plant; its value shared by the lines by quantity.
    let mut groups: BTreeMap<(MaterialNumber, tributary_materials::domain::PlantCode), Vec<usize>> =
        BTreeMap::new();
    for (index, (_, number, _)) in lines.iter().enumerate() {
        if let Some(line) = order.line(*number) {
            groups
                .entry((line.entry.material.clone(), line.entry.plant.clone()))
                .or_default()
                .push(index);
        }
    }
    let mut writes: Vec<StreamWrite> = Vec::new();
    let mut delivery_lines = Vec::new();
    let mut costs = vec![Decimal::ZERO; lines.len()];
    for ((material, plant), indexes) in groups {
        let first = &lines[indexes[0]].0;
        let quantity: Decimal = indexes.iter().map(|i| lines[*i].2).sum();
        let issue = post_movement(
            store,
            MovementRequest {
                company: company.clone(),
                material: material.clone(),
                plant: plant.clone(),
                location: new.location.clone(),
                quantity,
                unit: None,
                posting_date: new.posting_date,
                movement_id: uuid::Uuid::now_v7(),
                kind: MovementKind::DeliveryIssue {
                    delivery: new.number.to_string(),
                    order: order.number.to_string(),
                    customer: order.customer.to_string(),
                },
                value: None,
            },
        )
        .await
        .map_err(|error| from_materials(error, &format!("{first}.")))?;
        let cost: Decimal = -issue
            .outcome
            .movements
            .iter()
            .map(|m: &Movement| m.value)
            .sum::<Decimal>();
        writes.extend(issue.writes);
        let mut left = cost;
        for (n, index) in indexes.iter().enumerate() {
            let (_, number, base) = &lines[*index];
            let share = if n + 1 == indexes.len() {
                left
            } else {
                (cost * *base / quantity).round_dp(2)
            };
            left -= share;
            costs[*index] = share;
            delivery_lines.push(DeliveryLine {
                line: *number,
                material: material.clone(),
                plant: plant.clone(),
                location: new.location.clone(),
                quantity: *base,
                cost: share,
            });
        }
        // What the lines still wait for is all that stays promised.
        let id = demand_id(company.as_str(), material.as_str(), plant.as_str());
        let view = context.indexes.demand(&id).await?;
        let mut events = Vec::new();
        let mut taken: BTreeMap<u32, Decimal> = BTreeMap::new();
        for index in &indexes {
            let (_, number, base) = &lines[*index];
            *taken.entry(*number).or_default() += *base;
        }
        for (number, base) in taken {
            let own = (order.number.to_string(), number);
            let schedule = view.lines.get(&own).cloned().unwrap_or_default();
            events.push(MaterialDemandEvent::DemandChanged {
                order: order.number.to_string(),
                line: number,
                schedule: crate::atp::split_schedule(&schedule, base).1,
            });
        }
        let stream = Loaded::<MaterialDemand> {
            id,
            state: (),
            version: view.version,
        };
        writes.push(stream.write(&events));
    }
    delivery_lines.sort_by_key(|l| l.line);
    writes.extend(order_loaded.decide(delivered(&costs))?.writes());
    let command = DeliveryCommand::Post(Box::new(Delivery {
        company: company.clone(),
        number: new.number.clone(),
        order: order.number.clone(),
        customer: order.customer.clone(),
        posting_date: new.posting_date,
        lines: delivery_lines,
        returned: BTreeMap::new(),
    }));
    let mut decision = decision(&loaded, command, "delivery", new.number.to_string())?;
    decision.writes.extend(writes);
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atp::ScheduleLine;

    #[test]
    fn a_delivery_takes_its_quantity_from_the_earliest_promised_dates() {
        let day = |n| NaiveDate::from_ymd_opt(2026, 3, n).unwrap();
        let schedule = [
            ScheduleLine {
                date: day(10),
                quantity: Decimal::from(100),
            },
            ScheduleLine {
                date: day(20),
                quantity: Decimal::from(50),
            },
        ];
        assert_eq!(
            crate::atp::split_schedule(&schedule, Decimal::from(120)).1,
            [ScheduleLine {
                date: day(20),
                quantity: Decimal::from(30)
            }]
        );
        assert_eq!(
            crate::atp::split_schedule(&schedule, Decimal::ZERO).1,
            schedule
        );
    }
}
