//! The job service: the queue's workers, cancellation, live events and shutdown.
//!
//! One worker task per device slot claims jobs from the [`Store`] and trains
//! each on a blocking thread (never on the async runtime's threads). A
//! submission wakes idle workers through a [`Notify`]; a slow poll is the
//! fallback. Every stored epoch and every progress tick is also broadcast to
//! SSE clients.

mod datasets;
mod events;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, Notify};
use tokio::task::JoinSet;

pub use datasets::{DataConfig, DatasetCache};
pub use events::{JobEvent, ProgressEvent, EVENT_BUFFER};

use crate::job::JobId;
use crate::store::{Store, StoreError};

/// How long shutdown waits for running jobs to stop at their next batch.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// How the service runs its jobs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// One worker per entry, bound to that device (`cpu`, `cuda:0`, …).
    pub devices: Vec<String>,
    /// Checkpoints and weights go to `<artifacts_dir>/<job id>/`.
    pub artifacts_dir: PathBuf,
    pub data: DataConfig,
}

/// A handle on the running service; cheap to clone.
#[derive(Clone)]
pub struct Service(Arc<Inner>);

struct Inner {
    store: Store,
    config: ServiceConfig,
    wake: Notify,
    events: broadcast::Sender<JobEvent>,
    /// Stop flags of the jobs this process is training, checked between batches.
    running: Mutex<HashMap<JobId, Arc<AtomicBool>>>,
    shutting_down: AtomicBool,
    /// Woken when shutdown begins, so long-lived streams (SSE) end.
    closing: Notify,
    datasets: DatasetCache,
    workers: tokio::sync::Mutex<JoinSet<()>>,
}

impl Service {
    /// Re-queues jobs a crash left running, then starts one worker per device.
    pub async fn start(store: Store, config: ServiceConfig) -> Result<Service, StoreError> {
        let requeued = store.requeue_abandoned().await?;
        if !requeued.is_empty() {
            tracing::warn!(jobs = ?requeued, "re-queued jobs left running by an earlier process; they resume from their last checkpoint");
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let service = Service(Arc::new(Inner {
            datasets: DatasetCache::new(config.data.clone()),
            store,
            config,
            wake: Notify::new(),
            events,
            running: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            closing: Notify::new(),
            workers: tokio::sync::Mutex::new(JoinSet::new()),
        }));
        {
            let mut workers = service.0.workers.lock().await;
            for (slot, device) in service.0.config.devices.iter().enumerate() {
                let worker = worker::Worker::new(service.clone(), slot, device.clone());
                workers.spawn(worker.run());
            }
        }
        Ok(service)
    }

    /// The job store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Where a job's checkpoints and weights live.
    pub fn artifacts_dir(&self, job: JobId) -> PathBuf {
        self.0.config.artifacts_dir.join(job.to_string())
    }

    /// Wakes idle workers: a job was queued.
    pub fn notify_queued(&self) {
        self.0.wake.notify_waiters();
    }

    /// Receives every job event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.0.events.subscribe()
    }

    /// Asks the worker training `job` (if this process trains it) to stop at the next batch.
    pub fn stop_job(&self, job: JobId) {
        if let Some(flag) = self.running_jobs().get(&job) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Tells SSE clients that a queued job was canceled (no worker will).
    pub fn notify_canceled(&self, job: JobId) {
        let status = crate::job::JobStatus::Canceled;
        self.emit(JobEvent::Status { job, status });
        self.emit(JobEvent::Done {
            job,
            status,
            error: None,
        });
    }

    /// Whether shutdown has begun (workers claim nothing more).
    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown has begun.
    pub async fn closed(&self) {
        let notified = self.0.closing.notified();
        if self.is_shutting_down() {
            return;
        }
        notified.await;
    }

    /// First half of a graceful shutdown, at once: stop claiming, ask running
    /// jobs to stop at their next batch (they go back to the queue and resume
    /// from their last checkpoint), and end live event streams.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
        for flag in self.running_jobs().values() {
            flag.store(true, Ordering::SeqCst);
        }
        self.0.wake.notify_waiters();
        self.0.closing.notify_waiters();
    }

    /// Graceful shutdown: [`Service::begin_shutdown`], then wait for the
    /// workers to put their jobs back, at most [`SHUTDOWN_GRACE`].
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let mut workers = self.0.workers.lock().await;
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "workers did not stop within the grace period; their jobs resume at next start"
            );
            workers.abort_all();
        }
    }

    /// Removes a finished job's artifacts directory.
    pub async fn remove_artifacts(&self, job: JobId) -> std::io::Result<()> {
        remove_dir_if_present(&self.artifacts_dir(job)).await
    }

    fn emit(&self, event: JobEvent) {
        // No subscriber is fine: events are a convenience, the store is the truth.
        let _ = self.0.events.send(event);
    }

    fn running_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Arc<AtomicBool>>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.0
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn remove_dir_if_present(dir: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
