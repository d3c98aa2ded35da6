//! Tests of the sweep module. Member jobs are checked with the real job
//! validator (`JobRequest` → `into_spec`), as the service will.

mod asha;
mod canonical;
mod expand;
mod median;
mod presets;
mod request;
mod stats;
mod summary;
mod warnings;

use serde_json::Value;

use super::{FieldError, SweepPlan, SweepRequest};
use crate::job::JobPlan;

/// The job API's validation, in the sweep's error shape.
pub(super) fn validate_job(job: &Value) -> Result<(), FieldError> {
    JobPlan::from_json(job, || 0).map(|_| ())
}

/// Parses a request from its text, as the API will (grid order kept).
pub(super) fn parse(json: &str) -> SweepRequest {
    serde_json::from_str(json).expect("test request parses")
}

/// Expands a request given as text.
pub(super) fn plan(json: &str) -> Result<SweepPlan, FieldError> {
    super::expand(&parse(json), validate_job)
}

/// The error of a request that must fail.
pub(super) fn error(json: &str) -> FieldError {
    plan(json).expect_err("request must be rejected")
}
