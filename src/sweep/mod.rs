//! Sweeps: one job request varied over a grid and explicit variants, each
//! config run on the same seeds, summarized with confidence intervals, with
//! hopeless configs stopped early. Pure: no database, no HTTP, no training —
//! the service stores and runs what this module plans and decides.
//!
//! Why it is built this way:
//! - **Common seeds.** A seed fixes the initial weights and the batch order,
//!   so configs run on the same seeds can be compared *pairwise*: the
//!   seed's luck cancels in the difference, and three seeds separate
//!   schedules whose unpaired intervals overlap ([`stats`]).
//! - **Means over seeds decide early stopping**, so the noise of one seed
//!   does not stop a config ([`Asha`], [`Median`]).
//! - **Pause, not kill.** lrlab's checkpoints let ASHA pause a config at a
//!   rung and resume it when later arrivals make it a top config — the
//!   paper's promotion rule, which a kill-only implementation cannot follow.
//! - **Pure state machines, stored observations.** The engines take
//!   observations and give decisions; replaying the stored observations
//!   rebuilds them after a restart without repeating a decision ([`Stopper::replay`]).
//!
//! Flow: [`SweepRequest`] (serde) → [`expand`] (validates every member job
//! with the caller's validator) → [`SweepPlan`] (configs, seeds, members,
//! resolved [`StoppingParams`]) → [`Stopper`] during the run →
//! [`summarize`] and [`band_series`] over the stored metrics.

mod asha;
mod band;
mod canonical;
mod decision;
mod error;
mod expand;
mod id;
mod median;
mod merge;
mod metric;
mod naming;
mod ordered;
mod path;
mod plan;
mod presets;
mod request;
mod rules;
pub mod stats;
mod stopper;
mod stopping;
mod summary;
mod tdist;
mod warnings;

#[cfg(test)]
mod tests;

pub use asha::Asha;
pub use band::{band_chart, band_series, bands_csv, csv_field, BandKind, BandPoint, ConfigBand};
pub use canonical::canonical_json;
pub use decision::{Action, ConfigState, Decision, Observation};
pub use error::FieldError;
pub use expand::expand;
pub use id::SweepId;
pub use median::Median;
pub use metric::{Metric, Mode, UnknownMetric};
pub use naming::MAX_MEMBER_NAME_LEN;
pub use ordered::Ordered;
pub use plan::{ConfigOrigin, Member, SweepConfig, SweepPlan};
pub use presets::{preset, presets, Preset};
pub use request::{
    AshaSpec, EarlyStopping, MedianSpec, SweepRequest, Variant, DEFAULT_N_STARTUP,
    DEFAULT_REDUCTION_FACTOR, DEFAULT_SEEDS, DEFAULT_WARMUP_EPOCHS, MAX_GRID_VALUES, MAX_MEMBERS,
    MAX_SWEEP_NAME_LEN,
};
pub use stats::{Difference, Estimate, Interval, Method};
pub use stopper::{Stopper, StopperError};
pub use stopping::{AshaParams, MedianParams, StoppingParams, MAX_REDUCTION_FACTOR};
pub use summary::{summarize, ConfigSeries, ConfigSummary, MemberSeries, Summary};
pub use tdist::{student_t_cdf, student_t_quantile};
pub use warnings::{sweep_warnings, SweepWarning};
