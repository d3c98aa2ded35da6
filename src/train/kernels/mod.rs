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
//! These are the fast path only: every public function here takes `f32` tensors on the CPU
//! and returns an error for anything else. Which path a call takes is decided in one place,
//! [`crate::train::ops`], which sends every other device and dtype to
//! [`crate::train::ops::reference`].
//!
//! All ops are deterministic, and bit-for-bit independent of the number of rayon threads:
//! work is split into pieces whose size does not depend on the thread count, and partial sums
//! are combined in a fixed order.

mod conv;
pub(crate) mod group;
mod im2col;
mod linear;
mod matmul;
mod pool;
pub mod profile;
mod storage;

#[cfg(test)]
mod tests;

use candle_core::{bail, DType, Result, Tensor};

pub(crate) use im2col::ConvGeom;
pub(crate) use storage::with_f32_slices;

/// Whether the fast kernels can run all of these tensors: `f32`, on the CPU.
pub fn runs_on(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// The error for tensors the kernels cannot run, instead of a failure deep inside candle.
fn require(op: &str, ts: &[&Tensor]) -> Result<()> {
    match ts.iter().find(|t| !runs_on(&[t])) {
        Some(t) => bail!(
            "kernels::{op} runs f32 tensors on the CPU only, got {:?} on {:?}; \
             train::ops picks the reference path for those",
            t.dtype(),
            t.device().location()
        ),
        None => Ok(()),
    }
}

fn conv2d_impl(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    padding: usize,
    epilogue: conv::Epilogue,
) -> Result<Tensor> {
    let name = match epilogue {
        conv::Epilogue::None => "conv2d",
        conv::Epilogue::Relu => "conv2d_relu",
        conv::Epilogue::ReluPool => "conv2d_relu_pool2x2",
    };
    require(name, &[x, w, b])?;
    let record = x.track_op() || w.track_op() || b.track_op();
    let op = conv::Conv2dOp::new(padding, epilogue, record);
    // Validate before applying, so shape errors read the same on every path.
    op.geom(x.dims(), w.dims(), b.dims())?;
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

/// Stride-1 2-D convolution with zero `padding` and a bias: `x` is `(N, C, H, W)`, `w` is
/// `(K, C, kh, kw)`, `b` is `(K)`; the result is `(N, K, H + 2p - kh + 1, W + 2p - kw + 1)`.
///
/// The backward pass computes the input gradient only when `x` tracks gradients (a layer's
/// activations do; the input images do not).
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    conv2d_impl(x, w, b, padding, conv::Epilogue::None)
}

/// `relu(conv2d(x, w, b, padding))` in one pass over the output, forward and backward. The
/// ReLU keeps NaN and has gradient 0 at 0 (as [`crate::train::ops::relu`]).
pub fn conv2d_relu(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    conv2d_impl(x, w, b, padding, conv::Epilogue::Relu)
}

/// `max_pool2x2(relu(conv2d(x, w, b, padding)))` in one op: the convolution's output is
/// pooled straight from per-thread scratch memory and never stored, and the backward pass
/// routes each pooled gradient to the window position recorded in the forward pass. The
/// windows are compared after the bias is added, with [`max_pool2x2`]'s rule, so the result
/// is that of the three ops in a row, ties included.
pub fn conv2d_relu_pool2x2(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    conv2d_impl(x, w, b, padding, conv::Epilogue::ReluPool)
}

/// 2x2 max-pooling with stride 2 over `(N, C, H, W)` (an odd last row or column is dropped).
///
/// The rule, the same as [`crate::train::ops::reference::max_pool2x2`]'s: each window is
/// scanned in row-major order and an element replaces the running maximum only if it is
/// strictly greater (IEEE `>`). The first maximum is the output and gets the whole gradient
/// (ties, e.g. all-zero windows after a ReLU, as in PyTorch); a NaN, which is greater than
/// nothing, wins only as a window's first element.
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    require("max_pool2x2", &[x])?;
    let (_, _, h, w) = x.dims4()?;
    if h < 2 || w < 2 {
        bail!("max_pool2x2: input {h}x{w} is smaller than the 2x2 window");
    }
    x.contiguous()?.apply_op1(pool::MaxPool2x2Op)
}

fn linear_impl(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    require(if relu { "linear_relu" } else { "linear" }, &[x, w, b])?;
    linear::linear_dims(x.dims(), w.dims(), b.dims())?;
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        linear::LinearOp { relu },
    )
}

/// Fully connected layer `x w^T + b`: `x` is `(N, I)`, `w` is `(O, I)`, `b` is `(O)`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    linear_impl(x, w, b, false)
}

/// `relu(linear(x, w, b))` with the bias and the ReLU fused into the GEMM's output pass.
pub fn linear_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    linear_impl(x, w, b, true)
}
