//! `/v1/jobs/{id}/metrics`, `/steps` and `/weights`: what a job has produced,
//! in the shapes dashboards and scripts want.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::encode;
use super::error::ApiError;
use super::jobs::job_id;
use super::query::QueryParams;
use super::routes::Routes;
use super::AppState;
use crate::job::JobId;
use crate::train::{metrics_csv, EpochMetrics, StepRecord};

/// Page size of `GET /v1/jobs/{id}/steps` when none is asked for, and its maximum.
const DEFAULT_STEPS_PAGE: u32 = 1000;
const MAX_STEPS_PAGE: u32 = 100_000;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/v1/jobs/{id}/metrics", metrics)
        .get("/v1/jobs/{id}/steps", steps)
        .get("/v1/jobs/{id}/weights", weights)
}

#[derive(Debug, Serialize)]
struct MetricsRows {
    job: JobId,
    epochs: Vec<EpochMetrics>,
}

/// One array per metric: the shape dashboards plot.
#[derive(Debug, Serialize)]
struct MetricsSeries {
    job: JobId,
    epoch: Vec<u32>,
    train_loss: Vec<f64>,
    train_acc: Vec<f64>,
    test_loss: Vec<f64>,
    test_acc: Vec<f64>,
    lr: Vec<f64>,
    lr_min: Vec<f64>,
    lr_max: Vec<f64>,
    seconds: Vec<f64>,
    eval_seconds: Vec<f64>,
    examples_per_sec: Vec<f64>,
}

impl MetricsSeries {
    fn new(job: JobId, rows: &[EpochMetrics]) -> Self {
        let column = |f: fn(&EpochMetrics) -> f64| rows.iter().map(f).collect();
        MetricsSeries {
            job,
            epoch: rows.iter().map(|m| m.epoch).collect(),
            train_loss: column(|m| m.train_loss),
            train_acc: column(|m| m.train_acc),
            test_loss: column(|m| m.test_loss),
            test_acc: column(|m| m.test_acc),
            lr: column(|m| m.lr),
            lr_min: column(|m| m.lr_min),
            lr_max: column(|m| m.lr_max),
            seconds: column(|m| m.seconds),
            eval_seconds: column(|m| m.eval_seconds),
            examples_per_sec: column(|m| m.examples_per_sec),
        }
    }
}

/// `GET /v1/jobs/{id}/metrics?format=rows|series|csv`.
async fn metrics(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let params = QueryParams::parse(query.as_deref(), &["format"])?;
    let format = params.get("format").unwrap_or("rows");
    if !["rows", "series", "csv"].contains(&format) {
        return Err(ApiError::bad_query(
            "format",
            format!("unknown format `{format}`, expected one of rows, series, csv"),
        ));
    }
    let rows = state.service().metrics(id).await?;
    Ok(match format {
        "series" => Json(MetricsSeries::new(id, &rows)).into_response(),
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            metrics_csv(&rows),
        )
            .into_response(),
        _ => Json(MetricsRows {
            job: id,
            epochs: rows,
        })
        .into_response(),
    })
}

/// `from`: any integer ≥ 0 (absent: 0). One beyond every stored update, however large,
/// is simply an empty page, so indices past `u64::MAX` saturate instead of failing.
fn step_index(value: Option<&str>) -> Result<u64, ApiError> {
    match value {
        None => Ok(0),
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(text.parse::<u64>().unwrap_or(u64::MAX))
        }
        Some(text) => Err(ApiError::bad_query(
            "from",
            format!("from must be an integer ≥ 0 (a step index), got `{text}`"),
        )),
    }
}

#[derive(Debug, Serialize)]
struct StepsPage {
    job: JobId,
    steps: Vec<StepRecord>,
    /// Pass as `from` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_from: Option<u64>,
}

/// `GET /v1/jobs/{id}/steps?from=0&limit=1000`: per-update rate and batch loss.
async fn steps(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let params = QueryParams::parse(query.as_deref(), &["from", "limit"])?;
    let from = step_index(params.get("from"))?;
    let limit = params.limit(DEFAULT_STEPS_PAGE, MAX_STEPS_PAGE)?;
    let steps = state.service().steps(id, from, limit).await?;
    let next_from = (steps.len() == limit as usize)
        .then(|| steps.last().map(|s| s.step + 1))
        .flatten();
    encode::json_off_runtime(
        &headers,
        StepsPage {
            job: id,
            steps,
            next_from,
        },
    )
    .await
}

/// `GET /v1/jobs/{id}/weights`: the final weights, or the latest epoch's, as safetensors.
async fn weights(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let path = state.service().weights_path(id).await?;
    let bytes = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
    let disposition = format!("attachment; filename=\"lrlab-job-{id}.safetensors\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Bytes::from(bytes),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_indices_beyond_u64_saturate_and_non_integers_are_refused() {
        assert_eq!(step_index(None).unwrap(), 0);
        assert_eq!(step_index(Some("42")).unwrap(), 42);
        assert_eq!(
            step_index(Some("99999999999999999999999")).unwrap(),
            u64::MAX
        );
        for bad in ["", "-1", "1.5", "+3", "x"] {
            assert!(step_index(Some(bad)).is_err(), "{bad}");
        }
    }
}
