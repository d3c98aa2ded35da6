//! `/v1/schedules/*`: the schedule catalogue and previews (a spec's curve, without training).

use axum::extract::RawQuery;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::encode;
use super::error::{ApiError, ErrorCode};
use super::json::AppJson;
use super::query::QueryParams;
use super::routes::Routes;
use super::AppState;
use crate::preview::{self, Preview, PreviewFormat};
use crate::schedule::{self, Schedule};
use crate::validation::FieldCode;

/// The most steps one preview may ask for: a million f64s is ~20 MB of JSON.
pub const MAX_PREVIEW_STEPS: u64 = preview::MAX_PREVIEW_STEPS as u64;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/v1/schedules/kinds", kinds)
        .post("/v1/schedules/preview", preview)
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

/// Evaluates a spec at steps `0..steps` and answers as JSON (downsampled to
/// `max_points` buckets when longer; default [`preview::DEFAULT_MAX_POINTS`]), CSV
/// (every step), a table or an SVG chart. Rendering and compression run off the
/// async runtime: a million steps is a lot of text.
async fn preview(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    AppJson(request): AppJson<PreviewRequest>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["format", "max_points"])?;
    let format = match params.get("format") {
        None => PreviewFormat::Json,
        Some(word) => word
            .parse::<PreviewFormat>()
            .map_err(|message| ApiError::bad_query("format", message))?,
    };
    let max_points =
        match params.parse_opt::<usize>("max_points", "an integer between 1 and 1000000")? {
            None => preview::DEFAULT_MAX_POINTS,
            Some(n) if (1..=preview::MAX_PREVIEW_STEPS).contains(&n) => n,
            Some(n) => {
                return Err(ApiError::bad_query(
                    "max_points",
                    format!(
                        "max_points must be between 1 and {}, got `{n}`",
                        preview::MAX_PREVIEW_STEPS
                    ),
                ))
            }
        };
    let schedule = Schedule::from_json(&request.schedule).map_err(|e| e.prefixed("schedule"))?;
    if !(1..=MAX_PREVIEW_STEPS).contains(&request.steps) {
        return Err(ApiError::at(
            ErrorCode::Field(FieldCode::OutOfRange),
            "steps",
            format!(
                "steps must be between 1 and {MAX_PREVIEW_STEPS}, got {}",
                request.steps
            ),
        ));
    }
    let steps = request.steps;
    encode::off_runtime(&headers, format.content_type(), move || {
        let preview = Preview::new(&schedule, steps).map_err(ApiError::internal)?;
        preview
            .render(format, None, max_points)
            .map_err(ApiError::internal)
    })
    .await
}
