//! Finance's lake: source relations decoded from its events, the tables its pipelines keep,
//! and its views. Every column is defined here once: the source relation's Arrow schema and
//! the Delta schema of a table fed by a projection of it both come from these lists.
//!
//! - `finance_journal_lines` (one row per line of every `JournalEntryPosted`) feeds
//!   `gl_journal_lines` (as is) and `gl_account_movements` (per day and account);
//! - `finance_account_changes` (one row per account event) feeds `gl_account_changes`;
//! - `finance_account_determinations` (one row per determined account of each change of a
//!   company's determination) feeds `gl_account_determinations`, which the view
//!   `inventory_reconciliation` joins with materials' stock ledger.

use crate::domain::*;
use std::sync::Arc;
use tributary_kernel::event::decode;
use tributary_kernel::lake::{
    Cell, Column, ColumnSpec, ColumnType, EventRelation, LakeTable, PipelineSql, Relation, ViewSql,
};
use tributary_kernel::telemetry::names;
use tributary_kernel::{Aggregate, EventEnvelope, EventError};

/// The entry-level fields every line of a posting shares.
pub struct EntryHeader {
    company: CompanyCode,
    entry_id: String,
    posting_date: chrono::NaiveDate,
    document_date: Option<chrono::NaiveDate>,
    period: String,
    reference: Option<String>,
    text: Option<String>,
    reversal_of: Option<String>,
}

pub struct LineRow {
    header: Arc<EntryHeader>,
    line: JournalLine,
}

fn journal_lines(event: &EventEnvelope) -> Result<Vec<LineRow>, EventError> {
    if event.event_type != "JournalEntryPosted" {
        return Ok(Vec::new());
    }
    let JournalEntryEvent::JournalEntryPosted {
        entry_id,
        company,
        posting_date,
        document_date,
        period,
        reference,
        text,
        lines,
        reversal_of,
    } = decode::<JournalEntryEvent>(event)?
    else {
        return Ok(Vec::new());
    };
    let header = Arc::new(EntryHeader {
        company,
        entry_id: entry_id.to_string(),
        posting_date,
        document_date,
        period: period.to_string(),
        reference,
        text,
        reversal_of: reversal_of.map(|id| id.to_string()),
    });
    Ok(lines
        .into_iter()
        .map(|line| LineRow {
            header: header.clone(),
            line,
        })
        .collect())
}

/// Finance's business metrics of an event it appended: each journal entry posted, counted per
/// company, and its debits per currency. Read from the payload in place (only the company and
/// each line's currency and debit): this runs for every posting the api answers.
pub fn metrics(event: &EventEnvelope) {
    #[derive(serde::Deserialize)]
    struct Posted<'a> {
        #[serde(borrow)]
        company: &'a str,
        #[serde(borrow)]
        lines: Vec<PostedLine<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct PostedLine<'a> {
        #[serde(borrow)]
        currency: &'a str,
        debit: rust_decimal::Decimal,
    }
    if event.event_type != "JournalEntryPosted" {
        return;
    }
    let Ok(posted) = <Posted as serde::Deserialize>::deserialize(&event.payload) else {
        return;
    };
    metrics::counter!(names::JOURNAL_ENTRIES, "company" => posted.company.to_owned()).increment(1);
    let mut debits: Vec<(&str, rust_decimal::Decimal)> = Vec::with_capacity(1);
    for line in &posted.lines {
        match debits
            .iter_mut()
            .find(|(currency, _)| *currency == line.currency)
        {
            Some((_, amount)) => *amount += line.debit,
            None => debits.push((line.currency, line.debit)),
        }
    }
    for (currency, amount) in debits {
        let amount = rust_decimal::prelude::ToPrimitive::to_f64(&amount).unwrap_or_default();
        metrics::histogram!(names::JOURNAL_AMOUNT, "company" => posted.company.to_owned(), "currency" => currency.to_owned())
            .record(amount);
    }
}

pub fn journal_lines_relation() -> EventRelation<LineRow> {
    use ColumnType::*;
    EventRelation {
        name: "finance_journal_lines",
        aggregate_type: <JournalEntry as Aggregate>::TYPE,
        rows: journal_lines,
        columns: vec![
            Column::new("company", Text, false, |r, _| {
                Cell::text(r.header.company.as_str())
            }),
            Column::new("entry_id", Text, false, |r, _| {
                Cell::text(&r.header.entry_id)
            }),
            Column::new("line_no", Int32, false, |r, _| {
                Cell::Int32(i32::try_from(r.line.line_no).unwrap_or(i32::MAX))
            }),
            Column::new("posting_date", Date, false, |r, _| {
                Cell::Date(r.header.posting_date)
            }),
            Column::new("document_date", Date, true, |r, _| {
                r.header.document_date.map_or(Cell::Null, Cell::Date)
            }),
            Column::new("period", Text, false, |r, _| Cell::text(&r.header.period)),
            Column::new("account", Text, false, |r, _| {
                Cell::text(r.line.account.as_str())
            }),
            Column::new("debit", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.line.debit)
            }),
            Column::new("credit", ColumnType::MONEY, false, |r, _| {
                Cell::Decimal(r.line.credit)
            }),
            Column::new("currency", Text, false, |r, _| {
                Cell::text(r.line.currency.as_str())
            }),
            Column::new("cost_center", Text, true, |r, _| {
                Cell::optional_text(r.line.cost_center.as_deref())
            }),
            Column::new("line_text", Text, true, |r, _| {
                Cell::optional_text(r.line.text.as_deref())
            }),
            Column::new("reference", Text, true, |r, _| {
                Cell::optional_text(r.header.reference.as_deref())
            }),
            Column::new("entry_text", Text, true, |r, _| {
                Cell::optional_text(r.header.text.as_deref())
            }),
            Column::new("reversal_of", Text, true, |r, _| {
                Cell::optional_text(r.header.reversal_of.as_deref())
            }),
            Column::new("event_id", Text, false, |_, e| {
                Cell::owned(e.id.to_string())
            }),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
            Column::new("recorded_at", Timestamp, false, |_, e| {
                Cell::Timestamp(e.time)
            }),
        ],
    }
}

/// One account event as a change row: the fields it sets, the others NULL.
pub struct AccountChange {
    event: AccountEvent,
}

impl AccountChange {
    fn keys(&self) -> (&CompanyCode, &AccountNumber) {
        match &self.event {
            AccountEvent::AccountCreated {
                company, number, ..
            }
            | AccountEvent::AccountRenamed {
                company, number, ..
            }
            | AccountEvent::AccountBlocked { company, number }
            | AccountEvent::AccountUnblocked { company, number } => (company, number),
        }
    }
}

fn account_changes(event: &EventEnvelope) -> Result<Vec<AccountChange>, EventError> {
    Ok(vec![AccountChange {
        event: decode::<AccountEvent>(event)?,
    }])
}

pub fn account_changes_relation() -> EventRelation<AccountChange> {
    use ColumnType::*;
    EventRelation {
        name: "finance_account_changes",
        aggregate_type: <Account as Aggregate>::TYPE,
        rows: account_changes,
        columns: vec![
            Column::new("company", Text, false, |r, _| {
                Cell::text(r.keys().0.as_str())
            }),
            Column::new("account", Text, false, |r, _| {
                Cell::text(r.keys().1.as_str())
            }),
            Column::new("name", Text, true, |r, _| match &r.event {
                AccountEvent::AccountCreated { name, .. }
                | AccountEvent::AccountRenamed { name, .. } => Cell::text(name),
                _ => Cell::Null,
            }),
            Column::new("account_type", Text, true, |r, _| match &r.event {
                AccountEvent::AccountCreated { account_type, .. } => {
                    Cell::text(account_type.as_str())
                }
                _ => Cell::Null,
            }),
            Column::new("currency", Text, true, |r, _| match &r.event {
                AccountEvent::AccountCreated { currency, .. } => Cell::text(currency.as_str()),
                _ => Cell::Null,
            }),
            Column::new("blocked", Boolean, true, |r, _| match &r.event {
                AccountEvent::AccountCreated { .. } | AccountEvent::AccountUnblocked { .. } => {
                    Cell::Boolean(false)
                }
                AccountEvent::AccountBlocked { .. } => Cell::Boolean(true),
                AccountEvent::AccountRenamed { .. } => Cell::Null,
            }),
            Column::new("change", Text, false, |_, e| Cell::text(&e.event_type)),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
            Column::new("changed_at", Timestamp, false, |_, e| {
                Cell::Timestamp(e.time)
            }),
        ],
    }
}

/// One determined account: company, valuation class (empty: the company's default), key.
pub struct DeterminationRow {
    company: String,
    valuation_class: String,
    key: &'static str,
    account: String,
}

fn determination_rows(event: &EventEnvelope) -> Result<Vec<DeterminationRow>, EventError> {
    use crate::determination::DeterminationEvent;
    let DeterminationEvent::MaterialsAccountsSet {
        company,
        defaults,
        valuation_classes,
    } = decode::<DeterminationEvent>(event)?;
    let classes = std::iter::once((String::new(), &defaults)).chain(
        valuation_classes
            .iter()
            .map(|(class, accounts)| (class.clone(), accounts)),
    );
    Ok(classes
        .flat_map(|(class, accounts)| {
            let company = company.to_string();
            accounts.iter().map(move |(key, account)| DeterminationRow {
                company: company.clone(),
                valuation_class: class.clone(),
                key: key.as_str(),
                account: account.to_string(),
            })
        })
        .collect())
}

pub fn determinations_relation() -> EventRelation<DeterminationRow> {
    use ColumnType::*;
    EventRelation {
        name: "finance_account_determinations",
        aggregate_type: <crate::determination::AccountDetermination as Aggregate>::TYPE,
        rows: determination_rows,
        columns: vec![
            Column::new("company", Text, false, |r, _| Cell::text(&r.company)),
            Column::new("valuation_class", Text, false, |r, _| {
                Cell::text(&r.valuation_class)
            }),
            Column::new("account_key", Text, false, |r, _| Cell::text(r.key)),
            Column::new("account", Text, false, |r, _| Cell::text(&r.account)),
            Column::new("event_position", Int64, false, |_, e| {
                Cell::Int64(e.position)
            }),
            Column::new("recorded_at", Timestamp, false, |_, e| {
                Cell::Timestamp(e.time)
            }),
        ],
    }
}

pub fn relations() -> Vec<Arc<dyn Relation>> {
    vec![
        Arc::new(journal_lines_relation()),
        Arc::new(account_changes_relation()),
        Arc::new(determinations_relation()),
    ]
}

pub fn tables() -> Vec<LakeTable> {
    use ColumnType::*;
    vec![
        LakeTable::of_relation(
            "gl_journal_lines",
            "One row per posted journal line (finance)",
            &journal_lines_relation(),
        ),
        LakeTable {
            name: "gl_account_movements",
            description: "Debit/credit movements per company, account, currency, period and posting date",
            columns: vec![
                ColumnSpec::new("company", Text, false),
                ColumnSpec::new("account", Text, false),
                ColumnSpec::new("currency", Text, false),
                ColumnSpec::new("period", Text, false),
                ColumnSpec::new("posting_date", Date, false),
                ColumnSpec::new("debit", ColumnType::MONEY, false),
                ColumnSpec::new("credit", ColumnType::MONEY, false),
                ColumnSpec::new("line_count", Int64, false),
            ],
            partition_columns: &[],
            stats_columns: None,
        },
        LakeTable::of_relation(
            "gl_account_changes",
            "Chart of accounts changes (created, renamed, blocked, unblocked)",
            &account_changes_relation(),
        ),
        LakeTable::of_relation(
            "gl_account_determinations",
            "Account determination for other contexts' postings, every version (newest: highest event_position)",
            &determinations_relation(),
        ),
    ]
}

pub fn pipelines() -> Vec<PipelineSql> {
    tributary_kernel::pipelines![
        "gl_journal_lines",
        "gl_account_movements",
        "gl_account_changes",
        "gl_account_determinations"
    ]
}

pub fn views() -> Vec<ViewSql> {
    tributary_kernel::views![
        "gl_accounts",
        "gl_account_balances",
        "inventory_reconciliation"
    ]
}
