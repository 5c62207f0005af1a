//! Streaming SQL pipelines: the event store's feed in, Delta tables out, exactly once.
//!
//! ```text
//!  event store feed (global order, cursor c)
//!        │ read_feed(min over tables of their committed cursor)
//!        ▼
//!  sources::decode ──► source relations (finance_journal_lines, finance_account_changes)
//!        │ per pipeline: only events after that table's own cursor
//!        ▼
//!  pipelines/sql/<table>.sql in DataFusion ──► Lake::append(rows + txn(app_id, batch cursor))
//! ```
//!
//! Each table's progress is the `txn` version in its own Delta log, committed with its rows, so
//! a crash at any point resumes each table exactly where its last commit left it: the lake
//! equals a single clean run over the same events. The SQL is plain projections and grouped
//! aggregates over append-only sinks, within what Arroyo runs.

pub mod runner;
pub mod sources;

pub use runner::{Pipeline, PipelineError, Runner, RunnerOptions, kafka_start};

/// The pipelines, each a SQL file writing the table of the same name.
pub fn pipelines() -> Vec<Pipeline> {
    vec![
        Pipeline {
            table: "gl_journal_lines",
            sql: include_str!("../sql/gl_journal_lines.sql"),
        },
        Pipeline {
            table: "gl_account_movements",
            sql: include_str!("../sql/gl_account_movements.sql"),
        },
        Pipeline {
            table: "gl_account_changes",
            sql: include_str!("../sql/gl_account_changes.sql"),
        },
    ]
}
