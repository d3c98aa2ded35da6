//! The schedule engine's error: a [`FieldError`] whose path is relative to
//! the spec's root.

pub use crate::validation::{join, FieldCode, FieldError};

/// Why a schedule spec was rejected, with the field that caused it.
pub type SpecError = FieldError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_joins_paths_with_dots_and_brackets() {
        let e = SpecError::new(FieldCode::OutOfRange, "then.max_steps", "x");
        assert_eq!(e.prefixed("schedule").path, "schedule.then.max_steps");
        let root = SpecError::new(FieldCode::InvalidType, "", "x");
        assert_eq!(root.prefixed("schedule").path, "schedule");
        let idx = SpecError::new(FieldCode::OutOfRange, "[3]", "x");
        assert_eq!(idx.prefixed("milestones").path, "milestones[3]");
        let unprefixed = SpecError::new(FieldCode::OutOfRange, "lr", "x");
        assert_eq!(unprefixed.prefixed("").path, "lr");
    }

    #[test]
    fn display_is_the_message() {
        let e = SpecError::new(FieldCode::OutOfRange, "lr", "`lr` must be finite and >= 0");
        assert_eq!(e.to_string(), "`lr` must be finite and >= 0");
    }
}
