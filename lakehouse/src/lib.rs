//! The lakehouse: Delta tables on a local directory or object store, and DataFusion over them.
//!
//! - [`catalog`]: every table's schema, created on first start.
//! - [`cells`]: the kernel's cells to and from Arrow (read APIs, source relations).
//! - [`cluster`]: lake queries on a Ballista cluster (`--ballista`).
//! - [`lake`]: opening, appending with exactly-once `txn` markers, reading progress back.
//! - [`live`]: tables read at their newest version when scanned; views planned once over them.
//! - `preaggregate`: grouping by a bucket of a date computed per date, not per row.
//! - [`query`]: the read-only SQL service (views from `sql/views`, time and row limits).
//! - [`http`]: `POST /api/v1/sql`.
//! - [`s3`]: `s3://` lake locations.
//! - [`upkeep`]: table status, vacuum, time travel (`as_of`).
//! - [`wire`]: the PostgreSQL wire protocol endpoint (psql, drivers, Grafana).

pub mod catalog;
pub mod cells;
pub mod cluster;
pub mod decimal;
pub mod http;
pub mod lake;
pub mod live;
mod preaggregate;
pub mod query;
mod reads;
pub mod s3;
pub mod scope;
pub mod upkeep;
pub mod wire;

/// The cores this process may run on (1 when the system does not say).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

pub use lake::{Compaction, Lake, LakeError, Progress};
pub use query::{QueryError, QueryLimits, QueryResult, QueryService, ReadScope, SystemTable};
pub use upkeep::{AsOf, Replaced, TableStatus, VACUUM_RETENTION_DEFAULT, Vacuumed};
