//! ASHA — asynchronous successive halving (Li et al., "A System for
//! Massively Parallel Hyperparameter Tuning", MLSys 2020) — with the
//! paper's *promotion* variant made possible by lrlab's checkpoints.
//!
//! Rungs lie at r·η^k epochs (k = 0, 1, … while ≤ `max_t`). A config reaches
//! a rung when every running seed has reported that epoch; its value there
//! is the mean over those seeds, so the noise of one seed does not decide.
//! It is compared with every config recorded at the rung, and continues if
//! it is among the top max(1, ⌊n/η⌋) of the n recorded. The `max(1, …)`
//! matters for small sweeps: with fewer than η configs ⌊n/η⌋ is 0, and a
//! sweep of two configs under η = 3 would stop both at the first rung.
//!
//! A config outside the top is **paused**, not killed: its members wait at
//! the rung (checkpointed) and are **resumed** as soon as later arrivals at
//! the rung make it a top config — ⌊n/η⌋ grows with n, and a rung's top is
//! judged against everything recorded there, so an early arrival that
//! looked average may turn out to be good. Ray Tune's ASHA cannot do this:
//! it kills trials. When the sweep ends, configs still paused are stopped
//! (`stopped_early` at their rung).
//!
//! With `synchronous`, a rung is decided only once every config that can reach
//! it has (configs paused or stopped below it, withdrawn, or shorter than
//! it excepted): synchronous successive halving, whose decisions do not
//! depend on the workers' speed. Without it each arrival is decided at once.
//!
//! The engine is a pure state machine: values in, [`Decision`]s out. The
//! service's contract: a member that reaches a rung below its last epoch
//! waits until its config has a `continue` or `resume` decision at that
//! rung; `pause` keeps it waiting; `stop` ends it. Ties rank by arrival
//! (the earlier first); a NaN ranks below every number. A config whose last
//! epoch is a rung is recorded there (others compare against it) but gets
//! no decision of its own: it is done.

use super::decision::{Action, ConfigState, Decision};
use super::stopper::StopperError;
use super::stopping::AshaParams;

/// The ASHA engine of one sweep.
#[derive(Debug, Clone)]
pub struct Asha {
    params: AshaParams,
    rungs: Vec<u32>,
    epochs: Vec<u32>,
    states: Vec<ConfigState>,
    /// How many rungs each config has been let past.
    cleared: Vec<usize>,
    /// Per rung: `(config, value)` in arrival order.
    recorded: Vec<Vec<(usize, f64)>>,
    /// Per rung: whether synchronous decisions were taken.
    decided: Vec<bool>,
    finished: bool,
}

impl Asha {
    /// An engine for configs with these epochs (in config order).
    pub fn new(params: AshaParams, config_epochs: Vec<u32>) -> Result<Asha, StopperError> {
        if config_epochs.is_empty() {
            return Err(StopperError::NoConfigs);
        }
        let rungs = params.rungs();
        let n = config_epochs.len();
        Ok(Asha {
            params,
            recorded: vec![Vec::new(); rungs.len()],
            decided: vec![false; rungs.len()],
            rungs,
            epochs: config_epochs,
            states: vec![ConfigState::Running; n],
            cleared: vec![0; n],
            finished: false,
        })
    }

    /// The rungs, in epochs.
    pub fn rungs(&self) -> &[u32] {
        &self.rungs
    }

    /// Where `config` stands.
    pub fn state(&self, config: usize) -> Option<ConfigState> {
        self.states.get(config).copied()
    }

    /// Records `config`'s mean value after `epoch` epochs. Epochs that are not
    /// rungs only mark a config complete at its last epoch; a repeated
    /// (config, epoch) is ignored (the first value stands).
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
        let rung = self.rungs.iter().position(|&r| r == epoch);
        if let Some(k) = rung {
            if self.recorded[k].iter().any(|&(c, _)| c == config) {
                return Ok(Vec::new());
            }
        }
        match self.states[config] {
            ConfigState::Running => {}
            state => return Err(StopperError::NotRunning { config, state }),
        }
        if let Some(&next) = self.rungs.get(self.cleared[config]) {
            if next < epochs && epoch > next {
                return Err(StopperError::SkippedRung { config, rung: next });
            }
        }
        let Some(k) = rung else {
            if epoch == epochs {
                self.states[config] = ConfigState::Completed;
            }
            return Ok(Vec::new());
        };
        self.recorded[k].push((config, value));
        if epoch == epochs {
            self.states[config] = ConfigState::Completed;
        }
        if self.params.synchronous {
            return Ok(self.decide_if_complete(k));
        }
        let (top, cutoff) = self.top(k);
        let mut decisions = Vec::new();
        if self.states[config] == ConfigState::Running {
            let action = if top.contains(&config) {
                Action::Continue
            } else {
                Action::Pause
            };
            decisions.push(self.apply(k, config, value, cutoff, action));
        }
        decisions.extend(self.resume_paused(k));
        Ok(decisions)
    }

    /// `config`'s members all ended without finishing: it leaves every
    /// comparison, which may resume a paused config or complete a synchronous rung.
    pub fn withdraw(&mut self, config: usize) -> Result<Vec<Decision>, StopperError> {
        self.check(config)?;
        match self.states[config] {
            ConfigState::Withdrawn => return Ok(Vec::new()),
            ConfigState::Running | ConfigState::Paused { .. } => {}
            state => return Err(StopperError::NotRunning { config, state }),
        }
        self.states[config] = ConfigState::Withdrawn;
        let mut decisions = Vec::new();
        for k in 0..self.rungs.len() {
            if self.params.synchronous {
                decisions.extend(self.decide_if_complete(k));
            } else {
                decisions.extend(self.resume_paused(k));
            }
        }
        Ok(decisions)
    }

    /// The sweep ends (no member can make progress): every paused config,
    /// and every config still waiting for a synchronous decision, is stopped
    /// at its rung. Later calls return nothing.
    pub fn finish(&mut self) -> Vec<Decision> {
        if std::mem::replace(&mut self.finished, true) {
            return Vec::new();
        }
        let mut decisions = Vec::new();
        for config in 0..self.states.len() {
            let waiting_at = match self.states[config] {
                ConfigState::Paused { epoch } => self.rungs.iter().position(|&r| r == epoch),
                // Reached a rung below its last epoch, not let past it yet.
                ConfigState::Running => (0..self.rungs.len()).find(|&k| {
                    self.cleared[config] == k
                        && self.rungs[k] < self.epochs[config]
                        && self.value_at(k, config).is_some()
                }),
                _ => None,
            };
            if let Some(k) = waiting_at {
                let (_, cutoff) = self.top(k);
                let value = self.value_at(k, config).unwrap_or(f64::NAN);
                decisions.push(self.apply(k, config, value, cutoff, Action::Stop));
            }
        }
        decisions
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

    fn value_at(&self, k: usize, config: usize) -> Option<f64> {
        self.recorded[k]
            .iter()
            .find(|&&(c, _)| c == config)
            .map(|&(_, v)| v)
    }

    /// The top max(1, ⌊n/η⌋) configs at rung `k` among the n not withdrawn,
    /// and the cutoff (the worst value among them; NaN when none).
    fn top(&self, k: usize) -> (Vec<usize>, f64) {
        let mut entries: Vec<(usize, f64)> = self.recorded[k]
            .iter()
            .copied()
            .filter(|&(c, _)| self.states[c] != ConfigState::Withdrawn)
            .collect();
        // A stable sort: equal values keep their arrival order.
        entries.sort_by(|a, b| self.params.mode.better_first(a.1, b.1));
        let eta = self.params.reduction_factor.max(1) as usize;
        let keep = (entries.len() / eta).max(1).min(entries.len());
        let cutoff = keep
            .checked_sub(1)
            .and_then(|i| entries.get(i))
            .map_or(f64::NAN, |&(_, v)| v);
        (entries[..keep].iter().map(|&(c, _)| c).collect(), cutoff)
    }

    fn resume_paused(&mut self, k: usize) -> Vec<Decision> {
        let rung = self.rungs[k];
        let (top, cutoff) = self.top(k);
        let mut resumed: Vec<usize> = top
            .into_iter()
            .filter(|&c| self.states[c] == ConfigState::Paused { epoch: rung })
            .collect();
        resumed.sort_unstable();
        resumed
            .into_iter()
            .map(|c| {
                let value = self.value_at(k, c).unwrap_or(f64::NAN);
                self.apply(k, c, value, cutoff, Action::Resume)
            })
            .collect()
    }

    fn decide_if_complete(&mut self, k: usize) -> Vec<Decision> {
        if self.decided[k] {
            return Vec::new();
        }
        let rung = self.rungs[k];
        let complete = (0..self.states.len()).all(|c| {
            self.value_at(k, c).is_some()
                || self.epochs[c] < rung
                || match self.states[c] {
                    ConfigState::Withdrawn => true,
                    ConfigState::Paused { epoch } | ConfigState::Stopped { epoch } => epoch < rung,
                    ConfigState::Running | ConfigState::Completed => false,
                }
        });
        if !complete {
            return Vec::new();
        }
        self.decided[k] = true;
        let (top, cutoff) = self.top(k);
        let mut waiting: Vec<(usize, f64)> = self.recorded[k]
            .iter()
            .copied()
            .filter(|&(c, _)| self.states[c] == ConfigState::Running)
            .collect();
        waiting.sort_by_key(|&(c, _)| c);
        waiting
            .into_iter()
            .map(|(c, value)| {
                let action = if top.contains(&c) {
                    Action::Continue
                } else {
                    Action::Pause
                };
                self.apply(k, c, value, cutoff, action)
            })
            .collect()
    }

    fn apply(
        &mut self,
        k: usize,
        config: usize,
        value: f64,
        cutoff: f64,
        action: Action,
    ) -> Decision {
        let rung_epoch = self.rungs[k];
        match action {
            Action::Continue | Action::Resume => {
                self.states[config] = ConfigState::Running;
                self.cleared[config] = self.cleared[config].max(k + 1);
            }
            Action::Pause => self.states[config] = ConfigState::Paused { epoch: rung_epoch },
            Action::Stop => self.states[config] = ConfigState::Stopped { epoch: rung_epoch },
        }
        Decision {
            rung_epoch,
            config,
            value,
            cutoff,
            action,
        }
    }
}
