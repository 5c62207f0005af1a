//! A bounded context as a module: the one description the binary needs of it.
//!
//! Like an Odoo addon's manifest: routes, event types, source relations, lake tables, pipeline
//! SQL, views and start-up work, declared in one `module()` per context crate. The binary's
//! list of modules is the only list of contexts; Kafka topics, routes, the lake catalog, the
//! pipeline runners and the fixture check all derive from it.

use crate::aggregate::Aggregate;
use crate::auth::{Auth, Permission, Routes};
use crate::command::Checks;
use crate::event::{DomainEvent, check_fixtures};
use crate::http::ApiError;
use crate::lake::{LakeReader, LakeTable, LakeWriter, PipelineSql, Relation, ViewSql};
use crate::master::{AccountState, Books, CompanyCode, Currency, PeriodState};
use crate::sealed::FieldKeys;
use crate::store::EventStore;
use axum::extract::FromRef;
use chrono::NaiveDate;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

/// `?company=` of a read: the company it is about (the installation's default when left out).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CompanyQuery {
    pub company: Option<String>,
}

/// What every context's routes get as state.
#[derive(Clone)]
pub struct Platform {
    pub store: EventStore,
    /// The lake's SQL, where this process serves queries (the query role).
    pub lake: Option<Arc<dyn LakeReader>>,
    pub settings: Arc<Settings>,
}

impl FromRef<Platform> for EventStore {
    fn from_ref(platform: &Platform) -> EventStore {
        platform.store.clone()
    }
}

impl Platform {
    /// Appends a context's decision with the request's idempotency record, in the company of
    /// its outcome, and answers `status` with the JSON `body` makes of the outcome.
    pub async fn commit<O: crate::command::OfCompany, B: serde::Serialize>(
        &self,
        context: &str,
        request: crate::command::CommandRequest,
        decision: crate::store::Decision<O>,
        status: axum::http::StatusCode,
        body: impl FnOnce(&O) -> B,
    ) -> Result<axum::response::Response, ApiError> {
        request
            .commit_outcome(&self.store, context, decision, status, body)
            .await
    }

    /// Refuses (422 naming `field`) a posting date the books would refuse: unknown company,
    /// no period defined for it, or its period closed. Without books every date passes.
    pub async fn check_posting_date(
        &self,
        company: &CompanyCode,
        date: NaiveDate,
        field: &str,
    ) -> Result<(), ApiError> {
        let Some(books) = &self.settings.books else {
            return Ok(());
        };
        let state = books
            .period_state(&self.store, company, date)
            .await
            .map_err(|error| match error {
                crate::aggregate::RepositoryError::Store(error) => ApiError::from(error),
                other => ApiError::internal(&other),
            })?;
        let period = crate::master::Period::of(date);
        match state {
            PeriodState::Open => Ok(()),
            PeriodState::NoCompany => Err(ApiError::field(
                "company",
                "company_not_found",
                format!("company {company} does not exist"),
            )),
            PeriodState::NotDefined => Err(ApiError::field(
                field,
                "period_not_defined",
                format!("no fiscal period is defined for {period} in company {company}"),
            )),
            PeriodState::Closed => Err(ApiError::field(
                field,
                "period_closed",
                format!("period {period} of company {company} is closed for posting"),
            )),
        }
    }

    /// Refuses (422 naming `field`) an account the books would refuse a posting in `currency`
    /// on: unknown, blocked, or kept in another currency. Without books every account passes.
    pub async fn check_account(
        &self,
        company: &CompanyCode,
        account: &str,
        currency: &Currency,
        field: &str,
    ) -> Result<(), ApiError> {
        let Some(books) = &self.settings.books else {
            return Ok(());
        };
        let state = books
            .account_state(&self.store, company, account)
            .await
            .map_err(|error| match error {
                crate::aggregate::RepositoryError::Store(error) => ApiError::from(error),
                other => ApiError::internal(&other),
            })?;
        match state {
            AccountState::Usable { currency: kept } if kept == *currency => Ok(()),
            AccountState::Usable { currency: kept } => Err(ApiError::field(
                field,
                "currency_mismatch",
                format!("account {account} is kept in {kept}, not {currency}"),
            )),
            AccountState::Missing => Err(ApiError::field(
                field,
                "account_not_found",
                format!("account {account} does not exist in company {company}"),
            )),
            AccountState::Blocked => Err(ApiError::field(
                field,
                "account_blocked",
                format!("account {account} is blocked for posting"),
            )),
        }
    }

    /// The company a command names, or the installation's default, checked into `checks`;
    /// 403 before anything is looked up when the caller may not act there.
    pub fn requested_company(
        &self,
        checks: &mut Checks,
        auth: &Auth,
        requested: Option<&str>,
    ) -> Result<Option<CompanyCode>, ApiError> {
        let code = requested.map(str::to_owned).or_else(|| {
            self.settings
                .default_company
                .as_ref()
                .map(|(code, _)| code.clone())
        });
        let company = match code {
            Some(code) => checks.check("company", "company_code", CompanyCode::parse(&code)),
            None => {
                checks.fail(
                    "company",
                    "required",
                    "name the company this request is for",
                );
                None
            }
        };
        if let Some(company) = &company {
            auth.company(company.as_str())?;
        }
        Ok(company)
    }

    /// The company a read names in `?company=` (or the default), which the caller must hold
    /// the route's permission in.
    pub fn queried_company(
        &self,
        auth: &Auth,
        query: &CompanyQuery,
    ) -> Result<CompanyCode, ApiError> {
        let mut checks = Checks::default();
        let company = self.requested_company(&mut checks, auth, query.company.as_deref())?;
        checks.finish()?;
        company.ok_or_else(|| ApiError::field("company", "required", "missing"))
    }

    /// The keys sensitive fields are sealed with (500 when the installation has none).
    pub fn field_keys(&self) -> Result<&FieldKeys, ApiError> {
        self.settings
            .field_keys
            .as_ref()
            .ok_or_else(|| ApiError::internal(&"the installation has no field keys"))
    }

    /// The clear value of a sealed field for a caller holding `permission` in `company`
    /// (`None` for others, who see its masked form).
    pub fn open_sealed(
        &self,
        auth: &Auth,
        permission: &Permission,
        company: &CompanyCode,
        field: &str,
        sealed: Option<&crate::sealed::Sealed>,
    ) -> Result<Option<String>, ApiError> {
        match sealed {
            Some(sealed) if auth.caller.may(permission, company.as_str()) => Ok(Some(
                self.field_keys()?
                    .open(field, &sealed.sealed)
                    .map_err(|e| ApiError::internal(&e))?,
            )),
            _ => Ok(None),
        }
    }

    /// The lake reader, or 503 when this process does not serve queries.
    pub fn lake(&self) -> Result<&dyn LakeReader, ApiError> {
        self.lake.as_deref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "query_role_not_running",
                "Queries not served here",
                "this process does not run the query role; ask one that does",
            )
        })
    }
}

/// What the installation gives every module: settings and the published query interfaces.
#[derive(Clone, Default)]
pub struct Settings {
    /// Company created on first start when none exists: (code, name).
    pub default_company: Option<(String, String)>,
    /// What the books allow (finance's), when the installation keeps books.
    pub books: Option<Arc<dyn Books>>,
    /// The keys sensitive fields are sealed with (always set by the installation).
    pub field_keys: Option<crate::sealed::FieldKeys>,
    /// Materials' availability (in process, or a gRPC client of the materials service).
    pub availability: Option<Arc<dyn crate::availability::Availability>>,
    /// What contexts keep per installation for their own routes (in-memory indexes), by type:
    /// see [`Module::extensions`].
    pub extensions: axum::http::Extensions,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("default_company", &self.default_company)
            .field("books", &self.books.is_some())
            .field("field_keys", &self.field_keys)
            .field("availability", &self.availability.is_some())
            .finish()
    }
}

/// Work a module does once when an api role starts (e.g. create the default company).
pub type StartHook =
    fn(Platform) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// What a context's worker is given: the store, the lake to write its tables, the
/// installation's settings, and the signal to stop.
#[derive(Clone)]
pub struct WorkerContext {
    pub store: EventStore,
    pub lake: Arc<dyn LakeWriter>,
    pub settings: Arc<Settings>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Work a context runs in the pipelines role beside its SQL pipelines (planning runs and net
/// change, which compute rather than aggregate); it returns when `shutdown` turns true.
pub type Worker = fn(WorkerContext) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The event types of one aggregate and how to check their golden fixtures.
#[derive(Clone, Copy)]
pub struct EventSet {
    pub aggregate_type: &'static str,
    pub event_types: fn() -> &'static [&'static str],
    pub current_version: fn(&str) -> i32,
    /// Problems with the fixtures under `<dir>/<aggregate type>/`.
    pub check_fixtures: fn(&Path) -> Vec<String>,
}

impl EventSet {
    pub fn of<A: Aggregate>() -> EventSet {
        EventSet {
            aggregate_type: A::TYPE,
            event_types: <A::Event as DomainEvent>::event_types,
            current_version: <A::Event as DomainEvent>::current_version,
            check_fixtures: check_fixtures::<A::Event>,
        }
    }
}

/// A bounded context's manifest.
pub struct Module {
    /// The context's name: the prefix of its aggregate types and of its Kafka topic.
    pub name: &'static str,
    pub description: &'static str,
    /// Contexts whose published events or tables this one reads.
    pub depends_on: &'static [&'static str],
    /// Contexts whose events this one's commands append in their own transaction (a delivery
    /// appends materials' goods issue): their events must be kept in the same database
    /// (`--context-database-url`).
    pub appends_with: &'static [&'static str],
    /// Command routes (the api role), each with its permission.
    pub commands: fn() -> Routes,
    /// Read routes answered from the lake (the query role), each with its permission.
    pub reads: fn() -> Routes,
    /// The permissions the context's routes and tables check, with the built-in roles holding
    /// each.
    pub permissions: Vec<&'static Permission>,
    pub events: Vec<EventSet>,
    /// `fixtures/events` of the context crate.
    pub fixtures_dir: &'static str,
    pub relations: Vec<Arc<dyn Relation>>,
    pub tables: Vec<LakeTable>,
    pub pipelines: Vec<PipelineSql>,
    pub views: Vec<ViewSql>,
    /// Reactions to other contexts' events (finance's automatic postings, …).
    pub reactors: Vec<Arc<dyn crate::reactor::Reactor>>,
    pub on_start: Option<StartHook>,
    /// What the books allow, when this context keeps them (finance).
    pub books: Option<Arc<dyn Books>>,
    /// Its availability query over a store, when this context keeps stock (materials).
    pub availability: Option<AvailabilityFactory>,
    /// Puts what the context's routes share per installation into the settings' extensions.
    pub extensions: Option<fn(EventStore, &mut axum::http::Extensions)>,
    /// Background work of the pipelines role (see [`Worker`]).
    pub workers: Vec<Worker>,
    /// The context's business metrics of its events (journal entries posted, goods movements),
    /// recorded by the process that appends them (see [`crate::telemetry::observe_appended`]).
    pub metrics: Option<fn(&crate::EventEnvelope)>,
}

/// Makes a context's in-process availability query over the installation's event store.
pub type AvailabilityFactory = fn(EventStore) -> Arc<dyn crate::availability::Availability>;

impl Module {
    /// A module with nothing declared yet.
    pub fn new(
        name: &'static str,
        description: &'static str,
        fixtures_dir: &'static str,
    ) -> Module {
        Module {
            name,
            description,
            depends_on: &[],
            appends_with: &[],
            commands: Routes::new,
            reads: Routes::new,
            permissions: Vec::new(),
            events: Vec::new(),
            fixtures_dir,
            relations: Vec::new(),
            tables: Vec::new(),
            pipelines: Vec::new(),
            views: Vec::new(),
            reactors: Vec::new(),
            on_start: None,
            books: None,
            availability: None,
            extensions: None,
            workers: Vec::new(),
            metrics: None,
        }
    }

    /// Every problem with the golden fixtures of every event type and version.
    pub fn fixture_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for set in &self.events {
            let prefix = format!("{}.", self.name);
            if !set.aggregate_type.starts_with(&prefix) {
                problems.push(format!(
                    "aggregate type {} of context {} is not qualified as {prefix}<name>",
                    set.aggregate_type, self.name
                ));
            }
            let dir = Path::new(self.fixtures_dir).join(set.aggregate_type);
            problems.extend((set.check_fixtures)(&dir));
        }
        problems
    }
}
