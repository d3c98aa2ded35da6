//! The values the store takes and gives back, the same for every backend.

use chrono::{DateTime, Utc};

use crate::job::{JobError, JobId, JobSpec, JobStatus, Warning};
use crate::train::EpochMetrics;

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: JobId,
    pub spec: JobSpec,
    pub warnings: Vec<Warning>,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// How many times a worker has started (or resumed) it.
    pub attempts: i64,
    pub worker: Option<String>,
    pub device: Option<String>,
    pub cancel_requested: bool,
    pub error: Option<JobError>,
    pub total_steps: i64,
    /// Epochs completed so far.
    pub progress_epoch: i64,
    /// Updates completed so far.
    pub progress_step: i64,
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub spec: &'a JobSpec,
    pub warnings: &'a [Warning],
    /// Updates the job will make, as far as is known before its data is loaded.
    pub total_steps: u64,
    /// The client's `Idempotency-Key` and a hash of its request body.
    pub idempotency: Option<(&'a str, &'a str)>,
}

/// The outcome of a submission.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// A new job.
    Created(JobRecord),
    /// The idempotency key was seen before with the same request: the first job.
    Replayed(JobRecord),
    /// The idempotency key was seen before with a different request.
    KeyReused { existing: JobId },
}

/// The outcome of a cancel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was queued and is now canceled.
    Canceled,
    /// It is running; its worker stops it at the next batch.
    Requested,
    /// It had already finished with this status.
    AlreadyFinished(JobStatus),
    NotFound,
}

/// The outcome of a delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Only finished jobs can be deleted.
    NotFinished(JobStatus),
    NotFound,
}

/// Which jobs to list: newest first, `limit` of them, older than `before`.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub statuses: Vec<JobStatus>,
    pub name: Option<String>,
    pub before: Option<JobId>,
    pub limit: u32,
}

/// The latest and the best (highest test accuracy) epoch of a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSummary {
    pub latest: Option<EpochMetrics>,
    pub best: Option<EpochMetrics>,
}
