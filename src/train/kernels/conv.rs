//! Stride-1 2-D convolution (+ bias, optionally + ReLU) as a candle custom op: im2col + GEMM
//! forward, GEMM weight gradient, GEMM + col2im input gradient, rayon over the batch.

use candle_core::{bail, CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::im2col::{col2im_add, im2col, ConvGeom};
use super::matmul::{matmul, MatMut, MatRef};
use super::profile::{timed, Pass};
use super::storage::{cpu_f32, storage_f32, with_scratch};

/// Column-matrix bytes one task works on at a time: small enough to stay in a core's L2 with
/// the GEMM's packed panels and the other operands (measured: two LeNet images per group ran
/// the GEMMs at up to twice the rate of eight), large enough that a group makes one GEMM.
const GROUP_BYTES: usize = 160 * 1024;

/// Weight gradients with at most this many elements are computed as dot products, for which
/// `gemm` has a dedicated small-matrix kernel.
const SMALL_DW: usize = 256;

/// Groups a batch is split into at least (when it has that many images), so that two threads
/// get several each and can balance the load.
const MIN_GROUPS: usize = 16;

/// Images processed together in one GEMM: bounded by the cache budget, and small enough to
/// leave [`MIN_GROUPS`] groups. It deliberately ignores the thread count, so results are
/// bit-for-bit the same whatever the number of threads.
pub(crate) fn group_size(g: &ConvGeom) -> usize {
    let per_img = g.taps() * g.pixels() * std::mem::size_of::<f32>();
    let by_cache = (GROUP_BYTES / per_img.max(1)).max(1);
    let by_balance = g.n.div_ceil(MIN_GROUPS).max(1);
    by_cache.min(by_balance)
}

/// Which gradients the backward pass must produce.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Needs {
    pub dx: bool,
    pub dw: bool,
    pub db: bool,
}

/// Gradients produced by [`backward`]; `None` where not requested.
pub(crate) struct ConvGrads {
    pub dx: Option<Vec<f32>>,
    pub dw: Option<Vec<f32>>,
    pub db: Option<Vec<f32>>,
}

/// `relu` keeps NaN (so a diverging run still shows up in the loss), unlike `f32::max`.
#[inline]
fn act(v: f32, relu: bool) -> f32 {
    if relu && v < 0.0 {
        0.0
    } else {
        v
    }
}

/// Forward pass: `out[n, k] = act(b[k] + sum_c x[n, c] * w[k, c])`, row-major NCHW.
pub(crate) fn forward(x: &[f32], w: &[f32], b: &[f32], g: &ConvGeom, relu: bool) -> Vec<f32> {
    let (p, taps, k) = (g.pixels(), g.taps(), g.k);
    let mut out = vec![0.0f32; g.n * g.out_img()];
    if out.is_empty() {
        return out;
    }
    let gsz = group_size(g);
    out.par_chunks_mut(gsz * g.out_img())
        .zip(x.par_chunks(gsz * g.in_img()))
        .for_each(|(out_grp, x_grp)| {
            let imgs = out_grp.len() / g.out_img();
            let ld = imgs * p;
            with_scratch([k * ld, taps * ld], |[acc, cols]| {
                for (j, x_img) in x_grp.chunks_exact(g.in_img()).enumerate() {
                    im2col(x_img, g, cols, ld, j * p);
                }
                matmul(
                    MatMut::row_major(acc, k, ld),
                    MatRef::row_major(w, k, taps),
                    MatRef::row_major(cols, taps, ld),
                    false,
                );
                for (j, out_img) in out_grp.chunks_exact_mut(g.out_img()).enumerate() {
                    for (kk, out_row) in out_img.chunks_exact_mut(p).enumerate() {
                        let src = &acc[kk * ld + j * p..kk * ld + (j + 1) * p];
                        let bias = b[kk];
                        for (o, &s) in out_row.iter_mut().zip(src) {
                            *o = act(s + bias, relu);
                        }
                    }
                }
            });
        });
    out
}

/// Backward pass. `grad` is the gradient of the op's output; `res`, the op's output, is given
/// for the ReLU variant (its gradient is masked where the output is not positive).
pub(crate) fn backward(
    x: &[f32],
    w: &[f32],
    grad: &[f32],
    res: Option<&[f32]>,
    g: &ConvGeom,
    needs: Needs,
) -> ConvGrads {
    let (p, taps, k) = (g.pixels(), g.taps(), g.k);
    let gsz = group_size(g);
    // The weight-gradient GEMM is laid out so that `gemm` needs no strided (scalar) packing:
    // a small result (conv1: 6 x 25) is computed row by row as dot products of `dpre` and the
    // column matrix, a larger one (conv2: 16 x 150) transposed, from `dpre` stored transposed.
    let dw_transposed = needs.dw && k * taps > SMALL_DW;
    // W transposed once per call, so the input-gradient GEMM reads it with unit stride.
    let wt: Vec<f32> = if needs.dx {
        (0..taps * k).map(|i| w[(i % k) * taps + i / k]).collect()
    } else {
        Vec::new()
    };
    // One group of images: its weight gradient (transposed if `dw_transposed`) and bias
    // gradient, and its input gradient written into `dx_grp` (zero-initialised) when given.
    let work = |grp: usize, dx_grp: Option<&mut [f32]>| {
        let i0 = grp * gsz;
        let imgs = gsz.min(g.n - i0);
        let ld = imgs * p;
        let mut dw = vec![0.0f32; if needs.dw { k * taps } else { 0 }];
        let mut db = vec![0.0f32; k];
        let dpre_t_len = if dw_transposed { ld * k } else { 0 };
        with_scratch([k * ld, dpre_t_len, taps * ld], |[dpre, dpre_t, cols]| {
            for j in 0..imgs {
                let base = (i0 + j) * g.out_img();
                for kk in 0..k {
                    let src = &grad[base + kk * p..base + (kk + 1) * p];
                    let dst = &mut dpre[kk * ld + j * p..kk * ld + (j + 1) * p];
                    match res {
                        Some(res) => {
                            let out = &res[base + kk * p..base + (kk + 1) * p];
                            for ((d, &s), &o) in dst.iter_mut().zip(src).zip(out) {
                                *d = if o > 0.0 { s } else { 0.0 };
                            }
                        }
                        None => dst.copy_from_slice(src),
                    }
                    db[kk] += dst.iter().sum::<f32>();
                }
            }
            if needs.dw {
                for j in 0..imgs {
                    let x_img = &x[(i0 + j) * g.in_img()..(i0 + j + 1) * g.in_img()];
                    im2col(x_img, g, cols, ld, j * p);
                }
                if dw_transposed {
                    for (kk, row) in dpre.chunks_exact(ld).enumerate() {
                        for (q, &v) in row.iter().enumerate() {
                            dpre_t[q * k + kk] = v;
                        }
                    }
                    // dw^T (taps x k) = cols (taps x ld) * dpre^T (ld x k)
                    matmul(
                        MatMut::row_major(&mut dw, taps, k),
                        MatRef::row_major(cols, taps, ld),
                        MatRef::row_major(dpre_t, ld, k),
                        false,
                    );
                } else {
                    matmul(
                        MatMut::row_major(&mut dw, k, taps),
                        MatRef::row_major(dpre, k, ld),
                        MatRef::row_major(cols, taps, ld).t(),
                        false,
                    );
                }
            }
            if let Some(dx_grp) = dx_grp {
                // dcols (taps x ld) = W^T (taps x k) * dpre (k x ld), for the whole group.
                matmul(
                    MatMut::row_major(cols, taps, ld),
                    MatRef::row_major(&wt, taps, k),
                    MatRef::row_major(dpre, k, ld),
                    false,
                );
                for (j, dx_img) in dx_grp.chunks_exact_mut(g.in_img()).enumerate() {
                    col2im_add(cols, ld, j * p, g, dx_img);
                }
            }
        });
        (dw, db)
    };
    let mut dx = needs.dx.then(|| vec![0.0f32; g.n * g.in_img()]);
    // Per-group partial sums are collected in group order and added up sequentially, so the
    // result does not depend on how rayon happened to schedule the groups.
    let partials: Vec<(Vec<f32>, Vec<f32>)> = match dx.as_mut() {
        Some(dx) if !dx.is_empty() => dx
            .par_chunks_mut(gsz * g.in_img())
            .enumerate()
            .map(|(grp, dx_grp)| work(grp, Some(dx_grp)))
            .collect(),
        _ => (0..g.n.div_ceil(gsz))
            .into_par_iter()
            .map(|grp| work(grp, None))
            .collect(),
    };
    let mut dw = vec![0.0f32; if needs.dw { k * taps } else { 0 }];
    let mut db = vec![0.0f32; k];
    for (pdw, pdb) in &partials {
        if dw_transposed {
            for (t, row) in pdw.chunks_exact(k).enumerate() {
                for (kk, &v) in row.iter().enumerate() {
                    dw[kk * taps + t] += v;
                }
            }
        } else {
            dw.iter_mut().zip(pdw).for_each(|(a, b)| *a += b);
        }
        db.iter_mut().zip(pdb).for_each(|(a, b)| *a += b);
    }
    ConvGrads {
        dx,
        dw: needs.dw.then_some(dw),
        db: needs.db.then_some(db),
    }
}

/// The candle custom op: arguments `(x, w, b)`, NCHW / KCHW / K, `f32`, contiguous, on the CPU.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conv2dOp {
    pub pad: usize,
    pub relu: bool,
}

impl Conv2dOp {
    /// The layer's name in profiles.
    fn label(&self, g: &ConvGeom) -> String {
        format!(
            "conv2d{} {}x{}x{} -> {}x{}x{}, {}x{} pad {}",
            if self.relu { "+relu" } else { "" },
            g.c,
            g.h,
            g.w,
            g.k,
            g.oh,
            g.ow,
            g.kh,
            g.kw,
            g.pad
        )
    }

    /// Checks the argument shapes and derives the geometry.
    pub(crate) fn geom(&self, x: &[usize], w: &[usize], b: &[usize]) -> Result<ConvGeom> {
        let (&[n, c, h, wd], &[k, wc, kh, kw], &[bk]) = (x, w, b) else {
            bail!("conv2d: expected x (N,C,H,W), w (K,C,kh,kw), b (K); got {x:?}, {w:?}, {b:?}")
        };
        if wc != c || bk != k {
            bail!("conv2d: shapes do not match: x {x:?}, w {w:?}, b {b:?}")
        }
        match ConvGeom::new(n, c, h, wd, k, kh, kw, self.pad) {
            Some(g) => Ok(g),
            None => bail!(
                "conv2d: kernel {kh}x{kw} larger than input {h}x{wd} padded by {}",
                self.pad
            ),
        }
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        if self.relu {
            "lrlab-conv2d-relu"
        } else {
            "lrlab-conv2d"
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
        let g = self.geom(l1.dims(), l2.dims(), l3.dims())?;
        let (x, w, b) = (cpu_f32(s1, l1)?, cpu_f32(s2, l2)?, cpu_f32(s3, l3)?);
        let out = timed(
            || self.label(&g),
            Pass::Forward,
            g.n,
            || forward(x, w, b, &g, self.relu),
        );
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.k, g.oh, g.ow))))
    }

    /// Returns `None` for every argument that does not track gradients: in particular the
    /// input images, whose gradient nothing uses, cost no col2im at all.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geom(x.dims(), w.dims(), b.dims())?;
        let needs = Needs {
            dx: x.track_op(),
            dw: w.track_op(),
            db: b.track_op(),
        };
        let (xc, wc, gc) = (x.contiguous()?, w.contiguous()?, grad.contiguous()?);
        let (xs, xl) = xc.storage_and_layout();
        let (ws, wl) = wc.storage_and_layout();
        let (gs, gl) = gc.storage_and_layout();
        let rc = res.contiguous()?;
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
        let grads = timed(
            || self.label(&g),
            Pass::Backward,
            g.n,
            || backward(xd, wd, gd, res, &g, needs),
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
