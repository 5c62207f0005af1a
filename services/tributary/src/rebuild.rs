//! `tributary rebuild`: the lake's pipeline tables made again from the event store, which holds
//! everything the lake was made of (after a restore, a lost or damaged lake, or a changed
//! pipeline).
//!
//! ```text
//!  event store feed ─► every context's pipelines ─► scratch lake <lake>/_rebuild/<id>
//!                                                        │ caught up with the live table?
//!                     live table ◄── one commit per table: old files removed, rebuilt files
//!                                    added (copied in), the rebuilt progress marker
//! ```
//! Readers see a table's old rows until that commit and the rebuilt rows from it, never a table
//! half made; a pipeline still writing the live table finds its marker moved at its next
//! commit and resumes from the rebuilt one. Every context's pipelines run into the scratch lake
//! (a pipeline may join another context's table), whichever tables are taken over. Tables the
//! pipelines do not make (bronze copies of Kafka messages, MRP plans, report runs) are not
//! rebuilt: their makers write them again themselves. A Kafka installation's pipeline tables
//! carry Kafka offsets as their progress, which a rebuild from the store cannot give them:
//! there, rebuild into an installation whose pipelines read the store (no --kafka-brokers).

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeSet;
use tributary_ingest::{EventSource, FEED_STREAM};
use tributary_kernel::store::{EventStore, GroupCommitOptions};
use tributary_lakehouse::{Lake, Replaced};
use tributary_pipelines::{Pipeline, Pipelines, Runner, RunnerOptions};

/// Rounds of catching up and taking over before a rebuild gives up on tables whose live
/// pipelines keep moving ahead.
const ROUNDS: usize = 50;

#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The event store's URL (`sqlite://…` or `postgres://…`).
    pub store_url: String,
    /// Contexts kept in databases of their own (`--context-database-url`).
    pub context_database_urls: Vec<(String, String)>,
    /// The live lake's location.
    pub lake: String,
    /// The tables to rebuild; default every table a pipeline makes.
    pub tables: Option<Vec<String>>,
    /// Draw progress bars on the terminal.
    pub progress: bool,
}

/// One table taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuiltTable {
    pub table: &'static str,
    pub version: u64,
    pub files_removed: usize,
    pub files_added: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Events read from the store (by each context's pipelines).
    pub events: u64,
    pub tables: Vec<RebuiltTable>,
}

/// Every pipeline of every context, with its context.
fn pipelines() -> Vec<(&'static str, Pipeline)> {
    crate::modules::all()
        .iter()
        .flat_map(|module| {
            Pipelines::of([module])
                .pipelines
                .into_iter()
                .map(move |pipeline| (module.name, pipeline))
        })
        .collect()
}

/// The tables to rebuild: those named (each one a pipeline makes), or all of them.
fn chosen(named: Option<&[String]>) -> anyhow::Result<Vec<&'static str>> {
    let mut made: Vec<&'static str> = pipelines().iter().map(|(_, p)| p.table).collect();
    made.sort_unstable();
    let Some(named) = named else {
        return Ok(made);
    };
    let mut tables = Vec::new();
    for name in named {
        match made.iter().find(|table| **table == name.as_str()) {
            Some(table) => tables.push(*table),
            None => anyhow::bail!(
                "--tables: {name:?} is not made by a pipeline from the event store; the tables a rebuild makes: {}",
                made.join(", ")
            ),
        }
    }
    tables.sort_unstable();
    tables.dedup();
    Ok(tables)
}

/// Rebuilds the tables `options` names from the event store and switches the live lake over
/// to them, table by table, once each caught up with the live one.
pub async fn rebuild(options: RebuildOptions) -> anyhow::Result<Rebuilt> {
    let tables = chosen(options.tables.as_deref())?;
    let store = crate::databases::connect(
        &options.store_url,
        &options.context_database_urls,
        4,
        GroupCommitOptions::default(),
    )
    .await?;
    let modules = crate::modules::all();
    let live = crate::modules::open_lake(&options.lake, &modules)
        .await
        .with_context(|| format!("while opening the lake at {}", options.lake))?;
    let scratch_location = format!(
        "{}/_rebuild/{}",
        live.root().as_str().trim_end_matches('/'),
        uuid::Uuid::now_v7().simple()
    );
    let scratch = crate::modules::open_lake(&scratch_location, &modules)
        .await
        .with_context(|| format!("while creating the scratch lake at {scratch_location}"))?;
    let rebuilt = take_over(&store, &modules, &live, &scratch, &tables, options.progress).await;
    // The scratch lake goes whatever happened: a rebuild run again starts afresh.
    let removed = scratch.delete_all().await;
    if let Ok(url) = url::Url::parse(&scratch_location)
        && let Ok(path) = url.to_file_path()
    {
        let _ = std::fs::remove_dir_all(path);
    }
    let rebuilt = rebuilt?;
    removed.with_context(|| format!("while removing the scratch lake {scratch_location}"))?;
    Ok(rebuilt)
}

async fn take_over(
    store: &EventStore,
    modules: &[tributary_kernel::Module],
    live: &Lake,
    scratch: &Lake,
    tables: &[&'static str],
    progress: bool,
) -> anyhow::Result<Rebuilt> {
    let mut total = 0;
    for database in store.databases() {
        total += database.events_after(0, i64::MAX).await?.max(0) as u64;
    }
    let bars = MultiProgress::with_draw_target(if progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
    )
    .map_err(|error| anyhow::anyhow!("progress bar template: {error}"))?
    .progress_chars("=> ");
    let mut runners = Vec::new();
    for module in modules.iter().filter(|m| !m.pipelines.is_empty()) {
        let runner = Runner::new(
            module.name,
            EventSource::Store(store.for_context(module.name).clone()),
            scratch.clone(),
            Pipelines::of([module]),
            RunnerOptions {
                batch_events_max: 20_000,
                ..RunnerOptions::default()
            },
        )
        .await
        .with_context(|| format!("while starting the {} pipelines", module.name))?;
        let bar = bars.add(ProgressBar::new(total));
        bar.set_style(style.clone());
        bar.set_prefix(module.name);
        runners.push((runner, bar));
    }
    let app_ids: Vec<(&'static str, String)> = pipelines()
        .into_iter()
        .filter(|(_, p)| tables.contains(&p.table))
        .map(|(_, p)| (p.table, p.app_id(FEED_STREAM)))
        .collect();
    let mut pending: BTreeSet<&'static str> = tables.iter().copied().collect();
    let mut done = Vec::new();
    let mut events = 0u64;
    for _ in 0..ROUNDS {
        for (runner, bar) in &mut runners {
            loop {
                let read = runner.step().await? as u64;
                if read == 0 {
                    break;
                }
                events += read;
                if bar.position() + read > bar.length().unwrap_or(0) {
                    bar.set_length(bar.position() + read);
                }
                bar.inc(read);
            }
        }
        for (table, app_id) in &app_ids {
            if !pending.contains(table) {
                continue;
            }
            match live.replace_from(table, scratch, app_id).await? {
                Replaced::Done {
                    version,
                    files_removed,
                    files_added,
                } => {
                    pending.remove(table);
                    done.push(RebuiltTable {
                        table,
                        version,
                        files_removed,
                        files_added,
                    });
                }
                Replaced::Behind { live, rebuilt } => tracing::debug!(
                    table,
                    ?live,
                    ?rebuilt,
                    "rebuild: behind the live table; catching up"
                ),
            }
        }
        if pending.is_empty() {
            for (_, bar) in &runners {
                bar.finish();
            }
            return Ok(Rebuilt {
                events,
                tables: done,
            });
        }
    }
    anyhow::bail!(
        "the live pipelines of {} kept ahead of the rebuild for {ROUNDS} rounds; {} were taken over; run it again when fewer events arrive",
        pending.into_iter().collect::<Vec<_>>().join(", "),
        done.len()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_tables_a_pipeline_makes_can_be_rebuilt() {
        let all = super::chosen(None).unwrap();
        assert!(all.contains(&"gl_journal_lines"), "{all:?}");
        assert_eq!(
            super::chosen(Some(&[
                "gl_journal_lines".into(),
                "gl_journal_lines".into()
            ]))
            .unwrap(),
            vec!["gl_journal_lines"]
        );
        let refused = super::chosen(Some(&["bronze_events".into()]))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("\"bronze_events\" is not made by a pipeline"),
            "{refused}"
        );
    }
}
