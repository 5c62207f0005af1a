//! Who is calling and what they may do: permissions declared where routes are declared,
//! roles that bundle them, grants per company.
//!
//! ```text
//!  request ─► authentication layer: puts the installation's Authenticator in the request
//!         ─► route guard (every route of a Routes builder has one, by construction):
//!              Public: passes; otherwise the bearer token is verified (401 with
//!              WWW-Authenticate when missing or invalid), the caller must hold the route's
//!              permission in some company, and in the company a `company` query parameter
//!              names (403 naming the permission)
//!         ─► handler: Auth::company(code) once it knows the company the request concerns;
//!              CommandRequest::commit takes that company and checks it again before append
//! ```
//!
//! A permission is `<context>.<object>.<action>` and is declared by the crate that checks
//! it, with the built-in roles that hold it. `administrator` holds every permission. A grant
//! on the company `*` holds in every company, also those created later.

use crate::http::ApiError;
use crate::ratelimit::{Admission, RateLimit, RateLimiterExtension};
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, on};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The company every company's grants include.
pub const ANY_COMPANY: &str = "*";

/// The built-in roles. Contexts name the ones that hold each of their permissions.
pub mod role {
    pub const ADMINISTRATOR: &str = "administrator";
    pub const FINANCE_MANAGER: &str = "finance_manager";
    pub const ACCOUNTANT: &str = "accountant";
    pub const PURCHASER: &str = "purchaser";
    pub const WAREHOUSE_CLERK: &str = "warehouse_clerk";
    /// Customers, prices, sales orders, deliveries and billing.
    pub const SALES_CLERK: &str = "sales_clerk";
    /// Bills of material, routings, work centres, planning data, MRP and production orders.
    pub const PRODUCTION_PLANNER: &str = "production_planner";
    /// Read-only SQL and reports.
    pub const ANALYST: &str = "analyst";
    /// Reads everything, changes nothing.
    pub const AUDITOR: &str = "auditor";

    pub const BUILT_IN: [&str; 9] = [
        ADMINISTRATOR,
        FINANCE_MANAGER,
        ACCOUNTANT,
        PURCHASER,
        WAREHOUSE_CLERK,
        SALES_CLERK,
        PRODUCTION_PLANNER,
        ANALYST,
        AUDITOR,
    ];
}

/// A permission as its context declares it.
#[derive(Debug)]
pub struct Permission {
    /// `<context>.<object>.<action>`, e.g. `finance.journal_entry.post`.
    pub name: &'static str,
    pub description: &'static str,
    /// The built-in roles besides `administrator` that hold it.
    pub roles: &'static [&'static str],
}

impl Permission {
    /// Whether a caller holding it changes nothing (what auditors and analysts may hold).
    pub fn reads_only(&self) -> bool {
        self.name.ends_with(".read")
    }
}

/// The permissions of the platform itself: SQL, raw events, reports, reactors' suspense,
/// users. Contexts declare theirs in their modules.
pub mod platform {
    use super::{Permission, role::*};

    pub static SQL_READ: Permission = Permission {
        name: "sql.read",
        description: "Query the lake's tables and views over /api/v1/sql and the wire endpoint, \
            rows of the companies the caller holds it in",
        roles: &[FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
    };
    pub static RAW_EVENTS_READ: Permission = Permission {
        name: "sql.raw_events.read",
        description: "Read the raw event tables (bronze_events, dead letters) in SQL",
        roles: &[AUDITOR],
    };
    pub static REPORTS_DEFINITION_READ: Permission = Permission {
        name: "reports.definition.read",
        description: "List and read report definitions",
        roles: &[FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
    };
    pub static REPORTS_DEFINITION_WRITE: Permission = Permission {
        name: "reports.definition.write",
        description: "Create, replace and delete report definitions and their schedules",
        roles: &[FINANCE_MANAGER],
    };
    pub static REPORTS_RUN: Permission = Permission {
        name: "reports.run.write",
        description: "Start a report run",
        roles: &[FINANCE_MANAGER, ACCOUNTANT, ANALYST],
    };
    pub static REPORTS_RUN_READ: Permission = Permission {
        name: "reports.run.read",
        description: "Read report runs and download their outputs",
        roles: &[FINANCE_MANAGER, ACCOUNTANT, ANALYST, AUDITOR],
    };
    pub static SUSPENSE_READ: Permission = Permission {
        name: "platform.suspense.read",
        description: "List reactions held in suspense",
        roles: &[FINANCE_MANAGER, ACCOUNTANT, AUDITOR],
    };
    pub static SUSPENSE_RETRY: Permission = Permission {
        name: "platform.suspense.retry",
        description: "Retry a reaction held in suspense",
        roles: &[FINANCE_MANAGER],
    };
    pub static USERS_READ: Permission = Permission {
        name: "admin.users.read",
        description: "List users and their role assignments",
        roles: &[AUDITOR],
    };
    pub static USERS_WRITE: Permission = Permission {
        name: "admin.users.write",
        description: "Create, change and lock users; assign and revoke roles in the company",
        roles: &[],
    };

    pub static ALL: [&Permission; 10] = [
        &SQL_READ,
        &RAW_EVENTS_READ,
        &REPORTS_DEFINITION_READ,
        &REPORTS_DEFINITION_WRITE,
        &REPORTS_RUN,
        &REPORTS_RUN_READ,
        &SUSPENSE_READ,
        &SUSPENSE_RETRY,
        &USERS_READ,
        &USERS_WRITE,
    ];
}

/// Every permission of the installation, and what each built-in role holds.
#[derive(Debug, Clone)]
pub struct Catalog {
    permissions: Vec<&'static Permission>,
}

impl Catalog {
    pub fn new(permissions: impl IntoIterator<Item = &'static Permission>) -> Catalog {
        let mut permissions: Vec<&'static Permission> = permissions.into_iter().collect();
        permissions.sort_by_key(|p| p.name);
        permissions.dedup_by_key(|p| p.name);
        Catalog { permissions }
    }

    pub fn permissions(&self) -> &[&'static Permission] {
        &self.permissions
    }

    pub fn is_role(name: &str) -> bool {
        role::BUILT_IN.contains(&name)
    }

    /// The built-in roles holding `permission` (the administrator first: it holds all).
    pub fn roles_holding(&self, permission: &Permission) -> Vec<&'static str> {
        std::iter::once(role::ADMINISTRATOR)
            .chain(permission.roles.iter().copied())
            .collect()
    }

    /// The permissions a built-in role holds (none for an unknown name).
    pub fn role_permissions(&self, role_name: &str) -> BTreeSet<&'static str> {
        self.permissions
            .iter()
            .filter(|p| role_name == role::ADMINISTRATOR || p.roles.contains(&role_name))
            .map(|p| p.name)
            .collect()
    }

    /// The grants of role assignments: (company, role) pairs.
    pub fn grants<'a>(&self, assignments: impl IntoIterator<Item = (&'a str, &'a str)>) -> Grants {
        let mut grants: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
        for (company, role_name) in assignments {
            grants
                .entry(company.to_owned())
                .or_default()
                .extend(self.role_permissions(role_name));
        }
        Grants(grants)
    }
}

/// Permissions per company (`*`: every company).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(pub BTreeMap<String, BTreeSet<&'static str>>);

/// The companies a caller may act in with one permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompanyScope {
    All,
    Only(BTreeSet<String>),
}

impl CompanyScope {
    pub fn includes(&self, company: &str) -> bool {
        match self {
            CompanyScope::All => true,
            CompanyScope::Only(companies) => companies.contains(company),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    /// The access token's id (`jti`), to revoke it at logout; `None` for an external token.
    pub token_id: Option<String>,
    /// The login session the token belongs to (revoked with it at logout).
    pub session: Option<String>,
    /// When the access token expires (seconds since the epoch).
    pub token_expires_at: Option<i64>,
    pub grants: Arc<Grants>,
}

impl Caller {
    pub fn may(&self, permission: &Permission, company: &str) -> bool {
        [company, ANY_COMPANY].iter().any(|c| {
            self.grants
                .0
                .get(*c)
                .is_some_and(|p| p.contains(permission.name))
        })
    }

    pub fn may_somewhere(&self, permission: &Permission) -> bool {
        self.grants.0.values().any(|p| p.contains(permission.name))
    }

    pub fn scope(&self, permission: &Permission) -> CompanyScope {
        if self
            .grants
            .0
            .get(ANY_COMPANY)
            .is_some_and(|p| p.contains(permission.name))
        {
            return CompanyScope::All;
        }
        CompanyScope::Only(
            self.grants
                .0
                .iter()
                .filter(|(_, p)| p.contains(permission.name))
                .map(|(c, _)| c.clone())
                .collect(),
        )
    }

    /// 403 naming the permission unless the caller holds it in `company`.
    pub fn require(&self, permission: &Permission, company: &str) -> Result<(), ApiError> {
        if self.may(permission, company) {
            Ok(())
        } else {
            Err(forbidden(permission, Some(company)))
        }
    }
}

/// 403: the caller lacks `permission` (in `company`).
pub fn forbidden(permission: &Permission, company: Option<&str>) -> ApiError {
    let detail = match company {
        Some(company) => format!(
            "this request needs the permission {} in company {company}",
            permission.name
        ),
        None => format!("this request needs the permission {}", permission.name),
    };
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the request carries no bearer token")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token was revoked")]
    Revoked,
    #[error("user {0} is locked or unknown")]
    UserInactive(String),
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        if let AuthError::Unavailable(cause) = &error {
            tracing::warn!(error = %cause, "authentication unavailable");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication_unavailable",
                "Authentication unavailable",
                "the caller could not be authenticated now; retry later",
            );
        }
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            error.to_string(),
        )
    }
}

/// A 401 problem with the `WWW-Authenticate` challenge of RFC 6750.
pub fn unauthorized(error: AuthError) -> Response {
    let challenge = match &error {
        AuthError::Missing => "Bearer realm=\"tributary\"".to_owned(),
        AuthError::Unavailable(_) => return ApiError::from(error).into_response(),
        other => format!(
            "Bearer realm=\"tributary\", error=\"invalid_token\", error_description=\"{}\"",
            other.to_string().replace(['"', '\\'], "'")
        ),
    };
    let mut response = ApiError::from(error).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Verifies bearer tokens: the identity context's, or an external identity provider's.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, token: &str) -> Result<Caller, AuthError>;
}

/// SCRAM-SHA-256 iterations of the SQL endpoint's secrets (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A user's SCRAM-SHA-256 secret: the salt and the salted password (RFC 5802's `Hi`).
pub struct ScramSecret {
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

/// How the SQL wire endpoint logs the installation's users in.
#[async_trait::async_trait]
pub trait WireLogins: Authenticator {
    /// The user's SCRAM secret; `None` when they are unknown, locked or without a password,
    /// or have not used their password since it was set before secrets were kept.
    async fn scram_secret(&self, user: &str) -> Result<Option<ScramSecret>, AuthError>;
    /// Whether `password` is the user's password or one of their access tokens.
    async fn check_password(&self, user: &str, password: &str) -> Result<bool, AuthError>;
    /// The user with their grants now; fails when they are locked or unknown.
    async fn caller_named(&self, user: &str) -> Result<Caller, AuthError>;
}

/// The request extension the authentication layer adds.
#[derive(Clone)]
pub struct AuthenticatorExtension(pub Arc<dyn Authenticator>);

/// Middleware: makes the installation's authenticator available to the route guards.
pub async fn with_authenticator(
    authenticator: Arc<dyn Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    request
        .extensions_mut()
        .insert(AuthenticatorExtension(authenticator));
    next.run(request).await
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone (log in, health).
    Public,
    /// Any authenticated user (their own profile, password, logout).
    Authenticated,
    /// A user holding the permission (in the company the request concerns).
    Permission(&'static Permission),
}

impl Access {
    pub fn permission(&self) -> Option<&'static Permission> {
        match self {
            Access::Permission(permission) => Some(permission),
            _ => None,
        }
    }
}

/// The authenticated caller and the route's permission, for the handler.
#[derive(Debug, Clone)]
pub struct Auth {
    pub caller: Caller,
    pub permission: Option<&'static Permission>,
}

impl Auth {
    /// 403 unless the caller holds the route's permission in `company`.
    pub fn company(&self, company: &str) -> Result<(), ApiError> {
        match self.permission {
            Some(permission) => self.caller.require(permission, company),
            None => Ok(()),
        }
    }

    /// The companies the route's permission covers for this caller.
    pub fn scope(&self) -> CompanyScope {
        match self.permission {
            Some(permission) => self.caller.scope(permission),
            None => CompanyScope::All,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Auth>()
            .cloned()
            .ok_or_else(|| unauthorized(AuthError::Missing))
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The guard of one route.
async fn guard(access: Access, mut request: Request, next: Next) -> Response {
    if let Access::Public = access {
        return next.run(request).await;
    }
    let Some(AuthenticatorExtension(authenticator)) = request
        .extensions()
        .get::<AuthenticatorExtension>()
        .cloned()
    else {
        return ApiError::internal(&"a route guard ran without the authentication layer")
            .into_response();
    };
    let Some(token) = bearer_token(request.headers()) else {
        return unauthorized(AuthError::Missing);
    };
    let caller = match authenticator.authenticate(token).await {
        Ok(caller) => caller,
        Err(error) => return unauthorized(error),
    };
    if let Some(RateLimiterExtension(limiter)) = request.extensions().get::<RateLimiterExtension>()
        && let Admission::Limited { retry_after } = limiter.admit(&caller.user).await
    {
        return too_many_requests(&caller.user, limiter.limit(), retry_after);
    }
    let permission = access.permission();
    if let Some(permission) = permission {
        if !caller.may_somewhere(permission) {
            return forbidden(permission, None).into_response();
        }
        if let Some(company) = queried_company(request.uri().query())
            && let Err(error) = caller.require(permission, &company)
        {
            return error.into_response();
        }
    }
    request.extensions_mut().insert(Auth { caller, permission });
    next.run(request).await
}

/// 429 with `Retry-After` (whole seconds, rounded up).
fn too_many_requests(user: &str, limit: RateLimit, retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests",
        format!(
            "user {user} made more than {} requests in {} s; retry after {seconds} s",
            limit.requests,
            limit.window.as_secs()
        ),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The `company` query parameter, when the request has one.
fn queried_company(query: Option<&str>) -> Option<String> {
    url_pairs(query?)
        .find(|(name, _)| name == "company")
        .map(|(_, value)| value)
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        Some((percent_decode(name)?, percent_decode(value)?))
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A route as declared: method, path, what it asks of its caller, and the JSON Schema of
/// the body it accepts (for the OpenAPI document).
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub request: Option<RequestSchema>,
}

/// Adds a body type's schema to a generator, answering a reference to it.
pub type RequestSchema = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

fn request_schema<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// Routes that each declare their access where they are declared: the only way a context
/// adds a route, so a route without a permission does not compile.
pub struct Routes<S = crate::Platform> {
    router: Router<S>,
    routes: Vec<RouteInfo>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Routes<S> {
        Routes {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    /// Adds `handler` for `method` on `path`, guarded by `access`.
    pub fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = axum::routing::MethodFilter::try_from(method.clone())
            .unwrap_or(axum::routing::MethodFilter::GET);
        let method_router: MethodRouter<S> =
            on(filter, handler).route_layer(axum::middleware::from_fn(
                move |request: Request, next: Next| guard(access, request, next),
            ));
        self.router = self.router.route(path, method_router);
        self.routes.push(RouteInfo {
            method,
            path,
            access,
            request: None,
        });
        self
    }

    /// The JSON body the route declared last accepts, for the OpenAPI document.
    pub fn accepts<B: schemars::JsonSchema>(mut self) -> Self {
        if let Some(last) = self.routes.last_mut() {
            last.request = Some(request_schema::<B>);
        }
        self
    }

    pub fn get<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.route(Method::GET, path, access, handler)
    }

    pub fn post<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.route(Method::POST, path, access, handler)
    }

    pub fn put<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.route(Method::PUT, path, access, handler)
    }

    pub fn patch<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.route(Method::PATCH, path, access, handler)
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.route(Method::DELETE, path, access, handler)
    }

    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.routes.extend(other.routes);
        self
    }

    /// The routes as declared.
    pub fn info(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// The router with its state given, and the routes as declared.
    pub fn with_state<S2>(self, state: S) -> (Router<S2>, Vec<RouteInfo>) {
        (self.router.with_state(state), self.routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static READ: Permission = Permission {
        name: "test.thing.read",
        description: "",
        roles: &[role::AUDITOR],
    };
    static WRITE: Permission = Permission {
        name: "test.thing.write",
        description: "",
        roles: &[role::ACCOUNTANT],
    };

    fn caller(assignments: &[(&str, &str)]) -> Caller {
        let catalog = Catalog::new([&READ, &WRITE]);
        Caller {
            user: "u".into(),
            token_id: None,
            session: None,
            token_expires_at: None,
            grants: Arc::new(catalog.grants(assignments.iter().copied())),
        }
    }

    #[test]
    fn grants_hold_in_their_company_or_in_every_company_for_star() {
        let accountant_of_a = caller(&[("A", role::ACCOUNTANT)]);
        assert!(accountant_of_a.may(&WRITE, "A"));
        assert!(!accountant_of_a.may(&WRITE, "B"));
        assert!(!accountant_of_a.may(&READ, "A"));
        assert_eq!(
            accountant_of_a.scope(&WRITE),
            CompanyScope::Only(["A".to_owned()].into())
        );
        let admin = caller(&[(ANY_COMPANY, role::ADMINISTRATOR)]);
        assert!(admin.may(&WRITE, "B") && admin.may(&READ, "Z"));
        assert_eq!(admin.scope(&READ), CompanyScope::All);
        let error = accountant_of_a.require(&WRITE, "B").unwrap_err();
        assert_eq!(error.status, StatusCode::FORBIDDEN);
        assert!(error.detail.contains("test.thing.write in company B"));
    }

    #[test]
    fn the_company_query_parameter_is_decoded() {
        assert_eq!(
            queried_company(Some("a=1&company=AB%20C")),
            Some("AB C".into())
        );
        assert_eq!(queried_company(Some("companyx=1")), None);
        assert_eq!(queried_company(Some("company=%zz")), None);
    }
}
