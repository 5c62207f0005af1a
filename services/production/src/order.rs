//! Production orders (`production.order`, stream `company/number`), as a pure aggregate.
//!
//! ```text
//!  created ──release──► released ──complete──► technically complete ──settle──► closed
//!     │        (reserves        │ component issues, confirmations,
//!     │         components)     │ goods receipts
//!     └──────────complete───────┘ (an order never released ends without costs)
//! ```
//!
//! An order is created by hand or from a planned order: its components come from the bill of
//! material valid on its start date (quantity per unit with the component's scrap), its
//! operations from the routing with each work centre's rate and cost centre, and its standard
//! cost (the cost estimate: components at their stock's valuation, activity at the rates) is
//! kept with it. What it costs (work in process) is the components issued to it at their
//! valuation and the activity confirmed at the rate; its goods receipts take out the standard
//! cost (or the actual cost so far, share by quantity); settling a technically complete order
//! takes out what is left as its variance. Goods movements are materials' (issued and received
//! in the same append); the ledger postings of confirmations and settlement are finance's
//! (`finance.production-postings`).

use crate::master::{Violations, WorkCenterCode};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::http::FieldError;
use tributary_kernel::master::{CompanyCode, Currency};
use tributary_materials::domain::{LocationCode, MaterialNumber, PlantCode};
use uuid::Uuid;

tributary_kernel::code!(
    OrderNumber,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);

pub fn order_id(company: &CompanyCode, number: &OrderNumber) -> String {
    format!("{company}/{number}")
}

fn fail<T>(
    field: impl Into<String>,
    rule: &str,
    detail: impl Into<String>,
) -> Result<T, Violations> {
    Err(vec![FieldError::new(field, rule, detail)])
}

/// The largest amount an order's costs may reach (what a journal line takes: 15 digits).
pub fn amount_max() -> Decimal {
    Decimal::from(999_999_999_999_999_i64)
}

/// The most hours one confirmation may give per operation.
pub fn hours_max() -> Decimal {
    Decimal::from(100_000)
}

fn round_amount(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// What a goods receipt of the order's output is valued at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptValuation {
    /// The standard cost per unit of the cost estimate made when the order was created.
    Standard,
    /// The costs the order collected so far, shared by quantity over what is still to come.
    Actual,
}

impl ReceiptValuation {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptValuation::Standard => "standard",
            ReceiptValuation::Actual => "actual",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Released,
    TechnicallyComplete,
    Closed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Released => "released",
            OrderStatus::TechnicallyComplete => "technically_complete",
            OrderStatus::Closed => "closed",
        }
    }

    /// Still to be produced: MRP counts its output as a scheduled receipt and its components
    /// as dependent demand.
    pub fn open(self) -> bool {
        matches!(self, OrderStatus::Created | OrderStatus::Released)
    }
}

/// A component as the order plans it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedComponent {
    pub material: MaterialNumber,
    /// Per base unit of the order's material, as the bill of material gives it.
    pub quantity: Decimal,
    /// Percent added for what is lost in production.
    pub scrap_percent: Decimal,
    /// For the order's quantity.
    pub required: Decimal,
    /// Issued by the confirmation of the last operation instead of by hand.
    pub backflush: bool,
    /// Its price in the cost estimate (its stock's value per unit when the order was created;
    /// zero when nothing was on hand).
    pub unit_price: Decimal,
}

/// An operation as the order plans it, with its work centre's rate when the order was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOperation {
    pub number: u32,
    pub description: String,
    pub work_center: WorkCenterCode,
    pub cost_center: String,
    pub setup_hours: Decimal,
    pub run_hours_per_unit: Decimal,
    pub cost_rate_per_hour: Decimal,
}

impl PlannedComponent {
    /// What `parent_quantity` of the order's material needs of it, with scrap (four decimals,
    /// rounded up as MRP rounds).
    pub fn requirement(&self, parent_quantity: Decimal) -> Decimal {
        crate::mrp::Component {
            material: self.material.to_string(),
            quantity: self.quantity,
            scrap_percent: self.scrap_percent,
            valid_from: None,
            valid_to: None,
            backflush: self.backflush,
        }
        .requirement(parent_quantity)
    }
}

impl PlannedOperation {
    pub fn planned_hours(&self, quantity: Decimal) -> Decimal {
        self.setup_hours + self.run_hours_per_unit * quantity
    }
}

/// The cost estimate: what the order's quantity should cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardCost {
    pub material_cost: Decimal,
    pub activity_cost: Decimal,
    pub total: Decimal,
    /// Total per base unit (four decimals): what a receipt at standard takes per unit.
    pub unit_cost: Decimal,
}

impl StandardCost {
    /// The estimate, or none when an amount would exceed what the ledger takes.
    pub fn estimate(
        quantity: Decimal,
        components: &[PlannedComponent],
        operations: &[PlannedOperation],
    ) -> Option<StandardCost> {
        let mut material_cost = Decimal::ZERO;
        for c in components {
            material_cost = material_cost.checked_add(c.required.checked_mul(c.unit_price)?)?;
        }
        let mut activity_cost = Decimal::ZERO;
        for o in operations {
            let hours = o
                .setup_hours
                .checked_add(o.run_hours_per_unit.checked_mul(quantity)?)?;
            activity_cost = activity_cost.checked_add(hours.checked_mul(o.cost_rate_per_hour)?)?;
        }
        let (material_cost, activity_cost) =
            (round_amount(material_cost), round_amount(activity_cost));
        let total = material_cost.checked_add(activity_cost)?;
        if total > amount_max() {
            return None;
        }
        let unit_cost = if quantity.is_zero() {
            Decimal::ZERO
        } else {
            (total / quantity).round_dp(4)
        };
        Some(StandardCost {
            material_cost,
            activity_cost,
            total,
            unit_cost,
        })
    }
}

/// An order as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub number: OrderNumber,
    pub material: MaterialNumber,
    /// In the material's base unit.
    pub quantity: Decimal,
    /// Where components are issued from and the output is received into.
    pub location: LocationCode,
    pub start_date: NaiveDate,
    pub finish_date: NaiveDate,
    /// The planned order it was converted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_order: Option<String>,
    pub receipt_valuation: ReceiptValuation,
    pub currency: Currency,
    pub components: Vec<PlannedComponent>,
    pub operations: Vec<PlannedOperation>,
    pub standard: StandardCost,
}

/// A component quantity issued to the order (signed value: what left stock, positive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedLine {
    pub material: MaterialNumber,
    pub quantity: Decimal,
    pub value: Decimal,
}

/// An operation confirmation as given (quantities in the base unit, hours actual).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub operation: u32,
    pub posting_date: NaiveDate,
    pub yield_quantity: Decimal,
    pub scrap_quantity: Decimal,
    pub setup_hours: Decimal,
    pub run_hours: Decimal,
    /// No more confirmations of this operation follow.
    pub final_confirmation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderCreated(Box<NewOrder>),
    /// Released for production: its components are reserved.
    OrderReleased {
        date: NaiveDate,
        reservations: Vec<IssuedLine>,
    },
    ComponentsIssued {
        posting_date: NaiveDate,
        movement_id: Uuid,
        /// Issued by an operation confirmation rather than by hand.
        backflush: bool,
        lines: Vec<IssuedLine>,
    },
    OperationConfirmed {
        /// 1, 2, … per order.
        confirmation: u32,
        #[serde(flatten)]
        confirmed: Confirmation,
        work_center: WorkCenterCode,
        cost_center: String,
        cost_rate_per_hour: Decimal,
        /// (setup + run hours) × rate: debited to the order, credited to the cost centre.
        activity_value: Decimal,
        currency: Currency,
    },
    GoodsReceived {
        posting_date: NaiveDate,
        movement_id: Uuid,
        quantity: Decimal,
        valuation: ReceiptValuation,
        /// What the receipt took out of the order: the value it entered stock at.
        value: Decimal,
    },
    TechnicallyCompleted {
        date: NaiveDate,
    },
    /// What the order is left with after its receipts goes to variance; the order is closed.
    OrderSettled {
        posting_date: NaiveDate,
        actual_cost: Decimal,
        received_value: Decimal,
        variance: Decimal,
        currency: Currency,
    },
}

impl DomainEvent for OrderEvent {}

/// A component of an order with what was issued of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentState {
    pub planned: PlannedComponent,
    pub issued: Decimal,
    pub issued_value: Decimal,
}

impl ComponentState {
    /// What is reserved and not issued yet (nothing once the order is no longer open).
    pub fn open(&self) -> Decimal {
        (self.planned.required - self.issued).max(Decimal::ZERO)
    }
}

/// An operation of an order with what was confirmed of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationState {
    pub planned: PlannedOperation,
    pub confirmations: u32,
    pub yield_quantity: Decimal,
    pub scrap_quantity: Decimal,
    pub hours: Decimal,
    pub activity_value: Decimal,
    pub final_confirmed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionOrder {
    pub order: NewOrder,
    pub status: OrderStatus,
    pub released_on: Option<NaiveDate>,
    pub components: Vec<ComponentState>,
    pub operations: Vec<OperationState>,
    pub confirmations: u32,
    pub received: Decimal,
    pub received_value: Decimal,
    pub completed_on: Option<NaiveDate>,
    pub variance: Option<Decimal>,
}

impl ProductionOrder {
    /// Components issued and activity confirmed so far.
    pub fn actual_cost(&self) -> Decimal {
        self.components
            .iter()
            .map(|c| c.issued_value)
            .sum::<Decimal>()
            + self
                .operations
                .iter()
                .map(|o| o.activity_value)
                .sum::<Decimal>()
    }

    /// What the order holds in work in process: its costs less what its receipts took out
    /// (and, once settled, its variance).
    pub fn work_in_process(&self) -> Decimal {
        self.actual_cost() - self.received_value - self.variance.unwrap_or_default()
    }

    /// Still to be received.
    pub fn open_quantity(&self) -> Decimal {
        if self.status.open() {
            (self.order.quantity - self.received).max(Decimal::ZERO)
        } else {
            Decimal::ZERO
        }
    }

    pub fn component(&self, material: &MaterialNumber) -> Option<&ComponentState> {
        self.components
            .iter()
            .find(|c| &c.planned.material == material)
    }

    pub fn operation(&self, number: u32) -> Option<&OperationState> {
        self.operations.iter().find(|o| o.planned.number == number)
    }

    fn last_operation(&self) -> Option<u32> {
        self.operations.last().map(|o| o.planned.number)
    }

    fn released(&self, action: &str) -> Result<(), Violations> {
        if self.status == OrderStatus::Released {
            return Ok(());
        }
        fail(
            "status",
            "order_not_released",
            format!(
                "order {} is {}: only a released order can {action}",
                self.order.number,
                self.status.as_str()
            ),
        )
    }

    /// Checks component issues before materials values them: the order is released, each
    /// material is one of its components, each quantity positive.
    pub fn check_issue(&self, lines: &[(MaterialNumber, Decimal)]) -> Result<(), Violations> {
        self.released("take component issues")?;
        let mut violations = Vec::new();
        if lines.is_empty() {
            violations.push(FieldError::new(
                "lines",
                "lines_required",
                "give at least one component to issue",
            ));
        }
        for (index, (material, quantity)) in lines.iter().enumerate() {
            match self.component(material) {
                None => violations.push(FieldError::new(
                    format!("lines[{index}].material"),
                    "component_not_in_order",
                    format!(
                        "{material} is not a component of order {}",
                        self.order.number
                    ),
                )),
                Some(c) if c.planned.backflush => violations.push(FieldError::new(
                    format!("lines[{index}].material"),
                    "component_backflushed",
                    format!(
                        "{material} is backflushed by the confirmation of the last operation: it is not issued by hand"
                    ),
                )),
                Some(_) => {}
            }
            if *quantity <= Decimal::ZERO {
                violations.push(FieldError::new(
                    format!("lines[{index}].quantity"),
                    "positive",
                    "an issued quantity must be positive",
                ));
            }
            if lines[..index].iter().any(|(m, _)| m == material) {
                violations.push(FieldError::new(
                    format!("lines[{index}].material"),
                    "duplicate_component",
                    format!("{material} is given twice: give each component once"),
                ));
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// Checks a confirmation; answers the components it backflushes (material, quantity):
    /// those marked so, for the yield and scrap of the order's last operation.
    pub fn check_confirmation(
        &self,
        confirmation: &Confirmation,
    ) -> Result<Vec<(MaterialNumber, Decimal)>, Violations> {
        self.released("take confirmations")?;
        let Some(operation) = self.operation(confirmation.operation) else {
            return fail(
                "operation",
                "operation_not_found",
                format!(
                    "order {} has no operation {}",
                    self.order.number, confirmation.operation
                ),
            );
        };
        if operation.final_confirmed {
            return fail(
                "operation",
                "operation_confirmed",
                format!(
                    "operation {} of order {} is finally confirmed",
                    confirmation.operation, self.order.number
                ),
            );
        }
        let mut violations = Vec::new();
        for (field, value) in [
            ("yield_quantity", confirmation.yield_quantity),
            ("scrap_quantity", confirmation.scrap_quantity),
            ("setup_hours", confirmation.setup_hours),
            ("run_hours", confirmation.run_hours),
        ] {
            if value < Decimal::ZERO {
                violations.push(FieldError::new(
                    field,
                    "not_negative",
                    format!("{field} cannot be negative"),
                ));
            }
        }
        for (field, value) in [
            ("setup_hours", confirmation.setup_hours),
            ("run_hours", confirmation.run_hours),
        ] {
            if value > hours_max() {
                violations.push(FieldError::new(
                    field,
                    "hours_range",
                    format!("at most {} hours per confirmation", hours_max()),
                ));
            }
        }
        // An operation yields at most the order's quantity, and scraps at most as much.
        for (field, confirmed, given) in [
            (
                "yield_quantity",
                operation.yield_quantity,
                confirmation.yield_quantity,
            ),
            (
                "scrap_quantity",
                operation.scrap_quantity,
                confirmation.scrap_quantity,
            ),
        ] {
            if confirmed + given > self.order.quantity {
                violations.push(FieldError::new(
                    field,
                    "quantity_beyond_order",
                    format!(
                        "operation {} has {confirmed} confirmed of the order's {}: {given} more is beyond it",
                        confirmation.operation, self.order.quantity
                    ),
                ));
            }
        }
        let confirmed = confirmation.yield_quantity + confirmation.scrap_quantity;
        if violations.is_empty()
            && confirmed.is_zero()
            && (confirmation.setup_hours + confirmation.run_hours).is_zero()
            && !confirmation.final_confirmation
        {
            violations.push(FieldError::new(
                "yield_quantity",
                "confirmation_empty",
                "confirm a quantity, hours, or the operation as final",
            ));
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        if self.last_operation() != Some(confirmation.operation) || confirmed.is_zero() {
            return Ok(Vec::new());
        }
        Ok(self
            .components
            .iter()
            .filter(|c| c.planned.backflush)
            .map(|c| (c.planned.material.clone(), c.planned.requirement(confirmed)))
            .filter(|(_, quantity)| !quantity.is_zero())
            .collect())
    }

    /// What a receipt of `quantity` takes out of the order, or why it cannot be received.
    pub fn receipt_value(&self, quantity: Decimal) -> Result<Decimal, Violations> {
        self.released("receive its output")?;
        if quantity <= Decimal::ZERO {
            return fail(
                "quantity",
                "positive",
                "a received quantity must be positive",
            );
        }
        let open = self.order.quantity - self.received;
        if quantity > open {
            return fail(
                "quantity",
                "receipt_beyond_order",
                format!(
                    "order {} has {open} still to receive, not {quantity}",
                    self.order.number
                ),
            );
        }
        Ok(match self.order.receipt_valuation {
            ReceiptValuation::Standard => round_amount(self.order.standard.unit_cost * quantity),
            ReceiptValuation::Actual => {
                // What is still to come: the open quantity less what the last operation
                // scrapped (it will never be received).
                let scrapped = self
                    .operations
                    .last()
                    .map_or(Decimal::ZERO, |o| o.scrap_quantity);
                let coming = (open - scrapped).max(quantity);
                let left = self.work_in_process().max(Decimal::ZERO);
                if quantity == coming {
                    left
                } else {
                    round_amount(left * quantity / coming)
                }
            }
        })
    }
}

pub enum OrderCommand {
    Create(Box<NewOrder>),
    Release {
        date: NaiveDate,
    },
    /// Component issues as materials valued them.
    Issue {
        posting_date: NaiveDate,
        movement_id: Uuid,
        lines: Vec<IssuedLine>,
    },
    /// A confirmation with the backflushed components as materials valued them.
    Confirm {
        confirmation: Confirmation,
        backflush: Option<(Uuid, Vec<IssuedLine>)>,
    },
    Receive {
        posting_date: NaiveDate,
        movement_id: Uuid,
        quantity: Decimal,
    },
    Complete {
        date: NaiveDate,
    },
    Settle {
        posting_date: NaiveDate,
    },
}

pub struct ProductionOrderRecord;

fn check_new(new: &NewOrder) -> Result<(), Violations> {
    let mut violations = Vec::new();
    if new.quantity <= Decimal::ZERO {
        violations.push(FieldError::new(
            "quantity",
            "positive",
            "an order quantity must be positive",
        ));
    } else if new.quantity > crate::master::quantity_max() {
        violations.push(FieldError::new(
            "quantity",
            "quantity_range",
            format!("at most {}", crate::master::quantity_max()),
        ));
    }
    if new.finish_date < new.start_date {
        violations.push(FieldError::new(
            "finish_date",
            "date_order",
            format!(
                "the finish date {} is before the start date {}",
                new.finish_date, new.start_date
            ),
        ));
    }
    if new.operations.is_empty() && new.components.iter().any(|c| c.backflush) {
        violations.push(FieldError::new(
            "material",
            "backflush_without_routing",
            format!(
                "{} has backflushed components but no routing: the last operation's confirmation backflushes them",
                new.material
            ),
        ));
    }
    if new.components.is_empty() {
        violations.push(FieldError::new(
            "material",
            "bom_not_found",
            format!(
                "{} has no bill of material valid on {} in plant {}: an order needs components",
                new.material, new.start_date, new.plant
            ),
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

impl Aggregate for ProductionOrderRecord {
    const TYPE: &'static str = "production.order";
    type State = Option<ProductionOrder>;
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Rejection = Violations;

    fn decide(
        state: &Option<ProductionOrder>,
        command: OrderCommand,
    ) -> Result<Vec<OrderEvent>, Violations> {
        let order = match (state, command) {
            (None, OrderCommand::Create(new)) => {
                check_new(&new)?;
                return Ok(vec![OrderEvent::OrderCreated(new)]);
            }
            (Some(order), OrderCommand::Create(new)) => {
                return fail(
                    "number",
                    "order_exists",
                    format!(
                        "production order {} exists in company {}",
                        new.number, order.order.company
                    ),
                );
            }
            (None, _) => {
                return fail(
                    "number",
                    "order_not_found",
                    "the production order does not exist",
                );
            }
            (Some(order), command) => (order, command),
        };
        let (order, command) = order;
        match command {
            OrderCommand::Create(_) => unreachable!("answered above"),
            OrderCommand::Release { date } => {
                if order.status != OrderStatus::Created {
                    return fail(
                        "status",
                        "order_status",
                        format!(
                            "order {} is {}: only a created order can be released",
                            order.order.number,
                            order.status.as_str()
                        ),
                    );
                }
                Ok(vec![OrderEvent::OrderReleased {
                    date,
                    reservations: order
                        .components
                        .iter()
                        .map(|c| IssuedLine {
                            material: c.planned.material.clone(),
                            quantity: c.planned.required,
                            value: Decimal::ZERO,
                        })
                        .collect(),
                }])
            }
            OrderCommand::Issue {
                posting_date,
                movement_id,
                lines,
            } => {
                let given: Vec<(MaterialNumber, Decimal)> = lines
                    .iter()
                    .map(|l| (l.material.clone(), l.quantity))
                    .collect();
                order.check_issue(&given)?;
                Ok(vec![OrderEvent::ComponentsIssued {
                    posting_date,
                    movement_id,
                    backflush: false,
                    lines,
                }])
            }
            OrderCommand::Confirm {
                confirmation,
                backflush,
            } => {
                let expected = order.check_confirmation(&confirmation)?;
                let Some(operation) = order.operation(confirmation.operation) else {
                    return fail("operation", "operation_not_found", "no such operation");
                };
                let planned = &operation.planned;
                let activity_value = (confirmation.setup_hours + confirmation.run_hours)
                    .checked_mul(planned.cost_rate_per_hour)
                    .map(round_amount)
                    .filter(|value| *value <= amount_max())
                    .ok_or_else(|| {
                        vec![FieldError::new(
                            "run_hours",
                            "amount_range",
                            format!(
                                "the hours at the rate would cost more than {}",
                                amount_max()
                            ),
                        )]
                    })?;
                let mut events = Vec::new();
                match backflush {
                    Some((movement_id, lines)) if !lines.is_empty() => {
                        let issued: Vec<(MaterialNumber, Decimal)> = lines
                            .iter()
                            .map(|l| (l.material.clone(), l.quantity))
                            .collect();
                        if issued != expected {
                            return fail(
                                "backflush",
                                "backflush_mismatch",
                                "the backflushed components are not those the confirmation takes",
                            );
                        }
                        events.push(OrderEvent::ComponentsIssued {
                            posting_date: confirmation.posting_date,
                            movement_id,
                            backflush: true,
                            lines,
                        });
                    }
                    _ if !expected.is_empty() => {
                        return fail(
                            "backflush",
                            "backflush_missing",
                            "the confirmation backflushes components: issue them with it",
                        );
                    }
                    _ => {}
                }
                events.push(OrderEvent::OperationConfirmed {
                    confirmation: order.confirmations + 1,
                    work_center: planned.work_center.clone(),
                    cost_center: planned.cost_center.clone(),
                    cost_rate_per_hour: planned.cost_rate_per_hour,
                    activity_value,
                    currency: order.order.currency.clone(),
                    confirmed: confirmation,
                });
                Ok(events)
            }
            OrderCommand::Receive {
                posting_date,
                movement_id,
                quantity,
            } => {
                let value = order.receipt_value(quantity)?;
                Ok(vec![OrderEvent::GoodsReceived {
                    posting_date,
                    movement_id,
                    quantity,
                    valuation: order.order.receipt_valuation,
                    value,
                }])
            }
            OrderCommand::Complete { date } => {
                if !order.status.open() {
                    return fail(
                        "status",
                        "order_status",
                        format!(
                            "order {} is {} already",
                            order.order.number,
                            order.status.as_str()
                        ),
                    );
                }
                Ok(vec![OrderEvent::TechnicallyCompleted { date }])
            }
            OrderCommand::Settle { posting_date } => {
                if order.status != OrderStatus::TechnicallyComplete {
                    return fail(
                        "status",
                        "order_status",
                        format!(
                            "order {} is {}: only a technically complete order is settled",
                            order.order.number,
                            order.status.as_str()
                        ),
                    );
                }
                Ok(vec![OrderEvent::OrderSettled {
                    posting_date,
                    actual_cost: order.actual_cost(),
                    received_value: order.received_value,
                    variance: order.work_in_process(),
                    currency: order.order.currency.clone(),
                }])
            }
        }
    }

    fn apply(state: &mut Option<ProductionOrder>, event: &OrderEvent) {
        if let OrderEvent::OrderCreated(new) = event {
            *state = Some(ProductionOrder {
                status: OrderStatus::Created,
                released_on: None,
                components: new
                    .components
                    .iter()
                    .map(|planned| ComponentState {
                        planned: planned.clone(),
                        issued: Decimal::ZERO,
                        issued_value: Decimal::ZERO,
                    })
                    .collect(),
                operations: new
                    .operations
                    .iter()
                    .map(|planned| OperationState {
                        planned: planned.clone(),
                        confirmations: 0,
                        yield_quantity: Decimal::ZERO,
                        scrap_quantity: Decimal::ZERO,
                        hours: Decimal::ZERO,
                        activity_value: Decimal::ZERO,
                        final_confirmed: false,
                    })
                    .collect(),
                confirmations: 0,
                received: Decimal::ZERO,
                received_value: Decimal::ZERO,
                completed_on: None,
                variance: None,
                order: (**new).clone(),
            });
            return;
        }
        let Some(order) = state else {
            return;
        };
        match event {
            OrderEvent::OrderCreated(_) => {}
            OrderEvent::OrderReleased { date, .. } => {
                order.status = OrderStatus::Released;
                order.released_on = Some(*date);
            }
            OrderEvent::ComponentsIssued { lines, .. } => {
                for line in lines {
                    if let Some(component) = order
                        .components
                        .iter_mut()
                        .find(|c| c.planned.material == line.material)
                    {
                        component.issued += line.quantity;
                        component.issued_value += line.value;
                    }
                }
            }
            OrderEvent::OperationConfirmed {
                confirmation,
                confirmed,
                activity_value,
                ..
            } => {
                order.confirmations = *confirmation;
                if let Some(operation) = order
                    .operations
                    .iter_mut()
                    .find(|o| o.planned.number == confirmed.operation)
                {
                    operation.confirmations += 1;
                    operation.yield_quantity += confirmed.yield_quantity;
                    operation.scrap_quantity += confirmed.scrap_quantity;
                    operation.hours += confirmed.setup_hours + confirmed.run_hours;
                    operation.activity_value += *activity_value;
                    operation.final_confirmed |= confirmed.final_confirmation;
                }
            }
            OrderEvent::GoodsReceived {
                quantity, value, ..
            } => {
                order.received += *quantity;
                order.received_value += *value;
            }
            OrderEvent::TechnicallyCompleted { date } => {
                order.status = OrderStatus::TechnicallyComplete;
                order.completed_on = Some(*date);
            }
            OrderEvent::OrderSettled { variance, .. } => {
                order.status = OrderStatus::Closed;
                order.variance = Some(*variance);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).expect("a decimal")
    }

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, day).expect("a date")
    }

    /// An order of 10 from a component (`quantity` per unit, `scrap` percent, backflushed or
    /// not) at 5.00 and one operation of 0.5 hours a unit at 60.00, released.
    fn released(
        quantity: &str,
        scrap: &str,
        backflush: bool,
        valuation: ReceiptValuation,
    ) -> Option<ProductionOrder> {
        let component = PlannedComponent {
            material: MaterialNumber::parse("C").unwrap(),
            quantity: d(quantity),
            scrap_percent: d(scrap),
            required: Decimal::ZERO,
            backflush,
            unit_price: d("5"),
        };
        let component = PlannedComponent {
            required: component.requirement(d("10")),
            ..component
        };
        let operation = PlannedOperation {
            number: 10,
            description: "Make".into(),
            work_center: WorkCenterCode::parse("WC").unwrap(),
            cost_center: "CC".into(),
            setup_hours: Decimal::ZERO,
            run_hours_per_unit: d("0.5"),
            cost_rate_per_hour: d("60"),
        };
        let standard = StandardCost::estimate(
            d("10"),
            std::slice::from_ref(&component),
            std::slice::from_ref(&operation),
        )
        .unwrap();
        let new = NewOrder {
            company: CompanyCode::parse("MAIN").unwrap(),
            plant: PlantCode::parse("P1").unwrap(),
            number: OrderNumber::parse("O1").unwrap(),
            material: MaterialNumber::parse("F").unwrap(),
            quantity: d("10"),
            location: LocationCode::parse("FG").unwrap(),
            start_date: date(1),
            finish_date: date(5),
            planned_order: None,
            receipt_valuation: valuation,
            currency: Currency::parse("EUR").unwrap(),
            components: vec![component],
            operations: vec![operation],
            standard,
        };
        let mut state = None;
        for command in [
            OrderCommand::Create(Box::new(new)),
            OrderCommand::Release { date: date(1) },
        ] {
            for event in ProductionOrderRecord::decide(&state, command).unwrap() {
                ProductionOrderRecord::apply(&mut state, &event);
            }
        }
        state
    }

    fn run(state: &mut Option<ProductionOrder>, command: OrderCommand) -> Vec<OrderEvent> {
        let events = ProductionOrderRecord::decide(state, command).unwrap();
        for event in &events {
            ProductionOrderRecord::apply(state, event);
        }
        events
    }

    fn confirmation(yield_quantity: &str, scrap: &str) -> Confirmation {
        Confirmation {
            operation: 10,
            posting_date: date(2),
            yield_quantity: d(yield_quantity),
            scrap_quantity: d(scrap),
            setup_hours: Decimal::ZERO,
            run_hours: d("1"),
            final_confirmation: false,
        }
    }

    #[test]
    fn backflush_takes_the_bills_quantity_with_scrap_to_four_decimals_rounded_up() {
        // 0.0013 a unit with 2.5 % scrap: 1000 units need 1.3325, not 1000 × 0.0014.
        let order = released("0.0013", "2.5", true, ReceiptValuation::Standard).unwrap();
        let mut big = order.clone();
        big.order.quantity = d("1000");
        let taken = big.check_confirmation(&confirmation("1000", "0")).unwrap();
        assert_eq!(taken[0].1, d("1.3325"));
        // One unit: 0.00133250 rounds up to 0.0014, never down to nothing.
        let taken = order.check_confirmation(&confirmation("1", "0")).unwrap();
        assert_eq!(taken[0].1, d("0.0014"));
    }

    #[test]
    fn actual_receipts_share_the_costs_over_what_is_still_to_come_and_settle_to_zero() {
        let mut state = released("2", "0", false, ReceiptValuation::Actual);
        let issued = IssuedLine {
            material: MaterialNumber::parse("C").unwrap(),
            quantity: d("20"),
            value: d("100"),
        };
        run(
            &mut state,
            OrderCommand::Issue {
                posting_date: date(2),
                movement_id: Uuid::nil(),
                lines: vec![issued],
            },
        );
        // 9 good, 1 scrapped at the only (last) operation, 5 hours at 60.00: 300.00 activity.
        let mut done = confirmation("9", "1");
        done.run_hours = d("5");
        run(
            &mut state,
            OrderCommand::Confirm {
                confirmation: done,
                backflush: None,
            },
        );
        let order = state.clone().unwrap();
        assert_eq!(order.actual_cost(), d("400"));
        // 3 of the 9 still to come take a third; the last 6 take the rest.
        assert_eq!(order.receipt_value(d("3")).unwrap(), d("133.33"));
        run(
            &mut state,
            OrderCommand::Receive {
                posting_date: date(3),
                movement_id: Uuid::nil(),
                quantity: d("3"),
            },
        );
        let order = state.clone().unwrap();
        assert_eq!(order.receipt_value(d("6")).unwrap(), d("266.67"));
        run(
            &mut state,
            OrderCommand::Receive {
                posting_date: date(3),
                movement_id: Uuid::nil(),
                quantity: d("6"),
            },
        );
        run(&mut state, OrderCommand::Complete { date: date(4) });
        let settled = run(
            &mut state,
            OrderCommand::Settle {
                posting_date: date(5),
            },
        );
        assert!(
            matches!(&settled[0], OrderEvent::OrderSettled { variance, .. } if variance.is_zero()),
            "{settled:?}"
        );
        assert_eq!(state.unwrap().work_in_process(), Decimal::ZERO);
    }

    #[test]
    fn standard_receipts_leave_the_difference_to_settlement_and_nothing_runs_after_closing() {
        // Standard: 20 × 5.00 + 5 h × 60.00 = 400.00, 40.00 a unit.
        let mut state = released("2", "0", false, ReceiptValuation::Standard);
        assert_eq!(state.as_ref().unwrap().order.standard.unit_cost, d("40"));
        let mut done = confirmation("10", "0");
        done.run_hours = d("6");
        run(
            &mut state,
            OrderCommand::Confirm {
                confirmation: done,
                backflush: None,
            },
        );
        run(
            &mut state,
            OrderCommand::Receive {
                posting_date: date(3),
                movement_id: Uuid::nil(),
                quantity: d("10"),
            },
        );
        // Actual 360.00 of activity (no components issued), 400.00 received: -40.00.
        run(&mut state, OrderCommand::Complete { date: date(4) });
        run(
            &mut state,
            OrderCommand::Settle {
                posting_date: date(5),
            },
        );
        let order = state.clone().unwrap();
        assert_eq!(order.variance, Some(d("-40")));
        assert_eq!(order.status, OrderStatus::Closed);
        for command in [
            OrderCommand::Settle {
                posting_date: date(6),
            },
            OrderCommand::Complete { date: date(6) },
            OrderCommand::Receive {
                posting_date: date(6),
                movement_id: Uuid::nil(),
                quantity: d("1"),
            },
        ] {
            let refused = ProductionOrderRecord::decide(&state, command).unwrap_err();
            assert_eq!(refused[0].field, "status", "{refused:?}");
        }
    }
}
