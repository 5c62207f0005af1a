//! Runs reports: the queue in the database, one executor per process, the scheduler, the
//! outputs in the object store and the `report_runs` Delta table.

use crate::definition::{Definition, Format, Invalid, ParameterType};
use crate::render::{Heading, render};
use crate::statement::{Structure, lay_out};
use crate::store::{NewRun, ReportStore, RunRecord};
use chrono::{DateTime, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tributary_finance::commands::{FinanceError, companies, resolve_company};
use tributary_kernel::store::EventStore;
use tributary_lakehouse::query::ReadScope;
use tributary_lakehouse::{Lake, QueryService};

/// Where outputs go and how the statements are laid out.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// A local directory or `s3://bucket/prefix`.
    pub outputs: String,
    pub structure: Structure,
    /// How often the scheduler looks for due slots.
    pub tick: Duration,
}

/// The reports service; cheap to clone.
#[derive(Clone)]
pub struct Reports {
    pub(crate) store: ReportStore,
    pub(crate) events: EventStore,
    query: QueryService,
    lake: Lake,
    outputs: Arc<dyn ObjectStore>,
    structure: Arc<Structure>,
    tick: Duration,
    wake: Arc<Notify>,
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn time_of(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The object store of an output location.
fn output_store(location: &str) -> Result<Arc<dyn ObjectStore>, String> {
    if location.starts_with("s3://") || location.starts_with("s3a://") {
        let path = path_of(location);
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_url(location)
            .build()
            .map_err(|e| format!("{location}: {e}"))?;
        let prefix =
            Path::parse(path.trim_end_matches('/')).map_err(|e| format!("{location}: {e}"))?;
        Ok(Arc::new(object_store::prefix::PrefixStore::new(
            store, prefix,
        )))
    } else {
        std::fs::create_dir_all(location).map_err(|e| format!("cannot create {location}: {e}"))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(location)
            .map_err(|e| format!("{location}: {e}"))?;
        Ok(Arc::new(store))
    }
}

/// The path part of an `s3://bucket/path` location.
fn path_of(location: &str) -> &str {
    let rest = location
        .split_once("://")
        .map_or(location, |(_, rest)| rest);
    rest.split_once('/').map_or("", |(_, path)| path)
}

/// Why a run failed, as recorded.
type Failure = String;

impl Reports {
    pub fn new(
        events: EventStore,
        query: QueryService,
        lake: Lake,
        options: &ReportOptions,
    ) -> Result<Reports, String> {
        Ok(Reports {
            store: ReportStore::new(events.database()),
            events,
            query,
            lake,
            outputs: output_store(&options.outputs)?,
            structure: Arc::new(options.structure.clone()),
            tick: options.tick,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Built-in definitions first, then those created over REST.
    pub async fn definitions(&self) -> Result<Vec<(Definition, bool)>, String> {
        let mut all: Vec<(Definition, bool)> = crate::definition::builtin()
            .iter()
            .map(|d| (d.clone(), true))
            .collect();
        all.extend(
            self.store
                .definitions()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|d| (d, false)),
        );
        Ok(all)
    }

    /// The definition called `name` and whether it is built in.
    pub async fn definition(&self, name: &str) -> Result<Option<(Definition, bool)>, String> {
        if let Some(builtin) = crate::definition::builtin().iter().find(|d| d.name == name) {
            return Ok(Some((builtin.clone(), true)));
        }
        Ok(self
            .store
            .definition(name)
            .await
            .map_err(|e| e.to_string())?
            .map(|d| (d, false)))
    }

    /// Checks that the definition's SQL plans over the lake with its parameters bound (to
    /// NULLs): unknown tables, columns and placeholders are refused before it is saved.
    pub async fn check_plan(&self, definition: &Definition) -> Result<(), Invalid> {
        let bound = crate::parameters::bind(definition, &BTreeMap::new())?;
        let context = self
            .query
            .context()
            .await
            .map_err(|e| Invalid::new("sql", "sql", e.to_string()))?;
        let frame = context
            .sql(&definition.sql)
            .await
            .and_then(|frame| frame.with_param_values(bound))
            .map_err(|e| {
                Invalid::new(
                    "sql",
                    "sql",
                    format!("the SQL does not plan over the lake: {e}"),
                )
            })?;
        frame.into_optimized_plan().map_err(|e| {
            Invalid::new(
                "sql",
                "sql",
                format!("the SQL does not plan over the lake: {e}"),
            )
        })?;
        Ok(())
    }

    /// Fills what the caller left out: a company parameter becomes the only company.
    pub async fn complete(
        &self,
        definition: &Definition,
        mut values: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Invalid> {
        for parameter in &definition.parameters {
            if parameter.kind == ParameterType::Company {
                let field = format!("parameters.{}", parameter.name);
                let given = values.get(&parameter.name).cloned();
                match resolve_company(&self.events, given.as_deref()).await {
                    Ok(code) => {
                        values.insert(parameter.name.clone(), code.as_str().to_owned());
                    }
                    Err(FinanceError::NotFound { id, .. }) => {
                        return Err(Invalid::new(
                            field,
                            "company",
                            format!("there is no company {id:?}"),
                        ));
                    }
                    Err(FinanceError::CompanyRequired { count })
                        if parameter.required || given.is_some() || count > 1 =>
                    {
                        return Err(Invalid::new(
                            field,
                            "required",
                            format!("there are {count} companies: name one"),
                        ));
                    }
                    Err(FinanceError::CompanyRequired { .. }) => {}
                    Err(error) => return Err(Invalid::new(field, "company", error.to_string())),
                }
            }
        }
        Ok(values)
    }

    /// Queues a run requested over REST; returns its id.
    pub async fn request(
        &self,
        definition: &Definition,
        values: &BTreeMap<String, String>,
        formats: &[Format],
        requested_by: &str,
        scope: &ReadScope,
    ) -> Result<String, String> {
        let id = uuid::Uuid::now_v7().to_string();
        self.store
            .queue(
                NewRun {
                    id: &id,
                    report: &definition.name,
                    parameters: &json_text(values),
                    formats: &json_text(formats),
                    trigger: "request",
                    slot: None,
                    requested_by: Some(requested_by),
                    scope: Some(scope),
                },
                now_ms(),
            )
            .await
            .map_err(|e| e.to_string())?;
        self.wake.notify_one();
        Ok(id)
    }

    /// The executor and the scheduler until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self.schedule_due(Utc::now()).await {
                tracing::warn!(%error, "report scheduler");
            }
            loop {
                match self.store.claim(now_ms()).await {
                    Ok(Some(run)) => self.execute(run).await,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "claiming a report run");
                        break;
                    }
                }
                if *shutdown.borrow() {
                    return;
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.tick) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Queues the latest due slot of every scheduled definition, once: slots missed while no
    /// instance ran collapse into the latest one, and (report, slot) is unique in the database,
    /// so two instances queue it once between them.
    pub async fn schedule_due(&self, now: DateTime<Utc>) -> Result<(), String> {
        for (definition, _) in self.definitions().await? {
            let Some(expression) = &definition.schedule else {
                continue;
            };
            let cron = crate::schedule::parse(expression)?;
            let Some(latest) = crate::schedule::latest_slot(&cron, now) else {
                continue;
            };
            let latest_ms = latest.timestamp_millis();
            let last = self
                .store
                .last_slot(&definition.name)
                .await
                .map_err(|e| e.to_string())?;
            match last {
                // First sight of this schedule: its slots start now.
                None => {}
                Some(last) if last >= latest_ms => continue,
                Some(_) => {
                    let values = scheduled_values(&definition, latest);
                    let values = match self.complete(&definition, values.clone()).await {
                        Ok(completed) => completed,
                        // Recorded as the run's failure when it executes.
                        Err(_) => values,
                    };
                    let id = uuid::Uuid::now_v7().to_string();
                    let queued = self
                        .store
                        .queue(
                            NewRun {
                                id: &id,
                                report: &definition.name,
                                parameters: &json_text(&values),
                                formats: &json_text(&definition.formats),
                                trigger: "schedule",
                                slot: Some(latest_ms),
                                requested_by: None,
                                scope: None,
                            },
                            now_ms(),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    if queued {
                        tracing::info!(report = %definition.name, slot = %latest, run = %id, "scheduled run queued");
                    }
                }
            }
            self.store
                .save_slot(&definition.name, latest_ms)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn execute(&self, run: RunRecord) {
        let started = now_ms();
        let outcome = self.produce(&run).await;
        let finished = now_ms();
        let (status, row_count, error, outputs) = match outcome {
            Ok((rows, outputs)) => ("succeeded", Some(rows), None, outputs),
            Err(error) => ("failed", None, Some(error), Vec::new()),
        };
        let outputs_text = Value::Array(outputs).to_string();
        if let Some(error) = &error {
            tracing::warn!(run = %run.id, report = %run.report, %error, "report run failed");
        }
        metrics::counter!(
            tributary_kernel::telemetry::names::REPORT_RUNS,
            "report" => run.report.clone(),
            "status" => status
        )
        .increment(1);
        // The Delta row first: a crash before the database update runs the report again and
        // finds its row there (no second row).
        let record = RunRecord {
            status: status.to_owned(),
            started_at: Some(started),
            finished_at: Some(finished),
            row_count,
            error: error.clone(),
            outputs: Some(outputs_text.clone()),
            ..run
        };
        if let Err(error) = self.record_in_lake(&record).await {
            tracing::warn!(run = %record.id, %error, "report run not recorded in the lake yet");
        }
        if let Err(error) = self
            .store
            .finish(
                &record.id,
                status,
                finished,
                row_count,
                error.as_deref(),
                &outputs_text,
            )
            .await
        {
            tracing::warn!(run = %record.id, %error, "report run result not saved");
        }
    }

    /// Runs the report and writes its outputs: `(rows, [{format, path, bytes}])`.
    async fn produce(&self, run: &RunRecord) -> Result<(i64, Vec<Value>), Failure> {
        let (definition, _) = self
            .definition(&run.report)
            .await?
            .ok_or_else(|| format!("report {:?} no longer exists", run.report))?;
        let values: BTreeMap<String, String> =
            serde_json::from_str(&run.parameters).map_err(|e| format!("stored parameters: {e}"))?;
        let formats: Vec<Format> =
            serde_json::from_str(&run.formats).map_err(|e| format!("stored formats: {e}"))?;
        let bound = crate::parameters::bind(&definition, &values).map_err(|e| e.to_string())?;
        let scope = run.read_scope()?;
        let result = self
            .query
            .query_with_named_parameters(&definition.sql, bound, &scope)
            .await
            .map_err(|e| format!("the report's SQL failed: {e}"))?;
        let batch = match definition.statement {
            Some(kind) => lay_out(kind, &self.structure, &result.batches)?,
            None => datafusion::arrow::compute::concat_batches(&result.schema, &result.batches)
                .map_err(|e| e.to_string())?,
        };
        let heading = Heading {
            title: definition.title.clone(),
            subtitles: self.subtitles(&definition, &values).await,
            generated_at: Utc::now(),
        };
        let mut outputs = Vec::new();
        for format in formats {
            // Rendering is CPU work that grows with the rows (up to the 100,000-row limit): off the
            // runtime that answers HTTP.
            let (job_heading, job_batch) = (heading.clone(), batch.clone());
            let bytes =
                tokio::task::spawn_blocking(move || render(format, &job_heading, &job_batch))
                    .await
                    .map_err(|e| format!("rendering the {} output: {e}", format.name()))??;
            let path = Path::from(format!("{}/{}.{}", run.id, definition.name, format.name()));
            let size = bytes.len();
            self.outputs
                .put(&path, bytes.into())
                .await
                .map_err(|e| format!("writing the {} output: {e}", format.name()))?;
            outputs
                .push(json!({ "format": format.name(), "path": path.to_string(), "bytes": size }));
        }
        Ok((i64::try_from(batch.num_rows()).unwrap_or(i64::MAX), outputs))
    }

    /// `Company: MAIN Main company`, `Period: 2026-01 (2026-01-01 to 2026-01-31)`, …
    async fn subtitles(
        &self,
        definition: &Definition,
        values: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let names = companies(&self.events).await.unwrap_or_default();
        // The company first, then the parameters in their order.
        let mut parameters: Vec<_> = definition.parameters.iter().collect();
        parameters.sort_by_key(|parameter| parameter.kind != ParameterType::Company);
        parameters
            .into_iter()
            .filter_map(|parameter| {
                let value = values.get(&parameter.name)?;
                let label = crate::render::title_of(&parameter.name);
                Some(match parameter.kind {
                    ParameterType::Company => {
                        let name = names
                            .iter()
                            .find(|c| c.code.as_ref().is_some_and(|code| code.as_str() == value))
                            .map(|c| c.name.clone())
                            .unwrap_or_default();
                        format!("{label}: {value} {name}").trim_end().to_owned()
                    }
                    ParameterType::Month => match tributary_finance::domain::Period::parse(value) {
                        Ok(period) => format!(
                            "{label}: {value} ({} to {})",
                            period.first_day(),
                            period.last_day()
                        ),
                        Err(_) => format!("{label}: {value}"),
                    },
                    _ => format!("{label}: {value}"),
                })
            })
            .collect()
    }

    async fn record_in_lake(&self, run: &RunRecord) -> Result<(), String> {
        let existing = self
            .query
            .query_with_named_parameters(
                "SELECT count(*) FROM report_runs WHERE run_id = $run_id",
                [(
                    "run_id".to_owned(),
                    datafusion::common::ScalarValue::Utf8(Some(run.id.clone())),
                )]
                .into(),
                &ReadScope::everything(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let already = existing
            .batches
            .first()
            .and_then(|batch| {
                batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0);
        if already > 0 {
            return Ok(());
        }
        let micros = |ms: Option<i64>| ms.map(|ms| ms * 1000);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![run.id.clone()])),
            Arc::new(StringArray::from(vec![run.report.clone()])),
            Arc::new(StringArray::from(vec![run.status.clone()])),
            Arc::new(StringArray::from(vec![run.trigger.clone()])),
            Arc::new(TimestampMicrosecondArray::from(vec![micros(run.slot)]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec![run.parameters.clone()])),
            Arc::new(StringArray::from(vec![run.formats.clone()])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![micros(Some(run.queued_at))])
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![micros(run.started_at)]).with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![micros(run.finished_at)]).with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(vec![
                run.finished_at.zip(run.started_at).map(|(f, s)| f - s),
            ])),
            Arc::new(Int64Array::from(vec![run.row_count])),
            Arc::new(StringArray::from(vec![run.error.clone()])),
            Arc::new(StringArray::from(vec![
                run.outputs.clone().unwrap_or_else(|| "[]".into()),
            ])),
        ];
        let schema = tributary_lakehouse::catalog::report_runs().schema;
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?;
        self.lake
            .append("report_runs", vec![batch], &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// An output's bytes.
    pub async fn output(&self, path: &str) -> Result<bytes::Bytes, String> {
        let path = Path::parse(path).map_err(|e| e.to_string())?;
        let result = self.outputs.get(&path).await.map_err(|e| e.to_string())?;
        result.bytes().await.map_err(|e| e.to_string())
    }
}

/// A scheduled run's values: month parameters get the month before the slot.
fn scheduled_values(definition: &Definition, slot: DateTime<Utc>) -> BTreeMap<String, String> {
    let month =
        crate::parameters::previous_month(tributary_finance::domain::Period::of(slot.date_naive()));
    definition
        .parameters
        .iter()
        .filter(|p| p.kind == ParameterType::Month)
        .map(|p| (p.name.clone(), month.to_string()))
        .collect()
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
