//! An SVG line chart of a preview, drawn by the shared [`crate::chart`] module.

use super::PreviewError;
use crate::chart::{LineChart, Series};

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
    let (x, y): (Vec<f64>, Vec<Option<f64>>) = downsample(lr, MAX_POINTS)
        .into_iter()
        .map(|(step, rate)| (step, Some(rate)))
        .unzip();
    LineChart::new(title, "step", "learning rate")
        .size(SIZE.0, SIZE.1)
        .y_from_zero(true)
        .legend(false)
        .push(Series::line("lr", x, y))
        .to_svg()
        .map_err(|err| PreviewError::Chart(err.to_string()))
}
