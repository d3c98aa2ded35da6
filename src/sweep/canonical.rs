//! The canonical form of a sweep request, for `Idempotency-Key` hashing:
//! a retry that differs only in spelling (defaults left out or written,
//! `repeats: 3` or `seeds: [0, 1, 2]`, key order) hashes the same.

use serde::Serialize;
use serde_json::Value;

use super::ordered::Ordered;
use super::request::{EarlyStopping, SweepRequest, Variant};

/// The request with every default filled in, as JSON. Object keys are
/// sorted (lrlab's `serde_json` maps are ordered by key) except the grid's,
/// which keep the client's order because that order numbers and names the
/// configs. Seeds are listed (`repeats` resolved), the name is trimmed, and
/// the early-stopping rule has its `mode`, `reduction_factor` and `max_t`.
/// The result is itself a valid request, and its own canonical form.
///
/// Meant for requests that [`expand`](super::expand) accepted; an invalid
/// one still gets a deterministic string.
pub fn canonical_json(request: &SweepRequest) -> String {
    #[derive(Serialize)]
    struct Canonical<'a> {
        name: Option<&'a str>,
        base: &'a Value,
        grid: &'a Ordered<Vec<Value>>,
        variants: &'a [Variant],
        seeds: Vec<u64>,
        early_stopping: Option<EarlyStopping>,
        max_concurrent: Option<u32>,
        lockstep: bool,
    }
    let seeds = request
        .resolved_seeds()
        .unwrap_or_else(|_| request.seeds.clone().unwrap_or_default());
    let early_stopping = request.early_stopping.clone().map(|rule| {
        let mode = rule.mode();
        match rule {
            EarlyStopping::Asha(mut spec) => {
                spec.mode = Some(mode);
                spec.max_t = spec.max_t.or_else(|| longest_epochs(request));
                EarlyStopping::Asha(spec)
            }
            EarlyStopping::Median(mut spec) => {
                spec.mode = Some(mode);
                EarlyStopping::Median(spec)
            }
        }
    });
    let canonical = Canonical {
        name: request.name.as_deref().map(str::trim),
        base: &request.base,
        grid: &request.grid,
        variants: &request.variants,
        seeds,
        early_stopping,
        max_concurrent: request.max_concurrent,
        lockstep: request.lockstep,
    };
    serde_json::to_string(&canonical).expect("JSON values, strings and integers always serialize")
}

/// The most epochs any config runs, as [`expand`](super::expand) resolves
/// `max_t`: grid configs take the grid's `epochs` if it varies them, else
/// the base's; a variant its own or the base's.
fn longest_epochs(request: &SweepRequest) -> Option<u32> {
    let base = request.base.get("epochs");
    let mut sources: Vec<&Value> = Vec::new();
    if request.grid.is_empty() && request.variants.is_empty() {
        sources.extend(base);
    }
    if !request.grid.is_empty() {
        match request.grid.get("epochs") {
            Some(values) => sources.extend(values),
            None => sources.extend(base),
        }
    }
    for variant in &request.variants {
        sources.extend(variant.overrides.get("epochs").or(base));
    }
    sources
        .into_iter()
        .filter_map(|v| v.as_u64().and_then(|e| u32::try_from(e).ok()))
        .max()
}
