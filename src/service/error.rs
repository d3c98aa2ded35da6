//! What a service method can refuse, in words the API maps to status codes in one place.

use crate::job::{InvalidJob, JobId, JobStatus};
use crate::store::{StoreError, SweepStatus};
use crate::sweep::SweepId;

/// Why a life-cycle operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request breaks a rule; the error names the field.
    #[error(transparent)]
    Invalid(#[from] InvalidJob),
    /// No job has this id.
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The idempotency key was used before with a different request.
    #[error("this Idempotency-Key was used for job {existing} with a different request")]
    IdempotencyKeyReused { existing: JobId },
    /// Cancel of a job that already finished.
    #[error("job {id} has already finished ({status}); there is nothing to cancel")]
    AlreadyFinished { id: JobId, status: JobStatus },
    /// Delete of a job that has not finished.
    #[error("job {id} is {status}; cancel it before deleting it")]
    NotFinished { id: JobId, status: JobStatus },
    /// The job has no weights yet.
    #[error("weights of job {0} not found (they are written when its first epoch ends)")]
    NoWeights(JobId),
    /// A delete could not remove the job's artifacts, so it kept the job whole.
    #[error("the artifacts of job {id} could not be removed, so the job was not deleted; see the server log")]
    ArtifactsKept {
        id: JobId,
        #[source]
        source: std::io::Error,
    },
    /// The job's artifacts could not be read.
    #[error("the artifacts of job {id} cannot be read")]
    Artifacts {
        id: JobId,
        #[source]
        source: std::io::Error,
    },
    /// No sweep has this id.
    #[error("sweep {0} not found")]
    SweepNotFound(SweepId),
    /// The idempotency key was used before with a different sweep request.
    #[error("this Idempotency-Key was used for sweep {existing} with a different request")]
    SweepKeyReused { existing: SweepId },
    /// Cancel of a sweep that already finished.
    #[error("sweep {id} has already finished ({status}); there is nothing to cancel")]
    SweepFinished { id: SweepId, status: SweepStatus },
    /// Delete of a sweep that has not finished.
    #[error("sweep {id} is {status}; cancel it before deleting it")]
    SweepNotFinished { id: SweepId, status: SweepStatus },
    /// The tenant has as many queued jobs as it may (`--max-queued-per-tenant`).
    #[error("tenant `{tenant}` has {queued} queued jobs and may have at most {limit}; wait for some to start or cancel some")]
    TenantQueueFull {
        tenant: String,
        queued: i64,
        limit: u32,
    },
    /// A sweep with more jobs (configs × seeds) than `--max-sweep-jobs` allows. `path` is
    /// the field that multiplies it: `grid`, `variants` or, for one config, `seeds`.
    #[error("the sweep would run {configs} configs × {seeds} seeds = {jobs} jobs; this server allows at most {limit} per sweep (--max-sweep-jobs)")]
    SweepTooLarge {
        path: &'static str,
        configs: usize,
        seeds: usize,
        jobs: usize,
        limit: u32,
    },
    /// A token request names a tenant that breaks the naming rules.
    #[error(transparent)]
    InvalidTenant(#[from] crate::auth::InvalidTenant),
    /// No token has this id.
    #[error("token {0} not found")]
    TokenNotFound(i64),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
