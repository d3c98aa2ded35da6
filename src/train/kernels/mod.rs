//! Fast CPU kernels for the LeNet's layers, as candle custom ops with their own backward pass.
//!
//! Why: candle 0.11's CPU convolution backward is a naive loop parallelised over output
//! channels only, it computes the gradient of the input images (which nothing uses), and its
//! `max_pool2d` backward is wrong (a window's maximum gets a quarter of the gradient). These
//! ops express convolution as im2col + GEMM (the `gemm` crate candle itself uses), split the
//! batch over rayon's threads, reuse per-thread scratch memory, fuse bias and ReLU (and, in
//! [`conv2d_relu_pool2x2`], the max-pooling) into the GEMM's output pass, and skip every
//! gradient whose argument does not track one. `gemm` runs its AVX-512 kernels (the `x86-v4`
//! feature, detected at run time); im2col/col2im have AVX-512 paths with a portable fallback.
//!
//! Every public function here dispatches: `f32` tensors on the CPU take the custom op; any
//! other device or dtype takes the [`reference`](mod@reference) composition of candle's own ops (cuDNN on a
//! `cuda` device where enabled), so callers need no device checks of their own.
//!
//! All ops are deterministic, and bit-for-bit independent of the number of rayon threads:
//! work is split into pieces whose size does not depend on the thread count, and partial sums
//! are combined in a fixed order.

mod conv;
mod im2col;
mod linear;
mod matmul;
mod pool;
pub mod profile;
pub mod reference;
mod storage;

#[cfg(test)]
mod tests;

use candle_core::{DType, Result, Tensor};

/// Whether the custom CPU ops apply to all of these tensors.
fn fast_path(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

fn conv2d_impl(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    padding: usize,
    epilogue: conv::Epilogue,
) -> Result<Tensor> {
    use conv::Epilogue;
    if fast_path(&[x, w, b]) {
        let record = x.track_op() || w.track_op() || b.track_op();
        let op = conv::Conv2dOp::new(padding, epilogue, record);
        // Validate before applying, so shape errors read the same on every path.
        op.geom(x.dims(), w.dims(), b.dims())?;
        return x
            .contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, op);
    }
    let y = reference::conv2d(x, w, b, padding)?;
    match epilogue {
        Epilogue::None => Ok(y),
        Epilogue::Relu => y.relu(),
        Epilogue::ReluPool => reference::max_pool2x2(&y.relu()?),
    }
}

/// Stride-1 2-D convolution with zero `padding` and a bias: `x` is `(N, C, H, W)`, `w` is
/// `(K, C, kh, kw)`, `b` is `(K)`; the result is `(N, K, H + 2p - kh + 1, W + 2p - kw + 1)`.
///
/// On the CPU the backward pass computes the input gradient only when `x` tracks gradients
/// (a layer's activations do; the input images do not).
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    conv2d_impl(x, w, b, padding, conv::Epilogue::None)
}

/// `relu(conv2d(x, w, b, padding))` in one pass over the output, forward and backward.
pub fn conv2d_relu(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    conv2d_impl(x, w, b, padding, conv::Epilogue::Relu)
}

/// `max_pool2x2(relu(conv2d(x, w, b, padding)))` in one op: the convolution's output is
/// pooled straight from per-thread scratch memory and never stored, and the backward pass
/// routes each pooled gradient to the window position recorded in the forward pass.
pub fn conv2d_relu_pool2x2(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    conv2d_impl(x, w, b, padding, conv::Epilogue::ReluPool)
}

/// 2x2 max-pooling with stride 2 over `(N, C, H, W)` (an odd last row or column is dropped),
/// whose gradient goes entirely to each window's (first) maximum.
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    if fast_path(&[x]) {
        let (_, _, h, w) = x.dims4()?;
        if h < 2 || w < 2 {
            candle_core::bail!("max_pool2x2: input {h}x{w} is smaller than the 2x2 window");
        }
        x.contiguous()?.apply_op1(pool::MaxPool2x2Op)
    } else {
        reference::max_pool2x2(x)
    }
}

fn linear_impl(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    if fast_path(&[x, w, b]) {
        linear::linear_dims(x.dims(), w.dims(), b.dims())?;
        x.contiguous()?.apply_op3(
            &w.contiguous()?,
            &b.contiguous()?,
            linear::LinearOp { relu },
        )
    } else {
        let y = reference::linear(x, w, b)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

/// Fully connected layer `x w^T + b`: `x` is `(N, I)`, `w` is `(O, I)`, `b` is `(O)`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    linear_impl(x, w, b, false)
}

/// `relu(linear(x, w, b))` with the bias and the ReLU fused into the GEMM's output pass.
pub fn linear_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    linear_impl(x, w, b, true)
}
