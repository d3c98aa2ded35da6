//! The queue: claims with leases, heartbeats, expiry, and a worker's fenced writes.
//!
//! Lease instants are milliseconds since the Unix epoch on this machine's clock, which
//! is the database's clock for a file on one machine.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::job::{JobError, JobId, JobStatus};
use crate::store::rows::{JobRow, JOB_COLUMNS};
use crate::store::{
    Claim, ClaimLimits, Expired, HeldLease, JobRecord, Lease, LeaseToken, Renewal, StoreError,
    WorkerIdentity,
};
use crate::sweep::SweepId;

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

/// A condition on the claim's candidate `j`: it belongs to no sweep, or its sweep has no
/// concurrency limit, or fewer of its members run than the limit. SQLite runs one write at
/// a time, so the count cannot change between this check and the claim.
const UNDER_SWEEP_LIMIT: &str = "(j.sweep_id IS NULL OR COALESCE((SELECT s.max_concurrent \
     FROM sweeps s WHERE s.id = j.sweep_id), -1) < 0 OR (SELECT COUNT(*) FROM jobs r \
     WHERE r.sweep_id = j.sweep_id AND r.status = 'running') < (SELECT s.max_concurrent \
     FROM sweeps s WHERE s.id = j.sweep_id))";

/// The tenants that have queued jobs, each with its running jobs (`running`) and the claim
/// number of its latest claim (`served`, 0: never served): the claim's fair-share order.
/// A CTE of the claim's own statement, so it is read under the claim's write lock.
const TENANT_SHARES: &str = "WITH shares AS (SELECT q.tenant, \
     (SELECT COUNT(*) FROM jobs r WHERE r.tenant = q.tenant AND r.status = 'running') AS running, \
     COALESCE((SELECT MAX(c.claim_seq) FROM jobs c WHERE c.tenant = q.tenant), 0) AS served \
     FROM (SELECT DISTINCT tenant FROM jobs WHERE status = 'queued') q)";

/// A condition on the claim's candidate `j`: its tenant runs fewer jobs than the bound
/// (the first parameter; `i64::MAX` without `--max-running-per-tenant`).
const UNDER_TENANT_LIMIT: &str =
    "(SELECT COUNT(*) FROM jobs r WHERE r.tenant = j.tenant AND r.status = 'running') < ?";

/// The next claim number: one more than any job's.
const NEXT_CLAIM_SEQ: &str = "(SELECT COALESCE(MAX(claim_seq), 0) + 1 FROM jobs)";

impl SqliteStore {
    /// One statement, so two workers can never take the same job. Fair share: the tenant
    /// with the fewest running jobs first, then the one whose latest claim is oldest (so
    /// one worker alternates between tenants: ordering ties by the tenant's oldest queued
    /// job instead would let a tenant's long sweep, queued first, starve every other
    /// tenant on a single worker), then priority, then age. A sweep's member is only taken
    /// while fewer than its sweep's `max_concurrent` members run, and any job only while
    /// its tenant runs fewer than `limits.max_running_per_tenant`.
    pub(super) async fn claim(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>, StoreError> {
        let now = Utc::now();
        let token = LeaseToken::random();
        let expires = expiry(now, ttl);
        let row = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), \
             updated_at = ?, attempts = attempts + 1, worker = ?, worker_host = ?, \
             worker_pid = ?, device = ?, lease_token = ?, lease_expires_at = ?, \
             claim_seq = {NEXT_CLAIM_SEQ} \
             WHERE id = ({TENANT_SHARES} \
                         SELECT j.id FROM jobs j JOIN shares t ON t.tenant = j.tenant \
                         WHERE j.status = 'queued' AND t.running < ? \
                         AND {UNDER_SWEEP_LIMIT} \
                         ORDER BY t.running ASC, t.served ASC, j.priority DESC, j.id ASC \
                         LIMIT 1) \
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
        .bind(limits.running_bound())
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

    /// One `BEGIN IMMEDIATE` transaction: no other write runs until it ends, so each
    /// member's sweep and tenant limits are counted with the members claimed before it
    /// running.
    pub(super) async fn claim_ids(
        &self,
        ids: &[JobId],
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Vec<Claim>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let expires = expiry(now, ttl);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut claims = Vec::with_capacity(ids.len());
        for &id in ids {
            let token = LeaseToken::random();
            let row = sqlx::query_as::<_, JobRow>(&format!(
                "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), \
                 updated_at = ?, attempts = attempts + 1, worker = ?, worker_host = ?, \
                 worker_pid = ?, device = ?, lease_token = ?, lease_expires_at = ?, \
                 claim_seq = {NEXT_CLAIM_SEQ} \
                 WHERE id = (SELECT j.id FROM jobs j WHERE j.id = ? AND j.status = 'queued' \
                             AND NOT j.cancel_requested AND NOT j.stop_early_requested \
                             AND {UNDER_TENANT_LIMIT} AND {UNDER_SWEEP_LIMIT}) \
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
            .bind(id)
            .bind(limits.running_bound())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let job = JobRecord::try_from(row)?;
                claims.push(Claim {
                    lease: Lease {
                        job: job.id,
                        token,
                        expires_at: instant(expires),
                    },
                    job,
                });
            }
        }
        tx.commit().await?;
        Ok(claims)
    }

    pub(super) async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError> {
        let expires = expiry(Utc::now(), ttl);
        let row = sqlx::query_as::<_, (bool, bool)>(
            "UPDATE jobs SET lease_expires_at = ? \
             WHERE id = ? AND lease_token = ? AND status = 'running' \
             RETURNING cancel_requested, stop_early_requested",
        )
        .bind(expires)
        .bind(lease.job)
        .bind(lease.token.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let (cancel_requested, stop_early_requested) = row.ok_or_else(|| lease_lost(lease.job))?;
        Ok(Renewal {
            expires_at: instant(expires),
            cancel_requested,
            stop_early_requested,
        })
    }

    pub(super) async fn requeue_expired_jobs(&self) -> Result<Vec<Expired>, StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query_as::<_, (i64, JobStatus, Option<i64>)>(
            "UPDATE jobs SET \
             status = CASE WHEN cancel_requested THEN 'canceled' \
                 WHEN stop_early_requested THEN 'stopped_early' ELSE 'queued' END, \
             finished_at = CASE WHEN cancel_requested OR stop_early_requested THEN ? \
                 ELSE finished_at END, \
             worker = NULL, worker_host = NULL, worker_pid = NULL, \
             lease_token = NULL, lease_expires_at = NULL, updated_at = ? \
             WHERE status = 'running' AND lease_expires_at <= ? \
             RETURNING id, status, sweep_id",
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
            .map(|(id, status, sweep)| Expired {
                job: JobId::new(id),
                status,
                sweep: sweep.map(SweepId::new),
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

    /// The lease ends here, as with `finish`. The status depends on what the sweep decided
    /// while the member was stopping (see [`JobStore::pause`](crate::store::JobStore::pause)).
    pub(super) async fn pause_job(
        &self,
        lease: &Lease,
        epochs_done: u32,
    ) -> Result<JobStatus, StoreError> {
        let now = Utc::now();
        let row = sqlx::query_as::<_, (JobStatus,)>(
            "UPDATE jobs SET worker = NULL, worker_host = NULL, worker_pid = NULL, \
             lease_token = NULL, lease_expires_at = NULL, updated_at = ?, \
             status = CASE \
                 WHEN cancel_requested THEN 'canceled' \
                 WHEN stop_early_requested THEN 'stopped_early' \
                 WHEN run_until_epoch IS NOT NULL AND run_until_epoch <= ? THEN 'paused' \
                 ELSE 'queued' END, \
             finished_at = CASE WHEN cancel_requested OR stop_early_requested THEN ? \
                 ELSE finished_at END \
             WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING status",
        )
        .bind(now)
        .bind(i64::from(epochs_done))
        .bind(now)
        .bind(lease.job)
        .bind(lease.token.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let (status,) = row.ok_or_else(|| lease_lost(lease.job))?;
        Ok(status)
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
