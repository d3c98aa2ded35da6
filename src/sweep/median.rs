//! The median stopping rule (Golovin et al., "Google Vizier", KDD 2017),
//! on per-config means over seeds.
//!
//! A config is judged at an epoch e (1-based) if e is past `warmup_epochs`,
//! before its own last epoch, and at least `n_startup` other configs have a
//! value at e; it is stopped when its value is worse than the median of
//! theirs (an even count takes the mean of the middle two). Each config is
//! judged at most once per epoch: one that arrived when too few others had
//! reported is judged as soon as enough have. Only stops are decisions —
//! a config not stopped simply runs on, so its members never wait.
//!
//! A config stopped at epoch s still counts in the medians of epochs ≤ s,
//! never of later ones, even if its members ran ahead before the stop took
//! effect: what ran after a stop must not depend on timing. With
//! `synchronous`, epoch e is judged only once every config still running has
//! reported it, so the decisions do not depend on arrival order either.

use super::decision::{Action, ConfigState, Decision};
use super::metric::Mode;
use super::stopper::StopperError;
use super::stopping::MedianParams;

/// The median-rule engine of one sweep.
#[derive(Debug, Clone)]
pub struct Median {
    params: MedianParams,
    epochs: Vec<u32>,
    states: Vec<ConfigState>,
    /// Per epoch (index e − 1): `(config, value)` in arrival order.
    values: Vec<Vec<(usize, f64)>>,
    /// Per epoch: the configs judged there.
    judged: Vec<Vec<usize>>,
    /// Lockstep: every epoch up to this one has been judged.
    complete_upto: u32,
    finished: bool,
}

impl Median {
    /// An engine for configs with these epochs (in config order).
    pub fn new(params: MedianParams, config_epochs: Vec<u32>) -> Result<Median, StopperError> {
        if config_epochs.is_empty() {
            return Err(StopperError::NoConfigs);
        }
        let longest = config_epochs.iter().copied().max().unwrap_or(0) as usize;
        let n = config_epochs.len();
        Ok(Median {
            params,
            epochs: config_epochs,
            states: vec![ConfigState::Running; n],
            values: vec![Vec::new(); longest],
            judged: vec![Vec::new(); longest],
            complete_upto: 0,
            finished: false,
        })
    }

    /// Where `config` stands.
    pub fn state(&self, config: usize) -> Option<ConfigState> {
        self.states.get(config).copied()
    }

    /// Records `config`'s mean value after `epoch` epochs. A repeated
    /// (config, epoch) is ignored, and so is a value that arrives after the
    /// config was stopped (its members ran on until the stop reached them).
    pub fn record(
        &mut self,
        config: usize,
        epoch: u32,
        value: f64,
    ) -> Result<Vec<Decision>, StopperError> {
        let epochs = self.check(config)?;
        if epoch == 0 || epoch > epochs {
            return Err(StopperError::EpochOutOfRange {
                config,
                epoch,
                epochs,
            });
        }
        let at = (epoch - 1) as usize;
        if self.values[at].iter().any(|&(c, _)| c == config) {
            return Ok(Vec::new());
        }
        match self.states[config] {
            ConfigState::Running => {}
            ConfigState::Stopped { .. } => return Ok(Vec::new()),
            state => return Err(StopperError::NotRunning { config, state }),
        }
        self.values[at].push((config, value));
        if epoch == epochs {
            self.states[config] = ConfigState::Completed;
        }
        if self.params.synchronous {
            return Ok(self.judge_complete_epochs());
        }
        Ok(self.judge_epoch(epoch))
    }

    /// `config`'s members all ended without finishing: it leaves the medians
    /// (which may complete a synchronous epoch).
    pub fn withdraw(&mut self, config: usize) -> Result<Vec<Decision>, StopperError> {
        self.check(config)?;
        match self.states[config] {
            ConfigState::Withdrawn => return Ok(Vec::new()),
            ConfigState::Running => {}
            state => return Err(StopperError::NotRunning { config, state }),
        }
        self.states[config] = ConfigState::Withdrawn;
        Ok(if self.params.synchronous {
            self.judge_complete_epochs()
        } else {
            Vec::new()
        })
    }

    /// The sweep ends. The median rule pauses nothing, so nothing is left
    /// to decide; later calls to `record` fail.
    pub fn finish(&mut self) -> Vec<Decision> {
        self.finished = true;
        Vec::new()
    }

    fn check(&self, config: usize) -> Result<u32, StopperError> {
        if self.finished {
            return Err(StopperError::Finished);
        }
        self.epochs
            .get(config)
            .copied()
            .ok_or(StopperError::UnknownConfig {
                config,
                configs: self.epochs.len(),
            })
    }

    /// Whether `config`'s values at `epoch` take part in medians: not
    /// withdrawn, and not stopped before it.
    fn counts_at(&self, config: usize, epoch: u32) -> bool {
        match self.states[config] {
            ConfigState::Withdrawn => false,
            ConfigState::Stopped { epoch: stopped } => stopped >= epoch,
            _ => true,
        }
    }

    fn judge_complete_epochs(&mut self) -> Vec<Decision> {
        let mut decisions = Vec::new();
        while (self.complete_upto as usize) < self.values.len() {
            let epoch = self.complete_upto + 1;
            let at = (epoch - 1) as usize;
            let complete = (0..self.states.len()).all(|c| {
                self.epochs[c] < epoch
                    || !self.counts_at(c, epoch)
                    || self.values[at].iter().any(|&(v, _)| v == c)
            });
            if !complete {
                break;
            }
            decisions.extend(self.judge_epoch(epoch));
            self.complete_upto = epoch;
        }
        decisions
    }

    /// Judges, in arrival order, every config with a value at `epoch` that
    /// can be judged there and has not been.
    fn judge_epoch(&mut self, epoch: u32) -> Vec<Decision> {
        if epoch <= self.params.warmup_epochs {
            return Vec::new();
        }
        let at = (epoch - 1) as usize;
        let mut decisions = Vec::new();
        for i in 0..self.values[at].len() {
            let (config, value) = self.values[at][i];
            if self.states[config] != ConfigState::Running
                || epoch >= self.epochs[config]
                || self.judged[at].contains(&config)
            {
                continue;
            }
            let others: Vec<f64> = self.values[at]
                .iter()
                .filter(|&&(c, _)| c != config && self.counts_at(c, epoch))
                .map(|&(_, v)| v)
                .collect();
            if others.len() < self.params.n_startup as usize {
                continue;
            }
            self.judged[at].push(config);
            let cutoff = median(&others, self.params.mode);
            if self.params.mode.is_worse(value, cutoff) {
                self.states[config] = ConfigState::Stopped { epoch };
                decisions.push(Decision {
                    rung_epoch: epoch,
                    config,
                    value,
                    cutoff,
                    action: Action::Stop,
                });
            }
        }
        decisions
    }
}

/// The median of `values` as ranked by `mode`, a NaN counting as the worst
/// value: under `max` the median of [0.5, NaN, NaN] is −∞ (`null` in JSON).
/// NaN when `values` is empty.
fn median(values: &[f64], mode: Mode) -> f64 {
    let mut keys: Vec<f64> = values.iter().map(|&v| mode.key(v)).collect();
    keys.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
    let n = keys.len();
    if n == 0 {
        return f64::NAN;
    }
    let key = if n % 2 == 1 {
        keys[n / 2]
    } else {
        (keys[n / 2 - 1] + keys[n / 2]) / 2.0
    };
    match mode {
        Mode::Max => key,
        Mode::Min => -key,
    }
}
