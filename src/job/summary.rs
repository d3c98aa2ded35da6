//! One-line summaries of a schedule and a job, for legends and lists.
//!
//! The same words as the dashboard's `scheduleSummary` (web/js/dom.js), so a chart image
//! and the page it came from label a job alike: `cosine 0.3→0.01 over 20, warm-up 5`.

use super::JobSpec;
use crate::schedule::ScheduleSpec;
use crate::train::ScheduleUnit;

/// A number as the dashboard writes it: 4 significant digits, or the exponent form with 2
/// decimals below 1e-3 and from 1e5 on.
fn num(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    if !value.is_finite() {
        return value.to_string();
    }
    let abs = value.abs();
    if !(1e-3..1e5).contains(&abs) {
        return format!("{value:.2e}");
    }
    // Round to 4 significant digits, then print the shortest form of that value.
    let rounded: f64 = format!("{value:.3e}").parse().unwrap_or(value);
    rounded.to_string()
}

/// A one-line summary of a schedule, nested schedules included.
pub fn schedule_summary(spec: &ScheduleSpec) -> String {
    match spec {
        ScheduleSpec::Constant(s) => format!("constant {}", num(s.lr)),
        ScheduleSpec::InversePower(s) => {
            format!("inverse_power {}·(t+1)^−{}", num(s.lr), num(s.power))
        }
        ScheduleSpec::Factor(s) => {
            let min = if s.min_lr != 0.0 {
                format!(", min {}", num(s.min_lr))
            } else {
                String::new()
            };
            format!("factor {} ×{}/step{min}", num(s.lr), num(s.factor))
        }
        ScheduleSpec::Step(s) => format!(
            "step {} ×{} every {}",
            num(s.lr),
            num(s.factor),
            s.step_size
        ),
        ScheduleSpec::MultiFactor(s) => {
            let milestones: Vec<String> = s.milestones.iter().map(u64::to_string).collect();
            format!(
                "multi_factor {} ×{} at {}",
                num(s.lr),
                num(s.factor),
                milestones.join(",")
            )
        }
        ScheduleSpec::Cosine(s) => {
            let warmup = if s.warmup_steps > 0 {
                format!(", warm-up {}", s.warmup_steps)
            } else {
                String::new()
            };
            format!(
                "cosine {}→{} over {}{warmup}",
                num(s.lr),
                num(s.final_lr),
                s.max_steps
            )
        }
        ScheduleSpec::Polynomial(s) => format!(
            "polynomial {}→{} over {}, power {}",
            num(s.lr),
            num(s.final_lr),
            s.max_steps,
            num(s.power)
        ),
        ScheduleSpec::Linear(s) => format!(
            "linear {}→{} over {}",
            num(s.start_lr),
            num(s.end_lr),
            s.steps
        ),
        ScheduleSpec::CosineRestarts(s) => {
            let mult = if s.period_mult > 1 {
                format!(" ×{}", s.period_mult)
            } else {
                String::new()
            };
            format!(
                "cosine_restarts {}→{}, period {}{mult}",
                num(s.lr),
                num(s.final_lr),
                s.period
            )
        }
        ScheduleSpec::Cyclic(s) => {
            let mode = serde_json::to_value(s.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!(
                "cyclic {}↔{}, up {} ({mode})",
                num(s.base_lr),
                num(s.max_lr),
                s.step_size_up
            )
        }
        ScheduleSpec::OneCycle(s) => {
            format!("one_cycle max {} over {}", num(s.max_lr), s.total_steps)
        }
        ScheduleSpec::Warmup(s) => {
            format!("warm-up {} → {}", s.steps, schedule_summary(&s.then))
        }
        ScheduleSpec::Sequential(s) => s
            .phases
            .iter()
            .map(|phase| match phase.steps {
                Some(steps) => format!("{steps}× {}", schedule_summary(&phase.schedule)),
                None => schedule_summary(&phase.schedule),
            })
            .collect::<Vec<_>>()
            .join(" ▸ "),
        ScheduleSpec::ReduceOnPlateau(s) => format!(
            "reduce_on_plateau {} ×{}, patience {}",
            num(s.lr),
            num(s.factor),
            s.patience
        ),
    }
}

/// A job's schedule summary, marked `(per update)` when its schedule counts updates.
pub fn job_summary(spec: &JobSpec) -> String {
    let unit = match spec.schedule_unit {
        ScheduleUnit::Step => " (per update)",
        ScheduleUnit::Epoch => "",
    };
    format!("{}{unit}", schedule_summary(&spec.schedule))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn summary(value: serde_json::Value) -> String {
        schedule_summary(&ScheduleSpec::from_json(&value).unwrap())
    }

    #[test]
    fn summaries_read_like_the_dashboards() {
        for (spec, expected) in [
            (json!({"kind": "constant", "lr": 0.3}), "constant 0.3"),
            (
                json!({"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20, "warmup_steps": 5}),
                "cosine 0.3→0.01 over 20, warm-up 5",
            ),
            (
                json!({"kind": "inverse_power", "lr": 0.1}),
                "inverse_power 0.1·(t+1)^−0.5",
            ),
            (
                json!({"kind": "factor", "lr": 2.0, "factor": 0.9, "min_lr": 0.01}),
                "factor 2 ×0.9/step, min 0.01",
            ),
            (
                json!({"kind": "multi_factor", "lr": 0.5, "milestones": [15, 30], "factor": 0.5}),
                "multi_factor 0.5 ×0.5 at 15,30",
            ),
            (
                json!({"kind": "warmup", "steps": 3, "then": {"kind": "constant", "lr": 0.123456}}),
                "warm-up 3 → constant 0.1235",
            ),
            (
                json!({"kind": "sequential", "phases": [
                    {"steps": 2, "schedule": {"kind": "constant", "lr": 0.0001}},
                    {"schedule": {"kind": "constant", "lr": 250000}}]}),
                "2× constant 1.00e-4 ▸ constant 2.50e5",
            ),
            (
                json!({"kind": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4}),
                "cyclic 0.01↔0.1, up 4 (triangular)",
            ),
        ] {
            assert_eq!(summary(spec), expected);
        }
    }
}
