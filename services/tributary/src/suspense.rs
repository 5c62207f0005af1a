//! Reactions in suspense over REST: what a target context refused, and the retry once the
//! cause is fixed (a period reopened, an account unblocked).
//!
//! - `GET /api/v1/suspense?status=open|resolved&company=…`: newest first (at most 500), of the
//!   caller's companies (or the one named);
//! - `POST /api/v1/suspense/{reactor}/{event_id}/retry`: runs the reaction again; 200 with
//!   `resolved` when it is stored now, 422 with the target's reason when refused again.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tributary_kernel::Platform;
use tributary_kernel::auth::{
    ANY_COMPANY, Access::Permission, Auth, CompanyScope, RouteInfo, Routes, platform,
};
use tributary_kernel::http::ApiError;
use tributary_kernel::reactor::{Follow, Reaction, Reactor, company_of, retry};

/// Suspended reactions listed at most.
pub const SUSPENSE_LIST_MAX: i64 = 500;

#[derive(Clone)]
struct SuspenseState {
    platform: Platform,
    reactors: Arc<Vec<Arc<dyn Reactor>>>,
}

pub fn router(platform: Platform, reactors: Vec<Arc<dyn Reactor>>) -> (Router, Vec<RouteInfo>) {
    Routes::new()
        .get(
            "/api/v1/suspense",
            Permission(&platform::SUSPENSE_READ),
            list,
        )
        .post(
            "/api/v1/suspense/{reactor}/{event_id}/retry",
            Permission(&platform::SUSPENSE_RETRY),
            retry_one,
        )
        .with_state(SuspenseState {
            platform,
            reactors: Arc::new(reactors),
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    /// Those of one company (the caller's permission there is checked by the route guard).
    company: Option<String>,
}

/// The suspended reactions of the caller's companies (every one with the permission in `*`).
async fn list(
    State(state): State<SuspenseState>,
    auth: Auth,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(status) = query.status.as_deref()
        && status != "open"
        && status != "resolved"
    {
        return Err(ApiError::field(
            "status",
            "suspense_status",
            "must be open or resolved",
        ));
    }
    let companies: Option<Vec<String>> =
        match (query.company, auth.caller.scope(&platform::SUSPENSE_READ)) {
            (Some(company), _) => Some(vec![company]),
            (None, CompanyScope::All) => None,
            (None, CompanyScope::Only(companies)) => Some(companies.into_iter().collect()),
        };
    let suspended = Follow {
        store: &state.platform.store,
    }
    .suspended(
        query.status.as_deref(),
        companies.as_deref(),
        SUSPENSE_LIST_MAX,
    )
    .await?;
    Ok(Json(json!(suspended)))
}

/// Retries one reaction; the permission is needed in the causing event's company (in `*` for
/// an event of no company).
async fn retry_one(
    State(state): State<SuspenseState>,
    auth: Auth,
    Path((reactor, event_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(found) = state.reactors.iter().find(|r| r.name() == reactor) else {
        return Err(ApiError::not_found(format!(
            "reactor {reactor} does not exist"
        )));
    };
    let event = uuid::Uuid::parse_str(&event_id)
        .map_err(|_| ApiError::not_found(format!("event {event_id} does not exist")))?;
    let cause = state
        .platform
        .store
        .event(event)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event {event_id} does not exist")))?;
    let company = company_of(&cause).unwrap_or(ANY_COMPANY);
    auth.caller.require(&platform::SUSPENSE_RETRY, company)?;
    let reaction = retry(&state.platform, found.as_ref(), event)
        .await
        .map_err(|error| match error {
            tributary_kernel::reactor::ReactorError::Store(store) => ApiError::from(store),
            other => ApiError::internal(&other),
        })?
        .ok_or_else(|| ApiError::not_found(format!("event {event_id} does not exist")))?;
    Ok(match reaction {
        Reaction::Done | Reaction::Ignored => (
            StatusCode::OK,
            Json(json!({"reactor": reactor, "event_id": event_id, "status": "resolved"})),
        )
            .into_response(),
        Reaction::Rejected { reason, problem } => {
            let mut refused = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reaction_rejected",
                "The reaction was refused again",
                reason,
            );
            if let Some(errors) = problem.get("errors").and_then(|e| e.as_array()) {
                refused.errors = errors
                    .iter()
                    .map(|e| {
                        tributary_kernel::http::FieldError::new(
                            e["field"].as_str().unwrap_or_default(),
                            e["rule"].as_str().unwrap_or_default(),
                            e["detail"].as_str().unwrap_or_default(),
                        )
                    })
                    .collect();
            }
            refused.into_response()
        }
    })
}
