//! Scheduled reports and financial statements.
//!
//! ```text
//!  definitions: sql/reports/*.sql (built in) + REST (database)
//!  POST /api/v1/reports/{name}/runs ─► report_runs (queued) ─► executor: SQL over the lake
//!  scheduler: cron slot ─► one run per (report, slot) ─┘      ─► statement layout
//!                                     ─► CSV / XLSX / Parquet / PDF into the object store
//!                                     ─► report_runs row (database) + report_runs Delta table
//! ```

pub mod api;
pub mod definition;
pub mod parameters;
pub mod pdf;
pub mod render;
pub mod runner;
pub mod schedule;
pub mod statement;
pub mod store;

pub use definition::{Definition, Format, Invalid};
pub use runner::{ReportOptions, Reports};
