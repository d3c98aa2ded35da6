//! `/v1/schedules/*`: the schedule catalogue and previews (a spec's curve, without training).

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::json::AppJson;
use super::AppState;
use crate::preview;
use crate::schedule::{self, Schedule};

/// The most steps one preview may ask for: a million f64s is ~20 MB of JSON.
pub const MAX_PREVIEW_STEPS: u64 = preview::MAX_PREVIEW_STEPS as u64;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/schedules/kinds", get(kinds))
        .route("/v1/schedules/preview", post(preview))
}

#[derive(Debug, Serialize)]
struct KindsResponse {
    kinds: &'static [schedule::KindInfo],
}

/// Every schedule kind with its fields and formula, so a client can build a form.
async fn kinds() -> Json<KindsResponse> {
    Json(KindsResponse {
        kinds: schedule::catalog(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    schedule: serde_json::Value,
    steps: u64,
}

/// The representations a preview can be answered in.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PreviewFormat {
    #[default]
    Json,
    Csv,
    Svg,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewQuery {
    #[serde(default)]
    format: PreviewFormat,
}

#[derive(Debug, Serialize)]
struct PreviewResponse {
    steps: u64,
    lr: Vec<f64>,
    /// True when the schedule reacts to metrics during training
    /// (`reduce_on_plateau`): the curve is then only its starting point.
    adaptive: bool,
    /// The spec as it will be used, with every default filled in.
    schedule: schedule::ScheduleSpec,
}

/// Evaluates a spec at steps `0..steps` and answers as JSON, CSV or SVG.
async fn preview(
    query: Result<Query<PreviewQuery>, QueryRejection>,
    AppJson(request): AppJson<PreviewRequest>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest {
        code: "invalid_query",
        message: format!(
            "{} (format is one of json, csv, svg)",
            rejection.body_text()
        ),
        path: Some("format".into()),
    })?;
    let schedule = Schedule::from_json(&request.schedule)
        .map_err(|err| ApiError::from_spec(err, "schedule"))?;
    if !(1..=MAX_PREVIEW_STEPS).contains(&request.steps) {
        return Err(ApiError::invalid(
            "out_of_range",
            "steps",
            format!(
                "steps must be between 1 and {MAX_PREVIEW_STEPS}, got {}",
                request.steps
            ),
        ));
    }
    let steps = request.steps;
    // A million evaluations plus their serialization take tens of
    // milliseconds: keep that off the async runtime's threads.
    tokio::task::spawn_blocking(move || render(&schedule, steps, query.format))
        .await
        .map_err(ApiError::internal)?
}

fn render(schedule: &Schedule, steps: u64, format: PreviewFormat) -> Result<Response, ApiError> {
    let count = usize::try_from(steps).map_err(ApiError::internal)?;
    let lr = schedule.preview(count);
    Ok(match format {
        PreviewFormat::Json => Json(PreviewResponse {
            steps,
            adaptive: schedule.is_adaptive(),
            schedule: schedule.spec().clone(),
            lr,
        })
        .into_response(),
        PreviewFormat::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            preview::to_csv(&lr),
        )
            .into_response(),
        PreviewFormat::Svg => {
            let title = preview::title_for(schedule);
            let svg = preview::to_svg(&lr, &title).map_err(ApiError::internal)?;
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
    })
}
