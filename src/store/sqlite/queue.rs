//! The queue: claims with leases, heartbeats, expiry, and a worker's fenced writes.
//!
//! Lease instants are milliseconds since the Unix epoch on this machine's clock, which
//! is the database's clock for a file on one machine.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::jobs::JOB_COLUMNS;
use super::SqliteStore;
use crate::job::{JobError, JobId, JobStatus};
use crate::store::rows::JobRow;
use crate::store::{
    Claim, Expired, HeldLease, JobRecord, Lease, LeaseToken, Renewal, StoreError, WorkerIdentity,
};

/// Milliseconds since the Unix epoch, as lease columns store instants.
pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// An instant read from a lease column; out-of-range values were never written.
pub(super) fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `ttl` from now, in lease-column milliseconds.
pub(super) fn expiry(now: DateTime<Utc>, ttl: Duration) -> i64 {
    millis(now).saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

fn lease_lost(job: JobId) -> StoreError {
    StoreError::LeaseLost { job }
}

/// Fails with [`StoreError::LeaseLost`] when a fenced statement changed no row.
pub(super) fn fenced(job: JobId, rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(lease_lost(job))
    } else {
        Ok(())
    }
}

impl SqliteStore {
    /// One statement, so two workers can never take the same job.
    pub(super) async fn claim(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
    ) -> Result<Option<Claim>, StoreError> {
        let now = Utc::now();
        let token = LeaseToken::random();
        let expires = expiry(now, ttl);
        let row = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), \
             updated_at = ?, attempts = attempts + 1, worker = ?, worker_host = ?, \
             worker_pid = ?, device = ?, lease_token = ?, lease_expires_at = ? \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' \
                         ORDER BY priority DESC, id ASC LIMIT 1) \
             AND status = 'queued' \
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(now)
        .bind(now)
        .bind(&worker.name)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(&worker.device)
        .bind(token.as_str())
        .bind(expires)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job = JobRecord::try_from(row)?;
        Ok(Some(Claim {
            lease: Lease {
                job: job.id,
                token,
                expires_at: instant(expires),
            },
            job,
        }))
    }

    pub(super) async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError> {
        let expires = expiry(Utc::now(), ttl);
        let row = sqlx::query_as::<_, (bool,)>(
            "UPDATE jobs SET lease_expires_at = ? \
             WHERE id = ? AND lease_token = ? AND status = 'running' \
             RETURNING cancel_requested",
        )
        .bind(expires)
        .bind(lease.job)
        .bind(lease.token.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let (cancel_requested,) = row.ok_or_else(|| lease_lost(lease.job))?;
        Ok(Renewal {
            expires_at: instant(expires),
            cancel_requested,
        })
    }

    pub(super) async fn requeue_expired_jobs(&self) -> Result<Vec<Expired>, StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as::<_, (i64, JobStatus)>(
            "UPDATE jobs SET \
             status = CASE WHEN cancel_requested THEN 'canceled' ELSE 'queued' END, \
             finished_at = CASE WHEN cancel_requested THEN ? ELSE finished_at END, \
             worker = NULL, worker_host = NULL, worker_pid = NULL, \
             lease_token = NULL, lease_expires_at = NULL, updated_at = ? \
             WHERE status = 'running' AND lease_expires_at <= ? \
             RETURNING id, status",
        )
        .bind(now)
        .bind(now)
        .bind(millis(now))
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM workers WHERE expires_at <= ?")
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(id, status)| Expired {
                job: JobId::new(id),
                status,
            })
            .collect())
    }

    pub(super) async fn leases(&self) -> Result<Vec<HeldLease>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, String, i64, String, String, i64)>(
            "SELECT id, worker, worker_host, worker_pid, device, lease_token, lease_expires_at \
             FROM jobs WHERE status = 'running' AND lease_token IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, name, host, pid, device, token, expires)| {
                let job = JobId::new(id);
                Ok(HeldLease {
                    worker: WorkerIdentity {
                        name,
                        host,
                        pid: u32::try_from(pid)
                            .map_err(|_| StoreError::corrupt(job, format!("worker pid {pid}")))?,
                        device,
                    },
                    lease: Lease {
                        job,
                        token: LeaseToken::from_stored(token),
                        expires_at: instant(expires),
                    },
                })
            })
            .collect()
    }

    pub(super) async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', worker = NULL, worker_host = NULL, \
             worker_pid = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ? \
             WHERE id = ? AND lease_token = ? AND status = 'running'",
        )
        .bind(Utc::now())
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
        let now = Utc::now();
        let done = sqlx::query(
            "UPDATE jobs SET status = ?, finished_at = ?, updated_at = ?, \
             error_code = ?, error_message = ?, lease_token = NULL, lease_expires_at = NULL \
             WHERE id = ? AND lease_token = ? AND status = 'running'",
        )
        .bind(status)
        .bind(now)
        .bind(now)
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .bind(lease.job)
        .bind(lease.token.as_str())
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
            "UPDATE jobs SET progress_epoch = ?, progress_step = ?, updated_at = ? \
             WHERE id = ? AND lease_token = ?",
        )
        .bind(i64::from(epoch))
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .bind(Utc::now())
        .bind(lease.job)
        .bind(lease.token.as_str())
        .execute(&self.pool)
        .await?;
        fenced(lease.job, done.rows_affected())
    }

    pub(super) async fn write_total_steps(
        &self,
        lease: &Lease,
        total_steps: u64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE jobs SET total_steps = ? WHERE id = ? AND lease_token = ?")
            .bind(i64::try_from(total_steps).unwrap_or(i64::MAX))
            .bind(lease.job)
            .bind(lease.token.as_str())
            .execute(&self.pool)
            .await?;
        fenced(lease.job, done.rows_affected())
    }
}
