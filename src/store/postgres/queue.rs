//! The queue: claims with leases, heartbeats, expiry, and a worker's fenced writes.
//!
//! Every instant is the database's `now()`; a lease of `ttl` ends at
//! `now() + make_interval(secs => ttl)`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::jobs::JOB_COLUMNS;
use super::PostgresStore;
use crate::job::{JobError, JobId, JobStatus};
use crate::store::rows::JobRow;
use crate::store::{
    Claim, Expired, HeldLease, JobRecord, Lease, LeaseToken, Renewal, StoreError, WorkerIdentity,
};

/// Fails with [`StoreError::LeaseLost`] when a fenced statement changed no row.
pub(super) fn fenced(job: JobId, rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::LeaseLost { job })
    } else {
        Ok(())
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    job: JobRow,
    lease_expires_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct LeaseRow {
    id: i64,
    worker: String,
    worker_host: String,
    worker_pid: i64,
    device: String,
    lease_token: String,
    lease_expires_at: DateTime<Utc>,
}

impl PostgresStore {
    /// One statement: the sub-select locks the next queued row and skips rows other
    /// claimers have locked, so concurrent claims neither wait nor collide.
    pub(super) async fn claim(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
    ) -> Result<Option<Claim>, StoreError> {
        let token = LeaseToken::random();
        let row = sqlx::query_as::<_, ClaimedRow>(&format!(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, now()), \
             updated_at = now(), attempts = attempts + 1, worker = $1, worker_host = $2, \
             worker_pid = $3, device = $4, lease_token = $5, \
             lease_expires_at = now() + make_interval(secs => $6) \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' \
                         ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {JOB_COLUMNS}, lease_expires_at"
        ))
        .bind(&worker.name)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(&worker.device)
        .bind(token.as_str())
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job = JobRecord::try_from(row.job)?;
        Ok(Some(Claim {
            lease: Lease {
                job: job.id,
                token,
                expires_at: row.lease_expires_at,
            },
            job,
        }))
    }

    pub(super) async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError> {
        let row = sqlx::query_as::<_, (DateTime<Utc>, bool)>(
            "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3) \
             WHERE id = $1 AND lease_token = $2 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested",
        )
        .bind(lease.job)
        .bind(lease.token.as_str())
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        let (expires_at, cancel_requested) = row.ok_or(StoreError::LeaseLost { job: lease.job })?;
        Ok(Renewal {
            expires_at,
            cancel_requested,
        })
    }

    /// One statement. A heartbeat racing with it holds the row's lock; the sweep then
    /// re-reads the renewed expiry and leaves the job alone.
    pub(super) async fn requeue_expired_jobs(&self) -> Result<Vec<Expired>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "WITH expired AS ( \
                 UPDATE jobs SET \
                 status = CASE WHEN cancel_requested THEN 'canceled' ELSE 'queued' END, \
                 finished_at = CASE WHEN cancel_requested THEN now() ELSE finished_at END, \
                 worker = NULL, worker_host = NULL, worker_pid = NULL, \
                 lease_token = NULL, lease_expires_at = NULL, updated_at = now() \
                 WHERE status = 'running' AND lease_expires_at <= now() \
                 RETURNING id, status), \
             gone AS (DELETE FROM workers WHERE expires_at <= now()) \
             SELECT id, status FROM expired ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, status)| {
                let job = JobId::new(id);
                Ok(Expired {
                    job,
                    status: status.parse().map_err(|e: crate::job::UnknownStatus| {
                        StoreError::corrupt(job, e.to_string())
                    })?,
                })
            })
            .collect()
    }

    pub(super) async fn leases(&self) -> Result<Vec<HeldLease>, StoreError> {
        let rows = sqlx::query_as::<_, LeaseRow>(
            "SELECT id, worker, worker_host, worker_pid, device, lease_token, lease_expires_at \
             FROM jobs WHERE status = 'running' AND lease_token IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let job = JobId::new(row.id);
                Ok(HeldLease {
                    worker: WorkerIdentity {
                        name: row.worker,
                        host: row.worker_host,
                        pid: u32::try_from(row.worker_pid).map_err(|_| {
                            StoreError::corrupt(job, format!("worker pid {}", row.worker_pid))
                        })?,
                        device: row.device,
                    },
                    lease: Lease {
                        job,
                        token: LeaseToken::from_stored(row.lease_token),
                        expires_at: row.lease_expires_at,
                    },
                })
            })
            .collect()
    }

    pub(super) async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', worker = NULL, worker_host = NULL, \
             worker_pid = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now() \
             WHERE id = $1 AND lease_token = $2 AND status = 'running'",
        )
        .bind(lease.job)
        .bind(lease.token.as_str())
        .execute(&self.pool)
        .await?;
        fenced(lease.job, done.rows_affected())
    }

    /// The lease ends with the job: any later write of its worker is refused.
    pub(super) async fn finish_job(
        &self,
        lease: &Lease,
        status: JobStatus,
        error: Option<&JobError>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = $3, finished_at = now(), updated_at = now(), \
             error_code = $4, error_message = $5, lease_token = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND lease_token = $2 AND status = 'running'",
        )
        .bind(lease.job)
        .bind(lease.token.as_str())
        .bind(status.as_str())
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .execute(&self.pool)
        .await?;
        fenced(lease.job, done.rows_affected())
    }

    pub(super) async fn write_progress(
        &self,
        lease: &Lease,
        epoch: u32,
        step: u64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET progress_epoch = $3, progress_step = $4, updated_at = now() \
             WHERE id = $1 AND lease_token = $2",
        )
        .bind(lease.job)
        .bind(lease.token.as_str())
        .bind(i64::from(epoch))
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        fenced(lease.job, done.rows_affected())
    }

    pub(super) async fn write_total_steps(
        &self,
        lease: &Lease,
        total_steps: u64,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE jobs SET total_steps = $3 WHERE id = $1 AND lease_token = $2")
                .bind(lease.job)
                .bind(lease.token.as_str())
                .bind(i64::try_from(total_steps).unwrap_or(i64::MAX))
                .execute(&self.pool)
                .await?;
        fenced(lease.job, done.rows_affected())
    }
}
