//! The layer operations the model is built from, in one place.
//!
//! The model calls only these functions, so faster implementations (custom CPU kernels) can
//! replace any of them without touching the model or the training loop. Each one must keep the
//! exact semantics documented here, including its gradient.

use candle_core::{Result, Tensor, D};

/// 2-D convolution, stride 1, zero padding `padding` on each side, plus a per-channel bias.
/// `x`: (N, Cin, H, W); `w`: (Cout, Cin, K, K); `b`: (Cout,).
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    let c_out = b.dims1()?;
    x.conv2d(w, padding, 1, 1, 1)?
        .broadcast_add(&b.reshape((1, c_out, 1, 1))?)
}

/// 2×2 max-pooling with stride 2 and a correct gradient (see [`super::pool`]).
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    super::pool::max_pool2x2(x)
}

/// Fully connected layer `x · wᵀ + b`, PyTorch's layout: `x`: (N, in); `w`: (out, in); `b`: (out,).
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
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
