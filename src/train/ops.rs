//! The layer operations the model is built from, and the one place where each call picks
//! its implementation.
//!
//! The model calls only these functions, so faster implementations can replace any of them
//! without touching the model or the training loop. Each one keeps the exact semantics
//! documented here, including its gradient, on both paths:
//!
//! - `f32` tensors on the CPU take the fast custom kernels of [`super::kernels`] (im2col +
//!   GEMM convolutions, fused bias + ReLU + max-pool);
//! - every other device or dtype, and any call made inside [`with_reference_ops`], takes the
//!   [`reference`](mod@reference) composition of candle's own ops. That is the path a GPU
//!   runs, and the one the fast kernels are tested against on the CPU.
//!
//! The decision is made here and nowhere else: the kernels are the fast path only, and the
//! reference functions are the other path only.

use std::cell::Cell;

use candle_core::{Result, Tensor, D};

use super::kernels;

pub mod reference;

thread_local! {
    /// Whether this thread's layer ops take the reference path (see [`with_reference_ops`]).
    static REFERENCE_OPS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's layer ops on the [`reference`](mod@reference) path instead of
/// the fast CPU kernels: to compare the two (tests, `lrlab bench`), and to run on the CPU
/// exactly what a GPU runs. Per thread, so concurrent training runs are unaffected; restored
/// when `f` returns or panics.
pub fn with_reference_ops<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REFERENCE_OPS.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(REFERENCE_OPS.with(|r| r.replace(true)));
    f()
}

/// Whether this call takes the fast kernels: they can run these tensors, and this thread has
/// not asked for the reference path. The lockstep trainer asks the same question for a whole
/// group's step.
pub(crate) fn fast(ts: &[&Tensor]) -> bool {
    !REFERENCE_OPS.with(Cell::get) && kernels::runs_on(ts)
}

/// 2-D convolution, stride 1, zero padding `padding` on each side, plus a per-channel bias.
/// `x`: (N, Cin, H, W); `w`: (Cout, Cin, K, K); `b`: (Cout,).
///
/// The fast kernel computes no gradient for `x` when `x` does not track one (the images).
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        kernels::conv2d(x, w, b, padding)
    } else {
        reference::conv2d(x, w, b, padding)
    }
}

/// `relu(conv2d(x, w, b, padding))`, fused into the convolution's output pass on the CPU.
pub fn conv2d_relu(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        kernels::conv2d_relu(x, w, b, padding)
    } else {
        reference::relu(&reference::conv2d(x, w, b, padding)?)
    }
}

/// `max_pool2x2(relu(conv2d(x, w, b, padding)))`: on the CPU one op that never stores the
/// convolution's output (see [`kernels::conv2d_relu_pool2x2`]).
pub fn conv2d_relu_pool2x2(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        kernels::conv2d_relu_pool2x2(x, w, b, padding)
    } else {
        reference::max_pool2x2(&reference::relu(&reference::conv2d(x, w, b, padding)?)?)
    }
}

/// 2×2 max-pooling with stride 2 over `(N, C, H, W)` (an odd last row or column is dropped).
///
/// One rule on both paths: each window is scanned in row-major order and an element replaces
/// the running maximum only if it is strictly greater, so the first maximum of a window is its
/// output and gets the whole gradient (ties — all-zero windows after a ReLU — as in PyTorch),
/// and a NaN wins only as a window's first element. See [`reference::max_pool2x2`].
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    if fast(&[x]) {
        kernels::max_pool2x2(x)
    } else {
        reference::max_pool2x2(x)
    }
}

/// Fully connected layer `x · wᵀ + b`, PyTorch's layout: `x`: (N, in); `w`: (out, in); `b`: (out,).
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        kernels::linear(x, w, b)
    } else {
        reference::linear(x, w, b)
    }
}

/// `relu(linear(x, w, b))`, with the bias and the ReLU fused into the GEMM's output on the CPU.
pub fn linear_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        kernels::linear_relu(x, w, b)
    } else {
        reference::relu(&reference::linear(x, w, b)?)
    }
}

/// max(x, 0), with gradient 1 where x > 0 and 0 where x ≤ 0 (PyTorch's, and that of the
/// ReLUs fused into the fast kernels). The model only uses the fused forms; this one is the
/// same op on its own, on every path.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    reference::relu(x)
}

/// Mean softmax cross-entropy of (N, 10) logits against (N,) u32 labels, computed through a
/// max-shifted log-softmax so large logits cannot overflow.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(logits, labels)
}

/// Number of rows whose largest logit is at the label, as a scalar f32 tensor left on the
/// device (reading it is the caller's choice of synchronisation point).
pub fn correct_count(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    logits
        .argmax(D::Minus1)?
        .eq(labels)?
        .to_dtype(candle_core::DType::F32)?
        .sum_all()
}
