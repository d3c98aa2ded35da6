//! Jobs: submission, lookup, listing, queue position, cancellation, deletion.

use sqlx::types::Json;

use super::PostgresStore;
use crate::auth::DEFAULT_TENANT;
use crate::job::{JobId, JobStatus};
use crate::store::rows::JobRow;
use crate::store::{
    CancelOutcome, DeleteOutcome, JobFilter, JobRecord, NewJob, StoreError, Submitted,
};

/// The columns of [`JobRow`]; the JSONB ones as text, which the shared row conversion
/// parses (and reports as corrupt when it cannot).
pub(super) const JOB_COLUMNS: &str = "id, spec::text AS spec, warnings::text AS warnings, status, \
     created_at, started_at, finished_at, updated_at, attempts, worker, device, \
     cancel_requested, error_code, error_message, total_steps, progress_epoch, progress_step, \
     sweep_id, sweep_config, run_until_epoch, stop_early_requested";

impl PostgresStore {
    pub(super) async fn submit_job(&self, job: NewJob<'_>) -> Result<Submitted, StoreError> {
        if let Some((key, hash)) = job.idempotency {
            if let Some(found) = self.find_by_idempotency_key(key, hash).await? {
                return Ok(found);
            }
        }
        let (key, hash) = job.idempotency.unzip();
        let inserted = sqlx::query_as::<_, JobRow>(&format!(
            "INSERT INTO jobs (name, spec, warnings, status, priority, idempotency_key, \
             request_hash, epochs, total_steps, tenant) \
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9) RETURNING {JOB_COLUMNS}"
        ))
        .bind(&job.spec.name)
        .bind(Json(job.spec))
        .bind(Json(job.warnings))
        .bind(job.spec.priority)
        .bind(key)
        .bind(hash)
        .bind(i64::from(job.spec.epochs))
        .bind(i64::try_from(job.total_steps).unwrap_or(i64::MAX))
        .bind(job.tenant.unwrap_or(DEFAULT_TENANT))
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(row) => Ok(Submitted::Created(row.try_into()?)),
            // Two submissions with one key raced: the other one won (the unique index
            // made this one wait for its commit, so it is visible now).
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
            "SELECT id, request_hash FROM jobs WHERE idempotency_key = $1",
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
            sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(JobRecord::try_from).transpose()
    }

    /// Static statements (prepared once per connection): an absent filter is a NULL
    /// parameter that matches every row.
    pub(super) async fn list(
        &self,
        filter: &JobFilter,
    ) -> Result<(Vec<JobRecord>, i64), StoreError> {
        let statuses: Option<Vec<&str>> = (!filter.statuses.is_empty())
            .then(|| filter.statuses.iter().map(|s| s.as_str()).collect());
        let rows = sqlx::query_as::<_, JobRow>(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs \
             WHERE ($1::text[] IS NULL OR status = ANY($1)) \
             AND ($2::text IS NULL OR name = $2) \
             AND ($3::bigint IS NULL OR id < $3) \
             AND ($5::bigint IS NULL OR sweep_id = $5) \
             AND ($6::text IS NULL OR tenant = $6) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(&statuses)
        .bind(&filter.name)
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .bind(filter.sweep)
        .bind(&filter.tenant)
        .fetch_all(&self.pool)
        .await?;
        let jobs = rows
            .into_iter()
            .map(JobRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let (total,) = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM jobs \
             WHERE ($1::text[] IS NULL OR status = ANY($1)) \
             AND ($2::text IS NULL OR name = $2) \
             AND ($3::bigint IS NULL OR sweep_id = $3) \
             AND ($4::text IS NULL OR tenant = $4)",
        )
        .bind(&statuses)
        .bind(&filter.name)
        .bind(filter.sweep)
        .bind(&filter.tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok((jobs, total))
    }

    pub(super) async fn tenant_of_job(&self, id: JobId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query_as::<_, (String,)>("SELECT tenant FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(tenant,)| tenant))
    }

    pub(super) async fn position(&self, job: &JobRecord) -> Result<i64, StoreError> {
        let (ahead,) = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' \
             AND (priority > $1 OR (priority = $1 AND id < $2))",
        )
        .bind(job.spec.priority)
        .bind(job.id)
        .fetch_one(&self.pool)
        .await?;
        Ok(ahead)
    }

    pub(super) async fn cancel_job(&self, id: JobId) -> Result<CancelOutcome, StoreError> {
        let canceled = sqlx::query(
            "UPDATE jobs SET status = 'canceled', cancel_requested = true, finished_at = now(), \
             updated_at = now() WHERE id = $1 AND status IN ('queued', 'paused')",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        if canceled.rows_affected() == 1 {
            return Ok(CancelOutcome::Canceled);
        }
        let flagged = sqlx::query(
            "UPDATE jobs SET cancel_requested = true, updated_at = now() \
             WHERE id = $1 AND status = 'running'",
        )
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
        let row = sqlx::query_as::<_, (bool,)>("SELECT cancel_requested FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|(requested,)| requested))
    }

    pub(super) async fn delete_job(&self, id: JobId) -> Result<DeleteOutcome, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM jobs WHERE id = $1 \
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
        let row = sqlx::query_as::<_, (String,)>("SELECT status FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(status,)| {
            status
                .parse::<JobStatus>()
                .map_err(|e| StoreError::corrupt(id, e.to_string()))
        })
        .transpose()
    }
}
