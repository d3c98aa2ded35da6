//! `lrlab serve`: the HTTP server with its job service, and its shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::service::{DataConfig, Service, ServiceConfig};
use crate::store::Store;

/// After a shutdown signal the process exits within this time, whatever runs.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Configuration of `lrlab serve`; every option can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "LRLAB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// SQLite database URL; the file is created if missing.
    #[arg(long, env = "LRLAB_DATABASE_URL", default_value = "sqlite://lrlab.db")]
    pub db: String,
    /// Workers per device: jobs trained at the same time on each device.
    #[arg(long, env = "LRLAB_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Devices to train on, comma-separated: `cpu`, or `cuda:0,cuda:1` (with the `cuda` feature).
    #[arg(
        long,
        env = "LRLAB_DEVICE",
        default_value = "cpu",
        value_delimiter = ','
    )]
    pub device: Vec<String>,
    /// Directory with the Fashion-MNIST IDX files (else ./data/fashion-mnist, then
    /// /usr/share/datasets/fashion-mnist, then a download).
    #[arg(long, env = "LRLAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Never download Fashion-MNIST; jobs fail with a clear error when it is missing.
    #[arg(long, env = "LRLAB_NO_DOWNLOAD")]
    pub no_download: bool,
    /// Checkpoints and weights go to `<artifacts-dir>/<job id>/`.
    #[arg(long, env = "LRLAB_ARTIFACTS_DIR", default_value = "lrlab-artifacts")]
    pub artifacts_dir: PathBuf,
}

impl ServeArgs {
    /// The job service's configuration: `workers` slots on each device.
    pub fn service_config(&self) -> ServiceConfig {
        let devices = self
            .device
            .iter()
            .flat_map(|device| {
                std::iter::repeat_n(device.trim().to_string(), usize::from(self.workers))
            })
            .collect();
        ServiceConfig {
            devices,
            artifacts_dir: self.artifacts_dir.clone(),
            data: DataConfig {
                dir: self.data_dir.clone(),
                allow_download: !self.no_download,
            },
        }
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    for device in &args.device {
        crate::train::parse_device(device.trim())
            .with_context(|| format!("--device {device} cannot be used"))?;
    }
    let store = Store::open(&args.db).await?;
    let service = Service::start(store.clone(), args.service_config()).await?;
    let app = api::router(AppState::new(service.clone()));
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("could not listen on {}", args.bind))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, db = %args.db, "lrlab listening on http://{local}");

    let on_signal = service.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!(
                "shutting down: no new jobs are claimed; running jobs go back to the queue"
            );
            on_signal.begin_shutdown();
        })
        .await
        .context("the HTTP server failed")?;

    if tokio::time::timeout(SHUTDOWN_DEADLINE, service.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown deadline passed; exiting anyway");
    }
    store.close().await;
    tracing::info!("stopped");
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
