//! REST: report definitions (create, list, read, update, delete), runs and their outputs.

use crate::definition::{Definition, Invalid};
use crate::runner::Reports;
use crate::store::RunRecord;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tributary_kernel::auth::{
    ANY_COMPANY, Access::Permission, Auth, Caller, CompanyScope, Routes, forbidden, platform::*,
};
use tributary_kernel::http::{ApiError, decode_json};
use tributary_lakehouse::ReadScope;

pub fn router() -> Routes<Reports> {
    Routes::new()
        .get(
            "/api/v1/reports",
            Permission(&REPORTS_DEFINITION_READ),
            list,
        )
        .post(
            "/api/v1/reports",
            Permission(&REPORTS_DEFINITION_WRITE),
            create,
        )
        .get(
            "/api/v1/reports/{name}",
            Permission(&REPORTS_DEFINITION_READ),
            read,
        )
        .put(
            "/api/v1/reports/{name}",
            Permission(&REPORTS_DEFINITION_WRITE),
            update,
        )
        .delete(
            "/api/v1/reports/{name}",
            Permission(&REPORTS_DEFINITION_WRITE),
            remove,
        )
        .get(
            "/api/v1/reports/{name}/runs",
            Permission(&REPORTS_RUN_READ),
            runs_of,
        )
        .post("/api/v1/reports/{name}/runs", Permission(&REPORTS_RUN), run)
        .accepts::<RunRequest>()
        .get(
            "/api/v1/report-runs/{id}",
            Permission(&REPORTS_RUN_READ),
            run_status,
        )
        .get(
            "/api/v1/report-runs/{id}/outputs/{format}",
            Permission(&REPORTS_RUN_READ),
            output,
        )
}

fn invalid(error: Invalid) -> ApiError {
    ApiError::field(&error.field, error.rule, error.detail)
}

fn internal(error: String) -> ApiError {
    ApiError::internal(&error)
}

fn conflict(problem: &str, detail: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, problem, "Conflict", detail)
}

fn described(definition: &Definition, builtin: bool) -> Value {
    let mut value = serde_json::to_value(definition).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("builtin".into(), Value::Bool(builtin));
        map.insert(
            "runs_url".into(),
            Value::String(format!("/api/v1/reports/{}/runs", definition.name)),
        );
    }
    value
}

async fn list(State(reports): State<Reports>) -> Result<Json<Value>, ApiError> {
    let all = reports.definitions().await.map_err(internal)?;
    Ok(Json(json!({
        "reports": all.iter().map(|(d, builtin)| described(d, *builtin)).collect::<Vec<_>>()
    })))
}

async fn found(reports: &Reports, name: &str) -> Result<(Definition, bool), ApiError> {
    reports
        .definition(name)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "there is no report {name:?}; GET /api/v1/reports lists them"
            ))
        })
}

async fn read(
    State(reports): State<Reports>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (definition, builtin) = found(&reports, &name).await?;
    Ok(Json(described(&definition, builtin)))
}

/// A definition as JSON, or as the text of a definition file (`-- name: …` header, then SQL).
async fn checked(reports: &Reports, body: &[u8]) -> Result<Definition, ApiError> {
    let text = String::from_utf8_lossy(body);
    let definition: Definition = if text.trim_start().starts_with("--") {
        Definition::parse_file(&text).map_err(invalid)?
    } else {
        // What GET answers can be sent back: its read-only fields are dropped first.
        let mut value: Value = decode_json(body)?;
        if let Value::Object(map) = &mut value {
            map.remove("builtin");
            map.remove("runs_url");
        }
        decode_json(value.to_string().as_bytes())?
    };
    definition.validate().map_err(invalid)?;
    reports.check_plan(&definition).await.map_err(invalid)?;
    Ok(definition)
}

/// Definitions are written by holders of `reports.definition.write` in every company: a
/// scheduled run reads every company's rows.
fn writes_definitions(auth: &Auth) -> Result<(), ApiError> {
    if auth.caller.may(&REPORTS_DEFINITION_WRITE, ANY_COMPANY) {
        Ok(())
    } else {
        Err(forbidden(&REPORTS_DEFINITION_WRITE, Some(ANY_COMPANY)))
    }
}

/// Whether `caller` may see `run`: they asked for it, or they may read runs in every company
/// it read (and read raw events, when it did).
fn sees(caller: &Caller, run: &RunRecord) -> bool {
    if run.requested_by.as_deref() == Some(caller.user.as_str()) {
        return true;
    }
    let Ok(scope) = run.read_scope() else {
        return false;
    };
    let companies = match (caller.scope(&REPORTS_RUN_READ), &scope.companies) {
        (CompanyScope::All, _) => true,
        (CompanyScope::Only(_), None) => false,
        (CompanyScope::Only(mine), Some(read)) => read.is_subset(&mine),
    };
    companies && (!scope.raw_events || caller.scope(&RAW_EVENTS_READ) == CompanyScope::All)
}

async fn create(
    State(reports): State<Reports>,
    auth: Auth,
    body: Bytes,
) -> Result<Response, ApiError> {
    writes_definitions(&auth)?;
    let definition = checked(&reports, &body).await?;
    if reports
        .definition(&definition.name)
        .await
        .map_err(internal)?
        .is_some()
        || !reports
            .store
            .create_definition(&definition, crate::runner::now_ms())
            .await
            .map_err(|e| internal(e.to_string()))?
    {
        return Err(conflict(
            "report_exists",
            format!(
                "a report {:?} exists; PUT /api/v1/reports/{} replaces it",
                definition.name, definition.name
            ),
        ));
    }
    let location = format!("/api/v1/reports/{}", definition.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(described(&definition, false)),
    )
        .into_response())
}

async fn update(
    State(reports): State<Reports>,
    Path(name): Path<String>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    writes_definitions(&auth)?;
    let (_, builtin) = found(&reports, &name).await?;
    if builtin {
        return Err(conflict(
            "report_builtin",
            format!(
                "{name:?} is built in (sql/reports/{name}.sql); create a copy under another name"
            ),
        ));
    }
    let definition = checked(&reports, &body).await?;
    if definition.name != name {
        return Err(ApiError::field(
            "name",
            "name_matches_path",
            format!(
                "the body names {:?}, the path {name:?}; a report is renamed by creating the new one and deleting the old",
                definition.name
            ),
        ));
    }
    if !reports
        .store
        .update_definition(&definition, crate::runner::now_ms())
        .await
        .map_err(|e| internal(e.to_string()))?
    {
        return Err(ApiError::not_found(format!("there is no report {name:?}")));
    }
    Ok(Json(described(&definition, false)))
}

async fn remove(
    State(reports): State<Reports>,
    Path(name): Path<String>,
    auth: Auth,
) -> Result<StatusCode, ApiError> {
    writes_definitions(&auth)?;
    let (_, builtin) = found(&reports, &name).await?;
    if builtin {
        return Err(conflict(
            "report_builtin",
            format!("{name:?} is built in (sql/reports/{name}.sql) and cannot be deleted"),
        ));
    }
    reports
        .store
        .delete_definition(&name)
        .await
        .map_err(|e| internal(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    parameters: Map<String, Value>,
    formats: Option<Vec<String>>,
}

async fn run(
    State(reports): State<Reports>,
    Path(name): Path<String>,
    auth: Auth,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (definition, _) = found(&reports, &name).await?;
    let request: RunRequest = if body.is_empty() {
        RunRequest {
            parameters: Map::new(),
            formats: None,
        }
    } else {
        decode_json(&body)?
    };
    let formats = definition
        .formats_for(request.formats.as_deref())
        .map_err(invalid)?;
    let values = crate::parameters::check(&definition, &request.parameters).map_err(invalid)?;
    let values = reports
        .complete(&definition, values)
        .await
        .map_err(invalid)?;
    let id = reports
        .request(
            &definition,
            &values,
            &formats,
            &auth.caller.user,
            &ReadScope::of(&auth.caller),
        )
        .await
        .map_err(internal)?;
    let url = format!("/api/v1/report-runs/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, url.clone())],
        Json(json!({ "id": id, "status": "queued", "url": url })),
    )
        .into_response())
}

fn run_json(run: &RunRecord) -> Value {
    let time = |ms: Option<i64>| {
        ms.map(|ms| crate::runner::time_of(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let outputs: Vec<Value> = run
        .outputs
        .as_deref()
        .and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|output| {
            let format = output
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            json!({
                "format": format,
                "url": format!("/api/v1/report-runs/{}/outputs/{format}", run.id),
                "bytes": output.get("bytes"),
            })
        })
        .collect();
    json!({
        "id": run.id,
        "report": run.report,
        "status": run.status,
        "trigger": run.trigger,
        "requested_by": run.requested_by,
        "companies": run.read_scope().ok().map(|scope| scope.companies),
        "slot": time(run.slot),
        "parameters": serde_json::from_str::<Value>(&run.parameters).unwrap_or(Value::Null),
        "formats": serde_json::from_str::<Value>(&run.formats).unwrap_or(Value::Null),
        "queued_at": time(Some(run.queued_at)),
        "started_at": time(run.started_at),
        "finished_at": time(run.finished_at),
        "duration_ms": run.finished_at.zip(run.started_at).map(|(f, s)| f - s),
        "row_count": run.row_count,
        "error": run.error,
        "outputs": outputs,
    })
}

/// A run the caller may see (403 naming what it read otherwise).
async fn the_run(reports: &Reports, id: &str, auth: &Auth) -> Result<RunRecord, ApiError> {
    let run = reports
        .store
        .run(id)
        .await
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("there is no report run {id:?}")))?;
    if !sees(&auth.caller, &run) {
        let companies = run
            .read_scope()
            .ok()
            .and_then(|scope| scope.companies)
            .map_or(ANY_COMPANY.to_owned(), |c| {
                c.into_iter().collect::<Vec<_>>().join(", ")
            });
        return Err(forbidden(&REPORTS_RUN_READ, Some(&companies)));
    }
    Ok(run)
}

async fn run_status(
    State(reports): State<Reports>,
    Path(id): Path<String>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(run_json(&the_run(&reports, &id, &auth).await?)))
}

/// The report's newest runs the caller may see.
async fn runs_of(
    State(reports): State<Reports>,
    Path(name): Path<String>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    found(&reports, &name).await?;
    let runs = reports
        .store
        .runs_of(&name, 100)
        .await
        .map_err(|e| internal(e.to_string()))?;
    let seen: Vec<Value> = runs
        .iter()
        .filter(|run| sees(&auth.caller, run))
        .map(run_json)
        .collect();
    Ok(Json(json!({ "runs": seen })))
}

async fn output(
    State(reports): State<Reports>,
    Path((id, format)): Path<(String, String)>,
    auth: Auth,
) -> Result<Response, ApiError> {
    let run = the_run(&reports, &id, &auth).await?;
    let outputs: Vec<Value> = run
        .outputs
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let path = outputs
        .iter()
        .find(|o| o.get("format").and_then(Value::as_str) == Some(format.as_str()))
        .and_then(|o| o.get("path").and_then(Value::as_str))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "run {id} has no {format:?} output (status {})",
                run.status
            ))
        })?;
    let kind = crate::definition::Format::parse(&format)
        .map_or("application/octet-stream", |f| f.content_type());
    let bytes = reports.output(path).await.map_err(internal)?;
    let file = path.rsplit('/').next().unwrap_or("report").to_owned();
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
