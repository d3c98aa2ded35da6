//! `GET /healthz` (the process runs and its database answers) and `GET /readyz` (it can
//! take work), for load balancers, container health checks and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::{ApiError, ErrorCode};
use super::routes::Routes;
use super::AppState;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/healthz", healthz)
        .get("/readyz", readyz)
}

/// 200 when the server runs and its database answers a query that reads its tables;
/// 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Result<Response, ApiError> {
    if let Err(err) = state.service().check_health().await {
        tracing::error!(error = %format!("{:#}", anyhow::Error::from(err)), "health check failed");
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "the database does not answer; see the server log",
        ));
    }
    let auth = state.auth();
    let mut body =
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "auth": auth.mode()});
    if auth.insecure {
        body["warning"] = json!(
            "authentication is off on a network address (--insecure-no-auth): anyone who reaches this port can submit, cancel and delete every job"
        );
    }
    Ok(Json(body).into_response())
}

/// 200 when this process can take work: not shutting down, database answering, artifacts
/// directory writable; 503 with the reasons otherwise.
async fn readyz(State(state): State<AppState>) -> Response {
    let problems = state.service().readiness().await;
    if problems.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reasons": problems})),
        )
            .into_response()
    }
}
