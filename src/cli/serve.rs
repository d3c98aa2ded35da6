//! `lrlab serve` (the HTTP API with its workers) and `lrlab worker` (workers only): their
//! options and signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::num::NonZeroU32;

use crate::api::MetricsToken;
use crate::app::{App, AppConfig, AuthConfig, ConnectionLimits, Node, NodeConfig};
use crate::service::DataConfig;
use crate::store::{ClaimLimits, LeaseConfig};
use crate::train::DeviceSpec;

/// What every process that runs jobs or reads the queue needs: the database, the
/// artifacts, the workers and their leases. `lrlab serve` and `lrlab worker` share it.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// Database URL: `sqlite://lrlab.db` (one machine; the file is created if missing) or
    /// `postgres://user:password@host/db` (one queue for workers on several machines).
    #[arg(long, env = "LRLAB_DATABASE_URL", default_value = "sqlite://lrlab.db")]
    pub db: String,
    /// Workers per device: jobs trained at the same time on each device (0 with `serve`:
    /// the API only, workers run elsewhere with `lrlab worker`).
    #[arg(long, env = "LRLAB_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub workers: u16,
    /// Devices to train on, comma-separated: `cpu`, or `cuda:0,cuda:1` (with the `cuda` feature).
    #[arg(
        long,
        env = "LRLAB_DEVICE",
        default_value = "cpu",
        value_delimiter = ','
    )]
    pub device: Vec<DeviceSpec>,
    /// Directory with the Fashion-MNIST IDX files (else ./data/fashion-mnist, then
    /// /usr/share/datasets/fashion-mnist, then a download).
    #[arg(long, env = "LRLAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Never download Fashion-MNIST; jobs fail with a clear error when it is missing.
    #[arg(long, env = "LRLAB_NO_DOWNLOAD")]
    pub no_download: bool,
    /// Checkpoints and weights go to `<artifacts-dir>/<job id>/`; checked at start-up.
    #[arg(long, env = "LRLAB_ARTIFACTS_DIR", default_value = "lrlab-artifacts")]
    pub artifacts_dir: PathBuf,
    /// Seconds between a worker's heartbeats, which renew the leases on its jobs.
    #[arg(long, env = "LRLAB_HEARTBEAT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat: u64,
    /// Seconds a lease lasts without a heartbeat; then the job is presumed abandoned
    /// (its machine died) and goes back to the queue.
    #[arg(long, env = "LRLAB_LEASE", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..))]
    pub lease: u64,
    /// Train the members of a sweep that share a seed together, one pass over the data for
    /// all of them (when the sweep asks for it, its default); `off`: every member on its own.
    #[arg(long, env = "LRLAB_LOCKSTEP", default_value = "on")]
    pub lockstep: Switch,
    /// Running jobs one tenant may have at once, over every process of the queue (the
    /// claim passes over a tenant at its limit; lockstep members count); 0: no limit. Give
    /// every process that runs workers the same value.
    #[arg(long, env = "LRLAB_MAX_RUNNING_PER_TENANT", default_value_t = 0)]
    pub max_running_per_tenant: u32,
    /// A secret that `GET /metrics` then needs as `Authorization: Bearer <it>` (at least
    /// 16 characters; unset or empty: /metrics stays open). Separate from API tokens, so a
    /// scraper holds no tenant's rights.
    #[arg(long, env = "LRLAB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// The shortest `--metrics-token` accepted: a typo-length secret would be guessable.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

/// An option that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl NodeArgs {
    /// The process's store, workers (`workers` slots on each device) and leases; fails on
    /// a `--metrics-token` too short to be a secret.
    pub fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let workers = self
            .device
            .iter()
            .flat_map(|device| std::iter::repeat_n(*device, usize::from(self.workers)))
            .collect();
        let metrics_token = match self.metrics_token.as_deref() {
            None | Some("") => None,
            Some(token) => {
                anyhow::ensure!(
                    token.len() >= MIN_METRICS_TOKEN_LEN
                        && token.bytes().all(|b| b.is_ascii_graphic()),
                    "--metrics-token (LRLAB_METRICS_TOKEN) must be at least \
                     {MIN_METRICS_TOKEN_LEN} printable characters without spaces \
                     (e.g. the output of `openssl rand -hex 32`)"
                );
                Some(MetricsToken::new(token))
            }
        };
        Ok(NodeConfig {
            db: self.db.clone(),
            workers,
            artifacts_dir: self.artifacts_dir.clone(),
            data: DataConfig {
                dir: self.data_dir.clone(),
                allow_download: !self.no_download,
            },
            lease: LeaseConfig {
                heartbeat: Duration::from_secs(self.heartbeat),
                ttl: Duration::from_secs(self.lease),
            },
            lockstep: self.lockstep == Switch::On,
            metrics_token,
            claim_limits: ClaimLimits {
                max_running_per_tenant: (self.max_running_per_tenant > 0)
                    .then_some(self.max_running_per_tenant),
            },
        })
    }
}

/// Configuration of `lrlab serve`; every option can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "LRLAB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub node: NodeArgs,
    /// `Host` header values to accept, comma-separated (`lab.example.org`, `10.0.0.5:8080`).
    /// On a loopback bind only loopback names are accepted unless listed here (this stops
    /// DNS-rebinding attacks); on other binds any host is accepted unless a list is given.
    #[arg(long, env = "LRLAB_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Connections served at once; further clients wait to be accepted.
    #[arg(long, env = "LRLAB_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers (idle connections included).
    #[arg(long, env = "LRLAB_HEADER_TIMEOUT", default_value_t = 20)]
    pub header_timeout: u64,
    /// `none`: every request is the default tenant's admin (allowed on a loopback bind
    /// only); `tokens`: every API request needs `Authorization: Bearer <token>`
    /// (docs/AUTH.md).
    #[arg(long, env = "LRLAB_AUTH", default_value = "none")]
    pub auth: AuthMode,
    /// Serve a non-loopback address without tokens anyway: anyone who reaches the port
    /// can do everything. Logged at start and shown on /healthz.
    #[arg(long, env = "LRLAB_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// An admin token of the default tenant, stored (as a hash) at start if new: the
    /// first token of a fresh deployment. At least 32 characters.
    #[arg(long, env = "LRLAB_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// API requests per minute per token (bursts of up to a sixth of it, at least 1).
    #[arg(long, env = "LRLAB_RATE_LIMIT", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: u32,
    /// Queued jobs one tenant may have at once (sweep members count); 0: no limit.
    #[arg(long, env = "LRLAB_MAX_QUEUED_PER_TENANT", default_value_t = 1000)]
    pub max_queued_per_tenant: u32,
    /// Jobs (configs × seeds) one sweep may have, for every tenant, admins too: a larger
    /// sweep is refused with 422 `sweep_too_large`; 0: only the engine's limit (1000).
    #[arg(long, env = "LRLAB_MAX_SWEEP_JOBS", default_value_t = 0)]
    pub max_sweep_jobs: u32,
}

/// `--auth`: whether requests carry tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    None,
    Tokens,
}

impl ServeArgs {
    /// The server configuration (see [`NodeArgs::node_config`] for what fails).
    pub fn app_config(&self) -> anyhow::Result<AppConfig> {
        Ok(AppConfig {
            bind: self.bind,
            node: self.node.node_config()?,
            allowed_hosts: (!self.allowed_hosts.is_empty()).then(|| self.allowed_hosts.clone()),
            limits: ConnectionLimits {
                max_connections: self.max_connections,
                header_read_timeout: Duration::from_secs(self.header_timeout.max(1)),
                ..ConnectionLimits::default()
            },
            auth: AuthConfig {
                tokens: self.auth == AuthMode::Tokens,
                insecure_no_auth: self.insecure_no_auth,
                bootstrap_token: self.bootstrap_token.clone(),
                rate: NonZeroU32::new(self.rate_limit).map(|per_minute| {
                    (
                        per_minute,
                        NonZeroU32::new(self.rate_limit.div_ceil(6)).unwrap_or(NonZeroU32::MIN),
                    )
                }),
                max_queued_per_tenant: (self.max_queued_per_tenant > 0)
                    .then_some(self.max_queued_per_tenant),
                max_sweep_jobs: (self.max_sweep_jobs > 0).then_some(self.max_sweep_jobs),
            },
        })
    }
}

/// Configuration of `lrlab worker`: the workers of `serve` without its HTTP API.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Serve Prometheus metrics (`GET /metrics`, nothing else) on this address.
    #[arg(long, env = "LRLAB_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = App::start(args.app_config()?).await?;
    app.run_until(shutdown_signal()).await;
    Ok(())
}

/// Runs workers (no API) until SIGINT or SIGTERM; then their jobs go back to the queue.
pub async fn work(args: WorkerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.node.workers > 0,
        "`lrlab worker --workers 0` would run nothing: give at least 1 worker per device"
    );
    let node = Node::start(args.node.node_config()?, args.metrics_bind).await?;
    node.run_until(shutdown_signal()).await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
