//! `GET /metrics` (Prometheus text format), and the middleware that counts, times and
//! logs every request by its route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::encode;
use super::error::ApiError;
use super::routes::Routes;
use super::AppState;
use crate::observability;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new().get("/metrics", metrics)
}

/// `GET /metrics`: job counts read from the store now, then every metric of the process.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let counts = state.service().job_counts().await?;
    observability::record_job_counts(&counts);
    encode::off_runtime(&headers, observability::CONTENT_TYPE, || {
        Ok(observability::render())
    })
    .await
}

/// A method as a metric label: the standard ones by name, anything else as `other`, so a
/// client inventing methods cannot multiply the series.
fn method_label(method: &Method) -> &'static str {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .iter()
    .find(|known| *known == method)
    .map_or("other", |known| known.as_str())
}

/// Counts and times the request under its route template (`/v1/jobs/{id}`; `unmatched`
/// when no route matched) and logs one line with its id, route, status and latency.
/// Runs outermost, so timeouts and refused hosts are counted too.
pub(super) async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    observability::http_request(&route, method, status, elapsed);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info!(
        request_id,
        method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
