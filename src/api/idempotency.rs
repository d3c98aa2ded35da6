//! Submissions that may be retried: the `Idempotency-Key` header, and the answer that says
//! whether a submission was new (201) or a retry of an earlier one (200 with
//! `Idempotent-Replayed: true`), for jobs and sweeps alike.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::error::{ApiError, ErrorCode};

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The request's `Idempotency-Key`, if any; a 400 naming the header when it is empty, too
/// long or not visible ASCII.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::at(
                ErrorCode::InvalidHeader,
                "Idempotency-Key",
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            )
        })?;
    Ok(Some(key.to_string()))
}

/// The answer to a submission: 201 with `Location` for a new resource, 200 with
/// `Idempotent-Replayed: true` (and `Location`) for a retry.
pub fn submitted(body: impl Serialize, location: &str, replayed: bool) -> Response {
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
