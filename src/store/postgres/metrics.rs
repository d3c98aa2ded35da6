//! Per-epoch metrics and per-update records of jobs.

use std::collections::HashMap;

use super::queue::fenced;
use super::PostgresStore;
use crate::job::JobId;
use crate::store::rows::{finite_or_null, step_record, EpochRow, JobEpochRow};
use crate::store::{Lease, MetricSummary, StoreError};
use crate::train::{EpochMetrics, EpochReport, StepRecord};

const EPOCH_COLUMNS: &str = "epoch, train_loss, train_acc, test_loss, test_acc, lr, lr_min, \
     lr_max, seconds, eval_seconds, examples_per_sec";

impl PostgresStore {
    /// One transaction, fenced by its first statement, whose row lock keeps the lease
    /// from changing hands before the commit. Rows are upserted: an epoch redone after a
    /// crash (its checkpoint was not yet written) replaces its first, identical rows. The
    /// epoch's per-update records go in as one statement over arrays, whatever their
    /// number.
    pub(super) async fn insert_epoch(
        &self,
        lease: &Lease,
        report: &EpochReport,
    ) -> Result<(), StoreError> {
        let id = lease.job;
        let m = &report.metrics;
        let next_step = report.steps.last().map_or(0, |last| last.step + 1);
        let mut tx = self.pool.begin().await?;
        let progressed = sqlx::query(
            "UPDATE jobs SET progress_epoch = $3, progress_step = GREATEST(progress_step, $4), \
             updated_at = now() WHERE id = $1 AND lease_token = $2",
        )
        .bind(id)
        .bind(lease.token.as_str())
        .bind(i64::from(m.epoch))
        .bind(i64::try_from(next_step).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        // Dropping the transaction rolls it back.
        fenced(id, progressed.rows_affected())?;
        sqlx::query(&format!(
            "INSERT INTO epoch_metrics (job_id, {EPOCH_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (job_id, epoch) DO UPDATE SET train_loss = EXCLUDED.train_loss, \
             train_acc = EXCLUDED.train_acc, test_loss = EXCLUDED.test_loss, \
             test_acc = EXCLUDED.test_acc, lr = EXCLUDED.lr, lr_min = EXCLUDED.lr_min, \
             lr_max = EXCLUDED.lr_max, seconds = EXCLUDED.seconds, \
             eval_seconds = EXCLUDED.eval_seconds, examples_per_sec = EXCLUDED.examples_per_sec"
        ))
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
        if !report.steps.is_empty() {
            let steps: Vec<i64> = report
                .steps
                .iter()
                .map(|s| i64::try_from(s.step).unwrap_or(i64::MAX))
                .collect();
            let rates: Vec<f64> = report.steps.iter().map(|s| s.lr).collect();
            let losses: Vec<Option<f64>> = report
                .steps
                .iter()
                .map(|s| finite_or_null(s.loss))
                .collect();
            sqlx::query(
                "INSERT INTO step_records (job_id, step, lr, loss) \
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::double precision[], \
                 $4::double precision[]) \
                 ON CONFLICT (job_id, step) DO UPDATE SET lr = EXCLUDED.lr, loss = EXCLUDED.loss",
            )
            .bind(id)
            .bind(&steps)
            .bind(&rates)
            .bind(&losses)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn read_epochs(&self, id: JobId) -> Result<Vec<EpochMetrics>, StoreError> {
        let rows = sqlx::query_as::<_, EpochRow>(&format!(
            "SELECT {EPOCH_COLUMNS} FROM epoch_metrics WHERE job_id = $1 ORDER BY epoch"
        ))
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
            "SELECT step, lr, loss FROM step_records WHERE job_id = $1 AND step >= $2 \
             ORDER BY step LIMIT $3",
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
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM step_records WHERE job_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        u64::try_from(count).map_err(|_| StoreError::corrupt(id, format!("{count} steps")))
    }

    /// Two queries whatever the number of ids: `DISTINCT ON` keeps the first row of
    /// each job in the given order.
    pub(super) async fn summaries(
        &self,
        ids: &[JobId],
    ) -> Result<HashMap<JobId, MetricSummary>, StoreError> {
        let mut summaries: HashMap<JobId, MetricSummary> = HashMap::new();
        if ids.is_empty() {
            return Ok(summaries);
        }
        let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        // Latest: the highest epoch. Best: the highest test accuracy, the earliest such
        // epoch on ties.
        for (pick_best, order) in [(false, "epoch DESC"), (true, "test_acc DESC, epoch ASC")] {
            let rows = sqlx::query_as::<_, JobEpochRow>(&format!(
                "SELECT DISTINCT ON (job_id) job_id, {EPOCH_COLUMNS} FROM epoch_metrics \
                 WHERE job_id = ANY($1) ORDER BY job_id, {order}"
            ))
            .bind(&ids)
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
