//! Deep-merging a variant's overrides into the base request.
//!
//! The rules are those of JSON Merge Patch (RFC 7386) — objects merge key by
//! key, any other value replaces, `null` removes the field — plus one for
//! lrlab's tagged schedules: an object whose `kind` differs from the base's
//! replaces it whole. So `{"schedule": {"lr": 0.2}}` changes only the rate
//! of the base's schedule, while `{"schedule": {"kind": "cosine", …}}` on an
//! `inverse_power` base is a cosine, not a cosine with a stray `power`.

use serde_json::{Map, Value};

/// Merges `patch` into `target` and records every field the patch set (or
/// removed: `null`) as `(path relative to the job, value set)`, in key
/// order. Those pairs are the variant's overrides as the sweep shows them,
/// and they let an invalid job be blamed on the variant field that made it.
pub(crate) fn merge_into(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    prefix: &str,
    touched: &mut Vec<(String, Value)>,
) {
    for (key, value) in patch {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (target.get_mut(key), value) {
            (_, Value::Null) => {
                target.remove(key);
                touched.push((path, Value::Null));
            }
            (Some(Value::Object(existing)), Value::Object(inner))
                if !kind_changes(existing, inner) =>
            {
                merge_into(existing, inner, &path, touched);
            }
            _ => {
                let value = without_nulls(value);
                target.insert(key.clone(), value.clone());
                touched.push((path, value));
            }
        }
    }
}

fn kind_changes(existing: &Map<String, Value>, patch: &Map<String, Value>) -> bool {
    match (existing.get("kind"), patch.get("kind")) {
        (Some(old), Some(new)) => old != new,
        _ => false,
    }
}

/// A replacing value as Merge Patch applies it: `null` members dropped.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
