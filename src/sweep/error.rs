//! The sweep module reports lrlab's one field-error type.
//!
//! A rule that a sweep request (or a job generated from it) breaks comes with
//! the path of the field that breaks it. The caller-supplied job validator of
//! [`expand`](super::expand) returns the same type, with `path` relative to the
//! job request (`schedule.lr`); the expansion then rewrites the path to name the
//! sweep field that produced the value (`grid.schedule.power[2]`,
//! `variants[0].schedule.max_steps`, `base.epochs`).

pub use crate::validation::{FieldCode, FieldError};
