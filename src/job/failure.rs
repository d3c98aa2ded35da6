//! Why a job failed: a stable code and a sentence, stored with the job.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The class of a job's failure: a stable word clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// A loss or a metric became NaN or infinite: the rate is too high for this model.
    Diverged,
    /// Fashion-MNIST could not be found or read.
    DataUnavailable,
    /// The device is unknown, not compiled in, or failed.
    Device,
    /// A checkpoint or weights file could not be written or read.
    Checkpoint,
    /// The job's results could not be stored.
    Store,
    /// The stored spec no longer satisfies the rules (it was edited, or the rules changed).
    InvalidSpec,
    /// The schedule produced a rate that cannot be used.
    InvalidSchedule,
    /// A tensor operation failed: a bug or an exhausted device.
    Internal,
    /// Training panicked; the worker carried on with the next job.
    InternalPanic,
}

impl FailureCode {
    /// Every code, for documentation checks.
    pub const ALL: [FailureCode; 9] = [
        FailureCode::Diverged,
        FailureCode::DataUnavailable,
        FailureCode::Device,
        FailureCode::Checkpoint,
        FailureCode::Store,
        FailureCode::InvalidSpec,
        FailureCode::InvalidSchedule,
        FailureCode::Internal,
        FailureCode::InternalPanic,
    ];

    /// The code as stored and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::Diverged => "diverged",
            FailureCode::DataUnavailable => "data_unavailable",
            FailureCode::Device => "device",
            FailureCode::Checkpoint => "checkpoint",
            FailureCode::Store => "store",
            FailureCode::InvalidSpec => "invalid_spec",
            FailureCode::InvalidSchedule => "invalid_schedule",
            FailureCode::Internal => "internal",
            FailureCode::InternalPanic => "internal_panic",
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| format!("unknown failure code `{s}`"))
    }
}

/// Lets tests and callers compare a code with its word directly.
impl PartialEq<&str> for FailureCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a job failed: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: FailureCode,
    pub message: String,
}

impl JobError {
    /// A failure with its explanation.
    pub fn new(code: FailureCode, message: impl Into<String>) -> JobError {
        JobError {
            code,
            message: message.into(),
        }
    }
}
