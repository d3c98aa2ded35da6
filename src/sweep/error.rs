//! The one error shape of the sweep module.

use thiserror::Error;

/// A rule that a sweep request (or a job generated from it) breaks, with the
/// path of the field that breaks it.
///
/// This is the shape of lrlab's 422 bodies (`{"error": {"code", "message",
/// "path"}}`), so the HTTP layer maps it one to one. The caller-supplied job
/// validator of [`expand`](super::expand) returns it too, with `path`
/// relative to the job request (`schedule.lr`); the expansion then rewrites
/// the path to name the sweep field that produced the value
/// (`grid.schedule.power[2]`, `variants[0].schedule.max_steps`, `base.epochs`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct FieldError {
    /// Stable error class, e.g. `out_of_range`, `invalid_path`, `too_large`.
    pub code: &'static str,
    /// Dotted path with array indices; empty for the root.
    pub path: String,
    /// One sentence naming the field, the value and the rule.
    pub message: String,
}

impl FieldError {
    /// An error of class `code` at `path`.
    pub fn new(code: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            code,
            path: path.into(),
            message: message.into(),
        }
    }
}
