//! Fully connected layer `y = act(x w^T + b)` as a candle custom op, with the bias add and the
//! optional ReLU fused into the GEMM's output pass and the ReLU mask into the backward pass.

use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::matmul::{matmul, MatMut, MatRef};
use super::profile::{timed, Pass};
use super::storage::{cpu_f32, storage_f32};

/// Rows of the batch (or of the weight matrix) per rayon task. Fixed, not derived from the
/// thread count, so that results are bit-for-bit the same whatever the number of threads.
const ROWS_PER_TASK: usize = 32;

/// Forward: `x` is `(n, i)`, `w` is `(o, i)`, `b` is `(o)`; returns `(n, o)`.
pub(crate) fn forward(x: &[f32], w: &[f32], b: &[f32], i: usize, o: usize, relu: bool) -> Vec<f32> {
    let n = x.len().checked_div(i).unwrap_or(0);
    let mut y = vec![0.0f32; n * o];
    if y.is_empty() {
        return y;
    }
    let rows = ROWS_PER_TASK;
    y.par_chunks_mut(rows * o)
        .zip(x.par_chunks(rows * i))
        .for_each(|(y, x)| {
            let r = y.len() / o;
            matmul(
                MatMut::row_major(y, r, o),
                MatRef::row_major(x, r, i),
                MatRef::row_major(w, o, i).t(),
                false,
            );
            for row in y.chunks_exact_mut(o) {
                for (v, &bias) in row.iter_mut().zip(b) {
                    let s = *v + bias;
                    *v = if relu && s < 0.0 { 0.0 } else { s };
                }
            }
        });
    y
}

/// Gradients of [`forward`]: `(dx, dw, db)`, each only when asked for.
pub(crate) struct LinearGrads {
    pub dx: Option<Vec<f32>>,
    pub dw: Option<Vec<f32>>,
    pub db: Option<Vec<f32>>,
}

/// Backward; `res` (the op's output) masks the gradient for the ReLU variant.
pub(crate) fn backward(
    x: &[f32],
    w: &[f32],
    grad: &[f32],
    res: Option<&[f32]>,
    (i, o): (usize, usize),
    (need_dx, need_dw, need_db): (bool, bool, bool),
) -> LinearGrads {
    let n = grad.len().checked_div(o).unwrap_or(0);
    let dpre: Vec<f32> = match res {
        Some(res) => grad
            .iter()
            .zip(res)
            .map(|(&g, &r)| if r > 0.0 { g } else { 0.0 })
            .collect(),
        None => grad.to_vec(),
    };
    let dx = need_dx.then(|| {
        let mut dx = vec![0.0f32; n * i];
        if !dx.is_empty() {
            let rows = ROWS_PER_TASK;
            dx.par_chunks_mut(rows * i)
                .zip(dpre.par_chunks(rows * o))
                .for_each(|(dx, dp)| {
                    let r = dp.len() / o;
                    matmul(
                        MatMut::row_major(dx, r, i),
                        MatRef::row_major(dp, r, o),
                        MatRef::row_major(w, o, i),
                        false,
                    );
                });
        }
        dx
    });
    let dw = need_dw.then(|| {
        let mut dw = vec![0.0f32; o * i];
        if !dw.is_empty() {
            let rows = ROWS_PER_TASK;
            dw.par_chunks_mut(rows * i).enumerate().for_each(|(t, dw)| {
                let o0 = t * rows;
                let r = dw.len() / i;
                // dw[o0..o0 + r] = dpre[:, o0..o0 + r]^T x
                matmul(
                    MatMut::row_major(dw, r, i),
                    MatRef::new(&dpre[o0..], r, n, 1, o),
                    MatRef::row_major(x, n, i),
                    false,
                );
            });
        }
        dw
    });
    let db = need_db.then(|| {
        let mut db = vec![0.0f32; o];
        for row in dpre.chunks_exact(o.max(1)) {
            db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
        }
        db
    });
    LinearGrads { dx, dw, db }
}

/// The candle custom op: arguments `(x, w, b)` of shapes `(N, I)`, `(O, I)`, `(O)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinearOp {
    pub relu: bool,
}

/// Checks the shapes; returns `(n, i, o)`.
pub(crate) fn linear_dims(x: &[usize], w: &[usize], b: &[usize]) -> Result<(usize, usize, usize)> {
    match (x, w, b) {
        (&[n, i], &[o, wi], &[bo]) if wi == i && bo == o => Ok((n, i, o)),
        _ => bail!("linear: expected x (N,I), w (O,I), b (O); got {x:?}, {w:?}, {b:?}"),
    }
}

impl LinearOp {
    /// The layer's name in profiles.
    fn label(&self, i: usize, o: usize) -> String {
        format!("linear{} {i} -> {o}", if self.relu { "+relu" } else { "" })
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        if self.relu {
            "lrlab-linear-relu"
        } else {
            "lrlab-linear"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, i, o) = linear_dims(l1.dims(), l2.dims(), l3.dims())?;
        let (x, w, b) = (cpu_f32(s1, l1)?, cpu_f32(s2, l2)?, cpu_f32(s3, l3)?);
        let y = timed(
            || self.label(i, o),
            Pass::Forward,
            n,
            || forward(x, w, b, i, o, self.relu),
        );
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, i, o) = linear_dims(x.dims(), w.dims(), b.dims())?;
        let (xc, wc, gc, rc) = (
            x.contiguous()?,
            w.contiguous()?,
            grad.contiguous()?,
            res.contiguous()?,
        );
        let (xs, xl) = xc.storage_and_layout();
        let (ws, wl) = wc.storage_and_layout();
        let (gs, gl) = gc.storage_and_layout();
        let (rs, rl) = rc.storage_and_layout();
        let res = if self.relu {
            Some(storage_f32(&rs, rl)?)
        } else {
            None
        };
        let (xd, wd, gd) = (
            storage_f32(&xs, xl)?,
            storage_f32(&ws, wl)?,
            storage_f32(&gs, gl)?,
        );
        let needs = (x.track_op(), w.track_op(), b.track_op());
        let grads = timed(
            || self.label(i, o),
            Pass::Backward,
            n,
            || backward(xd, wd, gd, res, (i, o), needs),
        );
        let to_tensor = |v: Option<Vec<f32>>, shape: &[usize]| {
            v.map(|v| Tensor::from_vec(v, shape, &Device::Cpu))
                .transpose()
        };
        Ok((
            to_tensor(grads.dx, x.dims())?,
            to_tensor(grads.dw, w.dims())?,
            to_tensor(grads.db, b.dims())?,
        ))
    }
}
