//! Sweeps: a sweep row, its member jobs, its early-stopping log, and coordinator steps —
//! the same semantics as `store/sqlite/sweeps.rs`.
//!
//! A coordinator step locks its sweep's row (`FOR UPDATE`) before it counts the log, so
//! two coordinators (in any processes) take turns, and the second sees the first's
//! entries and is refused. Claims of a sweep's members take the same lock (`queue.rs`).

use std::collections::HashMap;

use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use crate::auth::DEFAULT_TENANT;
use crate::job::JobId;
use crate::store::rows::{sweep_event, sweep_event_body, JobEpochRow, JobRow, SweepRow};
use crate::store::{
    JobRecord, MemberUpdate, NewSweep, StoreError, StoredSweepEvent, SweepDeleteOutcome,
    SweepFilter, SweepRecord, SweepStatus, SweepStep, SweepSubmitted,
};
use crate::sweep::SweepId;
use crate::train::EpochMetrics;

use super::jobs::JOB_COLUMNS;

/// The columns of [`SweepRow`]; the JSON ones as text.
const SWEEP_COLUMNS: &str = "id, name, request::text AS request, warnings::text AS warnings, \
     status, max_concurrent, cancel_requested, created_at, updated_at, finished_at";

impl PostgresStore {
    /// One transaction: the sweep row, then every member in one statement (in plan order,
    /// so member ids follow it).
    pub(super) async fn insert_sweep(
        &self,
        sweep: NewSweep<'_>,
    ) -> Result<SweepSubmitted, StoreError> {
        if let Some((key, hash)) = sweep.idempotency {
            if let Some(found) = self.sweep_by_key(key, hash).await? {
                return Ok(found);
            }
        }
        let (key, hash) = sweep.idempotency.unzip();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_as::<_, SweepRow>(&format!(
            "INSERT INTO sweeps (name, request, warnings, status, max_concurrent, \
             idempotency_key, request_hash, tenant) \
             VALUES ($1, $2::json, $3, 'queued', $4, $5, $6, $7) RETURNING {SWEEP_COLUMNS}"
        ))
        .bind(sweep.name)
        .bind(sweep.request)
        .bind(Json(sweep.warnings))
        .bind(sweep.max_concurrent.map(i64::from))
        .bind(key)
        .bind(hash)
        .bind(sweep.tenant.unwrap_or(DEFAULT_TENANT))
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            // Two submissions with one key raced: the other one won (the unique index
            // made this one wait for its commit, so it is visible now).
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
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
        let members = &sweep.members;
        let mut names = Vec::with_capacity(members.len());
        let mut specs = Vec::with_capacity(members.len());
        let mut warnings = Vec::with_capacity(members.len());
        for member in members {
            names.push(member.spec.name.as_str());
            specs.push(serde_json::to_string(member.spec).map_err(StoreError::Encode)?);
            warnings.push(serde_json::to_string(member.warnings).map_err(StoreError::Encode)?);
        }
        let priorities: Vec<i64> = members.iter().map(|m| m.spec.priority).collect();
        let epochs: Vec<i64> = members.iter().map(|m| i64::from(m.spec.epochs)).collect();
        let total_steps: Vec<i64> = members
            .iter()
            .map(|m| i64::try_from(m.total_steps).unwrap_or(i64::MAX))
            .collect();
        let configs: Vec<i64> = members
            .iter()
            .map(|m| i64::try_from(m.config).unwrap_or(i64::MAX))
            .collect();
        let run_until: Vec<Option<i64>> = members
            .iter()
            .map(|m| m.run_until_epoch.map(i64::from))
            .collect();
        sqlx::query(
            "INSERT INTO jobs (name, spec, warnings, status, priority, epochs, total_steps, \
             sweep_id, sweep_config, run_until_epoch, tenant) \
             SELECT m.name, m.spec::jsonb, m.warnings::jsonb, 'queued', m.priority, m.epochs, \
             m.total_steps, $1, m.config, m.run_until, s.tenant \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], \
                         $7::bigint[], $8::bigint[], $9::bigint[]) WITH ORDINALITY \
                  AS m(name, spec, warnings, priority, epochs, total_steps, config, run_until, n) \
             JOIN sweeps s ON s.id = $1 \
             ORDER BY m.n",
        )
        .bind(row.id)
        .bind(&names)
        .bind(&specs)
        .bind(&warnings)
        .bind(&priorities)
        .bind(&epochs)
        .bind(&total_steps)
        .bind(&configs)
        .bind(&run_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SweepSubmitted::Created(row.try_into()?))
    }

    async fn sweep_by_key(
        &self,
        key: &str,
        hash: &str,
    ) -> Result<Option<SweepSubmitted>, StoreError> {
        let row = sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT id, request_hash FROM sweeps WHERE idempotency_key = $1",
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
            "SELECT {SWEEP_COLUMNS} FROM sweeps WHERE id = $1"
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
        let sweeps = sqlx::query_as::<_, SweepRow>(&format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps WHERE ($1::bigint IS NULL OR id < $1) \
             AND ($3::text IS NULL OR tenant = $3) \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .bind(&filter.tenant)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(SweepRecord::try_from)
        .collect::<Result<Vec<_>, _>>()?;
        let (total,) = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM sweeps WHERE ($1::text IS NULL OR tenant = $1)",
        )
        .bind(&filter.tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok((sweeps, total))
    }

    pub(super) async fn tenant_of_sweep(&self, id: SweepId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query_as::<_, (String,)>("SELECT tenant FROM sweeps WHERE id = $1")
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
            "SELECT {JOB_COLUMNS} FROM jobs WHERE sweep_id = $1 ORDER BY id"
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
            "SELECT m.job_id, m.epoch, m.train_loss, m.train_acc, m.test_loss, m.test_acc, \
             m.lr, m.lr_min, m.lr_max, m.seconds, m.eval_seconds, m.examples_per_sec \
             FROM epoch_metrics m JOIN jobs j ON j.id = m.job_id \
             WHERE j.sweep_id = $1 ORDER BY m.job_id, m.epoch",
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
        let rows = sqlx::query_as::<_, (i64, String, String, chrono::DateTime<chrono::Utc>)>(
            "SELECT seq, kind, body::text, created_at FROM sweep_events \
             WHERE sweep_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| sweep_event(id, row)).collect()
    }

    /// One transaction under the sweep's row lock: the log's length is counted after the
    /// lock is taken, so a step computed from a log another coordinator has grown since is
    /// refused, and nothing of it is written.
    pub(super) async fn apply_step(&self, step: SweepStep<'_>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("SELECT id FROM sweeps WHERE id = $1 FOR UPDATE")
            .bind(step.sweep)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(false);
        }
        let (length,) =
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM sweep_events WHERE sweep_id = $1")
                .bind(step.sweep)
                .fetch_one(&mut *tx)
                .await?;
        if u64::try_from(length).ok() != Some(step.next_seq) {
            return Ok(false);
        }
        if !step.events.is_empty() {
            let first = i64::try_from(step.next_seq).unwrap_or(i64::MAX);
            let mut kinds = Vec::with_capacity(step.events.len());
            let mut bodies = Vec::with_capacity(step.events.len());
            for event in step.events {
                let (kind, body) = sweep_event_body(event)?;
                kinds.push(kind);
                bodies.push(body);
            }
            let inserted = sqlx::query(
                "INSERT INTO sweep_events (sweep_id, seq, kind, body) \
                 SELECT $1, $2 + e.n - 1, e.kind, e.body::json \
                 FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS e(kind, body, n)",
            )
            .bind(step.sweep)
            .bind(first)
            .bind(&kinds)
            .bind(&bodies)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // Cannot happen under the lock; refused all the same if it did.
                Err(sqlx::Error::Database(err)) if err.is_unique_violation() => return Ok(false),
                Err(err) => return Err(err.into()),
            }
        }
        for update in step.updates {
            apply_update(&mut tx, step.sweep, *update).await?;
        }
        sqlx::query(
            "UPDATE sweeps SET status = $2, updated_at = now(), \
             finished_at = CASE WHEN $3 THEN COALESCE(finished_at, now()) ELSE finished_at END \
             WHERE id = $1",
        )
        .bind(step.sweep)
        .bind(step.status.as_str())
        .bind(step.status.is_finished())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn flag_sweep_cancel(
        &self,
        id: SweepId,
    ) -> Result<Option<SweepStatus>, StoreError> {
        let row = sqlx::query_as::<_, (String,)>(
            "UPDATE sweeps SET cancel_requested = true, updated_at = now() WHERE id = $1 \
             RETURNING status",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(status,)| parse_sweep_status(id, &status))
            .transpose()
    }

    pub(super) async fn remove_sweep(&self, id: SweepId) -> Result<SweepDeleteOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let status =
            sqlx::query_as::<_, (String,)>("SELECT status FROM sweeps WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((status,)) = status else {
            return Ok(SweepDeleteOutcome::NotFound);
        };
        let status = parse_sweep_status(id, &status)?;
        if !status.is_finished() {
            return Ok(SweepDeleteOutcome::NotFinished(status));
        }
        sqlx::query("DELETE FROM jobs WHERE sweep_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sweeps WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(SweepDeleteOutcome::Deleted)
    }
}

fn parse_sweep_status(sweep: SweepId, word: &str) -> Result<SweepStatus, StoreError> {
    word.parse().map_err(
        |e: crate::store::UnknownSweepStatus| StoreError::CorruptSweep {
            sweep,
            detail: e.to_string(),
        },
    )
}

/// One member update inside a coordinator step; only members of `sweep` are touched.
async fn apply_update(
    tx: &mut Transaction<'_, Postgres>,
    sweep: SweepId,
    update: MemberUpdate,
) -> Result<(), StoreError> {
    match update {
        MemberUpdate::Continue { job, run_until } => {
            sqlx::query(
                "UPDATE jobs SET run_until_epoch = $3, updated_at = now(), \
                 status = CASE WHEN status = 'paused' THEN 'queued' ELSE status END \
                 WHERE id = $1 AND sweep_id = $2 AND status IN ('queued', 'running', 'paused')",
            )
            .bind(job)
            .bind(sweep)
            .bind(run_until.map(i64::from))
            .execute(&mut **tx)
            .await?;
        }
        MemberUpdate::StopEarly { job } => {
            sqlx::query(
                "UPDATE jobs SET stop_early_requested = true, updated_at = now(), \
                 status = CASE WHEN status = 'running' THEN status ELSE 'stopped_early' END, \
                 finished_at = CASE WHEN status = 'running' THEN finished_at ELSE now() END \
                 WHERE id = $1 AND sweep_id = $2 AND status IN ('queued', 'paused', 'running')",
            )
            .bind(job)
            .bind(sweep)
            .execute(&mut **tx)
            .await?;
        }
        MemberUpdate::Cancel { job } => {
            sqlx::query(
                "UPDATE jobs SET cancel_requested = true, updated_at = now(), \
                 status = CASE WHEN status = 'running' THEN status ELSE 'canceled' END, \
                 finished_at = CASE WHEN status = 'running' THEN finished_at ELSE now() END \
                 WHERE id = $1 AND sweep_id = $2 AND status IN ('queued', 'paused', 'running')",
            )
            .bind(job)
            .bind(sweep)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
