//! Source relations: events decoded into typed Arrow rows, as a Kafka source with a JSON
//! schema would deliver them to a streaming SQL engine.

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;
use std::sync::Arc;
use tributary_finance::commands::{ACCOUNT, JOURNAL_ENTRY};
use tributary_finance::domain::{AccountEvent, JournalEntryEvent};
use tributary_kernel::{EventEnvelope, from_envelope};
use tributary_lakehouse::catalog::{self, MONEY_PRECISION, MONEY_SCALE};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event {event_id} at position {position} ({event_type}) cannot be decoded: {reason}")]
    Event {
        event_id: uuid::Uuid,
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error("building source rows: {0}")]
    Arrow(#[from] ArrowError),
}

fn money(value: Decimal, event: &EventEnvelope) -> Result<i128, DecodeError> {
    tributary_lakehouse::decimal::to_money_i128(value).ok_or_else(|| DecodeError::Event {
        event_id: event.id,
        position: event.position,
        event_type: event.event_type.clone(),
        reason: format!("amount {value} has more than {MONEY_SCALE} decimals"),
    })
}

fn undecodable(event: &EventEnvelope, error: serde_json::Error) -> DecodeError {
    DecodeError::Event {
        event_id: event.id,
        position: event.position,
        event_type: event.event_type.clone(),
        reason: error.to_string(),
    }
}

/// `finance_journal_lines`: one row per line of every JournalEntryPosted event.
pub fn finance_journal_lines(events: &[&EventEnvelope]) -> Result<RecordBatch, DecodeError> {
    let schema: SchemaRef = catalog::gl_journal_lines().schema;
    let mut company = StringBuilder::new();
    let mut entry_id = StringBuilder::new();
    let mut line_no = Int32Builder::new();
    let mut posting_date = Date32Builder::new();
    let mut document_date = Date32Builder::new();
    let mut period = StringBuilder::new();
    let mut account = StringBuilder::new();
    let mut debit = Decimal128Builder::new();
    let mut credit = Decimal128Builder::new();
    let mut currency = StringBuilder::new();
    let mut cost_center = StringBuilder::new();
    let mut line_text = StringBuilder::new();
    let mut reference = StringBuilder::new();
    let mut entry_text = StringBuilder::new();
    let mut reversal_of = StringBuilder::new();
    let mut event_id = StringBuilder::new();
    let mut event_position = Int64Builder::new();
    let mut recorded_at = TimestampMicrosecondBuilder::new();
    for event in events
        .iter()
        .filter(|e| e.aggregate_type == JOURNAL_ENTRY && e.event_type == "JournalEntryPosted")
    {
        let decoded: JournalEntryEvent = from_envelope(event).map_err(|e| undecodable(event, e))?;
        let JournalEntryEvent::JournalEntryPosted {
            entry_id: id,
            company: code,
            posting_date: date,
            document_date: doc_date,
            period: p,
            reference: r,
            text,
            lines,
            reversal_of: reversed,
        } = decoded
        else {
            continue;
        };
        for line in &lines {
            company.append_value(code.as_str());
            entry_id.append_value(id.to_string());
            line_no.append_value(i32::try_from(line.line_no).unwrap_or(i32::MAX));
            posting_date.append_value(catalog::date32(date));
            document_date.append_option(doc_date.map(catalog::date32));
            period.append_value(p.to_string());
            account.append_value(line.account.as_str());
            debit.append_value(money(line.debit, event)?);
            credit.append_value(money(line.credit, event)?);
            currency.append_value(line.currency.as_str());
            cost_center.append_option(line.cost_center.as_deref());
            line_text.append_option(line.text.as_deref());
            reference.append_option(r.as_deref());
            entry_text.append_option(text.as_deref());
            reversal_of.append_option(reversed.map(|u| u.to_string()));
            event_id.append_value(event.id.to_string());
            event_position.append_value(event.position);
            recorded_at.append_value(event.time.timestamp_micros());
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(company.finish()),
        Arc::new(entry_id.finish()),
        Arc::new(line_no.finish()),
        Arc::new(posting_date.finish()),
        Arc::new(document_date.finish()),
        Arc::new(period.finish()),
        Arc::new(account.finish()),
        Arc::new(
            debit
                .finish()
                .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)?,
        ),
        Arc::new(
            credit
                .finish()
                .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)?,
        ),
        Arc::new(currency.finish()),
        Arc::new(cost_center.finish()),
        Arc::new(line_text.finish()),
        Arc::new(reference.finish()),
        Arc::new(entry_text.finish()),
        Arc::new(reversal_of.finish()),
        Arc::new(event_id.finish()),
        Arc::new(event_position.finish()),
        Arc::new(recorded_at.finish().with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// `finance_account_changes`: one row per account event.
pub fn finance_account_changes(events: &[&EventEnvelope]) -> Result<RecordBatch, DecodeError> {
    let schema: SchemaRef = catalog::gl_account_changes().schema;
    let mut company = StringBuilder::new();
    let mut account = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut account_type = StringBuilder::new();
    let mut currency = StringBuilder::new();
    let mut blocked = BooleanBuilder::new();
    let mut change = StringBuilder::new();
    let mut event_position = Int64Builder::new();
    let mut changed_at = TimestampMicrosecondBuilder::new();
    for event in events.iter().filter(|e| e.aggregate_type == ACCOUNT) {
        let decoded: AccountEvent = from_envelope(event).map_err(|e| undecodable(event, e))?;
        let (code, number, new_name, kind, cur, block) = match &decoded {
            AccountEvent::AccountCreated {
                company,
                number,
                name,
                account_type,
                currency,
            } => (
                company,
                number,
                Some(name.as_str()),
                Some(account_type.as_str()),
                Some(currency.as_str()),
                Some(false),
            ),
            AccountEvent::AccountRenamed {
                company,
                number,
                name,
            } => (company, number, Some(name.as_str()), None, None, None),
            AccountEvent::AccountBlocked { company, number } => {
                (company, number, None, None, None, Some(true))
            }
            AccountEvent::AccountUnblocked { company, number } => {
                (company, number, None, None, None, Some(false))
            }
        };
        company.append_value(code.as_str());
        account.append_value(number.as_str());
        name.append_option(new_name);
        account_type.append_option(kind);
        currency.append_option(cur);
        blocked.append_option(block);
        change.append_value(&event.event_type);
        event_position.append_value(event.position);
        changed_at.append_value(event.time.timestamp_micros());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(company.finish()),
        Arc::new(account.finish()),
        Arc::new(name.finish()),
        Arc::new(account_type.finish()),
        Arc::new(currency.finish()),
        Arc::new(blocked.finish()),
        Arc::new(change.finish()),
        Arc::new(event_position.finish()),
        Arc::new(changed_at.finish().with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Every source relation with its name, decoded from the same events.
pub fn decode(events: &[&EventEnvelope]) -> Result<Vec<(&'static str, RecordBatch)>, DecodeError> {
    Ok(vec![
        ("finance_journal_lines", finance_journal_lines(events)?),
        ("finance_account_changes", finance_account_changes(events)?),
    ])
}
