//! Master data every context shares: company, fiscal period, currency, signed money and
//! quantities with their unit of measure.
//!
//! Parsed once at the edge (`CompanyCode::parse(text)?`), carried as newtypes inside. Amounts
//! are `rust_decimal`, never floats; rounding happens where a value is decided, with the
//! strategy named at the call site ([`Money::round`]).

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::money::Currency;

/// A code type of a context (a plant, a material, a vendor, a customer number): upper-case
/// letters and digits (and the extra bytes given), 1 to `len` of them, parsed once at the edge.
/// `code!(VendorNumber, 20, "must be 1 to 20 characters A-Z, 0-9, '-' or '_'", b"-_");`
#[macro_export]
macro_rules! code {
    ($name:ident, $len:expr, $rule:expr, $extra:expr) => {
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<$name, &'static str> {
                let extra: &[u8] = $extra;
                if (1..=$len).contains(&text.len())
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || extra.contains(&b))
                {
                    Ok($name(text.to_owned()))
                } else {
                    Err($rule)
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A company code: 1 to 12 upper-case letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CompanyCode(String);

impl fmt::Display for CompanyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CompanyCode {
    pub fn parse(text: &str) -> Result<CompanyCode, &'static str> {
        let ok = (1..=12).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(CompanyCode(text.to_owned()))
        } else {
            Err("must be 1 to 12 characters A-Z, 0-9, '-' or '_'")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A monthly posting period, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    pub fn parse(text: &str) -> Result<Period, &'static str> {
        const RULE: &str = "must be a period YYYY-MM such as \"2026-01\"";
        let (year, month) = text.split_once('-').ok_or(RULE)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(RULE);
        }
        let year: i32 = year.parse().map_err(|_| RULE)?;
        let month: u32 = month.parse().map_err(|_| RULE)?;
        if !(1..=12).contains(&month) || !(1900..=9999).contains(&year) {
            return Err(RULE);
        }
        Ok(Period { year, month })
    }
    pub fn of(date: NaiveDate) -> Period {
        Period {
            year: date.year(),
            month: date.month(),
        }
    }
    pub fn first_day(self) -> NaiveDate {
        // Months 1..=12 and years 1900..=9999 always form a valid first day.
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }
    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MIN)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Period::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses a date `YYYY-MM-DD` in the years Tributary accepts (1900..=9999).
pub fn parse_date(text: &str) -> Result<NaiveDate, &'static str> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (1900..=9999).contains(&d.year()) && text.len() == 10)
        .ok_or("must be a date YYYY-MM-DD such as \"2026-01-31\"")
}

/// Digits after the decimal point of a posted amount (the lake's `Decimal128(38, 4)`).
pub const MONEY_SCALE: u32 = 4;
/// Digits after the decimal point a quantity may carry.
pub const QUANTITY_SCALE: u32 = 4;

/// A signed amount in one currency. Arithmetic across currencies is a programmer error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money::new(Decimal::ZERO, currency)
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// Rounded to `scale` decimals, halves away from zero (the commercial rule: 0.005 -> 0.01).
    pub fn round(&self, scale: u32) -> Money {
        Money::new(
            self.amount
                .round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero),
            self.currency.clone(),
        )
    }

    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| Money::new(self.amount + other.amount, self.currency.clone()))
    }

    pub fn checked_sub(&self, other: &Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| Money::new(self.amount - other.amount, self.currency.clone()))
    }

    pub fn negated(&self) -> Money {
        Money::new(-self.amount, self.currency.clone())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// A unit of measure code: 1 to 6 upper-case letters or digits (`PC`, `BOX`, `KG`, `L`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnitOfMeasure(String);

impl UnitOfMeasure {
    pub fn parse(text: &str) -> Result<UnitOfMeasure, &'static str> {
        if (1..=6).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            Ok(UnitOfMeasure(text.to_owned()))
        } else {
            Err("must be 1 to 6 characters A-Z or 0-9, such as \"PC\" or \"BOX\"")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnitOfMeasure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A signed quantity in a unit of measure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quantity {
    pub value: Decimal,
    pub unit: UnitOfMeasure,
}

impl Quantity {
    pub fn new(value: Decimal, unit: UnitOfMeasure) -> Quantity {
        Quantity { value, unit }
    }

    /// The same quantity in another unit, `factor` base units per one of this unit
    /// (a box of 12 pieces: 2 BOX at factor 12 is 24 PC). Exact: decimals multiply exactly.
    pub fn converted(&self, factor: Decimal, unit: UnitOfMeasure) -> Quantity {
        Quantity::new(self.value * factor, unit)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.unit)
    }
}

/// The state of a company's posting period on a date, as the context that keeps the books
/// publishes it: other contexts refuse a posting date their ledger postings could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodState {
    NoCompany,
    NotDefined,
    Open,
    Closed,
}

/// Whether an account can take a posting, as the books publish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountState {
    Missing,
    Blocked,
    Usable { currency: Currency },
}

/// A published query interface (in process): what the books allow, for other contexts to
/// refuse a command whose posting the books would refuse. Finance provides it; a context
/// without finance in its installation accepts every date and account.
#[async_trait::async_trait]
pub trait Books: Send + Sync {
    /// The state of the company's posting period containing `date`.
    async fn period_state(
        &self,
        store: &crate::store::EventStore,
        company: &CompanyCode,
        date: NaiveDate,
    ) -> Result<PeriodState, crate::aggregate::RepositoryError>;

    /// Whether the company's account `account` exists and is open for posting.
    async fn account_state(
        &self,
        store: &crate::store::EventStore,
        company: &CompanyCode,
        account: &str,
    ) -> Result<AccountState, crate::aggregate::RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_rounds_half_away_from_zero_and_refuses_mixed_currencies() {
        let eur = Currency::parse("EUR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let m = Money::new(Decimal::new(10005, 3), eur.clone());
        assert_eq!(m.round(2).amount, Decimal::new(1001, 2));
        assert_eq!(m.negated().round(2).amount, Decimal::new(-1001, 2));
        assert!(m.checked_add(&Money::zero(usd)).is_none());
        assert_eq!(
            m.checked_sub(&m).map(|d| d.is_zero()),
            Some(true),
            "same currency subtracts"
        );
    }

    #[test]
    fn master_data_codes_parse_strictly() {
        assert!(CompanyCode::parse("MAIN").is_ok());
        assert!(CompanyCode::parse("main").is_err());
        assert_eq!(
            Period::parse("2026-02").unwrap().last_day().to_string(),
            "2026-02-28"
        );
        assert!(Period::parse("2026-13").is_err());
        assert!(UnitOfMeasure::parse("BOX").is_ok());
        assert!(UnitOfMeasure::parse("box").is_err());
        assert!(parse_date("2026-02-30").is_err());
        let boxes = Quantity::new(Decimal::new(2, 0), UnitOfMeasure::parse("BOX").unwrap());
        let pieces = boxes.converted(Decimal::new(12, 0), UnitOfMeasure::parse("PC").unwrap());
        assert_eq!(pieces.value, Decimal::new(24, 0));
    }
}
