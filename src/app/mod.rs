//! Assembling a running lrlab: store, job service, HTTP routes and listener — the API
//! with its workers ([`App`], `lrlab serve`) or workers alone ([`Node`], `lrlab worker`).
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

/// What every process that takes part in the queue needs: `lrlab serve` (with the API)
/// and `lrlab worker` (without) share it.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Database URL, e.g. `sqlite://lrlab.db`.
    pub db: String,
    /// One worker per entry, bound to that device (none: this process trains nothing).
    pub workers: Vec<DeviceSpec>,
    /// Checkpoints and weights go to `<artifacts_dir>/<job id>/`.
    pub artifacts_dir: PathBuf,
    /// Where Fashion-MNIST is and whether it may be downloaded.
    pub data: DataConfig,
    /// Workers' heartbeat interval and lease length (`docs/QUEUE.md`).
    pub lease: LeaseConfig,
    /// Whether workers train sweep members in lockstep groups (when their sweep asks).
    pub lockstep: bool,
    /// The token `GET /metrics` needs, on the API and on a worker's metrics listener
    /// (`--metrics-token`; `None`: open).
    pub metrics_token: Option<api::MetricsToken>,
    /// What this process's workers' claims respect (`--max-running-per-tenant`). A worker
    /// option, not an API one: the claim enforces it, so every process that claims needs it.
    pub claim_limits: store::ClaimLimits,
}

/// Everything a server needs to start; `lrlab serve`'s options map onto it.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Address and port to listen on (port 0: any free port).
    pub bind: SocketAddr,
    /// The store, the workers and their leases.
    pub node: NodeConfig,
    /// `Host` values accepted besides the loopback names on a loopback bind
    /// (`None` on another bind: any host).
    pub allowed_hosts: Option<Vec<String>>,
    /// Connection limits of the listener.
    pub limits: ConnectionLimits,
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
    /// Jobs one sweep may have, for every tenant (`None`: the sweep engine's own limit).
    pub max_sweep_jobs: Option<u32>,
}

/// A running server: the API over a [`Node`].
pub struct App {
    /// Where it listens (the real port when bound to port 0).
    pub addr: SocketAddr,
    /// Its job service.
    pub service: Service,
    node: Node,
    listening: Listening,
}

impl App {
    /// Checks the configuration, opens the store, starts the workers and starts listening.
    pub async fn start(config: AppConfig) -> anyhow::Result<App> {
        check_auth_bind(&config)?;
        let (store, service) = open_node(&config.node, Some(&config.auth)).await?;
        let auth = auth_policy(&config, &service).await?;
        let hosts = HostPolicy::for_bind(config.bind, config.allowed_hosts.clone());
        let router = api::router(AppState::with_auth(service.clone(), hosts, auth));
        let listening = Listening::start(config.bind, router, config.limits).await?;
        let addr = listening.addr;
        tracing::info!(address = %addr, db = %store::redact_url(&config.node.db), "lrlab listening on http://{addr}");
        Ok(App {
            addr,
            service: service.clone(),
            node: Node {
                service,
                store,
                metrics: None,
            },
            listening,
        })
    }

    /// The job store it opened.
    pub fn store(&self) -> &Store {
        &self.node.store
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
        let App {
            node, listening, ..
        } = self;
        node.shutdown_with(Some(listening)).await;
    }
}

/// A process of the queue without the API (`lrlab worker`): its workers, the expiry sweep,
/// sweep coordinators and, when asked, a Prometheus listener.
pub struct Node {
    /// Its job service.
    pub service: Service,
    store: Store,
    metrics: Option<Listening>,
}

impl Node {
    /// Checks the configuration, opens the store, starts the workers, and serves
    /// `GET /metrics` (nothing else) on `metrics_bind` if one is given.
    pub async fn start(
        config: NodeConfig,
        metrics_bind: Option<SocketAddr>,
    ) -> anyhow::Result<Node> {
        let (store, service) = open_node(&config, None).await?;
        let metrics = match metrics_bind {
            Some(bind) => {
                let router = api::metrics_router(AppState::with_auth(
                    service.clone(),
                    HostPolicy::for_bind(bind, None),
                    api::AuthPolicy {
                        metrics_token: config.metrics_token,
                        ..api::AuthPolicy::default()
                    },
                ));
                let listening = Listening::start(bind, router, ConnectionLimits::default()).await?;
                tracing::info!(address = %listening.addr, "Prometheus metrics on http://{}/metrics", listening.addr);
                Some(listening)
            }
            None => None,
        };
        tracing::info!(workers = config.workers.len(), db = %store::redact_url(&config.db), "lrlab worker started");
        Ok(Node {
            service,
            store,
            metrics,
        })
    }

    /// Where its metrics listener listens, if it has one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|listening| listening.addr)
    }

    /// The job store it opened.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Works until `signal` resolves, then shuts down gracefully.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Graceful shutdown, as [`App::shutdown`]: running jobs go back to the queue at once.
    pub async fn shutdown(mut self) {
        let metrics = self.metrics.take();
        self.shutdown_with(metrics).await;
    }

    async fn shutdown_with(self, listening: Option<Listening>) {
        tracing::info!("shutting down: no new jobs are claimed; running jobs go back to the queue");
        self.service.begin_shutdown();
        let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, async {
            if let Some(listening) = listening {
                listening.stop().await;
            }
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

/// Checks a node's configuration, opens its store and starts its service. `auth` holds
/// the limits on submissions (queued jobs, sweep size), which only an API process takes.
async fn open_node(
    config: &NodeConfig,
    auth: Option<&AuthConfig>,
) -> anyhow::Result<(Store, Service)> {
    check_artifacts_dir(&config.artifacts_dir)?;
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
    refuse_unshared_artifacts(&store, &config.artifacts_dir).await?;
    let service = Service::start(
        store.clone(),
        ServiceConfig {
            workers: config.workers.clone(),
            artifacts_dir: config.artifacts_dir.clone(),
            data: config.data.clone(),
            lease: config.lease,
            fault: None,
            lockstep: config.lockstep,
            max_queued_per_tenant: auth.and_then(|auth| auth.max_queued_per_tenant),
            claim_limits: config.claim_limits,
            max_sweep_jobs: auth.and_then(|auth| auth.max_sweep_jobs),
        },
    )
    .await?;
    Ok((store, service))
}

/// An HTTP listener and its accept loop.
struct Listening {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl Listening {
    async fn start(
        bind: SocketAddr,
        router: axum::Router,
        limits: ConnectionLimits,
    ) -> anyhow::Result<Listening> {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("could not listen on {bind}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(listener::serve(listener, router, limits, stopped));
        Ok(Listening { addr, stop, server })
    }

    /// Stops accepting and lets open requests finish.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

/// A local artifacts directory is seen by this machine only: once workers of another
/// machine share the database, each would resume the other's jobs without their
/// checkpoints and serve weights it does not have. Refuse to start instead.
async fn refuse_unshared_artifacts(store: &Store, dir: &Path) -> anyhow::Result<()> {
    if store.backend().serves_one_host() {
        // SQLite refuses a second machine outright (`JobStore::check_host`).
        return Ok(());
    }
    let here = store::this_host();
    let other_worker = store
        .workers()
        .await?
        .into_iter()
        .map(|info| info.worker)
        .chain(
            store
                .held_leases()
                .await?
                .into_iter()
                .map(|held| held.worker),
        )
        .find(|worker| worker.host != here);
    match other_worker {
        Some(worker) => anyhow::bail!(
            "workers of host `{}` ({worker}) use this database, but the artifacts directory \
             {} is local to `{here}`: jobs that move between the machines would lose their \
             checkpoints and weights. Give every process the same object store \
             (--artifacts s3://bucket/prefix), or run all workers on one machine",
            worker.host,
            dir.display()
        ),
        None => Ok(()),
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
        metrics_token: config.node.metrics_token,
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
