//! 2x2, stride-2 max-pooling with a correct gradient (the whole gradient of a window goes to
//! its maximum; candle 0.11's CPU `max_pool2d` backward gives it only a quarter), by the rule
//! stated on [`super::max_pool2x2`].

use candle_core::{bail, CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::profile::{timed, Pass};
use super::storage::{cpu_f32, storage_f32};

/// Planes (one channel of one image) per rayon task: enough work to amortise scheduling.
const MIN_PLANES_PER_TASK: usize = 16;

/// Position (0..4, row-major in the window) and value of the first maximum of the 2x2 window
/// whose rows are `top` and `bottom`. Comparisons are strict (IEEE `>`), so ties go to the
/// first element and a NaN wins only as the first element; the reference
/// [`crate::train::ops::reference::max_pool2x2`] scans the same way, so both agree exactly.
#[inline(always)]
fn first_max(top: &[f32], bottom: &[f32]) -> (usize, f32) {
    let (mut at, mut best) = (0, top[0]);
    for (i, v) in [(1, top[1]), (2, bottom[0]), (3, bottom[1])] {
        if v > best {
            at = i;
            best = v;
        }
    }
    (at, best)
}

/// The two input rows under output row `oy` of a plane `w` wide, cut to `2 * ow` columns.
#[inline(always)]
fn row_pair(plane: &[f32], w: usize, oy: usize, ow: usize) -> (&[f32], &[f32]) {
    let top = 2 * oy * w;
    (&plane[top..top + 2 * ow], &plane[top + w..top + w + 2 * ow])
}

/// Forward: `x` is `planes` planes of `h x w`; the result has `planes` planes of
/// `(h / 2) x (w / 2)` (a trailing odd row or column is dropped, as in candle).
pub(crate) fn forward(x: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0.0f32; planes * oh * ow];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .with_min_len(MIN_PLANES_PER_TASK)
        .for_each(|(o, plane)| {
            for (oy, o_row) in o.chunks_exact_mut(ow).enumerate() {
                let (top, bottom) = row_pair(plane, w, oy, ow);
                for ((o, t), b) in o_row
                    .iter_mut()
                    .zip(top.chunks_exact(2))
                    .zip(bottom.chunks_exact(2))
                {
                    *o = first_max(t, b).1;
                }
            }
        });
    out
}

/// Backward: routes each output gradient to its window's maximum in `x`.
pub(crate) fn backward(x: &[f32], grad: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut dx = vec![0.0f32; planes * h * w];
    if oh == 0 || ow == 0 || dx.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(h * w)
        .zip(x.par_chunks(h * w))
        .zip(grad.par_chunks(oh * ow))
        .with_min_len(MIN_PLANES_PER_TASK)
        .for_each(|((d, plane), gr)| {
            for (oy, g_row) in gr.chunks_exact(ow).enumerate() {
                let (top, bottom) = row_pair(plane, w, oy, ow);
                for (ox, ((&g, t), b)) in g_row
                    .iter()
                    .zip(top.chunks_exact(2))
                    .zip(bottom.chunks_exact(2))
                    .enumerate()
                {
                    let at = first_max(t, b).0;
                    d[(2 * oy + at / 2) * w + 2 * ox + at % 2] = g;
                }
            }
        });
    dx
}

/// The candle custom op over an `(N, C, H, W)` `f32` tensor on the CPU.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaxPool2x2Op;

fn label(dims: &[usize]) -> String {
    format!("max_pool2x2 {}x{}x{}", dims[1], dims[2], dims[3])
}

fn dims4(dims: &[usize]) -> Result<(usize, usize, usize)> {
    match *dims {
        [n, c, h, w] => Ok((n * c, h, w)),
        _ => bail!("max_pool2x2: expected (N,C,H,W), got {dims:?}"),
    }
}

impl CustomOp1 for MaxPool2x2Op {
    fn name(&self) -> &'static str {
        "lrlab-max-pool-2x2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = layout.dims();
        let (planes, h, w) = dims4(dims)?;
        let x = cpu_f32(storage, layout)?;
        let out = timed(
            || label(dims),
            Pass::Forward,
            dims[0],
            || forward(x, planes, h, w),
        );
        Ok((
            CpuStorage::F32(out),
            Shape::from((dims[0], dims[1], h / 2, w / 2)),
        ))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        let (planes, h, w) = dims4(arg.dims())?;
        let (xc, gc) = (arg.contiguous()?, grad.contiguous()?);
        let (xs, xl) = xc.storage_and_layout();
        let (gs, gl) = gc.storage_and_layout();
        let (x, g) = (storage_f32(&xs, xl)?, storage_f32(&gs, gl)?);
        let dims = arg.dims();
        let dx = timed(
            || label(dims),
            Pass::Backward,
            dims[0],
            || backward(x, g, planes, h, w),
        );
        Ok(Some(Tensor::from_vec(dx, arg.dims(), &Device::Cpu)?))
    }
}
