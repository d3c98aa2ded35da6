//! Per-epoch bands over seeds, for `GET /v1/sweeps/{id}/series` and the
//! band chart: one mean line per config with a shaded ±std or 95% band.

use serde::Serialize;

use super::stats::{estimate, Interval};
use super::summary::ConfigSeries;

/// One epoch of a config's band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BandPoint {
    /// 1-based epoch.
    pub epoch: u32,
    /// Members with a finite value at this epoch (fewer once members stop early).
    pub n: usize,
    pub mean: f64,
    /// None for n = 1.
    pub std: Option<f64>,
    pub min: f64,
    pub max: f64,
    /// None for n = 1.
    pub ci95: Option<Interval>,
}

/// One config's band, epoch by epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigBand {
    pub config: usize,
    pub name: String,
    pub points: Vec<BandPoint>,
}

/// The band of every config (in config order). Non-finite values (a
/// diverged loss) are left out, as a chart cannot draw them; an epoch where
/// no member has a finite value has no point.
pub fn band_series(configs: &[ConfigSeries]) -> Vec<ConfigBand> {
    configs
        .iter()
        .enumerate()
        .map(|(config, c)| {
            let longest = c.members.iter().map(|m| m.values.len()).max().unwrap_or(0);
            let points = (0..longest)
                .filter_map(|at| {
                    let sample: Vec<f64> = c
                        .members
                        .iter()
                        .filter_map(|m| m.values.get(at).copied())
                        .filter(|v| v.is_finite())
                        .collect();
                    let est = estimate(&sample)?;
                    Some(BandPoint {
                        epoch: u32::try_from(at + 1).unwrap_or(u32::MAX),
                        n: est.n,
                        mean: est.mean,
                        std: est.std,
                        min: sample.iter().copied().fold(f64::INFINITY, f64::min),
                        max: sample.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        ci95: est.ci95,
                    })
                })
                .collect();
            ConfigBand {
                config,
                name: c.name.clone(),
                points,
            }
        })
        .collect()
}

/// The bands as CSV: `config,epoch,n,mean,std,min,max,ci95_low,ci95_high`, one row per
/// config and epoch (empty cells where n = 1 gives no spread).
pub fn bands_csv(bands: &[ConfigBand]) -> String {
    use std::fmt::Write as _;
    let mut csv = String::from("config,epoch,n,mean,std,min,max,ci95_low,ci95_high\n");
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for band in bands {
        let name = csv_field(&band.name);
        for p in &band.points {
            let _ = writeln!(
                csv,
                "{name},{},{},{},{},{},{},{},{}",
                p.epoch,
                p.n,
                p.mean,
                opt(p.std),
                p.min,
                p.max,
                opt(p.ci95.map(|i| i.low)),
                opt(p.ci95.map(|i| i.high)),
            );
        }
    }
    csv
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Which band a chart shades around each config's mean line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandKind {
    /// ± one standard deviation over the seeds.
    Std,
    /// The Student t 95% interval of the mean.
    Ci95,
}

/// The band chart of a sweep: one mean line per config over its shaded band, a legend
/// naming each config with its seed count. The API's `chart.svg` and `lrlab sweep`'s
/// `chart-<metric>.svg` are this one drawing.
pub fn band_chart(
    sweep_name: &str,
    seeds: usize,
    metric: super::Metric,
    bands: &[ConfigBand],
    kind: BandKind,
) -> crate::chart::LineChart {
    let band_name = match kind {
        BandKind::Std => "± std",
        BandKind::Ci95 => "95% interval",
    };
    let title = format!("{sweep_name}: {metric} over {seeds} seeds ({band_name})");
    let y_label = if matches!(metric, super::Metric::TestAcc | super::Metric::TrainAcc) {
        "accuracy"
    } else {
        "loss"
    };
    bands.iter().fold(
        crate::chart::LineChart::new(title, "epoch", y_label),
        |chart, band| {
            let x = band.points.iter().map(|p| f64::from(p.epoch)).collect();
            let mean = band.points.iter().map(|p| Some(p.mean)).collect();
            let (lo, hi) = band
                .points
                .iter()
                .map(|p| match kind {
                    BandKind::Ci95 => (p.ci95.map(|i| i.low), p.ci95.map(|i| i.high)),
                    BandKind::Std => (p.std.map(|s| p.mean - s), p.std.map(|s| p.mean + s)),
                })
                .unzip();
            let n = band.points.iter().map(|p| p.n).max().unwrap_or(0);
            let label = format!("{} (n={n})", band.name);
            chart.push(crate::chart::Series::line(label, x, mean).with_band(lo, hi))
        },
    )
}
