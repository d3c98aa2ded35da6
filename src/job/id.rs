//! `JobId`: a job's identity, distinct from every other integer in the program.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A job's id: the database's row id, shown in URLs as `/v1/jobs/{id}`.
///
/// A newtype so that a job id cannot be passed where an epoch, a step or a
/// sweep id is expected; it serializes as a plain integer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct JobId(i64);

impl JobId {
    /// Wraps a row id read from the database or a URL.
    pub const fn new(id: i64) -> JobId {
        JobId(id)
    }

    /// The row id.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
    }
}

impl From<JobId> for i64 {
    fn from(id: JobId) -> i64 {
        id.0
    }
}
