//! The live workers: one row per worker slot, upserted by its heartbeat.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PostgresStore;
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
    started_at: DateTime<Utc>,
    last_heartbeat: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl PostgresStore {
    pub(super) async fn upsert_worker(
        &self,
        worker: &WorkerIdentity,
        activity: WorkerActivity,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workers (host, pid, name, device, job_id, examples_per_sec, started_at, \
             last_heartbeat, expires_at) VALUES ($1, $2, $3, $4, $5, $6, now(), now(), \
             now() + make_interval(secs => $7)) \
             ON CONFLICT (host, pid, name) DO UPDATE SET device = EXCLUDED.device, \
             job_id = EXCLUDED.job_id, examples_per_sec = EXCLUDED.examples_per_sec, \
             last_heartbeat = EXCLUDED.last_heartbeat, expires_at = EXCLUDED.expires_at",
        )
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(&worker.name)
        .bind(&worker.device)
        .bind(activity.job)
        .bind(activity.examples_per_sec.filter(|rate| rate.is_finite()))
        .bind(ttl.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn remove_worker(&self, worker: &WorkerIdentity) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM workers WHERE host = $1 AND pid = $2 AND name = $3")
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
             FROM workers WHERE expires_at > now() ORDER BY host, pid, name",
        )
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
                started_at: row.started_at,
                last_heartbeat: row.last_heartbeat,
                expires_at: row.expires_at,
            })
            .collect())
    }
}
