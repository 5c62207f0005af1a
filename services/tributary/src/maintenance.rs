//! Lake maintenance: every pipeline batch adds one small Parquet file per table, so the writer
//! roles compact tables whose file count has grown (Delta OPTIMIZE; rows, their order and the
//! pipelines' progress markers unchanged). Queries then open a few large files instead of
//! thousands of small ones.

use std::time::Duration;
use tokio::sync::watch;
use tributary_lakehouse::Lake;

#[derive(Debug, Clone)]
pub struct CompactionOptions {
    /// How often the tables are looked at.
    pub interval: Duration,
    /// A table is compacted once it has at least this many data files.
    pub files_min: usize,
    /// Size the compacted files aim for.
    pub target_bytes: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            interval: Duration::from_secs(60),
            files_min: 32,
            target_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Compacts every table of `lake` that has `files_min` files or more; returns how many it
/// compacted.
pub async fn compact_once(lake: &Lake, options: &CompactionOptions) -> anyhow::Result<usize> {
    let names: Vec<&'static str> = lake.definitions().map(|d| d.name).collect();
    let mut compacted = 0;
    for name in names {
        if lake.file_count(name).await? < options.files_min {
            continue;
        }
        let done = lake.compact(name, options.target_bytes).await?;
        tracing::info!(
            table = name,
            files_before = done.files_before,
            files_removed = done.files_removed,
            files_added = done.files_added,
            "compacted"
        );
        compacted += 1;
    }
    Ok(compacted)
}

/// Runs [`compact_once`] every `interval` until shutdown; errors are logged and retried at the
/// next interval (a compaction that loses a commit race changes nothing).
pub async fn run(lake: Lake, options: CompactionOptions, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(options.interval) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        }
        if let Err(error) = compact_once(&lake, &options).await {
            tracing::warn!(error = %format!("{error:#}"), "lake compaction failed; retrying later");
        }
    }
}
