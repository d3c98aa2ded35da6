//! Live events of jobs, fanned out to Server-Sent-Event clients.

use serde::Serialize;

use crate::job::{JobError, JobId, JobStatus};
use crate::train::EpochMetrics;

/// How many events a slow SSE client may fall behind before it is resynced.
pub const EVENT_BUFFER: usize = 1024;

/// Something that happened to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// The job changed status (claimed, requeued, finished).
    Status { job: JobId, status: JobStatus },
    /// Training moved on (a few times a second while running).
    Progress { job: JobId, progress: ProgressEvent },
    /// An epoch's metrics row was stored.
    Epoch { job: JobId, metrics: EpochMetrics },
    /// The job finished; no more events will follow for it.
    Done {
        job: JobId,
        status: JobStatus,
        error: Option<JobError>,
    },
}

impl JobEvent {
    /// The job this event belongs to.
    pub fn job(&self) -> JobId {
        match self {
            JobEvent::Status { job, .. }
            | JobEvent::Progress { job, .. }
            | JobEvent::Epoch { job, .. }
            | JobEvent::Done { job, .. } => *job,
        }
    }
}

/// Where a running job is, as sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressEvent {
    /// The epoch being trained (1-based).
    pub epoch: u32,
    pub epochs: u32,
    /// Updates done so far in the whole run.
    pub step: u64,
    pub total_steps: u64,
    /// `step / total_steps`.
    pub fraction: f64,
    pub batch_loss: f64,
    pub examples_per_sec: f64,
}
