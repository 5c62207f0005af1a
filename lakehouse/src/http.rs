//! `POST /api/v1/sql`: read-only SQL over the lake, answered in the format `Accept` asks for.
//!
//! - JSON (default, `application/json`): `{"columns": [{"name", "type"}], "rows": [[...]]}`;
//!   decimals, dates and timestamps are strings (exact), integers and booleans JSON values.
//! - CSV (`text/csv`).
//! - Arrow IPC stream (`application/vnd.apache.arrow.stream`): typed columns, decimals exact.
//! - Parquet (`application/vnd.apache.parquet`): one file, the result's schema.
//!
//! An `Accept` that names none of these (and no `*/*`) is answered 406 with the list.

use crate::query::ReadScope;
use crate::query::{QueryError, QueryResult, QueryService};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::http::{ApiError, JsonBody};

pub fn router() -> Routes<QueryService> {
    Routes::new()
        .post(
            "/api/v1/sql",
            Permission(&tributary_kernel::auth::platform::SQL_READ),
            run_sql,
        )
        .accepts::<SqlBody>()
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SqlBody {
    sql: String,
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
        let (status, problem, title) = match &error {
            QueryError::NotReadOnly { .. } => {
                (StatusCode::BAD_REQUEST, "read_only", "Read-only SQL")
            }
            QueryError::Timeout { .. } => (UNPROCESSABLE, "query_timeout", "Query time limit"),
            QueryError::TooLarge { .. } => (
                UNPROCESSABLE,
                "query_answer_too_large",
                "Query answer too large",
            ),
            QueryError::MemoryLimit { .. } => {
                (UNPROCESSABLE, "query_memory_limit", "Query memory limit")
            }
            QueryError::Busy { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "queries_busy",
                "Too many queries",
            ),
            QueryError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            QueryError::TooManyRows { .. } => {
                (UNPROCESSABLE, "query_rows_limit", "Query row limit")
            }
            _ if error.is_client_error() => (StatusCode::BAD_REQUEST, "sql_error", "SQL error"),
            _ => return ApiError::internal(&error),
        };
        ApiError::new(status, problem, title, error.to_string())
    }
}

/// The result formats, by media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    ArrowStream,
    Parquet,
}

const FORMATS: [(&str, Format); 4] = [
    ("application/json", Format::Json),
    ("text/csv", Format::Csv),
    ("application/vnd.apache.arrow.stream", Format::ArrowStream),
    ("application/vnd.apache.parquet", Format::Parquet),
];

/// The first format `Accept` lists that is served (JSON when it lists none, or a wildcard).
fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap_or_default())
        .filter(|a| !a.trim().is_empty())
    else {
        return Ok(Format::Json);
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| p.replace(' ', "") == "q=0");
        if refused {
            continue;
        }
        if media == "*/*" || media == "application/*" {
            return Ok(Format::Json);
        }
        if let Some((_, format)) = FORMATS.iter().find(|(m, _)| *m == media) {
            return Ok(*format);
        }
    }
    let offered: Vec<&str> = FORMATS.iter().map(|(m, _)| *m).collect();
    Err(ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "not_acceptable",
        "Result format not available",
        format!(
            "Accept: {accept} names no format this endpoint answers in; use one of {}",
            offered.join(", ")
        ),
    ))
}

async fn run_sql(
    State(service): State<QueryService>,
    auth: Auth,
    headers: HeaderMap,
    body: JsonBody<SqlBody>,
) -> Result<Response, ApiError> {
    // Refused before the query runs: a 406 costs nothing.
    let format = negotiate(&headers)?;
    let result = service
        .query(&body.value.sql, &ReadScope::of(&auth.caller))
        .await?;
    let file = |content_type: &'static str, bytes: Vec<u8>| {
        ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
    };
    Ok(match format {
        Format::Json => axum::Json(to_json(&result)?).into_response(),
        Format::Csv => file(
            "text/csv; charset=utf-8",
            to_csv(&result).map_err(|e| ApiError::internal(&e))?,
        ),
        Format::ArrowStream => file(
            "application/vnd.apache.arrow.stream",
            to_arrow_stream(&result).map_err(|e| ApiError::internal(&e))?,
        ),
        Format::Parquet => file(
            "application/vnd.apache.parquet",
            to_parquet(&result).map_err(|e| ApiError::internal(&e))?,
        ),
    })
}

/// SQL-style name of an Arrow type, as clients of a database expect.
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        // Partition columns come back dictionary-encoded; clients care about the values.
        DataType::Dictionary(_, values) => sql_type_name(values),
        other => other.to_string(),
    }
}

fn cell(array: &ArrayRef, formatter: &ArrayFormatter, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    let text = formatter.value(row).to_string();
    match array.data_type() {
        DataType::Boolean => Value::Bool(text == "true"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            text.parse::<i64>().map_or(Value::String(text), Value::from)
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            text.parse::<u64>().map_or(Value::String(text), Value::from)
        }
        DataType::Float32 | DataType::Float64 => serde_json::from_str::<serde_json::Number>(&text)
            .map_or(Value::String(text), Value::Number),
        _ => Value::String(text),
    }
}

/// The result as `{"columns", "rows"}`.
pub fn to_json(result: &QueryResult) -> Result<Value, ApiError> {
    let columns: Vec<Value> = result
        .schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": sql_type_name(f.data_type()) }))
        .collect();
    let options = FormatOptions::default().with_null("");
    let mut rows = Vec::with_capacity(result.row_count());
    for batch in &result.batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::internal(&e))?;
        for row in 0..batch.num_rows() {
            rows.push(Value::Array(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| cell(c, f, row))
                    .collect(),
            ));
        }
    }
    Ok(json!({ "columns": columns, "rows": rows }))
}

fn to_csv(result: &QueryResult) -> Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
    let mut out = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        if result.batches.is_empty() {
            writer.write(&datafusion::arrow::record_batch::RecordBatch::new_empty(
                result.schema.clone(),
            ))?;
        }
        for batch in &result.batches {
            writer.write(batch)?;
        }
    }
    Ok(out)
}

/// The result as an Arrow IPC stream (schema, then every batch).
fn to_arrow_stream(result: &QueryResult) -> Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
    let mut out = Vec::new();
    let mut writer =
        datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema)?;
    for batch in &result.batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// The result as one Parquet file.
fn to_parquet(result: &QueryResult) -> Result<Vec<u8>, datafusion::parquet::errors::ParquetError> {
    let mut out = Vec::new();
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, result.schema.clone(), None)?;
    for batch in &result.batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(out)
}
