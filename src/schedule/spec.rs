//! The schedule spec: the JSON a user writes, as Rust types.
//!
//! Every variant struct has public fields with their defaults filled in, so a
//! parsed spec serializes back in *normalized* form (every default explicit).
//! That normalized form is what gets stored with a job: it says exactly which
//! schedule ran even if a default changes later.
//!
//! Untrusted JSON should go through [`ScheduleSpec::from_json`](super::ScheduleSpec::from_json),
//! which reports full field paths; the derived `Deserialize` is for trusted,
//! already normalized documents (for example a spec read back from the store).

use serde::{Deserialize, Serialize};

/// One learning-rate schedule, tagged by `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleSpec {
    /// `lr` at every step.
    Constant(Constant),
    /// `lr·(t+1)^(−power)`.
    InversePower(InversePower),
    /// `max(min_lr, lr·factor^t)`.
    Factor(Factor),
    /// `lr·factor^⌊t/step_size⌋`.
    Step(Step),
    /// `lr·factor^(milestones ≤ t)`.
    MultiFactor(MultiFactor),
    /// Half-cosine from `lr` to `final_lr`, with an optional linear warm-up.
    Cosine(Cosine),
    /// Polynomial decay from `lr` to `final_lr`.
    Polynomial(Polynomial),
    /// Straight line from `start_lr` to `end_lr`.
    Linear(Linear),
    /// SGDR: cosine with warm restarts.
    CosineRestarts(CosineRestarts),
    /// Smith's cyclical learning rate (PyTorch `CyclicLR`).
    Cyclic(Cyclic),
    /// The 1cycle policy (PyTorch `OneCycleLR`).
    OneCycle(OneCycle),
    /// A warm-up in front of another schedule, which then starts at its own step 0.
    Warmup(Warmup),
    /// Phases run one after another, each from its own step 0.
    Sequential(Sequential),
    /// Adaptive: lowered when a monitored metric stops improving.
    ReduceOnPlateau(ReduceOnPlateau),
}

pub(crate) fn zero() -> f64 {
    0.0
}
fn half() -> f64 {
    0.5
}
fn one() -> f64 {
    1.0
}
fn one_u64() -> u64 {
    1
}

/// `lr` at every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constant {
    pub lr: f64,
}

/// `lr·(t+1)^(−power)`; `power = 0.5` is the chapter's square-root schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InversePower {
    pub lr: f64,
    #[serde(default = "half")]
    pub power: f64,
}

/// `max(min_lr, lr·factor^t)`: the chapter's factor tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Factor {
    pub lr: f64,
    pub factor: f64,
    #[serde(default = "zero")]
    pub min_lr: f64,
}

/// `lr·factor^⌊t/step_size⌋` (PyTorch `StepLR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub lr: f64,
    pub step_size: u64,
    pub factor: f64,
}

/// `lr·factor^k`, k = number of milestones m with m ≤ t (PyTorch `MultiStepLR`:
/// the rate drops *at* the milestone step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiFactor {
    pub lr: f64,
    pub milestones: Vec<u64>,
    pub factor: f64,
}

/// Cosine decay over `max_steps`; its own `warmup_steps` squeeze the cosine
/// into `max_steps − warmup_steps` steps (MXNet's `CosineScheduler`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosine {
    pub lr: f64,
    #[serde(default = "zero")]
    pub final_lr: f64,
    pub max_steps: u64,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default = "zero")]
    pub warmup_begin_lr: f64,
}

/// `final_lr + (lr − final_lr)·(1 − t/T)^power` up to `max_steps`, then `final_lr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Polynomial {
    pub lr: f64,
    #[serde(default = "zero")]
    pub final_lr: f64,
    pub max_steps: u64,
    #[serde(default = "one")]
    pub power: f64,
}

/// A straight line from `start_lr` (t = 0) to `end_lr` (t = steps and later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    pub start_lr: f64,
    pub end_lr: f64,
    pub steps: u64,
}

/// SGDR (PyTorch `CosineAnnealingWarmRestarts`): periods of length
/// `period·period_mult^i`, each a half-cosine from `lr` to `final_lr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineRestarts {
    pub lr: f64,
    #[serde(default = "zero")]
    pub final_lr: f64,
    pub period: u64,
    #[serde(default = "one_u64")]
    pub period_mult: u64,
}

/// How a cyclic schedule's amplitude changes from cycle to cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CyclicMode {
    /// Same amplitude every cycle.
    #[default]
    Triangular,
    /// Amplitude halves each cycle.
    Triangular2,
    /// Amplitude scaled by `gamma^t` (t = step).
    ExpRange,
}

/// Smith's (2017) triangular cycle between `base_lr` and `max_lr`, with the
/// values of PyTorch's `CyclicLR`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "CyclicFields")]
pub struct Cyclic {
    pub base_lr: f64,
    pub max_lr: f64,
    pub step_size_up: u64,
    /// Defaults to `step_size_up`.
    pub step_size_down: u64,
    pub mode: CyclicMode,
    pub gamma: f64,
}

/// `Cyclic` as written: `step_size_down` defaults to `step_size_up`, which a
/// plain serde default cannot express.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CyclicFields {
    base_lr: f64,
    max_lr: f64,
    step_size_up: u64,
    #[serde(default)]
    step_size_down: Option<u64>,
    #[serde(default)]
    mode: CyclicMode,
    #[serde(default = "one")]
    gamma: f64,
}

impl From<CyclicFields> for Cyclic {
    fn from(f: CyclicFields) -> Self {
        Cyclic {
            base_lr: f.base_lr,
            max_lr: f.max_lr,
            step_size_up: f.step_size_up,
            step_size_down: f.step_size_down.unwrap_or(f.step_size_up),
            mode: f.mode,
            gamma: f.gamma,
        }
    }
}

/// The annealing curve of a one-cycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// Half-cosine between the phase's start and end.
    #[default]
    Cos,
    /// Straight line between the phase's start and end.
    Linear,
}

fn pct_start_default() -> f64 {
    0.3
}
fn div_factor_default() -> f64 {
    25.0
}
fn final_div_factor_default() -> f64 {
    1e4
}

/// The 1cycle policy with the values of PyTorch's `OneCycleLR` for steps
/// `0..total_steps`; later steps keep the last value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneCycle {
    pub max_lr: f64,
    pub total_steps: u64,
    #[serde(default = "pct_start_default")]
    pub pct_start: f64,
    #[serde(default)]
    pub anneal: Anneal,
    #[serde(default = "div_factor_default")]
    pub div_factor: f64,
    #[serde(default = "final_div_factor_default")]
    pub final_div_factor: f64,
    #[serde(default)]
    pub three_phase: bool,
}

/// How a warm-up moves towards the wrapped schedule's first rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmupMode {
    /// From `begin_lr` in a straight line towards `then(0)`.
    #[default]
    Linear,
    /// `begin_lr` throughout the warm-up.
    Constant,
}

/// A warm-up of `steps` steps, after which `then` runs from its own step 0
/// (DJL's `WarmUpTracker`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    pub steps: u64,
    #[serde(default = "zero")]
    pub begin_lr: f64,
    #[serde(default)]
    pub mode: WarmupMode,
    pub then: Box<ScheduleSpec>,
}

/// The fields of [`Warmup`] other than `then`, parsed on their own so that
/// the nested schedule can be parsed with its path and depth tracked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WarmupFields {
    pub steps: u64,
    #[serde(default = "zero")]
    pub begin_lr: f64,
    #[serde(default)]
    pub mode: WarmupMode,
}

/// Phases that run one after another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequential {
    pub phases: Vec<Phase>,
}

/// One phase of a [`Sequential`] schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Length of the phase; required on every phase but the last, which runs
    /// on for ever (a `steps` given there only counts towards the schedule's
    /// stated length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    pub schedule: ScheduleSpec,
}

/// How an improvement of the monitored metric is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Better means better than `best·(1 ∓ threshold)`.
    #[default]
    Rel,
    /// Better means better than `best ∓ threshold`.
    Abs,
}

/// The per-epoch metric an adaptive schedule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Loss on the test set (lower is better).
    #[default]
    TestLoss,
    /// Loss on the training set (lower is better).
    TrainLoss,
    /// Accuracy on the test set (higher is better).
    TestAcc,
}

impl Monitor {
    /// Whether larger values of the metric are better (PyTorch `mode="max"`).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Monitor::TestAcc)
    }
}

fn plateau_factor_default() -> f64 {
    0.1
}
fn patience_default() -> u64 {
    10
}
fn threshold_default() -> f64 {
    1e-4
}

/// PyTorch's `ReduceLROnPlateau`: the rate starts at `lr` and is multiplied
/// by `factor` (not below `min_lr`) when the monitored metric has not improved
/// for more than `patience` epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReduceOnPlateau {
    pub lr: f64,
    #[serde(default = "plateau_factor_default")]
    pub factor: f64,
    #[serde(default = "patience_default")]
    pub patience: u64,
    #[serde(default = "threshold_default")]
    pub threshold: f64,
    #[serde(default)]
    pub threshold_mode: ThresholdMode,
    #[serde(default)]
    pub monitor: Monitor,
    #[serde(default)]
    pub cooldown: u64,
    #[serde(default = "zero")]
    pub min_lr: f64,
}

impl ScheduleSpec {
    /// The `kind` tag of this spec, as written in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ScheduleSpec::Constant(_) => "constant",
            ScheduleSpec::InversePower(_) => "inverse_power",
            ScheduleSpec::Factor(_) => "factor",
            ScheduleSpec::Step(_) => "step",
            ScheduleSpec::MultiFactor(_) => "multi_factor",
            ScheduleSpec::Cosine(_) => "cosine",
            ScheduleSpec::Polynomial(_) => "polynomial",
            ScheduleSpec::Linear(_) => "linear",
            ScheduleSpec::CosineRestarts(_) => "cosine_restarts",
            ScheduleSpec::Cyclic(_) => "cyclic",
            ScheduleSpec::OneCycle(_) => "one_cycle",
            ScheduleSpec::Warmup(_) => "warmup",
            ScheduleSpec::Sequential(_) => "sequential",
            ScheduleSpec::ReduceOnPlateau(_) => "reduce_on_plateau",
        }
    }
}

/// Every `kind` tag, in the order of the README's table.
pub const KINDS: [&str; 14] = [
    "constant",
    "inverse_power",
    "factor",
    "step",
    "multi_factor",
    "cosine",
    "polynomial",
    "linear",
    "cosine_restarts",
    "cyclic",
    "one_cycle",
    "warmup",
    "sequential",
    "reduce_on_plateau",
];
