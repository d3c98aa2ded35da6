//! The one error type of the schedule engine.

use thiserror::Error;

/// Why a schedule spec was rejected, with the field that caused it.
///
/// The HTTP layer turns this into a 422 `{"error": {"code", "message", "path"}}`,
/// so `code` is a stable machine-readable word and `path` names the offending
/// field relative to the spec root (`"then.max_steps"`, `"phases[1].schedule.lr"`,
/// `""` for the root itself). Callers that embed the spec in a larger document
/// use [`SpecError::prefixed`] to make the path absolute.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct SpecError {
    /// Stable error class: `unknown_field`, `missing_field`, `invalid_type`,
    /// `invalid_value`, `unknown_kind`, `out_of_range`, `not_increasing`,
    /// `too_deep` or `too_large`.
    pub code: &'static str,
    /// Field path relative to the spec root; empty for the root.
    pub path: String,
    /// Human-readable explanation naming the field and what was expected.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        SpecError {
            code,
            path: path.into(),
            message: message.into(),
        }
    }

    /// Puts `prefix` in front of the path, so that an error found in a spec
    /// nested in a request body (`"schedule"`) names the field in that body
    /// (`"schedule.then.max_steps"`).
    pub fn prefixed(mut self, prefix: &str) -> SpecError {
        self.path = join(prefix, &self.path);
        self
    }
}

/// Joins two path segments: `join("then", "lr") == "then.lr"`,
/// `join("phases", "[2]") == "phases[2]"`, and an empty side disappears.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else if rest.is_empty() {
        prefix.to_owned()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_joins_paths_with_dots_and_brackets() {
        let e = SpecError::new("out_of_range", "then.max_steps", "x");
        assert_eq!(e.prefixed("schedule").path, "schedule.then.max_steps");
        let root = SpecError::new("invalid_type", "", "x");
        assert_eq!(root.prefixed("schedule").path, "schedule");
        let idx = SpecError::new("out_of_range", "[3]", "x");
        assert_eq!(idx.prefixed("milestones").path, "milestones[3]");
        let unprefixed = SpecError::new("out_of_range", "lr", "x");
        assert_eq!(unprefixed.prefixed("").path, "lr");
    }

    #[test]
    fn display_is_the_message() {
        let e = SpecError::new("out_of_range", "lr", "`lr` must be finite and >= 0");
        assert_eq!(e.to_string(), "`lr` must be finite and >= 0");
    }
}
