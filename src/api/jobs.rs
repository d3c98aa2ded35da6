//! `/v1/jobs`: submit, inspect, list, cancel and delete training jobs.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::job_view::JobView;
use super::json::{from_value, AppJson};
use super::AppState;
use crate::job::{job_warnings, JobId, JobRequest, JobStatus, FASHION_MNIST_TRAIN_LEN};
use crate::store::{CancelOutcome, DeleteOutcome, JobFilter, NewJob, Submitted};

/// Page size of `GET /v1/jobs` when none is asked for, and its maximum.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;
/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(show).delete(delete))
        .route("/v1/jobs/{id}/cancel", post(cancel))
}

/// Extracts a job id from the path; anything that is not one is simply not found.
pub(super) fn job_id(path: Result<Path<JobId>, PathRejection>) -> Result<JobId, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::NotFound { what: "job".into() })
}

pub(super) fn job_not_found(id: JobId) -> ApiError {
    ApiError::NotFound {
        what: format!("job {id}"),
    }
}

/// `POST /v1/jobs`: validate, fill defaults, warn, store, wake a worker.
async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    // serde_json's maps are ordered by key, so this is a canonical form of
    // the request: a retry with the same fields hashes the same.
    let request_hash = hex(&Sha256::digest(body.to_string().as_bytes()));
    let request: JobRequest = from_value(body)?;
    let spec = request
        .into_spec(|| u64::from(rand::random::<u32>()))
        .map_err(|err| ApiError::Unprocessable {
            code: err.code,
            message: err.message,
            path: err.path,
        })?;
    let warnings = job_warnings(&spec);
    let submitted = state
        .store()
        .submit(NewJob {
            spec: &spec,
            warnings: &warnings,
            total_steps: spec.total_steps(FASHION_MNIST_TRAIN_LEN),
            idempotency: idempotency_key
                .as_deref()
                .map(|key| (key, request_hash.as_str())),
        })
        .await?;
    let (status, job, replayed) = match submitted {
        Submitted::Created(job) => {
            tracing::info!(job = job.id, name = %job.spec.name, "job queued");
            state.service().notify_queued();
            (StatusCode::CREATED, job, false)
        }
        Submitted::Replayed(job) => (StatusCode::OK, job, true),
        Submitted::KeyReused { existing } => {
            return Err(ApiError::Conflict {
                code: "idempotency_key_reused",
                message: format!(
                    "this Idempotency-Key was used for job {existing} with a different request"
                ),
            })
        }
    };
    let location = format!("/v1/jobs/{}", job.id);
    let view = view(&state, job).await?;
    let mut response = (status, Json(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_header",
            message: format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ),
            path: Some("Idempotency-Key".into()),
        })?;
    Ok(Some(key.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the view of one job: its metric summary and queue position.
pub(super) async fn view(
    state: &AppState,
    job: crate::store::JobRecord,
) -> Result<JobView, ApiError> {
    let store = state.store();
    let summary = store
        .metric_summaries(&[job.id])
        .await?
        .remove(&job.id)
        .unwrap_or_default();
    let position = if job.status == JobStatus::Queued {
        Some(store.queue_position(&job).await?)
    } else {
        None
    };
    Ok(JobView::new(job, summary, position))
}

/// `GET /v1/jobs/{id}`.
async fn show(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(path)?;
    let job = state
        .store()
        .job(id)
        .await?
        .ok_or_else(|| job_not_found(id))?;
    Ok(Json(view(&state, job).await?))
}

#[derive(Debug, Serialize)]
struct JobPage {
    jobs: Vec<JobView>,
    /// Jobs matching the filters, over all pages.
    total: i64,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET /v1/jobs?status=queued,running&name=…&limit=50&cursor=…`: newest first.
async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<JobPage>, ApiError> {
    let filter = parse_list_query(query.as_deref().unwrap_or(""))?;
    let (records, total) = state.store().list_jobs(&filter).await?;
    let ids: Vec<JobId> = records.iter().map(|job| job.id).collect();
    let mut summaries = state.store().metric_summaries(&ids).await?;
    let next_cursor = (records.len() == filter.limit as usize)
        .then(|| records.last().map(|job| job.id.to_string()))
        .flatten();
    let jobs = records
        .into_iter()
        .map(|job| {
            let summary = summaries.remove(&job.id).unwrap_or_default();
            JobView::new(job, summary, None)
        })
        .collect();
    Ok(Json(JobPage {
        jobs,
        total,
        next_cursor,
    }))
}

pub(super) fn bad_query(path: &str, message: String) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message,
        path: Some(path.to_string()),
    }
}

/// Parses the query string of `GET /v1/jobs`; `status` may repeat or hold a comma list.
fn parse_list_query(query: &str) -> Result<JobFilter, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|err| bad_query("", format!("unreadable query string: {err}")))?;
    let mut filter = JobFilter {
        limit: DEFAULT_PAGE,
        ..JobFilter::default()
    };
    for (key, value) in pairs {
        match key.as_str() {
            "status" => {
                for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    let status = word
                        .parse::<JobStatus>()
                        .map_err(|err| bad_query("status", err.to_string()))?;
                    if !filter.statuses.contains(&status) {
                        filter.statuses.push(status);
                    }
                }
            }
            "name" => filter.name = Some(value),
            "limit" => {
                filter.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|limit| (1..=MAX_PAGE).contains(limit))
                    .ok_or_else(|| {
                        bad_query("limit", format!("limit must be between 1 and {MAX_PAGE}, got `{value}`"))
                    })?;
            }
            "cursor" => {
                filter.before = Some(value.parse::<JobId>().map_err(|_| {
                    bad_query("cursor", format!("`{value}` is not a cursor from a previous page"))
                })?);
            }
            other => {
                return Err(bad_query(
                    other,
                    format!("unknown query parameter `{other}`, expected one of status, name, limit, cursor"),
                ))
            }
        }
    }
    Ok(filter)
}

/// `POST /v1/jobs/{id}/cancel`.
async fn cancel(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let status = match state.store().cancel(id).await? {
        CancelOutcome::Canceled => {
            state.service().notify_canceled(id);
            StatusCode::OK
        }
        CancelOutcome::Requested => {
            state.service().stop_job(id);
            StatusCode::ACCEPTED
        }
        CancelOutcome::AlreadyFinished(status) => {
            return Err(ApiError::Conflict {
                code: "job_finished",
                message: format!(
                    "job {id} has already finished ({status}); there is nothing to cancel"
                ),
            })
        }
        CancelOutcome::NotFound => return Err(job_not_found(id)),
    };
    let job = state
        .store()
        .job(id)
        .await?
        .ok_or_else(|| job_not_found(id))?;
    Ok((status, Json(view(&state, job).await?)).into_response())
}

/// `DELETE /v1/jobs/{id}`: a finished job, its metrics and its artifacts.
async fn delete(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = job_id(path)?;
    match state.store().delete(id).await? {
        DeleteOutcome::Deleted => {
            state
                .service()
                .remove_artifacts(id)
                .await
                .map_err(ApiError::internal)?;
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::NotFinished(status) => Err(ApiError::Conflict {
            code: "job_not_finished",
            message: format!("job {id} is {status}; cancel it before deleting it"),
        }),
        DeleteOutcome::NotFound => Err(job_not_found(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_accepts_repeated_and_comma_separated_statuses() {
        let filter =
            parse_list_query("status=queued,running&status=failed&limit=7&cursor=42").unwrap();
        assert_eq!(
            filter.statuses,
            vec![JobStatus::Queued, JobStatus::Running, JobStatus::Failed]
        );
        assert_eq!(filter.limit, 7);
        assert_eq!(filter.before, Some(42));
    }

    #[test]
    fn list_query_rejects_bad_values_naming_the_parameter() {
        for (query, path) in [
            ("status=done", "status"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("cursor=abc", "cursor"),
            ("colour=red", "colour"),
        ] {
            match parse_list_query(query) {
                Err(ApiError::BadRequest { path: Some(p), .. }) => assert_eq!(p, path, "{query}"),
                other => panic!("{query}: expected a 400, got {other:?}"),
            }
        }
    }
}
