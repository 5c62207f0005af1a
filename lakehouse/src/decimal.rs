//! Conversions between `rust_decimal::Decimal` and Arrow `Decimal128` values.

use crate::catalog::MONEY_SCALE;
use rust_decimal::Decimal;

/// The `Decimal128(38, 4)` value of an amount, or `None` if it needs more than four decimals
/// (inputs are validated to four, so this only fails on a programming error).
pub fn to_money_i128(value: Decimal) -> Option<i128> {
    let mut scaled = value;
    scaled.rescale(MONEY_SCALE as u32);
    (scaled == value).then(|| scaled.mantissa())
}

/// An Arrow decimal value as a `Decimal`; `None` if it does not fit 96 bits.
pub fn from_i128(value: i128, scale: i8) -> Option<Decimal> {
    let scale = u32::try_from(scale).ok()?;
    Decimal::try_from_i128_with_scale(value, scale).ok()
}

/// The decimal at `row` of an Arrow `Decimal128` column; NULL (no movements) is zero.
pub fn value_at(
    array: &dyn datafusion::arrow::array::Array,
    row: usize,
) -> Result<Decimal, String> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{DataType, Decimal128Type};
    if array.is_null(row) {
        return Ok(Decimal::ZERO);
    }
    let decimals = array
        .as_primitive_opt::<Decimal128Type>()
        .ok_or_else(|| format!("expected a decimal column, got {}", array.data_type()))?;
    let scale = match array.data_type() {
        DataType::Decimal128(_, scale) => *scale,
        _ => MONEY_SCALE,
    };
    from_i128(decimals.value(row), scale).ok_or_else(|| "decimal out of range".to_owned())
}

pub use tributary_kernel::money::display_amount;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_through_decimal128_exactly() {
        let amount = Decimal::new(125_000, 2);
        let raw = to_money_i128(amount).unwrap();
        assert_eq!(raw, 12_500_000);
        assert_eq!(from_i128(raw, 4).unwrap(), amount);
        assert_eq!(to_money_i128(Decimal::new(1, 5)), None);
        assert_eq!(display_amount(from_i128(12_500_000, 4).unwrap()), "1250.00");
        assert_eq!(display_amount(from_i128(12_345, 4).unwrap()), "1.2345");
        assert_eq!(display_amount(Decimal::ZERO), "0.00");
    }
}
