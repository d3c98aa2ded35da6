//! Presenting a schedule preview: the rates of steps `0..n` as JSON, CSV, a
//! human-readable table or an SVG line chart. Pure functions returning
//! strings, shared by the HTTP API and the `lrlab preview` command.

mod chart;
mod cli;
mod text;

use serde::Serialize;
use thiserror::Error;

use crate::schedule::Schedule;

pub use chart::to_svg;
pub use cli::{run_preview, PreviewArgs, PreviewFormat};
pub use text::{to_csv, to_table};

/// Most steps one preview may hold: a million rates are ~8 MB in memory and
/// ~20 MB of JSON, which bounds what one request can cost.
pub const MAX_PREVIEW_STEPS: usize = 1_000_000;

/// Why a preview could not be produced.
#[derive(Debug, Error)]
pub enum PreviewError {
    /// `steps` outside `1..=MAX_PREVIEW_STEPS`.
    #[error("`steps` must be between 1 and {MAX_PREVIEW_STEPS}, got {0}")]
    Steps(u64),
    /// A chart needs at least one point.
    #[error("there is nothing to draw: the preview has no steps")]
    Empty,
    /// A chart cannot place NaN or an infinity (schedules never produce them).
    #[error("the rate at step {step} is not a finite number")]
    NonFinite { step: usize },
    /// The charting library failed.
    #[error("could not draw the chart: {0}")]
    Chart(String),
}

/// The body of a preview response: `{"steps": n, "lr": [...], "adaptive": bool}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// Number of steps previewed.
    pub steps: usize,
    /// The rate at each step `0..steps`.
    pub lr: Vec<f64>,
    /// Whether the schedule adapts to metrics during training; its preview
    /// then shows the adaptive part at its initial rate.
    pub adaptive: bool,
}

impl Preview {
    /// Evaluates `schedule` at steps `0..steps`, refusing sizes outside
    /// `1..=MAX_PREVIEW_STEPS` before allocating anything.
    pub fn new(schedule: &Schedule, steps: u64) -> Result<Preview, PreviewError> {
        let n = usize::try_from(steps)
            .ok()
            .filter(|n| (1..=MAX_PREVIEW_STEPS).contains(n))
            .ok_or(PreviewError::Steps(steps))?;
        Ok(Preview {
            steps: n,
            lr: schedule.preview(n),
            adaptive: schedule.is_adaptive(),
        })
    }
}

/// A short chart title for a schedule, following nested schedules:
/// `warmup → cosine`, `sequential (linear, cosine)`.
pub fn title_for(schedule: &Schedule) -> String {
    fn describe(spec: &crate::schedule::ScheduleSpec, out: &mut String) {
        use crate::schedule::ScheduleSpec;
        out.push_str(spec.kind());
        match spec {
            ScheduleSpec::Warmup(w) => {
                out.push_str(" → ");
                describe(&w.then, out);
            }
            ScheduleSpec::Sequential(s) => {
                out.push_str(" (");
                for (i, phase) in s.phases.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    describe(&phase.schedule, out);
                }
                out.push(')');
            }
            _ => {}
        }
    }
    let mut title = String::new();
    describe(schedule.spec(), &mut title);
    title
}

#[cfg(test)]
mod tests;
