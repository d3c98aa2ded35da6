//! The closed forms of the leaf kinds: each evaluates step `t` in O(1)
//! (O(log n) for milestones, at most ~64 loop turns for growing restart
//! periods) and never iterates from 0 to `t`.
//!
//! All arithmetic is f64. Rates are clamped into `[0, f64::MAX]`: a schedule
//! that grows (factor or gamma > 1) saturates at `f64::MAX` instead of
//! reaching infinity, and tiny negative rounding errors become 0. NaN is never
//! produced for a validated spec (products like `0·∞` are avoided), and
//! clamping deliberately lets a NaN through so tests would catch one.
//! Fractions such as `t/n` are formed before multiplying by a rate difference
//! so that huge rates times huge steps cannot overflow.

use std::f64::consts::PI;

use super::spec::{
    Cosine, CosineRestarts, Cyclic, CyclicMode, Factor, InversePower, Linear, MultiFactor,
    Polynomial, Step,
};

/// Clamps a computed rate into `[0, f64::MAX]`, passing NaN through.
pub(crate) fn saturate(x: f64) -> f64 {
    // `+ 0.0` turns a −0 (from a product with a negative difference) into +0.
    x.clamp(0.0, f64::MAX) + 0.0
}

/// `lr·factor^exponent` without `0·∞ = NaN` and without overflowing to ∞.
fn scaled(lr: f64, factor: f64, exponent: f64) -> f64 {
    if lr == 0.0 || exponent == 0.0 {
        return lr;
    }
    saturate(lr * factor.powf(exponent))
}

/// Half-cosine from `from` (at `pos = 0`) to `to` (at `pos = len`).
fn half_cosine(from: f64, to: f64, pos: f64, len: f64) -> f64 {
    to + (from - to) * ((1.0 + (PI * pos / len).cos()) / 2.0)
}

pub(crate) fn inverse_power(s: &InversePower, t: u64) -> f64 {
    saturate(s.lr * (t as f64 + 1.0).powf(-s.power))
}

pub(crate) fn factor(s: &Factor, t: u64) -> f64 {
    scaled(s.lr, s.factor, t as f64).max(s.min_lr)
}

pub(crate) fn step(s: &Step, t: u64) -> f64 {
    scaled(s.lr, s.factor, (t / s.step_size) as f64)
}

pub(crate) fn multi_factor(s: &MultiFactor, t: u64) -> f64 {
    let passed = s.milestones.partition_point(|&m| m <= t);
    scaled(s.lr, s.factor, passed as f64)
}

pub(crate) fn cosine(s: &Cosine, t: u64) -> f64 {
    let (w, max) = (s.warmup_steps, s.max_steps);
    let v = if t < w {
        s.warmup_begin_lr + (s.lr - s.warmup_begin_lr) * (t as f64 / w as f64)
    } else if t <= max {
        half_cosine(s.lr, s.final_lr, (t - w) as f64, (max - w) as f64)
    } else {
        s.final_lr
    };
    saturate(v)
}

pub(crate) fn polynomial(s: &Polynomial, t: u64) -> f64 {
    if t > s.max_steps {
        return s.final_lr;
    }
    let remaining = 1.0 - t as f64 / s.max_steps as f64;
    saturate(s.final_lr + (s.lr - s.final_lr) * remaining.powf(s.power))
}

pub(crate) fn linear(s: &Linear, t: u64) -> f64 {
    if t >= s.steps {
        return s.end_lr;
    }
    saturate(s.start_lr + (s.end_lr - s.start_lr) * (t as f64 / s.steps as f64))
}

/// Offset inside the current restart period and that period's length.
fn restart_position(period: u64, mult: u64, t: u64) -> (u64, f64) {
    if mult == 1 {
        return (t % period, period as f64);
    }
    // Periods grow at least twofold, so this loops at most ~64 times.
    let (mut rem, mut len) = (t, period);
    loop {
        if rem < len {
            return (rem, len as f64);
        }
        rem -= len;
        match len.checked_mul(mult) {
            Some(next) => len = next,
            // The next period is longer than any u64 offset: `rem` lies in it.
            None => return (rem, len as f64 * mult as f64),
        }
    }
}

pub(crate) fn cosine_restarts(s: &CosineRestarts, t: u64) -> f64 {
    let (pos, len) = restart_position(s.period, s.period_mult, t);
    saturate(half_cosine(s.lr, s.final_lr, pos as f64, len))
}

/// PyTorch `CyclicLR`: `cycle = ⌊1 + t/total⌋`, position `x = 1 + t/total − cycle`;
/// the rising part scales by `x/step_ratio`, the falling part by
/// `(x − 1)/(step_ratio − 1)`. Computed with integers (`t mod total`) which
/// is the same quantity without float cancellation.
pub(crate) fn cyclic(s: &Cyclic, t: u64) -> f64 {
    let (up, down) = (s.step_size_up, s.step_size_down);
    let total = up + down;
    let cycle = t / total + 1;
    let pos = t % total;
    let rise = if pos <= up {
        pos as f64 / up as f64
    } else {
        (total - pos) as f64 / down as f64
    };
    let amplitude = (s.max_lr - s.base_lr) * rise;
    if amplitude == 0.0 {
        return s.base_lr;
    }
    let scale = match s.mode {
        CyclicMode::Triangular => 1.0,
        CyclicMode::Triangular2 => 0.5f64.powf((cycle - 1) as f64),
        CyclicMode::ExpRange => s.gamma.powf(t as f64).min(f64::MAX),
    };
    saturate(s.base_lr + amplitude * scale)
}
