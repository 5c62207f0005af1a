//! Lake queries on a Ballista cluster (issue 19): the query role plans, the cluster runs.
//!
//! ```text
//!  query role (--ballista df://host:50050)
//!   SQL ─► local context: scopes, views, limits as without a cluster
//!        ─► physical plan; every lake table read as its Delta snapshot's Parquet files
//!           (absolute file:// or s3:// paths, partition values per file, no reader of our own)
//!        ─► only lake scans at its leaves? ──no──► runs here (catalog, system tables)
//!                 │ yes
//!                 ▼ gRPC (the plan in DataFusion's protobuf)
//!   scheduler (`tributary ballista scheduler`): stages cut at shuffles, tasks pushed
//!                 ▼
//!   executors (`tributary ballista executor`): read the files, shuffle through their work
//!   directories, keep the final stage's output
//!                 ▼ Arrow Flight
//!   rows streamed back to the caller under the same row, size and time limits
//! ```
//!
//! The plan is sent physical (Ballista's `execute_physical_plan`), not logical: the scheduler
//! then needs neither the Delta log nor a codec for our table providers, and the snapshot a
//! query reads is the one resolved here, once, for every task. The executors must see the
//! lake's files at the same paths as the query role (one machine, or a shared volume).

use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionConfig;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::TryStreamExt;
use std::sync::Arc;

/// The port a `df://host` address without one means (Ballista's scheduler default).
pub const SCHEDULER_PORT_DEFAULT: u16 = 50050;

/// Hash partitions of a shuffle on the cluster by default: Ballista's own client default, so
/// that a stage has tasks for more than one executor.
pub const TARGET_PARTITIONS_DEFAULT: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "--ballista {address:?}: expected df://host:port (e.g. df://127.0.0.1:50050): {reason}"
    )]
    Address { address: String, reason: String },
    #[error("--ballista-target-partitions must be between 1 and 1024; got {partitions}")]
    TargetPartitions { partitions: usize },
    /// A lake table whose snapshot a plain Parquet file scan cannot read correctly.
    #[error(
        "table {table} (version {version}) uses {feature}, which queries on the Ballista cluster cannot read; run the query role without --ballista to read it"
    )]
    Unsupported {
        table: String,
        version: u64,
        feature: &'static str,
    },
    /// The cluster could not run a job or deliver its results (no scheduler, executors lost
    /// beyond Ballista's retries, a task's error).
    #[error("the Ballista cluster at {scheduler} failed the query: {detail}")]
    Job { scheduler: String, detail: String },
    /// The lake is somewhere the executors have no store for.
    #[error(
        "table {table}: the lake at {location} is neither on a local file system nor in an S3 bucket; queries on the Ballista cluster read file:// and s3:// lakes only"
    )]
    Location { table: String, location: String },
}

/// Where the cluster's scheduler is and how plans are cut for it.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `http://host:port` of the scheduler's gRPC service.
    scheduler_url: String,
    target_partitions: usize,
    /// One scheduler session for every query of this process: the scheduler keeps a context
    /// per session id, so one id per query would grow its table of sessions.
    session_id: String,
}

impl Cluster {
    /// The cluster whose scheduler is at `address` (`df://host:port`, the form Ballista's own
    /// clients take; the port defaults to 50050).
    pub fn parse(address: &str) -> Result<Cluster, ClusterError> {
        let invalid = |reason: &str| ClusterError::Address {
            address: address.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(address).map_err(|error| invalid(&error.to_string()))?;
        if url.scheme() != "df" {
            return Err(invalid(&format!(
                "the scheme is {:?}, not df",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(invalid("a scheduler address has no path or query"));
        }
        let port = url.port().unwrap_or(SCHEDULER_PORT_DEFAULT);
        Ok(Cluster {
            scheduler_url: format!("http://{host}:{port}"),
            target_partitions: TARGET_PARTITIONS_DEFAULT,
            session_id: format!("tributary-{}", uuid::Uuid::new_v4()),
        })
    }

    /// Shuffles cut into `partitions` hash partitions (tasks per stage past a shuffle).
    pub fn with_target_partitions(mut self, partitions: usize) -> Result<Cluster, ClusterError> {
        if !(1..=1024).contains(&partitions) {
            return Err(ClusterError::TargetPartitions { partitions });
        }
        self.target_partitions = partitions;
        Ok(self)
    }

    /// The scheduler's gRPC address (`http://host:port`).
    pub fn scheduler_url(&self) -> &str {
        &self.scheduler_url
    }

    /// `base` made fit for plans the cluster runs: Ballista's restrictions (no round-robin
    /// repartition, which the scheduler drops; no dynamic filters, which cannot cross stages;
    /// sort-merge joins, which spill), the cluster's partitions, and the marker that makes
    /// lake tables scan as plain Parquet files.
    pub fn session_config(&self, base: SessionConfig) -> SessionConfig {
        base.upgrade_for_ballista()
            .with_target_partitions(self.target_partitions)
            .with_extension(Arc::new(DistributedScans))
    }

    /// Runs `plan` on the cluster when it reads lake tables only, here otherwise.
    pub async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        task: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, DataFusionError> {
        match placement(&plan)? {
            Placement::Here => datafusion::physical_plan::execute_stream(plan, task),
            Placement::Cluster => {
                // Optimized already: the fences kept the scopes' filters apart; the cluster's
                // codec knows DataFusion's own nodes only.
                let plan = crate::scope::ScopeFence::removed(plan)?;
                let session_config = task.session_config().clone();
                let ballista = session_config.ballista_config();
                let codec = session_config.ballista_physical_extension_codec();
                let scheduler = self.scheduler_url.clone();
                // The plan was made and checked here: what fails on the cluster is the
                // cluster's doing (or a task's), told apart from the caller's mistakes.
                let failed = move |error: DataFusionError| {
                    DataFusionError::External(Box::new(ClusterError::Job {
                        scheduler: scheduler.clone(),
                        detail: error.to_string(),
                    }))
                };
                let schema = plan.schema();
                let stream = execute_physical_plan::<PhysicalPlanNode>(
                    self.scheduler_url.clone(),
                    &ballista,
                    plan,
                    codec.as_ref(),
                    self.session_id.clone(),
                    session_config,
                )
                .await
                .map_err(&failed)?;
                Ok(Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    stream.map_err(failed),
                )))
            }
        }
    }
}

/// Marks a session whose plans may run on the cluster: its lake tables scan their snapshot's
/// files as DataFusion's own Parquet scan over absolute `file://` paths (see
/// [`crate::live::LiveTable`]), which Ballista serialises and every executor can open.
#[derive(Debug, Clone, Copy)]
pub struct DistributedScans;

/// Whether `config` is a session of plans for the cluster.
pub(crate) fn distributed(config: &SessionConfig) -> bool {
    config.get_extension::<DistributedScans>().is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Here,
    Cluster,
}

/// Where a plan runs: on the cluster when every leaf is a lake scan (or a constant row) and
/// there is at least one lake scan; here otherwise. Catalog tables (`information_schema`,
/// `pg_catalog`) and system tables (`platform_status`) are computed in this process, and their
/// scans (memory, streaming tables) would carry this process's state to the executors at best;
/// a statement that mixes them with lake tables runs here whole, as without a cluster.
fn placement(plan: &Arc<dyn ExecutionPlan>) -> Result<Placement, DataFusionError> {
    let (mut lake_scans, mut local_leaves) = (0usize, 0usize);
    plan.apply(|node| {
        if !node.children().is_empty() {
            return Ok(TreeNodeRecursion::Continue);
        }
        if lake_scan(node.as_ref()) {
            lake_scans += 1;
        } else if !(node.is::<EmptyExec>() || node.is::<PlaceholderRowExec>()) {
            local_leaves += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(if lake_scans > 0 && local_leaves == 0 {
        Placement::Cluster
    } else {
        if lake_scans > 0 {
            tracing::debug!(
                lake_scans,
                local_leaves,
                "a statement reads lake tables beside catalog or system tables: it runs here"
            );
        }
        Placement::Here
    })
}

/// A scan of Parquet files by absolute `file://` path or in an S3 bucket: what a lake table
/// becomes in a [`DistributedScans`] session.
fn lake_scan(node: &dyn ExecutionPlan) -> bool {
    node.downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        .is_some_and(|config| {
            let url = config.object_store_url.as_str();
            url == "file:///" || url.starts_with("s3://") || url.starts_with("s3a://")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses_parse_and_bad_ones_name_the_rule() {
        let cluster = Cluster::parse("df://127.0.0.1:50051").unwrap();
        assert_eq!(cluster.scheduler_url(), "http://127.0.0.1:50051");
        let cluster = Cluster::parse("df://scheduler").unwrap();
        assert_eq!(cluster.scheduler_url(), "http://scheduler:50050");
        for (address, rule) in [
            ("http://127.0.0.1:50050", "not df"),
            ("df://127.0.0.1:50050/x", "no path"),
            ("127.0.0.1:50050", "expected df://host:port"),
        ] {
            let error = Cluster::parse(address).unwrap_err().to_string();
            assert!(error.contains(rule), "{address}: {error}");
        }
        assert!(matches!(
            Cluster::parse("df://a").unwrap().with_target_partitions(0),
            Err(ClusterError::TargetPartitions { partitions: 0 })
        ));
    }
}
