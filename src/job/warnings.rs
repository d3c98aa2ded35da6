//! Warnings for jobs that will run, but probably not as their author meant.
//!
//! The most common scheduling mistake is mixing up epochs and updates: a
//! cosine with `max_steps: 20` on a job stepped per update is over after 20
//! of its ~2,300 updates; with `max_steps: 4690` on a job stepped per epoch
//! it barely moves. Both are valid specs, so lrlab accepts them and says so.

use serde::{Deserialize, Serialize};

use super::plan::JobPlan;
use crate::schedule::Schedule;
use crate::train::ScheduleUnit;

/// Effective rates above this make this LeNet diverge under SGD (measured:
/// PyTorch's runs from 2.0 and from 0.5 with momentum-free SGD end at 10%).
pub const DIVERGENCE_RATE: f64 = 1.0;

/// At most this many steps are evaluated when scanning a job's rates.
const SCAN_POINTS: u64 = 100_000;

/// What a warning is about: a stable word clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// A length in the schedule is beyond the job's length in its unit.
    ScheduleLongerThanJob,
    /// The curve stops changing in the first half of the job.
    ScheduleEndsEarly,
    /// The first epoch or update trains nothing.
    ZeroRateAtStart,
    /// The effective rate goes above [`DIVERGENCE_RATE`].
    RateLikelyDiverges,
    /// A sweep's early stopping judges configs before their warm-up ends.
    GracePeriodShorterThanWarmup,
    /// A sweep's schedule length depends on the epochs, so a stopped prefix is not the
    /// prefix of the full run.
    ScheduleDependsOnEpochs,
}

impl WarningCode {
    /// Every code, for documentation checks.
    pub const ALL: [WarningCode; 6] = [
        WarningCode::ScheduleLongerThanJob,
        WarningCode::ScheduleEndsEarly,
        WarningCode::ZeroRateAtStart,
        WarningCode::RateLikelyDiverges,
        WarningCode::GracePeriodShorterThanWarmup,
        WarningCode::ScheduleDependsOnEpochs,
    ];

    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::ScheduleLongerThanJob => "schedule_longer_than_job",
            WarningCode::ScheduleEndsEarly => "schedule_ends_early",
            WarningCode::ZeroRateAtStart => "zero_rate_at_start",
            WarningCode::RateLikelyDiverges => "rate_likely_diverges",
            WarningCode::GracePeriodShorterThanWarmup => "grace_period_shorter_than_warmup",
            WarningCode::ScheduleDependsOnEpochs => "schedule_depends_on_epochs",
        }
    }
}

/// One warning: a stable code, a sentence, and the field it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    pub code: WarningCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Lets tests compare a code with its word directly.
impl PartialEq<&str> for WarningCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Warning {
    /// A warning about the field at `path` (the whole document when `None`).
    pub fn new(code: WarningCode, path: Option<String>, message: String) -> Self {
        Warning {
            code,
            message,
            path,
        }
    }
}

/// Every warning that applies to a planned job, assuming the full Fashion-MNIST
/// training split (60,000 images, cut by `train_limit`).
pub fn job_warnings(plan: &JobPlan) -> Vec<Warning> {
    let spec = plan.spec();
    let schedule = plan.schedule();
    let updates = plan.total_steps();
    let (total, unit, other_unit) = match spec.schedule_unit {
        ScheduleUnit::Epoch => (u64::from(spec.epochs), "epoch", "step"),
        ScheduleUnit::Step => (updates, "update", "epoch"),
    };
    let mut warnings = Vec::new();

    if let Some((path, length)) = schedule.max_step_reference() {
        if length > total {
            let hint = if spec.schedule_unit == ScheduleUnit::Epoch && length <= updates {
                format!(
                    " (the job makes {updates} updates: did you mean \"schedule_unit\": \"step\"?)"
                )
            } else {
                String::new()
            };
            warnings.push(Warning::new(
                WarningCode::ScheduleLongerThanJob,
                Some(format!("schedule.{path}")),
                format!(
                    "schedule.{path} is {length}, but the job runs only {total} {unit}s: the schedule will not get there{hint}"
                ),
            ));
        }
    }

    let (peak_step, peak) = peak_rate(schedule, total);
    if let Some(horizon) = schedule.horizon() {
        // Only a curve that has come down to its end value is a mistake when
        // it flattens early; a warm-up into a constant rate is meant to.
        let decayed = schedule.lr(horizon) < peak;
        if decayed && horizon > 0 && horizon.saturating_mul(2) < total {
            let hint =
                if spec.schedule_unit == ScheduleUnit::Step && horizon <= u64::from(spec.epochs) {
                    format!(" (did you mean \"schedule_unit\": \"{other_unit}\"?)")
                } else {
                    String::new()
                };
            warnings.push(Warning::new(
                WarningCode::ScheduleEndsEarly,
                Some("schedule".to_string()),
                format!(
                    "the schedule stops changing after {unit} {horizon} of {total}: the rest of the job runs at a fixed rate of {}{hint}",
                    schedule.lr(horizon)
                ),
            ));
        }
    }

    if schedule.lr(0) == 0.0 {
        warnings.push(Warning::new(
            WarningCode::ZeroRateAtStart,
            Some("schedule".to_string()),
            format!("the rate at {unit} 0 is 0: that {unit} trains nothing"),
        ));
    }

    let effective = peak / (1.0 - spec.optimizer.momentum);
    if effective > DIVERGENCE_RATE {
        let momentum_note = if spec.optimizer.momentum > 0.0 {
            format!(
                " (with momentum {}, an effective rate of {effective:.3})",
                spec.optimizer.momentum
            )
        } else {
            String::new()
        };
        warnings.push(Warning::new(
            WarningCode::RateLikelyDiverges,
            Some("schedule".to_string()),
            format!(
                "the rate reaches {peak} at {unit} {peak_step}{momentum_note}; this LeNet usually diverges under SGD above {DIVERGENCE_RATE}"
            ),
        ));
    }
    warnings
}

/// The highest rate over steps `0..total` and where it is, scanning at most
/// [`SCAN_POINTS`] evenly spaced steps (enough for every closed-form kind).
fn peak_rate(schedule: &Schedule, total: u64) -> (u64, f64) {
    let total = total.max(1);
    let stride = total.div_ceil(SCAN_POINTS).max(1);
    (0..total)
        .step_by(usize::try_from(stride).unwrap_or(usize::MAX))
        .map(|t| (t, schedule.lr(t)))
        .fold((0, f64::MIN), |best, candidate| {
            if candidate.1 > best.1 {
                candidate
            } else {
                best
            }
        })
}
