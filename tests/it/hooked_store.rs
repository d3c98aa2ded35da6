//! A store that passes every call to a real one, except the few a test takes over: the
//! claim (to act right after it) and progress writes (to make them hang).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use lrlab::job::{JobError, JobId, JobStatus};
use lrlab::store::{
    Backend, CancelOutcome, Claim, ClaimLimits, DeleteOutcome, Expired, HeldLease, JobFilter,
    JobRecord, JobStore, Lease, MetricSummary, NewJob, NewSweep, Renewal, Store, StoreError,
    StoredSweepEvent, Submitted, SweepDeleteOutcome, SweepFilter, SweepRecord, SweepStatus,
    SweepStep, SweepSubmitted, WorkerActivity, WorkerIdentity, WorkerInfo,
};
use lrlab::sweep::SweepId;
use lrlab::train::{EpochMetrics, EpochReport, StepRecord};

/// What a test changes; each method defaults to the real store's.
#[async_trait]
pub trait Hooks: Send + Sync + std::fmt::Debug + 'static {
    async fn claim_next(
        &self,
        store: &Store,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>, StoreError> {
        store.claim_next(worker, ttl, limits).await
    }

    async fn set_progress(
        &self,
        store: &Store,
        lease: &Lease,
        epoch: u32,
        step: u64,
    ) -> Result<(), StoreError> {
        store.set_progress(lease, epoch, step).await
    }
}

/// `store` with `hooks` in front of it.
#[derive(Debug)]
pub struct Hooked<H> {
    store: Store,
    hooks: H,
}

impl<H: Hooks> Hooked<H> {
    pub fn wrap(store: Store, hooks: H) -> Store {
        std::sync::Arc::new(Hooked { store, hooks })
    }
}

#[async_trait]
impl<H: Hooks> JobStore for Hooked<H> {
    async fn claim_next(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>, StoreError> {
        self.hooks
            .claim_next(&self.store, worker, ttl, limits)
            .await
    }
    async fn set_progress(&self, lease: &Lease, epoch: u32, step: u64) -> Result<(), StoreError> {
        self.hooks
            .set_progress(&self.store, lease, epoch, step)
            .await
    }

    // Everything else goes straight to the database.
    async fn claim_listed(
        &self,
        ids: &[JobId],
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Vec<Claim>, StoreError> {
        self.store.claim_listed(ids, worker, ttl, limits).await
    }
    fn backend(&self) -> Backend {
        self.store.backend()
    }
    async fn submit(&self, job: NewJob<'_>) -> Result<Submitted, StoreError> {
        self.store.submit(job).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.store.job(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter) -> Result<(Vec<JobRecord>, i64), StoreError> {
        self.store.list_jobs(filter).await
    }
    async fn queue_position(&self, job: &JobRecord) -> Result<i64, StoreError> {
        self.store.queue_position(job).await
    }
    async fn heartbeat(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError> {
        self.store.heartbeat(lease, ttl).await
    }
    async fn requeue_expired(&self) -> Result<Vec<Expired>, StoreError> {
        self.store.requeue_expired().await
    }
    async fn held_leases(&self) -> Result<Vec<HeldLease>, StoreError> {
        self.store.held_leases().await
    }
    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.store.release(lease).await
    }
    async fn pause(&self, lease: &Lease, epochs_done: u32) -> Result<JobStatus, StoreError> {
        self.store.pause(lease, epochs_done).await
    }
    async fn finish(
        &self,
        lease: &Lease,
        status: JobStatus,
        error: Option<&JobError>,
    ) -> Result<(), StoreError> {
        self.store.finish(lease, status, error).await
    }
    async fn set_total_steps(&self, lease: &Lease, total_steps: u64) -> Result<(), StoreError> {
        self.store.set_total_steps(lease, total_steps).await
    }
    async fn record_epoch(&self, lease: &Lease, report: &EpochReport) -> Result<(), StoreError> {
        self.store.record_epoch(lease, report).await
    }
    async fn cancel(&self, id: JobId) -> Result<CancelOutcome, StoreError> {
        self.store.cancel(id).await
    }
    async fn cancel_requested(&self, id: JobId) -> Result<bool, StoreError> {
        self.store.cancel_requested(id).await
    }
    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StoreError> {
        self.store.delete(id).await
    }
    async fn status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError> {
        self.store.status(id).await
    }
    async fn epoch_metrics(&self, id: JobId) -> Result<Vec<EpochMetrics>, StoreError> {
        self.store.epoch_metrics(id).await
    }
    async fn steps(&self, id: JobId, from: u64, limit: u32) -> Result<Vec<StepRecord>, StoreError> {
        self.store.steps(id, from, limit).await
    }
    async fn step_count(&self, id: JobId) -> Result<u64, StoreError> {
        self.store.step_count(id).await
    }
    async fn metric_summaries(
        &self,
        ids: &[JobId],
    ) -> Result<HashMap<JobId, MetricSummary>, StoreError> {
        self.store.metric_summaries(ids).await
    }
    async fn worker_heartbeat(
        &self,
        worker: &WorkerIdentity,
        activity: WorkerActivity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.store.worker_heartbeat(worker, activity, ttl).await
    }
    async fn worker_stopped(&self, worker: &WorkerIdentity) -> Result<(), StoreError> {
        self.store.worker_stopped(worker).await
    }
    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        self.store.workers().await
    }
    async fn check_host(&self, host: &str) -> Result<(), StoreError> {
        self.store.check_host(host).await
    }
    async fn submit_sweep(&self, sweep: NewSweep<'_>) -> Result<SweepSubmitted, StoreError> {
        self.store.submit_sweep(sweep).await
    }
    async fn sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError> {
        self.store.sweep(id).await
    }
    async fn list_sweeps(
        &self,
        filter: &SweepFilter,
    ) -> Result<(Vec<SweepRecord>, i64), StoreError> {
        self.store.list_sweeps(filter).await
    }
    async fn unfinished_sweeps(&self) -> Result<Vec<SweepId>, StoreError> {
        self.store.unfinished_sweeps().await
    }
    async fn sweep_members(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError> {
        self.store.sweep_members(id).await
    }
    async fn sweep_metrics(
        &self,
        id: SweepId,
    ) -> Result<HashMap<JobId, Vec<EpochMetrics>>, StoreError> {
        self.store.sweep_metrics(id).await
    }
    async fn sweep_events(&self, id: SweepId) -> Result<Vec<StoredSweepEvent>, StoreError> {
        self.store.sweep_events(id).await
    }
    async fn apply_sweep_step(&self, step: SweepStep<'_>) -> Result<bool, StoreError> {
        self.store.apply_sweep_step(step).await
    }
    async fn request_sweep_cancel(&self, id: SweepId) -> Result<Option<SweepStatus>, StoreError> {
        self.store.request_sweep_cancel(id).await
    }
    async fn delete_sweep(&self, id: SweepId) -> Result<SweepDeleteOutcome, StoreError> {
        self.store.delete_sweep(id).await
    }
    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        self.store.publish(payload).await
    }
    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
        self.store.subscribe().await
    }
    async fn job_tenant(&self, id: JobId) -> Result<Option<String>, StoreError> {
        self.store.job_tenant(id).await
    }
    async fn sweep_tenant(&self, id: SweepId) -> Result<Option<String>, StoreError> {
        self.store.sweep_tenant(id).await
    }
    async fn create_token(
        &self,
        token: lrlab::store::NewToken<'_>,
    ) -> Result<lrlab::store::TokenRecord, StoreError> {
        self.store.create_token(token).await
    }
    async fn token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<lrlab::store::TokenRecord>, StoreError> {
        self.store.token_by_hash(hash).await
    }
    async fn tokens(&self) -> Result<Vec<lrlab::store::TokenRecord>, StoreError> {
        self.store.tokens().await
    }
    async fn revoke_token(&self, id: i64) -> Result<Option<bool>, StoreError> {
        self.store.revoke_token(id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
    async fn close(&self) {
        self.store.close().await
    }
}
