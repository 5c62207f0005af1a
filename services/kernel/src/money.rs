//! Money and quantity inputs: parsed, never floats.
//!
//! Amounts travel as JSON strings (`"1250.00"`): a JSON number is refused because a float
//! cannot carry every cent. The supported range fits Arrow/Delta `Decimal128(38, 4)` with room
//! for sums over billions of lines.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Digits after the decimal point an amount may carry.
pub const AMOUNT_SCALE_MAX: u32 = 4;
/// Largest absolute amount accepted on one line: 15 integer digits.
pub const AMOUNT_ABS_MAX: Decimal =
    Decimal::from_parts(0x89E7_FFFF, 0x8AC7_2304, 0, false, AMOUNT_SCALE_MAX);

/// Why an amount was refused; `rule()` is the machine-readable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a decimal string such as \"1250.00\"")]
    NotDecimal,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must have at most {AMOUNT_SCALE_MAX} decimal places")]
    TooManyDecimals,
    #[error("must not exceed 999999999999999.9999 in magnitude")]
    OutOfRange,
}

impl AmountError {
    pub fn rule(&self) -> &'static str {
        match self {
            AmountError::NotDecimal => "decimal_string",
            AmountError::NotPositive => "positive",
            AmountError::TooManyDecimals => "max_4_decimal_places",
            AmountError::OutOfRange => "out_of_range",
        }
    }
}

/// Parses a strictly positive amount with at most four decimals within the supported range.
pub fn parse_positive_amount(text: &str) -> Result<Decimal, AmountError> {
    let trimmed = text.trim();
    let well_formed = !trimmed.is_empty()
        && trimmed.len() <= 40
        && trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+');
    if !well_formed {
        return Err(AmountError::NotDecimal);
    }
    // Judge range and scale on the digits themselves, before a parser that can only hold
    // 28 digits turns a long input into a generic error.
    let unsigned = trimmed.trim_start_matches(['-', '+']);
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if integer.trim_start_matches('0').len() > 15 {
        return Err(AmountError::OutOfRange);
    }
    if fraction.trim_end_matches('0').len() > AMOUNT_SCALE_MAX as usize {
        return Err(AmountError::TooManyDecimals);
    }
    let value = Decimal::from_str_exact(trimmed).map_err(|_| AmountError::NotDecimal)?;
    if value.abs() > AMOUNT_ABS_MAX {
        return Err(AmountError::OutOfRange);
    }
    if value <= Decimal::ZERO {
        return Err(AmountError::NotPositive);
    }
    if value.normalize().scale() > AMOUNT_SCALE_MAX {
        return Err(AmountError::TooManyDecimals);
    }
    Ok(value)
}

/// An amount for people: at least two decimals, no trailing zeros beyond them.
pub fn display_amount(value: Decimal) -> String {
    let mut normalized = value.normalize();
    if normalized.scale() < 2 {
        normalized.rescale(2);
    }
    normalized.to_string()
}

/// An ISO 4217-shaped currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn parse(text: &str) -> Result<Currency, &'static str> {
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(text.to_owned()))
        } else {
            Err("must be a three-letter upper-case ISO 4217 code such as \"EUR\"")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_and_refuse_what_would_lose_cents() {
        assert_eq!(
            parse_positive_amount("1250.00"),
            Ok(Decimal::new(125000, 2))
        );
        assert_eq!(parse_positive_amount("0.0001"), Ok(Decimal::new(1, 4)));
        assert_eq!(
            parse_positive_amount("1.23450"),
            Ok(Decimal::new(123450, 5))
        );
        assert_eq!(parse_positive_amount("0"), Err(AmountError::NotPositive));
        assert_eq!(parse_positive_amount("-5"), Err(AmountError::NotPositive));
        assert_eq!(
            parse_positive_amount("1.00001"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(parse_positive_amount("1e3"), Err(AmountError::NotDecimal));
        assert_eq!(parse_positive_amount("abc"), Err(AmountError::NotDecimal));
        assert_eq!(parse_positive_amount(""), Err(AmountError::NotDecimal));
        assert_eq!(
            parse_positive_amount("999999999999999.9999"),
            Ok(AMOUNT_ABS_MAX)
        );
        assert_eq!(
            parse_positive_amount("1000000000000000"),
            Err(AmountError::OutOfRange)
        );
        assert_eq!(
            parse_positive_amount("99999999999999999999999999999999"),
            Err(AmountError::OutOfRange)
        );
    }

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_ok());
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
    }
}
