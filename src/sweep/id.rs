//! `SweepId`: a sweep's identity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A sweep's id: the database's row id, shown in URLs as `/v1/sweeps/{id}`.
///
/// A newtype so that it cannot be confused with a job id; it serializes as a
/// plain integer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct SweepId(i64);

impl SweepId {
    /// Wraps a row id read from the database or a URL.
    pub const fn new(id: i64) -> SweepId {
        SweepId(id)
    }

    /// The row id.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SweepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SweepId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(SweepId)
    }
}

impl From<SweepId> for i64 {
    fn from(id: SweepId) -> i64 {
        id.0
    }
}
