//! Tributary in one process: the finance service, the pipeline runner, and the SQL/read APIs.
//!
//! ```text
//!  start(config) ─► event store (SQLite file | PostgreSQL) ─► default company
//!                ─► lake (Delta tables under <data-dir>/lake) ─► pipeline runner task
//!                ─► HTTP: /healthz, finance /api/v1/*, /api/v1/sql, balances, trial balance
//! ```
//! `main.rs` only parses flags and calls [`start`]; tests and the benchmark call it too.

/// `print!` for progress shown before a step's result: flushed at once, since stdout is
/// line-buffered and a watcher (a person, a script timing the phases) would otherwise see the
/// step only when it ended.
macro_rules! progress {
    ($($arg:tt)*) => {{
        print!($($arg)*);
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }};
}

pub mod bench;
pub mod client;
pub mod cluster;
pub mod databases;
pub mod generate;
pub mod grafana;
pub mod lake_cli;
pub mod maintenance;
pub mod modules;
pub mod platform;
pub mod ratelimit;
pub mod rebuild;
pub mod suspense;
pub mod telemetry;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_identity::{Identity, IdentityOptions};
use tributary_ingest::bronze::{BronzeIngest, BronzeOptions};
use tributary_ingest::follower::{FollowerOptions, ReactorRunner};
use tributary_ingest::relay::{Relay, RelayOptions};
use tributary_ingest::{EventSource, KafkaEvents};
use tributary_kernel::auth::{Access, Authenticator, RouteInfo, Routes};
use tributary_kernel::ratelimit::{LocalLimiter, RateLimit, RateLimiter};
use tributary_kernel::sealed::FieldKeys;
use tributary_kernel::store::{EventStore, GroupCommitOptions};
use tributary_kernel::{Module, Platform};
use tributary_lakehouse::wire::{WireOptions, WireServer};
use tributary_lakehouse::{Lake, QueryLimits, QueryService};
use tributary_pipelines::{Pipelines, Runner, RunnerOptions};
use tributary_reports::statement::Structure;
use tributary_reports::{ReportOptions, Reports};

/// Largest request body accepted (a 1,000-line entry is about 200 KB).
pub const REQUEST_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Consumer group of the pipeline runners reading Kafka.
pub const PIPELINES_GROUP: &str = "tributary-pipelines";
/// Partitions of the topics Tributary creates by default (pipeline workers and reactor processes
/// scale up to this many; `--topic-partitions` sets another count).
pub const KAFKA_PARTITIONS: i32 = 3;
/// How long a Kafka read waits to fill a micro-batch.
pub const KAFKA_BATCH_WAIT_MS: u64 = 200;
/// Longest an HTTP request may take by default (queries have their own, shorter limit).
pub const HTTP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
/// Database connections per process.
pub const DATABASE_CONNECTIONS_MAX: u32 = 16;

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    /// `postgres://…` for production; default: SQLite file `<data_dir>/events.db`.
    pub database_url: Option<String>,
    /// Contexts whose events are kept in a database of their own, `(context, url)`
    /// (`--context-database-url`); every other context on `database_url`.
    pub context_database_urls: Vec<(String, String)>,
    /// Lake location; default `<data_dir>/lake`.
    pub lake: Option<String>,
    /// Company created on first start when none exists.
    pub default_company: (String, String),
    pub query_limits: QueryLimits,
    /// The Ballista cluster the query role sends lake queries to (`--ballista`); `None`: they
    /// run in this process.
    pub ballista: Option<tributary_lakehouse::cluster::Cluster>,
    pub runner: RunnerOptions,
    /// What this process runs; `up` runs every role.
    pub roles: Roles,
    /// Kafka bootstrap servers; with them the relay and ingest roles run.
    pub kafka_brokers: Option<String>,
    /// Prefix of every Kafka topic name (empty in production).
    pub topic_prefix: String,
    /// Partitions of the topics this process creates (existing topics keep theirs).
    pub topic_partitions: i32,
    /// Static Kafka group membership: a stable id per process (e.g. the pod name).
    pub instance_id: Option<String>,
    /// The PostgreSQL wire protocol endpoint of the query role; `None`: not served.
    pub pg: Option<WireOptions>,
    /// Compaction of the lake's small files by the writer roles; `None`: off.
    pub compaction: Option<maintenance::CompactionOptions>,
    /// Reports (definitions, runs, scheduler) in the query role; `None`: off.
    pub reports: Option<ReportsConfig>,
    /// The contexts this process runs (names of [`modules::all`]); `None`: every one.
    pub contexts: Option<Vec<String>>,
    /// Logins, tokens, the first administrator, an external identity provider.
    pub identity: IdentityOptions,
    /// The keys sensitive fields are sealed with (`TRIBUTARY_FIELD_KEYS`: `id=base64,…`, the
    /// first sealing); `None`: a key generated and kept in the event store's database.
    pub field_keys: Option<String>,
    /// Longest an HTTP request may take before it is answered 503.
    pub http_timeout: Duration,
    /// Requests per user and window (429 past it); `None`: no limit.
    pub rate_limit: Option<RateLimit>,
    /// Where the rate limit's counts live (`redis://…`), shared by every process; `None`: in
    /// each process.
    pub redis_url: Option<String>,
    /// How long an Idempotency-Key is remembered (then it may be used again).
    pub idempotency_ttl: Duration,
    /// Where this process serves materials' availability over gRPC (when it runs materials),
    /// for sales processes elsewhere; `None`: not served.
    pub grpc_addr: Option<SocketAddr>,
    /// Materials' availability service (`http://host:port`) sales asks instead of reading the
    /// event store in process, when materials runs as a separate service.
    pub materials_url: Option<String>,
    /// How concurrent appends share event store transactions.
    pub group_commit: GroupCommitOptions,
}

/// The group commit's flags, as `serve`/`up` and the bench take them.
#[derive(clap::Args, Clone, Debug)]
pub struct GroupCommitArgs {
    /// Commands appended in one event store transaction at most (group commit); 1 appends
    /// each alone.
    #[arg(long, env = "TRIBUTARY_GROUP_COMMIT_MAX", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub group_commit_max: u16,
    /// Microseconds the group commit waits for more commands after the first (0: it takes
    /// the commands already waiting).
    #[arg(long, env = "TRIBUTARY_GROUP_COMMIT_WINDOW_US", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub group_commit_window_us: u64,
    /// Group transactions collected and committed at once (each on its own connection).
    #[arg(long, env = "TRIBUTARY_GROUP_COMMIT_LEADERS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub group_commit_leaders: u16,
    /// While another group is being committed, a group of fewer commands than this waits for
    /// that commit to end or for this many commands (0: it never waits).
    #[arg(long, env = "TRIBUTARY_GROUP_COMMIT_GATHER", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub group_commit_gather: u16,
}

impl GroupCommitArgs {
    pub fn options(&self) -> GroupCommitOptions {
        GroupCommitOptions {
            commands_max: usize::from(self.group_commit_max),
            window: Duration::from_micros(self.group_commit_window_us),
            leaders: usize::from(self.group_commit_leaders),
            gather: usize::from(self.group_commit_gather),
        }
    }
}

/// The default request limit: 6,000 per user and minute (100 a second).
pub const RATE_LIMIT_DEFAULT: RateLimit = RateLimit {
    requests: 6_000,
    window: Duration::from_secs(60),
};
/// How long Idempotency-Keys are kept by default.
pub const IDEMPOTENCY_TTL_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// Where report outputs go and how statements are laid out.
#[derive(Debug, Clone, Default)]
pub struct ReportsConfig {
    /// Local directory or `s3://bucket/prefix`; default `<data_dir>/reports`.
    pub outputs: Option<String>,
    /// A statement structure file (JSON, like `sql/reports/statement-structure.json`);
    /// default: by account type.
    pub structure: Option<PathBuf>,
    /// How often the scheduler checks for due slots; default 1 s.
    pub tick: Option<Duration>,
}

/// The parts of Tributary one process can run; production scales them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    /// Commands over HTTP.
    pub api: bool,
    /// Event store to Kafka.
    pub relay: bool,
    /// Kafka to the bronze Delta tables.
    pub ingest: bool,
    /// The SQL pipelines keeping the lake's tables.
    pub pipelines: bool,
    /// SQL and read APIs over the lake (and the report API).
    pub query: bool,
    /// The modules' reactors (one context acting on another's events).
    pub reactors: bool,
    /// Scheduled and requested report runs.
    pub reports: bool,
}

impl Roles {
    pub const NAMES: [&'static str; 7] = [
        "api",
        "relay",
        "ingest",
        "pipelines",
        "query",
        "reactors",
        "reports",
    ];

    pub fn all() -> Roles {
        Roles {
            api: true,
            relay: true,
            ingest: true,
            pipelines: true,
            query: true,
            reactors: true,
            reports: true,
        }
    }

    /// Everything that runs without a broker: the embedded default.
    pub fn embedded() -> Roles {
        Roles {
            relay: false,
            ingest: false,
            ..Roles::all()
        }
    }

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "api" => &mut self.api,
            "relay" => &mut self.relay,
            "ingest" => &mut self.ingest,
            "pipelines" => &mut self.pipelines,
            "query" => &mut self.query,
            "reactors" => &mut self.reactors,
            "reports" => &mut self.reports,
            _ => return None,
        })
    }

    /// The names of the roles set, in [`Roles::NAMES`] order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut copy = *self;
        Roles::NAMES
            .into_iter()
            .filter(|name| copy.flag(name).is_some_and(|set| *set))
            .collect()
    }

    /// Parses a comma-separated list such as `api,query`.
    pub fn parse(list: &str) -> Result<Roles, String> {
        let mut roles = Roles::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some(flag) = roles.flag(name) else {
                return Err(format!(
                    "unknown role {name:?}; roles are {}",
                    Roles::NAMES.join(", ")
                ));
            };
            *flag = true;
        }
        if roles == Roles::default() {
            return Err(format!(
                "name at least one role of {}",
                Roles::NAMES.join(", ")
            ));
        }
        Ok(roles)
    }
}

impl Config {
    pub fn embedded(data_dir: PathBuf, http_addr: SocketAddr) -> Config {
        Config {
            data_dir,
            http_addr,
            database_url: None,
            context_database_urls: Vec::new(),
            lake: None,
            default_company: ("MAIN".into(), "Main company".into()),
            query_limits: QueryLimits::default(),
            ballista: None,
            runner: RunnerOptions::default(),
            roles: Roles::embedded(),
            kafka_brokers: None,
            topic_prefix: String::new(),
            topic_partitions: KAFKA_PARTITIONS,
            instance_id: None,
            pg: Some(WireOptions::embedded()),
            compaction: Some(maintenance::CompactionOptions::default()),
            reports: Some(ReportsConfig::default()),
            contexts: None,
            identity: IdentityOptions::default(),
            field_keys: None,
            http_timeout: HTTP_TIMEOUT_DEFAULT,
            rate_limit: Some(RATE_LIMIT_DEFAULT),
            redis_url: None,
            idempotency_ttl: IDEMPOTENCY_TTL_DEFAULT,
            group_commit: GroupCommitOptions::default(),
            grpc_addr: None,
            materials_url: None,
        }
    }

    pub fn database_url(&self) -> String {
        store_url(&self.data_dir, self.database_url.as_deref())
    }

    pub fn lake_location(&self) -> String {
        lake_location(&self.data_dir, self.lake.as_deref())
    }
}

/// The lake's location: `lake` when given, otherwise `<data_dir>/lake`.
pub fn lake_location(data_dir: &std::path::Path, lake: Option<&str>) -> String {
    lake.map_or_else(
        || data_dir.join("lake").display().to_string(),
        str::to_owned,
    )
}

/// How long the gRPC service's open connections may take to finish after a stop.
const GRPC_STOP_GRACE: Duration = Duration::from_secs(5);

/// A started Tributary: its address, handles, and how to stop it.
pub struct Running {
    /// The HTTP address (the configured one, unbound, when no role serves HTTP).
    pub addr: SocketAddr,
    /// The bound PostgreSQL wire protocol address, when the query role serves it.
    pub pg_addr: Option<SocketAddr>,
    /// The bound address of materials' gRPC availability service, when served here.
    pub grpc_addr: Option<SocketAddr>,
    pub store: EventStore,
    pub lake: Lake,
    pub query: QueryService,
    /// Users, logins and the authenticator of every route.
    pub identity: Identity,
    /// Every route this process serves, with what it asks of its caller.
    pub routes: Vec<RouteInfo>,
    /// The reports service, when the query role runs it.
    pub reports: Option<Reports>,
    /// The pipeline runners this process runs on the embedded feed: the feed (of the
    /// database keeping the context's events), and the cursor up to which every table of the
    /// context is current.
    pipelines_on_feed: Vec<(EventStore, watch::Receiver<i64>)>,
    /// The reactors this process runs on the embedded feed: follower name, the feed it reads,
    /// and the feed position up to which it handled every event (when this process holds its
    /// lease).
    reactors_on_feed: Vec<(String, EventStore, watch::Receiver<i64>)>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests, lets in-flight ones and the current pipeline batch finish.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Waits until every reactor this process runs on the embedded feed has read every event
    /// stored (its own reactions' events too), or the timeout.
    pub async fn wait_for_reactors(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let follow = tributary_kernel::reactor::Follow { store: &self.store };
        let mut appended = self.store.appended();
        let caught_up = async {
            loop {
                let mut behind = false;
                for (name, feed, progress) in &self.reactors_on_feed {
                    let head = feed.head_cursor().await?;
                    if *progress.borrow() >= head {
                        continue;
                    }
                    // Another process may hold the reactor's lease: its saved position (at
                    // least every second while it follows).
                    let at = follow.position(name, tributary_ingest::FEED_STREAM).await?;
                    behind |= at.unwrap_or(0) < head;
                }
                if !behind {
                    return Ok::<(), tributary_kernel::StoreError>(());
                }
                // Woken by the next append (a reaction's too), or soon.
                let _ = tokio::time::timeout(Duration::from_millis(20), appended.changed()).await;
            }
        };
        tokio::time::timeout(timeout, caught_up)
            .await
            .context("while waiting for the reactors to catch up")??;
        Ok(())
    }

    /// Waits until the pipelines this process runs on the embedded feed have processed every
    /// event stored so far, or the timeout.
    pub async fn wait_for_pipelines(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let caught_up = async {
            for (feed, progress) in &self.pipelines_on_feed {
                let head = feed.head_cursor().await?;
                progress.clone().wait_for(|cursor| *cursor >= head).await?;
            }
            Ok::<(), anyhow::Error>(())
        };
        tokio::time::timeout(timeout, caught_up)
            .await
            .context("while waiting for the pipelines to catch up")??;
        Ok(())
    }
}

/// Connects the event store, opens the lake, and starts the roles the config asks for.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    // Metrics recorded from here on are served at /metrics.
    telemetry::metrics_handle();
    let roles = config.roles;
    if (roles.relay || roles.ingest) && config.kafka_brokers.is_none() {
        anyhow::bail!("the relay and ingest roles need --kafka-brokers");
    }
    if let (true, Some(pg)) = (roles.query, &config.pg) {
        pg.validate()?;
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "while creating data directory {}",
            config.data_dir.display()
        )
    })?;
    let modules = modules::select(config.contexts.as_deref())?;
    // Business metrics of every context's events this process appends (a reactor appends
    // another context's events).
    for module in modules::all() {
        if let Some(observe) = module.metrics {
            tributary_kernel::telemetry::observe_appended(module.name, observe);
        }
    }
    let store = databases::connect(
        &config.database_url(),
        &config.context_database_urls,
        DATABASE_CONNECTIONS_MAX,
        config.group_commit,
    )
    .await?;
    let field_keys = FieldKeys::load(&store.database(), config.field_keys.as_deref()).await?;
    let (identity, generated) = Identity::start(
        store.clone(),
        modules::catalog(),
        field_keys.clone(),
        config.identity.clone(),
    )
    .await
    .map_err(|error| anyhow::anyhow!("starting identity: {error}"))?;
    if let Some(password) = generated {
        // Printed once: the first start on an empty store, without TRIBUTARY_ADMIN_PASSWORD.
        eprintln!(
            "\n  Created the first user: admin, password {password}\n  \
             It is not shown again. Log in and change it (POST /api/v1/auth/password), \
             or start with TRIBUTARY_ADMIN_PASSWORD set on an empty store.\n"
        );
    }
    let settings = Arc::new(tributary_kernel::module::Settings {
        default_company: Some(config.default_company.clone()),
        // A published query interface serves every context of the installation, also those
        // this process does not run (`--contexts`).
        books: modules::all().into_iter().find_map(|m| m.books),
        field_keys: Some(field_keys.clone()),
        availability: match &config.materials_url {
            Some(url) => Some(Arc::new(
                tributary_materials::grpc::RemoteAvailability::new(url)
                    .map_err(|error| anyhow::anyhow!(error))?,
            )
                as Arc<dyn tributary_kernel::availability::Availability>),
            None => modules::all()
                .into_iter()
                .find_map(|m| m.availability)
                .map(|make| make(store.clone())),
        },
        extensions: {
            let mut extensions = axum::http::Extensions::new();
            for module in &modules {
                if let Some(extend) = module.extensions {
                    extend(store.clone(), &mut extensions);
                }
            }
            extensions
        },
    });
    if roles.api {
        for module in &modules {
            if let Some(on_start) = module.on_start {
                let platform = Platform {
                    store: store.clone(),
                    lake: None,
                    settings: settings.clone(),
                };
                on_start(platform).await.map_err(|error| {
                    anyhow::anyhow!("starting context {}: {error}", module.name)
                })?;
            }
        }
    }
    // The lake is one catalog: every context's tables and views (a view may join another
    // context's tables), whichever contexts this process runs pipelines for.
    let lake = modules::open_lake(&config.lake_location(), &modules::all())
        .await
        .with_context(|| format!("while opening the lake at {}", config.lake_location()))?;
    let topics = modules::topics(&modules, &config.topic_prefix);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    if let Some(brokers) = &config.kafka_brokers {
        // Consumers subscribe before the relay's first publish would create the topic.
        tributary_ingest::kafka::ensure_topics(brokers, &topics, config.topic_partitions)
            .await
            .with_context(|| format!("while creating Kafka topics on {brokers}"))?;
    }
    // One runner per context, each on its own cursor (its own consumer group on Kafka): a
    // slow or backfilling context never holds back another's freshness.
    let mut runners = Vec::new();
    let mut pipelines_on_feed = Vec::new();
    if roles.pipelines {
        for module in modules.iter().filter(|m| !m.pipelines.is_empty()) {
            let pipelines = Pipelines::of([module]);
            // The feed of the database keeping the context's events.
            let feed = store.for_context(module.name);
            let source = match &config.kafka_brokers {
                // Production: Kafka partitions in the context's group, started where Delta says.
                Some(brokers) => {
                    let start =
                        tributary_pipelines::kafka_start(lake.clone(), pipelines.pipelines.clone());
                    let kafka = KafkaEvents::new(
                        brokers,
                        &format!("{}{PIPELINES_GROUP}-{}", config.topic_prefix, module.name),
                        config.instance_id.as_deref(),
                        &modules::source_topics(module, &config.topic_prefix),
                        start,
                        Duration::from_millis(KAFKA_BATCH_WAIT_MS),
                        Some(&store),
                    )
                    .with_context(|| {
                        format!(
                            "while creating the Kafka consumer for the {} pipelines",
                            module.name
                        )
                    })?;
                    EventSource::Kafka(kafka)
                }
                None => EventSource::Store(feed.clone()),
            };
            let runner = Runner::new(
                module.name,
                source,
                lake.clone(),
                pipelines.clone(),
                config.runner.clone(),
            )
            .await
            .with_context(|| format!("while loading the {} pipelines' progress", module.name))?;
            if config.kafka_brokers.is_none() {
                pipelines_on_feed.push((feed.clone(), runner.progress()));
            }
            runners.push(platform::ContextPipelines {
                context: module.name,
                pipelines: pipelines.pipelines,
                progress: Some(runner.progress()),
            });
            tasks.push(tokio::spawn(runner.run(shutdown_rx.clone())));
        }
    } else {
        for module in modules.iter().filter(|m| !m.pipelines.is_empty()) {
            runners.push(platform::ContextPipelines {
                context: module.name,
                pipelines: Pipelines::of([module]).pipelines,
                progress: None,
            });
        }
    }
    if roles.pipelines {
        // Contexts' own computed tables (planning): beside the pipelines, on the same lake.
        for worker in modules.iter().flat_map(|m| m.workers.iter()) {
            tasks.push(tokio::spawn(worker(
                tributary_kernel::module::WorkerContext {
                    store: store.clone(),
                    lake: Arc::new(lake.clone()),
                    settings: settings.clone(),
                    shutdown: shutdown_rx.clone(),
                },
            )));
        }
    }
    let status = platform::PipelineStatus::new(
        store.clone(),
        lake.clone(),
        config.kafka_brokers.is_some(),
        runners,
    );
    let mut query = QueryService::new(lake.clone(), config.query_limits)
        .with_system_tables(vec![(platform::TABLE, Arc::new(status))]);
    if let Some(cluster) = &config.ballista {
        query = query.with_cluster(cluster.clone());
    }
    if let Some(brokers) = &config.kafka_brokers {
        if roles.relay {
            let mut options = RelayOptions::new(brokers);
            options.topic_prefix = config.topic_prefix.clone();
            options.partitions = config.topic_partitions;
            // A relay per database, leased and positioned there: each topic (a context's
            // events) still has exactly one relay.
            for database in store.databases() {
                let relay = Relay::new(database.clone(), options.clone())
                    .context("while creating the Kafka producer")?;
                tasks.push(tokio::spawn(relay.run(shutdown_rx.clone())));
            }
        }
        if roles.ingest {
            let mut options = BronzeOptions::new(brokers, topics.clone());
            options.instance_id = config.instance_id.clone();
            // Installations sharing a broker (a topic prefix each) have their own groups.
            options.group = format!("{}{}", config.topic_prefix, options.group);
            let bronze = BronzeIngest::new(lake.clone(), options)
                .context("while creating the Kafka consumer for bronze ingest")?;
            tasks.push(tokio::spawn(bronze.run(shutdown_rx.clone())));
        }
    }

    // One compacting role per table (see `maintenance`).
    if let (Some(tables), Some(options)) = (
        maintenance::Compacting::of_roles(roles.ingest, roles.pipelines),
        &config.compaction,
    ) {
        let options = maintenance::CompactionOptions {
            tables,
            ..options.clone()
        };
        tasks.push(tokio::spawn(maintenance::run(
            lake.clone(),
            store.clone(),
            options,
            shutdown_rx.clone(),
        )));
    }
    let mut pg_addr = None;
    if let (true, Some(options)) = (roles.query, &config.pg) {
        let server = WireServer::start(
            query.clone(),
            options.clone(),
            Arc::new(identity.clone()),
            shutdown_rx.clone(),
        )
        .await?;
        pg_addr = Some(server.addr);
        tasks.push(tokio::spawn(server.stopped()));
    }
    let mut grpc_addr = None;
    // Materials' availability for sales processes elsewhere: only where materials runs.
    if let Some(addr) = config.grpc_addr {
        let make = modules.iter().find_map(|m| m.availability).context(
            "--grpc-addr serves materials' availability: this process does not run the materials context",
        )?;
        // The query sales here asks too, unless it asks another process.
        let served = match (&config.materials_url, &settings.availability) {
            (None, Some(local)) => local.clone(),
            _ => make(store.clone()),
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("while binding gRPC to {addr}"))?;
        grpc_addr = Some(listener.local_addr()?);
        let (mut stop, mut deadline) = (shutdown_rx.clone(), shutdown_rx.clone());
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tasks.push(tokio::spawn(async move {
            let serve = tributary_materials::grpc::serve(served, listener, shutdown);
            // A client that never finishes its connection must not hold up the stop.
            let grace = async move {
                let _ = deadline.wait_for(|stopped| *stopped).await;
                tokio::time::sleep(GRPC_STOP_GRACE).await;
            };
            tokio::select! {
                result = serve => if let Err(error) = result {
                    tracing::error!(%error, "gRPC availability service failed");
                },
                () = grace => tracing::warn!(
                    "gRPC connections still open {GRPC_STOP_GRACE:?} after the stop: closed"
                ),
            }
        }));
    }
    // The report API is served by the query role, runs are made by the reports role (a run
    // requested over the API waits for a reports process to claim it).
    let mut reports = None;
    if let (true, Some(options)) = (roles.query || roles.reports, &config.reports) {
        let structure = match &options.structure {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("while reading the statement structure {}", path.display())
                })?;
                Structure::parse(&text).map_err(|error| {
                    anyhow::anyhow!("statement structure {}: {error}", path.display())
                })?
            }
            None => Structure::default_by_account_type(),
        };
        let options = ReportOptions {
            outputs: options
                .outputs
                .clone()
                .unwrap_or_else(|| config.data_dir.join("reports").display().to_string()),
            structure,
            tick: options.tick.unwrap_or(Duration::from_secs(1)),
        };
        let service = Reports::new(store.clone(), query.clone(), lake.clone(), &options)
            .map_err(|error| anyhow::anyhow!("report outputs at {}: {error}", options.outputs))?;
        if roles.reports {
            tasks.push(tokio::spawn(service.clone().run(shutdown_rx.clone())));
        }
        reports = Some(service);
    }
    let reactors: Vec<Arc<dyn tributary_kernel::reactor::Reactor>> = modules
        .iter()
        .flat_map(|m| m.reactors.iter().cloned())
        .collect();
    let reacting = Platform {
        store: store.clone(),
        lake: Some(Arc::new(query.clone()) as Arc<dyn tributary_kernel::lake::LakeReader>),
        settings: settings.clone(),
    };
    let mut reactors_on_feed = Vec::new();
    if roles.reactors {
        for reactor in &reactors {
            let options = FollowerOptions {
                poll_interval_ms: config.runner.poll_interval_ms,
                ..FollowerOptions::default()
            };
            let runner = match &config.kafka_brokers {
                Some(brokers) => ReactorRunner::on_kafka(
                    reactor.clone(),
                    reacting.clone(),
                    brokers,
                    &config.topic_prefix,
                    config.instance_id.as_deref(),
                    Duration::from_millis(KAFKA_BATCH_WAIT_MS),
                    options,
                )
                .with_context(|| {
                    format!(
                        "while creating the Kafka consumer of reactor {}",
                        reactor.name()
                    )
                })?,
                None => {
                    // The feed of the database keeping the events it follows (one: see
                    // `databases::check`).
                    let feed = reactor.follows().first().map_or(&store, |followed| {
                        store.for_context(tributary_kernel::aggregate::context_of(followed))
                    });
                    let runner = ReactorRunner::new(
                        reactor.clone(),
                        reacting.clone(),
                        EventSource::Store(feed.clone()),
                        options,
                    );
                    reactors_on_feed.push((
                        tributary_ingest::follower::follower_name(reactor.as_ref()),
                        feed.clone(),
                        runner.progress(),
                    ));
                    runner
                }
            };
            tasks.push(tokio::spawn(runner.run(shutdown_rx.clone())));
        }
    }
    let mut routes = Vec::new();
    if roles.api {
        tasks.push(tokio::spawn(expire_idempotency_keys(
            store.clone(),
            config.idempotency_ttl,
            shutdown_rx.clone(),
        )));
    }
    // Every role answers HTTP: the api and query roles their APIs, every role /healthz and
    // /metrics (probes and scrapes are the same for every process).
    let app = if roles.api || roles.query {
        let rate_limiter: Option<Arc<dyn RateLimiter>> =
            match (config.rate_limit, &config.redis_url) {
                (None, _) => None,
                (Some(limit), None) => Some(Arc::new(LocalLimiter::new(limit))),
                (Some(limit), Some(url)) => {
                    Some(Arc::new(crate::ratelimit::RedisLimiter::new(url, limit)?))
                }
            };
        let platform = Platform {
            store: store.clone(),
            lake: roles
                .query
                .then(|| Arc::new(query.clone()) as Arc<dyn tributary_kernel::lake::LakeReader>),
            settings,
        };
        let suspense = suspense::router(reacting, reactors.clone());
        let (app, served) = router(
            &modules,
            platform,
            query.clone(),
            roles,
            Surfaces {
                reports: reports.clone(),
                suspense,
                identity: identity.clone(),
                http_timeout: config.http_timeout,
                rate_limiter,
            },
        );
        routes = served;
        app
    } else {
        Router::new()
            .route("/healthz", axum::routing::get(healthz))
            .with_state(store.clone())
    }
    .merge(telemetry::metrics_router());
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("while binding HTTP to {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let mut stop = shutdown_rx.clone();
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        });
        if let Err(error) = serve.await {
            tracing::error!(error = %error, "HTTP server failed");
        }
    }));
    Ok(Running {
        addr,
        pg_addr,
        grpc_addr,
        store,
        lake,
        query,
        identity,
        routes,
        reports,
        pipelines_on_feed,
        reactors_on_feed,
        shutdown,
        tasks,
    })
}

/// Forgets Idempotency-Keys older than `ttl`, at start and then every minute (or every `ttl`
/// when shorter): a key is honoured for at least `ttl`.
async fn expire_idempotency_keys(
    store: EventStore,
    ttl: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = ttl
        .min(Duration::from_secs(60))
        .max(Duration::from_millis(100));
    loop {
        let older_than =
            chrono::Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        match store.expire_idempotency_keys(older_than).await {
            Ok(0) => {}
            Ok(expired) => tracing::debug!(expired, "idempotency keys expired"),
            Err(error) => tracing::warn!(%error, "idempotency keys could not be expired"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// What the HTTP surface serves besides the modules' routes.
pub struct Surfaces {
    pub reports: Option<Reports>,
    /// The reactors' suspense routes, with their state.
    pub suspense: (Router, Vec<RouteInfo>),
    pub identity: Identity,
    pub http_timeout: Duration,
    /// The per-user request limit, when there is one.
    pub rate_limiter: Option<Arc<dyn RateLimiter>>,
}

/// The HTTP surface of the api role (every module's commands) and the query role (SQL and
/// every module's read APIs), identity's routes on either, and the routes as declared.
/// Every route is guarded by its declared access; the authenticator verifies bearer tokens.
pub fn router(
    modules: &[Module],
    platform: Platform,
    query: QueryService,
    roles: Roles,
    surfaces: Surfaces,
) -> (Router, Vec<RouteInfo>) {
    let Surfaces {
        reports,
        suspense,
        identity,
        http_timeout,
        rate_limiter,
    } = surfaces;
    let mut routes: Routes<Platform> = Routes::new();
    for module in modules {
        if roles.api {
            routes = routes.merge((module.commands)());
        }
        if roles.query {
            routes = routes.merge((module.reads)());
        }
    }
    let mut parts = vec![
        Routes::new()
            .get("/healthz", Access::Public, healthz)
            .with_state(platform.store.clone()),
        routes.with_state(platform),
        tributary_identity::api::routes().with_state(identity.clone()),
    ];
    if roles.api {
        parts.push(suspense);
    }
    if roles.query {
        parts.push(tributary_lakehouse::http::router().with_state(query));
    }
    if let (true, Some(reports)) = (roles.query, reports) {
        parts.push(tributary_reports::api::router().with_state(reports));
    }
    let mut router = Router::new();
    let mut declared = Vec::new();
    for (part, info) in parts {
        router = router.merge(part);
        declared.extend(info);
    }
    // The document of every route served here, itself included.
    declared.push(RouteInfo {
        method: axum::http::Method::GET,
        path: OPENAPI_PATH,
        access: Access::Public,
        request: None,
    });
    let document = Arc::new(tributary_kernel::openapi::document(
        &declared,
        &modules::catalog(),
        env!("CARGO_PKG_VERSION"),
    ));
    let (openapi, _) = Routes::new()
        .get(OPENAPI_PATH, Access::Public, openapi_json)
        .with_state(document);
    router = router.merge(openapi);
    let authenticator: Arc<dyn Authenticator> = Arc::new(identity);
    let mut router = router
        .fallback(|| async { tributary_kernel::http::ApiError::not_found("no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX));
    if let Some(limiter) = rate_limiter {
        router = router.layer(axum::middleware::from_fn(move |request, next| {
            tributary_kernel::ratelimit::with_rate_limiter(limiter.clone(), request, next)
        }));
    }
    let router = router
        .layer(axum::middleware::from_fn(move |request, next| {
            tributary_kernel::auth::with_authenticator(authenticator.clone(), request, next)
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            tributary_kernel::http::time_limit(http_timeout, request, next)
        }))
        .layer(axum::middleware::from_fn(
            tributary_kernel::http::plain_errors_as_problems,
        ))
        .layer(axum::middleware::from_fn(
            tributary_kernel::http::request_id,
        ));
    (router, declared)
}

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

async fn openapi_json(State(document): State<Arc<serde_json::Value>>) -> impl IntoResponse {
    Json(document.as_ref().clone())
}

/// Whether the event store answers. Says nothing of why not: the cause is logged.
async fn healthz(State(store): State<EventStore>) -> impl IntoResponse {
    match store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "event_store": store.backend() })),
        ),
        Err(error) => {
            tracing::warn!(error = %error, "health check: the event store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "event_store": store.backend() })),
            )
        }
    }
}

/// The event store's URL: the one given, or the embedded SQLite file `<data_dir>/events.db`.
pub fn store_url(data_dir: &std::path::Path, database_url: Option<&str>) -> String {
    database_url.map_or_else(
        || format!("sqlite://{}", data_dir.join("events.db").display()),
        str::to_owned,
    )
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
