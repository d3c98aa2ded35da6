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
