//! The layer operations the model is built from, in one place.
//!
//! The model calls only these functions, so faster implementations (custom CPU kernels) can
//! replace any of them without touching the model or the training loop. Each one must keep the
//! exact semantics documented here, including its gradient.
//!
//! `f32` tensors on the CPU take the custom kernels of [`super::kernels`] (im2col + GEMM
//! convolutions, fused bias + ReLU, a parallel max-pool); everything else, and any code run
//! inside [`with_reference_ops`], takes the composition of candle's own ops, which is the
//! reference the kernels are tested against.

use std::cell::Cell;

use candle_core::{DType, Result, Tensor, D};

use super::kernels;

thread_local! {
    /// Whether this thread's layer ops take candle's reference path (see [`with_reference_ops`]).
    static REFERENCE_OPS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's layer ops on candle's reference path instead of the fast CPU
/// kernels: to compare the two (tests, `lrlab bench`). Per thread, so concurrent training runs
/// are unaffected; restored when `f` returns or panics.
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

/// Whether the fast CPU kernels apply to these tensors on this thread.
fn fast(ts: &[&Tensor]) -> bool {
    !REFERENCE_OPS.with(Cell::get)
        && ts
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// 2-D convolution, stride 1, zero padding `padding` on each side, plus a per-channel bias.
/// `x`: (N, Cin, H, W); `w`: (Cout, Cin, K, K); `b`: (Cout,).
///
/// The fast kernel computes no gradient for `x` when `x` does not track one (the images).
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        return kernels::conv2d(x, w, b, padding);
    }
    let c_out = b.dims1()?;
    x.conv2d(w, padding, 1, 1, 1)?
        .broadcast_add(&b.reshape((1, c_out, 1, 1))?)
}

/// `relu(conv2d(x, w, b, padding))`, fused into the convolution's output pass on the CPU.
pub fn conv2d_relu(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        return kernels::conv2d_relu(x, w, b, padding);
    }
    relu(&conv2d(x, w, b, padding)?)
}

/// `max_pool2x2(relu(conv2d(x, w, b, padding)))`: on the CPU one op that never stores the
/// convolution's output (see [`kernels::conv2d_relu_pool2x2`]).
pub fn conv2d_relu_pool2x2(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        return kernels::conv2d_relu_pool2x2(x, w, b, padding);
    }
    max_pool2x2(&conv2d_relu(x, w, b, padding)?)
}

/// 2×2 max-pooling with stride 2 and a correct gradient (see [`super::pool`]).
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    if fast(&[x]) {
        return kernels::max_pool2x2(x);
    }
    super::pool::max_pool2x2(x)
}

/// Fully connected layer `x · wᵀ + b`, PyTorch's layout: `x`: (N, in); `w`: (out, in); `b`: (out,).
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        return kernels::linear(x, w, b);
    }
    x.matmul(&w.t()?)?.broadcast_add(b)
}

/// `relu(linear(x, w, b))`, with the bias and the ReLU fused into the GEMM's output on the CPU.
pub fn linear_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fast(&[x, w, b]) {
        return kernels::linear_relu(x, w, b);
    }
    relu(&linear(x, w, b)?)
}

/// max(x, 0).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    x.relu()
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
