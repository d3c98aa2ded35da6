//! The job service: a job's whole life cycle — submit, run, cancel, delete — and its events.
//!
//! HTTP handlers (and sweeps, and the command line) call one method here per
//! action; the service coordinates the [`Store`], the workers and the live
//! events, so each rule of the life cycle lives in one place. One worker task
//! per device slot claims jobs and trains each on a blocking thread (never on
//! the async runtime's threads). A submission wakes idle workers through a
//! [`Notify`] — and, on PostgreSQL, those of other processes through `NOTIFY`
//! (`cluster.rs`); a slow poll is the fallback. Every stored epoch and every
//! progress tick is also broadcast to SSE clients, and epochs and status changes
//! to the other processes on the database.

mod cluster;
mod datasets;
mod error;
mod events;
mod lease;
mod queries;
mod sweeps;
mod tenancy;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinSet;

pub use datasets::{DataConfig, DatasetCache};
pub use error::ServiceError;
pub use events::{JobEvent, ProgressEvent, EVENT_BUFFER};
pub use queries::{JobSteps, StepBuckets};
pub use sweeps::{SweepDecision, SweepDetails, SweepPage, SweepSubmission};
pub use worker::FaultHook;

use crate::auth::{scoped_key, DEFAULT_TENANT};
use crate::job::{job_warnings, JobId, JobPlan, JobStatus, Warning};
use crate::store::{
    this_host, CancelOutcome, ClaimLimits, DeleteOutcome, JobFilter, JobRecord, LeaseConfig,
    MetricSummary, NewJob, Store, StoreError, Submitted, WorkerInfo,
};
use crate::train::{checkpoint, DeviceSpec, EpochMetrics, StepRecord};

/// How often every unfinished sweep is advanced even without an event (a step that failed
/// on a busy database is retried then).
const SWEEP_RECONCILE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long shutdown waits for running jobs to stop at their next batch.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// How the service runs its jobs.
#[derive(Clone, Default)]
pub struct ServiceConfig {
    /// One worker per entry, bound to that device.
    pub workers: Vec<DeviceSpec>,
    /// Checkpoints and weights go to `<artifacts_dir>/<job id>/`.
    pub artifacts_dir: PathBuf,
    pub data: DataConfig,
    /// How often workers renew their leases, and how long a lease lasts.
    pub lease: LeaseConfig,
    /// Called by workers at each epoch's end, before it is stored: tests use it to make
    /// training fail in ways real runs rarely do (a panic).
    pub fault: Option<FaultHook>,
    /// Whether workers train the members of a sweep that asks for it in lockstep groups
    /// (`lrlab serve --lockstep on`, the default); off, every member trains on its own.
    pub lockstep: bool,
    /// At most this many queued jobs per tenant (a sweep's members count); `None`: no limit.
    pub max_queued_per_tenant: Option<u32>,
    /// What this process's workers' claims respect: at most this many running jobs per
    /// tenant, counted over every process of the queue (a lockstep group's members count).
    pub claim_limits: ClaimLimits,
    /// At most this many jobs (configs × seeds) in one sweep, for every tenant; `None`: no
    /// limit beyond the sweep engine's own.
    pub max_sweep_jobs: Option<u32>,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("workers", &self.workers)
            .field("artifacts_dir", &self.artifacts_dir)
            .field("data", &self.data)
            .field("lease", &self.lease)
            .field("fault", &self.fault.is_some())
            .field("lockstep", &self.lockstep)
            .field("max_queued_per_tenant", &self.max_queued_per_tenant)
            .field("claim_limits", &self.claim_limits)
            .field("max_sweep_jobs", &self.max_sweep_jobs)
            .finish()
    }
}

/// A job with what clients see besides its record.
#[derive(Debug, Clone)]
pub struct JobDetails {
    pub record: JobRecord,
    /// Its latest and best epoch.
    pub summary: MetricSummary,
    /// Jobs that will be claimed before it; only while queued.
    pub queue_position: Option<i64>,
}

/// How a submission was taken.
#[derive(Debug, Clone)]
pub enum Submission {
    /// A new job was queued.
    Created(JobDetails),
    /// The idempotency key was seen before with the same request: the first job.
    Replayed(JobDetails),
}

/// How a cancel was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// The job was queued and is now canceled.
    Canceled,
    /// The job runs; its worker stops it at the next batch.
    Requested,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone)]
pub struct JobPage {
    pub jobs: Vec<(JobRecord, MetricSummary)>,
    /// Jobs matching the filter over all pages.
    pub total: i64,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<JobId>,
}

/// A handle on the running service; cheap to clone.
#[derive(Clone)]
pub struct Service(Arc<Inner>);

struct Inner {
    store: Store,
    config: ServiceConfig,
    wake: Notify,
    events: broadcast::Sender<JobEvent>,
    /// Messages to the other processes on the database, where the backend carries them.
    outbox: Option<cluster::Outbox>,
    /// Stop flags of the jobs this process is training, checked between batches.
    running: Mutex<HashMap<JobId, Arc<AtomicBool>>>,
    shutting_down: AtomicBool,
    /// Woken when shutdown begins, so long-lived streams (SSE) end.
    closing: Notify,
    datasets: DatasetCache,
    workers: tokio::sync::Mutex<JoinSet<()>>,
    /// Why workers could not open their devices (they take no jobs).
    device_errors: Mutex<Vec<String>>,
    /// One coordinator at a time per sweep in this process (the store refuses a step
    /// computed from a stale log across processes).
    sweep_locks: Mutex<HashMap<crate::sweep::SweepId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Service {
    /// Refuses a database this machine cannot share, re-queues jobs a crash on this
    /// machine left running, then starts one worker per device slot and the sweep that
    /// re-queues jobs whose leases expired.
    pub async fn start(store: Store, config: ServiceConfig) -> Result<Service, StoreError> {
        let host = this_host();
        store.check_host(&host).await?;
        let requeued = lease::requeue_dead_processes(&store, &host).await?;
        if !requeued.is_empty() {
            tracing::warn!(jobs = ?requeued, "re-queued jobs left running by an earlier process; they resume from their last checkpoint");
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let messages = store.subscribe().await?;
        let outbox = messages
            .is_some()
            .then(|| cluster::Outbox::start(store.clone()));
        let service = Service(Arc::new(Inner {
            outbox,
            datasets: DatasetCache::new(config.data.clone()),
            store,
            config,
            wake: Notify::new(),
            events,
            running: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            closing: Notify::new(),
            workers: tokio::sync::Mutex::new(JoinSet::new()),
            sweep_locks: Mutex::new(HashMap::new()),
            device_errors: Mutex::new(Vec::new()),
        }));
        lease::requeue_expired(&service).await?;
        // Sweeps left unfinished by an earlier process pick up where they were; then a
        // slow sweep of all unfinished sweeps catches anything a failed step left behind.
        service.advance_unfinished_sweeps().await;
        {
            let service = service.clone();
            let mut workers = service.0.workers.lock().await;
            let reconciler = service.clone();
            workers.spawn(async move {
                while !reconciler.is_shutting_down() {
                    tokio::select! {
                        () = tokio::time::sleep(SWEEP_RECONCILE) => {}
                        () = reconciler.closed() => break,
                    }
                    reconciler.advance_unfinished_sweeps().await;
                }
            });
        }
        {
            let mut workers = service.0.workers.lock().await;
            if let (Some(messages), Some(outbox)) = (messages, &service.0.outbox) {
                workers.spawn(cluster::relay(service.clone(), messages, outbox.origin()));
            }
            workers.spawn(lease::sweep_expired(service.clone()));
            for (slot, device) in service.0.config.workers.iter().enumerate() {
                let worker = worker::Worker::new(service.clone(), slot, *device);
                workers.spawn(worker.run());
            }
        }
        Ok(service)
    }

    /// Checks, plans, warns about and queues a job request (JSON, as a client sent it).
    /// With an `idempotency_key` seen before, the same request returns the first job and a
    /// different one is refused.
    pub async fn submit(
        &self,
        request: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Result<Submission, ServiceError> {
        self.submit_for(DEFAULT_TENANT, request, idempotency_key)
            .await
    }

    /// [`Service::submit`] for `tenant`: the job is its tenant's, the idempotency key is
    /// scoped to the tenant, and the tenant's queued-job limit applies.
    pub async fn submit_for(
        &self,
        tenant: &str,
        request: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Result<Submission, ServiceError> {
        let plan = JobPlan::from_json(request, || u64::from(rand::random::<u32>()))?;
        let request_hash = request_fingerprint(&plan, request);
        let warnings = job_warnings(&plan);
        let scoped = idempotency_key.map(|key| scoped_key(tenant, key));
        self.check_queue_room(tenant, 1).await?;
        let submitted = self
            .store()
            .submit(NewJob {
                spec: plan.spec(),
                warnings: &warnings,
                total_steps: plan.total_steps(),
                idempotency: scoped.as_deref().map(|key| (key, request_hash.as_str())),
                tenant: Some(tenant),
            })
            .await?;
        match submitted {
            Submitted::Created(record) => {
                tracing::info!(job = %record.id, name = %record.spec.name, "job queued");
                self.jobs_queued();
                Ok(Submission::Created(self.details(record).await?))
            }
            Submitted::Replayed(record) => Ok(Submission::Replayed(self.details(record).await?)),
            Submitted::KeyReused { existing } => {
                Err(ServiceError::IdempotencyKeyReused { existing })
            }
        }
    }

    /// Checks, plans and warns about a job request exactly as [`Service::submit`] does,
    /// storing nothing (a dry run). A seed the request leaves out is drawn here too, so
    /// the plan shows a complete spec; the real submission draws its own.
    pub fn check(
        &self,
        request: &serde_json::Value,
    ) -> Result<(JobPlan, Vec<Warning>), ServiceError> {
        let plan = JobPlan::from_json(request, || u64::from(rand::random::<u32>()))?;
        let warnings = job_warnings(&plan);
        Ok((plan, warnings))
    }

    /// One job with its metric summary and queue position.
    pub async fn job(&self, id: JobId) -> Result<JobDetails, ServiceError> {
        let record = self.record(id).await?;
        self.details(record).await
    }

    /// A page of jobs matching `filter`, newest first, with their metric summaries.
    pub async fn list(&self, filter: &JobFilter) -> Result<JobPage, ServiceError> {
        let (records, total) = self.store().list_jobs(filter).await?;
        let ids: Vec<JobId> = records.iter().map(|job| job.id).collect();
        let mut summaries = self.store().metric_summaries(&ids).await?;
        let next_cursor = (records.len() == filter.limit as usize)
            .then(|| records.last().map(|job| job.id))
            .flatten();
        let jobs = records
            .into_iter()
            .map(|record| {
                let summary = summaries.remove(&record.id).unwrap_or_default();
                (record, summary)
            })
            .collect();
        Ok(JobPage {
            jobs,
            total,
            next_cursor,
        })
    }

    /// Cancels a queued job at once, or asks the worker of a running one to stop it at
    /// its next batch.
    pub async fn cancel(&self, id: JobId) -> Result<(Cancellation, JobDetails), ServiceError> {
        let cancellation = match self.store().cancel(id).await? {
            CancelOutcome::Canceled => {
                let status = JobStatus::Canceled;
                self.emit(JobEvent::Status { job: id, status });
                self.emit(JobEvent::Done {
                    job: id,
                    status,
                    error: None,
                });
                Cancellation::Canceled
            }
            CancelOutcome::Requested => {
                // The store's flag is set first; a worker that has just claimed the job
                // reads it after registering its stop flag, so one of the two sees it.
                self.stop_if_running(id);
                Cancellation::Requested
            }
            CancelOutcome::AlreadyFinished(status) => {
                return Err(ServiceError::AlreadyFinished { id, status })
            }
            CancelOutcome::NotFound => return Err(ServiceError::NotFound(id)),
        };
        Ok((cancellation, self.job(id).await?))
    }

    /// Deletes a finished job: its artifacts first, then its record and metrics. If the
    /// artifacts cannot be removed the job is kept, so a delete is all or nothing.
    pub async fn delete(&self, id: JobId) -> Result<(), ServiceError> {
        let status = self
            .store()
            .status(id)
            .await?
            .ok_or(ServiceError::NotFound(id))?;
        if !status.is_finished() {
            return Err(ServiceError::NotFinished { id, status });
        }
        remove_dir_if_present(&self.artifacts_dir(id))
            .await
            .map_err(|source| ServiceError::ArtifactsKept { id, source })?;
        match self.store().delete(id).await? {
            DeleteOutcome::Deleted => Ok(()),
            DeleteOutcome::NotFinished(status) => Err(ServiceError::NotFinished { id, status }),
            DeleteOutcome::NotFound => Err(ServiceError::NotFound(id)),
        }
    }

    /// Every stored epoch of a job.
    pub async fn metrics(&self, id: JobId) -> Result<Vec<EpochMetrics>, ServiceError> {
        self.record(id).await?;
        Ok(self.store().epoch_metrics(id).await?)
    }

    /// Up to `limit` per-update records of a job from update `from` on.
    pub async fn steps(
        &self,
        id: JobId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<StepRecord>, ServiceError> {
        self.record(id).await?;
        Ok(self.store().steps(id, from, limit).await?)
    }

    /// The file holding a job's latest weights; [`ServiceError::NoWeights`] before its
    /// first epoch has ended.
    pub async fn weights_path(&self, id: JobId) -> Result<PathBuf, ServiceError> {
        self.record(id).await?;
        let path = checkpoint::weights_path(&self.artifacts_dir(id));
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(ServiceError::NoWeights(id)),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Err(ServiceError::NoWeights(id))
            }
            Err(source) => Err(ServiceError::Artifacts { id, source }),
        }
    }

    /// The live workers of every process on this database.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, ServiceError> {
        Ok(self.store().workers().await?)
    }

    /// Receives every job event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.0.events.subscribe()
    }

    /// Liveness: the database answers a query that reads its tables.
    pub async fn check_health(&self) -> Result<(), ServiceError> {
        Ok(self.store().ping().await?)
    }

    /// Readiness: what stops this process from taking work, if anything.
    pub async fn readiness(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.is_shutting_down() {
            problems.push("shutting down".to_string());
        }
        if let Err(err) = self.store().ping().await {
            problems.push(format!("database: {err}"));
        }
        let dir = self.0.config.artifacts_dir.clone();
        let writable = tokio::task::spawn_blocking(move || {
            let probe = dir.join(".lrlab-ready-check");
            std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe))
        })
        .await;
        if !matches!(writable, Ok(Ok(()))) {
            problems.push("the artifacts directory is not writable".to_string());
        }
        problems.extend(
            self.0
                .device_errors
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .iter()
                .cloned(),
        );
        problems
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

    fn store(&self) -> &Store {
        &self.0.store
    }

    /// Where a job's checkpoints and weights live.
    fn artifacts_dir(&self, job: JobId) -> PathBuf {
        self.0.config.artifacts_dir.join(job.to_string())
    }

    async fn record(&self, id: JobId) -> Result<JobRecord, ServiceError> {
        self.store()
            .job(id)
            .await?
            .ok_or(ServiceError::NotFound(id))
    }

    async fn details(&self, record: JobRecord) -> Result<JobDetails, ServiceError> {
        let summary = self
            .store()
            .metric_summaries(&[record.id])
            .await?
            .remove(&record.id)
            .unwrap_or_default();
        let queue_position = if record.status == JobStatus::Queued {
            Some(self.store().queue_position(&record).await?)
        } else {
            None
        };
        Ok(JobDetails {
            record,
            summary,
            queue_position,
        })
    }

    /// A worker's device could not be opened: readiness reports it.
    fn device_failed(&self, message: String) {
        self.0
            .device_errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(message);
    }

    /// Raises the stop flag of `job` if this process trains it.
    fn stop_if_running(&self, job: JobId) {
        if let Some(flag) = self.running_jobs().get(&job) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Tells this process's subscribers of `event`, and the other processes on the
    /// database of the events they relay.
    fn emit(&self, event: JobEvent) {
        if let Some(outbox) = &self.0.outbox {
            if let Some(body) = cluster::Body::of(&event) {
                outbox.send(body);
            }
        }
        self.broadcast(event);
    }

    /// Tells this process's subscribers of `event`.
    fn broadcast(&self, event: JobEvent) {
        // No subscriber is fine: events are a convenience, the store is the truth.
        let _ = self.0.events.send(event);
    }

    /// Wakes idle workers, this process's and (through the database) the others'.
    fn jobs_queued(&self) {
        self.0.wake.notify_waiters();
        if let Some(outbox) = &self.0.outbox {
            outbox.send(cluster::Body::Queued);
        }
    }

    fn running_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Arc<AtomicBool>>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.0
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(super) async fn remove_dir_if_present(dir: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// What an Idempotency-Key is bound to: the normalized spec (defaults filled, the name
/// trimmed), so a retry that spells a default out (`"batch_size": 256`) or orders its keys
/// differently is the same request. The seed is the request's own (null when it left the
/// seed to the server), since a drawn seed differs on every try.
fn request_fingerprint(plan: &JobPlan, request: &serde_json::Value) -> String {
    // A spec is plain data with string keys: serializing it cannot fail, whatever the
    // request held.
    let mut normalized = serde_json::to_value(plan.spec()).expect("a JobSpec serializes");
    if let Some(fields) = normalized.as_object_mut() {
        let seed = request
            .get("seed")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        fields.insert("seed".to_string(), seed);
    }
    // serde_json's maps are ordered by key, so the text is canonical.
    format!("{:x}", Sha256::digest(normalized.to_string().as_bytes()))
}
