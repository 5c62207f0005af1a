//! Reservations (`materials.reservation`, stream `<company>/<material>/<plant>`): what other
//! contexts hold of a material's stock for a date (production orders their components, from
//! release until issued or completed). Availability counts them as demand, so a sales order is
//! never promised what a released production order needs.

use super::{MaterialNumber, PlantCode};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::master::CompanyCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationEvent {
    /// What `reference` holds from `date` on, as it is now (zero: nothing any more).
    ReservationSet {
        company: CompanyCode,
        material: MaterialNumber,
        plant: PlantCode,
        /// Who holds it, e.g. `production order PRD-1`.
        reference: String,
        date: NaiveDate,
        quantity: Decimal,
    },
}

impl DomainEvent for ReservationEvent {}

/// The reservations of a material in a plant: reference → (date, quantity).
pub struct Reservations;

pub type Reserved = BTreeMap<String, (NaiveDate, Decimal)>;

impl Aggregate for Reservations {
    const TYPE: &'static str = "materials.reservation";
    type State = Reserved;
    type Event = ReservationEvent;
    type Command = ReservationEvent;
    type Rejection = std::convert::Infallible;

    fn decide(
        state: &Reserved,
        command: ReservationEvent,
    ) -> Result<Vec<ReservationEvent>, Self::Rejection> {
        let ReservationEvent::ReservationSet {
            reference,
            date,
            quantity,
            ..
        } = &command;
        let unchanged = match state.get(reference) {
            Some(held) => held == &(*date, *quantity),
            None => quantity.is_zero(),
        };
        Ok(if unchanged { vec![] } else { vec![command] })
    }

    fn apply(state: &mut Reserved, event: &ReservationEvent) {
        let ReservationEvent::ReservationSet {
            reference,
            date,
            quantity,
            ..
        } = event;
        if quantity.is_zero() {
            state.remove(reference);
        } else {
            state.insert(reference.clone(), (*date, *quantity));
        }
    }
}
