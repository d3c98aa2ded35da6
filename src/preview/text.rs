//! Text forms of a preview: CSV for tools, a sampled table for people.

use std::fmt::Write;

pub(crate) use crate::chart::approx;

/// Formats a rate so that it parses back to the same f64: plain decimals in
/// the usual range, scientific notation for tiny or huge values (Rust's
/// plain `{}` would write `f64::MAX` with 309 digits).
pub(crate) fn exact(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || (1e-5..1e16).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// `step,lr` header and one row per step, every rate written exactly.
pub fn to_csv(lr: &[f64]) -> String {
    let mut out = String::with_capacity(16 + lr.len() * 24);
    out.push_str("step,lr\n");
    for (step, &rate) in lr.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{step},{}", exact(rate));
    }
    out
}

/// Rows shown by [`to_table`] before it starts sampling.
const TABLE_ROWS: usize = 41;

/// A two-column table for a terminal. Up to 41 steps are all shown; longer
/// previews show 41 evenly spaced steps, always including the first and the
/// last, and say so.
pub fn to_table(lr: &[f64]) -> String {
    let n = lr.len();
    let steps: Vec<usize> = if n <= TABLE_ROWS {
        (0..n).collect()
    } else {
        let mut picked: Vec<usize> = (0..TABLE_ROWS)
            .map(|k| ((k as f64) * (n - 1) as f64 / (TABLE_ROWS - 1) as f64).round() as usize)
            .collect();
        picked.dedup();
        picked
    };
    let width = n.saturating_sub(1).to_string().len().max(4);
    let mut out = String::new();
    let _ = writeln!(out, "{:>width$}  learning rate", "step");
    for &step in &steps {
        let _ = writeln!(out, "{step:>width$}  {}", approx(lr[step], 6));
    }
    if steps.len() < n {
        let _ = writeln!(out, "({} of {n} steps shown, evenly spaced)", steps.len());
    }
    if n > 0 {
        let (min, max) = lr
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let _ = writeln!(out, "min {}, max {}", approx(min, 6), approx(max, 6));
    }
    out
}
