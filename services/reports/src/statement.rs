//! Financial statements: the account rows of a statement report laid out as statement lines
//! (headings, accounts, subtotals, totals) through a configurable structure.
//!
//! Amounts come from the SQL as debit minus credit. A section whose normal balance is credit
//! (liabilities, equity, revenue) shows them negated, so every section reads positive in the
//! usual case. The balance sheet's equity gets one more line, the net income (revenue minus
//! expenses since the first posting, as no closing entries are posted): total assets then equal
//! total liabilities and equity for any set of balanced entries.

use crate::definition::StatementKind;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Int32Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tributary_lakehouse::catalog::{MONEY_PRECISION, MONEY_SCALE};
use tributary_lakehouse::decimal::{to_money_i128, value_at};

/// The default structure, by account type (`sql/reports/statement-structure.json`).
pub const DEFAULT_STRUCTURE: &str = include_str!("../../../sql/reports/statement-structure.json");

/// The lines of the balance sheet and the income statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Structure {
    pub balance_sheet: Vec<Section>,
    pub income_statement: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub code: String,
    pub label: String,
    pub normal_balance: NormalBalance,
    /// Accounts of these types fall into the section (`asset`, `liability`, …).
    pub account_types: Vec<String>,
    /// Sub-lines by account-number prefix; the section's other accounts follow them.
    #[serde(default)]
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub label: String,
    pub account_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalBalance {
    Debit,
    Credit,
}

impl Structure {
    pub fn default_by_account_type() -> Structure {
        Structure::parse(DEFAULT_STRUCTURE)
            .unwrap_or_else(|error| panic!("the default statement structure is invalid: {error}"))
    }

    /// Reads a structure (JSON, the shape of `sql/reports/statement-structure.json`). An
    /// account type may be in one section of a statement only.
    pub fn parse(text: &str) -> Result<Structure, String> {
        let structure: Structure = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for (statement, sections) in [
            ("balance_sheet", &structure.balance_sheet),
            ("income_statement", &structure.income_statement),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for section in sections {
                for account_type in &section.account_types {
                    if !["asset", "liability", "equity", "revenue", "expense"]
                        .contains(&account_type.as_str())
                    {
                        return Err(format!(
                            "{statement}.{}: unknown account type {account_type:?}",
                            section.code
                        ));
                    }
                    if !seen.insert(account_type.as_str()) {
                        return Err(format!(
                            "{statement}: account type {account_type:?} is in two sections"
                        ));
                    }
                }
            }
        }
        Ok(structure)
    }
}

/// One account row of a statement query.
#[derive(Debug, Clone)]
struct AccountRow {
    currency: String,
    account: String,
    name: String,
    account_type: String,
    amounts: Vec<Decimal>,
}

/// The amount columns each statement's SQL returns, in order.
fn amount_columns(kind: StatementKind) -> &'static [&'static str] {
    match kind {
        StatementKind::TrialBalance => &[
            "opening_balance",
            "period_debit",
            "period_credit",
            "closing_balance",
            "year_to_date_debit",
            "year_to_date_credit",
            "previous_year_closing_balance",
        ],
        StatementKind::BalanceSheet => &[
            "balance",
            "previous_period_balance",
            "previous_year_balance",
        ],
        StatementKind::IncomeStatement => &[
            "period",
            "previous_period",
            "year_to_date",
            "previous_year_to_date",
        ],
    }
}

/// The statement's columns in the output, after `currency, line_type, level, account, name`.
fn output_columns(kind: StatementKind) -> &'static [&'static str] {
    match kind {
        StatementKind::TrialBalance => &[
            "opening_balance",
            "period_debit",
            "period_credit",
            "closing_debit",
            "closing_credit",
            "year_to_date_debit",
            "year_to_date_credit",
            "previous_year_closing_balance",
        ],
        kind => amount_columns(kind),
    }
}

fn read_rows(kind: StatementKind, batches: &[RecordBatch]) -> Result<Vec<AccountRow>, String> {
    let mut rows = Vec::new();
    for batch in batches {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| format!("the statement's SQL returns no column {name:?}"))
        };
        let text = |array: &ArrayRef, row: usize| -> Result<String, String> {
            if array.is_null(row) {
                return Ok(String::new());
            }
            array
                .as_string_opt::<i32>()
                .map(|strings| strings.value(row).to_owned())
                .or_else(|| {
                    array
                        .as_string_view_opt()
                        .map(|strings| strings.value(row).to_owned())
                })
                .ok_or_else(|| format!("expected a text column, got {}", array.data_type()))
        };
        let (currency, account, name, account_type) = (
            column("currency")?,
            column("account")?,
            column("name")?,
            column("account_type")?,
        );
        let amounts: Vec<ArrayRef> = amount_columns(kind)
            .iter()
            .map(|name| column(name))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(AccountRow {
                currency: text(&currency, row)?,
                account: text(&account, row)?,
                name: text(&name, row)?,
                account_type: text(&account_type, row)?,
                amounts: amounts
                    .iter()
                    .map(|array| value_at(array.as_ref(), row))
                    .collect::<Result<_, _>>()?,
            });
        }
    }
    Ok(rows)
}

/// A statement line before it becomes a row of the output.
struct Line {
    currency: String,
    line_type: &'static str,
    level: i32,
    account: Option<String>,
    label: String,
    amounts: Vec<Option<Decimal>>,
}

/// Lays the statement query's rows out as statement lines, one block per currency.
pub fn lay_out(
    kind: StatementKind,
    structure: &Structure,
    batches: &[RecordBatch],
) -> Result<RecordBatch, String> {
    let rows = read_rows(kind, batches)?;
    let mut by_currency: BTreeMap<String, Vec<AccountRow>> = BTreeMap::new();
    for row in rows {
        by_currency
            .entry(row.currency.clone())
            .or_default()
            .push(row);
    }
    let mut lines = Vec::new();
    for (currency, rows) in by_currency {
        match kind {
            StatementKind::TrialBalance => trial_balance(&currency, &rows, &mut lines),
            StatementKind::BalanceSheet => {
                balance_sheet(&currency, &structure.balance_sheet, &rows, &mut lines)
            }
            StatementKind::IncomeStatement => {
                income_statement(&currency, &structure.income_statement, &rows, &mut lines)
            }
        }
    }
    to_batch(kind, &lines)
}

fn zeros(n: usize) -> Vec<Decimal> {
    vec![Decimal::ZERO; n]
}

fn add(total: &mut [Decimal], amounts: &[Decimal]) {
    for (total, amount) in total.iter_mut().zip(amounts) {
        *total += *amount;
    }
}

fn some(amounts: &[Decimal]) -> Vec<Option<Decimal>> {
    amounts.iter().copied().map(Some).collect()
}

fn trial_balance(currency: &str, rows: &[AccountRow], lines: &mut Vec<Line>) {
    let width = output_columns(StatementKind::TrialBalance).len();
    let mut total = zeros(width);
    for row in rows {
        let [
            opening,
            debit,
            credit,
            closing,
            ytd_debit,
            ytd_credit,
            previous_year,
        ] = row.amounts[..]
        else {
            continue;
        };
        let amounts = vec![
            opening,
            debit,
            credit,
            closing.max(Decimal::ZERO),
            (-closing).max(Decimal::ZERO),
            ytd_debit,
            ytd_credit,
            previous_year,
        ];
        if amounts.iter().all(Decimal::is_zero) {
            continue;
        }
        add(&mut total, &amounts);
        lines.push(Line {
            currency: currency.to_owned(),
            line_type: "account",
            level: 1,
            account: Some(row.account.clone()),
            label: row.name.clone(),
            amounts: some(&amounts),
        });
    }
    lines.push(Line {
        currency: currency.to_owned(),
        line_type: "total",
        level: 0,
        account: None,
        label: "Total".to_owned(),
        amounts: some(&total),
    });
}

/// Lines of the sections, each with its accounts (grouped) and a subtotal; returns the
/// sections' totals in display sign.
fn sections(
    currency: &str,
    sections: &[Section],
    rows: &[AccountRow],
    width: usize,
    lines: &mut Vec<Line>,
    net_income_into: Option<(&str, &[Decimal])>,
) -> BTreeMap<String, Vec<Decimal>> {
    let mut totals = BTreeMap::new();
    for section in sections {
        let sign = match section.normal_balance {
            NormalBalance::Debit => Decimal::ONE,
            NormalBalance::Credit => Decimal::NEGATIVE_ONE,
        };
        let members: Vec<&AccountRow> = rows
            .iter()
            .filter(|row| section.account_types.contains(&row.account_type))
            .collect();
        lines.push(Line {
            currency: currency.to_owned(),
            line_type: "heading",
            level: 0,
            account: None,
            label: section.label.clone(),
            amounts: vec![None; width],
        });
        let mut total = zeros(width);
        let mut placed = vec![false; members.len()];
        let account_line =
            |row: &AccountRow, level: i32, lines: &mut Vec<Line>, subtotal: &mut Vec<Decimal>| {
                let amounts: Vec<Decimal> =
                    row.amounts.iter().map(|amount| *amount * sign).collect();
                add(subtotal, &amounts);
                lines.push(Line {
                    currency: currency.to_owned(),
                    line_type: "account",
                    level,
                    account: Some(row.account.clone()),
                    label: row.name.clone(),
                    amounts: some(&amounts),
                });
            };
        for group in &section.groups {
            let mut subtotal = zeros(width);
            let mut any = false;
            for (index, row) in members.iter().enumerate() {
                if !placed[index]
                    && group
                        .account_prefixes
                        .iter()
                        .any(|prefix| row.account.starts_with(prefix.as_str()))
                {
                    if !any {
                        lines.push(Line {
                            currency: currency.to_owned(),
                            line_type: "heading",
                            level: 1,
                            account: None,
                            label: group.label.clone(),
                            amounts: vec![None; width],
                        });
                        any = true;
                    }
                    placed[index] = true;
                    account_line(row, 2, lines, &mut subtotal);
                }
            }
            if any {
                add(&mut total, &subtotal);
                lines.push(Line {
                    currency: currency.to_owned(),
                    line_type: "subtotal",
                    level: 1,
                    account: None,
                    label: format!("Total {}", group.label.to_lowercase()),
                    amounts: some(&subtotal),
                });
            }
        }
        for (index, row) in members.iter().enumerate() {
            if !placed[index] {
                account_line(row, 1, lines, &mut total);
            }
        }
        if let Some((code, income)) = net_income_into
            && code == section.code
        {
            add(&mut total, income);
            lines.push(Line {
                currency: currency.to_owned(),
                line_type: "account",
                level: 1,
                account: None,
                label: "Net income (not yet closed)".to_owned(),
                amounts: some(income),
            });
        }
        lines.push(Line {
            currency: currency.to_owned(),
            line_type: "subtotal",
            level: 0,
            account: None,
            label: format!("Total {}", section.label.to_lowercase()),
            amounts: some(&total),
        });
        totals.insert(section.code.clone(), total);
    }
    totals
}

/// Revenue minus expenses (display sign) of rows given as debit minus credit.
fn net_income(rows: &[AccountRow], width: usize) -> Vec<Decimal> {
    let mut result = zeros(width);
    for row in rows
        .iter()
        .filter(|row| row.account_type == "revenue" || row.account_type == "expense")
    {
        for (total, amount) in result.iter_mut().zip(&row.amounts) {
            *total -= *amount;
        }
    }
    result
}

fn balance_sheet(
    currency: &str,
    structure: &[Section],
    rows: &[AccountRow],
    lines: &mut Vec<Line>,
) {
    let width = output_columns(StatementKind::BalanceSheet).len();
    let income = net_income(rows, width);
    // The net income goes into the section holding equity accounts (the last credit section
    // when none does).
    let equity_section = structure
        .iter()
        .find(|section| section.account_types.iter().any(|t| t == "equity"))
        .or_else(|| {
            structure
                .iter()
                .rev()
                .find(|s| s.normal_balance == NormalBalance::Credit)
        })
        .map(|section| section.code.clone());
    let totals = sections(
        currency,
        structure,
        rows,
        width,
        lines,
        equity_section
            .as_deref()
            .map(|code| (code, income.as_slice())),
    );
    let mut credit_side = zeros(width);
    for section in structure
        .iter()
        .filter(|s| s.normal_balance == NormalBalance::Credit)
    {
        if let Some(total) = totals.get(&section.code) {
            add(&mut credit_side, total);
        }
    }
    let labels: Vec<String> = structure
        .iter()
        .filter(|s| s.normal_balance == NormalBalance::Credit)
        .map(|s| s.label.to_lowercase())
        .collect();
    lines.push(Line {
        currency: currency.to_owned(),
        line_type: "total",
        level: 0,
        account: None,
        label: format!("Total {}", labels.join(" and ")),
        amounts: some(&credit_side),
    });
}

fn income_statement(
    currency: &str,
    structure: &[Section],
    rows: &[AccountRow],
    lines: &mut Vec<Line>,
) {
    let width = output_columns(StatementKind::IncomeStatement).len();
    sections(currency, structure, rows, width, lines, None);
    lines.push(Line {
        currency: currency.to_owned(),
        line_type: "total",
        level: 0,
        account: None,
        label: "Net income".to_owned(),
        amounts: some(&net_income(rows, width)),
    });
}

fn to_batch(kind: StatementKind, lines: &[Line]) -> Result<RecordBatch, String> {
    let amount_names = output_columns(kind);
    let mut fields = vec![
        Field::new("currency", DataType::Utf8, false),
        Field::new("line_type", DataType::Utf8, false),
        Field::new("level", DataType::Int32, false),
        Field::new("account", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, false),
    ];
    fields.extend(amount_names.iter().map(|name| {
        Field::new(
            *name,
            DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
            true,
        )
    }));
    let (mut currency, mut line_type, mut level, mut account, mut name) = (
        StringBuilder::new(),
        StringBuilder::new(),
        Int32Builder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut amounts: Vec<Decimal128Builder> = amount_names
        .iter()
        .map(|_| Decimal128Builder::new().with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for line in lines {
        currency.append_value(&line.currency);
        line_type.append_value(line.line_type);
        level.append_value(line.level);
        account.append_option(line.account.as_deref());
        name.append_value(&line.label);
        for (builder, amount) in amounts.iter_mut().zip(&line.amounts) {
            match amount {
                Some(amount) => builder.append_value(
                    to_money_i128(*amount)
                        .ok_or_else(|| format!("amount {amount} has more than four decimals"))?,
                ),
                None => builder.append_null(),
            }
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(currency.finish()),
        Arc::new(line_type.finish()),
        Arc::new(level.finish()),
        Arc::new(account.finish()),
        Arc::new(name.finish()),
    ];
    columns.extend(
        amounts
            .iter_mut()
            .map(|builder| Arc::new(builder.finish()) as ArrayRef),
    );
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}
