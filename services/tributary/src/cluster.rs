//! `tributary ballista scheduler|executor`: a Ballista cluster built into our binary.
//!
//! ```text
//!  tributary serve --role query --ballista df://10.0.0.5:50050
//!        │ physical plans (gRPC)                 ▲ results (Arrow Flight)
//!        ▼                                       │
//!  tributary ballista scheduler --bind 10.0.0.5:50050
//!        │ tasks pushed (gRPC)   ▲ heartbeats, task status
//!        ▼                       │
//!  tributary ballista executor --scheduler 10.0.0.5:50050 --bind 10.0.0.6:50052
//!        --flight-port 50051 --work-dir /var/lib/tributary/ballista --task-slots 8
//! ```
//! Both are Ballista's own servers (`start_server`, `start_executor_process`) running on the
//! workspace's DataFusion, so a plan the query role makes is one every executor can decode.
//! Scheduler and executors must agree on how tasks reach executors: both use
//! [`SCHEDULING_POLICY`], whatever Ballista's defaults are (they differ between its
//! binaries and its standalone helpers).

use anyhow::{Context, bail};
use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::start_server;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Push: the scheduler hands each task to a free slot of an executor at once (no polling
/// delay), and a launch that fails because the executor is gone removes that executor at
/// once, so its tasks move to the others without waiting for its heartbeat to expire.
pub const SCHEDULING_POLICY: TaskSchedulingPolicy = TaskSchedulingPolicy::PushStaged;

#[derive(clap::Args, Clone, Debug)]
pub struct SchedulerArgs {
    /// Address the scheduler's gRPC service (and its /healthz, /readyz) listens on.
    #[arg(
        long,
        env = "TRIBUTARY_BALLISTA_BIND",
        default_value = "127.0.0.1:50050"
    )]
    pub bind: SocketAddr,
    /// Host name executors reach this scheduler at (it tells them in push mode); default:
    /// the --bind address, which must then not be 0.0.0.0.
    #[arg(long, env = "TRIBUTARY_BALLISTA_EXTERNAL_HOST")]
    pub external_host: Option<String>,
    /// Seconds without a heartbeat after which an executor counts as dead and its tasks and
    /// shuffle output are scheduled again elsewhere (Ballista's default is 180).
    #[arg(long, default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(2..=3_600))]
    pub executor_timeout_seconds: u64,
    /// Seconds between looks for executors past their timeout (Ballista's default is 15).
    #[arg(long, default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub expire_dead_executor_interval_seconds: u64,
    /// Seconds running jobs wait for an executor after the last one is lost before they fail;
    /// default: the executor timeout.
    #[arg(long)]
    pub no_executors_grace_period_seconds: Option<u64>,
    /// Live executors the scheduler needs before /readyz answers 200.
    #[arg(long, default_value_t = 1)]
    pub min_ready_executors: usize,
    /// Seconds shuffle files of a finished job stay on the executors.
    #[arg(long, default_value_t = 300)]
    pub finished_job_data_seconds: u64,
}

#[derive(clap::Args, Clone, Debug)]
pub struct ExecutorArgs {
    /// The scheduler's address (host:port).
    #[arg(
        long,
        env = "TRIBUTARY_BALLISTA_SCHEDULER",
        default_value = "127.0.0.1:50050"
    )]
    pub scheduler: String,
    /// Address of this executor's gRPC service, to which the scheduler pushes tasks.
    #[arg(
        long,
        env = "TRIBUTARY_BALLISTA_EXECUTOR_BIND",
        default_value = "127.0.0.1:50052"
    )]
    pub bind: SocketAddr,
    /// Port of this executor's Arrow Flight service (on the --bind host): other executors
    /// fetch its shuffle output there, and query roles their results.
    #[arg(long, env = "TRIBUTARY_BALLISTA_FLIGHT_PORT", default_value_t = 50051)]
    pub flight_port: u16,
    /// Host name the scheduler, other executors and query roles reach this executor at;
    /// default: the address the scheduler sees it connect from.
    #[arg(long, env = "TRIBUTARY_BALLISTA_EXTERNAL_HOST")]
    pub external_host: Option<String>,
    /// Directory of the shuffle files this executor writes (one directory per job).
    #[arg(long, env = "TRIBUTARY_BALLISTA_WORK_DIR")]
    pub work_dir: PathBuf,
    /// Tasks this executor runs at once; default: one per core.
    #[arg(long, env = "TRIBUTARY_BALLISTA_TASK_SLOTS")]
    pub task_slots: Option<usize>,
    /// Seconds between heartbeats to the scheduler: keep it well under the scheduler's
    /// --executor-timeout-seconds (Ballista's default is 60).
    #[arg(long, default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub heartbeat_interval_seconds: u64,
    /// Seconds to keep trying to reach the scheduler at start (it may start after us).
    #[arg(long, default_value_t = 30)]
    pub scheduler_connect_timeout_seconds: u16,
}

/// Runs a scheduler until it fails or the process is asked to stop (Ctrl-C, SIGTERM).
pub async fn run_scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    let external_host = match &args.external_host {
        Some(host) => host.clone(),
        None if args.bind.ip().is_unspecified() => bail!(
            "--bind {} listens on every address: give --external-host, the name executors reach this scheduler at",
            args.bind
        ),
        None => args.bind.ip().to_string(),
    };
    let grace_seconds = args
        .no_executors_grace_period_seconds
        .unwrap_or(args.executor_timeout_seconds);
    let mut config = SchedulerConfig::default()
        .with_hostname(external_host)
        .with_port(args.bind.port())
        .with_scheduler_policy(SCHEDULING_POLICY)
        // One scheduler: spread a stage's tasks over the executors rather than filling the
        // first one's slots.
        .with_task_distribution(TaskDistributionPolicy::RoundRobin)
        .with_no_executors_grace_period_seconds(grace_seconds)
        .with_finished_job_data_clean_up_interval_seconds(args.finished_job_data_seconds);
    config.executor_timeout_seconds = args.executor_timeout_seconds;
    config.expire_dead_executor_interval_seconds = args.expire_dead_executor_interval_seconds;
    config.min_ready_executors = args.min_ready_executors;
    // Ballista's own sessions, whose object stores also open S3 buckets: the scheduler
    // decodes each plan, and with it the stores its scans name (`s3://` lakes).
    config.override_session_builder = Some(Arc::new(|session| {
        let state = ballista_core::utils::default_session_builder(session)?;
        Ok(
            datafusion::execution::SessionStateBuilder::new_from_existing(state)
                .with_runtime_env(bucket_runtime(None)?)
                .build(),
        )
    }));
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .context("while creating the scheduler's cluster state")?;
    println!(
        "Ballista scheduler listening on {} (push scheduling, executors dead after {} s without a heartbeat)",
        args.bind, args.executor_timeout_seconds
    );
    tokio::select! {
        served = start_server(cluster, args.bind, config) => {
            served.with_context(|| format!("while serving the scheduler on {}", args.bind))
        }
        signal = shutdown_signal() => signal.context("while waiting for a shutdown signal"),
    }
}

/// Runs an executor until it fails or the process is asked to stop (Ballista's executor
/// handles Ctrl-C and SIGTERM itself: it tells the scheduler and drains its tasks).
pub async fn run_executor(args: ExecutorArgs) -> anyhow::Result<()> {
    let (scheduler_host, scheduler_port) = args
        .scheduler
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
        .filter(|(host, _)| !host.is_empty())
        .with_context(|| {
            format!(
                "--scheduler {:?}: expected host:port, e.g. 127.0.0.1:50050",
                args.scheduler
            )
        })?;
    if args.bind.port() == args.flight_port {
        bail!(
            "--bind {} and --flight-port {}: the gRPC and Flight services need a port each",
            args.bind,
            args.flight_port
        );
    }
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("while creating --work-dir {}", args.work_dir.display()))?;
    let work_dir = args
        .work_dir
        .canonicalize()
        .with_context(|| format!("while resolving --work-dir {}", args.work_dir.display()))?;
    let task_slots = match args.task_slots {
        Some(0) => bail!("--task-slots must be at least 1"),
        Some(slots) => slots,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let config = ExecutorProcessConfig {
        bind_host: args.bind.ip().to_string(),
        external_host: args.external_host.clone(),
        port: args.flight_port,
        grpc_port: args.bind.port(),
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: args.scheduler_connect_timeout_seconds,
        vcores: task_slots,
        task_scheduling_policy: SCHEDULING_POLICY,
        work_dir: Some(work_dir.display().to_string()),
        executor_heartbeat_interval_seconds: args.heartbeat_interval_seconds,
        // Ballista's own runtime (spill files in the work directory) whose object stores also
        // open S3 buckets (`s3://` lakes, with the query role's `AWS_*` variables).
        override_runtime_producer: Some({
            let spill = work_dir.clone();
            Arc::new(move |_: &datafusion::prelude::SessionConfig| bucket_runtime(Some(&spill)))
        }),
        ..ExecutorProcessConfig::default()
    };
    println!(
        "Ballista executor {} (gRPC {}, Flight port {}, {} task slots, work dir {}) for scheduler {}",
        config.executor_id,
        args.bind,
        args.flight_port,
        task_slots,
        work_dir.display(),
        args.scheduler
    );
    start_executor_process(Arc::new(config))
        .await
        .context("while running the executor")
}

/// Ballista's runtime (spill files in `spill` when given) whose object stores also open S3
/// buckets, with this process's `AWS_*` variables (see [`tributary_lakehouse::s3::BucketStores`]).
fn bucket_runtime(
    spill: Option<&std::path::Path>,
) -> datafusion::error::Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(tributary_lakehouse::s3::BucketStores::default()));
    if let Some(spill) = spill {
        runtime = runtime.with_temp_file_path(spill);
    }
    Ok(Arc::new(runtime.build()?))
}

async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

/// How [`LocalCluster::start`] starts its processes.
#[derive(Clone, Debug)]
pub struct LocalClusterOptions {
    /// Executor processes.
    pub executors: usize,
    /// Task slots of each executor.
    pub task_slots: usize,
    /// The scheduler's `--executor-timeout-seconds`.
    pub executor_timeout_seconds: u64,
    /// The scheduler's `--expire-dead-executor-interval-seconds`.
    pub expire_dead_executor_interval_seconds: u64,
    /// The executors' `--heartbeat-interval-seconds`.
    pub heartbeat_interval_seconds: u64,
    /// `RUST_LOG` of the processes.
    pub log_filter: String,
    /// More environment variables of the processes (`AWS_*` for an `s3://` lake).
    pub envs: Vec<(String, String)>,
}

impl Default for LocalClusterOptions {
    fn default() -> Self {
        LocalClusterOptions {
            executors: 2,
            task_slots: 1,
            executor_timeout_seconds: 20,
            expire_dead_executor_interval_seconds: 5,
            heartbeat_interval_seconds: 5,
            log_filter: "warn,ballista_scheduler=info,ballista_executor=info,ballista_core=warn"
                .to_owned(),
            envs: Vec::new(),
        }
    }
}

/// A Ballista scheduler and executors as child processes of a `tributary` binary on loopback
/// (free ports, a work directory per executor under `dir`, each process's output in
/// `<dir>/<scheduler|executor-N>.log`), for the tests and `bench-queries --ballista-executors`.
/// Every process is killed when this is dropped.
pub struct LocalCluster {
    dir: PathBuf,
    scheduler_port: u16,
    _scheduler: tokio::process::Child,
    executors: Vec<tokio::process::Child>,
}

impl LocalCluster {
    /// Starts the scheduler and `options.executors` executors of `binary`; returns once the
    /// scheduler's `/readyz` says all executors registered (within 60 s).
    pub async fn start(
        binary: &std::path::Path,
        dir: &std::path::Path,
        options: &LocalClusterOptions,
    ) -> anyhow::Result<LocalCluster> {
        if options.executors == 0 || options.task_slots == 0 {
            bail!("a local cluster needs at least one executor with at least one task slot");
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
        let spawn = |arguments: Vec<String>, name: &str| -> anyhow::Result<tokio::process::Child> {
            let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
            tokio::process::Command::new(binary)
                .args(arguments)
                .env("RUST_LOG", &options.log_filter)
                .envs(options.envs.iter().map(|(name, value)| (name, value)))
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("while starting {} ballista {name}", binary.display()))
        };
        // Every port picked while the others are still held, so no two are the same (two
        // executors given one gRPC port: the second failed with "Address already in use").
        let mut ports = free_ports(1 + 2 * options.executors)?.into_iter();
        let mut port = move || {
            ports
                .next()
                .context("no port left for the cluster (one per process and service)")
        };
        let scheduler_port = port()?;
        let scheduler = spawn(
            vec![
                "ballista".into(),
                "scheduler".into(),
                "--bind".into(),
                format!("127.0.0.1:{scheduler_port}"),
                "--executor-timeout-seconds".into(),
                options.executor_timeout_seconds.to_string(),
                "--expire-dead-executor-interval-seconds".into(),
                options.expire_dead_executor_interval_seconds.to_string(),
                "--min-ready-executors".into(),
                options.executors.to_string(),
            ],
            "scheduler",
        )?;
        let mut cluster = LocalCluster {
            dir: dir.to_owned(),
            scheduler_port,
            _scheduler: scheduler,
            executors: Vec::with_capacity(options.executors),
        };
        for n in 0..options.executors {
            let executor = spawn(
                vec![
                    "ballista".into(),
                    "executor".into(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{scheduler_port}"),
                    "--bind".into(),
                    format!("127.0.0.1:{}", port()?),
                    "--flight-port".into(),
                    port()?.to_string(),
                    "--work-dir".into(),
                    cluster.work_dir(n).display().to_string(),
                    "--task-slots".into(),
                    options.task_slots.to_string(),
                    "--heartbeat-interval-seconds".into(),
                    options.heartbeat_interval_seconds.to_string(),
                ],
                &format!("executor-{n}"),
            )?;
            cluster.executors.push(executor);
        }
        // The scheduler's /readyz answers 200 once --min-ready-executors executors are alive.
        let ready = format!("http://127.0.0.1:{scheduler_port}/readyz");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let answer = client.get(&ready).send().await;
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(cluster);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the scheduler did not see {} executors within 60 s; logs:\n{}",
                    options.executors,
                    cluster.logs()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The scheduler's address for `--ballista`.
    pub fn address(&self) -> String {
        format!("df://127.0.0.1:{}", self.scheduler_port)
    }

    /// Executor `n`'s work directory.
    pub fn work_dir(&self, executor: usize) -> PathBuf {
        self.dir.join(format!("executor-{executor}"))
    }

    /// Kills executor `n` (SIGKILL) and waits for it to end.
    pub async fn kill_executor(&mut self, executor: usize) -> anyhow::Result<()> {
        let child = self
            .executors
            .get_mut(executor)
            .with_context(|| format!("no executor {executor}"))?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// The last 40 lines of every process's log.
    pub fn logs(&self) -> String {
        std::iter::once("scheduler".to_owned())
            .chain((0..self.executors.len()).map(|n| format!("executor-{n}")))
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(format!("{name}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                format!(
                    "--- {name}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A loopback port free when asked (the OS's pick for port 0).
/// `count` distinct ports free on 127.0.0.1 now: each listener is held until all are bound.
fn free_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect()
}
