//! A bounded context as a module: the one description the binary needs of it.
//!
//! Like an Odoo addon's manifest: routes, event types, source relations, lake tables, pipeline
//! SQL, views and start-up work, declared in one `module()` per context crate. The binary's
//! list of modules is the only list of contexts; Kafka topics, routes, the lake catalog, the
//! pipeline runners and the fixture check all derive from it.

use crate::aggregate::Aggregate;
use crate::event::{DomainEvent, check_fixtures};
use crate::lake::{LakeReader, LakeTable, PipelineSql, Relation, ViewSql};
use crate::store::EventStore;
use axum::Router;
use axum::extract::FromRef;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

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
    /// The lake reader, or 503 when this process does not serve queries.
    pub fn lake(&self) -> Result<&dyn LakeReader, crate::http::ApiError> {
        self.lake.as_deref().ok_or_else(|| {
            crate::http::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "query_role_not_running",
                "Queries not served here",
                "this process does not run the query role; ask one that does",
            )
        })
    }
}

/// Installation settings modules read at start-up.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Company created on first start when none exists: (code, name).
    pub default_company: Option<(String, String)>,
}

/// Work a module does once when an api role starts (e.g. create the default company).
pub type StartHook =
    fn(Platform) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

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
    /// Command routes (the api role).
    pub commands: fn() -> Router<Platform>,
    /// Read routes answered from the lake (the query role).
    pub reads: fn() -> Router<Platform>,
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
}

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
            commands: Router::new,
            reads: Router::new,
            events: Vec::new(),
            fixtures_dir,
            relations: Vec::new(),
            tables: Vec::new(),
            pipelines: Vec::new(),
            views: Vec::new(),
            reactors: Vec::new(),
            on_start: None,
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
