//! Warnings for sweeps that will run, but whose early stopping probably
//! does not judge what its author means it to.
//!
//! - `grace_period_shorter_than_warmup`: the first judgement (ASHA's first
//!   rung, or the median rule's first epoch after `warmup_epochs`) comes
//!   while a config is still warming up. Its rate is still rising there, so
//!   it looks worse than configs at full rate and is stopped for the
//!   warm-up it was asked to do — exactly what a warm-up sweep measures.
//! - `schedule_depends_on_epochs`: the rule compares configs at early
//!   epochs, which predicts the final ranking only where a run's start does
//!   not depend on its length. lrlab's specs are absolute, so an early-stopped
//!   member ran exactly the prefix of its own full run; what goes wrong is
//!   the *comparison*. Two cases are flagged:
//!   (a) the configs run different numbers of epochs: configs that differ
//!   only in length are identical on common seeds at every early epoch, so
//!   early stopping cannot tell them apart and picks by tie order, and
//!   schedules stretched to different lengths sit at different points of
//!   their curves;
//!   (b) a config's schedule ends exactly where its job ends (a `max_steps`,
//!   `total_steps`, last milestone, … equal to the job's epochs, or updates
//!   in the `step` unit): the curve is fitted to the run, so at the early
//!   epochs its rate is still high and its decay — where such schedules win
//!   — is still to come. Early stopping then favours schedules that decay
//!   sooner. A length equal to the job's is taken as the sign of a fitted
//!   schedule: it is almost never a coincidence.

use serde_json::Value;

use super::path::overlaps;
use super::plan::{ConfigOrigin, SweepConfig, SweepPlan};
use super::stopping::StoppingParams;
use crate::job::{Warning, WarningCode};
use crate::schedule::{Schedule, ScheduleSpec};

/// The job request's default batch size (for step-unit schedules).
pub(crate) const DEFAULT_BATCH_SIZE: u64 = 256;

/// A sweep's warnings have the shape (and share the code list) of a job's.
pub type SweepWarning = Warning;

fn warning(code: WarningCode, path: impl Into<String>, message: String) -> Warning {
    Warning::new(code, Some(path.into()), message)
}

/// Every warning that applies to `plan`, for a training split of
/// `train_len` examples (Fashion-MNIST: 60,000; cut by `train_limit`).
pub fn sweep_warnings(plan: &SweepPlan, train_len: u64) -> Vec<SweepWarning> {
    let Some(rule) = plan.early_stopping else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    warnings.extend(warmup_warning(plan, &rule, train_len));
    warnings.extend(length_warnings(plan, &rule, train_len));
    warnings
}

/// A config's schedule, its unit and its updates per epoch.
struct Shape {
    schedule: ScheduleSpec,
    step_unit: bool,
    steps_per_epoch: u64,
}

fn shape(config: &SweepConfig, train_len: u64) -> Option<Shape> {
    let job = &config.job;
    let schedule = ScheduleSpec::from_json(job.get("schedule")?).ok()?;
    let step_unit = job.get("schedule_unit").and_then(Value::as_str) == Some("step");
    let batch = job
        .get("batch_size")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_BATCH_SIZE)
        .max(1);
    let used = job
        .get("train_limit")
        .and_then(Value::as_u64)
        .map_or(train_len, |limit| limit.min(train_len));
    Some(Shape {
        schedule,
        step_unit,
        steps_per_epoch: used.div_ceil(batch).max(1),
    })
}

impl Shape {
    /// Schedule steps → epochs, rounding up (a warm-up that ends inside an
    /// epoch is not over before that epoch ends).
    fn epochs_of(&self, steps: u64) -> u64 {
        if self.step_unit {
            steps.div_ceil(self.steps_per_epoch)
        } else {
            steps
        }
    }
}

/// Steps of rising rate at the start of a schedule, in its own unit.
fn warmup_steps(spec: &ScheduleSpec) -> u64 {
    match spec {
        ScheduleSpec::Cosine(s) => s.warmup_steps,
        ScheduleSpec::Warmup(s) => s.steps.saturating_add(warmup_steps(&s.then)),
        ScheduleSpec::Linear(s) if s.end_lr > s.start_lr => s.steps,
        ScheduleSpec::OneCycle(s) => (s.pct_start * s.total_steps as f64).round() as u64,
        ScheduleSpec::Sequential(s) => s.phases.first().map_or(0, |phase| {
            let inner = warmup_steps(&phase.schedule);
            phase.steps.map_or(inner, |steps| inner.min(steps))
        }),
        _ => 0,
    }
}

fn warmup_warning(plan: &SweepPlan, rule: &StoppingParams, train_len: u64) -> Option<SweepWarning> {
    // The first epoch judged; after e epochs a warm-up of w epochs is over iff e ≥ w.
    let (first_judged, path, what) = match rule {
        StoppingParams::Asha(p) => (
            p.grace_period,
            "early_stopping.grace_period",
            format!("the first rung (epoch {})", p.grace_period),
        ),
        StoppingParams::Median(p) => (
            p.warmup_epochs + 1,
            "early_stopping.warmup_epochs",
            format!("the first judgement (epoch {})", p.warmup_epochs + 1),
        ),
    };
    let mut hit: Vec<(String, u64)> = Vec::new();
    for config in &plan.configs {
        let Some(shape) = shape(config, train_len) else {
            continue;
        };
        let warmup = shape.epochs_of(warmup_steps(&shape.schedule));
        if u64::from(first_judged) < warmup && first_judged < config.epochs {
            hit.push((config.name.clone(), warmup));
        }
    }
    let longest = hit.iter().map(|(_, w)| *w).max()?;
    let list = hit
        .iter()
        .map(|(name, w)| format!("{name} ({w} epochs)"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(warning(
        WarningCode::GracePeriodShorterThanWarmup,
        path,
        format!(
            "{what} comes before the warm-up of {} config(s) ends: {list}. They are judged while their rate is still rising and may be stopped for the warm-up itself; judge from epoch {longest} on to compare them at full rate",
            hit.len()
        ),
    ))
}

fn length_warnings(plan: &SweepPlan, rule: &StoppingParams, train_len: u64) -> Vec<SweepWarning> {
    let judged = match rule {
        StoppingParams::Asha(p) => format!(
            "at the rungs ({})",
            p.rungs()
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        StoppingParams::Median(p) => format!("from epoch {} on", p.warmup_epochs + 1),
    };
    let mut warnings = Vec::new();
    let shortest = plan.configs.iter().map(|c| c.epochs).min();
    let longest = plan.configs.iter().map(|c| c.epochs).max();
    if let (Some(shortest), Some(longest)) = (shortest, longest) {
        if shortest != longest {
            warnings.push(warning(
                WarningCode::ScheduleDependsOnEpochs,
                sweep_path(plan, "epochs"),
                format!(
                    "the configs run from {shortest} to {longest} epochs, and early stopping compares them {judged}: configs that differ only in length are identical there on common seeds, and schedules stretched to different lengths sit at different points of their curves"
                ),
            ));
        }
    }
    // (sweep path, job path, length, unit, configs)
    let mut fitted: Vec<(String, String, u64, &str, Vec<&str>)> = Vec::new();
    for config in &plan.configs {
        let Some(shape) = shape(config, train_len) else {
            continue;
        };
        let Ok(schedule) = Schedule::new(shape.schedule.clone()) else {
            continue;
        };
        let Some((field, length)) = schedule.max_step_reference() else {
            continue;
        };
        let epochs = u64::from(config.epochs);
        let (job_length, unit) = if shape.step_unit {
            (shape.steps_per_epoch.saturating_mul(epochs), "updates")
        } else {
            (epochs, "epochs")
        };
        if length != job_length {
            continue;
        }
        let job_path = format!("schedule.{field}");
        let at = config_path(config, &job_path);
        match fitted.iter_mut().find(|f| f.0 == at) {
            Some(entry) => entry.4.push(&config.name),
            None => fitted.push((at, job_path, length, unit, vec![&config.name])),
        }
    }
    for (at, job_path, length, unit, configs) in fitted {
        warnings.push(warning(
            WarningCode::ScheduleDependsOnEpochs,
            at,
            format!(
                "{job_path} ({length}) equals the job's length ({length} {unit}) in {}: the schedule is fitted to the run, so {judged} its rate is still high and its decay is still to come; early stopping will favour schedules that decay sooner",
                configs.join(", ")
            ),
        ));
    }
    warnings
}

/// The sweep field that sets `job_path` in `config`: a grid path, a variant's field, or the base's.
fn config_path(config: &SweepConfig, job_path: &str) -> String {
    let touched = config
        .overrides
        .iter()
        .map(|(path, _)| path)
        .filter(|path| overlaps(job_path, path))
        .max_by_key(|path| path.len());
    match (touched, &config.origin) {
        (Some(path), ConfigOrigin::Grid { .. }) => format!("grid.{path}"),
        (Some(_), ConfigOrigin::Variant { index }) => format!("variants[{index}].{job_path}"),
        _ => format!("base.{job_path}"),
    }
}

/// The first sweep field that sets `job_path` in any config, else the base's.
fn sweep_path(plan: &SweepPlan, job_path: &str) -> String {
    plan.configs
        .iter()
        .map(|c| config_path(c, job_path))
        .find(|p| !p.starts_with("base."))
        .unwrap_or_else(|| format!("base.{job_path}"))
}
