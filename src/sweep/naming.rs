//! Names of configs and member jobs.
//!
//! A config is named from what it changes — `power=0.25`,
//! `lr=0.1,power=0.5`, `schedule=cosine` — unless a variant names it. The key
//! is a path's last step; where two overrides of a config end in the same
//! key (`schedule.lr`, `schedule.then.lr`) both use their full path. A
//! generated name that repeats another config's gets `#2`, `#3`, …; an
//! explicit name that repeats another explicit one is an error.

use serde_json::Value;

/// Longest member job name (the job API's limit).
pub const MAX_MEMBER_NAME_LEN: usize = 200;

/// `key=value` pairs for `overrides` (job path → value), joined by commas;
/// `base` when there are none.
pub(crate) fn config_name(overrides: &[(String, Value)]) -> String {
    if overrides.is_empty() {
        return "base".to_string();
    }
    let last_key = |path: &str| path.rsplit('.').next().unwrap_or(path).to_string();
    overrides
        .iter()
        .map(|(path, value)| {
            let key = last_key(path);
            let shared = overrides
                .iter()
                .filter(|(other, _)| last_key(other) == key)
                .count()
                > 1;
            let key = if shared { path.clone() } else { key };
            format!("{key}={}", value_label(value))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A value as it reads in a name: strings bare, a schedule by its kind,
/// anything else as compact JSON.
pub(crate) fn value_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => match map.get("kind").and_then(Value::as_str) {
            Some(kind) => kind.to_string(),
            None => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// Makes `name` unique among `taken` by appending `#2`, `#3`, …
pub(crate) fn unique(name: String, taken: &[String]) -> String {
    let mut candidate = name.clone();
    let mut k = 1;
    while taken.contains(&candidate) {
        k += 1;
        candidate = format!("{name}#{k}");
    }
    candidate
}

/// `sweep/config/seed=N`, the config part shortened (with `…`) so that the
/// whole fits [`MAX_MEMBER_NAME_LEN`]: the name is a label, the config's
/// overrides are stored with the sweep in full.
pub(crate) fn member_name(sweep: &str, config: &str, seed: u64) -> String {
    let tail = format!("/seed={seed}");
    let room = MAX_MEMBER_NAME_LEN.saturating_sub(sweep.chars().count() + 1 + tail.chars().count());
    let config = if config.chars().count() > room {
        let kept: String = config.chars().take(room.saturating_sub(1)).collect();
        format!("{kept}…")
    } else {
        config.to_string()
    };
    format!("{sweep}/{config}{tail}")
}
