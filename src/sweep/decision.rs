//! What the early-stopping engines take in and give out.

use serde::{Deserialize, Serialize};

/// What a decision says to do with a config's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Go on past the rung.
    Continue,
    /// Wait at the rung (checkpointed, off the workers): not in the top
    /// 1/η yet, but a later arrival may change that.
    Pause,
    /// A paused config is in the top now: go on from its checkpoint.
    Resume,
    /// End the members here: they are `stopped_early` at this epoch.
    Stop,
}

impl Action {
    /// The action's word in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Continue => "continue",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Stop => "stop",
        }
    }
}

/// One early-stopping decision, stored and served so a user can see why a
/// run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The epoch (1-based, epochs completed) the decision is taken at: an
    /// ASHA rung, or the epoch a median judgement compared.
    pub rung_epoch: u32,
    /// Index of the config.
    pub config: usize,
    /// The config's value there (the mean over its seeds). A NaN (a
    /// diverged loss) is `null` in JSON and ranks below every number.
    #[serde(with = "nan_as_null")]
    pub value: f64,
    /// The value a config had to reach: for ASHA the worst value still in
    /// the top 1/η of the rung, for the median rule the median of the others.
    #[serde(with = "nan_as_null")]
    pub cutoff: f64,
    pub action: Action,
}

impl Decision {
    /// Whether two decisions are the same decision. Values are compared by
    /// their bits, so a NaN value matches itself (a replay recomputes the
    /// same numbers from the same stored metrics).
    pub fn same_as(&self, other: &Decision) -> bool {
        self.rung_epoch == other.rung_epoch
            && self.config == other.config
            && self.action == other.action
            && self.value.to_bits() == other.value.to_bits()
            && self.cutoff.to_bits() == other.cutoff.to_bits()
    }
}

/// Something that happened to a sweep's configs, in the order it happened.
/// Stored in that order, the observations rebuild an engine after a
/// restart (see [`Stopper::replay`](super::Stopper::replay)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Observation {
    /// Every running seed of `config` has reported `epoch` (1-based); `value`
    /// is their mean of the sweep's metric.
    Value {
        config: usize,
        epoch: u32,
        #[serde(with = "nan_as_null")]
        value: f64,
    },
    /// Every member of `config` ended without finishing (failed or
    /// canceled): it no longer takes part in comparisons.
    Withdrawn { config: usize },
    /// No member can make progress any more: the sweep ends.
    Finished,
}

/// Where a config stands with the early-stopping engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConfigState {
    /// Running, or waiting at a rung for its decision.
    Running,
    /// Paused at the rung `epoch`; may be resumed.
    Paused { epoch: u32 },
    /// Stopped early at `epoch`: its members end `stopped_early` there.
    Stopped { epoch: u32 },
    /// Reached its last epoch.
    Completed,
    /// Its members ended without finishing; no longer compared.
    Withdrawn,
}

/// JSON has no NaN: a NaN value is written as `null` and read back as NaN, so a
/// stored decision about a diverged config replays to the same bits.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_value_round_trips_through_json_as_null() {
        let decision = Decision {
            rung_epoch: 2,
            config: 1,
            value: f64::NAN,
            cutoff: 0.5,
            action: Action::Stop,
        };
        let json = serde_json::to_string(&decision).unwrap();
        assert!(json.contains("\"value\":null"), "{json}");
        let back: Decision = serde_json::from_str(&json).unwrap();
        assert!(back.same_as(&decision));
        let observation = Observation::Value {
            config: 0,
            epoch: 1,
            value: f64::NAN,
        };
        let back: Observation =
            serde_json::from_str(&serde_json::to_string(&observation).unwrap()).unwrap();
        assert!(matches!(back, Observation::Value { value, .. } if value.is_nan()));
    }
}
