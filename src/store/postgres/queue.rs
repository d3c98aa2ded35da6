//! The queue: claims with leases (and sweeps' concurrency limits), heartbeats, expiry, and a
//! worker's fenced writes.
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
    Claim, ClaimLimits, Expired, HeldLease, JobRecord, Lease, LeaseToken, Renewal, StoreError,
    WorkerIdentity,
};
use crate::sweep::SweepId;

/// Fails with [`StoreError::LeaseLost`] when a fenced statement changed no row.
pub(super) fn fenced(job: JobId, rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::LeaseLost { job })
    } else {
        Ok(())
    }
}

/// How many times a claim tries again when every job it could take belonged to a sweep
/// another claim was taking a member of at that moment.
const CLAIM_ATTEMPTS: usize = 5;
const CONTENDED_PAUSE: Duration = Duration::from_millis(20);

enum ClaimAttempt {
    Claimed(Box<Claim>),
    /// Nothing can be claimed now.
    Empty,
    /// Only members of sweeps or tenants whose lock another claim held were left.
    Contended,
}

#[derive(Debug, sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    job: JobRow,
    lease_expires_at: DateTime<Utc>,
}

/// A status word read back from job `job`.
fn parse_status(job: JobId, word: &str) -> Result<JobStatus, StoreError> {
    word.parse()
        .map_err(|e: crate::job::UnknownStatus| StoreError::corrupt(job, e.to_string()))
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

/// The tenants that have queued jobs, each with its running jobs (`running`) and the claim
/// number of its latest claim (`served`, 0: never served): the claim's fair-share order.
const TENANT_SHARES: &str = "WITH shares AS (SELECT q.tenant, \
     (SELECT COUNT(*) FROM jobs r WHERE r.tenant = q.tenant AND r.status = 'running') AS running, \
     COALESCE((SELECT MAX(c.claim_seq) FROM jobs c WHERE c.tenant = q.tenant), 0) AS served \
     FROM (SELECT DISTINCT tenant FROM jobs WHERE status = 'queued') q)";

/// The first key of the advisory locks that serialize claims of one tenant while a running
/// limit is set (the second is `hashtext(tenant)`; a collision only makes two tenants take
/// turns). ASCII `lrlt`.
const TENANT_LOCK_SPACE: i32 = 0x6c72_6c74;

impl PostgresStore {
    /// Takes the next queued job, in the fair-share order of docs/QUEUE.md: the tenant with
    /// the fewest running jobs, then the one whose latest claim is oldest (round-robin, so
    /// one worker alternates between tenants), then priority, then age. The candidate's
    /// row is locked with `SKIP LOCKED`, so concurrent claimers neither wait for each
    /// other nor take one job twice. A member of a sweep with a `max_concurrent` is taken
    /// only under its sweep's row lock, after counting the sweep's running members again:
    /// claims of one limited sweep go one at a time, so they never overshoot the limit
    /// together. A tenant's running limit is kept the same way under an advisory lock per
    /// tenant. Both locks are taken with `SKIP LOCKED`/`try` (a claim holding a job's lock
    /// never waits, so it cannot deadlock with a coordinator step, which locks the sweep
    /// and then its members); a claim that found only such busy sweeps or tenants tries
    /// again shortly.
    pub(super) async fn claim(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>, StoreError> {
        for _ in 0..CLAIM_ATTEMPTS {
            match self.try_claim(worker, ttl, limits).await? {
                ClaimAttempt::Claimed(claim) => return Ok(Some(*claim)),
                ClaimAttempt::Empty => return Ok(None),
                ClaimAttempt::Contended => tokio::time::sleep(CONTENDED_PAUSE).await,
            }
        }
        Ok(None)
    }

    async fn try_claim(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<ClaimAttempt, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Sweeps and tenants passed over in this attempt: at their limit, or locked by
        // another claim.
        let mut passed: Vec<i64> = Vec::new();
        let mut passed_tenants: Vec<String> = Vec::new();
        let mut contended = false;
        let id = loop {
            let candidate = sqlx::query_as::<_, (i64, Option<i64>, Option<i64>, String)>(
                &format!(
                    "{TENANT_SHARES} \
                     SELECT j.id, j.sweep_id, s.max_concurrent, j.tenant FROM jobs j \
                     JOIN shares t ON t.tenant = j.tenant \
                     LEFT JOIN sweeps s ON s.id = j.sweep_id \
                     WHERE j.status = 'queued' AND t.running < $3 \
                     AND (j.sweep_id IS NULL OR NOT (j.sweep_id = ANY($1))) \
                     AND NOT (j.tenant = ANY($2)) \
                     AND (s.max_concurrent IS NULL OR (SELECT COUNT(*) FROM jobs r \
                          WHERE r.sweep_id = j.sweep_id AND r.status = 'running') < s.max_concurrent) \
                     ORDER BY t.running, t.served, j.priority DESC, j.id LIMIT 1 \
                     FOR UPDATE OF j SKIP LOCKED"
                ),
            )
            .bind(&passed)
            .bind(&passed_tenants)
            .bind(limits.running_bound())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, sweep, sweep_limit, tenant)) = candidate else {
                return Ok(if contended {
                    ClaimAttempt::Contended
                } else {
                    ClaimAttempt::Empty
                });
            };
            if let (Some(sweep), Some(limit)) = (sweep, sweep_limit) {
                let locked =
                    sqlx::query("SELECT id FROM sweeps WHERE id = $1 FOR UPDATE SKIP LOCKED")
                        .bind(sweep)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some();
                if !locked {
                    contended = true;
                    passed.push(sweep);
                    continue;
                }
                // A new statement sees every claim committed before the lock was ours.
                let (running,) = sqlx::query_as::<_, (i64,)>(
                    "SELECT COUNT(*) FROM jobs WHERE sweep_id = $1 AND status = 'running'",
                )
                .bind(sweep)
                .fetch_one(&mut *tx)
                .await?;
                if running >= limit {
                    passed.push(sweep);
                    continue;
                }
            }
            if let Some(limit) = limits.max_running_per_tenant {
                let (locked,) = sqlx::query_as::<_, (bool,)>(
                    "SELECT pg_try_advisory_xact_lock($1, hashtext($2))",
                )
                .bind(TENANT_LOCK_SPACE)
                .bind(&tenant)
                .fetch_one(&mut *tx)
                .await?;
                if !locked {
                    contended = true;
                    passed_tenants.push(tenant);
                    continue;
                }
                let (running,) = sqlx::query_as::<_, (i64,)>(
                    "SELECT COUNT(*) FROM jobs WHERE tenant = $1 AND status = 'running'",
                )
                .bind(&tenant)
                .fetch_one(&mut *tx)
                .await?;
                if running >= i64::from(limit) {
                    passed_tenants.push(tenant);
                    continue;
                }
            }
            break id;
        };
        let token = LeaseToken::random();
        let row = sqlx::query_as::<_, ClaimedRow>(&format!(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, now()), \
             updated_at = now(), attempts = attempts + 1, worker = $2, worker_host = $3, \
             worker_pid = $4, device = $5, lease_token = $6, \
             lease_expires_at = now() + make_interval(secs => $7), \
             claim_seq = nextval('job_claims') \
             WHERE id = $1 RETURNING {JOB_COLUMNS}, lease_expires_at"
        ))
        .bind(id)
        .bind(&worker.name)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(&worker.device)
        .bind(token.as_str())
        .bind(ttl.as_secs_f64())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let job = JobRecord::try_from(row.job)?;
        Ok(ClaimAttempt::Claimed(Box::new(Claim {
            lease: Lease {
                job: job.id,
                token,
                expires_at: row.lease_expires_at,
            },
            job,
        })))
    }

    /// One transaction. With a running limit, each listed tenant's advisory lock is taken
    /// (waiting for it: this transaction holds no other lock yet) and its running jobs
    /// counted once; then each limited sweep's row is locked (waiting for it, as a
    /// coordinator step does: sweep before members) and its running members counted once;
    /// the jobs are locked with `SKIP LOCKED`, so one another claim is taking is left to it.
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
        let raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        let mut tx = self.pool.begin().await?;
        // Room left in each tenant: its limit less its running jobs.
        let mut tenant_room = std::collections::HashMap::new();
        if let Some(limit) = limits.max_running_per_tenant {
            let tenants = sqlx::query_as::<_, (String,)>(
                "SELECT DISTINCT tenant FROM jobs WHERE id = ANY($1) ORDER BY tenant",
            )
            .bind(&raw)
            .fetch_all(&mut *tx)
            .await?;
            for (tenant,) in tenants {
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind(TENANT_LOCK_SPACE)
                    .bind(&tenant)
                    .execute(&mut *tx)
                    .await?;
                let (running,) = sqlx::query_as::<_, (i64,)>(
                    "SELECT COUNT(*) FROM jobs WHERE tenant = $1 AND status = 'running'",
                )
                .bind(&tenant)
                .fetch_one(&mut *tx)
                .await?;
                tenant_room.insert(tenant, i64::from(limit) - running);
            }
        }
        // Room left in each sweep with a limit: its limit less its running members.
        let limited = sqlx::query_as::<_, (i64, i64)>(
            "SELECT s.id, s.max_concurrent FROM sweeps s \
             WHERE s.max_concurrent IS NOT NULL \
             AND s.id IN (SELECT sweep_id FROM jobs WHERE id = ANY($1)) \
             ORDER BY s.id FOR UPDATE OF s",
        )
        .bind(&raw)
        .fetch_all(&mut *tx)
        .await?;
        let mut room = std::collections::HashMap::new();
        for (sweep, limit) in limited {
            let (running,) = sqlx::query_as::<_, (i64,)>(
                "SELECT COUNT(*) FROM jobs WHERE sweep_id = $1 AND status = 'running'",
            )
            .bind(sweep)
            .fetch_one(&mut *tx)
            .await?;
            room.insert(sweep, limit - running);
        }
        let mut claims = Vec::with_capacity(ids.len());
        for &id in &raw {
            let candidate = sqlx::query_as::<_, (Option<i64>, String)>(
                "SELECT sweep_id, tenant FROM jobs WHERE id = $1 AND status = 'queued' \
                 AND NOT cancel_requested AND NOT stop_early_requested \
                 FOR UPDATE SKIP LOCKED",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((sweep, tenant)) = candidate else {
                continue;
            };
            if tenant_room.get(&tenant).is_some_and(|left| *left <= 0) {
                continue;
            }
            if let Some(left) = sweep.and_then(|sweep| room.get_mut(&sweep)) {
                if *left <= 0 {
                    continue;
                }
                *left -= 1;
            }
            if let Some(left) = tenant_room.get_mut(&tenant) {
                *left -= 1;
            }
            let token = LeaseToken::random();
            let row = sqlx::query_as::<_, ClaimedRow>(&format!(
                "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, now()), \
                 updated_at = now(), attempts = attempts + 1, worker = $2, worker_host = $3, \
                 worker_pid = $4, device = $5, lease_token = $6, \
                 lease_expires_at = now() + make_interval(secs => $7), \
                 claim_seq = nextval('job_claims') \
                 WHERE id = $1 RETURNING {JOB_COLUMNS}, lease_expires_at"
            ))
            .bind(id)
            .bind(&worker.name)
            .bind(&worker.host)
            .bind(i64::from(worker.pid))
            .bind(&worker.device)
            .bind(token.as_str())
            .bind(ttl.as_secs_f64())
            .fetch_one(&mut *tx)
            .await?;
            let job = JobRecord::try_from(row.job)?;
            claims.push(Claim {
                lease: Lease {
                    job: job.id,
                    token,
                    expires_at: row.lease_expires_at,
                },
                job,
            });
        }
        tx.commit().await?;
        Ok(claims)
    }

    pub(super) async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError> {
        let row = sqlx::query_as::<_, (DateTime<Utc>, bool, bool)>(
            "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3) \
             WHERE id = $1 AND lease_token = $2 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested, stop_early_requested",
        )
        .bind(lease.job)
        .bind(lease.token.as_str())
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        let (expires_at, cancel_requested, stop_early_requested) =
            row.ok_or(StoreError::LeaseLost { job: lease.job })?;
        Ok(Renewal {
            expires_at,
            cancel_requested,
            stop_early_requested,
        })
    }

    /// One statement. A heartbeat racing with it holds the row's lock; the sweep then
    /// re-reads the renewed expiry and leaves the job alone.
    pub(super) async fn requeue_expired_jobs(&self) -> Result<Vec<Expired>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, Option<i64>)>(
            "WITH expired AS ( \
                 UPDATE jobs SET \
                 status = CASE WHEN cancel_requested THEN 'canceled' \
                     WHEN stop_early_requested THEN 'stopped_early' ELSE 'queued' END, \
                 finished_at = CASE WHEN cancel_requested OR stop_early_requested THEN now() \
                     ELSE finished_at END, \
                 worker = NULL, worker_host = NULL, worker_pid = NULL, \
                 lease_token = NULL, lease_expires_at = NULL, updated_at = now() \
                 WHERE status = 'running' AND lease_expires_at <= now() \
                 RETURNING id, status, sweep_id), \
             gone AS (DELETE FROM workers WHERE expires_at <= now()) \
             SELECT id, status, sweep_id FROM expired ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, status, sweep)| {
                let job = JobId::new(id);
                Ok(Expired {
                    job,
                    status: parse_status(job, &status)?,
                    sweep: sweep.map(SweepId::new),
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

    /// The lease ends here, as with `finish`. The status depends on what the sweep decided
    /// while the member was stopping (see [`JobStore::pause`](crate::store::JobStore::pause)).
    pub(super) async fn pause_job(
        &self,
        lease: &Lease,
        epochs_done: u32,
    ) -> Result<JobStatus, StoreError> {
        let row = sqlx::query_as::<_, (String,)>(
            "UPDATE jobs SET worker = NULL, worker_host = NULL, worker_pid = NULL, \
             lease_token = NULL, lease_expires_at = NULL, updated_at = now(), \
             status = CASE \
                 WHEN cancel_requested THEN 'canceled' \
                 WHEN stop_early_requested THEN 'stopped_early' \
                 WHEN run_until_epoch IS NOT NULL AND run_until_epoch <= $3 THEN 'paused' \
                 ELSE 'queued' END, \
             finished_at = CASE WHEN cancel_requested OR stop_early_requested THEN now() \
                 ELSE finished_at END \
             WHERE id = $1 AND lease_token = $2 AND status = 'running' RETURNING status",
        )
        .bind(lease.job)
        .bind(lease.token.as_str())
        .bind(i64::from(epochs_done))
        .fetch_optional(&self.pool)
        .await?;
        let (status,) = row.ok_or(StoreError::LeaseLost { job: lease.job })?;
        parse_status(lease.job, &status)
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
