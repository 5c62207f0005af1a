//! Run parameters: checked against the definition's types, then bound as named SQL
//! placeholders (`$period_start`, `$company`, …) — never spliced into the SQL text.

use crate::definition::{Definition, Invalid, ParameterType};
use chrono::{Datelike, NaiveDate};
use datafusion::common::ScalarValue;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use tributary_finance::domain::Period;
use tributary_lakehouse::catalog::{MONEY_PRECISION, MONEY_SCALE, date32};

/// Checks the values a caller gave against the definition: unknown names, missing required
/// values and ill-typed values are refused, naming the parameter. Returns the values in their
/// canonical text form (what the run records).
pub fn check(
    definition: &Definition,
    given: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, Invalid> {
    if let Some(unknown) = given
        .keys()
        .find(|name| !definition.parameters.iter().any(|p| &p.name == *name))
    {
        let declared: Vec<&str> = definition
            .parameters
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        return Err(Invalid::new(
            format!("parameters.{unknown}"),
            "unknown_parameter",
            format!(
                "report {:?} has no parameter {unknown:?}; its parameters are: {}",
                definition.name,
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(", ")
                }
            ),
        ));
    }
    let mut values = BTreeMap::new();
    for parameter in &definition.parameters {
        let field = format!("parameters.{}", parameter.name);
        let value = match given.get(&parameter.name) {
            None | Some(Value::Null) => {
                if parameter.required && parameter.kind != ParameterType::Company {
                    return Err(Invalid::new(
                        field,
                        "required",
                        format!(
                            "give the {} parameter {:?}{}",
                            parameter.kind.name(),
                            parameter.name,
                            example(parameter.kind)
                        ),
                    ));
                }
                continue;
            }
            Some(value) => value,
        };
        let text = canonical(parameter.kind, value).ok_or_else(|| {
            Invalid::new(
                field.clone(),
                parameter.kind.name(),
                format!(
                    "{value} is not a {}{}",
                    parameter.kind.name(),
                    example(parameter.kind)
                ),
            )
        })?;
        values.insert(parameter.name.clone(), text);
    }
    Ok(values)
}

fn example(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::Month => ": a period YYYY-MM such as \"2026-01\"",
        ParameterType::Date => ": a date YYYY-MM-DD such as \"2026-01-31\"",
        ParameterType::Text => ": a string",
        ParameterType::Integer => ": a whole number such as 12",
        ParameterType::Decimal => ": an exact amount as a string such as \"1250.00\"",
        ParameterType::Boolean => ": true or false",
        ParameterType::Company => ": a company code such as \"MAIN\"",
    }
}

fn canonical(kind: ParameterType, value: &Value) -> Option<String> {
    match (kind, value) {
        (ParameterType::Month, Value::String(text)) => {
            Period::parse(text).ok().map(|period| period.to_string())
        }
        (ParameterType::Date, Value::String(text)) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .filter(|date| (1900..=9999).contains(&date.year()))
            .map(|date| date.to_string()),
        (ParameterType::Text | ParameterType::Company, Value::String(text)) => {
            (!text.is_empty()).then(|| text.clone())
        }
        (ParameterType::Integer, Value::Number(number)) => number.as_i64().map(|n| n.to_string()),
        (ParameterType::Integer, Value::String(text)) => {
            text.parse::<i64>().ok().map(|n| n.to_string())
        }
        (ParameterType::Decimal, Value::String(text)) => Decimal::from_str_exact(text)
            .ok()
            .filter(|amount| amount.scale() <= MONEY_SCALE as u32)
            .map(|amount| amount.to_string()),
        (ParameterType::Boolean, Value::Bool(flag)) => Some(flag.to_string()),
        _ => None,
    }
}

/// The named placeholder values of checked parameters. A month parameter `p` binds `$p`
/// (`YYYY-MM`) and the dates `$p_start`, `$p_end` (the month), `$p_previous_start`,
/// `$p_previous_end` (the month before), `$p_year_start` (1 January of its year),
/// `$p_previous_year_start` (1 January a year earlier) and `$p_previous_year_end` (the end of
/// the same month a year earlier). Parameters left out are bound as typed NULLs.
pub fn bind(
    definition: &Definition,
    values: &BTreeMap<String, String>,
) -> Result<HashMap<String, ScalarValue>, Invalid> {
    let mut bound = HashMap::new();
    for parameter in &definition.parameters {
        let name = &parameter.name;
        let value = values.get(name);
        let invalid = || {
            Invalid::new(
                format!("parameters.{name}"),
                parameter.kind.name(),
                format!("{value:?} is not a {}", parameter.kind.name()),
            )
        };
        match parameter.kind {
            ParameterType::Month => {
                let period = value
                    .map(|text| Period::parse(text))
                    .transpose()
                    .map_err(|_| invalid())?;
                for (suffix, date) in month_dates(period) {
                    bound.insert(
                        format!("{name}{suffix}"),
                        ScalarValue::Date32(date.map(date32)),
                    );
                }
                bound.insert(name.clone(), ScalarValue::Utf8(value.cloned()));
            }
            ParameterType::Date => {
                let date = value
                    .map(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
                    .transpose()
                    .map_err(|_| invalid())?;
                bound.insert(name.clone(), ScalarValue::Date32(date.map(date32)));
            }
            ParameterType::Text | ParameterType::Company => {
                bound.insert(name.clone(), ScalarValue::Utf8(value.cloned()));
            }
            ParameterType::Integer => {
                let number = value
                    .map(|text| text.parse::<i64>())
                    .transpose()
                    .map_err(|_| invalid())?;
                bound.insert(name.clone(), ScalarValue::Int64(number));
            }
            ParameterType::Decimal => {
                let amount = value
                    .map(|text| Decimal::from_str_exact(text))
                    .transpose()
                    .map_err(|_| invalid())?
                    .map(|amount| {
                        tributary_lakehouse::decimal::to_money_i128(amount).ok_or_else(invalid)
                    })
                    .transpose()?;
                bound.insert(
                    name.clone(),
                    ScalarValue::Decimal128(amount, MONEY_PRECISION, MONEY_SCALE),
                );
            }
            ParameterType::Boolean => {
                let flag = value.map(|text| text == "true");
                bound.insert(name.clone(), ScalarValue::Boolean(flag));
            }
        }
    }
    Ok(bound)
}

fn month_dates(period: Option<Period>) -> [(&'static str, Option<NaiveDate>); 7] {
    let previous = period.map(previous_month);
    let a_year_earlier = period.map(|p| Period {
        year: p.year - 1,
        month: p.month,
    });
    [
        ("_start", period.map(Period::first_day)),
        ("_end", period.map(Period::last_day)),
        ("_previous_start", previous.map(Period::first_day)),
        ("_previous_end", previous.map(Period::last_day)),
        (
            "_year_start",
            period.and_then(|p| NaiveDate::from_ymd_opt(p.year, 1, 1)),
        ),
        (
            "_previous_year_start",
            a_year_earlier.and_then(|p| NaiveDate::from_ymd_opt(p.year, 1, 1)),
        ),
        ("_previous_year_end", a_year_earlier.map(Period::last_day)),
    ]
}

pub fn previous_month(period: Period) -> Period {
    if period.month == 1 {
        Period {
            year: period.year - 1,
            month: 12,
        }
    } else {
        Period {
            year: period.year,
            month: period.month - 1,
        }
    }
}
