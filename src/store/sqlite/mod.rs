//! The SQLite backend: one embedded file, the default. Every statement it runs is here.

mod jobs;
mod metrics;
mod queue;
mod sweeps;
mod tokens;
mod workers;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::{
    Backend, CancelOutcome, Claim, ClaimLimits, DeleteOutcome, Expired, HeldLease, JobFilter,
    JobRecord, JobStore, Lease, MetricSummary, NewJob, NewSweep, NewToken, Renewal, StoreError,
    StoredSweepEvent, Submitted, SweepDeleteOutcome, SweepFilter, SweepRecord, SweepStatus,
    SweepStep, SweepSubmitted, TokenRecord, WorkerActivity, WorkerIdentity, WorkerInfo,
};
use crate::job::{JobError, JobId, JobStatus};
use crate::sweep::SweepId;
use crate::train::{EpochMetrics, EpochReport, StepRecord};

/// How long a statement waits for another connection's write lock before failing.
///
/// Multi-statement write transactions begin with `BEGIN IMMEDIATE`: a transaction that
/// reads first and writes later cannot wait for the lock (SQLite answers "database is
/// locked" at once to avoid a deadlock), one that takes the write lock up front can.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the SQLite database at `url`, e.g.
    /// `sqlite://lrlab.db`, and brings its schema up to date.
    ///
    /// WAL mode lets readers (the API) run while a worker writes; the busy
    /// timeout makes concurrent writers wait instead of failing; foreign
    /// keys make deleting a job delete its metrics. `synchronous = FULL`
    /// syncs every commit, so an accepted job survives even a power cut:
    /// writes are rare here (a submission, an epoch), so the cost is nil.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::InvalidUrl {
                url: url.to_string(),
                reason: source.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let open_error = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        // Migrations run with foreign keys off: rebuilding a table (the only way to change
        // a constraint in SQLite) must not cascade-delete the rows that point at it.
        let migrations = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().foreign_keys(false))
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&migrations)
            .await?;
        migrations.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.foreign_keys(true))
            .await
            .map_err(open_error)?;
        Ok(SqliteStore { pool })
    }
}

/// The trait's methods are the inherent ones of `jobs.rs`, `queue.rs`, `metrics.rs`,
/// `workers.rs` and `sweeps.rs`.
#[async_trait]
impl JobStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
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
        // Reads the queue index and the last page of the jobs table, so a
        // database whose pages are unreadable fails here, not only in listings.
        sqlx::query("SELECT (SELECT COUNT(*) FROM jobs WHERE status = 'queued'), (SELECT MAX(id) FROM jobs)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
    async fn close(&self) {
        self.pool.close().await;
    }
}
