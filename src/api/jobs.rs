//! `/v1/jobs`: submit, inspect, list, cancel and delete training jobs.
//!
//! Each handler extracts its inputs, calls one [`crate::service::Service`]
//! method and shapes the response.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::idempotency::{idempotency_key, submitted};
use super::job_view::JobView;
use super::json::AppJson;
use super::query::QueryParams;
use super::routes::Routes;
use super::AppState;
use crate::auth::Caller;
use crate::job::{JobId, JobSpec, JobStatus, Warning};
use crate::service::{Cancellation, Submission};
use crate::store::JobFilter;
use crate::sweep::SweepId;

/// Page size of `GET /v1/jobs` when none is asked for, and its maximum.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .post("/v1/jobs", submit)
        .get("/v1/jobs", list)
        .get("/v1/jobs/{id}", show)
        .delete("/v1/jobs/{id}", delete)
        .post("/v1/jobs/{id}/cancel", cancel)
}

/// A job id from the path; anything that is not one is simply not found.
pub(super) fn job_id(path: Result<Path<JobId>, PathRejection>) -> Result<JobId, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::not_found("job"))
}

/// What a dry run answers: the job as it would be queued, and its warnings.
#[derive(Debug, Serialize)]
struct DryRunView {
    dry_run: bool,
    /// The normalized spec: every default filled in.
    spec: JobSpec,
    warnings: Vec<Warning>,
    /// Updates the job would make on the full training split (cut by `train_limit`).
    total_steps: u64,
}

/// `POST /v1/jobs`: validate, fill defaults, warn, store, wake a worker. With
/// `?dry_run=true`: validate, fill defaults and warn, store nothing (200, no `Location`).
async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["dry_run"])?;
    let key = idempotency_key(&headers)?;
    if params.flag("dry_run")? {
        let (plan, warnings) = state.service().check(&body)?;
        let view = DryRunView {
            dry_run: true,
            total_steps: plan.total_steps(),
            spec: plan.into_spec(),
            warnings,
        };
        return Ok(Json(view).into_response());
    }
    let (details, replayed) = match state
        .service()
        .submit_for(&caller.tenant, &body, key.as_deref())
        .await?
    {
        Submission::Created(details) => (details, false),
        Submission::Replayed(details) => (details, true),
    };
    let location = format!("/v1/jobs/{}", details.record.id);
    Ok(submitted(JobView::from(details), &location, replayed))
}

/// `GET /v1/jobs/{id}`.
async fn show(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(path)?;
    Ok(Json(state.service().job(id).await?.into()))
}

#[derive(Debug, Serialize)]
struct JobPageView {
    jobs: Vec<JobView>,
    /// Jobs matching the filters, over all pages.
    total: i64,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET /v1/jobs?status=queued,running&name=…&sweep=…&limit=50&cursor=…`: newest first.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Json<JobPageView>, ApiError> {
    let filter = JobFilter {
        tenant: caller.scope().map(str::to_string),
        ..parse_list_query(query.as_deref())?
    };
    let page = state.service().list(&filter).await?;
    Ok(Json(JobPageView {
        jobs: page
            .jobs
            .into_iter()
            .map(|(record, summary)| JobView::new(record, summary, None))
            .collect(),
        total: page.total,
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}

/// Parses the query string of `GET /v1/jobs`; `status` may repeat or hold a comma list.
fn parse_list_query(query: Option<&str>) -> Result<JobFilter, ApiError> {
    let params = QueryParams::parse(query, &["status", "name", "sweep", "limit", "cursor"])?;
    let mut statuses = Vec::new();
    for word in params.list("status") {
        let status = word
            .parse::<JobStatus>()
            .map_err(|err| ApiError::bad_query("status", err.to_string()))?;
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(JobFilter {
        statuses,
        // Stored names are trimmed, so the filter is too: ` sqrt ` finds `sqrt`.
        name: params.get("name").map(|name| name.trim().to_string()),
        sweep: params.parse_opt::<SweepId>("sweep", "a sweep id")?,
        before: params.parse_opt::<JobId>("cursor", "a cursor from a previous page")?,
        limit: params.limit(DEFAULT_PAGE, MAX_PAGE)?,
        tenant: None,
    })
}

/// `POST /v1/jobs/{id}/cancel`: 200 for a queued job (canceled at once), 202 for a
/// running one (stopped at its next batch).
async fn cancel(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let (cancellation, details) = state.service().cancel(id).await?;
    let status = match cancellation {
        Cancellation::Canceled => StatusCode::OK,
        Cancellation::Requested => StatusCode::ACCEPTED,
    };
    Ok((status, Json(JobView::from(details))).into_response())
}

/// `DELETE /v1/jobs/{id}`: a finished job, its metrics and its artifacts.
async fn delete(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = job_id(path)?;
    state.service().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorCode;

    #[test]
    fn list_query_accepts_repeated_and_comma_separated_statuses() {
        let filter = parse_list_query(Some(
            "status=queued,running&status=failed&limit=7&cursor=42",
        ))
        .unwrap();
        assert_eq!(
            filter.statuses,
            vec![JobStatus::Queued, JobStatus::Running, JobStatus::Failed]
        );
        assert_eq!(filter.limit, 7);
        assert_eq!(filter.before, Some(JobId::new(42)));
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
            match parse_list_query(Some(query)) {
                Err(ApiError::Client {
                    code: ErrorCode::InvalidQuery,
                    path: Some(p),
                    ..
                }) => assert_eq!(p, path, "{query}"),
                other => panic!("{query}: expected a 400, got {other:?}"),
            }
        }
    }
}
