//! [`Scheduler`]: a [`Schedule`] plus the state an adaptive node needs
//! during training.

use serde::{Deserialize, Serialize};

use super::compiled::Schedule;
use super::plateau::PlateauState;
use super::spec::Monitor;

/// The schedule a training run steps through.
///
/// For a closed-form schedule this is just the schedule. For one with a
/// `reduce_on_plateau` node it also holds that node's state: the trainer
/// reports the monitored metric once per epoch with [`Scheduler::observe`],
/// and [`Scheduler::lr`] evaluates the adaptive node at its current rate.
/// The metric updates the state whichever phase is active; an adaptive node
/// is typically the whole schedule or the `then` of a warm-up.
#[derive(Debug, Clone)]
pub struct Scheduler {
    schedule: Schedule,
    plateau: Option<PlateauState>,
}

/// What a checkpoint stores of a [`Scheduler`]; `plateau` is absent for a
/// closed-form schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau: Option<PlateauState>,
}

impl Scheduler {
    /// Starts the schedule's adaptive node (if any) at its initial rate.
    pub fn new(schedule: Schedule) -> Scheduler {
        let plateau = schedule.plateau().map(PlateauState::initial);
        Scheduler { schedule, plateau }
    }

    /// The schedule this scheduler runs.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The rate at step `t`, with the adaptive node at its current rate.
    pub fn lr(&self, t: u64) -> f64 {
        self.schedule
            .lr_with(t, self.plateau.as_ref().map(|p| p.lr))
    }

    /// The metric the trainer must report to [`Scheduler::observe`], or
    /// `None` when the schedule is not adaptive.
    pub fn monitor(&self) -> Option<Monitor> {
        self.schedule.plateau().map(|p| p.monitor)
    }

    /// Reports one epoch's value of [`Scheduler::monitor`]'s metric; does
    /// nothing for a closed-form schedule.
    pub fn observe(&mut self, metric: f64) {
        if let (Some(state), Some(spec)) = (self.plateau.as_mut(), self.schedule.plateau()) {
            state.observe(spec, metric);
        }
    }

    /// The state to store in a checkpoint.
    pub fn state(&self) -> SchedulerState {
        SchedulerState {
            plateau: self.plateau.clone(),
        }
    }

    /// Resumes from a checkpoint's state. A state without a plateau part (or
    /// for a closed-form schedule) resets the adaptive node to its initial
    /// rate; a stored rate that is not finite and ≥ 0 is replaced by the
    /// initial one so no invalid rate can come back from a file.
    pub fn restore(&mut self, state: SchedulerState) {
        let Some(spec) = self.schedule.plateau() else {
            return;
        };
        let mut restored = state.plateau.unwrap_or_else(|| PlateauState::initial(spec));
        if !(restored.lr.is_finite() && restored.lr >= 0.0) {
            restored.lr = spec.lr;
        }
        self.plateau = Some(restored);
    }
}
