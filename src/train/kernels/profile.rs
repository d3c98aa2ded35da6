//! Opt-in timing of the kernels' forward and backward passes, per layer shape, so that
//! `lrlab bench` can say where a training step's time goes. Off by default: then each op pays
//! one relaxed atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static TIMINGS: Mutex<Vec<LayerTiming>> = Mutex::new(Vec::new());

/// Serialises the tests that switch the (process-wide) profiler on and off.
#[cfg(test)]
pub(crate) static TEST_LOCK: Mutex<()> = Mutex::new(());

/// Accumulated time of one layer shape (e.g. `conv2d+relu 1x28x28 -> 6x28x28, 5x5 pad 2`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerTiming {
    /// The op and its per-example shapes.
    pub layer: String,
    /// Examples that went through the forward pass.
    pub forward_examples: u64,
    /// Time in the forward pass.
    pub forward: Duration,
    /// Examples that went through the backward pass.
    pub backward_examples: u64,
    /// Time in the backward pass.
    pub backward: Duration,
}

impl LayerTiming {
    /// Mean forward time per batch of `batch` examples.
    pub fn forward_per_batch(&self, batch: usize) -> Duration {
        per_batch(self.forward, self.forward_examples, batch)
    }

    /// Mean backward time per batch of `batch` examples.
    pub fn backward_per_batch(&self, batch: usize) -> Duration {
        per_batch(self.backward, self.backward_examples, batch)
    }
}

fn per_batch(total: Duration, examples: u64, batch: usize) -> Duration {
    if examples == 0 {
        return Duration::ZERO;
    }
    total.mul_f64(batch as f64 / examples as f64)
}

/// Starts (or stops) recording; starting clears what was recorded before.
pub fn set_profiling(on: bool) {
    if on {
        lock().clear();
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// What was recorded since profiling started, in the order the layers were first seen.
pub fn profile() -> Vec<LayerTiming> {
    lock().clone()
}

/// The recorder's state stays consistent even if a thread panicked while holding the lock
/// (every update is a single push or add), so a poisoned lock is simply taken over.
fn lock() -> std::sync::MutexGuard<'static, Vec<LayerTiming>> {
    TIMINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which pass an op is running.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pass {
    Forward,
    Backward,
}

/// Runs `f`, and when profiling is on adds its duration to the layer `layer()` names.
pub(crate) fn timed<R>(
    layer: impl FnOnce() -> String,
    pass: Pass,
    examples: usize,
    f: impl FnOnce() -> R,
) -> R {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let started = Instant::now();
    let out = f();
    let elapsed = started.elapsed();
    let name = layer();
    let mut timings = lock();
    let idx = match timings.iter().position(|t| t.layer == name) {
        Some(i) => i,
        None => {
            timings.push(LayerTiming {
                layer: name,
                ..LayerTiming::default()
            });
            timings.len() - 1
        }
    };
    let t = &mut timings[idx];
    match pass {
        Pass::Forward => {
            t.forward += elapsed;
            t.forward_examples += examples as u64;
        }
        Pass::Backward => {
            t.backward += elapsed;
            t.backward_examples += examples as u64;
        }
    }
    out
}
