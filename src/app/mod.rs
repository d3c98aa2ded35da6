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
    /// Whether workers train sweep members in lockstep groups (when their sweep asks).
    pub lockstep: bool,
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
                lockstep: config.lockstep,
            },
        )
        .await?;
        let hosts = HostPolicy::for_bind(config.bind, config.allowed_hosts.clone());
        let router = api::router(AppState::new(service.clone(), hosts));
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
