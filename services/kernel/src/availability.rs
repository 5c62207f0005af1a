//! Materials' published availability query: what a plant holds of a material and what it will
//! receive, by date. Sales' availability check (ATP) reads it; materials answers it in
//! process (an index kept from the event store's feed) or over gRPC when the contexts run as
//! separate services (`services/materials/proto/availability.proto`).

use crate::master::CompanyCode;
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// A material's supply in a plant, in its base unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supply {
    /// Unrestricted stock over every storage location of the plant.
    pub on_hand: Decimal,
    /// Open purchase order quantities by delivery date (ascending).
    pub receipts: Vec<(NaiveDate, Decimal)>,
    /// What other contexts reserved of the stock (production orders' components), by the
    /// date it is needed (ascending): demand, like confirmed sales.
    pub reserved: Vec<(NaiveDate, Decimal)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AvailabilityError {
    #[error("availability is not known here: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Availability: Send + Sync {
    /// The supply of `material` in `plant` of `company`, as of every event committed before
    /// the call.
    async fn supply(
        &self,
        company: &CompanyCode,
        material: &str,
        plant: &str,
    ) -> Result<Supply, AvailabilityError>;
}
