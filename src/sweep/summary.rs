//! The summary table of a sweep: per config, the final and best value of a
//! metric over its seeds, the ranking, and the comparison with the best.
//!
//! Configs are ranked by the mean of their **final** value, not of their
//! best epoch: the best epoch is picked by looking at the test set, an
//! optimistic choice that rewards noisy schedules, while the final value is
//! what the schedule delivers. Configs whose every member ran all its epochs
//! rank ahead of the others (early-stopped or unfinished), whose "final"
//! value is an earlier epoch's; ties keep config order, and a NaN mean (a
//! diverged loss) ranks last among its group. Each config is compared with
//! the best on final values, paired over common seeds (see [`stats`](super::stats)),
//! but only when both are complete or both are not: an epoch-2 value of a
//! stopped config says nothing about whether it could match the best's epoch 30.

use serde::Serialize;

use super::metric::Mode;
use super::stats::{compare, estimate, Difference, Estimate};

/// One config's series of a metric: one per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSeries {
    pub name: String,
    /// The config's epochs: a member with fewer values stopped early, failed or is running.
    pub epochs: u32,
    pub members: Vec<MemberSeries>,
}

/// One member's per-epoch values of a metric (epoch 1 first).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSeries {
    pub seed: u64,
    pub values: Vec<f64>,
}

/// A sweep's summary for one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub mode: Mode,
    /// Config indices, best first; configs without data are left out.
    pub ranking: Vec<usize>,
    pub best: Option<usize>,
    /// One row per config, in config order.
    pub configs: Vec<ConfigSummary>,
}

/// One config's row of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigSummary {
    pub config: usize,
    pub name: String,
    /// 1 for the best; none without data.
    pub rank: Option<usize>,
    /// Members with at least one value.
    pub seeds: usize,
    /// Every member with data ran all the config's epochs.
    pub complete: bool,
    /// The last value of each member.
    pub final_value: Option<Estimate>,
    /// The best epoch's value of each member (by `mode`; a NaN epoch only
    /// when every epoch is NaN).
    pub best_value: Option<Estimate>,
    /// This config's final value minus the best config's; none for the best itself.
    pub vs_best: Option<Difference>,
    /// True for the best config; else whether the interval of `vs_best` contains 0.
    pub indistinguishable_from_best: Option<bool>,
}

/// Summarizes `configs` (in config order) for a metric ranked by `mode`.
pub fn summarize(configs: &[ConfigSeries], mode: Mode) -> Summary {
    let finals: Vec<Vec<(u64, f64)>> = configs
        .iter()
        .map(|c| {
            c.members
                .iter()
                .filter_map(|m| m.values.last().map(|&v| (m.seed, v)))
                .collect()
        })
        .collect();
    let complete: Vec<bool> = configs
        .iter()
        .map(|c| {
            let with_data = c.members.iter().filter(|m| !m.values.is_empty());
            let mut with_data = with_data.peekable();
            with_data.peek().is_some() && with_data.all(|m| m.values.len() >= c.epochs as usize)
        })
        .collect();
    let finals_only = |i: usize| finals[i].iter().map(|&(_, v)| v).collect::<Vec<_>>();
    let final_estimates: Vec<Option<Estimate>> = (0..configs.len())
        .map(|i| estimate(&finals_only(i)))
        .collect();

    let mut ranking: Vec<usize> = (0..configs.len())
        .filter(|&i| final_estimates[i].is_some())
        .collect();
    let mean_of = |i: usize| final_estimates[i].map_or(f64::NAN, |e| e.mean);
    ranking.sort_by(|&a, &b| {
        complete[b]
            .cmp(&complete[a])
            .then_with(|| mode.better_first(mean_of(a), mean_of(b)))
    });
    let best = ranking.first().copied();

    let rows = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let bests: Vec<f64> = c
                .members
                .iter()
                .filter_map(|m| mode.best_of(&m.values))
                .collect();
            let vs_best = match best {
                Some(b) if b != i && complete[b] == complete[i] => compare(&finals[i], &finals[b]),
                _ => None,
            };
            let indistinguishable_from_best = match best {
                Some(b) if b == i => Some(true),
                _ => vs_best.and_then(|d| d.indistinguishable),
            };
            ConfigSummary {
                config: i,
                name: c.name.clone(),
                rank: ranking.iter().position(|&r| r == i).map(|p| p + 1),
                seeds: finals[i].len(),
                complete: complete[i],
                final_value: final_estimates[i],
                best_value: estimate(&bests),
                vs_best,
                indistinguishable_from_best,
            }
        })
        .collect();
    Summary {
        mode,
        ranking,
        best,
        configs: rows,
    }
}

impl Summary {
    /// The summary as CSV, one row per config in config order.
    pub fn to_csv(&self) -> String {
        use std::fmt::Write as _;
        let mut csv = String::from(
            "rank,config,complete,n,final_mean,final_std,final_ci95_low,final_ci95_high,best_mean,vs_best_mean,vs_best_ci95_low,vs_best_ci95_high,indistinguishable_from_best\n",
        );
        let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        for row in &self.configs {
            let f = row.final_value;
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                row.rank.map(|r| r.to_string()).unwrap_or_default(),
                super::band::csv_field(&row.name),
                row.complete,
                f.map_or(0, |e| e.n),
                opt(f.map(|e| e.mean)),
                opt(f.and_then(|e| e.std)),
                opt(f.and_then(|e| e.ci95).map(|i| i.low)),
                opt(f.and_then(|e| e.ci95).map(|i| i.high)),
                opt(row.best_value.map(|e| e.mean)),
                opt(row.vs_best.map(|d| d.mean)),
                opt(row.vs_best.and_then(|d| d.ci95).map(|i| i.low)),
                opt(row.vs_best.and_then(|d| d.ci95).map(|i| i.high)),
                row.indistinguishable_from_best
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
            );
        }
        csv
    }
}
