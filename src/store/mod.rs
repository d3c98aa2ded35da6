//! The job store: what the service needs from a database, and the backends that provide it.
//!
//! [`JobStore`] is the whole interface: the job service (and through it the API
//! and the workers) calls these methods and never sees SQL. Every statement
//! lives in a backend module — today [`sqlite`] (embedded, one file, the
//! default) — so a second backend for several machines goes beside it without
//! touching the service. [`open`] picks the backend from the URL.

mod records;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use records::{
    CancelOutcome, DeleteOutcome, JobFilter, JobRecord, MemberUpdate, MetricSummary, NewJob,
    NewMember, NewSweep, StoredSweepEvent, Submitted, SweepDeleteOutcome, SweepEvent, SweepFilter,
    SweepRecord, SweepStatus, SweepStep, SweepSubmitted,
};

use crate::job::{JobError, JobId, JobStatus};
use crate::sweep::SweepId;
use crate::train::{EpochMetrics, EpochReport, StepRecord};

/// A shared handle on the job store.
pub type Store = Arc<dyn JobStore>;

/// Failures of the job store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("could not open the database `{url}`: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("stored data of job {job} is unreadable: {detail}")]
    Corrupt { job: JobId, detail: String },
    #[error("stored data of sweep {sweep} is unreadable: {detail}")]
    CorruptSweep { sweep: SweepId, detail: String },
    #[error("could not encode JSON: {0}")]
    Encode(#[source] serde_json::Error),
}

impl StoreError {
    /// A stored value of job `job` that cannot be what was written.
    pub fn corrupt(job: JobId, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            job,
            detail: detail.into(),
        }
    }
}

/// Everything the job service asks of a database. Implementations must make each method
/// atomic: two workers never claim one job, and a crash never leaves half a write.
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Inserts a job, or with an idempotency key seen before returns the first one.
    async fn submit(&self, job: NewJob<'_>) -> Result<Submitted, StoreError>;
    /// One job by id.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError>;
    /// A page of jobs, newest first, and how many jobs match the filter in all.
    async fn list_jobs(&self, filter: &JobFilter) -> Result<(Vec<JobRecord>, i64), StoreError>;
    /// How many queued jobs will be claimed before this one (0: it is next).
    async fn queue_position(&self, job: &JobRecord) -> Result<i64, StoreError>;
    /// Atomically takes the next queued job (highest priority, then oldest) for `worker`.
    async fn claim_next(&self, worker: &str, device: &str)
        -> Result<Option<JobRecord>, StoreError>;
    /// Atomically takes for `worker` those of `ids` that are still queued (and within their
    /// sweep's concurrency limit), in the order given: the members of a sweep a worker trains
    /// in lockstep with the member it claimed. The default claims nothing, so on a backend
    /// that does not implement it every job trains on its own.
    async fn claim_companions(
        &self,
        ids: &[JobId],
        worker: &str,
        device: &str,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let _ = (ids, worker, device);
        Ok(Vec::new())
    }
    /// Puts every job left `running` (by a crash) back in the queue; returns their ids.
    async fn requeue_abandoned(&self) -> Result<Vec<JobId>, StoreError>;
    /// Puts one running job back in the queue (graceful shutdown).
    async fn requeue(&self, id: JobId) -> Result<(), StoreError>;
    /// A running sweep member stopped at its pause point after `epochs_done` epochs. It
    /// becomes `paused` (off the workers until its sweep continues it) — unless the sweep
    /// decided meanwhile: stopped (`stopped_early`), canceled (`canceled`), or moved its pause
    /// point on (`queued` again). Returns the status it got.
    async fn pause(&self, id: JobId, epochs_done: u32) -> Result<JobStatus, StoreError>;
    /// Ends a running job with `status` and, for failures, its error.
    async fn finish(
        &self,
        id: JobId,
        status: JobStatus,
        error: Option<&JobError>,
    ) -> Result<(), StoreError>;
    /// Cancels a queued or paused job at once, or flags a running one for its worker.
    async fn cancel(&self, id: JobId) -> Result<CancelOutcome, StoreError>;
    /// Whether a cancel was requested for this job.
    async fn cancel_requested(&self, id: JobId) -> Result<bool, StoreError>;
    /// Deletes a finished job with its metrics (the caller removes its artifacts first).
    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StoreError>;
    /// The job's status, if it exists.
    async fn status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError>;
    /// Records how far a running job has got.
    async fn set_progress(&self, id: JobId, epoch: u32, step: u64) -> Result<(), StoreError>;
    /// Corrects a job's total update count once its data set is loaded.
    async fn set_total_steps(&self, id: JobId, total_steps: u64) -> Result<(), StoreError>;

    /// Stores one epoch's metrics row and its per-update records atomically, and moves the
    /// job's progress to the epoch's end; an epoch redone after a crash replaces its rows.
    async fn record_epoch(&self, id: JobId, report: &EpochReport) -> Result<(), StoreError>;
    /// Every stored epoch of a job, in order.
    async fn epoch_metrics(&self, id: JobId) -> Result<Vec<EpochMetrics>, StoreError>;
    /// Up to `limit` per-update records of a job from update `from` on.
    async fn steps(&self, id: JobId, from: u64, limit: u32) -> Result<Vec<StepRecord>, StoreError>;
    /// How many per-update records a job has.
    async fn step_count(&self, id: JobId) -> Result<u64, StoreError>;
    /// Latest and best epoch of each of `ids`.
    async fn metric_summaries(
        &self,
        ids: &[JobId],
    ) -> Result<HashMap<JobId, MetricSummary>, StoreError>;

    /// Inserts a sweep and all its member jobs atomically, or with an idempotency key seen
    /// before returns the first sweep.
    async fn submit_sweep(&self, sweep: NewSweep<'_>) -> Result<SweepSubmitted, StoreError>;
    /// One sweep by id.
    async fn sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError>;
    /// A page of sweeps, newest first, and how many there are in all.
    async fn list_sweeps(
        &self,
        filter: &SweepFilter,
    ) -> Result<(Vec<SweepRecord>, i64), StoreError>;
    /// Sweeps not finished yet (their coordinators resume after a restart).
    async fn unfinished_sweeps(&self) -> Result<Vec<SweepId>, StoreError>;
    /// Every member job of a sweep, by id.
    async fn sweep_members(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError>;
    /// Every stored epoch of every member of a sweep.
    async fn sweep_metrics(
        &self,
        id: SweepId,
    ) -> Result<HashMap<JobId, Vec<EpochMetrics>>, StoreError>;
    /// The sweep's early-stopping log, in order.
    async fn sweep_events(&self, id: SweepId) -> Result<Vec<StoredSweepEvent>, StoreError>;
    /// Applies one coordinator step atomically; `false` (nothing written) when the log
    /// has grown since `step.next_seq`.
    async fn apply_sweep_step(&self, step: SweepStep<'_>) -> Result<bool, StoreError>;
    /// Marks a sweep canceled-on-request; `None` when there is no such sweep.
    async fn request_sweep_cancel(&self, id: SweepId) -> Result<Option<SweepStatus>, StoreError>;
    /// Deletes a finished sweep with its members and their metrics.
    async fn delete_sweep(&self, id: SweepId) -> Result<SweepDeleteOutcome, StoreError>;

    /// Checks that the database answers a query that reads its tables.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes every connection (at shutdown).
    async fn close(&self);
}

/// Opens the store a URL names (`sqlite://lrlab.db`), creating and migrating it as needed.
pub async fn open(url: &str) -> Result<Store, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        Err(StoreError::InvalidUrl {
            url: url.to_string(),
            reason: "expected a sqlite:// URL".to_string(),
        })
    }
}
