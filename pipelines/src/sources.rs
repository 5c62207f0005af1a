//! Source relations: events decoded into typed Arrow rows by the relations the modules
//! declare, as a Kafka source with a JSON schema would deliver them to a streaming SQL engine.

use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;
use tributary_kernel::EventEnvelope;
use tributary_kernel::lake::Relation;
use tributary_lakehouse::cells::decode_relation;

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

/// Every source relation with its name, decoded from the same events.
pub fn decode(
    relations: &[Arc<dyn Relation>],
    events: &[&EventEnvelope],
) -> Result<Vec<(&'static str, RecordBatch)>, DecodeError> {
    let mut sources = Vec::with_capacity(relations.len());
    for relation in relations {
        let (batch, rejected) = decode_relation(relation.as_ref(), events)?;
        if let Some(first) = rejected.first() {
            let event = events[first.event];
            return Err(DecodeError::Event {
                event_id: event.id,
                position: event.position,
                event_type: event.event_type.clone(),
                reason: first.error.clone(),
            });
        }
        sources.push((relation.name(), batch));
    }
    Ok(sources)
}
