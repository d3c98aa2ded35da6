//! The job store: what the service needs from a database, and the backends that provide it.
//!
//! [`JobStore`] is the whole interface: the job service (and through it the API
//! and the workers) calls these methods and never sees SQL. Every statement
//! lives in a backend module — [`sqlite`] (embedded, one file, the default, one
//! machine) and [`postgres`] (one queue for workers on many machines) — and both
//! behave the same, down to the test suite they share. [`open`] picks the backend
//! from the URL. A worker's writes for a job are fenced by its [`Lease`]
//! (`docs/QUEUE.md`).

mod lease;
pub mod postgres;
mod records;
mod rows;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use lease::{
    process_may_be_alive, this_host, Claim, ClaimLimits, Expired, HeldLease, Lease, LeaseConfig,
    LeaseToken, Renewal, WorkerActivity, WorkerIdentity, WorkerInfo,
};
pub use records::{
    CancelOutcome, DeleteOutcome, JobFilter, JobRecord, MemberUpdate, MetricSummary, NewJob,
    NewMember, NewSweep, NewToken, StoredSweepEvent, Submitted, SweepDeleteOutcome, SweepEvent,
    SweepFilter, SweepRecord, SweepStatus, SweepStep, SweepSubmitted, TokenRecord,
    UnknownSweepStatus,
};

use crate::job::{JobError, JobId, JobStatus};
use crate::sweep::SweepId;
use crate::train::{EpochMetrics, EpochReport, StepRecord};

/// A shared handle on the job store.
pub type Store = Arc<dyn JobStore>;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// SQLite is one file on one machine: workers on other machines cannot share it.
    pub fn serves_one_host(self) -> bool {
        self == Backend::Sqlite
    }
}

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
    #[error("stored token {token} is unreadable: {detail}")]
    CorruptToken { token: i64, detail: String },
    #[error("could not encode JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The job's row holds another lease than the writer's: the job was taken away (its
    /// lease expired) or settled. The writer must stop and write nothing more for it.
    #[error("the lease on job {job} was lost; another worker may own it now")]
    LeaseLost { job: JobId },
    /// A SQLite database that a worker on another machine is using.
    #[error(
        "the SQLite database is in use by worker {worker} on host `{host}` (its lease runs \
         until {until}); SQLite serves one machine: for workers on several machines use \
         PostgreSQL (--db postgres://...)"
    )]
    OtherHost {
        worker: String,
        host: String,
        until: chrono::DateTime<chrono::Utc>,
    },
}

impl StoreError {
    /// A stored value of job `job` that cannot be what was written.
    pub fn corrupt(job: JobId, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            job,
            detail: detail.into(),
        }
    }

    /// Whether the same statement may succeed if tried again soon: the connection broke
    /// (a database restart, a network cut), the pool had no connection in time, or the
    /// database asked to retry (busy, serialization failure, shutting down).
    pub fn is_transient(&self) -> bool {
        let StoreError::Sqlx(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL: connection exceptions (08…), operator intervention such
                // as a shutdown or a restart (57P0…), serialization failures and
                // deadlocks (40…). SQLite: busy (5) and locked (6).
                code.starts_with("08")
                    || code.starts_with("57P0")
                    || code.starts_with("40")
                    || code == "5"
                    || code == "6"
            }),
            _ => false,
        }
    }
}

/// Everything the job service asks of a database. Implementations must make each method
/// atomic: two workers never claim one job, and a crash never leaves half a write.
///
/// Methods that take a [`Lease`] are a worker's writes for its job: they are *fenced*,
/// failing with [`StoreError::LeaseLost`] and changing nothing when the job's row holds
/// another lease.
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Inserts a job, or with an idempotency key seen before returns the first one.
    async fn submit(&self, job: NewJob<'_>) -> Result<Submitted, StoreError>;
    /// One job by id.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError>;
    /// A page of jobs, newest first, and how many jobs match the filter in all.
    async fn list_jobs(&self, filter: &JobFilter) -> Result<(Vec<JobRecord>, i64), StoreError>;
    /// How many queued jobs will be claimed before this one (0: it is next).
    async fn queue_position(&self, job: &JobRecord) -> Result<i64, StoreError>;

    /// Atomically takes the next queued job for `worker`, with a lease of `ttl` (counted
    /// on the database's clock) and one more attempt. Fair share (docs/QUEUE.md): the job
    /// comes from the tenant with the fewest running jobs, ties going to the tenant served
    /// least recently (round-robin); within the tenant, highest priority, then oldest. A
    /// sweep's member is only taken while fewer than its sweep's `max_concurrent` members
    /// run, and a tenant's job only while the tenant runs fewer than
    /// `limits.max_running_per_tenant`, however many workers claim at once.
    async fn claim_next(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>, StoreError>;
    /// Atomically (in one transaction) takes for `worker` those of `ids` that are still
    /// queued and not asked to stop, in the order given, each with a lease of its own of
    /// `ttl` and one more attempt; a sweep's member only while fewer than its sweep's
    /// `max_concurrent` members run and its tenant runs fewer than
    /// `limits.max_running_per_tenant`, the ones taken before it counted. Jobs another
    /// worker took meanwhile are left out. This is how a worker takes the members of a
    /// sweep it trains in lockstep with a member it claimed.
    async fn claim_listed(
        &self,
        ids: &[JobId],
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Vec<Claim>, StoreError>;
    /// Renews a lease for `ttl` from now, and says whether a cancel or an early stop (its
    /// sweep's decision) is pending. The token alone decides: a lease past its expiry that
    /// nobody has re-queued yet still renews.
    async fn heartbeat(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError>;
    /// Puts every running job whose lease has expired back in the queue (or ends it
    /// `canceled` or `stopped_early` when that was pending), and forgets workers whose
    /// heartbeats stopped.
    async fn requeue_expired(&self) -> Result<Vec<Expired>, StoreError>;
    /// The leases of every running job, with the workers holding them.
    async fn held_leases(&self) -> Result<Vec<HeldLease>, StoreError>;
    /// Gives a running job back to the queue at once (graceful shutdown, a dead process
    /// of this machine); it resumes from its last checkpoint when claimed again.
    async fn release(&self, lease: &Lease) -> Result<(), StoreError>;
    /// A running sweep member stopped at its pause point after `epochs_done` epochs (fenced,
    /// like every write of its worker; the lease ends here). It becomes `paused` (off the
    /// workers until its sweep continues it) — unless the sweep decided meanwhile: stopped
    /// (`stopped_early`), canceled (`canceled`), or moved its pause point on (`queued`
    /// again). Returns the status it got.
    async fn pause(&self, lease: &Lease, epochs_done: u32) -> Result<JobStatus, StoreError>;
    /// Ends a running job with `status` and, for failures, its error.
    async fn finish(
        &self,
        lease: &Lease,
        status: JobStatus,
        error: Option<&JobError>,
    ) -> Result<(), StoreError>;
    /// Records how far a running job has got.
    async fn set_progress(&self, lease: &Lease, epoch: u32, step: u64) -> Result<(), StoreError>;
    /// Corrects a job's total update count once its data set is loaded.
    async fn set_total_steps(&self, lease: &Lease, total_steps: u64) -> Result<(), StoreError>;
    /// Stores one epoch's metrics row and its per-update records atomically, and moves the
    /// job's progress to the epoch's end; an epoch redone after a crash replaces its rows.
    async fn record_epoch(&self, lease: &Lease, report: &EpochReport) -> Result<(), StoreError>;

    /// Cancels a queued or paused job at once, or flags a running one for its worker.
    async fn cancel(&self, id: JobId) -> Result<CancelOutcome, StoreError>;
    /// Whether a cancel was requested for this job.
    async fn cancel_requested(&self, id: JobId) -> Result<bool, StoreError>;
    /// Deletes a finished job with its metrics (the caller removes its artifacts first).
    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StoreError>;
    /// The job's status, if it exists.
    async fn status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError>;

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

    /// Says that `worker` is alive and what it trains (how fast), until `ttl` from now.
    async fn worker_heartbeat(
        &self,
        worker: &WorkerIdentity,
        activity: WorkerActivity,
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// Removes a worker that stops (graceful shutdown) from the listing.
    async fn worker_stopped(&self, worker: &WorkerIdentity) -> Result<(), StoreError>;
    /// The live workers (heartbeat not expired), by host, pid and name.
    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError>;

    /// Refuses to serve `host` when this backend serves one machine and a live worker
    /// of another machine uses the database (a SQLite file on a shared disk).
    async fn check_host(&self, host: &str) -> Result<(), StoreError> {
        if !self.backend().serves_one_host() {
            return Ok(());
        }
        match self
            .workers()
            .await?
            .into_iter()
            .find(|w| w.worker.host != host)
        {
            Some(other) => Err(StoreError::OtherHost {
                worker: other.worker.to_string(),
                host: other.worker.host,
                until: other.expires_at,
            }),
            None => Ok(()),
        }
    }

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

    /// Sends `payload` to the processes subscribed to this database (PostgreSQL's
    /// `NOTIFY`; at most 8000 bytes). A backend that carries no messages drops it.
    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        let _ = payload;
        Ok(())
    }
    /// What processes publish on this database from now on (its own messages included),
    /// best effort; `None` where the backend carries no messages (SQLite: events stay in
    /// their process).
    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
        Ok(None)
    }
    /// The tenant a job belongs to, if the job exists.
    async fn job_tenant(&self, id: JobId) -> Result<Option<String>, StoreError>;
    /// The tenant a sweep belongs to, if the sweep exists.
    async fn sweep_tenant(&self, id: SweepId) -> Result<Option<String>, StoreError>;

    /// Stores a token's hash, tenant, role and expiry.
    async fn create_token(&self, token: NewToken<'_>) -> Result<TokenRecord, StoreError>;
    /// The token with this hash (an indexed lookup), live or not.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Every token, oldest first.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes a token for good; `None` when there is no such token, else whether it was
    /// live until now.
    async fn revoke_token(&self, id: i64) -> Result<Option<bool>, StoreError>;

    /// Checks that the database answers a query that reads its tables.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes every connection (at shutdown).
    async fn close(&self);
}

/// Opens the store a URL names (`sqlite://lrlab.db`, `postgres://user@host/db`),
/// creating (SQLite) and migrating it as needed.
pub async fn open(url: &str) -> Result<Store, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::open(url).await?))
    } else {
        Err(StoreError::InvalidUrl {
            url: url.to_string(),
            reason: "expected a sqlite:// or postgres:// URL".to_string(),
        })
    }
}

/// A database URL fit for logs and error messages: any password (`user:secret@host` or
/// `?password=secret`) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://lab:s3cr:et@db.example:5432/lrlab?sslmode=require"),
            "postgres://lab:***@db.example:5432/lrlab?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/lrlab?user=lab&password=hunter2"),
            "postgresql://db/lrlab?user=lab&password=***"
        );
        assert_eq!(redact_url("sqlite://lrlab.db"), "sqlite://lrlab.db");
        assert_eq!(
            redact_url("postgres://lab@db/lrlab"),
            "postgres://lab@db/lrlab"
        );
    }

    #[test]
    fn only_connection_failures_and_retry_requests_are_transient() {
        assert!(StoreError::Sqlx(sqlx::Error::PoolTimedOut).is_transient());
        assert!(StoreError::Sqlx(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        )))
        .is_transient());
        assert!(!StoreError::Sqlx(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::LeaseLost { job: JobId::new(1) }.is_transient());
    }
}
