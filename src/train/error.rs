//! The one error type of the training engine, with stable codes for the job service.

use std::path::PathBuf;

use crate::schedule::SpecError;

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File system failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The metadata file is not valid JSON of the expected shape.
    #[error("bad metadata: {0}")]
    Json(#[from] serde_json::Error),
    /// The tensor file could not be written or read.
    #[error("bad tensors: {0}")]
    Tensors(#[from] candle_core::Error),
    /// The files are readable but inconsistent (missing tensor, wrong shape, unknown format).
    #[error("{0}")]
    Format(String),
}

/// Why a run ended without completing.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The batch loss became NaN or infinite: the rate is too high for this model.
    #[error("training diverged: loss {loss} at epoch {epoch}, step {step}")]
    Diverged {
        /// 1-based epoch.
        epoch: u32,
        /// Global 0-based update index whose loss was not finite.
        step: u64,
        /// The offending loss value.
        loss: f64,
    },
    /// Every batch loss of the epoch was finite but one of its metrics is not: typically the
    /// epoch's last update broke the weights, so the test loss is NaN (with one update per
    /// epoch, the only training loss was computed before it). No observer sees such a row.
    #[error("training diverged: the {metric} of epoch {epoch} is {value}")]
    DivergedMetric {
        /// 1-based epoch.
        epoch: u32,
        /// Which metric, in words ("test loss", "train accuracy", …).
        metric: &'static str,
        /// Its value: NaN or ±infinity.
        value: f64,
    },
    /// The stop flag was raised; the last completed epoch's checkpoint (if any) is intact.
    #[error("training stopped during epoch {epoch}")]
    Stopped {
        /// 1-based epoch that was interrupted.
        epoch: u32,
    },
    /// A configuration value outside its allowed range.
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    /// The schedule spec broke one of its rules.
    #[error("invalid schedule: {0}")]
    Schedule(#[from] SpecError),
    /// A checkpoint or weights file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Checkpoint {
        /// The file involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: CheckpointError,
    },
    /// The observer failed (e.g. its database write); the epoch's checkpoint is not written.
    #[error("observer failed: {0}")]
    Observer(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A tensor operation failed: a bug or an exhausted device.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The requested device is unknown or unavailable in this build.
    #[error("device: {0}")]
    Device(String),
}

impl TrainError {
    /// A stable, machine-readable code for API error bodies and job records.
    pub fn code(&self) -> &'static str {
        match self {
            TrainError::Diverged { .. } | TrainError::DivergedMetric { .. } => "diverged",
            TrainError::Stopped { .. } => "stopped",
            TrainError::InvalidConfig(_) => "invalid_config",
            TrainError::Schedule(_) => "invalid_schedule",
            TrainError::Checkpoint { .. } => "checkpoint",
            TrainError::Observer(_) => "observer",
            TrainError::Candle(_) => "internal",
            TrainError::Device(_) => "device",
        }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, source: impl Into<CheckpointError>) -> Self {
        TrainError::Checkpoint {
            path: path.into(),
            source: source.into(),
        }
    }
}
