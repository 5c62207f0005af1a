//! Outbound deliveries (`sales.delivery`): confirmed order quantities leaving a plant's
//! storage location for the customer. The goods issue is materials' (a `DeliveryIssue`
//! movement at the stock's valuation, appended with the delivery); the delivery keeps what
//! each line cost, which billing (margin) and returns (back at that value) use.

use crate::customer::{CustomerNumber, Violation, violation};
use crate::order::DocumentNumber;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::master::CompanyCode;
use tributary_materials::domain::{LocationCode, MaterialNumber, PlantCode};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLine {
    /// The order line delivered.
    pub line: u32,
    pub material: MaterialNumber,
    pub plant: PlantCode,
    pub location: LocationCode,
    /// In the material's base unit.
    pub quantity: Decimal,
    /// What the goods issue took off the stock's value for this line.
    pub cost: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryEvent {
    DeliveryPosted {
        company: CompanyCode,
        number: DocumentNumber,
        order: DocumentNumber,
        customer: CustomerNumber,
        posting_date: NaiveDate,
        lines: Vec<DeliveryLine>,
    },
}

impl DomainEvent for DeliveryEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub order: DocumentNumber,
    pub customer: CustomerNumber,
    pub posting_date: NaiveDate,
    pub lines: Vec<DeliveryLine>,
    /// Quantities returned per order line (credit memos).
    pub returned: BTreeMap<u32, Decimal>,
}

impl Delivery {
    /// The cost of `quantity` of an order line's delivered goods (their issue value per unit).
    pub fn cost_of(&self, line: u32, quantity: Decimal) -> Decimal {
        let (delivered, cost) = self
            .lines
            .iter()
            .filter(|l| l.line == line)
            .fold((Decimal::ZERO, Decimal::ZERO), |(q, c), l| {
                (q + l.quantity, c + l.cost)
            });
        if delivered.is_zero() {
            Decimal::ZERO
        } else {
            (cost * quantity / delivered).round_dp(2)
        }
    }
}

#[derive(Debug)]
pub enum DeliveryCommand {
    Post(Box<Delivery>),
}

impl Aggregate for Delivery {
    const TYPE: &'static str = "sales.delivery";
    type State = Option<Delivery>;
    type Event = DeliveryEvent;
    type Command = DeliveryCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<Delivery>,
        command: DeliveryCommand,
    ) -> Result<Vec<DeliveryEvent>, Vec<Violation>> {
        match command {
            DeliveryCommand::Post(delivery) => {
                if state.is_some() {
                    return Err(vec![violation(
                        "number",
                        "document_exists",
                        format!("delivery {} exists", delivery.number),
                    )]);
                }
                if delivery.lines.is_empty() {
                    return Err(vec![violation("lines", "required", "a delivery has lines")]);
                }
                let delivery = *delivery;
                Ok(vec![DeliveryEvent::DeliveryPosted {
                    company: delivery.company,
                    number: delivery.number,
                    order: delivery.order,
                    customer: delivery.customer,
                    posting_date: delivery.posting_date,
                    lines: delivery.lines,
                }])
            }
        }
    }

    fn apply(state: &mut Option<Delivery>, event: &DeliveryEvent) {
        match event {
            DeliveryEvent::DeliveryPosted {
                company,
                number,
                order,
                customer,
                posting_date,
                lines,
            } => {
                *state = Some(Delivery {
                    company: company.clone(),
                    number: number.clone(),
                    order: order.clone(),
                    customer: customer.clone(),
                    posting_date: *posting_date,
                    lines: lines.clone(),
                    returned: BTreeMap::new(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_type_has_a_golden_fixture() {
        let problems = tributary_kernel::event::check_fixtures::<super::DeliveryEvent>(
            std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/events/sales.delivery"
            )),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
