//! The HTTP command prologue every context's POST/PATCH/PUT handler shares.
//!
//! ```text
//!  request ──► Command<T> extractor: JSON body (400 malformed, 422 naming the field),
//!              Idempotency-Key looked up under the method and the route as routed
//!              (path and query): a repeat answers the stored response, a reuse is 409
//!          ──► handler: Checks (validation, every broken rule at once) ──► decide
//!          ──► Command::commit: events + idempotency record in one append, answer
//! ```

use crate::auth::{Auth, AuthError, unauthorized};
use crate::http::{
    ApiError, FieldError, Idempotency, IdempotencyClaim, body_bytes, check_idempotency, commit,
    decode_json, request_metadata, require_json,
};
use crate::money::parse_positive_amount;
use crate::store::{Decision, EventStore};
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A command request: its decoded body, and what committing it needs (headers, the
/// idempotency claim). Handlers take it apart: `Command { body, request }: Command<Body>`.
pub struct Command<T> {
    pub body: T,
    pub request: CommandRequest,
}

/// The part of a command request its commit needs.
pub struct CommandRequest {
    pub headers: HeaderMap,
    claim: Option<IdempotencyClaim>,
    /// The caller, as the route's guard authenticated them.
    pub auth: Auth,
}

/// The `company` a command body names at its top level, if any.
#[derive(serde::Deserialize)]
struct NamedCompany {
    company: Option<Value>,
}

impl<T, S> FromRequest<S> for Command<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
    EventStore: FromRef<S>,
{
    /// A problem document, or the response first given for this idempotency key.
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let store = EventStore::from_ref(state);
        let auth = request
            .extensions()
            .get::<Auth>()
            .cloned()
            .ok_or_else(|| unauthorized(AuthError::Missing))?;
        let method = request.method().clone();
        let route = request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
        let headers = request.headers().clone();
        let bytes = body_bytes(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let body = if bytes.is_empty() {
            // A command without a body (close a period): read as JSON null, so `()` fits.
            decode_json(b"null")
        } else {
            require_json(&headers).and_then(|()| decode_json(&bytes))
        }
        .map_err(IntoResponse::into_response)?;
        // A company named in the body is checked before anything is validated or looked up:
        // a caller without the permission there learns nothing about it.
        if let Ok(NamedCompany {
            company: Some(Value::String(company)),
        }) = serde_json::from_slice::<NamedCompany>(&bytes)
        {
            auth.company(&company)
                .map_err(IntoResponse::into_response)?;
        }
        let claim =
            match check_idempotency(&store, &auth.caller.user, &headers, &method, &route, &bytes)
                .await
            {
                Ok(Idempotency::None) => None,
                Ok(Idempotency::Fresh(claim)) => Some(claim),
                Ok(Idempotency::Replay(response)) => return Err(response),
                Err(error) => return Err(error.into_response()),
            };
        Ok(Command {
            body,
            request: CommandRequest {
                headers,
                claim,
                auth,
            },
        })
    }
}

impl CommandRequest {
    /// Appends the decision of a command in `company` with its idempotency record and answers
    /// `status` with the JSON `body` makes of the outcome; 403 unless the caller holds the
    /// route's permission in `company`.
    pub async fn commit<O, B: serde::Serialize>(
        self,
        store: &EventStore,
        context: &str,
        company: &str,
        decision: Decision<O>,
        status: StatusCode,
        body: impl FnOnce(&O) -> B,
    ) -> Result<Response, ApiError> {
        self.auth.company(company)?;
        self.commit_without_company(store, context, decision, status, body)
            .await
    }

    /// Like [`CommandRequest::commit`] for the few commands that concern no company (a user's
    /// own password, the users themselves): the route's guard has checked the permission.
    pub async fn commit_without_company<O, B: serde::Serialize>(
        self,
        store: &EventStore,
        context: &str,
        decision: Decision<O>,
        status: StatusCode,
        body: impl FnOnce(&O) -> B,
    ) -> Result<Response, ApiError> {
        let metadata = request_metadata(
            &self.headers,
            self.claim.as_ref(),
            Some(&self.auth.caller.user),
        );
        commit(store, context, metadata, self.claim, decision, status, body).await
    }
}

/// The company a command's outcome belongs to: what its commit is authorized against.
pub trait OfCompany {
    fn company(&self) -> &crate::master::CompanyCode;
}

/// Implements [`OfCompany`] for outcomes: `of_company! { Plant => |it| &it.company }`.
#[macro_export]
macro_rules! of_company {
    ($($outcome:ty => |$it:ident| $company:expr),* $(,)?) => {
        $(impl $crate::command::OfCompany for $outcome {
            fn company(&self) -> &$crate::master::CompanyCode {
                let $it = self;
                $company
            }
        })*
    };
}

impl CommandRequest {
    /// [`CommandRequest::commit`] in the company the outcome belongs to.
    pub async fn commit_outcome<O: OfCompany, B: serde::Serialize>(
        self,
        store: &EventStore,
        context: &str,
        decision: Decision<O>,
        status: StatusCode,
        body: impl FnOnce(&O) -> B,
    ) -> Result<Response, ApiError> {
        let company = decision.outcome.company().clone();
        self.commit(store, context, company.as_str(), decision, status, body)
            .await
    }
}

/// A decision being made (see [`CommandRequest::commit_retrying`]).
pub type Deciding<'a, O> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Decision<O>, ApiError>> + Send + 'a>>;

/// How often a command is decided again when another request changed what it read.
pub const DECIDE_ATTEMPTS: u32 = 10;
/// The first wait before deciding again (doubling up to 128 ms: about 0.6 s in all).
pub const DECIDE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(2);

impl CommandRequest {
    /// Decides with `decide` and appends, deciding again (up to [`DECIDE_ATTEMPTS`] times) when
    /// a stream it writes was changed meanwhile: for commands that serialise on a shared
    /// stream (availability), where a conflict means "check again", not "tell the user".
    pub async fn commit_retrying<'a, O: OfCompany, B: serde::Serialize>(
        self,
        store: &EventStore,
        context: &str,
        status: StatusCode,
        mut decide: impl FnMut() -> Deciding<'a, O>,
        body: impl Fn(&O) -> B,
    ) -> Result<Response, ApiError> {
        let metadata = request_metadata(
            &self.headers,
            self.claim.as_ref(),
            Some(&self.auth.caller.user),
        );
        let mut attempt = 1;
        loop {
            let decision = decide().await?;
            self.auth.company(decision.outcome.company().as_str())?;
            let appended = crate::http::append_decision(
                store,
                context,
                metadata.clone(),
                self.claim.as_ref(),
                decision,
                status,
                &body,
            )
            .await;
            if matches!(appended, Err(crate::store::StoreError::Conflict { .. }))
                && attempt < DECIDE_ATTEMPTS
            {
                // The winner's events reach the feed (and the indexes) in moments: wait a
                // little longer each time before deciding again.
                tokio::time::sleep(DECIDE_BACKOFF * (1 << attempt.min(6))).await;
                attempt += 1;
                continue;
            }
            return crate::http::answer_append(store, self.claim, appended).await;
        }
    }
}

/// Collects field errors while turning a request body into a command: every broken rule is
/// reported at once, each naming its field and rule.
#[derive(Debug, Default)]
pub struct Checks(pub Vec<FieldError>);

impl Checks {
    /// The value, or the error recorded under `field` and `rule`.
    pub fn check<T, E: ToString>(
        &mut self,
        field: &str,
        rule: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(FieldError::new(field, rule, error.to_string()));
                None
            }
        }
    }

    /// Records a broken rule.
    pub fn fail(&mut self, field: impl Into<String>, rule: &str, detail: impl Into<String>) {
        self.0.push(FieldError::new(field, rule, detail));
    }

    /// Text at most `length_max` characters; `required` refuses an empty one.
    pub fn text(
        &mut self,
        field: &str,
        value: Option<String>,
        length_max: usize,
        required: bool,
    ) -> Option<String> {
        match value {
            Some(text) if text.trim().is_empty() && required => {
                self.fail(field, "required", "must not be empty");
                None
            }
            Some(text) if text.chars().count() > length_max => {
                self.fail(
                    field,
                    "max_length",
                    format!("must be at most {length_max} characters"),
                );
                None
            }
            other => other,
        }
    }

    pub fn date(&mut self, field: &str, text: &str) -> Option<NaiveDate> {
        self.check(field, "date", crate::master::parse_date(text))
    }

    /// A strictly positive decimal given as a JSON string; absent or null is `None`.
    pub fn amount(&mut self, field: &str, value: Option<&Value>) -> Option<Decimal> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => match parse_positive_amount(text) {
                Ok(amount) => Some(amount),
                Err(error) => {
                    self.fail(field, error.rule(), error.to_string());
                    None
                }
            },
            Some(_) => {
                self.fail(
                    field,
                    "decimal_string",
                    "must be a JSON string such as \"1250.00\": JSON numbers lose cents",
                );
                None
            }
        }
    }

    /// Like [`Checks::required_amount`], but zero is allowed (a tolerance, a counted quantity).
    pub fn amount_or_zero(&mut self, field: &str, value: Option<&Value>) -> Option<Decimal> {
        if let Some(Value::String(text)) = value
            && Decimal::from_str_exact(text.trim()).is_ok_and(|d| d.is_zero())
        {
            return Some(Decimal::ZERO);
        }
        self.required_amount(field, value)
    }

    /// An amount of money in a currency with cents: at most two decimals (else the error).
    pub fn cents(&mut self, field: &str, amount: Option<Decimal>) -> Option<Decimal> {
        match amount {
            Some(value) if value.normalize().scale() > 2 => {
                self.fail(
                    field,
                    "max_2_decimal_places",
                    "an amount of money has at most 2 decimals",
                );
                None
            }
            other => other,
        }
    }

    /// Like [`Checks::amount`], but the field must be there.
    pub fn required_amount(&mut self, field: &str, value: Option<&Value>) -> Option<Decimal> {
        if matches!(value, None | Some(Value::Null)) {
            self.fail(field, "required", "must be given as a decimal string");
            return None;
        }
        self.amount(field, value)
    }

    pub fn has_errors_under(&self, prefix: &str) -> bool {
        self.0.iter().any(|e| e.field.starts_with(prefix))
    }

    /// 422 naming every broken rule, or nothing.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}
