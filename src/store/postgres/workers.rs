//! The live workers: one row per worker slot, upserted by its heartbeat.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PostgresStore;
use crate::job::JobId;
use crate::store::{StoreError, WorkerIdentity, WorkerInfo};

#[derive(Debug, sqlx::FromRow)]
struct WorkerRow {
    host: String,
    pid: i64,
    name: String,
    device: String,
    job_id: Option<i64>,
    started_at: DateTime<Utc>,
    last_heartbeat: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl PostgresStore {
    pub(super) async fn upsert_worker(
        &self,
        worker: &WorkerIdentity,
        job: Option<JobId>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workers (host, pid, name, device, job_id, started_at, last_heartbeat, \
             expires_at) VALUES ($1, $2, $3, $4, $5, now(), now(), \
             now() + make_interval(secs => $6)) \
             ON CONFLICT (host, pid, name) DO UPDATE SET device = EXCLUDED.device, \
             job_id = EXCLUDED.job_id, last_heartbeat = EXCLUDED.last_heartbeat, \
             expires_at = EXCLUDED.expires_at",
        )
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(&worker.name)
        .bind(&worker.device)
        .bind(job)
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
            "SELECT host, pid, name, device, job_id, started_at, last_heartbeat, expires_at \
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
                started_at: row.started_at,
                last_heartbeat: row.last_heartbeat,
                expires_at: row.expires_at,
            })
            .collect())
    }
}
