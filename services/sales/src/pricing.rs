//! Price determination: the price of an order line from condition records, in a fixed order,
//! every step explained, so that the order's event can keep the explanation and the price can
//! be reproduced from it later, whatever the condition records say by then.
//!
//! ```text
//!  base price   the customer's own price for the material, else the price list's, in the
//!               order's currency, valid on the pricing date, at the scale step the quantity
//!               reaches
//!  discounts    percentages on the base price: the customer's, the material group's, the
//!               customer's for the material group; then amounts per unit, same keys
//!  net price    base − discounts, never below zero (4 decimals per unit)
//!  net value    quantity × net price, rounded to cents, half away from zero
//!  tax          net value × the rate of (customer tax class, material tax class), to cents
//! ```
//! Two records of one kind valid on the same day for the same keys are an overlap: refused
//! when entered ([`overlap`]), an error if met here.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Decimals of a unit price after discounts.
pub const UNIT_PRICE_SCALE: u32 = 4;
/// Decimals of values (net value, tax).
pub const VALUE_SCALE: u32 = 2;

/// The days a record applies: from `from` through `to` (open-ended without).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

impl Validity {
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from <= day && self.to.is_none_or(|to| day <= to)
    }

    /// Whether the two periods share a day.
    pub fn overlaps(&self, other: &Validity) -> bool {
        let ends_before = |a: &Validity, b: &Validity| a.to.is_some_and(|to| to < b.from);
        !ends_before(self, other) && !ends_before(other, self)
    }
}

/// A unit price from a quantity on (in the material's base unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleStep {
    pub from_quantity: Decimal,
    pub unit_price: Decimal,
}

/// A price list entry (`customer: None`) or a customer's own price for a material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRecord {
    pub id: String,
    pub material: String,
    pub currency: String,
    pub customer: Option<String>,
    pub validity: Validity,
    /// Ascending by quantity; the first step starts at zero.
    pub scale: Vec<ScaleStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Reduction {
    /// Percent of the base price.
    Percent(Decimal),
    /// An amount off each unit, in the record's currency.
    PerUnit(Decimal),
}

/// A discount for a customer, a material group, or a customer buying from a material group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountRecord {
    pub id: String,
    pub customer: Option<String>,
    pub material_group: Option<String>,
    /// The currency of a per-unit amount (a percentage applies in every currency).
    pub currency: Option<String>,
    pub validity: Validity,
    pub reduction: Reduction,
}

impl DiscountRecord {
    /// What the discount is keyed by, its kind in an explanation.
    pub fn condition(&self) -> &'static str {
        match (
            &self.customer,
            &self.material_group,
            matches!(self.reduction, Reduction::Percent(_)),
        ) {
            (Some(_), Some(_), true) => "customer_material_group_discount_percent",
            (Some(_), None, true) => "customer_discount_percent",
            (None, _, true) => "material_group_discount_percent",
            (Some(_), Some(_), false) => "customer_material_group_discount_per_unit",
            (Some(_), None, false) => "customer_discount_per_unit",
            (None, _, false) => "material_group_discount_per_unit",
        }
    }
}

/// The tax rate for a customer tax class and a material tax class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRecord {
    pub id: String,
    pub customer_class: String,
    pub material_class: String,
    pub validity: Validity,
    pub percent: Decimal,
}

/// The condition records prices are determined from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub prices: Vec<PriceRecord>,
    pub discounts: Vec<DiscountRecord>,
    pub taxes: Vec<TaxRecord>,
}

/// What one order line is priced for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub customer: &'a str,
    pub customer_tax_class: &'a str,
    pub material: &'a str,
    pub material_group: Option<&'a str>,
    pub material_tax_class: &'a str,
    pub currency: &'a str,
    pub quantity: Decimal,
    pub pricing_date: NaiveDate,
}

/// One step of a determination: which record applied, on what, with what result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub condition: String,
    pub record: String,
    /// The amount the step works on (the base price per unit, the net value).
    pub basis: Decimal,
    /// The percent applied, when it is one.
    pub percent: Option<Decimal>,
    /// Per unit for prices and discounts, per line for tax.
    pub amount: Decimal,
}

/// A line's price, with the steps that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub currency: String,
    pub base_price: Decimal,
    pub net_price: Decimal,
    pub net_value: Decimal,
    pub tax_percent: Decimal,
    pub tax: Decimal,
    pub gross_value: Decimal,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingError {
    NoPrice {
        material: String,
        currency: String,
        date: NaiveDate,
    },
    NoTaxRate {
        customer_class: String,
        material_class: String,
        date: NaiveDate,
    },
    Overlap {
        condition: &'static str,
        records: (String, String),
    },
}

impl std::fmt::Display for PricingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PricingError::NoPrice {
                material,
                currency,
                date,
            } => write!(
                f,
                "no price for material {material} in {currency} on {date}"
            ),
            PricingError::NoTaxRate {
                customer_class,
                material_class,
                date,
            } => write!(
                f,
                "no tax rate for customer tax class {customer_class} and material tax class {material_class} on {date}"
            ),
            PricingError::Overlap { condition, records } => write!(
                f,
                "{condition} records {} and {} are valid on the same day for the same keys",
                records.0, records.1
            ),
        }
    }
}

impl std::error::Error for PricingError {}

fn round_value(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(VALUE_SCALE, RoundingStrategy::MidpointAwayFromZero)
}

/// The one record of `records` that applies, or an overlap error naming two.
fn single<'r, T>(
    condition: &'static str,
    mut records: impl Iterator<Item = &'r T>,
    id: impl Fn(&T) -> &str,
) -> Result<Option<&'r T>, PricingError>
where
    T: 'r,
{
    let first = records.next();
    if let (Some(first), Some(second)) = (first, records.next()) {
        return Err(PricingError::Overlap {
            condition,
            records: (id(first).to_owned(), id(second).to_owned()),
        });
    }
    Ok(first)
}

/// Prices `line` from `conditions`.
pub fn determine<'a>(conditions: &Conditions, line: &Line<'a>) -> Result<Price, PricingError> {
    let day = line.pricing_date;
    let prices_of = |customer: Option<&'a str>| {
        conditions.prices.iter().filter(move |p| {
            p.material == line.material
                && p.currency == line.currency
                && p.customer.as_deref() == customer
                && p.validity.covers(day)
        })
    };
    let (condition, record) =
        match single("customer_price", prices_of(Some(line.customer)), |p| &p.id)? {
            Some(own) => ("customer_price", own),
            None => (
                "list_price",
                single("list_price", prices_of(None), |p| &p.id)?.ok_or_else(|| {
                    PricingError::NoPrice {
                        material: line.material.to_owned(),
                        currency: line.currency.to_owned(),
                        date: day,
                    }
                })?,
            ),
        };
    let base_price = record
        .scale
        .iter()
        .rev()
        .find(|step| step.from_quantity <= line.quantity)
        .or_else(|| record.scale.first())
        .map_or(Decimal::ZERO, |step| step.unit_price);
    let mut steps = vec![Step {
        condition: condition.to_owned(),
        record: record.id.clone(),
        basis: line.quantity,
        percent: None,
        amount: base_price,
    }];

    // Discounts in a fixed order: percentages before amounts; customer, group, both.
    let applies = |d: &DiscountRecord| {
        d.validity.covers(day)
            && (d.customer.is_some() || d.material_group.is_some())
            && d.customer.as_deref().is_none_or(|c| c == line.customer)
            && d.material_group
                .as_deref()
                .is_none_or(|g| Some(g) == line.material_group)
            && match d.reduction {
                Reduction::Percent(_) => true,
                Reduction::PerUnit(_) => d.currency.as_deref() == Some(line.currency),
            }
    };
    let order = [
        "customer_discount_percent",
        "material_group_discount_percent",
        "customer_material_group_discount_percent",
        "customer_discount_per_unit",
        "material_group_discount_per_unit",
        "customer_material_group_discount_per_unit",
    ];
    let mut discount = Decimal::ZERO;
    for kind in order {
        let found = single(
            kind,
            conditions
                .discounts
                .iter()
                .filter(|d| applies(d) && d.condition() == kind),
            |d| &d.id,
        )?;
        let Some(record) = found else {
            continue;
        };
        let (percent, amount) = match record.reduction {
            Reduction::Percent(percent) => {
                (Some(percent), base_price * percent / Decimal::ONE_HUNDRED)
            }
            Reduction::PerUnit(amount) => (None, amount),
        };
        discount += amount;
        steps.push(Step {
            condition: kind.to_owned(),
            record: record.id.clone(),
            basis: base_price,
            percent,
            amount: -amount,
        });
    }
    let net_price = (base_price - discount)
        .max(Decimal::ZERO)
        .round_dp_with_strategy(UNIT_PRICE_SCALE, RoundingStrategy::MidpointAwayFromZero);
    let net_value = round_value(line.quantity * net_price);

    let tax = single(
        "tax",
        conditions.taxes.iter().filter(|t| {
            t.customer_class == line.customer_tax_class
                && t.material_class == line.material_tax_class
                && t.validity.covers(day)
        }),
        |t| &t.id,
    )?
    .ok_or_else(|| PricingError::NoTaxRate {
        customer_class: line.customer_tax_class.to_owned(),
        material_class: line.material_tax_class.to_owned(),
        date: day,
    })?;
    let tax_amount = round_value(net_value * tax.percent / Decimal::ONE_HUNDRED);
    steps.push(Step {
        condition: "tax".to_owned(),
        record: tax.id.clone(),
        basis: net_value,
        percent: Some(tax.percent),
        amount: tax_amount,
    });
    Ok(Price {
        currency: line.currency.to_owned(),
        base_price,
        net_price,
        net_value,
        tax_percent: tax.percent,
        tax: tax_amount,
        gross_value: net_value + tax_amount,
        steps,
    })
}

/// Re-computes a price from its own steps (what an order's event keeps): the same figures, or
/// the first that differs.
pub fn replay(price: &Price, quantity: Decimal) -> Result<(), String> {
    let base = price.steps.first().map_or(Decimal::ZERO, |s| s.amount);
    let discounts: Decimal = price
        .steps
        .iter()
        .filter(|s| s.condition.contains("discount"))
        .map(|s| -s.amount)
        .sum();
    let net_price = (base - discounts)
        .max(Decimal::ZERO)
        .round_dp_with_strategy(UNIT_PRICE_SCALE, RoundingStrategy::MidpointAwayFromZero);
    let net_value = round_value(quantity * net_price);
    let tax: Decimal = price
        .steps
        .iter()
        .filter(|s| s.condition == "tax")
        .map(|s| s.amount)
        .sum();
    for (what, kept, again) in [
        ("base price", price.base_price, base),
        ("net price", price.net_price, net_price),
        ("net value", price.net_value, net_value),
        ("tax", price.tax, tax),
        ("gross value", price.gross_value, net_value + tax),
    ] {
        if kept != again {
            return Err(format!("{what}: kept {kept}, replayed {again}"));
        }
    }
    Ok(())
}

/// A condition record as [`overlap`] compares them.
pub trait Record {
    /// What the record is, in an error ("price", "discount", "tax rate").
    const WHAT: &'static str;
    /// Its keys, as an error names them.
    const KEYS: &'static str;
    fn id(&self) -> &str;
    fn validity(&self) -> &Validity;
    /// Whether `other` is for the same keys (then only one may be valid on a day).
    fn same_keys(&self, other: &Self) -> bool;
}

impl Record for PriceRecord {
    const WHAT: &'static str = "price";
    const KEYS: &'static str = "material, currency and customer";
    fn id(&self) -> &str {
        &self.id
    }
    fn validity(&self) -> &Validity {
        &self.validity
    }
    fn same_keys(&self, other: &Self) -> bool {
        self.material == other.material
            && self.currency == other.currency
            && self.customer == other.customer
    }
}

impl Record for DiscountRecord {
    const WHAT: &'static str = "discount";
    const KEYS: &'static str = "customer, material group, kind and currency";
    fn id(&self) -> &str {
        &self.id
    }
    fn validity(&self) -> &Validity {
        &self.validity
    }
    fn same_keys(&self, other: &Self) -> bool {
        self.condition() == other.condition()
            && self.customer == other.customer
            && self.material_group == other.material_group
            && self.currency == other.currency
    }
}

impl Record for TaxRecord {
    const WHAT: &'static str = "tax rate";
    const KEYS: &'static str = "customer and material tax classes";
    fn id(&self) -> &str {
        &self.id
    }
    fn validity(&self) -> &Validity {
        &self.validity
    }
    fn same_keys(&self, other: &Self) -> bool {
        self.customer_class == other.customer_class && self.material_class == other.material_class
    }
}

/// Refuses a new record that shares a day with an existing one for the same keys (naming it).
pub fn overlap<R: Record>(existing: &[R], new: &R) -> Result<(), String> {
    match existing
        .iter()
        .find(|r| r.id() != new.id() && r.same_keys(new) && r.validity().overlaps(new.validity()))
    {
        Some(other) => Err(format!(
            "overlaps {} {} (valid from {}{}) for the same {}",
            R::WHAT,
            other.id(),
            other.validity().from,
            other
                .validity()
                .to
                .map_or(String::new(), |to| format!(" to {to}")),
            R::KEYS
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn valid(from: &str, to: Option<&str>) -> Validity {
        Validity {
            from: day(from),
            to: to.map(day),
        }
    }

    fn list_price(id: &str, customer: Option<&str>, steps: &[(&str, &str)]) -> PriceRecord {
        PriceRecord {
            id: id.into(),
            material: "BOLT-M8".into(),
            currency: "EUR".into(),
            customer: customer.map(Into::into),
            validity: valid("2026-01-01", Some("2026-12-31")),
            scale: steps
                .iter()
                .map(|(from, price)| ScaleStep {
                    from_quantity: d(from),
                    unit_price: d(price),
                })
                .collect(),
        }
    }

    fn taxes() -> Vec<TaxRecord> {
        [
            ("T1", "full", "full", "19"),
            ("T2", "full", "reduced", "7"),
            ("T3", "exempt", "full", "0"),
        ]
        .iter()
        .map(|(id, c, m, p)| TaxRecord {
            id: (*id).into(),
            customer_class: (*c).into(),
            material_class: (*m).into(),
            validity: valid("2020-01-01", None),
            percent: d(p),
        })
        .collect()
    }

    fn line(quantity: &str) -> Line<'static> {
        Line {
            customer: "C-100",
            customer_tax_class: "full",
            material: "BOLT-M8",
            material_group: Some("FASTENERS"),
            material_tax_class: "full",
            currency: "EUR",
            quantity: d(quantity),
            pricing_date: day("2026-03-15"),
        }
    }

    #[test]
    fn the_scale_step_the_quantity_reaches_sets_the_list_price_and_tax_follows() {
        let conditions = Conditions {
            prices: vec![list_price(
                "P1",
                None,
                &[("0", "1.20"), ("100", "1.00"), ("1000", "0.90")],
            )],
            taxes: taxes(),
            ..Conditions::default()
        };
        let small = determine(&conditions, &line("5")).unwrap();
        assert_eq!((small.base_price, small.net_value), (d("1.20"), d("6.00")));
        assert_eq!((small.tax, small.gross_value), (d("1.14"), d("7.14")));
        let large = determine(&conditions, &line("250")).unwrap();
        assert_eq!(
            (large.base_price, large.net_value),
            (d("1.00"), d("250.00"))
        );
        let reduced = determine(
            &conditions,
            &Line {
                material_tax_class: "reduced",
                ..line("250")
            },
        )
        .unwrap();
        assert_eq!((reduced.tax_percent, reduced.tax), (d("7"), d("17.50")));
        assert_eq!(large.steps[0].condition, "list_price");
        assert_eq!(large.steps[0].record, "P1");
    }

    #[test]
    fn a_customers_own_price_beats_the_list_and_records_out_of_validity_do_not_count() {
        let mut own = list_price("CP1", Some("C-100"), &[("0", "1.05")]);
        let mut conditions = Conditions {
            prices: vec![list_price("P1", None, &[("0", "1.20")]), own.clone()],
            taxes: taxes(),
            ..Conditions::default()
        };
        let price = determine(&conditions, &line("10")).unwrap();
        assert_eq!(
            (price.steps[0].condition.as_str(), price.base_price),
            ("customer_price", d("1.05"))
        );
        // Another customer gets the list price.
        let other = determine(
            &conditions,
            &Line {
                customer: "C-200",
                ..line("10")
            },
        )
        .unwrap();
        assert_eq!(other.base_price, d("1.20"));
        // Expired: the list again; no list either: no price, named.
        own.validity = valid("2025-01-01", Some("2025-12-31"));
        conditions.prices[1] = own;
        assert_eq!(
            determine(&conditions, &line("10")).unwrap().base_price,
            d("1.20")
        );
        conditions.prices.remove(0);
        assert_eq!(
            determine(&conditions, &line("10")).unwrap_err(),
            PricingError::NoPrice {
                material: "BOLT-M8".into(),
                currency: "EUR".into(),
                date: day("2026-03-15")
            }
        );
        let missing_tax = Conditions {
            prices: vec![list_price("P1", None, &[("0", "1")])],
            ..Conditions::default()
        };
        assert!(matches!(
            determine(&missing_tax, &line("1")),
            Err(PricingError::NoTaxRate { .. })
        ));
    }

    #[test]
    fn discounts_apply_in_their_order_on_the_base_price_and_the_steps_replay() {
        let discount =
            |id: &str, customer: Option<&str>, group: Option<&str>, reduction| DiscountRecord {
                id: id.into(),
                customer: customer.map(Into::into),
                material_group: group.map(Into::into),
                currency: Some("EUR".into()),
                validity: valid("2026-01-01", None),
                reduction,
            };
        let conditions = Conditions {
            prices: vec![list_price("P1", None, &[("0", "10.00")])],
            discounts: vec![
                discount("D3", None, Some("FASTENERS"), Reduction::Percent(d("5"))),
                discount("D1", Some("C-100"), None, Reduction::Percent(d("2"))),
                discount("D4", Some("C-100"), None, Reduction::PerUnit(d("0.10"))),
                // Another group's discount does not apply.
                discount("D9", None, Some("TOOLS"), Reduction::Percent(d("50"))),
            ],
            taxes: taxes(),
        };
        let price = determine(&conditions, &line("3")).unwrap();
        let explained: Vec<(&str, &str, Decimal)> = price
            .steps
            .iter()
            .map(|s| (s.condition.as_str(), s.record.as_str(), s.amount))
            .collect();
        assert_eq!(
            explained,
            [
                ("list_price", "P1", d("10.00")),
                ("customer_discount_percent", "D1", d("-0.2000")),
                ("material_group_discount_percent", "D3", d("-0.5000")),
                ("customer_discount_per_unit", "D4", d("-0.10")),
                ("tax", "T1", d("5.24")),
            ]
        );
        // 10.00 − 0.20 − 0.50 − 0.10 = 9.20 a unit, 27.60 for three; 19 % of it 5.244 → 5.24.
        assert_eq!((price.net_price, price.net_value), (d("9.20"), d("27.60")));
        assert_eq!(price.tax, d("5.24"));
        replay(&price, d("3")).unwrap();
        // What the event keeps reads back and replays to the same figures.
        let kept: Price = serde_json::from_str(&serde_json::to_string(&price).unwrap()).unwrap();
        replay(&kept, d("3")).unwrap();
        let mut tampered = kept;
        tampered.net_value = d("27.61");
        assert!(replay(&tampered, d("3")).unwrap_err().contains("net value"));
    }

    #[test]
    fn overlapping_records_are_refused_and_named() {
        let existing = vec![list_price("P1", None, &[("0", "1")])];
        let mut new = list_price("P2", None, &[("0", "2")]);
        new.validity = valid("2026-06-01", None);
        assert!(overlap(&existing, &new).unwrap_err().contains("P1"));
        new.validity = valid("2027-01-01", None);
        assert!(overlap(&existing, &new).is_ok());
        // Another customer's own price is no overlap.
        new.validity = valid("2026-06-01", None);
        new.customer = Some("C-100".into());
        assert!(overlap(&existing, &new).is_ok());
        // Discounts overlap per key and kind; tax rates per pair of classes.
        let percent = |id: &str, reduction| DiscountRecord {
            id: id.into(),
            customer: None,
            material_group: Some("FASTENERS".into()),
            currency: None,
            validity: valid("2026-01-01", None),
            reduction,
        };
        let discounts = vec![percent("D1", Reduction::Percent(d("5")))];
        assert!(
            overlap(&discounts, &percent("D2", Reduction::Percent(d("7"))))
                .unwrap_err()
                .contains("discount D1")
        );
        assert!(overlap(&discounts, &percent("D2", Reduction::PerUnit(d("1")))).is_ok());
        let mut tax = taxes()[0].clone();
        tax.id = "T9".into();
        assert!(overlap(&taxes(), &tax).unwrap_err().contains("tax rate T1"));
        tax.material_class = "exempt".into();
        assert!(overlap(&taxes(), &tax).is_ok());
        // Met at determination time, two valid records are an error naming both.
        let both = Conditions {
            prices: vec![existing[0].clone(), {
                let mut p = list_price("P2", None, &[("0", "2")]);
                p.validity = valid("2026-03-01", None);
                p
            }],
            taxes: taxes(),
            ..Conditions::default()
        };
        assert_eq!(
            determine(&both, &line("1")).unwrap_err(),
            PricingError::Overlap {
                condition: "list_price",
                records: ("P1".into(), "P2".into())
            }
        );
    }
}
