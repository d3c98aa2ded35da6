//! The early-stopping rules with every default resolved, checked against the configs.

use serde::{Deserialize, Serialize};

use super::error::{FieldCode, FieldError};
use super::metric::{Metric, Mode};
use super::request::{AshaSpec, EarlyStopping, MedianSpec};

/// Largest reduction factor accepted: with η above 100 every rung but the
/// first lies beyond any run lrlab allows (1,000 epochs).
pub const MAX_REDUCTION_FACTOR: u32 = 100;

/// ASHA's parameters, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AshaParams {
    pub metric: Metric,
    pub mode: Mode,
    /// r: the first rung, in epochs.
    pub grace_period: u32,
    /// η ≥ 2.
    pub reduction_factor: u32,
    /// Rungs lie at r·η^k ≤ max_t.
    pub max_t: u32,
    /// Decide a rung only once every config that can reach it has (or has
    /// been paused below it): synchronous successive halving, the same
    /// decisions whatever the workers' speed. Otherwise each config is
    /// decided on arrival (the paper's asynchronous rule), which keeps
    /// workers busy but makes the decisions depend on arrival order.
    pub synchronous: bool,
}

impl AshaParams {
    /// The rungs, in epochs: r, r·η, r·η², … while ≤ max_t.
    pub fn rungs(&self) -> Vec<u32> {
        let mut rungs = Vec::new();
        let mut rung = Some(self.grace_period);
        while let Some(r) = rung.filter(|&r| r <= self.max_t && r >= 1) {
            rungs.push(r);
            // η < 2 would repeat the rung for ever; resolution rejects it.
            rung = (self.reduction_factor >= 2)
                .then(|| r.checked_mul(self.reduction_factor))
                .flatten();
        }
        rungs
    }
}

/// The median stopping rule's parameters, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedianParams {
    pub metric: Metric,
    pub mode: Mode,
    /// How many other configs' values at an epoch a judgement needs.
    pub n_startup: u32,
    /// No judgement at epochs `1..=warmup_epochs`.
    pub warmup_epochs: u32,
    /// Judge an epoch only once every config still running has reported it.
    pub synchronous: bool,
}

/// A resolved early-stopping rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoppingParams {
    Asha(AshaParams),
    Median(MedianParams),
}

impl StoppingParams {
    /// The metric the rule watches.
    pub fn metric(&self) -> Metric {
        match self {
            StoppingParams::Asha(p) => p.metric,
            StoppingParams::Median(p) => p.metric,
        }
    }
}

/// Fills the defaults of `rule` and checks it against the configs' epochs.
pub(crate) fn resolve_early_stopping(
    rule: Option<&EarlyStopping>,
    config_epochs: &[u32],
) -> Result<Option<StoppingParams>, FieldError> {
    let Some(rule) = rule else {
        return Ok(None);
    };
    let longest = config_epochs.iter().copied().max().unwrap_or(0);
    check_mode(rule)?;
    let mode = rule.mode();
    Ok(Some(match rule {
        EarlyStopping::Asha(spec) => StoppingParams::Asha(resolve_asha(spec, mode, longest)?),
        EarlyStopping::Median(spec) => StoppingParams::Median(resolve_median(spec, mode, longest)?),
    }))
}

fn check_mode(rule: &EarlyStopping) -> Result<(), FieldError> {
    let given = match rule {
        EarlyStopping::Asha(AshaSpec { mode, .. })
        | EarlyStopping::Median(MedianSpec { mode, .. }) => *mode,
    };
    let metric = rule.metric();
    match given {
        Some(mode) if mode != metric.natural_mode() => Err(FieldError::new(
            FieldCode::InvalidValue,
            "early_stopping.mode",
            format!(
                "{metric} is better when {}: mode must be `{}` (or leave it out)",
                if metric.natural_mode() == Mode::Max {
                    "higher"
                } else {
                    "lower"
                },
                metric.natural_mode()
            ),
        )),
        _ => Ok(()),
    }
}

fn resolve_asha(spec: &AshaSpec, mode: Mode, longest: u32) -> Result<AshaParams, FieldError> {
    if spec.grace_period == 0 {
        return Err(FieldError::new(
            FieldCode::OutOfRange,
            "early_stopping.grace_period",
            "grace_period must be at least 1 epoch",
        ));
    }
    if !(2..=MAX_REDUCTION_FACTOR).contains(&spec.reduction_factor) {
        return Err(FieldError::new(
            FieldCode::OutOfRange,
            "early_stopping.reduction_factor",
            format!(
                "reduction_factor must be between 2 and {MAX_REDUCTION_FACTOR}, got {}",
                spec.reduction_factor
            ),
        ));
    }
    let max_t = spec.max_t.unwrap_or(longest);
    if spec.grace_period >= max_t {
        let (path, why) = match spec.max_t {
            Some(_) => ("early_stopping.max_t", format!("max_t ({max_t})")),
            None => (
                "early_stopping.grace_period",
                format!("the longest config's epochs ({max_t})"),
            ),
        };
        return Err(FieldError::new(
            FieldCode::OutOfRange,
            path,
            format!(
                "grace_period ({}) must be less than {why}: otherwise no rung lies inside a run",
                spec.grace_period
            ),
        ));
    }
    Ok(AshaParams {
        metric: spec.metric,
        mode,
        grace_period: spec.grace_period,
        reduction_factor: spec.reduction_factor,
        max_t,
        synchronous: spec.synchronous,
    })
}

fn resolve_median(spec: &MedianSpec, mode: Mode, longest: u32) -> Result<MedianParams, FieldError> {
    if spec.n_startup == 0 {
        return Err(FieldError::new(
            FieldCode::OutOfRange,
            "early_stopping.n_startup",
            "n_startup must be at least 1: a median needs other configs' values",
        ));
    }
    if spec.warmup_epochs.saturating_add(1) >= longest {
        return Err(FieldError::new(
            FieldCode::OutOfRange,
            "early_stopping.warmup_epochs",
            format!(
                "warmup_epochs ({}) must be less than {} (the longest config's epochs − 1): a config is judged only after its warm-up and before its last epoch",
                spec.warmup_epochs,
                longest.saturating_sub(1)
            ),
        ));
    }
    Ok(MedianParams {
        metric: spec.metric,
        mode,
        n_startup: spec.n_startup,
        warmup_epochs: spec.warmup_epochs,
        synchronous: spec.synchronous,
    })
}
