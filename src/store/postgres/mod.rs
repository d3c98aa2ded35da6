//! The PostgreSQL backend: one queue and store for workers on many machines. Every
//! statement it runs is here.
//!
//! Claims take the next queued row with `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers never wait on each other nor take one job twice. Lease instants are the
//! database's `now()`, so the machines' clocks need not agree. The pool reconnects on
//! its own after a database restart: a statement that fails meanwhile returns an error
//! ([`StoreError::is_transient`]) that callers retry.

mod jobs;
mod metrics;
mod notify;
mod queue;
mod sweeps;
mod tokens;
mod workers;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::{
    redact_url, Backend, CancelOutcome, Claim, ClaimLimits, DeleteOutcome, Expired, HeldLease,
    JobFilter, JobRecord, JobStore, Lease, MetricSummary, NewJob, NewSweep, NewToken, Renewal,
    StoreError, StoredSweepEvent, Submitted, SweepDeleteOutcome, SweepFilter, SweepRecord,
    SweepStatus, SweepStep, SweepSubmitted, TokenRecord, WorkerActivity, WorkerIdentity,
    WorkerInfo,
};
use crate::job::{JobError, JobId, JobStatus};
use crate::sweep::SweepId;
use crate::train::{EpochMetrics, EpochReport, StepRecord};

/// Connections per process: one per busy worker at a time, the heartbeats, and the API's
/// requests. PostgreSQL's default limit (100) leaves room for several processes.
const MAX_CONNECTIONS: u32 = 16;
/// How long a statement waits for a free (or re-established) connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections are closed after this, so a quiet process holds few.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A pool of connections to one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:5432/lrlab`,
    /// with `?sslmode=require` for TLS) and brings its schema up to date. The database
    /// must exist; migrations take an advisory lock, so processes may start together.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
            url: redact_url(url),
            reason: source.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(IDLE_TIMEOUT)
            // A connection broken by a database restart is noticed and replaced here,
            // before a statement is sent on it.
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: redact_url(url),
                source,
            })?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }
}

/// The trait's methods are the inherent ones of `jobs.rs`, `queue.rs`, `metrics.rs`,
/// `workers.rs` and `sweeps.rs`.
#[async_trait]
impl JobStore for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }
    async fn submit(&self, job: NewJob<'_>) -> Result<Submitted, StoreError> {
        self.submit_job(job).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.find_job(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter) -> Result<(Vec<JobRecord>, i64), StoreError> {
        self.list(filter).await
    }
    async fn queue_position(&self, job: &JobRecord) -> Result<i64, StoreError> {
        self.position(job).await
    }
    async fn claim_next(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>, StoreError> {
        self.claim(worker, ttl, limits).await
    }
    async fn claim_listed(
        &self,
        ids: &[JobId],
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Vec<Claim>, StoreError> {
        self.claim_ids(ids, worker, ttl, limits).await
    }
    async fn heartbeat(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError> {
        self.renew(lease, ttl).await
    }
    async fn requeue_expired(&self) -> Result<Vec<Expired>, StoreError> {
        self.requeue_expired_jobs().await
    }
    async fn held_leases(&self) -> Result<Vec<HeldLease>, StoreError> {
        self.leases().await
    }
    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.release_lease(lease).await
    }
    async fn pause(&self, lease: &Lease, epochs_done: u32) -> Result<JobStatus, StoreError> {
        self.pause_job(lease, epochs_done).await
    }
    async fn finish(
        &self,
        lease: &Lease,
        status: JobStatus,
        error: Option<&JobError>,
    ) -> Result<(), StoreError> {
        self.finish_job(lease, status, error).await
    }
    async fn set_progress(&self, lease: &Lease, epoch: u32, step: u64) -> Result<(), StoreError> {
        self.write_progress(lease, epoch, step).await
    }
    async fn set_total_steps(&self, lease: &Lease, total_steps: u64) -> Result<(), StoreError> {
        self.write_total_steps(lease, total_steps).await
    }
    async fn record_epoch(&self, lease: &Lease, report: &EpochReport) -> Result<(), StoreError> {
        self.insert_epoch(lease, report).await
    }
    async fn cancel(&self, id: JobId) -> Result<CancelOutcome, StoreError> {
        self.cancel_job(id).await
    }
    async fn cancel_requested(&self, id: JobId) -> Result<bool, StoreError> {
        self.is_cancel_requested(id).await
    }
    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StoreError> {
        self.delete_job(id).await
    }
    async fn status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError> {
        self.job_status(id).await
    }
    async fn epoch_metrics(&self, id: JobId) -> Result<Vec<EpochMetrics>, StoreError> {
        self.read_epochs(id).await
    }
    async fn steps(&self, id: JobId, from: u64, limit: u32) -> Result<Vec<StepRecord>, StoreError> {
        self.read_steps(id, from, limit).await
    }
    async fn step_count(&self, id: JobId) -> Result<u64, StoreError> {
        self.count_steps(id).await
    }
    async fn metric_summaries(
        &self,
        ids: &[JobId],
    ) -> Result<HashMap<JobId, MetricSummary>, StoreError> {
        self.summaries(ids).await
    }
    async fn worker_heartbeat(
        &self,
        worker: &WorkerIdentity,
        activity: WorkerActivity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.upsert_worker(worker, activity, ttl).await
    }
    async fn worker_stopped(&self, worker: &WorkerIdentity) -> Result<(), StoreError> {
        self.remove_worker(worker).await
    }
    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        self.live_workers().await
    }
    async fn submit_sweep(&self, sweep: NewSweep<'_>) -> Result<SweepSubmitted, StoreError> {
        self.insert_sweep(sweep).await
    }
    async fn sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError> {
        self.find_sweep(id).await
    }
    async fn list_sweeps(
        &self,
        filter: &SweepFilter,
    ) -> Result<(Vec<SweepRecord>, i64), StoreError> {
        self.list_sweep_page(filter).await
    }
    async fn unfinished_sweeps(&self) -> Result<Vec<SweepId>, StoreError> {
        self.unfinished().await
    }
    async fn sweep_members(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError> {
        self.members(id).await
    }
    async fn sweep_metrics(
        &self,
        id: SweepId,
    ) -> Result<HashMap<JobId, Vec<EpochMetrics>>, StoreError> {
        self.member_metrics(id).await
    }
    async fn sweep_events(&self, id: SweepId) -> Result<Vec<StoredSweepEvent>, StoreError> {
        self.events(id).await
    }
    async fn apply_sweep_step(&self, step: SweepStep<'_>) -> Result<bool, StoreError> {
        self.apply_step(step).await
    }
    async fn request_sweep_cancel(&self, id: SweepId) -> Result<Option<SweepStatus>, StoreError> {
        self.flag_sweep_cancel(id).await
    }
    async fn delete_sweep(&self, id: SweepId) -> Result<SweepDeleteOutcome, StoreError> {
        self.remove_sweep(id).await
    }
    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        self.notify(payload).await
    }
    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
        Ok(Some(self.listen().await?))
    }
    async fn job_tenant(&self, id: JobId) -> Result<Option<String>, StoreError> {
        self.tenant_of_job(id).await
    }
    async fn sweep_tenant(&self, id: SweepId) -> Result<Option<String>, StoreError> {
        self.tenant_of_sweep(id).await
    }
    async fn create_token(&self, token: NewToken<'_>) -> Result<TokenRecord, StoreError> {
        self.insert_token(token).await
    }
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.find_token(hash).await
    }
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.all_tokens().await
    }
    async fn revoke_token(&self, id: i64) -> Result<Option<bool>, StoreError> {
        self.revoke(id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        // Reads the queue index and the last page of the jobs table, as SQLite's does.
        sqlx::query(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE status = 'queued'), (SELECT MAX(id) FROM jobs)",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
    async fn close(&self) {
        self.pool.close().await;
    }
}
