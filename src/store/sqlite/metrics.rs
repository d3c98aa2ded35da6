//! Per-epoch metrics and per-update records of jobs.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite};

use super::queue::fenced;
use super::SqliteStore;
use crate::job::JobId;
use crate::store::rows::{finite_or_null, step_record, EpochRow, JobEpochRow};
use crate::store::{Lease, MetricSummary, StoreError};
use crate::train::{EpochMetrics, EpochReport, StepRecord};

/// SQLite binds at most 32,766 variables per statement; 3 per step row.
const STEP_ROWS_PER_INSERT: usize = 5_000;

impl SqliteStore {
    /// One transaction, fenced by its first statement (which also takes SQLite's write
    /// lock, so nothing can change the lease before the commit). Rows are upserted: an
    /// epoch redone after a crash (its checkpoint was not yet written) replaces its
    /// first, identical rows instead of duplicating them.
    pub(super) async fn insert_epoch(
        &self,
        lease: &Lease,
        report: &EpochReport,
    ) -> Result<(), StoreError> {
        let id = lease.job;
        let m = &report.metrics;
        let next_step = report.steps.last().map_or(0, |last| last.step + 1);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let progressed = sqlx::query(
            "UPDATE jobs SET progress_epoch = ?, progress_step = MAX(progress_step, ?) \
             WHERE id = ? AND lease_token = ?",
        )
        .bind(i64::from(m.epoch))
        .bind(i64::try_from(next_step).unwrap_or(i64::MAX))
        .bind(id)
        .bind(lease.token.as_str())
        .execute(&mut *tx)
        .await?;
        // Dropping the transaction rolls it back.
        fenced(id, progressed.rows_affected())?;
        sqlx::query(
            "INSERT OR REPLACE INTO epoch_metrics (job_id, epoch, train_loss, train_acc, test_loss, \
             test_acc, lr, lr_min, lr_max, seconds, eval_seconds, examples_per_sec) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(i64::from(m.epoch))
        .bind(m.train_loss)
        .bind(m.train_acc)
        .bind(m.test_loss)
        .bind(m.test_acc)
        .bind(m.lr)
        .bind(m.lr_min)
        .bind(m.lr_max)
        .bind(m.seconds)
        .bind(m.eval_seconds)
        .bind(m.examples_per_sec)
        .execute(&mut *tx)
        .await?;
        for chunk in report.steps.chunks(STEP_ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO step_records (job_id, step, lr, loss) ",
            );
            insert.push_values(chunk, |mut row, step| {
                row.push_bind(id)
                    .push_bind(i64::try_from(step.step).unwrap_or(i64::MAX))
                    .push_bind(step.lr)
                    .push_bind(finite_or_null(step.loss));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn read_epochs(&self, id: JobId) -> Result<Vec<EpochMetrics>, StoreError> {
        let rows = sqlx::query_as::<_, EpochRow>(
            "SELECT epoch, train_loss, train_acc, test_loss, test_acc, lr, lr_min, lr_max, seconds, \
             eval_seconds, examples_per_sec FROM epoch_metrics WHERE job_id = ? ORDER BY epoch",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| row.into_metrics(id)).collect()
    }

    pub(super) async fn read_steps(
        &self,
        id: JobId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, f64, Option<f64>)>(
            "SELECT step, lr, loss FROM step_records WHERE job_id = ? AND step >= ? \
             ORDER BY step LIMIT ?",
        )
        .bind(id)
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| step_record(id, row)).collect()
    }

    pub(super) async fn count_steps(&self, id: JobId) -> Result<u64, StoreError> {
        let (count,) =
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM step_records WHERE job_id = ?")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        u64::try_from(count).map_err(|_| StoreError::corrupt(id, format!("{count} steps")))
    }
}

impl SqliteStore {
    /// Two queries whatever the number of ids.
    pub(super) async fn summaries(
        &self,
        ids: &[JobId],
    ) -> Result<HashMap<JobId, MetricSummary>, StoreError> {
        let mut summaries: HashMap<JobId, MetricSummary> = HashMap::new();
        if ids.is_empty() {
            return Ok(summaries);
        }
        const COLUMNS: &str = "m.job_id AS job_id, m.epoch AS epoch, m.train_loss AS train_loss, \
             m.train_acc AS train_acc, m.test_loss AS test_loss, m.test_acc AS test_acc, m.lr AS lr, \
             m.lr_min AS lr_min, m.lr_max AS lr_max, m.seconds AS seconds, \
             m.eval_seconds AS eval_seconds, m.examples_per_sec AS examples_per_sec";
        // Latest: the row with the highest epoch. Best: the highest test
        // accuracy, the earliest such epoch on ties.
        for (pick_best, order) in [
            (false, "m.epoch DESC"),
            (true, "m.test_acc DESC, m.epoch ASC"),
        ] {
            let mut query = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {COLUMNS} FROM epoch_metrics m WHERE m.job_id IN ("
            ));
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            list.push_unseparated(format!(
                ") AND m.epoch = (SELECT n.epoch FROM epoch_metrics n WHERE n.job_id = m.job_id \
                 ORDER BY {} LIMIT 1)",
                order.replace("m.", "n.")
            ));
            let rows = query
                .build_query_as::<JobEpochRow>()
                .fetch_all(&self.pool)
                .await?;
            for row in rows {
                let job = JobId::new(row.job_id);
                let metrics = row.metrics.into_metrics(job)?;
                let entry = summaries.entry(job).or_default();
                if pick_best {
                    entry.best = Some(metrics);
                } else {
                    entry.latest = Some(metrics);
                }
            }
        }
        Ok(summaries)
    }
}
