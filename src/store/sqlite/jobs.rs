//! Jobs: submission, lookup, listing, queue position, cancellation, deletion.

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::auth::DEFAULT_TENANT;
use crate::job::{JobId, JobStatus};
use crate::store::rows::{JobRow, JOB_COLUMNS};
use crate::store::{
    CancelOutcome, DeleteOutcome, JobFilter, JobRecord, NewJob, StoreError, Submitted,
};

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
             created_at, updated_at, epochs, total_steps, tenant) \
             VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {JOB_COLUMNS}"
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
        .bind(job.tenant.unwrap_or(DEFAULT_TENANT))
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

    pub(super) async fn tenant_of_job(&self, id: JobId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query_as::<_, (String,)>("SELECT tenant FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(tenant,)| tenant))
    }

    pub(super) async fn job_status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError> {
        let row = sqlx::query_as::<_, (JobStatus,)>("SELECT status FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(status,)| status))
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
    if let Some(tenant) = &filter.tenant {
        query.push(" AND tenant = ").push_bind(tenant.clone());
    }
}
