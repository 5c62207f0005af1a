//! The stock of a material in a plant and its goods movements, valued when decided.

use super::*;
use crate::valuation::{Shortage, Valuation, ValuationMethod, round_amount};
use std::collections::BTreeMap;
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Stock of a material in a plant, and its goods movements
// ---------------------------------------------------------------------------------------------

/// What moved goods, with what it references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MovementKind {
    /// A goods receipt, against a purchase order line when there is one.
    Receipt {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        purchase_order: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vendor: Option<VendorNumber>,
    },
    /// Consumption on a cost centre.
    Issue {
        cost_center: String,
    },
    /// Scrapped, with the reason.
    Scrap {
        reason: String,
    },
    /// Goods going back to the vendor of a purchase order line.
    ReturnToVendor {
        purchase_order: String,
        line: u32,
        vendor: VendorNumber,
        /// At the order price: what the return clears on GR/IR (the stock gives up its own
        /// valuation; finance posts the difference as a price difference).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_value: Option<Decimal>,
    },
    /// Goods leaving for a customer with a sales delivery (sales appends it with the delivery).
    DeliveryIssue {
        delivery: String,
        order: String,
        customer: String,
    },
    /// Components issued to a production order (production appends it with the order's issue).
    ProductionIssue {
        order: String,
    },
    /// A production order's output taken into stock, at the value the order gives it (its
    /// standard cost, or its actual cost).
    ProductionReceipt {
        order: String,
    },
    /// Goods a customer sent back (a sales credit memo), at the value of their issue.
    CustomerReturn {
        credit_memo: String,
        invoice: String,
        customer: String,
    },
    TransferOut {
        to_location: LocationCode,
    },
    TransferIn {
        from_location: LocationCode,
    },
    /// A physical count's difference (positive: found, negative: missing).
    CountDifference {
        counted: Decimal,
        book: Decimal,
    },
    /// A vendor invoice's price difference taken by the stock on hand: value, no quantity.
    /// Finance posts it with the invoice. `source`: the order line whose FIFO layers take it.
    Revaluation {
        vendor: VendorNumber,
        invoice: InvoiceNumber,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
}

impl MovementKind {
    /// The purchase order line a receipt came from or a return goes back to
    /// (`<order>/<line>`): the FIFO layers it makes or takes first.
    pub fn source(&self) -> Option<String> {
        match self {
            MovementKind::Receipt {
                purchase_order: Some(order),
                line: Some(line),
                ..
            }
            | MovementKind::ReturnToVendor {
                purchase_order: order,
                line,
                ..
            } => Some(format!("{order}/{line}")),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            MovementKind::Receipt { .. } => "receipt",
            MovementKind::Issue { .. } => "issue",
            MovementKind::DeliveryIssue { .. } => "delivery_issue",
            MovementKind::CustomerReturn { .. } => "customer_return",
            MovementKind::ProductionIssue { .. } => "production_issue",
            MovementKind::ProductionReceipt { .. } => "production_receipt",
            MovementKind::Scrap { .. } => "scrap",
            MovementKind::ReturnToVendor { .. } => "return_to_vendor",
            MovementKind::TransferOut { .. } => "transfer_out",
            MovementKind::TransferIn { .. } => "transfer_in",
            MovementKind::CountDifference { .. } => "count_difference",
            MovementKind::Revaluation { .. } => "revaluation",
        }
    }
}

/// One posted movement: quantity in the base unit and value, both signed (in: positive), with
/// the stock's quantity, value and moving-average price after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub movement_id: Uuid,
    pub posting_date: NaiveDate,
    pub location: LocationCode,
    pub kind: MovementKind,
    pub quantity: Decimal,
    pub value: Decimal,
    pub currency: Currency,
    pub stock_quantity_after: Decimal,
    pub stock_value_after: Decimal,
    pub moving_average_after: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockEvent {
    /// The stock was opened when the material was extended to the plant.
    StockOpened {
        company: CompanyCode,
        material: MaterialNumber,
        plant: PlantCode,
        valuation_method: ValuationMethod,
        base_unit: UnitOfMeasure,
        currency: Currency,
        valuation_class: ValuationClass,
    },
    /// One or two movements posted together (a transfer is out and in at once).
    GoodsMovementPosted {
        company: CompanyCode,
        material: MaterialNumber,
        plant: PlantCode,
        valuation_class: ValuationClass,
        movements: Vec<Movement>,
    },
}

/// The stock of a material in a plant: what each storage location holds and its valuation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub company: CompanyCode,
    pub material: MaterialNumber,
    pub plant: PlantCode,
    pub base_unit: UnitOfMeasure,
    pub currency: Currency,
    pub valuation_class: ValuationClass,
    pub locations: BTreeMap<LocationCode, Decimal>,
    pub valuation: Valuation,
    pub movements: u64,
}

/// A movement to decide: kind, where, how much in the base unit, and for receipts what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostMovement {
    pub movement_id: Uuid,
    pub posting_date: NaiveDate,
    pub location: LocationCode,
    pub kind: MovementKind,
    /// Base unit, strictly positive: the kind says the direction.
    pub quantity: Decimal,
    /// Receipts: what the quantity cost (rounded here). Others: ignored.
    pub receipt_value: Decimal,
}

impl Stock {
    pub fn open(material: &Material, plant: &Plant, method: ValuationMethod) -> StockEvent {
        StockEvent::StockOpened {
            company: material.company.clone(),
            material: material.number.clone(),
            plant: plant.code.clone(),
            valuation_method: method,
            base_unit: material.base_unit.clone(),
            currency: plant.currency.clone(),
            valuation_class: material.valuation_class.clone(),
        }
    }

    pub fn on_hand(&self, location: &LocationCode) -> Decimal {
        self.locations.get(location).copied().unwrap_or_default()
    }

    fn posted(&self, movements: Vec<Movement>) -> StockEvent {
        StockEvent::GoodsMovementPosted {
            company: self.company.clone(),
            material: self.material.clone(),
            plant: self.plant.clone(),
            valuation_class: self.valuation_class.clone(),
            movements,
        }
    }

    fn movement(
        &self,
        command: &PostMovement,
        quantity: Decimal,
        value: Decimal,
        valuation: &Valuation,
    ) -> Movement {
        Movement {
            movement_id: command.movement_id,
            posting_date: command.posting_date,
            location: command.location.clone(),
            kind: command.kind.clone(),
            quantity,
            value,
            currency: self.currency.clone(),
            stock_quantity_after: valuation.quantity,
            stock_value_after: valuation.value,
            moving_average_after: valuation.average_price(),
        }
    }

    /// Values and records a movement. Receipts add at their cost; issues, scrap and returns
    /// leave at the valuation's cost; transfers move quantity between locations at no value; a
    /// count posts the difference to the book quantity (a surplus at the moving average).
    pub fn decide_post(&self, command: PostMovement) -> Result<Vec<StockEvent>, Vec<Violation>> {
        if command.quantity <= Decimal::ZERO
            && !matches!(
                command.kind,
                MovementKind::CountDifference { .. } | MovementKind::Revaluation { .. }
            )
        {
            return reject(Violation::QuantityNotPositive {
                field: "quantity".into(),
            });
        }
        let mut valuation = self.valuation.clone();
        let short = |requested: Decimal, on_hand: Decimal| Violation::StockShort {
            field: "quantity".into(),
            location: command.location.clone(),
            requested,
            on_hand,
        };
        let shortage = |s: Shortage| short(s.requested, s.on_hand);
        match &command.kind {
            MovementKind::Receipt { .. }
            | MovementKind::CustomerReturn { .. }
            | MovementKind::ProductionReceipt { .. } => {
                let value = round_amount(command.receipt_value);
                valuation.receive_from(command.quantity, value, command.kind.source().as_deref());
                let movement = self.movement(&command, command.quantity, value, &valuation);
                Ok(vec![self.posted(vec![movement])])
            }
            MovementKind::Issue { .. }
            | MovementKind::DeliveryIssue { .. }
            | MovementKind::ProductionIssue { .. }
            | MovementKind::Scrap { .. }
            | MovementKind::ReturnToVendor { .. } => {
                let on_hand = self.on_hand(&command.location);
                if command.quantity > on_hand {
                    return reject(short(command.quantity, on_hand));
                }
                let value = valuation
                    .issue_from(command.quantity, command.kind.source().as_deref())
                    .map_err(|s| vec![shortage(s)])?;
                let movement = self.movement(&command, -command.quantity, -value, &valuation);
                Ok(vec![self.posted(vec![movement])])
            }
            MovementKind::TransferOut { to_location } => {
                if *to_location == command.location {
                    return reject(Violation::TransferToItself);
                }
                let on_hand = self.on_hand(&command.location);
                if command.quantity > on_hand {
                    return reject(short(command.quantity, on_hand));
                }
                let out = self.movement(&command, -command.quantity, Decimal::ZERO, &valuation);
                let arrival = PostMovement {
                    location: to_location.clone(),
                    kind: MovementKind::TransferIn {
                        from_location: command.location.clone(),
                    },
                    ..command.clone()
                };
                let into = self.movement(&arrival, command.quantity, Decimal::ZERO, &valuation);
                Ok(vec![self.posted(vec![out, into])])
            }
            MovementKind::TransferIn { .. } => reject(Violation::TransferToItself),
            MovementKind::Revaluation { source, .. } => {
                // Decided by the invoice (never below zero value); nothing on hand takes nothing.
                let value = round_amount(command.receipt_value)
                    .max(-valuation.value_from(source.as_deref()));
                if value.is_zero() || valuation.quantity.is_zero() {
                    return Ok(Vec::new());
                }
                valuation.revalue(value, source.as_deref());
                let movement = self.movement(&command, Decimal::ZERO, value, &valuation);
                Ok(vec![self.posted(vec![movement])])
            }
            MovementKind::CountDifference { counted, .. } => {
                let book = self.on_hand(&command.location);
                let difference = *counted - book;
                if difference.is_zero() {
                    return Ok(Vec::new());
                }
                let value = if difference > Decimal::ZERO {
                    // A surplus enters at the stock's exact average value per unit (both
                    // methods alike); with nothing on hand there is no price: it enters at zero.
                    let value = if self.valuation.quantity.is_zero() {
                        Decimal::ZERO
                    } else {
                        round_amount(difference * self.valuation.value / self.valuation.quantity)
                    };
                    valuation.receive(difference, value);
                    value
                } else {
                    -valuation
                        .issue(-difference)
                        .map_err(|s| vec![shortage(s)])?
                };
                let counted_command = PostMovement {
                    kind: MovementKind::CountDifference {
                        counted: *counted,
                        book,
                    },
                    ..command.clone()
                };
                let movement = self.movement(&counted_command, difference, value, &valuation);
                Ok(vec![self.posted(vec![movement])])
            }
        }
    }

    pub fn apply(state: Option<Stock>, event: &StockEvent) -> Option<Stock> {
        match (state, event) {
            (
                _,
                StockEvent::StockOpened {
                    company,
                    material,
                    plant,
                    valuation_method,
                    base_unit,
                    currency,
                    valuation_class,
                },
            ) => Some(Stock {
                company: company.clone(),
                material: material.clone(),
                plant: plant.clone(),
                base_unit: base_unit.clone(),
                currency: currency.clone(),
                valuation_class: valuation_class.clone(),
                locations: BTreeMap::new(),
                valuation: Valuation::new(*valuation_method),
                movements: 0,
            }),
            (Some(mut stock), StockEvent::GoodsMovementPosted { movements, .. }) => {
                for movement in movements {
                    *stock
                        .locations
                        .entry(movement.location.clone())
                        .or_default() += movement.quantity;
                    // Replaying the decided movements decides nothing new: a receipt adds its
                    // carried value, an outflow takes what the same valuation gave then.
                    match &movement.kind {
                        MovementKind::TransferOut { .. } | MovementKind::TransferIn { .. } => {}
                        MovementKind::Revaluation { source, .. } => {
                            stock.valuation.revalue(movement.value, source.as_deref())
                        }
                        _ if movement.quantity > Decimal::ZERO => {
                            stock.valuation.receive_from(
                                movement.quantity,
                                movement.value,
                                movement.kind.source().as_deref(),
                            );
                        }
                        _ => {
                            let taken = stock
                                .valuation
                                .issue_from(-movement.quantity, movement.kind.source().as_deref());
                            assert_eq!(
                                taken.ok(),
                                Some(-movement.value),
                                "replayed outflow {} takes the value decided then",
                                movement.movement_id
                            );
                        }
                    }
                    stock.movements += 1;
                }
                Some(stock)
            }
            (None, StockEvent::GoodsMovementPosted { .. }) => None,
        }
    }
}
