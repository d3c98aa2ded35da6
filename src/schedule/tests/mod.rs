//! Tests of the schedule engine. Expected values are computed independently
//! of the implementation (see each test's comment for how).

mod catalog;
mod kinds;
mod parsing;
mod plateau;
mod properties;
mod queries;
mod validation;

use serde_json::Value;

use super::Schedule;

/// Parses and validates a spec the test knows to be valid.
pub(super) fn schedule(spec: Value) -> Schedule {
    match Schedule::from_json(&spec) {
        Ok(s) => s,
        Err(e) => panic!("spec {spec} rejected at `{}`: {}", e.path, e.message),
    }
}

/// Asserts `lr(t)` matches reference values to 1e-12 relative (the
/// references come from Python floats, which may round differently in the
/// last bits when an expression is ordered differently).
pub(super) fn assert_rates(s: &Schedule, ts: &[u64], expected: &[f64]) {
    assert_eq!(ts.len(), expected.len(), "test table is malformed");
    for (&t, &want) in ts.iter().zip(expected) {
        let got = s.lr(t);
        let tol = 1e-12 * want.abs().max(1e-300);
        assert!(
            (got - want).abs() <= tol,
            "lr({t}) = {got:e}, expected {want:e} for {:?}",
            s.spec()
        );
    }
}
