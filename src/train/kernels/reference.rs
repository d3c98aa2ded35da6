//! The same layers composed from candle's own ops: the path for non-CPU devices and other
//! dtypes, and the reference the fast kernels are tested and benchmarked against.

use candle_core::{bail, Result, Tensor, D};

/// Candle's `conv2d` (stride 1) followed by a broadcast bias add.
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    let k = b.dim(0)?;
    x.conv2d(w, padding, 1, 1, 1)?
        .broadcast_add(&b.reshape((1, k, 1, 1))?)
}

/// 2x2 max-pooling as a reshape and two `max` reductions, whose backward pass is correct
/// (unlike candle 0.11's `max_pool2d` on the CPU).
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = (h / 2, w / 2);
    if oh == 0 || ow == 0 {
        bail!("max_pool2x2: input {h}x{w} is smaller than the 2x2 window");
    }
    x.narrow(2, 0, 2 * oh)?
        .narrow(3, 0, 2 * ow)?
        .reshape((n, c, oh, 2, ow, 2))?
        .max(D::Minus1)?
        .max(3)
}

/// `x w^T + b` with candle's `matmul` and a broadcast add.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}
