//! The life cycle of a job: `queued → running → succeeded | failed | canceled`; a sweep's
//! member may also wait `paused` at an early-stopping rung (`running → paused → queued`) and
//! end `stopped_early` there.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life cycle. Stored as lower-case TEXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is training it.
    Running,
    /// A sweep member waiting, checkpointed and off the workers, for its sweep's
    /// early-stopping decision at a rung; it is queued again if its config continues.
    Paused,
    /// Trained every epoch.
    Succeeded,
    /// Stopped by an error; see the job's error code and message.
    Failed,
    /// Stopped on request.
    Canceled,
    /// A sweep member stopped by its sweep's early-stopping rule (see its sweep's decisions).
    StoppedEarly,
}

impl JobStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Paused,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Canceled,
        JobStatus::StoppedEarly,
    ];

    /// The status word used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::StoppedEarly => "stopped_early",
        }
    }

    /// True once the job will never change again (it can then be deleted).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded
                | JobStatus::Failed
                | JobStatus::Canceled
                | JobStatus::StoppedEarly
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status word that is not one of [`JobStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`, expected one of queued, running, paused, succeeded, failed, canceled, stopped_early")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_round_trip_and_unknown_words_list_the_valid_ones() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        let err = "done".parse::<JobStatus>().unwrap_err();
        assert!(err.to_string().contains("succeeded"), "{err}");
    }

    #[test]
    fn only_terminal_statuses_are_finished() {
        assert!(!JobStatus::Queued.is_finished());
        assert!(!JobStatus::Running.is_finished());
        assert!(!JobStatus::Paused.is_finished());
        assert!(JobStatus::StoppedEarly.is_finished());
        assert!(JobStatus::Succeeded.is_finished());
        assert!(JobStatus::Failed.is_finished());
        assert!(JobStatus::Canceled.is_finished());
    }
}
