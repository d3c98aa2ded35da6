//! PyTorch's `OneCycleLR`, precomputed into its phases.
//!
//! PyTorch describes the policy as two (or three) phases, each ending at a
//! *float* step (`pct_start·total − 1`, …) and annealing between two rates;
//! the step's position inside its phase is `(t − start)/(end − start)`. The
//! same floats are used here so the values agree with PyTorch's.

use std::f64::consts::PI;

use super::spec::{Anneal, OneCycle};

#[derive(Debug, Clone, Copy, PartialEq)]
struct OnePhase {
    end_step: f64,
    start_lr: f64,
    end_lr: f64,
}

/// A validated one-cycle schedule, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OneCyclePhases {
    phases: Vec<OnePhase>,
    anneal: Anneal,
    total_steps: u64,
}

/// The float step at which each phase ends, exactly as PyTorch computes them.
fn end_steps(total_steps: u64, pct_start: f64, three_phase: bool) -> Vec<f64> {
    let total = total_steps as f64;
    if three_phase {
        vec![
            pct_start * total - 1.0,
            2.0 * pct_start * total - 2.0,
            total - 1.0,
        ]
    } else {
        vec![pct_start * total - 1.0, total - 1.0]
    }
}

impl OneCyclePhases {
    /// Checks that no phase is empty: PyTorch divides by each phase's length,
    /// so a zero-length phase gives 0/0 there (and a negative one nonsense).
    pub(crate) fn check_lengths(
        total_steps: u64,
        pct_start: f64,
        three_phase: bool,
    ) -> Result<(), String> {
        let mut start = 0.0;
        for (i, end) in end_steps(total_steps, pct_start, three_phase)
            .into_iter()
            .enumerate()
        {
            if end <= start {
                return Err(match (i, three_phase) {
                    (0, _) => format!(
                        "`pct_start`·`total_steps` must exceed 1 so that the rising phase lasts at least one step (got {pct_start}·{total_steps})"
                    ),
                    (_, true) => format!(
                        "with `three_phase`, `pct_start` must leave room for a falling and a final phase: need 2·pct_start·total_steps < total_steps + 1 (got {pct_start}·{total_steps})"
                    ),
                    _ => format!("the annealing phase of {total_steps} steps is empty"),
                });
            }
            start = end;
        }
        Ok(())
    }

    /// Precomputes the phases of a spec that passed validation.
    pub(crate) fn new(spec: &OneCycle) -> Self {
        let initial = spec.max_lr / spec.div_factor;
        let min = initial / spec.final_div_factor;
        let ends = end_steps(spec.total_steps, spec.pct_start, spec.three_phase);
        let rates: Vec<(f64, f64)> = if spec.three_phase {
            vec![
                (initial, spec.max_lr),
                (spec.max_lr, initial),
                (initial, min),
            ]
        } else {
            vec![(initial, spec.max_lr), (spec.max_lr, min)]
        };
        let phases = ends
            .into_iter()
            .zip(rates)
            .map(|(end_step, (start_lr, end_lr))| OnePhase {
                end_step,
                start_lr,
                end_lr,
            })
            .collect();
        OneCyclePhases {
            phases,
            anneal: spec.anneal,
            total_steps: spec.total_steps,
        }
    }

    /// The rate at step `t`; steps from `total_steps` on keep the last value.
    pub(crate) fn lr(&self, t: u64) -> f64 {
        let step = t.min(self.total_steps.saturating_sub(1)) as f64;
        let mut start_step = 0.0;
        let last = self.phases.len() - 1;
        for (i, phase) in self.phases.iter().enumerate() {
            if step <= phase.end_step || i == last {
                let pct = (step - start_step) / (phase.end_step - start_step);
                return match self.anneal {
                    Anneal::Cos => {
                        phase.end_lr
                            + (phase.start_lr - phase.end_lr) / 2.0 * ((PI * pct).cos() + 1.0)
                    }
                    Anneal::Linear => (phase.end_lr - phase.start_lr) * pct + phase.start_lr,
                };
            }
            start_step = phase.end_step;
        }
        // Unreachable: the last phase always matches; keep a defined value anyway.
        self.phases[last].end_lr
    }
}

impl OneCyclePhases {
    /// The policy's length; from `total_steps − 1` on the rate is constant.
    pub(crate) fn total_steps(&self) -> u64 {
        self.total_steps
    }
}
