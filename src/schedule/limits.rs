//! Size limits that keep any spec cheap to parse, store and evaluate.

/// Deepest allowed nesting of schedules; the root schedule is at depth 1,
/// the `then` of a root warm-up at depth 2, and so on.
pub const MAX_DEPTH: usize = 16;

/// Most `sequential` phases in one spec, counted over all nesting levels.
pub const MAX_PHASES: usize = 64;

/// Most `multi_factor` milestones in one spec, counted over all nesting levels.
pub const MAX_MILESTONES: usize = 10_000;
