//! Streaming SQL pipelines: the event store's feed in, Delta tables out, exactly once.
//!
//! ```text
//!  event store feed (global order, cursor c)
//!        │ read_feed(min over tables of their committed cursor)
//!        ▼
//!  sources::decode ──► source relations the modules declare (finance_journal_lines, …)
//!        │ per pipeline: only events after that table's own cursor
//!        ▼
//!  <context>/pipelines/<table>.sql in DataFusion ──► Lake::append(rows + txn(app_id, batch cursor))
//! ```
//!
//! Each table's progress is the `txn` version in its own Delta log, committed with its rows, so
//! a crash at any point resumes each table exactly where its last commit left it: the lake
//! equals a single clean run over the same events. The SQL is plain projections and grouped
//! aggregates over append-only sinks, within what Arroyo runs.

pub mod runner;
pub mod sources;

pub use runner::{Pipeline, PipelineError, Pipelines, Runner, RunnerOptions, kafka_start};
