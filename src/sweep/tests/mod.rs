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
use crate::job::JobRequest;

/// The job API's validation, in the sweep's error shape.
pub(super) fn validate_job(job: &Value) -> Result<(), FieldError> {
    let request: JobRequest = serde_path_to_error::deserialize(job.clone()).map_err(|err| {
        let path = match err.path().to_string() {
            root if root == "." => String::new(),
            path => path,
        };
        FieldError::new("invalid_value", path, err.inner().to_string())
    })?;
    request
        .into_spec(|| 0)
        .map(|_| ())
        .map_err(|err| FieldError {
            code: err.code,
            path: err.path,
            message: err.message,
        })
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
