//! Tributary in one process: the finance service, the pipeline runner, and the SQL/read APIs.
//!
//! ```text
//!  start(config) ─► event store (SQLite file | PostgreSQL) ─► default company
//!                ─► lake (Delta tables under <data-dir>/lake) ─► pipeline runner task
//!                ─► HTTP: /healthz, finance /api/v1/*, /api/v1/sql, balances, trial balance
//! ```
//! `main.rs` only parses flags and calls [`start`]; tests and the benchmark call it too.

pub mod bench;
pub mod reads;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_finance::commands;
use tributary_finance::domain::CompanyCode;
use tributary_ingest::EventSource;
use tributary_kernel::store::EventStore;
use tributary_lakehouse::{Lake, QueryLimits, QueryService};
use tributary_pipelines::{Runner, RunnerOptions};

/// Largest request body accepted (a 1,000-line entry is about 200 KB).
pub const REQUEST_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Database connections per process.
pub const DATABASE_CONNECTIONS_MAX: u32 = 16;

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    /// `postgres://…` for production; default: SQLite file `<data_dir>/events.db`.
    pub database_url: Option<String>,
    /// Lake location; default `<data_dir>/lake`.
    pub lake: Option<String>,
    /// Company created on first start when none exists.
    pub default_company: (String, String),
    pub query_limits: QueryLimits,
    pub runner: RunnerOptions,
}

impl Config {
    pub fn embedded(data_dir: PathBuf, http_addr: SocketAddr) -> Config {
        Config {
            data_dir,
            http_addr,
            database_url: None,
            lake: None,
            default_company: ("MAIN".into(), "Main company".into()),
            query_limits: QueryLimits::default(),
            runner: RunnerOptions::default(),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("events.db").display()))
    }

    pub fn lake_location(&self) -> String {
        self.lake
            .clone()
            .unwrap_or_else(|| self.data_dir.join("lake").display().to_string())
    }
}

/// A started Tributary: its address, handles, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub store: EventStore,
    pub lake: Lake,
    pub query: QueryService,
    /// Feed cursor up to which every pipeline table is current.
    pub pipeline_progress: watch::Receiver<i64>,
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

    /// Waits until the pipelines have processed every event stored so far, or the timeout.
    pub async fn wait_for_pipelines(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let head = self.store.head_cursor().await?;
        let mut progress = self.pipeline_progress.clone();
        tokio::time::timeout(timeout, progress.wait_for(|cursor| *cursor >= head))
            .await
            .context("while waiting for the pipelines to catch up")??;
        Ok(())
    }
}

/// Connects the event store, opens the lake, starts the pipelines and the HTTP server.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "while creating data directory {}",
            config.data_dir.display()
        )
    })?;
    let database_url = config.database_url();
    let store = EventStore::connect(&database_url, DATABASE_CONNECTIONS_MAX)
        .await
        .with_context(|| {
            format!(
                "while connecting the event store at {}",
                redact(&database_url)
            )
        })?;
    ensure_default_company(&store, &config.default_company).await?;
    let lake = Lake::open(&config.lake_location(), tributary_lakehouse::catalog::all())
        .await
        .with_context(|| format!("while opening the lake at {}", config.lake_location()))?;
    let query = QueryService::new(lake.clone(), config.query_limits);
    let runner = Runner::new(
        EventSource::Store(store.clone()),
        lake.clone(),
        tributary_pipelines::pipelines(),
        config.runner.clone(),
    )
    .await
    .context("while loading pipeline progress from the lake")?;
    let pipeline_progress = runner.progress();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let runner_task = tokio::spawn(runner.run(shutdown_rx.clone()));

    let app = router(store.clone(), query.clone());
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("while binding HTTP to {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let mut stop = shutdown_rx.clone();
    let server_task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        });
        if let Err(error) = serve.await {
            tracing::error!(error = %error, "HTTP server failed");
        }
    });
    Ok(Running {
        addr,
        store,
        lake,
        query,
        pipeline_progress,
        shutdown,
        tasks: vec![server_task, runner_task],
    })
}

/// The whole HTTP surface.
pub fn router(store: EventStore, query: QueryService) -> Router {
    let reads = reads::router().with_state(reads::ReadState {
        store: store.clone(),
        query: query.clone(),
    });
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(store.clone())
        .merge(tributary_finance::api::router().with_state(store))
        .merge(tributary_lakehouse::http::router().with_state(query))
        .merge(reads)
        .fallback(|| async { tributary_kernel::http::ApiError::not_found("no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(
            tributary_kernel::http::request_id,
        ))
}

async fn healthz(State(store): State<EventStore>) -> impl IntoResponse {
    match store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "event_store": store.backend() })),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "unavailable", "event_store": store.backend(), "error": error.to_string() }),
            ),
        ),
    }
}

async fn ensure_default_company(
    store: &EventStore,
    (code, name): &(String, String),
) -> anyhow::Result<()> {
    if !commands::companies(store).await?.is_empty() {
        return Ok(());
    }
    let code = CompanyCode::parse(code)
        .map_err(|rule| anyhow::anyhow!("default company code {code:?} {rule}"))?;
    let decision = commands::create_company(store, code, name.clone()).await?;
    let (batch, _) = decision.into_batch(commands::CONTEXT, Default::default(), None);
    match store.append(batch).await {
        // Another process created it first: fine.
        Ok(_) | Err(tributary_kernel::StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error).context("while creating the default company"),
    }
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
