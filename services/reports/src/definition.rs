//! Report definitions: SQL with a header naming the report, its typed parameters, its
//! schedule and its output formats. Built-in definitions are the files of `sql/reports/`;
//! others are created over REST and kept in the database.
//!
//! ```sql
//! -- name: income-statement
//! -- title: Income statement
//! -- parameter: period month
//! -- parameter: company company optional
//! -- schedule: 0 6 1 * *
//! -- formats: csv, xlsx, parquet, pdf
//! -- statement: income_statement
//! SELECT …  -- parameters as $period_start, $company, … (bound, never spliced)
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// A field of a definition that breaks a rule: `(field, rule, detail)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub rule: &'static str,
    pub detail: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, rule: &'static str, detail: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            rule,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

/// The type of a parameter, which decides how its text is checked and what is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterType {
    /// `YYYY-MM`; binds `$p` (text) and the dates of the month, the previous month, the year
    /// to date and the same spans a year earlier (see [`crate::parameters`]).
    Month,
    /// `YYYY-MM-DD`.
    Date,
    Text,
    Integer,
    /// Exact decimal, given as a string.
    Decimal,
    Boolean,
    /// A company code; when left out and there is one company, that company.
    Company,
}

impl ParameterType {
    pub const NAMES: &'static str = "month, date, text, integer, decimal, boolean, company";

    fn parse(text: &str) -> Option<ParameterType> {
        Some(match text {
            "month" => ParameterType::Month,
            "date" => ParameterType::Date,
            "text" => ParameterType::Text,
            "integer" => ParameterType::Integer,
            "decimal" => ParameterType::Decimal,
            "boolean" => ParameterType::Boolean,
            "company" => ParameterType::Company,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ParameterType::Month => "month",
            ParameterType::Date => "date",
            ParameterType::Text => "text",
            ParameterType::Integer => "integer",
            ParameterType::Decimal => "decimal",
            ParameterType::Boolean => "boolean",
            ParameterType::Company => "company",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// An output format of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Xlsx,
    Parquet,
    Pdf,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Csv, Format::Xlsx, Format::Parquet, Format::Pdf];

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Parquet => "parquet",
            Format::Pdf => "pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Pdf => "application/pdf",
        }
    }
}

/// How the rows of a statement report become statement lines (see [`crate::statement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    TrialBalance,
    BalanceSheet,
    IncomeStatement,
}

impl StatementKind {
    fn parse(text: &str) -> Option<StatementKind> {
        Some(match text {
            "trial_balance" => StatementKind::TrialBalance,
            "balance_sheet" => StatementKind::BalanceSheet,
            "income_statement" => StatementKind::IncomeStatement,
            _ => return None,
        })
    }
}

/// A report definition, as a file header or a REST body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Five-field cron in UTC (`minute hour day-of-month month day-of-week`).
    #[serde(default)]
    pub schedule: Option<String>,
    /// Formats of a run that names none (scheduled runs too); all four when left out.
    #[serde(default = "all_formats")]
    pub formats: Vec<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<StatementKind>,
    pub sql: String,
}

fn all_formats() -> Vec<Format> {
    Format::ALL.to_vec()
}

pub const NAME_LENGTH_MAX: usize = 64;

impl Definition {
    /// Parses a definition file: `-- key: value` header lines, then the SQL.
    pub fn parse_file(text: &str) -> Result<Definition, Invalid> {
        let mut definition = Definition {
            name: String::new(),
            title: String::new(),
            description: None,
            parameters: Vec::new(),
            schedule: None,
            formats: all_formats(),
            statement: None,
            sql: String::new(),
        };
        let mut body = Vec::new();
        let mut in_header = true;
        for line in text.lines() {
            let header = line
                .strip_prefix("--")
                .and_then(|rest| rest.trim().split_once(':'))
                .filter(|_| in_header);
            let Some((key, value)) = header else {
                if !line.trim().is_empty() {
                    in_header = false;
                }
                if !in_header {
                    body.push(line);
                }
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "name" => definition.name = value.to_owned(),
                "title" => definition.title = value.to_owned(),
                "description" => definition.description = Some(value.to_owned()),
                "parameter" => definition.parameters.push(parse_parameter(value)?),
                "schedule" => definition.schedule = Some(value.to_owned()),
                "formats" => {
                    definition.formats = value
                        .split(',')
                        .map(str::trim)
                        .map(|name| {
                            Format::parse(name).ok_or_else(|| {
                                Invalid::new(
                                    "formats",
                                    "format",
                                    format!("unknown format {name:?}; formats are csv, xlsx, parquet, pdf"),
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "statement" => {
                    definition.statement = Some(StatementKind::parse(value).ok_or_else(|| {
                        Invalid::new(
                            "statement",
                            "statement",
                            format!("unknown statement {value:?}; statements are trial_balance, balance_sheet, income_statement"),
                        )
                    })?);
                }
                other => {
                    return Err(Invalid::new(
                        other,
                        "header",
                        format!(
                            "unknown header key {other:?}; keys are name, title, description, parameter, schedule, formats, statement"
                        ),
                    ));
                }
            }
        }
        definition.sql = body.join("\n").trim().to_owned();
        definition.validate()?;
        Ok(definition)
    }

    /// Checks every rule a definition must keep (also for definitions sent over REST).
    pub fn validate(&self) -> Result<(), Invalid> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= NAME_LENGTH_MAX
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !self.name.starts_with('-');
        if !name_ok {
            return Err(Invalid::new(
                "name",
                "name_format",
                format!(
                    "must be 1 to {NAME_LENGTH_MAX} characters a-z, 0-9 and '-', not starting with '-', such as \"monthly-revenue\""
                ),
            ));
        }
        if self.title.trim().is_empty() {
            return Err(Invalid::new("title", "required", "give the report a title"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, parameter) in self.parameters.iter().enumerate() {
            let field = format!("parameters[{index}].name");
            let ok = parameter
                .name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase())
                && parameter
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(Invalid::new(
                    field,
                    "parameter_name",
                    "must start with a-z and use only a-z, 0-9 and '_', such as \"period\"",
                ));
            }
            if !seen.insert(parameter.name.as_str()) {
                return Err(Invalid::new(
                    field,
                    "unique",
                    format!("parameter {:?} is declared twice", parameter.name),
                ));
            }
        }
        if self.formats.is_empty() {
            return Err(Invalid::new(
                "formats",
                "required",
                "name at least one of csv, xlsx, parquet, pdf",
            ));
        }
        if let Some(schedule) = &self.schedule {
            crate::schedule::parse(schedule)
                .map_err(|reason| Invalid::new("schedule", "cron", reason))?;
            // A scheduled run has no caller to give values: month parameters get the month
            // before the slot and optional ones are left out; anything else cannot be filled.
            if let Some(parameter) = self.parameters.iter().find(|p| {
                p.required && !matches!(p.kind, ParameterType::Month | ParameterType::Company)
            }) {
                return Err(Invalid::new(
                    "schedule",
                    "schedulable",
                    format!(
                        "a scheduled run cannot fill the required {} parameter {:?}; make it optional or remove the schedule",
                        parameter.kind.name(),
                        parameter.name
                    ),
                ));
            }
        }
        if self.sql.trim().is_empty() {
            return Err(Invalid::new("sql", "required", "give the report's SELECT"));
        }
        tributary_lakehouse::query::check_read_only(&self.sql)
            .map_err(|error| Invalid::new("sql", "read_only", error.to_string()))?;
        Ok(())
    }

    /// The formats of a run that asks for `requested` (all the definition's when `None`).
    pub fn formats_for(&self, requested: Option<&[String]>) -> Result<Vec<Format>, Invalid> {
        let Some(requested) = requested else {
            return Ok(self.formats.clone());
        };
        if requested.is_empty() {
            return Err(Invalid::new(
                "formats",
                "required",
                "name at least one format or leave the field out for all",
            ));
        }
        let mut formats = Vec::new();
        for (index, name) in requested.iter().enumerate() {
            let format = Format::parse(name).ok_or_else(|| {
                Invalid::new(
                    format!("formats[{index}]"),
                    "format",
                    format!("unknown format {name:?}; formats are csv, xlsx, parquet, pdf"),
                )
            })?;
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        formats.sort();
        Ok(formats)
    }
}

/// `name type [optional]`, e.g. `company company optional`.
fn parse_parameter(text: &str) -> Result<Parameter, Invalid> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (name, kind, required) = match words.as_slice() {
        [name, kind] => (name, kind, true),
        [name, kind, "optional"] => (name, kind, false),
        _ => {
            return Err(Invalid::new(
                "parameter",
                "parameter_format",
                format!("{text:?}: write `-- parameter: <name> <type> [optional]`"),
            ));
        }
    };
    let kind = ParameterType::parse(kind).ok_or_else(|| {
        Invalid::new(
            "parameter",
            "parameter_type",
            format!(
                "{kind:?} is not a parameter type; types are {}",
                ParameterType::NAMES
            ),
        )
    })?;
    Ok(Parameter {
        name: (*name).to_owned(),
        kind,
        required,
    })
}

/// The built-in definitions, from `sql/reports/`, parsed once.
pub fn builtin() -> &'static [Definition] {
    static BUILTIN: std::sync::LazyLock<Vec<Definition>> = std::sync::LazyLock::new(|| {
        [
            include_str!("../../../sql/reports/trial-balance.sql"),
            include_str!("../../../sql/reports/balance-sheet.sql"),
            include_str!("../../../sql/reports/income-statement.sql"),
            include_str!("../../../sql/reports/statement-of-account.sql"),
        ]
        .into_iter()
        .map(|text| {
            Definition::parse_file(text).unwrap_or_else(|invalid| {
                panic!("a built-in report definition is invalid: {invalid}")
            })
        })
        .collect()
    });
    &BUILTIN
}
