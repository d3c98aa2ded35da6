//! The value rules of a schedule spec, each error naming its field.

use super::error::{join, FieldCode, SpecError};
use super::limits::{MAX_DEPTH, MAX_MILESTONES, MAX_PHASES};
use super::one_cycle::OneCyclePhases;
use super::spec::ScheduleSpec;

/// State carried through one validation walk.
#[derive(Default)]
struct Walk {
    phases: usize,
    milestones: usize,
    /// Path of the first `reduce_on_plateau` seen.
    plateau: Option<String>,
}

impl ScheduleSpec {
    /// Checks every rule of the spec: rates finite and ≥ 0, factors finite
    /// and > 0, step counts ≥ 1, fractions strictly between 0 and 1,
    /// milestones strictly increasing, the size limits, and at most one
    /// adaptive (`reduce_on_plateau`) node. The first broken rule is returned
    /// with the path of its field.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_node(self, "", 1, &mut Walk::default())
    }
}

fn validate_node(
    spec: &ScheduleSpec,
    path: &str,
    depth: usize,
    walk: &mut Walk,
) -> Result<(), SpecError> {
    if depth > MAX_DEPTH {
        return Err(SpecError::new(
            FieldCode::TooDeep,
            path,
            format!("schedules may be nested at most {MAX_DEPTH} deep (warmup/sequential)"),
        ));
    }
    let f = |name: &str| join(path, name);
    match spec {
        ScheduleSpec::Constant(s) => rate(s.lr, &f("lr")),
        ScheduleSpec::InversePower(s) => {
            rate(s.lr, &f("lr"))?;
            non_negative(s.power, &f("power"))
        }
        ScheduleSpec::Factor(s) => {
            rate(s.lr, &f("lr"))?;
            factor(s.factor, &f("factor"))?;
            rate(s.min_lr, &f("min_lr"))
        }
        ScheduleSpec::Step(s) => {
            rate(s.lr, &f("lr"))?;
            count(s.step_size, &f("step_size"))?;
            factor(s.factor, &f("factor"))
        }
        ScheduleSpec::MultiFactor(s) => {
            rate(s.lr, &f("lr"))?;
            walk.milestones += s.milestones.len();
            if walk.milestones > MAX_MILESTONES {
                return Err(SpecError::new(
                    FieldCode::TooLarge,
                    f("milestones"),
                    format!("a spec may list at most {MAX_MILESTONES} milestones in total"),
                ));
            }
            if let Some(i) = s.milestones.windows(2).position(|w| w[1] <= w[0]) {
                return Err(SpecError::new(
                    FieldCode::NotIncreasing,
                    format!("{}[{}]", f("milestones"), i + 1),
                    format!(
                        "`milestones` must be strictly increasing, but milestone {} follows {}",
                        s.milestones[i + 1],
                        s.milestones[i]
                    ),
                ));
            }
            factor(s.factor, &f("factor"))
        }
        ScheduleSpec::Cosine(s) => {
            rate(s.lr, &f("lr"))?;
            rate(s.final_lr, &f("final_lr"))?;
            count(s.max_steps, &f("max_steps"))?;
            if s.warmup_steps >= s.max_steps {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    f("warmup_steps"),
                    format!(
                        "`warmup_steps` ({}) must be less than `max_steps` ({})",
                        s.warmup_steps, s.max_steps
                    ),
                ));
            }
            rate(s.warmup_begin_lr, &f("warmup_begin_lr"))
        }
        ScheduleSpec::Polynomial(s) => {
            rate(s.lr, &f("lr"))?;
            rate(s.final_lr, &f("final_lr"))?;
            count(s.max_steps, &f("max_steps"))?;
            positive(s.power, &f("power"))
        }
        ScheduleSpec::Linear(s) => {
            rate(s.start_lr, &f("start_lr"))?;
            rate(s.end_lr, &f("end_lr"))?;
            count(s.steps, &f("steps"))
        }
        ScheduleSpec::CosineRestarts(s) => {
            rate(s.lr, &f("lr"))?;
            rate(s.final_lr, &f("final_lr"))?;
            count(s.period, &f("period"))?;
            if s.period_mult < 1 {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    f("period_mult"),
                    "`period_mult` must be an integer >= 1",
                ));
            }
            Ok(())
        }
        ScheduleSpec::Cyclic(s) => {
            rate(s.base_lr, &f("base_lr"))?;
            rate(s.max_lr, &f("max_lr"))?;
            if s.max_lr < s.base_lr {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    f("max_lr"),
                    format!(
                        "`max_lr` ({}) must be >= `base_lr` ({})",
                        s.max_lr, s.base_lr
                    ),
                ));
            }
            count(s.step_size_up, &f("step_size_up"))?;
            count(s.step_size_down, &f("step_size_down"))?;
            if s.step_size_up.checked_add(s.step_size_down).is_none() {
                return Err(SpecError::new(
                    FieldCode::TooLarge,
                    f("step_size_down"),
                    "`step_size_up + step_size_down` must fit in 64 bits",
                ));
            }
            factor(s.gamma, &f("gamma"))
        }
        ScheduleSpec::OneCycle(s) => {
            rate(s.max_lr, &f("max_lr"))?;
            count(s.total_steps, &f("total_steps"))?;
            if !(s.pct_start > 0.0 && s.pct_start < 1.0) {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    f("pct_start"),
                    format!(
                        "`pct_start` must lie strictly between 0 and 1, got {}",
                        s.pct_start
                    ),
                ));
            }
            factor(s.div_factor, &f("div_factor"))?;
            factor(s.final_div_factor, &f("final_div_factor"))?;
            let initial = s.max_lr / s.div_factor;
            if !initial.is_finite() {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    f("div_factor"),
                    "`max_lr / div_factor` must be a finite number",
                ));
            }
            if !(initial / s.final_div_factor).is_finite() {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    f("final_div_factor"),
                    "`max_lr / div_factor / final_div_factor` must be a finite number",
                ));
            }
            OneCyclePhases::check_lengths(s.total_steps, s.pct_start, s.three_phase)
                .map_err(|message| SpecError::new(FieldCode::OutOfRange, f("pct_start"), message))
        }
        ScheduleSpec::Warmup(s) => {
            count(s.steps, &f("steps"))?;
            rate(s.begin_lr, &f("begin_lr"))?;
            validate_node(&s.then, &f("then"), depth + 1, walk)
        }
        ScheduleSpec::Sequential(s) => {
            let phases_path = f("phases");
            if s.phases.is_empty() {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    phases_path,
                    "`phases` must list at least one phase",
                ));
            }
            walk.phases += s.phases.len();
            if walk.phases > MAX_PHASES {
                return Err(SpecError::new(
                    FieldCode::TooLarge,
                    phases_path,
                    format!("a spec may have at most {MAX_PHASES} sequential phases in total"),
                ));
            }
            let last = s.phases.len() - 1;
            let mut total: u64 = 0;
            for (i, phase) in s.phases.iter().enumerate() {
                let phase_path = format!("{phases_path}[{i}]");
                let steps_path = join(&phase_path, "steps");
                match phase.steps {
                    None if i < last => {
                        return Err(SpecError::new(
                            FieldCode::MissingField,
                            steps_path,
                            "missing field `steps` (required on every phase but the last)",
                        ))
                    }
                    None => {}
                    Some(steps) => {
                        count(steps, &steps_path)?;
                        total = total.checked_add(steps).ok_or_else(|| {
                            SpecError::new(
                                FieldCode::TooLarge,
                                steps_path.clone(),
                                "the phases' `steps` add up to more than 64 bits can hold",
                            )
                        })?;
                    }
                }
                validate_node(
                    &phase.schedule,
                    &join(&phase_path, "schedule"),
                    depth + 1,
                    walk,
                )?;
            }
            Ok(())
        }
        ScheduleSpec::ReduceOnPlateau(s) => {
            if let Some(first) = &walk.plateau {
                let first = if first.is_empty() {
                    "the root"
                } else {
                    first.as_str()
                };
                return Err(SpecError::new(
                    FieldCode::InvalidValue,
                    path,
                    format!("a spec may contain only one `reduce_on_plateau` schedule (the first is at {first})"),
                ));
            }
            walk.plateau = Some(path.to_owned());
            rate(s.lr, &f("lr"))?;
            if !(s.factor > 0.0 && s.factor < 1.0) {
                return Err(SpecError::new(
                    FieldCode::OutOfRange,
                    f("factor"),
                    format!(
                        "`factor` must lie strictly between 0 and 1, got {}",
                        s.factor
                    ),
                ));
            }
            non_negative(s.threshold, &f("threshold"))?;
            rate(s.min_lr, &f("min_lr"))
        }
    }
}

fn field_name(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A learning rate: finite and ≥ 0.
fn rate(value: f64, path: &str) -> Result<(), SpecError> {
    non_negative(value, path)
}

fn non_negative(value: f64, path: &str) -> Result<(), SpecError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(SpecError::new(
            FieldCode::OutOfRange,
            path,
            format!(
                "`{}` must be a finite number >= 0, got {value}",
                field_name(path)
            ),
        ))
    }
}

fn positive(value: f64, path: &str) -> Result<(), SpecError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(SpecError::new(
            FieldCode::OutOfRange,
            path,
            format!(
                "`{}` must be a finite number > 0, got {value}",
                field_name(path)
            ),
        ))
    }
}

/// A multiplicative factor: finite and > 0.
fn factor(value: f64, path: &str) -> Result<(), SpecError> {
    positive(value, path)
}

/// A step count: an integer ≥ 1.
fn count(value: u64, path: &str) -> Result<(), SpecError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(SpecError::new(
            FieldCode::OutOfRange,
            path,
            format!("`{}` must be an integer >= 1", field_name(path)),
        ))
    }
}
