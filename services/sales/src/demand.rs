//! Sales' own side of availability and credit, kept from the event store's feed:
//!
//! - the confirmed demand of each material in each plant (`sales.material_demand`, one stream
//!   per company, material and plant, appended with every confirmation so that two orders
//!   cannot promise the same stock: a confirmation is written against the version the index
//!   saw, and a concurrent one makes the later append fail and check again);
//! - each customer's credit exposure: the gross value of open orders not yet billed, and the
//!   open items (invoices not cleared, credit memos not used up).

use crate::atp::ScheduleLine;
use crate::billing::{BillingDocument, BillingEvent, BillingKind, Payment, PaymentEvent};
use crate::customer::Violation;
use crate::order::{SalesDocument, SalesDocumentEvent, line_open_value};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tributary_kernel::event::{DomainEvent, decode};
use tributary_kernel::feed_index::FeedIndex;
use tributary_kernel::store::EventStore;
use tributary_kernel::{Aggregate, EventEnvelope};

// ----- the demand ledger of a material in a plant ---------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaterialDemandEvent {
    /// A line's confirmed schedule as it is now (empty: nothing confirmed any more).
    DemandChanged {
        order: String,
        line: u32,
        schedule: Vec<ScheduleLine>,
    },
}

impl DomainEvent for MaterialDemandEvent {}

/// The stream confirmations are serialised on; its state is the index's, not loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaterialDemand;

impl Aggregate for MaterialDemand {
    const TYPE: &'static str = "sales.material_demand";
    type State = ();
    type Event = MaterialDemandEvent;
    type Command = MaterialDemandEvent;
    type Rejection = Vec<Violation>;

    fn decide(
        _: &(),
        command: MaterialDemandEvent,
    ) -> Result<Vec<MaterialDemandEvent>, Vec<Violation>> {
        Ok(vec![command])
    }

    fn apply(_: &mut (), _: &MaterialDemandEvent) {}
}

/// `company/material/plant`.
pub fn demand_id(company: &str, material: &str, plant: &str) -> String {
    format!("{company}/{material}/{plant}")
}

#[derive(Default)]
struct KeyDemand {
    /// The demand stream's version the index has applied.
    version: i64,
    lines: HashMap<(String, u32), Vec<ScheduleLine>>,
}

/// The confirmed demand per material and plant.
#[derive(Default)]
pub struct DemandIndex {
    keys: HashMap<String, KeyDemand>,
}

/// What a check reads of one key: the demand by date and the version it reflects.
#[derive(Debug, Clone, Default)]
pub struct KeyView {
    pub version: i64,
    pub demand: BTreeMap<chrono::NaiveDate, Decimal>,
    /// Each line's schedule, so a change can take its own line out first.
    pub lines: HashMap<(String, u32), Vec<ScheduleLine>>,
}

impl DemandIndex {
    /// Applies an event of a demand stream (once: the feed never repeats one); its key is the
    /// event's aggregate id ([`demand_id`]).
    pub fn apply(&mut self, event: &EventEnvelope) {
        let key = self.keys.entry(event.aggregate_id.clone()).or_default();
        if event.sequence <= key.version {
            return;
        }
        // The version moves on whatever the event says: a conflict must not repeat forever.
        key.version = event.sequence;
        let Ok(MaterialDemandEvent::DemandChanged {
            order,
            line,
            schedule,
        }) = decode::<MaterialDemandEvent>(event)
        else {
            tracing::error!(id = %event.id, "an undecodable demand event is left out of availability");
            return;
        };
        if schedule.is_empty() {
            key.lines.remove(&(order, line));
        } else {
            key.lines.insert((order, line), schedule);
        }
    }

    /// Each line's confirmed schedule of a key ([`demand_id`]), by order and line.
    pub fn lines(&self, id: &str) -> Vec<(&str, u32, &[ScheduleLine])> {
        let mut found: Vec<(&str, u32, &[ScheduleLine])> = self
            .keys
            .get(id)
            .into_iter()
            .flat_map(|key| key.lines.iter())
            .map(|((order, line), schedule)| (order.as_str(), *line, schedule.as_slice()))
            .collect();
        found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        found
    }

    fn view(&self, id: &str) -> KeyView {
        let Some(key) = self.keys.get(id) else {
            return KeyView::default();
        };
        let mut demand: BTreeMap<chrono::NaiveDate, Decimal> = BTreeMap::new();
        for schedule in key.lines.values() {
            for s in schedule {
                *demand.entry(s.date).or_default() += s.quantity;
            }
        }
        KeyView {
            version: key.version,
            demand,
            lines: key.lines.clone(),
        }
    }
}

// ----- credit exposure ------------------------------------------------------------------------

/// What a line adds to its customer's exposure: its gross value and quantities.
struct LineValue {
    entry: crate::order::LineEntry,
    billed: Decimal,
    cancelled: bool,
}

impl LineValue {
    fn open(&self) -> Decimal {
        if self.cancelled {
            Decimal::ZERO
        } else {
            line_open_value(&self.entry, self.billed)
        }
    }
}

/// An open item of a customer: an invoice (positive), a credit memo or a payment's rest on
/// account (negative) not cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    /// `invoice`, `credit_memo` or `payment_on_account`.
    pub document_type: &'static str,
    pub number: String,
    pub due_date: chrono::NaiveDate,
    pub open: Decimal,
}

/// An open item's aggregate type and number.
type ItemKey = (&'static str, String);

#[derive(Default)]
pub struct CreditIndex {
    /// (company, order) → (customer, lines).
    orders: HashMap<(String, String), (String, Vec<LineValue>)>,
    /// (company, customer) → open order value.
    open_orders: HashMap<(String, String), Decimal>,
    /// (company, customer) → open items by aggregate type and number (billing documents and
    /// payments are numbered each in their own range).
    items: HashMap<(String, String), BTreeMap<ItemKey, OpenItem>>,
    /// (aggregate type, billing document or payment id) → its customer.
    customer_of: HashMap<ItemKey, (String, String)>,
}

impl CreditIndex {
    fn apply(&mut self, event: &EventEnvelope) {
        if event.aggregate_type == <BillingDocument as Aggregate>::TYPE {
            self.apply_billing(event);
            return;
        }
        if event.aggregate_type == <Payment as Aggregate>::TYPE {
            let payment = <Payment as Aggregate>::TYPE;
            match decode::<PaymentEvent>(event) {
                // Applied to invoices later: the negative item goes up.
                Ok(PaymentEvent::OnAccountApplied { items, .. }) => {
                    let applied: Decimal = items.iter().map(|i| i.amount).sum();
                    self.clear((payment, event.aggregate_id.clone()), applied);
                }
                // What a payment left on account is the customer's credit: a negative item.
                Ok(PaymentEvent::PaymentReceived {
                    company,
                    number,
                    customer,
                    date,
                    on_account,
                    ..
                }) if on_account > Decimal::ZERO => {
                    let key = (company.to_string(), customer.to_string());
                    self.customer_of
                        .insert((payment, event.aggregate_id.clone()), key.clone());
                    self.items.entry(key).or_default().insert(
                        (<Payment as Aggregate>::TYPE, number.to_string()),
                        OpenItem {
                            document_type: "payment_on_account",
                            number: number.to_string(),
                            due_date: date,
                            open: -on_account,
                        },
                    );
                }
                _ => {}
            }
            return;
        }
        let Ok(decoded) = decode::<SalesDocumentEvent>(event) else {
            return;
        };
        let company = event
            .aggregate_id
            .split_once('/')
            .map_or("", |(company, _)| company)
            .to_owned();
        let order_key = (company.clone(), event.aggregate_id.clone());
        if let SalesDocumentEvent::SalesOrderCreated {
            customer, lines, ..
        } = &decoded
        {
            let lines = lines
                .iter()
                .map(|entry| LineValue {
                    entry: entry.clone(),
                    billed: Decimal::ZERO,
                    cancelled: false,
                })
                .collect();
            self.orders
                .insert(order_key.clone(), (customer.to_string(), lines));
        }
        let Some((customer, lines)) = self.orders.get_mut(&order_key) else {
            return;
        };
        let created = matches!(decoded, SalesDocumentEvent::SalesOrderCreated { .. });
        let before: Decimal = if created {
            Decimal::ZERO
        } else {
            lines.iter().map(LineValue::open).sum()
        };
        fn line_of(lines: &mut [LineValue], number: u32) -> Option<&mut LineValue> {
            lines.iter_mut().find(|l| l.entry.line == number)
        }
        match decoded {
            SalesDocumentEvent::SalesOrderCreated { .. } => {}
            SalesDocumentEvent::LineChanged { line, .. } => {
                if let Some(value) = line_of(lines, line.line) {
                    value.entry = line;
                }
            }
            SalesDocumentEvent::LineCancelled { line } => {
                if let Some(value) = line_of(lines, line) {
                    value.cancelled = true;
                }
            }
            SalesDocumentEvent::LineBilled { line, quantity, .. } => {
                if let Some(value) = line_of(lines, line) {
                    value.billed += quantity;
                }
            }
            _ => return,
        }
        let after: Decimal = lines.iter().map(LineValue::open).sum();
        *self
            .open_orders
            .entry((company, customer.clone()))
            .or_default() += after - before;
    }
}

impl CreditIndex {
    fn apply_billing(&mut self, event: &EventEnvelope) {
        let Ok(decoded) = decode::<BillingEvent>(event) else {
            return;
        };
        match decoded {
            BillingEvent::BillingDocumentPosted {
                company,
                number,
                kind,
                customer,
                due_date,
                gross_value,
                discount_reversed,
                ..
            } => {
                let key = (company.to_string(), customer.to_string());
                let open = match kind {
                    BillingKind::Invoice => gross_value,
                    BillingKind::CreditMemo => -(gross_value - discount_reversed),
                };
                self.customer_of.insert(
                    (
                        <BillingDocument as Aggregate>::TYPE,
                        event.aggregate_id.clone(),
                    ),
                    key.clone(),
                );
                self.items.entry(key).or_default().insert(
                    (<BillingDocument as Aggregate>::TYPE, number.to_string()),
                    OpenItem {
                        document_type: kind.as_str(),
                        number: number.to_string(),
                        due_date,
                        open,
                    },
                );
            }
            BillingEvent::CreditMemoApplied { amount, .. } => self.clear(
                (
                    <BillingDocument as Aggregate>::TYPE,
                    event.aggregate_id.clone(),
                ),
                amount,
            ),
            BillingEvent::ItemCleared {
                amount, discount, ..
            } => self.clear(
                (
                    <BillingDocument as Aggregate>::TYPE,
                    event.aggregate_id.clone(),
                ),
                amount + discount,
            ),
        }
    }

    /// `amount` off the open item of the aggregate `(type, id)` (a billing document's or a
    /// payment's): an invoice's goes down, a negative one up, to zero.
    fn clear(&mut self, (kind, id): ItemKey, amount: Decimal) {
        let Some(key) = self.customer_of.get(&(kind, id.clone())) else {
            return;
        };
        let number = id.split_once('/').map_or("", |(_, number)| number);
        let item_key = (kind, number.to_owned());
        if let Some(items) = self.items.get_mut(key)
            && let Some(item) = items.get_mut(&item_key)
        {
            if item.open >= Decimal::ZERO {
                item.open -= amount;
            } else {
                item.open += amount;
            }
            if item.open.is_zero() {
                items.remove(&item_key);
            }
        }
    }
}

/// Sales' indexes of one installation (one per event store).
#[derive(Clone)]
pub struct SalesIndexes {
    pub demand: Arc<FeedIndex<DemandIndex>>,
    pub credit: Arc<FeedIndex<CreditIndex>>,
}

impl SalesIndexes {
    pub fn new(store: EventStore) -> SalesIndexes {
        SalesIndexes {
            demand: Arc::new(FeedIndex::new(
                store.clone(),
                &[<MaterialDemand as Aggregate>::TYPE],
                DemandIndex::apply,
            )),
            credit: Arc::new(FeedIndex::new(
                store,
                &[
                    <SalesDocument as Aggregate>::TYPE,
                    <BillingDocument as Aggregate>::TYPE,
                    <Payment as Aggregate>::TYPE,
                ],
                CreditIndex::apply,
            )),
        }
    }

    /// The demand of `company/material/plant` as of now, as far as the feed goes (the same
    /// prefix of the store as materials' supply).
    pub async fn demand(&self, id: &str) -> Result<KeyView, tributary_kernel::store::StoreError> {
        self.demand.read(|index| index.view(id)).await
    }

    /// A customer's open items as of now, by due date.
    pub async fn open_items(
        &self,
        company: &str,
        customer: &str,
    ) -> Result<Vec<OpenItem>, tributary_kernel::store::StoreError> {
        let key = (company.to_owned(), customer.to_owned());
        let mut items = self
            .credit
            .read(|index| {
                index
                    .items
                    .get(&key)
                    .map(|items| items.values().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .await?;
        items.sort_by(|a, b| {
            (a.due_date, &a.number, a.document_type).cmp(&(b.due_date, &b.number, b.document_type))
        });
        Ok(items)
    }

    /// The open order value of a customer as of now.
    pub async fn open_orders(
        &self,
        company: &str,
        customer: &str,
    ) -> Result<Decimal, tributary_kernel::store::StoreError> {
        let key = (company.to_owned(), customer.to_owned());
        self.credit
            .read(|index| index.open_orders.get(&key).copied().unwrap_or_default())
            .await
    }
}
