//! The `tributary` binary: parses flags and starts the product; the logic lives in lib.rs.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use tributary::maintenance::CompactionOptions;

/// mimalloc instead of the system allocator: query execution allocates and frees buffers per
/// record batch on every core (`bench-queries`: small dashboard queries ~20% faster, README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Tributary: an ERP built as a data platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr: text, or one JSON object per line (for Loki, Vector). Traces go
    /// over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (e.g. http://127.0.0.1:4317).
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: tributary::telemetry::LogFormat,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Directory for the embedded event store and the lake.
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "TRIBUTARY_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Event store: postgres://user@host/db for production; default SQLite under --data-dir.
    #[arg(long, env = "TRIBUTARY_DATABASE_URL")]
    database_url: Option<String>,
    /// A context whose events are kept in a database of its own, `<context>=<url>`
    /// (repeatable; the env variable takes a comma-separated list); every other context on
    /// --database-url. Every process of the installation is given the same ones.
    #[arg(long = "context-database-url", env = "TRIBUTARY_CONTEXT_DATABASE_URLS", value_delimiter = ',',
          value_parser = tributary::databases::parse_route, hide_env_values = true)]
    context_database_urls: Vec<(String, String)>,
    /// Lake location; default <data-dir>/lake.
    #[arg(long, env = "TRIBUTARY_LAKE")]
    lake: Option<String>,
    /// Kafka bootstrap servers (host:port,...); with them the relay and bronze ingest run.
    #[arg(long, env = "TRIBUTARY_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// Put before every topic name (`<prefix>finance.events`): installations sharing a broker.
    #[arg(long, env = "TRIBUTARY_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Partitions of the topics Tributary creates: how many pipeline workers (and reactor
    /// processes) of one context can share its events. Topics that exist keep their count.
    #[arg(long, env = "TRIBUTARY_TOPIC_PARTITIONS", default_value_t = tributary::KAFKA_PARTITIONS,
          value_parser = clap::value_parser!(i32).range(1..=1000))]
    topic_partitions: i32,
    /// Static Kafka group membership: a stable id for this process (e.g. the pod name), so a
    /// restart takes its partitions back without a rebalance.
    #[arg(long, env = "TRIBUTARY_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Address of the PostgreSQL wire protocol endpoint (query role): psql, drivers, Grafana.
    #[arg(long, env = "TRIBUTARY_PG_ADDR", default_value = tributary_lakehouse::wire::DEFAULT_ADDR)]
    pg_addr: SocketAddr,
    /// PEM certificate chain of the SQL endpoint: with --pg-tls-key, clients may use TLS and
    /// then log in with their password or an access token (SCRAM otherwise).
    #[arg(long, env = "TRIBUTARY_PG_TLS_CERT", requires = "pg_tls_key")]
    pg_tls_cert: Option<PathBuf>,
    /// PEM private key of --pg-tls-cert.
    #[arg(long, env = "TRIBUTARY_PG_TLS_KEY", requires = "pg_tls_cert")]
    pg_tls_key: Option<PathBuf>,
    /// Keys of sealed fields (AES-256-GCM): `id=<base64 of 32 bytes>,…`, the first sealing,
    /// the others opening what older keys sealed; default: a key generated and kept in the
    /// event store's database. `tributary field-key <id>` prints a new one.
    #[arg(long, env = "TRIBUTARY_FIELD_KEYS", hide_env_values = true)]
    field_keys: Option<String>,
    /// Where report outputs (CSV, XLSX, Parquet, PDF) go: a directory or s3://bucket/prefix;
    /// default <data-dir>/reports.
    #[arg(long, env = "TRIBUTARY_REPORTS")]
    reports: Option<String>,
    /// Statement structure (JSON, see sql/reports/statement-structure.json); default: the
    /// lines by account type.
    #[arg(long, env = "TRIBUTARY_STATEMENT_STRUCTURE")]
    statement_structure: Option<PathBuf>,
    /// Comma-separated contexts this process runs (routes, pipelines, topics, tables);
    /// default: every context.
    #[arg(long, env = "TRIBUTARY_CONTEXTS", value_delimiter = ',')]
    contexts: Option<Vec<String>>,
    /// The password of the first user, `admin`, created on the first start on an empty
    /// store; when unset a generated one is printed once.
    #[arg(long, env = "TRIBUTARY_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// The secret (32 bytes or more) access tokens are signed with; default: a generated one
    /// kept in the event store's database, shared by every process of the installation.
    #[arg(long, env = "TRIBUTARY_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// How long an access token is valid, in seconds.
    #[arg(long, env = "TRIBUTARY_ACCESS_TOKEN_SECONDS", default_value_t = 900)]
    access_token_seconds: u64,
    /// How long a refresh token is valid, in seconds.
    #[arg(long, env = "TRIBUTARY_REFRESH_TOKEN_SECONDS", default_value_t = 30 * 24 * 3600)]
    refresh_token_seconds: u64,
    /// An external identity provider's JWKS URL: its tokens are trusted besides ours (with
    /// --oidc-issuer and --oidc-audience).
    #[arg(long, env = "TRIBUTARY_OIDC_JWKS_URL", requires_all = ["oidc_issuer", "oidc_audience"])]
    oidc_jwks_url: Option<String>,
    /// The `iss` the external provider's tokens must carry.
    #[arg(long, env = "TRIBUTARY_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The `aud` the external provider's tokens must carry (this installation's client id).
    #[arg(long, env = "TRIBUTARY_OIDC_AUDIENCE")]
    oidc_audience: Option<String>,
    /// Longest an HTTP request may take, in seconds, before it is answered 503.
    #[arg(long, env = "TRIBUTARY_HTTP_TIMEOUT_SECONDS", default_value_t = 60)]
    http_timeout_seconds: u64,
    /// Requests one user may make per minute before 429 (0: no limit).
    #[arg(long, env = "TRIBUTARY_RATE_LIMIT_PER_MINUTE", default_value_t = 6_000)]
    rate_limit_per_minute: u64,
    /// Redis the rate limit counts in, shared by every process (e.g. redis://127.0.0.1:6379);
    /// default: each process counts its own.
    #[arg(long, env = "TRIBUTARY_REDIS_URL")]
    redis_url: Option<String>,
    /// Hours an Idempotency-Key is remembered; afterwards it may be used again.
    #[arg(long, env = "TRIBUTARY_IDEMPOTENCY_KEY_HOURS", default_value_t = 24)]
    idempotency_key_hours: u64,
    /// Longest a query may run, in milliseconds (HTTP, the wire endpoint, report runs).
    #[arg(long, env = "TRIBUTARY_QUERY_TIMEOUT_MS", default_value_t = 30_000)]
    query_timeout_ms: u64,
    /// Memory the queries of the process share, in MiB (sorts, joins, aggregates).
    #[arg(long, env = "TRIBUTARY_QUERY_MEMORY_MIB", default_value_t = 2048)]
    query_memory_mib: usize,
    /// Largest answer of one query, in MiB (over HTTP and the wire endpoint).
    #[arg(long, env = "TRIBUTARY_QUERY_ANSWER_MIB", default_value_t = 64)]
    query_answer_mib: usize,
    /// Queries running at once (more wait their turn within their time limit).
    #[arg(long, env = "TRIBUTARY_QUERIES_MAX", default_value_t = 16)]
    queries_max: usize,
    /// Open connections of the wire endpoint (more are refused).
    #[arg(long, env = "TRIBUTARY_PG_CONNECTIONS_MAX", default_value_t = 64)]
    pg_connections_max: usize,
    /// The claim of an external token that names the Tributary user (`sub`; another only
    /// where the provider does not let users choose it).
    #[arg(long, env = "TRIBUTARY_OIDC_USERNAME_CLAIM", default_value = "sub")]
    oidc_username_claim: String,
    /// Serve materials' availability over gRPC at this address (a process running the
    /// materials context), for sales processes started with --materials-url.
    #[arg(long, env = "TRIBUTARY_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// Materials' gRPC availability service (http://host:port): sales' availability check asks
    /// it instead of reading materials' events in process.
    #[arg(long, env = "TRIBUTARY_MATERIALS_URL")]
    materials_url: Option<String>,
    /// Hours the data files compaction replaced are kept before a vacuum deletes them: time
    /// travel (`as_of` in SQL) reaches back this far.
    #[arg(long, env = "TRIBUTARY_VACUUM_RETENTION_HOURS", default_value_t = 168)]
    vacuum_retention_hours: u64,
    /// Seconds between looks at the lake's tables for compaction (by the writer roles).
    #[arg(long, env = "TRIBUTARY_COMPACTION_INTERVAL_SECS",
          default_value_t = CompactionOptions::default().interval.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    compaction_interval_secs: u64,
    /// A table is compacted once it has at least this many data files.
    #[arg(long, env = "TRIBUTARY_COMPACTION_FILES_MIN",
          default_value_t = CompactionOptions::default().files_min as u64,
          value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    compaction_files_min: u64,
    /// Least milliseconds from one pipeline batch's start to the next while events keep
    /// coming (fewer, larger lake commits; a full batch goes on at once).
    #[arg(long, env = "TRIBUTARY_PIPELINE_BATCH_INTERVAL_MS",
          default_value_t = pipeline_batch_interval_ms_default(),
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pipeline_batch_interval_ms: u64,
    /// A Ballista scheduler (df://host:port, see `tributary ballista scheduler`): the query
    /// role runs lake queries (/api/v1/sql, the wire endpoint, report runs) on its cluster.
    #[arg(long, env = "TRIBUTARY_BALLISTA")]
    ballista: Option<String>,
    /// Hash partitions of each shuffle on the Ballista cluster (tasks per stage).
    #[arg(long, env = "TRIBUTARY_BALLISTA_TARGET_PARTITIONS",
          default_value_t = tributary_lakehouse::cluster::TARGET_PARTITIONS_DEFAULT)]
    ballista_target_partitions: usize,
    #[command(flatten)]
    group_commit: tributary::GroupCommitArgs,
}

/// Where the lake is, for the `lake` commands.
#[derive(clap::Args, Clone)]
struct LakeLocation {
    /// The data directory whose `lake` is meant (when --lake is not given).
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Lake location (a directory or s3://bucket/prefix); default <data-dir>/lake.
    #[arg(long, env = "TRIBUTARY_LAKE")]
    lake: Option<String>,
}

impl LakeLocation {
    fn location(&self) -> String {
        tributary::lake_location(&self.data_dir, self.lake.as_deref())
    }
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Every table: version, when committed, files, size, rows, files replaced by compaction
    /// and kept for time travel, newest checkpoint, oldest version in the log.
    Status {
        #[command(flatten)]
        at: LakeLocation,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete the data files no version younger than the retention reads (the writer roles
    /// also do this every hour).
    Vacuum {
        #[command(flatten)]
        at: LakeLocation,
        #[arg(long, env = "TRIBUTARY_VACUUM_RETENTION_HOURS", default_value_t = 168)]
        retention_hours: u64,
        /// Comma-separated tables; default every table.
        #[arg(long, value_delimiter = ',')]
        tables: Option<Vec<String>>,
    },
}

#[derive(Subcommand)]
enum BallistaCommand {
    /// The cluster's scheduler: plans stages and hands tasks to the executors.
    Scheduler(tributary::cluster::SchedulerArgs),
    /// An executor: runs tasks, keeps their shuffle output in its work directory.
    Executor(tributary::cluster::ExecutorArgs),
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process (the embedded default).
    Up(RunArgs),
    /// Run some roles only, so production can scale them apart.
    Serve {
        #[command(flatten)]
        args: RunArgs,
        /// Comma-separated roles: api, relay, ingest, pipelines, query, reactors.
        #[arg(long, env = "TRIBUTARY_ROLES", value_parser = parse_roles)]
        role: tributary::Roles,
    },
    /// Post entries over HTTP with concurrent clients and print throughput, latency and freshness.
    Bench(tributary::bench::BenchArgs),
    /// Finance dashboard queries and the trial balance over the wire protocol, against DuckDB
    /// over the same Parquet files (on a data directory filled by `generate`).
    BenchQueries(tributary::bench::queries::QueryBenchArgs),
    /// A command on a material with a long history, from a full replay and from its snapshot.
    BenchSnapshots(tributary::bench::snapshots::SnapshotBenchArgs),
    /// The PostgreSQL event store as it grows: appends and the feed at each size.
    BenchStore(tributary::bench::store::StoreBenchArgs),
    /// Goods receipts over HTTP with the GL postings flowing, against journal entries.
    BenchReceipts(tributary::bench::receipts::ReceiptBenchArgs),
    /// Order to cash over HTTP with postings flowing, the availability check in process and
    /// over gRPC, the receivables aging against DuckDB.
    BenchSales(tributary::bench::sales::SalesBenchArgs),
    /// MRP over a generated plant: full runs, net change after one changed order line, memory.
    BenchMrp(tributary::bench::mrp::MrpBenchArgs),
    /// Generate a realistic finance history (deterministic for a seed) into the event store.
    Generate(tributary::generate::GenerateArgs),
    /// GET a URL and succeed on a 2xx answer (a container's health check: the image has no
    /// curl), e.g. `tributary probe http://127.0.0.1:8080/healthz`.
    Probe {
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout_seconds: u64,
    },
    /// Lake upkeep: `status` (tables, versions, files, sizes) and `vacuum`.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// Make the lake's pipeline tables again from the event store (after a restore, or a lost
    /// lake) and switch readers over to them table by table once each has caught up.
    Rebuild {
        #[command(flatten)]
        at: LakeLocation,
        /// Event store: postgres://user@host/db; default SQLite under --data-dir.
        #[arg(long, env = "TRIBUTARY_DATABASE_URL")]
        database_url: Option<String>,
        /// A context whose events are kept in a database of its own, `<context>=<url>`
        /// (repeatable; the env variable takes a comma-separated list); every other context on
        /// --database-url. Every process of the installation is given the same ones.
        #[arg(long = "context-database-url", env = "TRIBUTARY_CONTEXT_DATABASE_URLS", value_delimiter = ',',
              value_parser = tributary::databases::parse_route, hide_env_values = true)]
        context_database_urls: Vec<(String, String)>,
        /// Comma-separated tables; default every table a pipeline makes.
        #[arg(long, value_delimiter = ',')]
        tables: Option<Vec<String>>,
    },
    /// A Ballista cluster for the query role's --ballista: `scheduler` or `executor`.
    Ballista {
        #[command(subcommand)]
        command: BallistaCommand,
    },
    /// Print a new field key (`id=<base64>`) to put first in TRIBUTARY_FIELD_KEYS.
    FieldKey {
        /// The key's id, named in every value it seals (e.g. k2026).
        id: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the OTLP exporter's channel lives on it.
    let telemetry = match runtime.block_on(async { tributary::telemetry::init(cli.log_format) }) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: cannot set up logs, traces and metrics: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => {
                // Without a broker the embedded default has no relay or bronze ingest.
                let roles = match args.kafka_brokers {
                    Some(_) => tributary::Roles::all(),
                    None => tributary::Roles::embedded(),
                };
                up(args, roles).await
            }
            Command::Serve { args, role } => up(args, role).await,
            Command::Bench(args) => tributary::bench::run(args).await,
            Command::BenchQueries(args) => tributary::bench::queries::run(args).await,
            Command::BenchSnapshots(args) => tributary::bench::snapshots::run(args).await,
            Command::BenchStore(args) => tributary::bench::store::run(args).await,
            Command::BenchReceipts(args) => tributary::bench::receipts::run(args).await,
            Command::BenchSales(args) => tributary::bench::sales::run(args).await,
            Command::BenchMrp(args) => tributary::bench::mrp::run(args).await,
            Command::Probe {
                url,
                timeout_seconds,
            } => tributary::client::probe(&url, std::time::Duration::from_secs(timeout_seconds)).await,
            Command::Lake {
                command: LakeCommand::Status { at, json },
            } => tributary::lake_cli::status(&at.location(), json).await,
            Command::Lake {
                command:
                    LakeCommand::Vacuum {
                        at,
                        retention_hours,
                        tables,
                    },
            } => {
                tributary::lake_cli::vacuum(&at.location(), hours(retention_hours), tables).await
            }
            Command::Rebuild {
                at,
                database_url,
                context_database_urls,
                tables,
            } => {
                let started = std::time::Instant::now();
                let rebuilt = tributary::rebuild::rebuild(tributary::rebuild::RebuildOptions {
                    store_url: tributary::store_url(&at.data_dir, database_url.as_deref()),
                    context_database_urls,
                    lake: at.location(),
                    tables,
                    progress: true,
                })
                .await?;
                for table in &rebuilt.tables {
                    println!(
                        "{}: rebuilt (version {}: {} files replaced by {})",
                        table.table, table.version, table.files_removed, table.files_added
                    );
                }
                println!(
                    "rebuilt {} tables from {} events read in {:.1} s",
                    rebuilt.tables.len(),
                    rebuilt.events,
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Command::Ballista {
                command: BallistaCommand::Scheduler(args),
            } => tributary::cluster::run_scheduler(args).await,
            Command::Ballista {
                command: BallistaCommand::Executor(args),
            } => tributary::cluster::run_executor(args).await,
            Command::FieldKey { id } => {
                println!(
                    "{}",
                    tributary_kernel::sealed::FieldKeys::generate_config(&id)?
                );
                Ok(())
            }
            Command::Generate(args) => {
                let started = std::time::Instant::now();
                let generated = tributary::generate::run(args).await?;
                println!(
                    "generated {} journal entries with {} lines in {:.1} s; `tributary up` on the same store builds the lake",
                    generated.entries,
                    generated.lines,
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
        }
    });
    // Outside the runtime's async context: the exporter's shutdown blocks.
    runtime.block_on(async {
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn hours(count: u64) -> std::time::Duration {
    std::time::Duration::from_secs(count.saturating_mul(3600))
}

fn parse_roles(list: &str) -> Result<tributary::Roles, String> {
    tributary::Roles::parse(list)
}

async fn up(args: RunArgs, roles: tributary::Roles) -> anyhow::Result<()> {
    let mut config = tributary::Config::embedded(args.data_dir, args.http_addr);
    config.database_url = args.database_url;
    config.context_database_urls = args.context_database_urls;
    config.lake = args.lake;
    config.kafka_brokers = args.kafka_brokers;
    config.topic_prefix = args.topic_prefix;
    config.topic_partitions = args.topic_partitions;
    config.instance_id = args.instance_id;
    config.roles = roles;
    config.contexts = args.contexts;
    config.pg = Some(tributary_lakehouse::wire::WireOptions {
        addr: args.pg_addr,
        tls: args
            .pg_tls_cert
            .zip(args.pg_tls_key)
            .map(|(certificate, key)| tributary_lakehouse::wire::TlsFiles { certificate, key }),
    });
    config.field_keys = args.field_keys;
    config.grpc_addr = args.grpc_addr;
    config.materials_url = args.materials_url;
    config.http_timeout = std::time::Duration::from_secs(args.http_timeout_seconds);
    config.rate_limit =
        (args.rate_limit_per_minute > 0).then_some(tributary_kernel::ratelimit::RateLimit {
            requests: args.rate_limit_per_minute,
            window: std::time::Duration::from_secs(60),
        });
    config.redis_url = args.redis_url;
    if let Some(compaction) = &mut config.compaction {
        compaction.vacuum_retention = hours(args.vacuum_retention_hours);
        compaction.interval = std::time::Duration::from_secs(args.compaction_interval_secs);
        compaction.files_min = usize::try_from(args.compaction_files_min).unwrap_or(usize::MAX);
    }
    config.runner.batch_interval_min =
        std::time::Duration::from_millis(args.pipeline_batch_interval_ms);
    config.idempotency_ttl = std::time::Duration::from_secs(args.idempotency_key_hours * 3600);
    config.group_commit = args.group_commit.options();
    config.ballista = match &args.ballista {
        Some(address) => Some(
            tributary_lakehouse::cluster::Cluster::parse(address)?
                .with_target_partitions(args.ballista_target_partitions)?,
        ),
        None => None,
    };
    config.query_limits = tributary_lakehouse::QueryLimits {
        timeout_ms: args.query_timeout_ms,
        memory_bytes_max: args.query_memory_mib << 20,
        answer_bytes_max: args.query_answer_mib << 20,
        concurrent_max: args.queries_max,
        wire_connections_max: args.pg_connections_max,
        ..tributary_lakehouse::QueryLimits::default()
    };
    config.identity = tributary_identity::IdentityOptions {
        access_token_ttl: std::time::Duration::from_secs(args.access_token_seconds),
        refresh_token_ttl: std::time::Duration::from_secs(args.refresh_token_seconds),
        admin_password: args.admin_password,
        signing_secret: args.token_secret,
        external: match (args.oidc_jwks_url, args.oidc_issuer, args.oidc_audience) {
            (Some(jwks), Some(issuer), Some(audience)) => {
                let mut provider =
                    tributary_identity::ExternalProvider::new(&jwks, &issuer, &audience);
                provider.username_claim = args.oidc_username_claim;
                Some(provider)
            }
            _ => None,
        },
        ..tributary_identity::IdentityOptions::default()
    };
    config.reports = Some(tributary::ReportsConfig {
        outputs: args.reports,
        structure: args.statement_structure,
        tick: None,
    });
    let running = tributary::start(config.clone()).await?;
    println!("Tributary is up (roles: {}).", roles.names().join(", "));
    // Every role answers HTTP: /healthz and /metrics, and the API of its roles.
    println!(
        "  HTTP API      http://{}  (health: /healthz, metrics: /metrics, API: /api/v1)",
        running.addr
    );
    if roles.query {
        println!("  SQL           POST http://{}/api/v1/sql", running.addr);
        println!("  reports       http://{}/api/v1/reports", running.addr);
        if let Some(cluster) = &config.ballista {
            println!(
                "  Ballista      {}  (lake queries run on its cluster)",
                cluster.scheduler_url()
            );
        }
    }
    if let (Some(addr), Some(pg)) = (running.pg_addr, &config.pg) {
        println!(
            "  SQL clients   {}  (psql, drivers, Grafana; any user, {})",
            tributary_lakehouse::wire::connection_string(addr, "admin"),
            if pg.tls.is_some() {
                "TLS: password or access token; plain: SCRAM"
            } else {
                "SCRAM with the user's password"
            }
        );
    }
    println!(
        "  event store   {} ({})",
        tributary::redact(&config.database_url()),
        running.store.backend()
    );
    for (context, url) in &config.context_database_urls {
        println!("  {context:<13} {}  (its events)", tributary::redact(url));
    }
    println!("  lake          {}", running.lake.root());
    if let Some(addr) = running.grpc_addr {
        println!("  availability  http://{addr}  (gRPC, tributary.materials.v1.Availability)");
    }
    if let Some(url) = &config.materials_url {
        println!("  materials     {url}  (gRPC availability for sales)");
    }
    if let Some(brokers) = &config.kafka_brokers {
        println!("  kafka         {brokers} (topics <context>.events)");
    }
    println!("Stop with Ctrl-C or SIGTERM.");
    shutdown_signal()
        .await
        .context("while waiting for a shutdown signal")?;
    println!("Stopping: finishing in-flight requests and the current pipeline batch.");
    running.stop().await;
    println!("Stopped.");
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

fn pipeline_batch_interval_ms_default() -> u64 {
    let interval = tributary_pipelines::RunnerOptions::default().batch_interval_min;
    u64::try_from(interval.as_millis()).unwrap_or(u64::MAX)
}
