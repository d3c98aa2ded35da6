//! An SVG line chart of a preview, drawn with plotters.
//!
//! plotters is built without font features: its SVG backend writes `<text>`
//! elements and leaves rendering to the viewer, estimating label sizes with a
//! built-in approximation, so no font files are needed.

use plotters::prelude::*;

use super::text::approx;
use super::PreviewError;

/// Long series are reduced to about this many points before drawing.
const MAX_POINTS: usize = 2000;

const SIZE: (u32, u32) = (800, 480);

/// Keeps the first and last point and, per bucket of consecutive steps, the
/// lowest and the highest one (in step order), so drops, spikes and cycles
/// stay visible while the SVG stays small.
pub(crate) fn downsample(lr: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let n = lr.len();
    if n <= max_points {
        return lr.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
    }
    let bucket = n.div_ceil(max_points / 2);
    let mut points = Vec::with_capacity(max_points + 2);
    points.push((0.0, lr[0]));
    for (b, chunk) in lr.chunks(bucket).enumerate() {
        let base = b * bucket;
        let (mut lo, mut hi) = (0, 0);
        for (i, &v) in chunk.iter().enumerate() {
            if v < chunk[lo] {
                lo = i;
            }
            if v > chunk[hi] {
                hi = i;
            }
        }
        let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        for i in [first, second] {
            let step = base + i;
            if points.last().map(|p| p.0) != Some(step as f64) {
                points.push((step as f64, lr[step]));
            }
        }
    }
    let last = n - 1;
    if points.last().map(|p| p.0) != Some(last as f64) {
        points.push((last as f64, lr[last]));
    }
    points
}

/// The y range: from 0 (or the minimum, if negative) to a little above the
/// maximum, never infinite even for rates near `f64::MAX`.
fn y_range(lr: &[f64]) -> (f64, f64) {
    let (min, max) = lr
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let bottom = min.min(0.0);
    let span = max - bottom;
    let top = if span > 0.0 {
        max + span * 0.05
    } else if max > 0.0 {
        max * 1.1
    } else {
        1.0
    };
    (bottom, if top.is_finite() { top } else { f64::MAX })
}

fn chart_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PreviewError {
    PreviewError::Chart(e.to_string())
}

/// Draws the rates of steps `0..lr.len()` as an SVG line chart with axes
/// labelled "step" and "learning rate" and `title` as its caption. Series
/// longer than ~2000 points are downsampled keeping each bucket's extremes.
pub fn to_svg(lr: &[f64], title: &str) -> Result<String, PreviewError> {
    if lr.is_empty() {
        return Err(PreviewError::Empty);
    }
    if let Some(step) = lr.iter().position(|v| !v.is_finite()) {
        return Err(PreviewError::NonFinite { step });
    }
    let points = downsample(lr, MAX_POINTS);
    let x_max = (lr.len() - 1).max(1) as f64;
    let (y_min, y_max) = y_range(lr);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..x_max, y_min..y_max)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("learning rate")
            .x_label_formatter(&|x| format!("{}", x.round() as u64))
            .y_label_formatter(&|y| approx(*y, 3))
            .max_light_lines(4)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}
