//! Jobs: submission, the queue (claim, requeue), cancellation, deletion, listing.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::job::{FailureCode, JobError, JobId, JobStatus};
use crate::store::{
    CancelOutcome, DeleteOutcome, JobFilter, JobRecord, NewJob, StoreError, Submitted,
};
use crate::sweep::SweepId;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct JobRow {
    id: i64,
    spec: String,
    warnings: String,
    status: JobStatus,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    attempts: i64,
    worker: Option<String>,
    device: Option<String>,
    cancel_requested: bool,
    error_code: Option<String>,
    error_message: Option<String>,
    total_steps: i64,
    progress_epoch: i64,
    progress_step: i64,
    sweep_id: Option<i64>,
    sweep_config: Option<i64>,
    run_until_epoch: Option<i64>,
    stop_early_requested: bool,
}

/// A condition on the claim's candidate `j`: it belongs to no sweep, or its sweep has no
/// concurrency limit, or fewer of its members run than the limit.
const UNDER_SWEEP_LIMIT: &str = "(j.sweep_id IS NULL OR COALESCE((SELECT s.max_concurrent \
     FROM sweeps s WHERE s.id = j.sweep_id), -1) < 0 OR (SELECT COUNT(*) FROM jobs r \
     WHERE r.sweep_id = j.sweep_id AND r.status = 'running') < (SELECT s.max_concurrent \
     FROM sweeps s WHERE s.id = j.sweep_id))";

pub(super) const JOB_COLUMNS: &str = "id, spec, warnings, status, created_at, started_at, \
     finished_at, updated_at, attempts, worker, device, cancel_requested, error_code, \
     error_message, total_steps, progress_epoch, progress_step, sweep_id, sweep_config, \
     run_until_epoch, stop_early_requested";

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self, StoreError> {
        let id = JobId::new(row.id);
        let corrupt = |what: &str, err: String| StoreError::corrupt(id, format!("{what}: {err}"));
        let spec = serde_json::from_str(&row.spec).map_err(|e| corrupt("spec", e.to_string()))?;
        let warnings =
            serde_json::from_str(&row.warnings).map_err(|e| corrupt("warnings", e.to_string()))?;
        let error = match (row.error_code, row.error_message) {
            (None, _) => None,
            (Some(code), message) => Some(JobError {
                code: code
                    .parse::<FailureCode>()
                    .map_err(|e| corrupt("error_code", e))?,
                message: message.unwrap_or_default(),
            }),
        };
        let sweep = match (row.sweep_id, row.sweep_config) {
            (Some(sweep), Some(config)) => Some((
                SweepId::new(sweep),
                usize::try_from(config).map_err(|e| corrupt("sweep_config", e.to_string()))?,
            )),
            (None, None) => None,
            _ => return Err(corrupt("sweep", "a sweep without a config".to_string())),
        };
        let run_until_epoch = row
            .run_until_epoch
            .map(u32::try_from)
            .transpose()
            .map_err(|e| corrupt("run_until_epoch", e.to_string()))?;
        Ok(JobRecord {
            id,
            spec,
            warnings,
            status: row.status,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            updated_at: row.updated_at,
            attempts: row.attempts,
            worker: row.worker,
            device: row.device,
            cancel_requested: row.cancel_requested,
            error,
            total_steps: row.total_steps,
            progress_epoch: row.progress_epoch,
            progress_step: row.progress_step,
            sweep,
            run_until_epoch,
            stop_early_requested: row.stop_early_requested,
        })
    }
}

impl SqliteStore {
    pub(super) async fn submit_job(&self, job: NewJob<'_>) -> Result<Submitted, StoreError> {
        if let Some((key, hash)) = job.idempotency {
            if let Some(found) = self.find_by_idempotency_key(key, hash).await? {
                return Ok(found);
            }
        }
        let now = Utc::now();
        let spec = serde_json::to_string(job.spec).map_err(StoreError::Encode)?;
        let warnings = serde_json::to_string(job.warnings).map_err(StoreError::Encode)?;
        let (key, hash) = job.idempotency.unzip();
        let inserted = sqlx::query_as::<_, JobRow>(&format!(
            "INSERT INTO jobs (name, spec, warnings, status, priority, idempotency_key, request_hash, \
             created_at, updated_at, epochs, total_steps) \
             VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?) RETURNING {JOB_COLUMNS}"
        ))
        .bind(&job.spec.name)
        .bind(spec)
        .bind(warnings)
        .bind(job.spec.priority)
        .bind(key)
        .bind(hash)
        .bind(now)
        .bind(now)
        .bind(i64::from(job.spec.epochs))
        .bind(i64::try_from(job.total_steps).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(row) => Ok(Submitted::Created(row.try_into()?)),
            // Two submissions with one key raced: the other one won.
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                let (Some(key), Some(hash)) = (key, hash) else {
                    return Err(sqlx::Error::Database(err).into());
                };
                match self.find_by_idempotency_key(key, hash).await? {
                    Some(found) => Ok(found),
                    None => Err(sqlx::Error::Database(err).into()),
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn find_by_idempotency_key(
        &self,
        key: &str,
        hash: &str,
    ) -> Result<Option<Submitted>, StoreError> {
        let row = sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT id, request_hash FROM jobs WHERE idempotency_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, stored_hash)) = row else {
            return Ok(None);
        };
        if stored_hash.as_deref() != Some(hash) {
            return Ok(Some(Submitted::KeyReused {
                existing: JobId::new(id),
            }));
        }
        Ok(self
            .find_job(JobId::new(id))
            .await?
            .map(Submitted::Replayed))
    }

    pub(super) async fn find_job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let row =
            sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(JobRecord::try_from).transpose()
    }

    pub(super) async fn list(
        &self,
        filter: &JobFilter,
    ) -> Result<(Vec<JobRecord>, i64), StoreError> {
        let mut page =
            QueryBuilder::<Sqlite>::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
        push_filter(&mut page, filter);
        if let Some(before) = filter.before {
            page.push(" AND id < ").push_bind(before);
        }
        page.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows = page
            .build_query_as::<JobRow>()
            .fetch_all(&self.pool)
            .await?;
        let jobs = rows
            .into_iter()
            .map(JobRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;

        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM jobs WHERE 1 = 1");
        push_filter(&mut count, filter);
        let (total,) = count
            .build_query_as::<(i64,)>()
            .fetch_one(&self.pool)
            .await?;
        Ok((jobs, total))
    }

    pub(super) async fn position(&self, job: &JobRecord) -> Result<i64, StoreError> {
        let (ahead,) = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' \
             AND (priority > ? OR (priority = ? AND id < ?))",
        )
        .bind(job.spec.priority)
        .bind(job.spec.priority)
        .bind(job.id)
        .fetch_one(&self.pool)
        .await?;
        Ok(ahead)
    }

    /// One statement, so two workers can never take the same job. A sweep's member is only
    /// taken while fewer than its sweep's `max_concurrent` members run.
    pub(super) async fn claim(
        &self,
        worker: &str,
        device: &str,
    ) -> Result<Option<JobRecord>, StoreError> {
        let now = Utc::now();
        let row = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), \
             updated_at = ?, attempts = attempts + 1, worker = ?, device = ? \
             WHERE id = (SELECT j.id FROM jobs j WHERE j.status = 'queued' \
                         AND {UNDER_SWEEP_LIMIT} \
                         ORDER BY j.priority DESC, j.id ASC LIMIT 1) \
             AND status = 'queued' \
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(now)
        .bind(now)
        .bind(worker)
        .bind(device)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRecord::try_from).transpose()
    }

    /// Claims those of `ids` still queued, in order, in one transaction: each one's sweep
    /// limit is checked with the members claimed before it already running.
    pub(super) async fn claim_listed(
        &self,
        ids: &[JobId],
        worker: &str,
        device: &str,
    ) -> Result<Vec<JobRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for &id in ids {
            let row = sqlx::query_as::<_, JobRow>(&format!(
                "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), \
                 updated_at = ?, attempts = attempts + 1, worker = ?, device = ? \
                 WHERE id = (SELECT j.id FROM jobs j WHERE j.id = ? AND j.status = 'queued' \
                             AND {UNDER_SWEEP_LIMIT}) \
                 AND status = 'queued' \
                 RETURNING {JOB_COLUMNS}"
            ))
            .bind(now)
            .bind(now)
            .bind(worker)
            .bind(device)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                claimed.push(JobRecord::try_from(row)?);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    pub(super) async fn requeue_running(&self) -> Result<Vec<JobId>, StoreError> {
        let ids = sqlx::query_as::<_, (i64,)>(
            "UPDATE jobs SET status = 'queued', worker = NULL, updated_at = ? \
             WHERE status = 'running' RETURNING id",
        )
        .bind(Utc::now())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(|(id,)| JobId::new(id)).collect())
    }

    pub(super) async fn pause_one(
        &self,
        id: JobId,
        epochs_done: u32,
    ) -> Result<JobStatus, StoreError> {
        let now = Utc::now();
        let row = sqlx::query_as::<_, (JobStatus,)>(
            "UPDATE jobs SET worker = NULL, updated_at = ?, \
             status = CASE \
                 WHEN cancel_requested THEN 'canceled' \
                 WHEN stop_early_requested THEN 'stopped_early' \
                 WHEN run_until_epoch IS NOT NULL AND run_until_epoch <= ? THEN 'paused' \
                 ELSE 'queued' END, \
             finished_at = CASE WHEN cancel_requested OR stop_early_requested THEN ? \
                 ELSE finished_at END \
             WHERE id = ? AND status = 'running' RETURNING status",
        )
        .bind(now)
        .bind(i64::from(epochs_done))
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some((status,)) => Ok(status),
            None => Ok(self.job_status(id).await?.unwrap_or(JobStatus::Paused)),
        }
    }

    /// The job resumes from its last checkpoint when claimed again.
    pub(super) async fn requeue_one(&self, id: JobId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET status = 'queued', worker = NULL, updated_at = ? \
             WHERE id = ? AND status = 'running'",
        )
        .bind(Utc::now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn finish_job(
        &self,
        id: JobId,
        status: JobStatus,
        error: Option<&JobError>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        sqlx::query(
            "UPDATE jobs SET status = ?, finished_at = ?, updated_at = ?, \
             error_code = ?, error_message = ? WHERE id = ?",
        )
        .bind(status)
        .bind(now)
        .bind(now)
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn cancel_job(&self, id: JobId) -> Result<CancelOutcome, StoreError> {
        let now = Utc::now();
        let canceled = sqlx::query(
            "UPDATE jobs SET status = 'canceled', cancel_requested = 1, finished_at = ?, \
             updated_at = ? WHERE id = ? AND status IN ('queued', 'paused')",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if canceled.rows_affected() == 1 {
            return Ok(CancelOutcome::Canceled);
        }
        let flagged = sqlx::query(
            "UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status = 'running'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if flagged.rows_affected() == 1 {
            return Ok(CancelOutcome::Requested);
        }
        Ok(match self.job_status(id).await? {
            Some(status) => CancelOutcome::AlreadyFinished(status),
            None => CancelOutcome::NotFound,
        })
    }

    pub(super) async fn is_cancel_requested(&self, id: JobId) -> Result<bool, StoreError> {
        let row = sqlx::query_as::<_, (bool,)>("SELECT cancel_requested FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|(requested,)| requested))
    }

    pub(super) async fn delete_job(&self, id: JobId) -> Result<DeleteOutcome, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM jobs WHERE id = ? \
             AND status IN ('succeeded', 'failed', 'canceled', 'stopped_early')",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        if deleted.rows_affected() == 1 {
            return Ok(DeleteOutcome::Deleted);
        }
        Ok(match self.job_status(id).await? {
            Some(status) => DeleteOutcome::NotFinished(status),
            None => DeleteOutcome::NotFound,
        })
    }

    pub(super) async fn job_status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError> {
        let row = sqlx::query_as::<_, (JobStatus,)>("SELECT status FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(status,)| status))
    }

    pub(super) async fn write_progress(
        &self,
        id: JobId,
        epoch: u32,
        step: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET progress_epoch = ?, progress_step = ?, updated_at = ? WHERE id = ?",
        )
        .bind(i64::from(epoch))
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .bind(Utc::now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn write_total_steps(
        &self,
        id: JobId,
        total_steps: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET total_steps = ? WHERE id = ?")
            .bind(i64::try_from(total_steps).unwrap_or(i64::MAX))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn push_filter(query: &mut QueryBuilder<'_, Sqlite>, filter: &JobFilter) {
    if !filter.statuses.is_empty() {
        query.push(" AND status IN (");
        let mut list = query.separated(", ");
        for status in &filter.statuses {
            list.push_bind(status.as_str());
        }
        list.push_unseparated(")");
    }
    if let Some(name) = &filter.name {
        query.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(sweep) = filter.sweep {
        query.push(" AND sweep_id = ").push_bind(sweep);
    }
}
