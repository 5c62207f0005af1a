//! Source relations: events decoded into typed Arrow rows by the relations the modules
//! declare, as a Kafka source with a JSON schema would deliver them to a streaming SQL engine.
//! An event a relation cannot decode is left out of its rows and reported, never fatal.

use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;
use tributary_kernel::EventEnvelope;
use tributary_kernel::lake::Relation;
use tributary_lakehouse::cells::decode_relation;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("building source rows: {0}")]
    Arrow(#[from] ArrowError),
}

/// An event one relation could not decode.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Index into the events given to [`decode`].
    pub event: usize,
    pub relation: &'static str,
    pub error: String,
}

/// Source relations by name, as one batch's SQL reads them.
pub type Sources = Vec<(&'static str, RecordBatch)>;

/// Every source relation with its name, decoded from the same events, and the events left out.
pub fn decode(
    relations: &[Arc<dyn Relation>],
    events: &[&EventEnvelope],
) -> Result<(Sources, Vec<Rejection>), DecodeError> {
    let mut sources = Vec::with_capacity(relations.len());
    let mut rejections = Vec::new();
    for relation in relations {
        let (batch, rejected) = decode_relation(relation.as_ref(), events)?;
        rejections.extend(rejected.into_iter().map(|r| Rejection {
            event: r.event,
            relation: relation.name(),
            error: r.error,
        }));
        sources.push((relation.name(), batch));
    }
    Ok((sources, rejections))
}
