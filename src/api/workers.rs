//! `GET /v1/workers`: the live workers of every process on the database, for operators
//! and the dashboard.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::ApiError;
use super::routes::Routes;
use super::AppState;
use crate::store::WorkerInfo;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new().get("/v1/workers", list)
}

#[derive(Debug, Serialize)]
struct WorkerList {
    workers: Vec<WorkerView>,
}

/// One worker slot as clients see it.
#[derive(Debug, Serialize)]
struct WorkerView {
    /// The slot's name within its process (`worker-0`).
    name: String,
    host: String,
    pid: u32,
    device: String,
    /// The job it trains; `null` while idle.
    job_id: Option<i64>,
    /// Its training throughput at its last heartbeat; `null` while idle or before the
    /// job's first progress report.
    examples_per_sec: Option<f64>,
    started_at: DateTime<Utc>,
    last_heartbeat: DateTime<Utc>,
    /// Without a heartbeat by then the worker is presumed gone.
    expires_at: DateTime<Utc>,
}

impl From<WorkerInfo> for WorkerView {
    fn from(info: WorkerInfo) -> Self {
        WorkerView {
            name: info.worker.name,
            host: info.worker.host,
            pid: info.worker.pid,
            device: info.worker.device,
            job_id: info.job.map(|job| job.get()),
            examples_per_sec: info.examples_per_sec,
            started_at: info.started_at,
            last_heartbeat: info.last_heartbeat,
            expires_at: info.expires_at,
        }
    }
}

/// Every live worker (its heartbeat has not expired), by host, pid and name.
async fn list(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    let workers = state.service().workers().await?;
    Ok(Json(WorkerList {
        workers: workers.into_iter().map(WorkerView::from).collect(),
    }))
}
