//! Inventory valuation of one material in one plant: moving average or FIFO, decided when a
//! movement is posted and carried in its event (the pipelines only add the results up).
//!
//! ```text
//!  receipt  q at value v ──► moving average: quantity += q, value += v
//!                           FIFO:           a new layer (q, v) at the back
//!  issue    q            ──► moving average: value out = round(q × value / quantity)
//!                           FIFO:           layers consumed from the front, each part
//!                                            valued round(part × layer value / layer quantity)
//! ```
//!
//! Rounding (explicit, documented in one place):
//! - Amounts are rounded to [`AMOUNT_DECIMALS`] (2) decimals, halves away from zero, where a
//!   value is decided: a receipt's value (quantity × price) and an issue's value.
//! - The unit cost is never rounded inside the computation: an issue is valued at the exact ratio
//!   `stock value / stock quantity` and only the result is rounded. Issuing the whole remaining
//!   quantity (of the stock, or of a FIFO layer) takes the whole remaining value, so no rounding
//!   residue is ever left on zero quantity.
//! - The moving-average price shown in events and the lake is `value / quantity` rounded to
//!   [`PRICE_DECIMALS`] (6) decimals; it is informative, never used to value a movement.
//! - Stock never goes negative: an issue beyond the quantity on hand is refused.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Decimals of a decided amount (the currency's minor unit).
pub const AMOUNT_DECIMALS: u32 = 2;
/// Decimals of the informative moving-average price.
pub const PRICE_DECIMALS: u32 = 6;

/// How a material is valued in a plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValuationMethod {
    MovingAverage,
    Fifo,
}

impl ValuationMethod {
    pub fn parse(text: &str) -> Result<ValuationMethod, &'static str> {
        match text {
            "moving_average" => Ok(ValuationMethod::MovingAverage),
            "fifo" => Ok(ValuationMethod::Fifo),
            _ => Err("must be moving_average or fifo"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ValuationMethod::MovingAverage => "moving_average",
            ValuationMethod::Fifo => "fifo",
        }
    }
}

/// Rounds a decided amount: two decimals, halves away from zero.
pub fn round_amount(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(AMOUNT_DECIMALS, RoundingStrategy::MidpointAwayFromZero)
}

/// A FIFO layer: what one receipt left in stock, and where it came from (`<purchase
/// order>/<line>` for a receipt against an order line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub quantity: Decimal,
    pub value: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The valuation of a material in a plant: quantity on hand in the base unit, its value, and
/// for FIFO the layers that make it up (their sums are the quantity and value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Valuation {
    pub method: ValuationMethod,
    pub quantity: Decimal,
    pub value: Decimal,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub layers: VecDeque<Layer>,
}

/// More was asked of the stock than it holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{requested} requested, {on_hand} on hand")]
pub struct Shortage {
    pub requested: Decimal,
    pub on_hand: Decimal,
}

impl Valuation {
    pub fn new(method: ValuationMethod) -> Valuation {
        Valuation {
            method,
            quantity: Decimal::ZERO,
            value: Decimal::ZERO,
            layers: VecDeque::new(),
        }
    }

    /// The moving-average price (informative): value per base unit, 6 decimals; zero when empty.
    pub fn average_price(&self) -> Decimal {
        if self.quantity.is_zero() {
            Decimal::ZERO
        } else {
            let mut price = (self.value / self.quantity)
                .round_dp_with_strategy(PRICE_DECIMALS, RoundingStrategy::MidpointAwayFromZero);
            price.rescale(PRICE_DECIMALS);
            price
        }
    }

    /// Adds a receipt of `quantity` worth `value` (already rounded by the caller).
    pub fn receive(&mut self, quantity: Decimal, value: Decimal) {
        self.receive_from(quantity, value, None);
    }

    /// Adds a receipt from `source` (a purchase order line): FIFO remembers it on the layer.
    pub fn receive_from(&mut self, quantity: Decimal, value: Decimal, source: Option<&str>) {
        assert!(quantity > Decimal::ZERO, "receipts are validated positive");
        self.quantity += quantity;
        self.value += value;
        if self.method == ValuationMethod::Fifo {
            self.layers.push_back(Layer {
                quantity,
                value,
                source: source.map(str::to_owned),
            });
        }
    }

    /// What the stock still holds of receipts from `source` (FIFO); the whole stock for the
    /// moving average, which does not tell receipts apart.
    pub fn quantity_from(&self, source: &str) -> Decimal {
        match self.method {
            ValuationMethod::MovingAverage => self.quantity,
            ValuationMethod::Fifo => self
                .layers
                .iter()
                .filter(|l| l.source.as_deref() == Some(source))
                .map(|l| l.quantity)
                .sum(),
        }
    }

    /// The value of what [`Valuation::quantity_from`] counts.
    pub fn value_from(&self, source: Option<&str>) -> Decimal {
        match (self.method, source) {
            (ValuationMethod::Fifo, Some(source)) => self
                .layers
                .iter()
                .filter(|l| l.source.as_deref() == Some(source))
                .map(|l| l.value)
                .sum(),
            _ => self.value,
        }
    }

    /// Takes `quantity` out of stock; returns the value taken out.
    pub fn issue(&mut self, quantity: Decimal) -> Result<Decimal, Shortage> {
        self.issue_from(quantity, None)
    }

    /// Takes `quantity` out of stock, FIFO from the layers received from `source` first (goods
    /// going back to the vendor of that order line), then from the oldest; returns the value.
    pub fn issue_from(
        &mut self,
        quantity: Decimal,
        source: Option<&str>,
    ) -> Result<Decimal, Shortage> {
        assert!(quantity > Decimal::ZERO, "issues are validated positive");
        if quantity > self.quantity {
            return Err(Shortage {
                requested: quantity,
                on_hand: self.quantity,
            });
        }
        let value = match self.method {
            ValuationMethod::MovingAverage => {
                if quantity == self.quantity {
                    self.value
                } else {
                    round_amount(quantity * self.value / self.quantity)
                }
            }
            ValuationMethod::Fifo => {
                let from_source = match source {
                    Some(source) => self.take_layers(quantity, Some(source)),
                    None => (Decimal::ZERO, Decimal::ZERO),
                };
                let (_, rest) = self.take_layers(quantity - from_source.0, None);
                from_source.1 + rest
            }
        };
        self.quantity -= quantity;
        self.value -= value;
        self.check();
        Ok(value)
    }

    /// Takes up to `wanted` from the layers (of `source` only, when given), oldest first: a
    /// whole layer with its whole value, a part at the layer's exact unit cost, rounded.
    /// Returns the quantity and value taken.
    fn take_layers(&mut self, wanted: Decimal, source: Option<&str>) -> (Decimal, Decimal) {
        let (mut remaining, mut value) = (wanted, Decimal::ZERO);
        let mut index = 0;
        while remaining > Decimal::ZERO && index < self.layers.len() {
            let layer = &mut self.layers[index];
            if source.is_some() && layer.source.as_deref() != source {
                index += 1;
                continue;
            }
            if layer.quantity <= remaining {
                remaining -= layer.quantity;
                value += layer.value;
                self.layers.remove(index);
            } else {
                let part = round_amount(remaining * layer.value / layer.quantity);
                layer.quantity -= remaining;
                layer.value -= part;
                value += part;
                remaining = Decimal::ZERO;
            }
        }
        (wanted - remaining, value)
    }

    /// Changes the stock's value without moving quantity (a price difference on stock still
    /// on hand). FIFO puts it on the layers received from `source`, in proportion to their
    /// quantity (the last takes the rounding remainder); without a source, or with no such
    /// layer left, on the newest layer.
    pub fn revalue(&mut self, difference: Decimal, source: Option<&str>) {
        self.value += difference;
        let from_source: Vec<usize> = self
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| source.is_some() && l.source.as_deref() == source)
            .map(|(index, _)| index)
            .collect();
        let total: Decimal = from_source.iter().map(|&i| self.layers[i].quantity).sum();
        if from_source.is_empty() || total.is_zero() {
            if let Some(layer) = self.layers.back_mut() {
                layer.value += difference;
            }
            return;
        }
        let mut left = difference;
        for (n, &index) in from_source.iter().enumerate() {
            let layer = &mut self.layers[index];
            let part = if n + 1 == from_source.len() {
                left
            } else {
                round_amount(difference * layer.quantity / total)
            };
            layer.value += part;
            left -= part;
        }
    }

    /// Protects what is stored: never negative, layers sum to the totals, nothing is left
    /// valued at zero quantity.
    fn check(&self) {
        assert!(self.quantity >= Decimal::ZERO, "stock never goes negative");
        if self.quantity.is_zero() {
            assert!(self.value.is_zero(), "no value left on zero quantity");
        }
        if self.method == ValuationMethod::Fifo {
            let (q, v) = self
                .layers
                .iter()
                .fold((Decimal::ZERO, Decimal::ZERO), |(q, v), l| {
                    (q + l.quantity, v + l.value)
                });
            assert_eq!(
                (q, v),
                (self.quantity, self.value),
                "FIFO layers sum to the stock"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn moving_average_values_issues_at_the_exact_average_and_rounds_once() {
        let mut stock = Valuation::new(ValuationMethod::MovingAverage);
        stock.receive(d("3"), d("10.00"));
        // 1 of 3 at 10.00: 3.333… rounds to 3.33; the rest keeps 6.67.
        assert_eq!(stock.issue(d("1")).unwrap(), d("3.33"));
        assert_eq!(stock.value, d("6.67"));
        assert_eq!(stock.average_price(), d("3.335000"));
        // The last units take the whole remaining value: no residue at zero quantity.
        assert_eq!(stock.issue(d("2")).unwrap(), d("6.67"));
        assert_eq!(
            (stock.quantity, stock.value),
            (Decimal::ZERO, Decimal::ZERO)
        );
        assert_eq!(
            stock.issue(d("1")),
            Err(Shortage {
                requested: d("1"),
                on_hand: Decimal::ZERO
            })
        );
    }

    #[test]
    fn fifo_consumes_the_oldest_layers_first() {
        let mut stock = Valuation::new(ValuationMethod::Fifo);
        stock.receive(d("10"), d("100.00"));
        stock.receive(d("10"), d("120.00"));
        assert_eq!(stock.issue(d("15")).unwrap(), d("160.00"));
        assert_eq!(stock.layers.len(), 1);
        assert_eq!(stock.value, d("60.00"));
        stock.revalue(d("5.00"), None);
        assert_eq!(stock.issue(d("5")).unwrap(), d("65.00"));
        assert!(stock.layers.is_empty());
    }
}
