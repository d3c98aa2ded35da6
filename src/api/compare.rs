//! `GET /v1/compare/steps?ids=1,2,3&buckets=1000`: several jobs' per-update learning
//! rate and batch loss, cut into the same buckets so they can share one chart.
//!
//! A job makes thousands of updates per run (millions, for a long one); a chart is a few
//! hundred pixels wide. Each bucket keeps its minimum and maximum (and the loss's mean),
//! so a spike or the drop of a step schedule survives, and every job on the chart is cut
//! at the same steps, so their buckets line up.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use super::encode;
use super::error::{ApiError, ErrorCode};
use super::query::QueryParams;
use super::routes::Routes;
use super::AppState;
use crate::job::JobId;
use crate::service::{ServiceError, StepBuckets};

/// Most jobs one comparison may hold.
pub const MAX_COMPARE_JOBS: usize = 50;
/// Buckets when none are asked for, and the most one request may ask for: 50 jobs × 5
/// columns × 5000 buckets is about 15 MB of JSON before compression.
pub const DEFAULT_BUCKETS: u32 = 1000;
pub const MAX_BUCKETS: u32 = 5000;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new().get("/v1/compare/steps", compare_steps)
}

/// The `ids` parameter: 1 to [`MAX_COMPARE_JOBS`] job ids, comma-separated or repeated;
/// duplicates are dropped, the first occurrence keeps its place.
pub(super) fn job_ids(params: &QueryParams) -> Result<Vec<JobId>, ApiError> {
    let words = params.list("ids");
    if words.is_empty() {
        return Err(ApiError::bad_query(
            "ids",
            format!("ids must list 1 to {MAX_COMPARE_JOBS} job ids, e.g. ids=1,2,3"),
        ));
    }
    let mut ids = Vec::with_capacity(words.len());
    for word in words {
        let id = word
            .parse::<JobId>()
            .map_err(|_| ApiError::bad_query("ids", format!("`{word}` in ids is not a job id")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_COMPARE_JOBS {
        return Err(ApiError::bad_query(
            "ids",
            format!(
                "ids lists {} jobs; at most {MAX_COMPARE_JOBS} can be compared",
                ids.len()
            ),
        ));
    }
    Ok(ids)
}

/// A job of `ids` that does not exist is a 404 naming it, with `ids` as the path.
pub(super) fn unknown_job(err: ServiceError) -> ApiError {
    match err {
        ServiceError::NotFound(id) => {
            ApiError::at(ErrorCode::NotFound, "ids", format!("job {id} not found"))
        }
        other => other.into(),
    }
}

#[derive(Debug, Serialize)]
struct CompareSteps {
    /// Number of buckets; every array below has this length.
    buckets: usize,
    /// Updates per bucket (1: every update); the last bucket may hold fewer.
    bucket_size: usize,
    /// The 0-based index of each bucket's first update.
    step: Vec<usize>,
    jobs: Vec<JobBuckets>,
}

#[derive(Debug, Serialize)]
struct JobBuckets {
    id: JobId,
    name: String,
    lr_min: Vec<Option<f64>>,
    lr_max: Vec<Option<f64>>,
    loss_min: Vec<Option<f64>>,
    loss_max: Vec<Option<f64>>,
    loss_mean: Vec<Option<f64>>,
}

impl From<StepBuckets> for CompareSteps {
    fn from(steps: StepBuckets) -> Self {
        CompareSteps {
            buckets: steps.buckets.count,
            bucket_size: steps.buckets.size,
            step: steps.buckets.starts().collect(),
            jobs: steps
                .jobs
                .into_iter()
                .map(|job| JobBuckets {
                    id: job.job.id,
                    name: job.job.spec.name,
                    lr_min: job.lr_min,
                    lr_max: job.lr_max,
                    loss_min: job.loss_min,
                    loss_max: job.loss_max,
                    loss_mean: job.loss_mean,
                })
                .collect(),
        }
    }
}

/// `GET /v1/compare/steps?ids=1,2,3&buckets=1000`.
async fn compare_steps(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["ids", "buckets"])?;
    let ids = job_ids(&params)?;
    let buckets = params.int_in("buckets", DEFAULT_BUCKETS, 1..=MAX_BUCKETS)?;
    let steps = state
        .service()
        .step_buckets(&ids, buckets as usize)
        .await
        .map_err(unknown_job)?;
    encode::json_off_runtime(&headers, CompareSteps::from(steps)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &str) -> Result<Vec<i64>, ApiError> {
        let params = QueryParams::parse(Some(raw), &["ids"]).unwrap();
        job_ids(&params).map(|ids| ids.into_iter().map(JobId::get).collect())
    }

    fn path(err: ApiError) -> Option<String> {
        match err {
            ApiError::Client { path, .. } => path,
            ApiError::Internal(_) => None,
        }
    }

    #[test]
    fn ids_are_comma_separated_or_repeated_and_deduplicated() {
        assert_eq!(ids("ids=3,1,2").unwrap(), vec![3, 1, 2]);
        assert_eq!(ids("ids=3&ids=1,3").unwrap(), vec![3, 1]);
    }

    #[test]
    fn bad_ids_are_a_400_at_ids() {
        let fifty_one: Vec<String> = (1..=51).map(|i| i.to_string()).collect();
        for raw in [
            "ids=".to_string(),
            "ids=1,x".to_string(),
            "ids=1.5".to_string(),
            format!("ids={}", fifty_one.join(",")),
        ] {
            assert_eq!(
                path(ids(&raw).unwrap_err()).as_deref(),
                Some("ids"),
                "{raw}"
            );
        }
        assert!(QueryParams::parse(Some(""), &["ids"])
            .and_then(|p| job_ids(&p))
            .is_err());
    }
}
