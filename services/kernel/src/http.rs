//! The HTTP error model and request plumbing every service shares.
//!
//! Errors are `application/problem+json` (RFC 9457): 400 for malformed JSON, 422 for
//! validation and business-rule violations (with `errors[]` naming field and rule), 409 for
//! concurrency conflicts and idempotency-key reuse, 404, 503 when the database is down.
//! A 500 body says nothing internal; the full error is logged with the request id.
//!
//! Idempotency: a POST with `Idempotency-Key` stores its response in the same transaction as
//! its events. The same key with the same method, path and body replays that response; with a
//! different request it is a 409.

use crate::store::{EventStore, IdempotencyRecord, StoreError};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;

/// One broken rule on one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Path into the request body, e.g. `lines[2].debit`; empty for the body as a whole.
    pub field: String,
    /// Stable machine-readable rule name, e.g. `positive`, `entry_balanced`.
    pub rule: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        rule: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            rule: rule.into(),
            detail: detail.into(),
        }
    }
}

/// An HTTP error rendered as a problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Problem type slug: the rule or condition, e.g. `validation`, `entry_not_balanced`.
    pub problem: String,
    pub title: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, problem: &str, title: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            problem: problem.to_owned(),
            title: title.to_owned(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 422 with the field errors; the detail lists them for humans.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| {
                if e.field.is_empty() {
                    e.detail.clone()
                } else {
                    format!("{}: {}", e.field, e.detail)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let problem = match errors.as_slice() {
            [only] => only.rule.clone(),
            _ => "validation".to_owned(),
        };
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            problem,
            title: "The request breaks a rule".to_owned(),
            detail,
            errors,
        }
    }

    pub fn field(field: &str, rule: &str, detail: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError::new(field, rule, detail)])
    }

    /// A body that passed its checks but lacks a value the command needs.
    pub fn missing_fields() -> Self {
        ApiError::field("", "required", "missing fields")
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    pub fn bad_request(problem: &str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, problem, "Bad request", detail)
    }

    /// An unexpected failure: logged in full, answered without internals.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to handle the request; it is logged under this request's x-request-id",
        )
    }
}

impl From<crate::aggregate::RepositoryError> for ApiError {
    fn from(error: crate::aggregate::RepositoryError) -> Self {
        match error {
            crate::aggregate::RepositoryError::Store(error) => error.into(),
            error @ crate::aggregate::RepositoryError::Event(_) => ApiError::internal(&error),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict {
                aggregate_type,
                aggregate_id,
                ..
            } => ApiError::new(
                StatusCode::CONFLICT,
                "concurrent_change",
                "Concurrent change",
                format!(
                    "{aggregate_type} {aggregate_id} was changed by another request; reload and retry"
                ),
            ),
            StoreError::IdempotencyKeyTaken { key } => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "Idempotency key in use",
                format!("Idempotency-Key {key:?} is being used by a concurrent request"),
            ),
            StoreError::AppendTooLarge { count } => ApiError::field(
                "",
                "append_too_large",
                format!("the command would store {count} events, more than one request may"),
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "event store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "event_store_unavailable",
                    "Event store unavailable",
                    "the event store database cannot be reached; nothing was stored, retry later",
                )
            }
            other => ApiError::internal(&other),
        }
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    /// The problem document as JSON text.
    pub fn body(&self) -> String {
        let body = ProblemBody {
            problem_type: format!("https://tributary.dev/problems/{}", self.problem),
            title: &self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)],
            self.body(),
        )
            .into_response()
    }
}

/// A JSON request body, decoded with the path of the field that failed.
/// Keeps the raw bytes for idempotency hashing.
pub struct JsonBody<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(request.headers())?;
        let bytes = body_bytes(request, state).await?;
        let value = decode_json(&bytes)?;
        Ok(JsonBody { value, bytes })
    }
}

/// Refuses a body that is not declared `application/json` (415).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "the request body must be JSON with Content-Type: application/json",
        ))
    }
}

/// The request's body, or the problem of reading it (too large, broken).
pub(crate) async fn body_bytes<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            ApiError::new(
                rejection.status(),
                "body_unreadable",
                "Body unreadable",
                rejection.body_text(),
            )
        })
}

/// Decodes JSON, mapping syntax errors to 400 and shape errors to 422 naming the field.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::bad_request(
                    "malformed_json",
                    format!("the body is not valid JSON: {inner}"),
                )
            }
            _ => {
                let message = inner.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                let path = if path == "." { String::new() } else { path };
                let (field, rule) = if let Some(name) = quoted_name(&message, "missing field") {
                    (join_path(&path, &name), "required")
                } else if let Some(name) = quoted_name(&message, "unknown field") {
                    let field = if path.ends_with(&name) {
                        path.clone()
                    } else {
                        join_path(&path, &name)
                    };
                    (field, "unknown_field")
                } else {
                    (path, "type")
                };
                ApiError::field(&field, rule, message)
            }
        }
    })
}

fn quoted_name(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?.trim_start();
    let rest = rest.strip_prefix('`')?;
    Some(rest.split('`').next()?.to_owned())
}

fn join_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Longest plain-text error body turned into a problem's detail.
const PLAIN_ERROR_BYTES_MAX: usize = 16 * 1024;

/// Middleware: an error answered as plain text (axum's own rejections: a path segment or a
/// query string that does not parse, a method the route does not take) becomes a problem
/// document with the same status, headers and cause, like every other error of the API.
pub async fn plain_errors_as_problems(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    let empty_error = (status.is_client_error() || status.is_server_error())
        && response.headers().get(header::CONTENT_TYPE).is_none();
    if !(status.is_client_error() || status.is_server_error()) || !(plain || empty_error) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, PLAIN_ERROR_BYTES_MAX)
        .await
        .unwrap_or_default();
    let title = status.canonical_reason().unwrap_or("Error");
    let slug = title.to_lowercase().replace([' ', '-'], "_");
    let detail = match String::from_utf8_lossy(&bytes).trim() {
        "" => title.to_owned(),
        text => text.to_owned(),
    };
    let mut problem = ApiError::new(status, &slug, title, detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

/// Adds an `x-request-id` (the client's, if it sent a sane one) to the request and response,
/// and runs the request inside a tracing span carrying it.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        trace_id = tracing::field::Empty,
    );
    // A caller's W3C trace context makes this request a part of its trace.
    crate::telemetry::continue_trace(
        &span,
        crate::telemetry::traceparent_header(request.headers()),
    );
    // The route as declared (`/api/v1/accounts/{number}`), so metrics do not grow per id.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(crate::telemetry::names::HTTP_REQUESTS, &labels).increment(1);
    crate::telemetry::observe_seconds(crate::telemetry::names::HTTP_DURATION, &labels, started);
    // The access log (RUST_LOG=tributary_kernel::http=debug), in the request's span.
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request answered"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

pub fn request_id_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Answers 503 when a request takes longer than `limit` (its work is dropped there: a command
/// whose transaction committed stays stored, so a retry carries the same Idempotency-Key).
pub async fn time_limit(limit: std::time::Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "Request took too long",
            format!(
                "the request was stopped after {} ms; retry a command with the same Idempotency-Key",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// An idempotency key and the hash of the request that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: String,
    pub request_hash: String,
}

impl IdempotencyClaim {
    /// The record to store with the command's events.
    pub fn record(&self, status: StatusCode, body: &str) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key.clone(),
            request_hash: self.request_hash.clone(),
            status: status.as_u16(),
            body: body.to_owned(),
        }
    }
}

/// What to do with a request before running its command.
pub enum Idempotency {
    /// No key: run the command.
    None,
    /// A new key: run the command and store its response under the claim.
    Fresh(IdempotencyClaim),
    /// The key was used for this same request: answer this stored response.
    Replay(Response),
}

/// Reads the `Idempotency-Key` header and looks it up among `user`'s keys (one user cannot
/// replay another's response, nor learn that a key is in use). A key reused for another
/// request is 409.
pub async fn check_idempotency(
    store: &EventStore,
    user: &str,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<Idempotency, ApiError> {
    let Some(raw) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(Idempotency::None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_LENGTH_MAX)
        .ok_or_else(|| {
            ApiError::field(
                "Idempotency-Key",
                "idempotency_key_format",
                format!("must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} visible ASCII characters"),
            )
        })?;
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    let request_hash = format!("{:x}", hasher.finalize());
    let claim = IdempotencyClaim {
        key: format!("user/{user}/{key}"),
        request_hash,
    };
    // A key stored before requests had users (kept without a user) still replays its own
    // request; for any other request the key is the caller's, and new.
    if store.idempotency(&claim.key).await?.is_none()
        && let Some(legacy) = store.idempotency(key).await?
        && legacy.request_hash == claim.request_hash
    {
        let legacy = IdempotencyClaim {
            key: key.to_owned(),
            request_hash: claim.request_hash,
        };
        return replay_or_claim(store, legacy).await;
    }
    replay_or_claim(store, claim).await
}

/// Replays the stored response for the claim's key, refuses a different request under it,
/// or hands the claim back when the key is new.
pub async fn replay_or_claim(
    store: &EventStore,
    claim: IdempotencyClaim,
) -> Result<Idempotency, ApiError> {
    match store.idempotency(&claim.key).await? {
        None => Ok(Idempotency::Fresh(claim)),
        Some(record) if record.request_hash == claim.request_hash => {
            let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
            Ok(Idempotency::Replay(
                (
                    status,
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        ),
                        (
                            header::HeaderName::from_static("idempotent-replayed"),
                            HeaderValue::from_static("true"),
                        ),
                    ],
                    record.body,
                )
                    .into_response(),
            ))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "Idempotency key reused",
            format!(
                "Idempotency-Key {:?} was already used for a different request",
                // As the client sent it, without the user it is kept under.
                claim.key.splitn(3, '/').nth(2).unwrap_or(&claim.key)
            ),
        )),
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// What a user's request stores with its events: who, which request, which key.
pub fn request_metadata(
    headers: &HeaderMap,
    claim: Option<&IdempotencyClaim>,
    user: Option<&str>,
) -> crate::Metadata {
    let request_id = request_id_of(headers);
    crate::Metadata {
        correlation_id: request_id.clone(),
        request_id,
        idempotency_key: claim.map(|c| c.key.clone()),
        user: user.map(str::to_owned),
        causation_id: None,
        reactor: None,
        traceparent: crate::telemetry::current_traceparent(),
    }
}

/// Appends a decided command with its metadata and idempotency record and answers `status`
/// with `body`. A concurrent request that stored the same key first wins: its response is
/// replayed.
pub async fn commit<T, B: serde::Serialize>(
    store: &EventStore,
    context: &str,
    metadata: crate::Metadata,
    claim: Option<IdempotencyClaim>,
    decision: crate::store::Decision<T>,
    status: StatusCode,
    body: impl FnOnce(&T) -> B,
) -> Result<Response, ApiError> {
    let appended = append_decision(
        store,
        context,
        metadata,
        claim.as_ref(),
        decision,
        status,
        body,
    )
    .await;
    answer_append(store, claim, appended).await
}

/// Appends a decision with the idempotency record of `claim`; the store's error as it is.
pub(crate) async fn append_decision<T, B: serde::Serialize>(
    store: &EventStore,
    context: &str,
    metadata: crate::Metadata,
    claim: Option<&IdempotencyClaim>,
    decision: crate::store::Decision<T>,
    status: StatusCode,
    body: impl FnOnce(&T) -> B,
) -> Result<Response, StoreError> {
    // Serialized straight from what `body` makes (a `serde_json::Value` or a view of the
    // outcome that derives `Serialize`); a body that cannot be written is the server's fault,
    // found before anything is stored.
    let body = serde_json::to_string(&body(&decision.outcome))
        .map_err(|error| StoreError::Database(sqlx::Error::Encode(Box::new(error))))?;
    if decision.writes.is_empty() && claim.is_none() {
        return Ok(json_response(status, body));
    }
    let record = claim.map(|c| c.record(status, &body));
    let (batch, _) = decision.into_batch(context, metadata, record);
    // The command's outcome: what it writes (the request span around it names the route).
    let mut event_types: Vec<&str> = batch
        .writes
        .iter()
        .flat_map(|w| w.events.iter().map(|e| e.event_type.as_str()))
        .collect();
    event_types.dedup();
    let span = tracing::info_span!(
        "command",
        context,
        aggregate_type = batch.writes.first().map(|w| w.aggregate_type.as_str()),
        event_types = event_types.join(","),
        events = batch.writes.iter().map(|w| w.events.len()).sum::<usize>(),
    );
    tracing::Instrument::instrument(store.append(batch), span).await?;
    Ok(json_response(status, body))
}

/// The answer to an append: a concurrent request that stored the same idempotency key first
/// gets its response replayed.
pub(crate) async fn answer_append(
    store: &EventStore,
    claim: Option<IdempotencyClaim>,
    appended: Result<Response, StoreError>,
) -> Result<Response, ApiError> {
    match appended {
        Ok(response) => Ok(response),
        Err(StoreError::IdempotencyKeyTaken { key }) => {
            let claim = claim.unwrap_or(IdempotencyClaim {
                key: key.clone(),
                request_hash: String::new(),
            });
            match replay_or_claim(store, claim).await? {
                Idempotency::Replay(response) => Ok(response),
                _ => Err(StoreError::IdempotencyKeyTaken { key }.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        account: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        lines: Vec<Line>,
    }

    #[test]
    fn decode_errors_name_the_field_and_the_rule() {
        let missing = decode_json::<Body>(br#"{"lines":[{"account":"1"},{}]}"#).unwrap_err();
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(missing.errors[0].field, "lines[1].account");
        assert_eq!(missing.errors[0].rule, "required");

        let unknown = decode_json::<Body>(br#"{"lines":[],"extra":1}"#).unwrap_err();
        assert_eq!(unknown.errors[0].field, "extra");
        assert_eq!(unknown.errors[0].rule, "unknown_field");

        let syntax = decode_json::<Body>(br#"{"lines":["#).unwrap_err();
        assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
        assert_eq!(syntax.problem, "malformed_json");
    }
}
