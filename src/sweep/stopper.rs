//! One interface over the early-stopping engines, and replay after a restart.
//!
//! The service stores every [`Observation`] before acting on it and every
//! [`Decision`] the engine returns. After a restart,
//! [`Stopper::replay`] feeds the stored observations to a fresh engine —
//! which is deterministic, so it takes the same decisions in the same order
//! — checks that the stored decisions are exactly the first ones, and
//! returns only the decisions that were computed but not stored before the
//! crash. No decision is lost and none is taken twice.

use thiserror::Error;

use super::asha::Asha;
use super::decision::{ConfigState, Decision, Observation};
use super::median::Median;
use super::stopping::StoppingParams;

/// A call the engine's state does not allow: a bug in the caller, or
/// stored state that does not belong to this sweep.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StopperError {
    #[error("an early-stopping engine needs at least one config")]
    NoConfigs,
    #[error("config {config} does not exist (the sweep has {configs})")]
    UnknownConfig { config: usize, configs: usize },
    #[error("config {config} runs {epochs} epochs: there is no epoch {epoch}")]
    EpochOutOfRange {
        config: usize,
        epoch: u32,
        epochs: u32,
    },
    #[error("config {config} is not running ({state:?})")]
    NotRunning { config: usize, state: ConfigState },
    #[error("config {config} reported past rung {rung} without a decision to continue there")]
    SkippedRung { config: usize, rung: u32 },
    #[error("the sweep has finished")]
    Finished,
    #[error("stored decision {index} does not match the replayed one: the stored state belongs to another sweep or another version")]
    ReplayMismatch { index: usize },
}

/// An early-stopping engine.
#[derive(Debug, Clone)]
pub enum Stopper {
    Asha(Asha),
    Median(Median),
}

impl Stopper {
    /// A fresh engine for configs with these epochs (in config order).
    pub fn new(params: StoppingParams, config_epochs: Vec<u32>) -> Result<Stopper, StopperError> {
        Ok(match params {
            StoppingParams::Asha(p) => Stopper::Asha(Asha::new(p, config_epochs)?),
            StoppingParams::Median(p) => Stopper::Median(Median::new(p, config_epochs)?),
        })
    }

    /// Feeds one observation; returns the decisions it causes.
    pub fn observe(&mut self, observation: &Observation) -> Result<Vec<Decision>, StopperError> {
        match *observation {
            Observation::Value {
                config,
                epoch,
                value,
            } => self.record(config, epoch, value),
            Observation::Withdrawn { config } => self.withdraw(config),
            Observation::Finished => Ok(self.finish()),
        }
    }

    /// `config`'s mean over its running seeds after `epoch` epochs.
    pub fn record(
        &mut self,
        config: usize,
        epoch: u32,
        value: f64,
    ) -> Result<Vec<Decision>, StopperError> {
        match self {
            Stopper::Asha(engine) => engine.record(config, epoch, value),
            Stopper::Median(engine) => engine.record(config, epoch, value),
        }
    }

    /// Every member of `config` ended without finishing.
    pub fn withdraw(&mut self, config: usize) -> Result<Vec<Decision>, StopperError> {
        match self {
            Stopper::Asha(engine) => engine.withdraw(config),
            Stopper::Median(engine) => engine.withdraw(config),
        }
    }

    /// The sweep ends: paused configs are stopped.
    pub fn finish(&mut self) -> Vec<Decision> {
        match self {
            Stopper::Asha(engine) => engine.finish(),
            Stopper::Median(engine) => engine.finish(),
        }
    }

    /// Where `config` stands.
    pub fn state(&self, config: usize) -> Option<ConfigState> {
        match self {
            Stopper::Asha(engine) => engine.state(config),
            Stopper::Median(engine) => engine.state(config),
        }
    }

    /// Rebuilds the engine from the stored observations (in the order they
    /// were observed) and checks it against the stored decisions (in the
    /// order they were taken). Returns the engine and the decisions the
    /// observations imply that were not stored yet — to be stored and
    /// carried out now; empty when the store was consistent.
    pub fn replay(
        params: StoppingParams,
        config_epochs: Vec<u32>,
        observations: &[Observation],
        stored: &[Decision],
    ) -> Result<(Stopper, Vec<Decision>), StopperError> {
        let mut engine = Stopper::new(params, config_epochs)?;
        let mut all = Vec::new();
        for observation in observations {
            all.extend(engine.observe(observation)?);
        }
        if let Some(index) = stored
            .iter()
            .enumerate()
            .position(|(i, d)| all.get(i).is_none_or(|r| !r.same_as(d)))
        {
            return Err(StopperError::ReplayMismatch { index });
        }
        let new = all.split_off(stored.len());
        Ok((engine, new))
    }
}
