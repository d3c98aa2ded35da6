//! `/v1/jobs/{id}/metrics`, `/steps` and `/weights`: what a job has produced,
//! in the shapes dashboards and scripts want.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::error::ApiError;
use super::jobs::{bad_query, job_id, job_not_found};
use super::AppState;
use crate::job::JobId;
use crate::train::{EpochMetrics, StepRecord};

/// Page size of `GET /v1/jobs/{id}/steps` when none is asked for, and its maximum.
const DEFAULT_STEPS_PAGE: u32 = 1000;
const MAX_STEPS_PAGE: u32 = 100_000;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs/{id}/metrics", get(metrics))
        .route("/v1/jobs/{id}/steps", get(steps))
        .route("/v1/jobs/{id}/weights", get(weights))
}

#[derive(Debug, Serialize)]
struct MetricsRows {
    job: JobId,
    epochs: Vec<EpochMetrics>,
}

/// One array per metric: the shape dashboards plot.
#[derive(Debug, Default, Serialize)]
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

const METRICS_CSV_HEADER: &str =
    "epoch,train_loss,train_acc,test_loss,test_acc,lr,lr_min,lr_max,seconds,eval_seconds,examples_per_sec\n";

fn metrics_csv(rows: &[EpochMetrics]) -> String {
    let mut csv = String::from(METRICS_CSV_HEADER);
    for m in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            m.epoch,
            m.train_loss,
            m.train_acc,
            m.test_loss,
            m.test_acc,
            m.lr,
            m.lr_min,
            m.lr_max,
            m.seconds,
            m.eval_seconds,
            m.examples_per_sec
        ));
    }
    csv
}

/// `GET /v1/jobs/{id}/metrics?format=rows|series|csv`.
async fn metrics(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let params = query_map(query.as_deref(), &["format"])?;
    let format = params.get("format").map(String::as_str).unwrap_or("rows");
    if !["rows", "json", "series", "csv"].contains(&format) {
        return Err(bad_query(
            "format",
            format!("unknown format `{format}`, expected one of rows, series, csv"),
        ));
    }
    if state.store().job(id).await?.is_none() {
        return Err(job_not_found(id));
    }
    let rows = state.store().epoch_metrics(id).await?;
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

/// Parses a simple query string, rejecting parameters not in `allowed`.
fn query_map(query: Option<&str>, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|err| bad_query("", format!("unreadable query string: {err}")))?;
    let mut map = HashMap::new();
    for (key, value) in pairs {
        if !allowed.contains(&key.as_str()) {
            return Err(bad_query(
                &key,
                format!(
                    "unknown query parameter `{key}`, expected one of {}",
                    allowed.join(", ")
                ),
            ));
        }
        map.insert(key, value);
    }
    Ok(map)
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
) -> Result<Json<StepsPage>, ApiError> {
    let id = job_id(path)?;
    let params = query_map(query.as_deref(), &["from", "limit"])?;
    let from = match params.get("from") {
        Some(value) => value.parse::<u64>().map_err(|_| {
            bad_query(
                "from",
                format!("from must be a step index ≥ 0, got `{value}`"),
            )
        })?,
        None => 0,
    };
    let limit = match params.get("limit") {
        Some(value) => value
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_STEPS_PAGE).contains(limit))
            .ok_or_else(|| {
                bad_query(
                    "limit",
                    format!("limit must be between 1 and {MAX_STEPS_PAGE}, got `{value}`"),
                )
            })?,
        None => DEFAULT_STEPS_PAGE,
    };
    if state.store().job(id).await?.is_none() {
        return Err(job_not_found(id));
    }
    let steps = state.store().steps(id, from, limit).await?;
    let next_from = (steps.len() == limit as usize)
        .then(|| steps.last().map(|s| s.step + 1))
        .flatten();
    Ok(Json(StepsPage {
        job: id,
        steps,
        next_from,
    }))
}

/// `GET /v1/jobs/{id}/weights`: the final weights, or the latest epoch's, as safetensors.
async fn weights(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    if state.store().job(id).await?.is_none() {
        return Err(job_not_found(id));
    }
    let path = crate::train::checkpoint::weights_path(&state.service().artifacts_dir(id));
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
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
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(ApiError::NotFound {
            what: format!("weights of job {id} (they are written when its first epoch ends)"),
        }),
        Err(err) => Err(ApiError::internal(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_csv_has_a_header_and_one_line_per_epoch() {
        let row = EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_acc: 0.8,
            test_loss: 0.6,
            test_acc: 0.75,
            lr: 0.3,
            lr_min: 0.3,
            lr_max: 0.3,
            seconds: 2.0,
            eval_seconds: 0.1,
            examples_per_sec: 30000.0,
        };
        let csv = metrics_csv(&[row.clone(), EpochMetrics { epoch: 2, ..row }]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], METRICS_CSV_HEADER.trim_end());
        assert_eq!(lines[1], "1,0.5,0.8,0.6,0.75,0.3,0.3,0.3,2,0.1,30000");
    }
}
