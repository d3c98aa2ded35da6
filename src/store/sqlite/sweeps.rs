//! Sweeps: a sweep row, its member jobs, its early-stopping log, and coordinator steps.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::SqliteStore;
use crate::auth::DEFAULT_TENANT;
use crate::job::JobId;
use crate::store::rows::{
    sweep_event, sweep_event_body, JobEpochRow, JobRow, SweepRow, JOB_COLUMNS, SWEEP_COLUMNS,
};
use crate::store::{
    JobRecord, MemberUpdate, NewSweep, StoreError, StoredSweepEvent, SweepDeleteOutcome,
    SweepFilter, SweepRecord, SweepStatus, SweepStep, SweepSubmitted,
};
use crate::sweep::SweepId;
use crate::train::EpochMetrics;

impl SqliteStore {
    pub(super) async fn insert_sweep(
        &self,
        sweep: NewSweep<'_>,
    ) -> Result<SweepSubmitted, StoreError> {
        if let Some((key, hash)) = sweep.idempotency {
            if let Some(found) = self.sweep_by_key(key, hash).await? {
                return Ok(found);
            }
        }
        let now = Utc::now();
        let warnings = serde_json::to_string(sweep.warnings).map_err(StoreError::Encode)?;
        let (key, hash) = sweep.idempotency.unzip();
        let tenant = sweep.tenant.unwrap_or(DEFAULT_TENANT);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = sqlx::query_as::<_, SweepRow>(&format!(
            "INSERT INTO sweeps (name, request, warnings, status, max_concurrent, \
             idempotency_key, request_hash, created_at, updated_at, tenant) \
             VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?) RETURNING {SWEEP_COLUMNS}"
        ))
        .bind(sweep.name)
        .bind(sweep.request)
        .bind(warnings)
        .bind(sweep.max_concurrent.map(i64::from))
        .bind(key)
        .bind(hash)
        .bind(now)
        .bind(now)
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                // Two submissions with one key raced: the other one won.
                drop(tx);
                let (Some(key), Some(hash)) = (key, hash) else {
                    return Err(sqlx::Error::Database(err).into());
                };
                return match self.sweep_by_key(key, hash).await? {
                    Some(found) => Ok(found),
                    None => Err(sqlx::Error::Database(err).into()),
                };
            }
            Err(err) => return Err(err.into()),
        };
        for member in &sweep.members {
            let spec = serde_json::to_string(member.spec).map_err(StoreError::Encode)?;
            let warnings = serde_json::to_string(member.warnings).map_err(StoreError::Encode)?;
            sqlx::query(
                "INSERT INTO jobs (name, spec, warnings, status, priority, created_at, updated_at, \
                 epochs, total_steps, sweep_id, sweep_config, run_until_epoch, tenant) \
                 VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&member.spec.name)
            .bind(spec)
            .bind(warnings)
            .bind(member.spec.priority)
            .bind(now)
            .bind(now)
            .bind(i64::from(member.spec.epochs))
            .bind(i64::try_from(member.total_steps).unwrap_or(i64::MAX))
            .bind(row.id)
            .bind(i64::try_from(member.config).unwrap_or(i64::MAX))
            .bind(member.run_until_epoch.map(i64::from))
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(SweepSubmitted::Created(row.try_into()?))
    }

    async fn sweep_by_key(
        &self,
        key: &str,
        hash: &str,
    ) -> Result<Option<SweepSubmitted>, StoreError> {
        let row = sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT id, request_hash FROM sweeps WHERE idempotency_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, stored_hash)) = row else {
            return Ok(None);
        };
        let id = SweepId::new(id);
        if stored_hash.as_deref() != Some(hash) {
            return Ok(Some(SweepSubmitted::KeyReused { existing: id }));
        }
        Ok(self.find_sweep(id).await?.map(SweepSubmitted::Replayed))
    }

    pub(super) async fn find_sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError> {
        let row = sqlx::query_as::<_, SweepRow>(&format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(SweepRecord::try_from).transpose()
    }

    pub(super) async fn list_sweep_page(
        &self,
        filter: &SweepFilter,
    ) -> Result<(Vec<SweepRecord>, i64), StoreError> {
        let mut page =
            QueryBuilder::<Sqlite>::new(format!("SELECT {SWEEP_COLUMNS} FROM sweeps WHERE 1 = 1"));
        if let Some(tenant) = &filter.tenant {
            page.push(" AND tenant = ").push_bind(tenant.clone());
        }
        if let Some(before) = filter.before {
            page.push(" AND id < ").push_bind(before);
        }
        page.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let sweeps = page
            .build_query_as::<SweepRow>()
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(SweepRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM sweeps WHERE 1 = 1");
        if let Some(tenant) = &filter.tenant {
            count.push(" AND tenant = ").push_bind(tenant.clone());
        }
        let (total,) = count
            .build_query_as::<(i64,)>()
            .fetch_one(&self.pool)
            .await?;
        Ok((sweeps, total))
    }

    pub(super) async fn tenant_of_sweep(&self, id: SweepId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query_as::<_, (String,)>("SELECT tenant FROM sweeps WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(tenant,)| tenant))
    }

    pub(super) async fn unfinished(&self) -> Result<Vec<SweepId>, StoreError> {
        let rows = sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM sweeps WHERE status IN ('queued', 'running') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| SweepId::new(id)).collect())
    }

    pub(super) async fn members(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError> {
        sqlx::query_as::<_, JobRow>(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE sweep_id = ? ORDER BY id"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(JobRecord::try_from)
        .collect()
    }

    pub(super) async fn member_metrics(
        &self,
        id: SweepId,
    ) -> Result<HashMap<JobId, Vec<EpochMetrics>>, StoreError> {
        let rows = sqlx::query_as::<_, JobEpochRow>(
            "SELECT m.job_id AS job_id, m.epoch AS epoch, m.train_loss AS train_loss, \
             m.train_acc AS train_acc, m.test_loss AS test_loss, m.test_acc AS test_acc, \
             m.lr AS lr, m.lr_min AS lr_min, m.lr_max AS lr_max, m.seconds AS seconds, \
             m.eval_seconds AS eval_seconds, m.examples_per_sec AS examples_per_sec \
             FROM epoch_metrics m JOIN jobs j ON j.id = m.job_id \
             WHERE j.sweep_id = ? ORDER BY m.job_id, m.epoch",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut by_job: HashMap<JobId, Vec<EpochMetrics>> = HashMap::new();
        for row in rows {
            let job = JobId::new(row.job_id);
            let metrics = row.metrics.into_metrics(job)?;
            by_job.entry(job).or_default().push(metrics);
        }
        Ok(by_job)
    }

    pub(super) async fn events(&self, id: SweepId) -> Result<Vec<StoredSweepEvent>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, String, DateTime<Utc>)>(
            "SELECT seq, kind, body, created_at FROM sweep_events WHERE sweep_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| sweep_event(id, row)).collect()
    }

    pub(super) async fn apply_step(&self, step: SweepStep<'_>) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (length,) =
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM sweep_events WHERE sweep_id = ?")
                .bind(step.sweep)
                .fetch_one(&mut *tx)
                .await?;
        if u64::try_from(length).ok() != Some(step.next_seq) {
            return Ok(false);
        }
        for (offset, event) in step.events.iter().enumerate() {
            let (kind, body) = sweep_event_body(event)?;
            let seq = step.next_seq + offset as u64;
            let inserted = sqlx::query(
                "INSERT INTO sweep_events (sweep_id, seq, kind, body, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(step.sweep)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(kind)
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // Another coordinator appended first: nothing of this step is written.
                Err(sqlx::Error::Database(err)) if err.is_unique_violation() => return Ok(false),
                Err(err) => return Err(err.into()),
            }
        }
        for update in step.updates {
            apply_update(&mut tx, step.sweep, *update, now).await?;
        }
        let finished_at = step.status.is_finished().then_some(now);
        sqlx::query(
            "UPDATE sweeps SET status = ?, updated_at = ?, \
             finished_at = COALESCE(finished_at, ?) WHERE id = ?",
        )
        .bind(step.status)
        .bind(now)
        .bind(finished_at)
        .bind(step.sweep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn flag_sweep_cancel(
        &self,
        id: SweepId,
    ) -> Result<Option<SweepStatus>, StoreError> {
        let row = sqlx::query_as::<_, (SweepStatus,)>(
            "UPDATE sweeps SET cancel_requested = 1, updated_at = ? WHERE id = ? RETURNING status",
        )
        .bind(Utc::now())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(status,)| status))
    }

    pub(super) async fn remove_sweep(&self, id: SweepId) -> Result<SweepDeleteOutcome, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let status = sqlx::query_as::<_, (SweepStatus,)>("SELECT status FROM sweeps WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((status,)) = status else {
            return Ok(SweepDeleteOutcome::NotFound);
        };
        if !status.is_finished() {
            return Ok(SweepDeleteOutcome::NotFinished(status));
        }
        sqlx::query("DELETE FROM jobs WHERE sweep_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sweeps WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(SweepDeleteOutcome::Deleted)
    }
}

/// One member update inside a coordinator step; only members of `sweep` are touched.
async fn apply_update(
    tx: &mut Transaction<'_, Sqlite>,
    sweep: SweepId,
    update: MemberUpdate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match update {
        MemberUpdate::Continue { job, run_until } => {
            sqlx::query(
                "UPDATE jobs SET run_until_epoch = ?, updated_at = ?, \
                 status = CASE WHEN status = 'paused' THEN 'queued' ELSE status END \
                 WHERE id = ? AND sweep_id = ? AND status IN ('queued', 'running', 'paused')",
            )
            .bind(run_until.map(i64::from))
            .bind(now)
            .bind(job)
            .bind(sweep)
            .execute(&mut **tx)
            .await?;
        }
        MemberUpdate::StopEarly { job } => {
            sqlx::query(
                "UPDATE jobs SET status = 'stopped_early', finished_at = ?, updated_at = ?, \
                 stop_early_requested = 1 \
                 WHERE id = ? AND sweep_id = ? AND status IN ('queued', 'paused')",
            )
            .bind(now)
            .bind(now)
            .bind(job)
            .bind(sweep)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE jobs SET stop_early_requested = 1, updated_at = ? \
                 WHERE id = ? AND sweep_id = ? AND status = 'running'",
            )
            .bind(now)
            .bind(job)
            .bind(sweep)
            .execute(&mut **tx)
            .await?;
        }
        MemberUpdate::Cancel { job } => {
            sqlx::query(
                "UPDATE jobs SET status = 'canceled', cancel_requested = 1, finished_at = ?, \
                 updated_at = ? WHERE id = ? AND sweep_id = ? AND status IN ('queued', 'paused')",
            )
            .bind(now)
            .bind(now)
            .bind(job)
            .bind(sweep)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE jobs SET cancel_requested = 1, updated_at = ? \
                 WHERE id = ? AND sweep_id = ? AND status = 'running'",
            )
            .bind(now)
            .bind(job)
            .bind(sweep)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
