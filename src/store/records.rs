//! The values the store takes and gives back, the same for every backend.

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::job::{JobError, JobId, JobSpec, JobStatus, Warning};
use crate::sweep::{Decision, Observation, SweepId};
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
    /// The sweep this job is a member of, and its config's index there.
    pub sweep: Option<(SweepId, usize)>,
    /// A sweep member stops (pauses) after this many epochs: its early-stopping rung.
    pub run_until_epoch: Option<u32>,
    /// Its sweep's rule stopped it: when it stops it ends `stopped_early`.
    pub stop_early_requested: bool,
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
    /// The tenant it belongs to; `None`: [`crate::auth::DEFAULT_TENANT`].
    pub tenant: Option<&'a str>,
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
    /// Only the members of this sweep.
    pub sweep: Option<SweepId>,
    pub before: Option<JobId>,
    pub limit: u32,
    /// Only this tenant's jobs (`None`: every tenant's).
    pub tenant: Option<String>,
}

/// The latest and the best (highest test accuracy) epoch of a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSummary {
    pub latest: Option<EpochMetrics>,
    pub best: Option<EpochMetrics>,
}

/// Where a sweep is, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum SweepStatus {
    /// No member has started yet.
    Queued,
    /// Members are running, queued or paused.
    Running,
    /// Every member ended; at least one trained to its end or was stopped early.
    Succeeded,
    /// Every member failed.
    Failed,
    /// Canceled on request (its members too).
    Canceled,
}

impl SweepStatus {
    /// The status word in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepStatus::Queued => "queued",
            SweepStatus::Running => "running",
            SweepStatus::Succeeded => "succeeded",
            SweepStatus::Failed => "failed",
            SweepStatus::Canceled => "canceled",
        }
    }

    /// True once nothing of the sweep will change again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            SweepStatus::Succeeded | SweepStatus::Failed | SweepStatus::Canceled
        )
    }
}

/// A sweep status word that is not one of lrlab's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sweep status `{0}`")]
pub struct UnknownSweepStatus(pub String);

impl std::str::FromStr for SweepStatus {
    type Err = UnknownSweepStatus;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        [
            SweepStatus::Queued,
            SweepStatus::Running,
            SweepStatus::Succeeded,
            SweepStatus::Failed,
            SweepStatus::Canceled,
        ]
        .into_iter()
        .find(|status| status.as_str() == word)
        .ok_or_else(|| UnknownSweepStatus(word.to_string()))
    }
}

impl std::fmt::Display for SweepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sweep as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRecord {
    pub id: SweepId,
    pub name: String,
    /// The request in canonical form (grid order kept): expanding it again gives the plan.
    pub request: String,
    pub warnings: Vec<Warning>,
    pub status: SweepStatus,
    pub max_concurrent: Option<u32>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One member job of a new sweep.
#[derive(Debug, Clone)]
pub struct NewMember<'a> {
    pub spec: &'a JobSpec,
    pub warnings: &'a [Warning],
    pub total_steps: u64,
    /// Its config's index in the sweep.
    pub config: usize,
    /// The epoch it first pauses at (the first early-stopping rung), if any.
    pub run_until_epoch: Option<u32>,
}

/// A sweep to insert, with all its members, in one transaction.
#[derive(Debug, Clone)]
pub struct NewSweep<'a> {
    pub name: &'a str,
    pub request: &'a str,
    pub warnings: &'a [Warning],
    pub max_concurrent: Option<u32>,
    pub members: Vec<NewMember<'a>>,
    /// The client's `Idempotency-Key` and a hash of its canonical request.
    pub idempotency: Option<(&'a str, &'a str)>,
    /// The tenant the sweep and its members belong to; `None`:
    /// [`crate::auth::DEFAULT_TENANT`].
    pub tenant: Option<&'a str>,
}

/// The outcome of a sweep submission.
#[derive(Debug, Clone)]
pub enum SweepSubmitted {
    Created(SweepRecord),
    /// The idempotency key was seen before with the same request: the first sweep.
    Replayed(SweepRecord),
    /// The idempotency key was seen before with a different request.
    KeyReused {
        existing: SweepId,
    },
}

/// Which sweeps to list: newest first, `limit` of them, older than `before`.
#[derive(Debug, Clone, Default)]
pub struct SweepFilter {
    pub before: Option<SweepId>,
    pub limit: u32,
    /// Only this tenant's sweeps (`None`: every tenant's).
    pub tenant: Option<String>,
}

/// One entry of a sweep's early-stopping log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum SweepEvent {
    /// What the rule was told.
    Observation(Observation),
    /// What it decided.
    Decision(Decision),
}

/// A stored log entry: its position and time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSweepEvent {
    /// 0-based position in the sweep's log.
    pub seq: u64,
    pub event: SweepEvent,
    pub at: DateTime<Utc>,
}

/// The outcome of a sweep delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepDeleteOutcome {
    Deleted,
    /// Only finished sweeps can be deleted.
    NotFinished(SweepStatus),
    NotFound,
}

/// What a sweep step does to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberUpdate {
    /// Train on: a paused member is queued again; its next pause point is `run_until`.
    Continue { job: JobId, run_until: Option<u32> },
    /// End it `stopped_early`: at once when it is queued or paused, at its next batch
    /// when it runs.
    StopEarly { job: JobId },
    /// Cancel it (the sweep was canceled): as a job cancel.
    Cancel { job: JobId },
}

/// One atomic step of a sweep: log entries appended after position `next_seq`, member
/// updates and the sweep's new status. Refused (nothing written) when another process
/// appended first, so two coordinators never decide twice.
#[derive(Debug, Clone)]
pub struct SweepStep<'a> {
    pub sweep: SweepId,
    /// The log's length the step was computed from.
    pub next_seq: u64,
    pub events: &'a [SweepEvent],
    pub updates: &'a [MemberUpdate],
    pub status: SweepStatus,
}

/// An API token as stored: never the token itself, only its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: i64,
    pub tenant: String,
    pub role: Role,
    /// SHA-256 of the token, hex ([`crate::auth::hash_token`]).
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// Whether the token may be used at `now`: not revoked, not expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| now < expires)
    }
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub tenant: &'a str,
    pub role: Role,
    pub hash: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}
