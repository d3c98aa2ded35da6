//! Assembling a running lrlab: store, job service, HTTP routes and listener.
//!
//! `lrlab serve` and the integration tests build the server with the same
//! [`App::start`], so what the tests exercise is what users run. Everything
//! that can be checked before taking work is checked here, at start-up: the
//! artifacts directory is writable and the database migrates.

mod listener;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use listener::ConnectionLimits;

use crate::api::{self, AppState, HostPolicy};
use crate::service::{DataConfig, Service, ServiceConfig};
use crate::store::{self, LeaseConfig, Store};
use crate::train::DeviceSpec;

/// After a shutdown signal the process exits within this time, whatever runs.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Everything a server needs to start; `lrlab serve`'s options map onto it.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Address and port to listen on (port 0: any free port).
    pub bind: SocketAddr,
    /// Database URL, e.g. `sqlite://lrlab.db`.
    pub db: String,
    /// One worker per entry, bound to that device.
    pub workers: Vec<DeviceSpec>,
    /// Checkpoints and weights go to `<artifacts_dir>/<job id>/`.
    pub artifacts_dir: PathBuf,
    /// Where Fashion-MNIST is and whether it may be downloaded.
    pub data: DataConfig,
    /// `Host` values accepted besides the loopback names on a loopback bind
    /// (`None` on another bind: any host).
    pub allowed_hosts: Option<Vec<String>>,
    /// Connection limits of the listener.
    pub limits: ConnectionLimits,
    /// Workers' heartbeat interval and lease length (`docs/QUEUE.md`).
    pub lease: LeaseConfig,
    /// Tokens, the insecure override and rate limits (docs/AUTH.md).
    pub auth: AuthConfig,
}

/// How `lrlab serve` authenticates requests.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Require bearer tokens (`--auth tokens`).
    pub tokens: bool,
    /// Serve a network address without tokens anyway (`--insecure-no-auth`).
    pub insecure_no_auth: bool,
    /// `LRLAB_BOOTSTRAP_TOKEN`: an admin token of the default tenant, created at start
    /// if the store does not have it yet.
    pub bootstrap_token: Option<String>,
    /// Requests per minute per token and the burst allowed (`None`: the defaults).
    pub rate: Option<(std::num::NonZeroU32, std::num::NonZeroU32)>,
    /// Queued jobs one tenant may have (`None`: no limit).
    pub max_queued_per_tenant: Option<u32>,
}

/// A running server.
pub struct App {
    /// Where it listens (the real port when bound to port 0).
    pub addr: SocketAddr,
    /// Its job service.
    pub service: Service,
    store: Store,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl App {
    /// Checks the configuration, opens the store, starts the workers and starts listening.
    pub async fn start(config: AppConfig) -> anyhow::Result<App> {
        check_artifacts_dir(&config.artifacts_dir)?;
        check_auth_bind(&config)?;
        anyhow::ensure!(
            config.lease.ttl > config.lease.heartbeat,
            "the lease ({:?}) must last longer than the heartbeat interval ({:?}), or every job would lose its lease",
            config.lease.ttl,
            config.lease.heartbeat
        );
        // Devices are opened by their workers: one that cannot be opened takes no jobs
        // (they wait in the queue), says why in the log and in /readyz, and the server
        // keeps serving.
        let store = store::open(&config.db).await?;
        let service = Service::start(
            store.clone(),
            ServiceConfig {
                workers: config.workers.clone(),
                artifacts_dir: config.artifacts_dir.clone(),
                data: config.data.clone(),
                lease: config.lease,
                fault: None,
                max_queued_per_tenant: config.auth.max_queued_per_tenant,
            },
        )
        .await?;
        let auth = auth_policy(&config, &service).await?;
        let hosts = HostPolicy::for_bind(config.bind, config.allowed_hosts.clone());
        let router = api::router(AppState::with_auth(service.clone(), hosts, auth));
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("could not listen on {}", config.bind))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(listener::serve(listener, router, config.limits, stopped));
        tracing::info!(address = %addr, db = %store::redact_url(&config.db), "lrlab listening on http://{addr}");
        Ok(App {
            addr,
            service,
            store,
            stop,
            server,
        })
    }

    /// The job store it opened.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Graceful shutdown: stop claiming jobs, stop running ones at their next batch (they go
    /// back to the queue and resume from their checkpoint), end event streams, let open
    /// requests finish, close the database; within [`SHUTDOWN_DEADLINE`].
    pub async fn shutdown(self) {
        tracing::info!("shutting down: no new jobs are claimed; running jobs go back to the queue");
        self.service.begin_shutdown();
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, async {
            let _ = self.server.await;
            self.service.shutdown().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown deadline passed; exiting anyway");
        }
        self.store.close().await;
        tracing::info!("stopped");
    }
}

/// A network bind without tokens would let anyone who reaches the port submit, cancel
/// and delete every job: refuse it unless the operator insists (`--insecure-no-auth`).
fn check_auth_bind(config: &AppConfig) -> anyhow::Result<()> {
    if config.auth.tokens || config.auth.insecure_no_auth || config.bind.ip().is_loopback() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {} without authentication: anyone who can reach it could \
         submit, cancel and delete every job. Start with `--auth tokens` (env LRLAB_AUTH=tokens) \
         and create the first admin token, either by setting LRLAB_BOOTSTRAP_TOKEN=<a secret of \
         at least {} characters> or with `lrlab token create --db <url> --tenant default --role \
         admin`; or pass --insecure-no-auth to run open anyway",
        config.bind,
        crate::auth::MIN_BOOTSTRAP_LEN
    )
}

/// The API's authentication: the bootstrap token stored, and with tokens on, at least one
/// live admin token to start from.
async fn auth_policy(config: &AppConfig, service: &Service) -> anyhow::Result<api::AuthPolicy> {
    let mut policy = api::AuthPolicy {
        tokens: config.auth.tokens,
        insecure: !config.auth.tokens && !config.bind.ip().is_loopback(),
        ..api::AuthPolicy::default()
    };
    if let Some((per_minute, burst)) = config.auth.rate {
        policy.per_minute = per_minute;
        policy.burst = burst;
    }
    if policy.insecure {
        tracing::warn!(bind = %config.bind, "authentication is OFF on a network address (--insecure-no-auth): anyone who reaches this port can submit, cancel and delete every job");
    }
    if let Some(token) = &config.auth.bootstrap_token {
        anyhow::ensure!(
            token.len() >= crate::auth::MIN_BOOTSTRAP_LEN && crate::auth::plausible_token(token),
            "LRLAB_BOOTSTRAP_TOKEN must be at least {} printable characters without spaces \
             (e.g. the output of `openssl rand -hex 32`)",
            crate::auth::MIN_BOOTSTRAP_LEN
        );
        service.ensure_bootstrap_token(token).await?;
    }
    if config.auth.tokens {
        let now = chrono::Utc::now();
        let admins = service
            .tokens()
            .await?
            .into_iter()
            .filter(|t| t.role == crate::auth::Role::Admin && t.is_live(now))
            .count();
        anyhow::ensure!(
            admins > 0,
            "--auth tokens is on but the database has no live admin token: set \
             LRLAB_BOOTSTRAP_TOKEN=<a secret of at least {} characters>, or run `lrlab token \
             create --db <url> --tenant default --role admin` first",
            crate::auth::MIN_BOOTSTRAP_LEN
        );
    }
    Ok(policy)
}

/// The artifacts directory must exist (or be creatable) and be writable, or every job
/// would fail at its first checkpoint and every delete half-way: refuse to start instead.
fn check_artifacts_dir(dir: &Path) -> anyhow::Result<()> {
    let unusable = |what: &str| format!("--artifacts-dir {} {what}", dir.display());
    std::fs::create_dir_all(dir).with_context(|| unusable("cannot be created"))?;
    let probe = dir.join(".lrlab-write-check");
    std::fs::write(&probe, b"ok").with_context(|| unusable("is not writable"))?;
    std::fs::remove_file(&probe).with_context(|| unusable("is not writable"))?;
    Ok(())
}
