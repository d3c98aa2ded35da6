//! Rows as both backends read them, and their conversion into the store's records.
//!
//! Every column decodes into a plain Rust type (text, integers, floats, instants) in
//! SQLite and in PostgreSQL alike, so one conversion — with one notion of a corrupt
//! value — serves both.

use chrono::{DateTime, Utc};

use super::{
    JobRecord, StoreError, StoredSweepEvent, SweepEvent, SweepRecord, TokenRecord,
    UnknownSweepStatus,
};
use crate::job::{FailureCode, JobError, JobId, JobStatus};
use crate::sweep::SweepId;
use crate::train::{EpochMetrics, StepRecord};

/// A job's columns; `spec` and `warnings` as JSON text.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    id: i64,
    spec: String,
    warnings: String,
    status: String,
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

/// The columns of [`JobRow`], for SELECT and RETURNING lists (PostgreSQL casts its JSONB
/// columns to text in its own list).
pub(crate) const JOB_COLUMNS: &str = "id, spec, warnings, status, created_at, started_at, \
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
        let status = row
            .status
            .parse::<JobStatus>()
            .map_err(|e| corrupt("status", e.to_string()))?;
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
            status,
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

/// A sweep's columns; `warnings` as JSON text.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SweepRow {
    pub(crate) id: i64,
    name: String,
    request: String,
    warnings: String,
    status: String,
    max_concurrent: Option<i64>,
    cancel_requested: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// The columns of [`SweepRow`] (PostgreSQL casts its JSON columns in its own list).
pub(crate) const SWEEP_COLUMNS: &str = "id, name, request, warnings, status, max_concurrent, \
     cancel_requested, created_at, updated_at, finished_at";

impl TryFrom<SweepRow> for SweepRecord {
    type Error = StoreError;

    fn try_from(row: SweepRow) -> Result<Self, StoreError> {
        let id = SweepId::new(row.id);
        let corrupt = |detail: String| StoreError::CorruptSweep { sweep: id, detail };
        Ok(SweepRecord {
            id,
            name: row.name,
            request: row.request,
            warnings: serde_json::from_str(&row.warnings)
                .map_err(|e| corrupt(format!("warnings: {e}")))?,
            status: row
                .status
                .parse()
                .map_err(|e: UnknownSweepStatus| corrupt(e.to_string()))?,
            max_concurrent: row
                .max_concurrent
                .map(u32::try_from)
                .transpose()
                .map_err(|e| corrupt(format!("max_concurrent: {e}")))?,
            cancel_requested: row.cancel_requested,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        })
    }
}

/// One entry of a sweep's log read back: `kind` names the variant, `body` is its JSON.
pub(crate) fn sweep_event(
    sweep: SweepId,
    (seq, kind, body, at): (i64, String, String, DateTime<Utc>),
) -> Result<StoredSweepEvent, StoreError> {
    let corrupt = |detail: String| StoreError::CorruptSweep { sweep, detail };
    let event = match kind.as_str() {
        "observation" => SweepEvent::Observation(
            serde_json::from_str(&body).map_err(|e| corrupt(format!("event {seq}: {e}")))?,
        ),
        "decision" => SweepEvent::Decision(
            serde_json::from_str(&body).map_err(|e| corrupt(format!("event {seq}: {e}")))?,
        ),
        other => return Err(corrupt(format!("event {seq} has kind `{other}`"))),
    };
    Ok(StoredSweepEvent {
        seq: u64::try_from(seq).map_err(|e| corrupt(format!("seq {seq}: {e}")))?,
        event,
        at,
    })
}

/// A log entry to write: its kind and its JSON body.
pub(crate) fn sweep_event_body(event: &SweepEvent) -> Result<(&'static str, String), StoreError> {
    let (kind, body) = match event {
        SweepEvent::Observation(o) => ("observation", serde_json::to_string(o)),
        SweepEvent::Decision(d) => ("decision", serde_json::to_string(d)),
    };
    Ok((kind, body.map_err(StoreError::Encode)?))
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EpochRow {
    epoch: i64,
    train_loss: f64,
    train_acc: f64,
    test_loss: f64,
    test_acc: f64,
    lr: f64,
    lr_min: f64,
    lr_max: f64,
    seconds: f64,
    eval_seconds: f64,
    examples_per_sec: f64,
}

impl EpochRow {
    /// The metrics of this row; an epoch number no u32 can hold was never written by lrlab.
    pub(crate) fn into_metrics(self, job: JobId) -> Result<EpochMetrics, StoreError> {
        let row = self;
        Ok(EpochMetrics {
            epoch: u32::try_from(row.epoch).map_err(|_| {
                StoreError::corrupt(job, format!("epoch {} out of range", row.epoch))
            })?,
            train_loss: row.train_loss,
            train_acc: row.train_acc,
            test_loss: row.test_loss,
            test_acc: row.test_acc,
            lr: row.lr,
            lr_min: row.lr_min,
            lr_max: row.lr_max,
            seconds: row.seconds,
            eval_seconds: row.eval_seconds,
            examples_per_sec: row.examples_per_sec,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobEpochRow {
    pub(crate) job_id: i64,
    #[sqlx(flatten)]
    pub(crate) metrics: EpochRow,
}

/// SQLite stores NaN as NULL anyway; say so explicitly (a diverged batch).
pub(crate) fn finite_or_null(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// A per-update record read back; NULL is how a non-finite loss (a diverged batch)
/// was stored.
pub(crate) fn step_record(
    job: JobId,
    (step, lr, loss): (i64, f64, Option<f64>),
) -> Result<StepRecord, StoreError> {
    Ok(StepRecord {
        step: u64::try_from(step)
            .map_err(|_| StoreError::corrupt(job, format!("step {step} out of range")))?,
        lr,
        loss: loss.unwrap_or(f64::NAN),
    })
}

/// A token's columns.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: i64,
    tenant: String,
    role: String,
    hash: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// The columns of [`TokenRow`].
pub(crate) const TOKEN_COLUMNS: &str = "id, tenant, role, hash, created_at, expires_at, revoked_at";

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<Self, StoreError> {
        let role =
            row.role
                .parse()
                .map_err(|err: crate::auth::UnknownRole| StoreError::CorruptToken {
                    token: row.id,
                    detail: err.to_string(),
                })?;
        Ok(TokenRecord {
            id: row.id,
            tenant: row.tenant,
            role,
            hash: row.hash,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }
}
