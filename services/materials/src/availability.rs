//! Materials' availability query in process: stock on hand per material and plant from the
//! goods movements, open purchase order quantities by delivery date, and what is reserved of
//! the stock (production orders' components), kept in an index from the event store's feed
//! (see [`tributary_kernel::feed_index`]).

use crate::domain::{
    PurchaseOrder, PurchaseOrderEvent, ReservationEvent, Reservations, Stock, StockEvent,
};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tributary_kernel::availability::{Availability, AvailabilityError, Supply};
use tributary_kernel::event::decode;
use tributary_kernel::feed_index::FeedIndex;
use tributary_kernel::master::CompanyCode;
use tributary_kernel::store::EventStore;
use tributary_kernel::{Aggregate, EventEnvelope};

/// (company, material, plant).
pub type Key = (String, String, String);

/// A purchase order line still to come: (order, line, delivery date, open quantity).
pub type OpenReceipt = (String, u32, chrono::NaiveDate, Decimal);

/// An open purchase order line: where and when it is due, what is still to come.
struct OpenLine {
    key: Key,
    delivery_date: chrono::NaiveDate,
    ordered: Decimal,
    received: Decimal,
    cancelled: bool,
}

impl OpenLine {
    fn open(&self) -> Decimal {
        if self.cancelled {
            Decimal::ZERO
        } else {
            (self.ordered - self.received).max(Decimal::ZERO)
        }
    }
}

#[derive(Default)]
pub struct SupplyIndex {
    on_hand: HashMap<Key, Decimal>,
    /// (company, order, line) → the line.
    lines: HashMap<(String, String, u32), OpenLine>,
    /// The lines of each key, for the answer.
    lines_of: HashMap<Key, Vec<(String, String, u32)>>,
    closed: std::collections::HashSet<(String, String)>,
    /// What is reserved of each key: reference → (date, quantity).
    reserved: HashMap<Key, BTreeMap<String, (chrono::NaiveDate, Decimal)>>,
}

impl SupplyIndex {
    /// Applies a goods movement or purchase order event (once: the feed never repeats one);
    /// answers the keys whose supply it changed.
    pub fn apply(&mut self, event: &EventEnvelope) -> Vec<Key> {
        if event.aggregate_type == <Reservations as Aggregate>::TYPE {
            let Ok(ReservationEvent::ReservationSet {
                company,
                material,
                plant,
                reference,
                date,
                quantity,
            }) = decode::<ReservationEvent>(event)
            else {
                return Vec::new();
            };
            let key = (company.to_string(), material.to_string(), plant.to_string());
            let held = self.reserved.entry(key.clone()).or_default();
            if quantity.is_zero() {
                held.remove(&reference);
            } else {
                held.insert(reference, (date, quantity));
            }
            return vec![key];
        }
        if event.aggregate_type == <Stock as Aggregate>::TYPE {
            if let Ok(StockEvent::GoodsMovementPosted {
                company,
                material,
                plant,
                movements,
                ..
            }) = decode::<StockEvent>(event)
            {
                let key = (company.to_string(), material.to_string(), plant.to_string());
                let moved: Decimal = movements.iter().map(|m| m.quantity).sum();
                *self.on_hand.entry(key.clone()).or_default() += moved;
                return vec![key];
            }
            return Vec::new();
        }
        let Ok(event) = decode::<PurchaseOrderEvent>(event) else {
            return Vec::new();
        };
        let mut touched = Vec::new();
        match event {
            PurchaseOrderEvent::PurchaseOrderCreated {
                company,
                number,
                lines,
                ..
            } => {
                for line in lines {
                    let key = (
                        company.to_string(),
                        line.material.to_string(),
                        line.plant.to_string(),
                    );
                    let id = (company.to_string(), number.to_string(), line.line);
                    self.lines_of
                        .entry(key.clone())
                        .or_default()
                        .push(id.clone());
                    touched.push(key.clone());
                    self.lines.insert(
                        id,
                        OpenLine {
                            key,
                            delivery_date: line.delivery_date,
                            ordered: line.ordered_base(),
                            received: Decimal::ZERO,
                            cancelled: false,
                        },
                    );
                }
            }
            PurchaseOrderEvent::PurchaseOrderLineChanged {
                company,
                number,
                line,
                ..
            } => {
                let id = (company.to_string(), number.to_string(), line.line);
                if let Some(open) = self.lines.get_mut(&id) {
                    open.ordered = line.ordered_base();
                    open.delivery_date = line.delivery_date;
                    touched.push(open.key.clone());
                }
            }
            PurchaseOrderEvent::PurchaseOrderLineCancelled {
                company,
                number,
                line,
            } => {
                if let Some(open) =
                    self.lines
                        .get_mut(&(company.to_string(), number.to_string(), line))
                {
                    open.cancelled = true;
                    touched.push(open.key.clone());
                }
            }
            PurchaseOrderEvent::PurchaseOrderReceived {
                company,
                number,
                line,
                quantity,
                ..
            } => {
                if let Some(open) =
                    self.lines
                        .get_mut(&(company.to_string(), number.to_string(), line))
                {
                    open.received += quantity;
                    touched.push(open.key.clone());
                }
            }
            PurchaseOrderEvent::PurchaseOrderClosed { company, number } => {
                let order = (company.to_string(), number.to_string());
                touched.extend(
                    self.lines
                        .iter()
                        .filter(|((c, n, _), _)| (c, n) == (&order.0, &order.1))
                        .map(|(_, line)| line.key.clone()),
                );
                self.closed.insert(order);
            }
            PurchaseOrderEvent::PurchaseOrderInvoiced { .. } => {}
        }
        touched
    }

    pub fn on_hand(&self, key: &Key) -> Decimal {
        self.on_hand.get(key).copied().unwrap_or_default()
    }

    /// The purchase order lines of `key` still to come, by order and line.
    pub fn open_receipts(&self, key: &Key) -> Vec<OpenReceipt> {
        let mut found: Vec<OpenReceipt> = self
            .lines_of
            .get(key)
            .into_iter()
            .flatten()
            .filter(|id| !self.closed.contains(&(id.0.clone(), id.1.clone())))
            .filter_map(|id| {
                let line = self.lines.get(id)?;
                let open = line.open();
                (!open.is_zero()).then(|| (id.1.clone(), id.2, line.delivery_date, open))
            })
            .collect();
        found.sort();
        found
    }

    fn supply(&self, key: &Key) -> Supply {
        let mut receipts: BTreeMap<chrono::NaiveDate, Decimal> = BTreeMap::new();
        for id in self.lines_of.get(key).into_iter().flatten() {
            if self.closed.contains(&(id.0.clone(), id.1.clone())) {
                continue;
            }
            if let Some(line) = self.lines.get(id).filter(|l| !l.open().is_zero()) {
                debug_assert_eq!(&line.key, key);
                *receipts.entry(line.delivery_date).or_default() += line.open();
            }
        }
        let mut reserved: BTreeMap<chrono::NaiveDate, Decimal> = BTreeMap::new();
        for (date, quantity) in self.reserved.get(key).into_iter().flat_map(|r| r.values()) {
            *reserved.entry(*date).or_default() += *quantity;
        }
        Supply {
            on_hand: self.on_hand.get(key).copied().unwrap_or_default(),
            receipts: receipts.into_iter().collect(),
            reserved: reserved.into_iter().collect(),
        }
    }
}

/// The in-process availability of materials.
pub struct LocalAvailability {
    index: FeedIndex<SupplyIndex>,
}

/// What the index reads: goods movements and purchase orders.
pub const TYPES: &[&str] = &[
    <Stock as Aggregate>::TYPE,
    <PurchaseOrder as Aggregate>::TYPE,
    <Reservations as Aggregate>::TYPE,
];

/// The module's [`tributary_kernel::module::AvailabilityFactory`].
pub fn local(store: EventStore) -> Arc<dyn Availability> {
    Arc::new(LocalAvailability {
        index: FeedIndex::new(store, TYPES, |index, event| {
            index.apply(event);
        }),
    })
}

#[async_trait::async_trait]
impl Availability for LocalAvailability {
    async fn supply(
        &self,
        company: &CompanyCode,
        material: &str,
        plant: &str,
    ) -> Result<Supply, AvailabilityError> {
        let key = (company.to_string(), material.to_owned(), plant.to_owned());
        self.index
            .read(|index| index.supply(&key))
            .await
            .map_err(|error| AvailabilityError::Unavailable(error.to_string()))
    }
}
