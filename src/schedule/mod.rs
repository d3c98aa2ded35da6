//! The learning-rate schedule engine: pure, no I/O, no HTTP, no candle.
//!
//! A schedule maps a 0-based step index `t` to a learning rate. The flow is
//! JSON → [`ScheduleSpec`] (parsed with full error paths, defaults filled in)
//! → [`Schedule`] (validated and compiled; evaluate any step in O(1)) →
//! [`Scheduler`] (adds the per-epoch state of an adaptive
//! `reduce_on_plateau` node, for training). [`catalog`] describes every kind
//! for clients that build forms.
//!
//! Every rate is finite and ≥ 0; a growing schedule (factor or gamma > 1)
//! saturates at `f64::MAX` rather than reaching infinity.

mod catalog;
mod compiled;
mod error;
mod formulas;
mod limits;
mod one_cycle;
mod parse;
mod plateau;
mod scheduler;
mod spec;
mod validate;

#[cfg(test)]
mod tests;

pub use catalog::{catalog, FieldInfo, KindInfo};
pub use compiled::Schedule;
pub use error::{FieldCode, SpecError};
pub use limits::{MAX_DEPTH, MAX_MILESTONES, MAX_PHASES};
pub use plateau::PlateauState;
pub use scheduler::{Scheduler, SchedulerState};
pub use spec::{
    Anneal, Constant, Cosine, CosineRestarts, Cyclic, CyclicMode, Factor, InversePower, Linear,
    Monitor, MultiFactor, OneCycle, Phase, Polynomial, ReduceOnPlateau, ScheduleSpec, Sequential,
    Step, ThresholdMode, Warmup, WarmupMode, KINDS,
};
