//! The layers composed from candle's own ops: what every device other than the CPU runs (and
//! any dtype other than `f32`), and the reference the fast CPU kernels of
//! [`crate::train::kernels`] are tested and benchmarked against.
//!
//! Only ops that candle implements, with their gradients, on every backend (CPU, CUDA, Metal)
//! are used here: no custom op, so this module runs wherever the tensors live. Where candle's
//! own version of a layer has the wrong gradient or a different rule than the fast kernels
//! (its `max_pool2d` backward, its `max` reduction's treatment of ties, its ReLU's gradient at
//! 0), the layer is written out from comparisons and `where_cond`, whose gradient goes to the
//! chosen branch only.

use candle_core::{bail, Result, Tensor};

/// Candle's `conv2d` (stride 1) followed by a broadcast bias add.
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, padding: usize) -> Result<Tensor> {
    let k = b.dim(0)?;
    x.conv2d(w, padding, 1, 1, 1)?
        .broadcast_add(&b.reshape((1, k, 1, 1))?)
}

/// Candle's grouped `conv2d` (stride 1): input channel block `i` of `x` is convolved with
/// output channel block `i` of `w` (`groups` blocks each), plus the bias. The lockstep
/// trainer's second convolution on other devices: every member's layer in one op.
pub fn grouped_conv2d(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    padding: usize,
    groups: usize,
) -> Result<Tensor> {
    let k = b.dim(0)?;
    x.conv2d(w, padding, 1, 1, groups)?
        .broadcast_add(&b.reshape((1, k, 1, 1))?)
}

/// `x_i w_i^T + b_i` for every `i` in one batched `matmul`: `x` is `(G, N, I)`, `w` is
/// `(G, O, I)`, `b` is `(G, O)`; the result is `(G, N, O)`.
pub fn batched_linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (g, o) = b.dims2()?;
    x.matmul(&w.transpose(1, 2)?)?
        .broadcast_add(&b.reshape((g, 1, o))?)
}

/// `x w^T + b` with candle's `matmul` and a broadcast add.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}

/// max(x, 0), with PyTorch's gradient: 1 where x > 0, and 0 where x ≤ 0 — at 0 too, as in the
/// fast kernels (candle's `relu` passes the gradient at 0, which would make the reference
/// disagree with them wherever a pre-activation is exactly 0). A NaN passes through, as in
/// the fast kernels, so a diverging run still shows in the loss.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    let zero = Tensor::zeros((), x.dtype(), x.device())?.broadcast_as(x.shape())?;
    x.le(&zero)?.where_cond(&zero, x)
}

/// 2x2 max-pooling with stride 2 over `(N, C, H, W)`; an odd last row or column is dropped
/// (PyTorch's floor mode).
///
/// The rule, the same as the fast kernel's ([`crate::train::kernels::max_pool2x2`]): each
/// window is scanned in row-major order (top-left, top-right, bottom-left, bottom-right) and
/// an element replaces the running maximum only if it compares strictly greater (IEEE `>`).
/// So on ties — all-zero windows after a ReLU are the common case — the first maximum is the
/// output and gets the whole gradient, as in PyTorch; and since a NaN compares greater than
/// nothing, a NaN is the output (with the gradient) only as a window's first element and is
/// passed over elsewhere. (PyTorch instead lets any NaN win; this scan keeps the fused CPU
/// kernel's inner loop one comparison per element, and a diverging run is caught by its loss
/// and metrics all the same.)
///
/// Built as three `where_cond` steps over the window's four strided views, so the output is
/// exactly one input element and its gradient goes to exactly that element, on every device.
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = (h / 2, w / 2);
    if oh == 0 || ow == 0 {
        bail!("max_pool2x2: input {h}x{w} is smaller than the 2x2 window");
    }
    let windows = x
        .narrow(2, 0, 2 * oh)?
        .narrow(3, 0, 2 * ow)?
        .reshape((n, c, oh, 2, ow, 2))?;
    // Element (dy, dx) of every window, as an (n, c, oh, 1, ow, 1) view.
    let at = |dy: usize, dx: usize| windows.narrow(3, dy, 1)?.narrow(5, dx, 1);
    let mut best = at(0, 0)?;
    for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
        let v = at(dy, dx)?;
        best = v.gt(&best)?.where_cond(&v, &best)?;
    }
    best.reshape((n, c, oh, ow))
}
