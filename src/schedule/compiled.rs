//! [`Schedule`]: a validated spec compiled for fast evaluation.

use serde_json::Value;

use super::error::{join, SpecError};
use super::formulas::{self, saturate};
use super::one_cycle::OneCyclePhases;
use super::spec::{
    Cosine, CosineRestarts, Cyclic, Factor, InversePower, Linear, MultiFactor, Polynomial,
    ReduceOnPlateau, ScheduleSpec, Step, WarmupMode,
};

/// A validated schedule that maps a step index to a learning rate.
///
/// Built once from a [`ScheduleSpec`] (which is validated on the way in) and
/// then evaluated at any step in O(1) (O(log n) for milestone and phase
/// lookups): the trainer calls [`Schedule::lr`] per step, the preview API
/// calls [`Schedule::preview`]. Every rate is finite and ≥ 0; a growing
/// schedule saturates at `f64::MAX`.
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: ScheduleSpec,
    root: Node,
}

/// The compiled form of one spec node.
#[derive(Debug, Clone)]
enum Node {
    Leaf(Leaf),
    OneCycle(OneCyclePhases),
    Warmup {
        steps: u64,
        begin_lr: f64,
        mode: WarmupMode,
        then: Box<Node>,
    },
    Sequential {
        /// First step of each phase; `starts[0] == 0`.
        starts: Vec<u64>,
        phases: Vec<Node>,
    },
    Plateau(ReduceOnPlateau),
}

/// The kinds whose closed form needs nothing precomputed.
#[derive(Debug, Clone)]
enum Leaf {
    Constant(f64),
    InversePower(InversePower),
    Factor(Factor),
    Step(Step),
    MultiFactor(MultiFactor),
    Cosine(Cosine),
    Polynomial(Polynomial),
    Linear(Linear),
    CosineRestarts(CosineRestarts),
    Cyclic(Cyclic),
}

impl Node {
    fn compile(spec: &ScheduleSpec) -> Node {
        match spec {
            ScheduleSpec::Constant(s) => Node::Leaf(Leaf::Constant(s.lr)),
            ScheduleSpec::InversePower(s) => Node::Leaf(Leaf::InversePower(s.clone())),
            ScheduleSpec::Factor(s) => Node::Leaf(Leaf::Factor(s.clone())),
            ScheduleSpec::Step(s) => Node::Leaf(Leaf::Step(s.clone())),
            ScheduleSpec::MultiFactor(s) => Node::Leaf(Leaf::MultiFactor(s.clone())),
            ScheduleSpec::Cosine(s) => Node::Leaf(Leaf::Cosine(s.clone())),
            ScheduleSpec::Polynomial(s) => Node::Leaf(Leaf::Polynomial(s.clone())),
            ScheduleSpec::Linear(s) => Node::Leaf(Leaf::Linear(s.clone())),
            ScheduleSpec::CosineRestarts(s) => Node::Leaf(Leaf::CosineRestarts(s.clone())),
            ScheduleSpec::Cyclic(s) => Node::Leaf(Leaf::Cyclic(s.clone())),
            ScheduleSpec::OneCycle(s) => Node::OneCycle(OneCyclePhases::new(s)),
            ScheduleSpec::Warmup(s) => Node::Warmup {
                steps: s.steps,
                begin_lr: s.begin_lr,
                mode: s.mode,
                then: Box::new(Node::compile(&s.then)),
            },
            ScheduleSpec::Sequential(s) => {
                let mut starts = Vec::with_capacity(s.phases.len());
                let mut next = 0u64;
                for phase in &s.phases {
                    starts.push(next);
                    // Validation guarantees the sum fits; saturate rather than panic.
                    next = next.saturating_add(phase.steps.unwrap_or(0));
                }
                Node::Sequential {
                    starts,
                    phases: s
                        .phases
                        .iter()
                        .map(|p| Node::compile(&p.schedule))
                        .collect(),
                }
            }
            ScheduleSpec::ReduceOnPlateau(s) => Node::Plateau(s.clone()),
        }
    }

    /// The rate at step `t`; an adaptive node gives `plateau_lr` if set, else
    /// its initial `lr`.
    fn lr(&self, t: u64, plateau_lr: Option<f64>) -> f64 {
        match self {
            Node::Leaf(leaf) => leaf.lr(t),
            Node::OneCycle(phases) => saturate(phases.lr(t)),
            Node::Warmup {
                steps,
                begin_lr,
                mode,
                then,
            } => {
                if t >= *steps {
                    return then.lr(t - steps, plateau_lr);
                }
                match mode {
                    WarmupMode::Constant => *begin_lr,
                    WarmupMode::Linear => {
                        let target = then.lr(0, plateau_lr);
                        saturate(begin_lr + (target - begin_lr) * (t as f64 / *steps as f64))
                    }
                }
            }
            Node::Sequential { starts, phases } => {
                // `starts[0] == 0`, so at least one phase has started.
                let k = starts.partition_point(|&s| s <= t).saturating_sub(1);
                phases[k].lr(t - starts[k], plateau_lr)
            }
            Node::Plateau(s) => plateau_lr.unwrap_or(s.lr),
        }
    }

    fn horizon(&self) -> Option<u64> {
        match self {
            Node::Leaf(leaf) => leaf.horizon(),
            Node::OneCycle(phases) => Some(phases.total_steps().saturating_sub(1)),
            Node::Warmup { steps, then, .. } => then.horizon().map(|h| h.saturating_add(*steps)),
            Node::Sequential { starts, phases } => {
                let (start, last) = starts.last().zip(phases.last())?;
                last.horizon().map(|h| h.saturating_add(*start))
            }
            Node::Plateau(_) => None,
        }
    }
}

impl Leaf {
    fn lr(&self, t: u64) -> f64 {
        match self {
            Leaf::Constant(lr) => *lr,
            Leaf::InversePower(s) => formulas::inverse_power(s, t),
            Leaf::Factor(s) => formulas::factor(s, t),
            Leaf::Step(s) => formulas::step(s, t),
            Leaf::MultiFactor(s) => formulas::multi_factor(s, t),
            Leaf::Cosine(s) => formulas::cosine(s, t),
            Leaf::Polynomial(s) => formulas::polynomial(s, t),
            Leaf::Linear(s) => formulas::linear(s, t),
            Leaf::CosineRestarts(s) => formulas::cosine_restarts(s, t),
            Leaf::Cyclic(s) => formulas::cyclic(s, t),
        }
    }

    /// Best-effort step from which the rate stays constant.
    fn horizon(&self) -> Option<u64> {
        match self {
            Leaf::Constant(_) => Some(0),
            Leaf::InversePower(s) => (s.lr == 0.0 || s.power == 0.0).then_some(0),
            Leaf::Factor(s) => factor_horizon(s),
            Leaf::Step(s) => (s.lr == 0.0 || s.factor == 1.0).then_some(0),
            Leaf::MultiFactor(s) => {
                if s.lr == 0.0 || s.factor == 1.0 {
                    Some(0)
                } else {
                    Some(s.milestones.last().copied().unwrap_or(0))
                }
            }
            Leaf::Cosine(s) => Some(s.max_steps),
            Leaf::Polynomial(s) => Some(s.max_steps),
            Leaf::Linear(s) => Some(s.steps),
            Leaf::CosineRestarts(s) => (s.lr == s.final_lr).then_some(0),
            Leaf::Cyclic(s) => (s.base_lr == s.max_lr).then_some(0),
        }
    }
}

/// A decaying factor schedule settles where `lr·factor^t` first reaches
/// `min_lr`; without a positive `min_lr` it only underflows, which does not
/// count as settling.
fn factor_horizon(s: &Factor) -> Option<u64> {
    if s.lr == 0.0 || s.factor == 1.0 {
        return Some(0);
    }
    if s.factor > 1.0 || s.min_lr == 0.0 {
        return None;
    }
    if s.min_lr >= s.lr {
        return Some(0);
    }
    let at_floor = |t: u64| formulas::factor(s, t) <= s.min_lr;
    let estimate = ((s.min_lr / s.lr).ln() / s.factor.ln()).ceil();
    // `as` saturates for huge or non-finite estimates, which is what we want.
    let mut h = estimate.max(0.0) as u64;
    // The logarithm is within an ulp or two of the truth; nudge to the exact step.
    for _ in 0..4 {
        if h > 0 && at_floor(h - 1) {
            h -= 1;
        } else if !at_floor(h) {
            h = h.saturating_add(1);
        }
    }
    Some(h)
}

impl Schedule {
    /// Validates `spec` and compiles it.
    pub fn new(spec: ScheduleSpec) -> Result<Schedule, SpecError> {
        spec.validate()?;
        let root = Node::compile(&spec);
        Ok(Schedule { spec, root })
    }

    /// Parses untrusted JSON (see [`ScheduleSpec::from_json`]) and validates it.
    pub fn from_json(value: &Value) -> Result<Schedule, SpecError> {
        Schedule::new(ScheduleSpec::from_json(value)?)
    }

    /// The normalized spec (every default explicit) this schedule was built from.
    pub fn spec(&self) -> &ScheduleSpec {
        &self.spec
    }

    /// Whether the schedule contains a `reduce_on_plateau` node, whose rate
    /// depends on metrics observed during training (see [`Scheduler`](super::Scheduler)).
    pub fn is_adaptive(&self) -> bool {
        self.plateau().is_some()
    }

    /// The adaptive node, if any (validation allows at most one).
    pub(crate) fn plateau(&self) -> Option<&ReduceOnPlateau> {
        fn find(node: &Node) -> Option<&ReduceOnPlateau> {
            match node {
                Node::Plateau(s) => Some(s),
                Node::Warmup { then, .. } => find(then),
                Node::Sequential { phases, .. } => phases.iter().find_map(find),
                Node::Leaf(_) | Node::OneCycle(_) => None,
            }
        }
        find(&self.root)
    }

    /// The rate at step `t`. An adaptive node evaluates to its initial `lr`,
    /// which is also what a preview shows for it.
    pub fn lr(&self, t: u64) -> f64 {
        self.root.lr(t, None)
    }

    /// The rate with the adaptive node (if any) at `plateau_lr`.
    pub(crate) fn lr_with(&self, t: u64, plateau_lr: Option<f64>) -> f64 {
        self.root.lr(t, plateau_lr)
    }

    /// The rates of steps `0..steps`. Allocates `steps` values: callers that
    /// take `steps` from users must bound it (the API allows 1,000,000).
    pub fn preview(&self, steps: usize) -> Vec<f64> {
        (0..steps as u64).map(|t| self.root.lr(t, None)).collect()
    }

    /// Best effort: a step `h` such that `lr(t) == lr(h)` for every `t ≥ h`,
    /// or `None` when the rate never settles (cyclic, restarts, inverse power,
    /// a factor decay without a positive `min_lr`, adaptive schedules).
    /// It is not always the *earliest* such step (a cosine reports its
    /// `max_steps` even if `lr == final_lr`). Used to warn when a schedule
    /// ends long before the job does.
    pub fn horizon(&self) -> Option<u64> {
        self.root.horizon()
    }

    /// The largest step count the spec names — `max_steps`, `steps`,
    /// `total_steps`, a milestone, a period or step size, a warm-up end, a
    /// phase end — as `(field path, step)`. The step is in the root's frame:
    /// a warm-up's length and earlier phases are added, so for a 5-step
    /// warm-up around a 100-step cosine this is `("then.max_steps", 105)`.
    /// `None` when the spec names no step count. Used to warn when the
    /// schedule's length does not fit the job's.
    pub fn max_step_reference(&self) -> Option<(String, u64)> {
        max_reference(&self.spec, "", 0)
    }
}

fn max_reference(spec: &ScheduleSpec, path: &str, offset: u64) -> Option<(String, u64)> {
    let at = |field: &str, value: u64| Some((join(path, field), offset.saturating_add(value)));
    match spec {
        ScheduleSpec::Constant(_)
        | ScheduleSpec::InversePower(_)
        | ScheduleSpec::Factor(_)
        | ScheduleSpec::ReduceOnPlateau(_) => None,
        ScheduleSpec::Step(s) => at("step_size", s.step_size),
        ScheduleSpec::MultiFactor(s) => {
            let last = s.milestones.len().checked_sub(1)?;
            at(&format!("milestones[{last}]"), s.milestones[last])
        }
        ScheduleSpec::Cosine(s) => at("max_steps", s.max_steps),
        ScheduleSpec::Polynomial(s) => at("max_steps", s.max_steps),
        ScheduleSpec::Linear(s) => at("steps", s.steps),
        ScheduleSpec::CosineRestarts(s) => at("period", s.period),
        ScheduleSpec::Cyclic(s) => {
            if s.step_size_down > s.step_size_up {
                at("step_size_down", s.step_size_down)
            } else {
                at("step_size_up", s.step_size_up)
            }
        }
        ScheduleSpec::OneCycle(s) => at("total_steps", s.total_steps),
        ScheduleSpec::Warmup(s) => {
            let own = at("steps", s.steps);
            let inner = max_reference(&s.then, &join(path, "then"), offset.saturating_add(s.steps));
            larger(own, inner)
        }
        ScheduleSpec::Sequential(s) => {
            let mut best = None;
            let mut start = offset;
            for (i, phase) in s.phases.iter().enumerate() {
                let phase_path = format!("{}[{i}]", join(path, "phases"));
                let inner = max_reference(&phase.schedule, &join(&phase_path, "schedule"), start);
                best = larger(best, inner);
                if let Some(steps) = phase.steps {
                    start = start.saturating_add(steps);
                    best = larger(best, Some((join(&phase_path, "steps"), start)));
                }
            }
            best
        }
    }
}

/// The reference with the larger step; on a tie the first (outer) one.
fn larger(a: Option<(String, u64)>, b: Option<(String, u64)>) -> Option<(String, u64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
        (a, b) => a.or(b),
    }
}
