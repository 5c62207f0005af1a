//! The lake over the PostgreSQL wire protocol, for psql, BI tools, drivers and Grafana.
//!
//! ```text
//!  client ──TCP──► accept loop (query runtime) ──► pgwire connection
//!   plain: SCRAM-SHA-256 with the user's password     │ ReadOnly hook: DDL/DML/COPY/SET datafusion.* refused (25006)
//!   TLS (--pg-tls-cert): password or access token     │ cursor, SET/SHOW, transaction hooks (datafusion-postgres)
//!                                                     ▼ each statement: the user's grants now (sql.read or 42501)
//!                 one SessionContext per read scope: tributary.public = every lake table at its
//!                 newest version per statement, seen through the scope (the rows of the user's
//!                 companies; raw events only with sql.raw_events.read) + the views of
//!                 sql/views; pg_catalog; information_schema; each query planned once per
//!                 scope and text, optimised once unless it reads the clock (now()), run at
//!                 each execution
//!                                                     │ rows streamed under the time limit and row limit
//! ```
//! Protocol handling, catalog emulation and type encoding are `datafusion-postgres`'s; this
//! module wires them to the lake and adds authentication, read-only enforcement and limits.

use crate::query::{
    QueryLimits, QueryService, ReadScope, is_read_sql, query_runtime, selects_into,
};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire;
use datafusion_postgres::{DfSessionService, Parser};
use futures::{Sink, Stream};
use pgwire::api::Type;
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, ServerParameterProvider,
    StartupHandler,
};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::FieldInfo;
use pgwire::api::results::{Response, SendableRowStream};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tributary_kernel::auth::{AuthError, SCRAM_ITERATIONS, WireLogins, platform};

/// Where the embedded default listens (the flag's default; `DEFAULT_PORT` for code).
pub const DEFAULT_ADDR: &str = "127.0.0.1:5433";
const DEFAULT_PORT: u16 = 5433;
/// The database (catalog) name clients connect to; any name is accepted.
pub const DATABASE: &str = "tributary";
/// The server version reported to clients (Grafana and drivers branch on it).
const SERVER_VERSION: &str = "16.6 (Tributary)";
const SERVER_VERSION_NUM: &str = "160006";
/// Metadata key datafusion-postgres keeps a client's `SET statement_timeout` under.
const CLIENT_TIMEOUT_KEY: &str = "statement_timeout_ms";
/// Read scopes whose sessions are kept; more distinct scopes than this start over.
const SESSIONS_MAX: usize = 256;
/// Planned queries kept per session; more distinct texts than this start over.
const PLANS_MAX: usize = 1024;

/// How the endpoint listens. Users log in as the installation's users.
#[derive(Debug, Clone)]
pub struct WireOptions {
    pub addr: SocketAddr,
    /// The PEM certificate chain and private key: clients may then use TLS, and over TLS
    /// log in with their password or an access token.
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl WireOptions {
    /// The embedded default: 127.0.0.1:5433 without TLS.
    pub fn embedded() -> WireOptions {
        WireOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            tls: None,
        }
    }

    /// Loads the TLS certificate and key, so a bad file stops the start with a clear error.
    pub fn validate(&self) -> Result<(), WireError> {
        self.tls.as_ref().map(tls_acceptor).transpose().map(|_| ())
    }
}

/// The URL `user` connects with (the password is asked for).
pub fn connection_string(addr: SocketAddr, user: &str) -> String {
    format!("postgres://{user}@{addr}/{DATABASE}")
}

fn tls_acceptor(files: &TlsFiles) -> Result<pgwire::tokio::TlsAcceptor, WireError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |path: &PathBuf, reason: String| WireError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(&files.certificate)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(&files.certificate, e.to_string()))?;
    if certificates.is_empty() {
        return Err(bad(&files.certificate, "holds no certificate".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| {
        builder
            .with_no_client_auth()
            .with_single_cert(certificates, key)
    })
    .map_err(|e| bad(&files.key, format!("does not fit the certificate: {e}")))?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the SQL endpoint's TLS file {path} {reason}")]
    Tls { path: String, reason: String },
    #[error("cannot listen for SQL clients on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the SQL catalog: {0}")]
    Catalog(String),
}

/// A listening SQL endpoint.
pub struct WireServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl WireServer {
    /// Binds the address and serves until `stop` turns true. Connections run on the query
    /// runtime, so long queries never hold the threads serving HTTP.
    pub async fn start(
        query: QueryService,
        options: WireOptions,
        logins: Arc<dyn WireLogins>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<WireServer, WireError> {
        let tls = options.tls.as_ref().map(tls_acceptor).transpose()?;
        let listener = std::net::TcpListener::bind(options.addr)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|source| WireError::Bind {
                addr: options.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| WireError::Bind {
            addr: options.addr,
            source,
        })?;
        let connections_max = query.limits().wire_connections_max.max(1);
        let connections = Arc::new(tokio::sync::Semaphore::new(connections_max));
        let handlers = Arc::new(Handlers::new(query, logins)?);
        let task = query_runtime().spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::error!(%error, "SQL endpoint cannot listen");
                    return;
                }
            };
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, peer)) => {
                            let _ = socket.set_nodelay(true);
                            let handlers = handlers.clone();
                            let tls = tls.clone();
                            let Ok(permit) = connections.clone().try_acquire_owned() else {
                                tokio::spawn(refuse_connection(socket, connections_max));
                                continue;
                            };
                            tokio::spawn(async move {
                                let _permit = permit;
                                if let Err(error) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                                    tracing::debug!(%peer, %error, "SQL connection ended with an error");
                                }
                            });
                        }
                        Err(error) => tracing::warn!(%error, "SQL endpoint: accept failed"),
                    },
                    _ = stop.wait_for(|stopped| *stopped) => break,
                }
            }
        });
        Ok(WireServer { addr, task })
    }

    /// Waits until the accept loop has stopped (after the stop signal).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Answers a connection over the limit as PostgreSQL does: it reads the startup message
/// (declining TLS or GSS encryption first), answers FATAL 53300 and closes the connection.
async fn refuse_connection(mut socket: tokio::net::TcpStream, connections_max: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// The request codes of SSLRequest and GSSENCRequest.
    const ENCRYPTION_REQUESTS: [u32; 2] = [80_877_103, 80_877_104];
    /// Largest startup message read from a refused client.
    const STARTUP_BYTES_MAX: usize = 10_000;
    let read_startup = async {
        loop {
            let length = socket.read_u32().await? as usize;
            let mut body = vec![0u8; length.saturating_sub(4).min(STARTUP_BYTES_MAX)];
            socket.read_exact(&mut body).await?;
            let code = body
                .get(..4)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            if !ENCRYPTION_REQUESTS.contains(&code) {
                return Ok::<(), std::io::Error>(());
            }
            socket.write_all(b"N").await?;
        }
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), read_startup).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let message = format!(
        "sorry, too many clients already: the endpoint takes {connections_max} connections"
    );
    let mut fields = Vec::new();
    for (code, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "53300"),
        (b'M', message.as_str()),
    ] {
        fields.push(code);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut frame = vec![b'E'];
    frame.extend_from_slice(
        &u32::try_from(fields.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    frame.extend_from_slice(&fields);
    let _ = socket.write_all(&frame).await;
    let _ = socket.shutdown().await;
}

/// Everything one connection needs; pgwire asks for the startup handler once per connection,
/// so each connection gets its own login state.
struct Handlers {
    service: Arc<WireService>,
    logins: Arc<dyn WireLogins>,
    parameters: Arc<DefaultServerParameterProvider>,
    connections: Arc<ConnectionManager>,
}

impl Handlers {
    fn new(query: QueryService, logins: Arc<dyn WireLogins>) -> Result<Handlers, WireError> {
        let limits = query.limits();
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_owned();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        parameters.scram_iterations = SCRAM_ITERATIONS as usize;
        let sessions = Arc::new(Sessions {
            query,
            logins: logins.clone(),
            by_scope: std::sync::Mutex::default(),
        });
        Ok(Handlers {
            service: Arc::new(WireService {
                parser: Arc::new(ScopedParser {
                    sessions: sessions.clone(),
                    describe: DfSessionService::new(Arc::new(SessionContext::new())).query_parser(),
                }),
                sessions,
                statements: PostgresCompatibilityParser::new(),
                limits,
            }),
            logins,
            parameters: Arc::new(parameters),
            connections: Arc::new(ConnectionManager::new()),
        })
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        let mut scram = ScramAuth::new(Arc::new(ScramSecrets {
            logins: self.logins.clone(),
        }));
        scram.set_iterations(SCRAM_ITERATIONS as usize);
        let checked = Arc::new(CheckedPassword::default());
        Arc::new(Login {
            scram: SASLAuthStartupHandler::new(self.parameters.clone())
                .with_scram(scram)
                .with_connection_manager(self.connections.clone()),
            cleartext: CleartextPasswordAuthStartupHandler::new(
                CheckedSource(checked.clone()),
                SharedParameters(self.parameters.clone()),
            )
            .with_connection_manager(self.connections.clone()),
            checked,
            logins: self.logins.clone(),
        })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Errors)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.connections.clone()))
    }
}

/// One connection's login: SCRAM-SHA-256 with the user's password on a plain connection
/// (the password never crosses the network); over TLS the password itself, or an access
/// token, checked by the installation (a token cannot be checked by SCRAM).
struct Login {
    scram: SASLAuthStartupHandler<DefaultServerParameterProvider>,
    cleartext: CleartextPasswordAuthStartupHandler<CheckedSource, SharedParameters>,
    checked: Arc<CheckedPassword>,
    logins: Arc<dyn WireLogins>,
}

#[async_trait]
impl StartupHandler for Login {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !client.is_secure() {
            return self.scram.on_startup(client, message).await;
        }
        let message = match message {
            PgWireFrontendMessage::PasswordMessageFamily(family) => {
                let password = family.into_password()?;
                let user = client
                    .metadata()
                    .get(pgwire::api::METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let accepted = self
                    .logins
                    .check_password(&user, &password.password)
                    .await
                    .map_err(|error| login_unavailable(&error))?;
                *lock(&self.checked.0) = accepted.then(|| password.password.clone().into_bytes());
                PgWireFrontendMessage::PasswordMessageFamily(PasswordMessageFamily::Password(
                    password,
                ))
            }
            other => other,
        };
        self.cleartext.on_startup(client, message).await
    }
}

/// The endpoint's server parameters, shared by every connection's login handlers.
struct SharedParameters(Arc<DefaultServerParameterProvider>);

impl ServerParameterProvider for SharedParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        self.0.server_parameters(client)
    }
}

/// The password the installation accepted on this connection, for pgwire's cleartext
/// handler to compare with (a refused one compares with nothing).
#[derive(Debug, Default)]
struct CheckedPassword(std::sync::Mutex<Option<Vec<u8>>>);

/// [`CheckedPassword`] as pgwire's cleartext handler asks for it.
#[derive(Debug)]
struct CheckedSource(Arc<CheckedPassword>);

#[async_trait]
impl AuthSource for CheckedSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let accepted = lock(&self.0.0).take();
        match accepted {
            Some(password) => Ok(Password::new(None, password)),
            None => Err(login_failed(login.user().unwrap_or_default())),
        }
    }
}

/// Logs what the endpoint answers with, and names the user in a failed login the way
/// PostgreSQL does (pgwire's SCRAM path reports an empty user name).
struct Errors;

impl ErrorHandler for Errors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if matches!(error, PgWireError::InvalidPassword(_)) {
            let user = client
                .metadata()
                .get(pgwire::api::METADATA_USER)
                .cloned()
                .unwrap_or_default();
            *error = login_failed(&user);
        }
        tracing::debug!(%error, "SQL endpoint answered an error");
    }
}

fn login_failed(user: &str) -> PgWireError {
    user_error(
        "FATAL",
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
}

fn login_unavailable(error: &AuthError) -> PgWireError {
    tracing::warn!(%error, "SQL login unavailable");
    user_error(
        "FATAL",
        "08006",
        "the login cannot be checked now; retry later".to_owned(),
    )
}

/// `bytes` bytes the process derives from `user` with a key of its own (SipHash with random
/// keys): stable for one name, unpredictable without the key.
fn decoy(user: &str, purpose: &str, bytes: usize) -> Vec<u8> {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let key = KEY.get_or_init(std::collections::hash_map::RandomState::new);
    (0u64..)
        .flat_map(|block| key.hash_one((user, purpose, block)).to_be_bytes())
        .take(bytes)
        .collect()
}

/// Each user's SCRAM secret, kept by the installation when their password was set or last
/// used. Unknown users and users without a secret go through the same exchange with a decoy
/// secret, so a wrong username looks like a wrong password.
struct ScramSecrets {
    logins: Arc<dyn WireLogins>,
}

impl Debug for ScramSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramSecrets").finish_non_exhaustive()
    }
}

#[async_trait]
impl AuthSource for ScramSecrets {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        match self.logins.scram_secret(user).await {
            Ok(Some(secret)) => Ok(Password::new(Some(secret.salt), secret.salted_password)),
            Ok(None) => {
                tracing::info!(
                    user,
                    "SQL login without a SCRAM secret: unknown, locked, or no password used since it was set (log in once over HTTP or TLS)"
                );
                // The same salt for the same name every time, as a real secret has.
                Ok(Password::new(
                    Some(decoy(user, "salt", 16)),
                    decoy(user, "salted", 32),
                ))
            }
            Err(error) => Err(login_unavailable(&error)),
        }
    }
}

/// A scope's context: `tributary.public` resolves every name at statement time, through the
/// scope.
fn session_context(query: QueryService, scope: ReadScope) -> Result<SessionContext, WireError> {
    let timeout_ms = query.limits().timeout_ms;
    let context = crate::query::new_context(query.session_config(), query.runtime());
    let catalog = context
        .catalog(DATABASE)
        .ok_or_else(|| WireError::Catalog(format!("no catalog {DATABASE}")))?;
    catalog
        .register_schema("public", Arc::new(LakeSchema { query, scope }))
        .map_err(|error| WireError::Catalog(error.to_string()))?;
    setup_pg_catalog(&context, DATABASE, EmptyContextProvider)
        .map_err(|error| WireError::Catalog(error.to_string()))?;
    context.register_udf(current_setting(timeout_ms));
    Ok(context)
}

/// `current_setting(name)`: the settings clients and BI tools ask for (Grafana's version
/// probe, search_path lookups); an unknown name is an error, as in PostgreSQL.
fn current_setting(timeout_ms: u64) -> ScalarUDF {
    let setting = move |name: &str| -> Option<String> {
        Some(
            match name.to_ascii_lowercase().as_str() {
                "search_path" => "public",
                "server_version" => SERVER_VERSION,
                "server_version_num" => SERVER_VERSION_NUM,
                "server_encoding" | "client_encoding" => "UTF8",
                "timezone" => "UTC",
                "datestyle" => "ISO, YMD",
                "standard_conforming_strings" | "integer_datetimes" => "on",
                "default_transaction_read_only" | "transaction_read_only" => "on",
                "max_identifier_length" => "63",
                "statement_timeout" => return Some(format!("{timeout_ms}ms")),
                _ => return None,
            }
            .to_owned(),
        )
    };
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let names = match &args[0] {
                ColumnarValue::Scalar(scalar) => scalar.to_array()?,
                ColumnarValue::Array(array) => array.clone(),
            };
            let names = datafusion::common::cast::as_string_array(&names)?;
            let mut values = Vec::new();
            for name in names.iter() {
                values.push(match name {
                    Some(name) => Some(setting(name).ok_or_else(|| {
                        DataFusionError::Plan(format!(
                            "unrecognized configuration parameter \"{name}\""
                        ))
                    })?),
                    None => None,
                });
            }
            let values: ArrayRef = Arc::new(StringArray::from(values));
            Ok(match &args[0] {
                ColumnarValue::Scalar(_) => {
                    ColumnarValue::Scalar(ScalarValue::try_from_array(&values, 0)?)
                }
                ColumnarValue::Array(_) => ColumnarValue::Array(values),
            })
        }),
    )
}

/// The lake's tables and `sql/views`' views, each looked up at its newest version whenever a
/// statement names it, so one long-lived context never answers from an old snapshot.
#[derive(Debug)]
struct LakeSchema {
    query: QueryService,
    scope: ReadScope,
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .query
            .table_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let table = self
            .query
            .table(name)
            .await
            .map_err(|error| DataFusionError::External(Box::new(error)))?;
        table
            .map(|table| crate::scope::scoped(name, table, &self.scope))
            .transpose()
    }

    fn table_exist(&self, name: &str) -> bool {
        self.query.table_names().contains(&name)
    }
}

/// Refuses everything that is not a read, before it is planned: the lake is written by the
/// pipelines only, and the context is shared by every connection.
/// `EXPLAIN` is refused to a session whose scope is not every company (see
/// [`crate::query::explain_refusal`]).
struct ReadOnly {
    explain_refused: Option<String>,
}

impl ReadOnly {
    fn check(&self, statement: &Statement) -> Option<PgWireResult<()>> {
        if !is_read(statement) {
            return Some(Err(read_only_error(statement)));
        }
        if crate::query::is_explain_sql(statement)
            && let Some(reason) = &self.explain_refused
        {
            return Some(Err(user_error("ERROR", "42501", reason.clone())));
        }
        None
    }
}

/// A read (see [`crate::query::is_read_sql`]) or a per-connection session statement.
fn is_read(statement: &Statement) -> bool {
    match statement {
        Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Deallocate { .. }
        | Statement::Discard { .. } => true,
        Statement::Declare { stmts } => stmts.iter().all(|declare| {
            declare
                .for_query
                .as_deref()
                .is_none_or(|query| !selects_into(query))
        }),
        // Session settings are per connection, except DataFusion's own options, which would
        // change the context every connection shares.
        Statement::Set(set) => !sets_engine_option(set),
        other => is_read_sql(other),
    }
}

fn sets_engine_option(set: &Set) -> bool {
    match set {
        Set::SingleAssignment { variable, .. } => {
            let name = variable.to_string().to_ascii_lowercase();
            name.starts_with("datafusion.")
        }
        Set::SetTimeZone { .. } => false,
        _ => true,
    }
}

fn read_only_error(statement: &Statement) -> PgWireError {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        "25006".to_owned(),
        format!(
            "cannot execute {}: the Tributary SQL endpoint is read-only (SELECT, WITH, EXPLAIN, SHOW); data is written through the REST API",
            words.join(" ").to_ascii_uppercase()
        ),
    )))
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.check(statement)
            .map(|refused| refused.map(|()| Response::EmptyQuery))
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        self.check(statement)
            .map(|refused| refused.map(|()| LogicalPlan::default()))
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}

/// datafusion-postgres's session services, one per read scope: each statement runs in the
/// session of what its user may read now.
struct Sessions {
    query: QueryService,
    logins: Arc<dyn WireLogins>,
    by_scope: std::sync::Mutex<HashMap<ReadScope, Arc<Session>>>,
}

/// A statement as datafusion-postgres parses and plans it: its text, and its AST and logical
/// plan.
type Parsed = <Parser as QueryParser>::Statement;
/// A statement's text and the parameter types its client declared.
type StatementKey = (String, Vec<Option<Type>>);

/// A query planned in a session, and its plan as the optimiser leaves it when that is the same
/// at every execution.
struct Planned {
    parsed: Parsed,
    /// Made at the first execution, for plans that call no function the optimiser evaluates
    /// with the moment of execution (`now()`, `current_date`: see [`timeless`]); `None` for
    /// those that do, optimised at each execution. The optimiser reads no table version or
    /// statistics (the scans resolve their newest version and files when planned physically,
    /// at each execution), so a timeless plan optimises the same way again: analysing and
    /// optimising it twice took about a third of a small dashboard query's time.
    optimised: Option<std::sync::OnceLock<LogicalPlan>>,
}

/// One read scope's session: datafusion-postgres's service over the scope's context, and the
/// queries already planned in it.
struct Session {
    service: DfSessionService,
    context: Arc<SessionContext>,
    /// Executes the session's plans (on the Ballista cluster when the service has one).
    query: QueryService,
    /// Parsed and planned queries by their text and declared parameter types. Their tables
    /// resolve their newest version when scanned, and a scope's plans never serve another
    /// scope: a plan from here reads what planning again would.
    planned: std::sync::Mutex<HashMap<StatementKey, Arc<Planned>>>,
}

impl Session {
    /// `sql` parsed and planned in this session, once per text and parameter types.
    async fn parse<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Arc<Planned>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let key = (sql.to_owned(), types.to_vec());
        if let Some(planned) = lock(&self.planned).get(&key) {
            return Ok(Some(Arc::clone(planned)));
        }
        let Some(parsed) = self
            .service
            .query_parser()
            .parse_sql(client, sql, types)
            .await?
        else {
            return Ok(None);
        };
        let query = matches!(&parsed, (_, Some((Statement::Query(_), _))));
        let timeless = matches!(&parsed, (_, Some((_, plan))) if timeless(plan));
        let parsed = Arc::new(Planned {
            parsed,
            optimised: timeless.then(std::sync::OnceLock::new),
        });
        // Only queries: session statements (SET, cursors, transactions) are answered by hooks.
        if query {
            let mut planned = lock(&self.planned);
            if planned.len() >= PLANS_MAX {
                planned.clear();
            }
            planned.insert(key, Arc::clone(&parsed));
        }
        Ok(Some(parsed))
    }

    /// Runs a planned query whose parameters are bound and streams its rows encoded in
    /// `format`; `kept` keeps its optimised plan across executions (a timeless plan without
    /// parameters, see [`Planned`]).
    async fn execute<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        kept: Option<&std::sync::OnceLock<LogicalPlan>>,
        plan: &LogicalPlan,
        format: &Format,
    ) -> PgWireResult<Response> {
        use datafusion_postgres::arrow_pg::datatypes::{
            arrow_schema_to_pg_fields, encode_recordbatch,
        };
        use futures::StreamExt;
        let failed = |error: DataFusionError| PgWireError::ApiError(Box::new(error));
        let state = self.context.state();
        // Optimised twice, as datafusion-postgres runs a statement (once itself, once in
        // DataFrame's physical planning): one pass leaves a stale type where a function's
        // result type depends on an argument the optimiser only just folded into a literal
        // (`round(value, 2)` in the `order_backlog` view planned Decimal128(38, 12), computed
        // 38, 2), and the rows must match the schema they are sent with.
        let optimise = || state.optimize(&state.optimize(plan)?);
        let fresh;
        let optimised = match kept {
            Some(kept) => match kept.get() {
                Some(optimised) => optimised,
                None => {
                    let optimised = optimise().map_err(failed)?;
                    kept.get_or_init(|| optimised)
                }
            },
            None => {
                fresh = optimise().map_err(failed)?;
                &fresh
            }
        };
        let physical = state
            .query_planner()
            .create_physical_plan(optimised, &state)
            .await
            .map_err(failed)?;
        let options = pgwire::types::format::FormatOptions::from_client_metadata(client.metadata());
        let fields = Arc::new(arrow_schema_to_pg_fields(
            optimised.schema().as_arrow(),
            format,
            Some(Arc::new(options)),
        )?);
        let batches = self
            .query
            .execute(physical, state.task_ctx())
            .await
            .map_err(failed)?;
        let encoded = Arc::clone(&fields);
        let rows = batches
            .map(move |batch| -> Box<dyn Iterator<Item = _> + Send + Sync> {
                match batch {
                    Ok(batch) => encode_recordbatch(Arc::clone(&encoded), batch),
                    Err(error) => Box::new(std::iter::once(Err(failed(error)))),
                }
            })
            .flat_map(futures::stream::iter);
        Ok(Response::Query(pgwire::api::results::QueryResponse::new(
            fields, rows,
        )))
    }
}

/// Whether the optimiser makes the same plan of `plan` at every execution: no scalar function
/// in it, its subqueries or its views is other than immutable. A stable one (`now()`,
/// `current_date`) is folded into the moment of the execution; volatile ones are refused too,
/// to keep the rule simple.
fn timeless(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Expr;
    let mut timeless = true;
    let visited = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(view) = scan.source.get_logical_plan()
            && !self::timeless(&view)
        {
            timeless = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        node.apply_expressions(|expr| {
            let momentary = expr.exists(|expr| {
                Ok(matches!(expr, Expr::ScalarFunction(call)
                    if call.func.signature().volatility != Volatility::Immutable))
            })?;
            if momentary {
                timeless = false;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
    });
    visited.is_ok() && timeless
}

/// `plan` with its `$n` placeholders replaced by the portal's values, decoded as the client
/// declared them or else as `reported` (the types Describe sent) or the plan's own types.
fn bind<S: Clone>(
    plan: &LogicalPlan,
    portal: &Portal<S>,
    reported: &[Type],
) -> PgWireResult<LogicalPlan> {
    let failed = |error: DataFusionError| PgWireError::ApiError(Box::new(error));
    let mut inferred: Vec<(usize, Option<datafusion::arrow::datatypes::DataType>)> = plan
        .get_parameter_types()
        .map_err(failed)?
        .into_iter()
        .filter_map(|(id, data_type)| {
            id.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|n| (n, data_type))
        })
        .collect();
    inferred.sort_by_key(|(n, _)| *n);
    let inferred: Vec<Option<&datafusion::arrow::datatypes::DataType>> = inferred
        .iter()
        .map(|(_, data_type)| data_type.as_ref())
        .collect();
    let reported: Vec<Option<&Type>> = reported.iter().map(Some).collect();
    let values =
        datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
            portal, &inferred, &reported,
        )?;
    plan.clone()
        .replace_params_with_values(&values)
        .map_err(failed)
}

/// The plan of a query that takes no parameters (one with `$n` placeholders is bound by
/// [`bind`] first).
fn without_parameters(parsed: &Parsed) -> Option<&LogicalPlan> {
    match parsed {
        (_, Some((Statement::Query(_), plan)))
            if plan
                .get_parameter_types()
                .is_ok_and(|types| types.is_empty()) =>
        {
            Some(plan)
        }
        _ => None,
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sessions {
    /// The session of the connection's user, by their grants now: a user who lost `sql.read`
    /// (or was locked) since they connected reads nothing more.
    async fn of<C: ClientInfo + ?Sized>(&self, client: &C) -> PgWireResult<Arc<Session>> {
        let user = client
            .metadata()
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let caller = self
            .logins
            .caller_named(&user)
            .await
            .map_err(|error| match error {
                AuthError::Unavailable(_) => login_unavailable(&error),
                _ => user_error(
                    "FATAL",
                    "28000",
                    format!("user \"{user}\" is locked or unknown"),
                ),
            })?;
        if !caller.may_somewhere(&platform::SQL_READ) {
            return Err(user_error(
                "ERROR",
                "42501",
                format!(
                    "permission denied: user \"{user}\" needs the permission {} in a company to read SQL",
                    platform::SQL_READ.name
                ),
            ));
        }
        let scope = ReadScope::of(&caller);
        let live = self
            .query
            .live()
            .await
            .map_err(|error| user_error("ERROR", "XX000", error.to_string()))?;
        let mut sessions = lock(&self.by_scope);
        if let Some(session) = sessions.get(&scope) {
            return Ok(session.clone());
        }
        if sessions.len() >= SESSIONS_MAX {
            sessions.clear();
        }
        let context = session_context(self.query.clone(), scope.clone())
            .map_err(|error| user_error("ERROR", "XX000", error.to_string()))?;
        context.register_udtf(
            crate::live::AS_OF,
            Arc::new(crate::live::AsOfFunction::new(live, scope.clone())),
        );
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(ReadOnly {
                explain_refused: crate::query::explain_refusal(&scope),
            }),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        let context = Arc::new(context);
        let session = Arc::new(Session {
            service: DfSessionService::new_with_hooks(Arc::clone(&context), hooks),
            context,
            query: self.query.clone(),
            planned: std::sync::Mutex::default(),
        });
        sessions.insert(scope, session.clone());
        Ok(session)
    }
}

fn user_error(severity: &str, code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.to_owned(),
        code.to_owned(),
        message,
    )))
}

/// Plans a prepared statement in the session of the client's user.
struct ScopedParser {
    sessions: Arc<Sessions>,
    /// Describes planned statements (from their plans alone, whatever the session).
    describe: Arc<Parser>,
}

#[async_trait]
impl QueryParser for ScopedParser {
    type Statement = <Parser as QueryParser>::Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.sessions.of(client).await?;
        let parsed = session.parse(client, sql, types).await?;
        Ok(parsed.map(|planned| planned.parsed.clone()))
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.describe.get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.describe.get_result_schema(statement, column_format)
    }
}

/// The session services, with every statement under the time limit (the server's, or the
/// client's `SET statement_timeout` when lower) and the row limit, both applied to the
/// streamed rows, not only to planning.
struct WireService {
    sessions: Arc<Sessions>,
    /// Splits a simple query's text into statements, as datafusion-postgres does.
    statements: PostgresCompatibilityParser,
    parser: Arc<ScopedParser>,
    limits: QueryLimits,
}

impl WireService {
    fn deadline<C: ClientInfo + ?Sized>(&self, client: &C) -> (Instant, u64) {
        let server = self.limits.timeout_ms;
        let timeout_ms = client
            .metadata()
            .get(CLIENT_TIMEOUT_KEY)
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or(server, |ms| ms.min(server));
        (
            Instant::now() + Duration::from_millis(timeout_ms),
            timeout_ms,
        )
    }

    /// Limits a query's rows in time, count and bytes; its time (from `started`) and rows are
    /// recorded when they end.
    fn limit(
        &self,
        response: Response,
        started: std::time::Instant,
        span: tracing::Span,
        deadline: Instant,
        timeout_ms: u64,
    ) -> Response {
        match response {
            Response::Query(mut query) => {
                let rows =
                    std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
                query.data_rows = Box::pin(Limited {
                    rows,
                    sleep: Box::pin(tokio::time::sleep_until(deadline)),
                    timeout_ms,
                    rows_max: self.limits.rows_max,
                    bytes_max: self.limits.answer_bytes_max,
                    sent: 0,
                    bytes: 0,
                    done: false,
                    started,
                    span,
                });
                Response::Query(query)
            }
            other => other,
        }
    }
}

fn timeout_error(timeout_ms: u64) -> PgWireError {
    user_error(
        "ERROR",
        "57014",
        format!(
            "canceling statement due to statement timeout: the query ran longer than its limit of {timeout_ms} ms"
        ),
    )
}

fn too_many_rows_error(rows_max: usize) -> PgWireError {
    user_error(
        "ERROR",
        "54000",
        format!("the query returned more than {rows_max} rows; add a LIMIT or aggregate"),
    )
}

fn too_large_error(bytes_max: usize) -> PgWireError {
    user_error(
        "ERROR",
        "54000",
        format!("the answer is larger than {bytes_max} bytes; select fewer or shorter values"),
    )
}

/// A row stream that ends with an error at the deadline or past the row or byte limit.
struct Limited {
    rows: SendableRowStream,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout_ms: u64,
    rows_max: usize,
    bytes_max: usize,
    sent: usize,
    bytes: usize,
    done: bool,
    started: std::time::Instant,
    /// The query's span, from its planning to its last row.
    span: tracing::Span,
}

impl Limited {
    /// Ends the stream with `item` (None: all rows sent), recording the query once.
    fn end(
        &mut self,
        item: Option<<Self as Stream>::Item>,
    ) -> Poll<Option<<Self as Stream>::Item>> {
        self.done = true;
        let succeeded = item.is_none();
        // The span ends with the rows (dropped here, not when the client closes the portal).
        let span = std::mem::replace(&mut self.span, tracing::Span::none());
        crate::query::record_query(&span, "wire", succeeded, self.sent, self.started);
        Poll::Ready(item)
    }
}

impl Stream for Limited {
    type Item = <SendableRowStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            let error = timeout_error(self.timeout_ms);
            return self.end(Some(Err(error)));
        }
        match self.rows.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(row))) => {
                self.sent += 1;
                self.bytes += row.data.len();
                if self.sent > self.rows_max {
                    let error = too_many_rows_error(self.rows_max);
                    return self.end(Some(Err(error)));
                }
                if self.bytes > self.bytes_max {
                    let error = too_large_error(self.bytes_max);
                    return self.end(Some(Err(error)));
                }
                Poll::Ready(Some(Ok(row)))
            }
            Poll::Ready(Some(Err(error))) => self.end(Some(Err(error))),
            Poll::Ready(None) => self.end(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for WireService {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let started = std::time::Instant::now();
        let span = crate::query::query_span("wire");
        let (deadline, timeout_ms) = self.deadline(client);
        let session = self.sessions.of(client).await?;
        // Queries run from their session's plans, everything else (SET, SHOW, cursors,
        // transactions, refusals) through datafusion-postgres's hooks, statement by statement.
        let run = async {
            let statements = self
                .statements
                .parse(query)
                .map_err(|error| PgWireError::ApiError(Box::new(error)))?;
            if statements.is_empty() {
                return Ok::<_, PgWireError>(vec![Response::EmptyQuery]);
            }
            let mut responses = Vec::with_capacity(statements.len());
            for statement in statements {
                let text = statement.to_string();
                if let Statement::Query(_) = statement
                    && let Some(parsed) = session.parse(client, &text, &[]).await?
                    && let Some(plan) = without_parameters(&parsed.parsed)
                {
                    let format = Format::UnifiedText;
                    let kept = parsed.optimised.as_ref();
                    responses.push(session.execute(client, kept, plan, &format).await?);
                    continue;
                }
                responses
                    .extend(SimpleQueryHandler::do_query(&session.service, client, &text).await?);
            }
            Ok(responses)
        };
        let responses =
            tokio::time::timeout_at(deadline, tracing::Instrument::instrument(run, span.clone()))
                .await
                .map_err(|_| timeout_error(timeout_ms))??;
        Ok(responses
            .into_iter()
            .map(|response| self.limit(response, started, span.clone(), deadline, timeout_ms))
            .collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for WireService {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = ScopedParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let started = std::time::Instant::now();
        let span = crate::query::query_span("wire");
        let (deadline, timeout_ms) = self.deadline(client);
        let session = self.sessions.of(client).await?;
        // Planned in the session of the user's grants now (a plan of the same text there is
        // reused): a statement prepared before a role was revoked must not keep reading
        // through the tables it was planned with.
        let stored = &portal.statement;
        let parsed = session
            .parse(client, &stored.statement.0, &stored.parameter_types)
            .await?;
        let run = async {
            if let Some(planned) = parsed.as_deref() {
                let format = &portal.result_column_format;
                if let Some(plan) = without_parameters(&planned.parsed) {
                    let kept = planned.optimised.as_ref();
                    return session.execute(client, kept, plan, format).await;
                }
                // A query with `$n` placeholders: its values decoded as the types reported
                // for it at Describe, bound into the plan, run as any other (on the cluster
                // when there is one).
                if let (_, Some((Statement::Query(_), plan))) = &planned.parsed {
                    let types = self.parser.describe.get_parameter_types(&planned.parsed)?;
                    let bound = bind(plan, portal, &types)?;
                    return session.execute(client, None, &bound, format).await;
                }
            }
            let mut fresh = Portal::default();
            fresh.name.clone_from(&portal.name);
            fresh.statement = match parsed {
                Some(statement) => Arc::new(StoredStatement::new(
                    stored.id.clone(),
                    statement.parsed.clone(),
                    stored.parameter_types.clone(),
                )),
                None => stored.clone(),
            };
            fresh.parameter_format = portal.parameter_format.clone();
            fresh.parameters.clone_from(&portal.parameters);
            fresh.result_column_format = portal.result_column_format.clone();
            fresh.state = portal.state.clone();
            ExtendedQueryHandler::do_query(&session.service, client, &fresh, max_rows).await
        };
        let response =
            tokio::time::timeout_at(deadline, tracing::Instrument::instrument(run, span.clone()))
                .await
                .map_err(|_| timeout_error(timeout_ms))??;
        Ok(self.limit(response, started, span, deadline, timeout_ms))
    }
}
