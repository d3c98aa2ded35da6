//! The live workers: one row per worker slot, upserted by its heartbeat.

use std::time::Duration;

use chrono::Utc;

use super::queue::{expiry, instant, millis};
use super::SqliteStore;
use crate::job::JobId;
use crate::store::{StoreError, WorkerActivity, WorkerIdentity, WorkerInfo};

#[derive(Debug, sqlx::FromRow)]
struct WorkerRow {
    host: String,
    pid: i64,
    name: String,
    device: String,
    job_id: Option<i64>,
    examples_per_sec: Option<f64>,
    started_at: i64,
    last_heartbeat: i64,
    expires_at: i64,
}

impl SqliteStore {
    pub(super) async fn upsert_worker(
        &self,
        worker: &WorkerIdentity,
        activity: WorkerActivity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        sqlx::query(
            "INSERT INTO workers (host, pid, name, device, job_id, examples_per_sec, started_at, \
             last_heartbeat, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (host, pid, name) DO UPDATE SET device = excluded.device, \
             job_id = excluded.job_id, examples_per_sec = excluded.examples_per_sec, \
             last_heartbeat = excluded.last_heartbeat, expires_at = excluded.expires_at",
        )
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(&worker.name)
        .bind(&worker.device)
        .bind(activity.job)
        .bind(activity.examples_per_sec.filter(|rate| rate.is_finite()))
        .bind(millis(now))
        .bind(millis(now))
        .bind(expiry(now, ttl))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn remove_worker(&self, worker: &WorkerIdentity) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM workers WHERE host = ? AND pid = ? AND name = ?")
            .bind(&worker.host)
            .bind(i64::from(worker.pid))
            .bind(&worker.name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn live_workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        let rows = sqlx::query_as::<_, WorkerRow>(
            "SELECT host, pid, name, device, job_id, examples_per_sec, started_at, \
             last_heartbeat, expires_at \
             FROM workers WHERE expires_at > ? ORDER BY host, pid, name",
        )
        .bind(millis(Utc::now()))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| WorkerInfo {
                worker: WorkerIdentity {
                    name: row.name,
                    host: row.host,
                    // Written from a u32; anything else is not a pid of ours.
                    pid: u32::try_from(row.pid).unwrap_or(0),
                    device: row.device,
                },
                job: row.job_id.map(JobId::new),
                examples_per_sec: row.examples_per_sec,
                started_at: instant(row.started_at),
                last_heartbeat: instant(row.last_heartbeat),
                expires_at: instant(row.expires_at),
            })
            .collect())
    }
}
