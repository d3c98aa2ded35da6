//! Presenting a schedule preview: the rates of steps `0..n` as JSON, CSV, a
//! human-readable table or an SVG line chart. Pure functions returning
//! strings; the HTTP API and the `lrlab preview` command both go through
//! [`Preview::new`] and [`Preview::render`], so they answer alike.

mod chart;
mod text;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use thiserror::Error;

use crate::schedule::{Schedule, ScheduleSpec};
use crate::series::{self, Buckets};

pub use chart::to_svg;
pub use text::{to_csv, to_table};

/// Points a JSON preview holds unless asked for more: enough for any chart; a longer
/// preview is reduced to this many buckets (first, min and max of each).
pub const DEFAULT_MAX_POINTS: usize = 2000;

/// The representations of a preview.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PreviewFormat {
    /// `{"steps", "lr", …}`; long previews downsampled (see [`JsonPreview`]).
    #[default]
    Json,
    /// `step,lr` rows, every step, every rate exact.
    Csv,
    /// A sampled, human-readable table.
    Table,
    /// An SVG line chart.
    Svg,
}

impl PreviewFormat {
    /// Every format, in the order of `--help`.
    pub const ALL: [PreviewFormat; 4] = [
        PreviewFormat::Json,
        PreviewFormat::Csv,
        PreviewFormat::Table,
        PreviewFormat::Svg,
    ];

    /// The format's name in `?format=` and `--format`.
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewFormat::Json => "json",
            PreviewFormat::Csv => "csv",
            PreviewFormat::Table => "table",
            PreviewFormat::Svg => "svg",
        }
    }

    /// The HTTP content type of the rendering.
    pub fn content_type(self) -> &'static str {
        match self {
            PreviewFormat::Json => "application/json",
            PreviewFormat::Csv => "text/csv; charset=utf-8",
            PreviewFormat::Table => "text/plain; charset=utf-8",
            PreviewFormat::Svg => "image/svg+xml",
        }
    }
}

impl fmt::Display for PreviewFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PreviewFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PreviewFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown format `{s}`, expected one of json, csv, table, svg"))
    }
}

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
    /// The JSON body could not be written.
    #[error("could not encode the preview: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A schedule's rates over steps `0..steps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Number of steps previewed.
    pub steps: usize,
    /// The rate at each step `0..steps`.
    pub lr: Vec<f64>,
    /// Whether the schedule adapts to metrics during training; its preview
    /// then shows the adaptive part at its initial rate.
    pub adaptive: bool,
    /// The spec as used, every default filled in.
    pub schedule: ScheduleSpec,
    /// The chart title: the schedule's kinds (`warmup → cosine`).
    pub title: String,
}

/// The JSON body of a preview. Up to `max_points` steps it lists every rate
/// (`lr[i]` is the rate at step `i`); a longer preview is cut into
/// `max_points` buckets of `bucket_size` consecutive steps, and `step[i]`,
/// `lr[i]` are the first step of bucket `i` and its rate, `lr_min[i]` and
/// `lr_max[i]` the bucket's extremes — so a chart drawn from it shows every
/// drop and spike at a fraction of the size (a million f64s are ~20 MB of
/// JSON; the full series is one `?format=csv` away).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonPreview<'a> {
    pub steps: usize,
    pub lr: Vec<f64>,
    pub adaptive: bool,
    pub schedule: &'a ScheduleSpec,
    /// Whether the series was reduced to buckets.
    pub downsampled: bool,
    /// Steps per bucket (1: every step).
    pub bucket_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_min: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_max: Option<Vec<f64>>,
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
            schedule: schedule.spec().clone(),
            title: title_for(schedule),
        })
    }

    /// The JSON body, reduced to at most `max_points` buckets.
    pub fn to_json(&self, max_points: usize) -> JsonPreview<'_> {
        let buckets = Buckets::new(self.lr.len(), max_points);
        if buckets.is_identity() {
            return JsonPreview {
                steps: self.steps,
                lr: self.lr.clone(),
                adaptive: self.adaptive,
                schedule: &self.schedule,
                downsampled: false,
                bucket_size: 1,
                step: None,
                lr_min: None,
                lr_max: None,
            };
        }
        // Rates are always finite, so every bucket has a value.
        let reduced = series::reduce(&self.lr, &buckets);
        let values = |v: Vec<Option<f64>>| v.into_iter().map(|x| x.unwrap_or(0.0)).collect();
        JsonPreview {
            steps: self.steps,
            lr: values(reduced.first),
            adaptive: self.adaptive,
            schedule: &self.schedule,
            downsampled: true,
            bucket_size: buckets.size,
            step: Some(buckets.starts().collect()),
            lr_min: Some(values(reduced.min)),
            lr_max: Some(values(reduced.max)),
        }
    }

    /// The preview as `format`; `title` overrides the chart title, `max_points` bounds a
    /// JSON body. CPU-heavy for long previews: call it off the async runtime.
    pub fn render(
        &self,
        format: PreviewFormat,
        title: Option<&str>,
        max_points: usize,
    ) -> Result<String, PreviewError> {
        Ok(match format {
            PreviewFormat::Json => serde_json::to_string(&self.to_json(max_points))?,
            PreviewFormat::Csv => to_csv(&self.lr),
            PreviewFormat::Table => {
                let mut text = String::new();
                if self.adaptive {
                    text.push_str("note: reduce_on_plateau adapts to metrics during training; shown at its initial rate\n");
                }
                text.push_str(&to_table(&self.lr));
                text
            }
            PreviewFormat::Svg => to_svg(&self.lr, title.unwrap_or(&self.title))?,
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
