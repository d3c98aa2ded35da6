//! Tests of the schedule engine.
