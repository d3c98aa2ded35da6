//! What a sweep expands into: configs, seeds and member jobs.

use serde::Serialize;
use serde_json::Value;

use super::metric::{Metric, Mode};
use super::ordered::Ordered;
use super::stopping::StoppingParams;

/// A validated, expanded sweep: everything the service needs to store and run it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPlan {
    /// The sweep's name (prefix of the members' names).
    pub name: String,
    /// The configs, grid product first (in grid order, the last path
    /// varying fastest), then the variants in order.
    pub configs: Vec<SweepConfig>,
    /// The seeds every config runs with.
    pub seeds: Vec<u64>,
    /// One job per config and seed, config-major: members `c·seeds.len() + s`.
    pub members: Vec<Member>,
    /// The metric the summary ranks by, and its direction.
    pub metric: Metric,
    pub mode: Mode,
    /// The resolved early-stopping rule (every default filled in).
    pub early_stopping: Option<StoppingParams>,
    pub max_concurrent: Option<u32>,
    pub lockstep: bool,
}

/// One config: the base request with some fields changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepConfig {
    /// Position in [`SweepPlan::configs`]; the early-stopping engines and
    /// the summary refer to configs by it.
    pub index: usize,
    pub name: String,
    /// Where the config comes from.
    pub origin: ConfigOrigin,
    /// The fields it changes: job path → value (`null`: removed).
    pub overrides: Ordered<Value>,
    /// Its job request, without `name` and `seed`.
    pub job: Value,
    /// Its job's epochs (every member of a config has the same).
    pub epochs: u32,
}

/// Where a config comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ConfigOrigin {
    /// A point of the grid: the index of the value taken on each grid path.
    Grid { indices: Vec<usize> },
    /// `variants[index]`.
    Variant { index: usize },
    /// The base request itself (a sweep with neither grid nor variants).
    Base,
}

/// One member job: a config run with one seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// Index of its config.
    pub config: usize,
    pub seed: u64,
    /// `sweep/config/seed=N`.
    pub name: String,
    /// The complete job request (with `name` and `seed`), already validated.
    pub job: Value,
}

impl SweepPlan {
    /// Each config's epochs, in config order (what the early-stopping engines take).
    pub fn config_epochs(&self) -> Vec<u32> {
        self.configs.iter().map(|c| c.epochs).collect()
    }
}
