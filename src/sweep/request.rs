//! What a client submits to `POST /v1/sweeps`.
//!
//! Only the shape is checked here (by serde, with unknown fields rejected by
//! name); the rules that need the whole request — paths that must exist,
//! values that must make valid jobs, limits — are checked by
//! [`expand`](super::expand), which every submission goes through.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::{FieldCode, FieldError};
use super::metric::{Metric, Mode};
use super::ordered::Ordered;

/// Seeds of a sweep that gives neither `seeds` nor `repeats`: three, the
/// fewest that give a confidence interval with some width to read.
pub const DEFAULT_SEEDS: [u64; 3] = [0, 1, 2];
/// Most jobs (configs × seeds) one sweep may generate.
pub const MAX_MEMBERS: usize = 1000;
/// Most values one grid path may list.
pub const MAX_GRID_VALUES: usize = 100;
/// Longest sweep or config name, in characters.
pub const MAX_SWEEP_NAME_LEN: usize = 100;
/// Default ASHA reduction factor η (the paper's and Ray's default).
pub const DEFAULT_REDUCTION_FACTOR: u32 = 3;
/// Default `n_startup` of the median rule.
pub const DEFAULT_N_STARTUP: u32 = 3;
/// Default `warmup_epochs` of the median rule: the first epoch is too noisy to judge.
pub const DEFAULT_WARMUP_EPOCHS: u32 = 1;

/// A sweep: one job request (`base`) varied over a grid and/or explicit
/// variants, each config run once per seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// Prefix of the member jobs' names; `sweep` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A job request (every field of `POST /v1/jobs` but `name` and `seed`,
    /// which the sweep sets per member).
    pub base: Value,
    /// Dotted paths into the job request → the values to try, in the
    /// client's order; the configs are the cartesian product.
    #[serde(default, skip_serializing_if = "Ordered::is_empty")]
    pub grid: Ordered<Vec<Value>>,
    /// Explicit configs, each deep-merged into `base` (not crossed with the grid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// The seeds every config runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Vec<u64>>,
    /// Shorthand for `seeds: [0, 1, …, repeats − 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    /// How to stop hopeless configs early; none when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// Most members running at once; the queue's own limit when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Train members that share a seed together, one pass over the data for all of
    /// them (lockstep training); `false` runs every member as a job of its own.
    #[serde(default = "yes")]
    pub lockstep: bool,
}

fn yes() -> bool {
    true
}

/// One explicit config: an optional name and fields of the job request.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The config's name; made from the overrides when left out.
    pub name: Option<String>,
    /// Job-request fields, deep-merged into `base` (see [`expand`](super::expand)).
    pub overrides: Map<String, Value>,
}

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut overrides = Map::deserialize(deserializer)?;
        let name = match overrides.remove("name") {
            None => None,
            Some(Value::String(name)) => Some(name),
            Some(_) => {
                return Err(D::Error::custom(
                    "a variant's `name` must be a string (it names the config, not the jobs)",
                ))
            }
        };
        Ok(Variant { name, overrides })
    }
}

impl Serialize for Variant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = self.overrides.clone();
        if let Some(name) = &self.name {
            map.insert("name".to_string(), Value::String(name.clone()));
        }
        map.serialize(serializer)
    }
}

/// An early-stopping rule, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EarlyStopping {
    /// Asynchronous successive halving with pause and resume.
    Asha(AshaSpec),
    /// Stop a config worse than the median of the others at the same epoch.
    Median(MedianSpec),
}

/// ASHA as written in a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AshaSpec {
    /// The metric compared at the rungs.
    pub metric: Metric,
    /// Must match the metric's direction; may be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// r: the first rung, in epochs.
    pub grace_period: u32,
    /// η: rungs at r·η^k, and the top 1/η of a rung continue.
    #[serde(default = "default_reduction_factor")]
    pub reduction_factor: u32,
    /// The last epoch a rung may lie at; the longest config's epochs when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_t: Option<u32>,
    /// Decide a rung only once every config that can reach it has (synchronous successive
    /// halving: decisions independent of worker speed, but no resumes). Off by default: the
    /// paper's asynchronous rule, decided on arrival, with paused configs resumed when later
    /// arrivals make them a top config.
    #[serde(default)]
    pub synchronous: bool,
}

fn default_reduction_factor() -> u32 {
    DEFAULT_REDUCTION_FACTOR
}

/// The median stopping rule as written in a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedianSpec {
    /// The metric compared.
    pub metric: Metric,
    /// Must match the metric's direction; may be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// How many other configs must have reported an epoch before a config is judged at it.
    #[serde(default = "default_n_startup")]
    pub n_startup: u32,
    /// No config is judged at epochs 1..=warmup_epochs.
    #[serde(default = "default_warmup_epochs")]
    pub warmup_epochs: u32,
    /// Judge an epoch only once every running config has reported it (see
    /// [`AshaSpec::synchronous`]).
    #[serde(default)]
    pub synchronous: bool,
}

fn default_n_startup() -> u32 {
    DEFAULT_N_STARTUP
}
fn default_warmup_epochs() -> u32 {
    DEFAULT_WARMUP_EPOCHS
}

impl EarlyStopping {
    /// The metric the rule watches.
    pub fn metric(&self) -> Metric {
        match self {
            EarlyStopping::Asha(s) => s.metric,
            EarlyStopping::Median(s) => s.metric,
        }
    }

    /// The direction: the given `mode`, else the metric's natural one.
    pub fn mode(&self) -> Mode {
        let given = match self {
            EarlyStopping::Asha(s) => s.mode,
            EarlyStopping::Median(s) => s.mode,
        };
        given.unwrap_or_else(|| self.metric().natural_mode())
    }
}

impl SweepRequest {
    /// The metric the sweep ranks by and its direction: the early-stopping
    /// rule's, else test accuracy (maximized) — what the chapter compares.
    pub fn metric(&self) -> (Metric, Mode) {
        match &self.early_stopping {
            Some(rule) => (rule.metric(), rule.mode()),
            None => (Metric::TestAcc, Mode::Max),
        }
    }

    /// The seeds: `seeds`, else `0..repeats`, else [`DEFAULT_SEEDS`].
    /// At least one, at most [`MAX_MEMBERS`], no seed twice.
    pub fn resolved_seeds(&self) -> Result<Vec<u64>, FieldError> {
        let seeds = match (&self.seeds, self.repeats) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    FieldCode::ConflictingFields,
                    "repeats",
                    "give `seeds` or `repeats`, not both",
                ))
            }
            (Some(seeds), None) => seeds.clone(),
            (None, Some(repeats)) => {
                if repeats == 0 || repeats as usize > MAX_MEMBERS {
                    return Err(FieldError::new(
                        FieldCode::OutOfRange,
                        "repeats",
                        format!("repeats must be between 1 and {MAX_MEMBERS}, got {repeats}"),
                    ));
                }
                (0..u64::from(repeats)).collect()
            }
            (None, None) => DEFAULT_SEEDS.to_vec(),
        };
        if seeds.is_empty() {
            return Err(FieldError::new(
                FieldCode::TooSmall,
                "seeds",
                "seeds must list at least one seed",
            ));
        }
        if seeds.len() > MAX_MEMBERS {
            return Err(FieldError::new(
                FieldCode::TooLarge,
                "seeds",
                format!("a sweep may list at most {MAX_MEMBERS} seeds"),
            ));
        }
        for (i, seed) in seeds.iter().enumerate() {
            if seeds[..i].contains(seed) {
                return Err(FieldError::new(
                    FieldCode::DuplicateValue,
                    format!("seeds[{i}]"),
                    format!("seed {seed} is listed twice: every config runs once per seed"),
                ));
            }
        }
        Ok(seeds)
    }
}
