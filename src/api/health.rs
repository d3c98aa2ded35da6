//! `GET /healthz`: liveness, and whether the job store answers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 when the server runs and its database answers a query.
async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store().ping().await?;
    Ok(Json(
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
    ))
}
