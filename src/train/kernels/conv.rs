//! Stride-1 2-D convolution (+ bias, optionally + ReLU, optionally + 2x2 max-pooling) as candle
//! custom ops: im2col + GEMM forward, GEMM weight gradient, GEMM + col2im input gradient,
//! rayon over groups of images.

use std::sync::OnceLock;

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

/// In the fused pooling op, the recorded "window position" of an output whose maximum was not
/// positive: the ReLU cut it off, so no gradient flows back through it.
const CUT: u8 = 4;

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

/// Output size of 2x2 pooling (a trailing odd row or column is dropped).
fn pooled(g: &ConvGeom) -> (usize, usize) {
    (g.oh / 2, g.ow / 2)
}

/// The convolution without bias of one group of images `x_grp`: `acc` (k x imgs * pixels,
/// images side by side) = W (k x taps) * cols (taps x imgs * pixels).
fn group_acc(x_grp: &[f32], w: &[f32], g: &ConvGeom, acc: &mut [f32], cols: &mut [f32]) {
    let (p, taps) = (g.pixels(), g.taps());
    let ld = x_grp.len() / g.in_img() * p;
    for (j, x_img) in x_grp.chunks_exact(g.in_img()).enumerate() {
        im2col(x_img, g, cols, ld, j * p);
    }
    matmul(
        MatMut::row_major(acc, g.k, ld),
        MatRef::row_major(w, g.k, taps),
        MatRef::row_major(cols, taps, ld),
        false,
    );
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
            let ld = out_grp.len() / g.out_img() * p;
            with_scratch([k * ld, taps * ld], |[acc, cols]| {
                group_acc(x_grp, w, g, acc, cols);
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

/// Output of the fused convolution + bias + ReLU + 2x2 max-pooling.
pub(crate) struct PooledOut {
    /// `(n, k, oh / 2, ow / 2)`.
    pub out: Vec<f32>,
    /// Per output: the position (0..4, row-major) of its window's first maximum, or [`CUT`]
    /// when that maximum plus bias was not positive.
    pub argmax: Vec<u8>,
}

/// Forward pass of `max_pool2x2(relu(conv2d(x, w, b)))` without materialising the
/// convolution's output: each group's GEMM result is pooled straight from scratch memory.
pub(crate) fn forward_relu_pool(x: &[f32], w: &[f32], b: &[f32], g: &ConvGeom) -> PooledOut {
    let (p, taps, k) = (g.pixels(), g.taps(), g.k);
    let (ph, pw) = pooled(g);
    let out_img = k * ph * pw;
    let mut out = vec![0.0f32; g.n * out_img];
    let mut argmax = vec![CUT; g.n * out_img];
    if out.is_empty() {
        return PooledOut { out, argmax };
    }
    let gsz = group_size(g);
    out.par_chunks_mut(gsz * out_img)
        .zip(argmax.par_chunks_mut(gsz * out_img))
        .zip(x.par_chunks(gsz * g.in_img()))
        .for_each(|((out_grp, arg_grp), x_grp)| {
            let ld = out_grp.len() / out_img * p;
            with_scratch([k * ld, taps * ld], |[acc, cols]| {
                group_acc(x_grp, w, g, acc, cols);
                let planes = out_grp
                    .chunks_exact_mut(ph * pw)
                    .zip(arg_grp.chunks_exact_mut(ph * pw));
                for (plane, (o, a)) in planes.enumerate() {
                    let (j, kk) = (plane / k, plane % k);
                    let src = &acc[kk * ld + j * p..kk * ld + (j + 1) * p];
                    pool_plane(src, b[kk], g, o, a);
                }
            });
        });
    PooledOut { out, argmax }
}

/// Bias + ReLU + 2x2 max-pooling of one channel plane `src` (`oh x ow` accumulator values)
/// into its pooled plane `o` and window positions `a`: the fused op's epilogue, shared with
/// the lockstep kernels so both round and break ties the same way.
pub(crate) fn pool_plane(src: &[f32], bias: f32, g: &ConvGeom, o: &mut [f32], a: &mut [u8]) {
    let (ph, pw) = pooled(g);
    for py in 0..ph {
        let r0 = &src[2 * py * g.ow..2 * py * g.ow + 2 * pw];
        let r1 = &src[(2 * py + 1) * g.ow..(2 * py + 1) * g.ow + 2 * pw];
        let (o, a) = (
            &mut o[py * pw..(py + 1) * pw],
            &mut a[py * pw..(py + 1) * pw],
        );
        for (((o, a), top), bottom) in o
            .iter_mut()
            .zip(a.iter_mut())
            .zip(r0.chunks_exact(2))
            .zip(r1.chunks_exact(2))
        {
            // The bias goes in before the comparison: adding it can round two different
            // values to the same one, and the window's maximum must then be the first of
            // them, as when pooling the stored activations. Strict `>` in row-major order:
            // the rule of `kernels::max_pool2x2` and `ops::reference::max_pool2x2`.
            let (mut best, mut at) = (top[0] + bias, 0u8);
            for (i, v) in [(1u8, top[1]), (2, bottom[0]), (3, bottom[1])] {
                if v + bias > best {
                    best = v + bias;
                    at = i;
                }
            }
            *o = act(best, true);
            *a = if best > 0.0 { at } else { CUT };
        }
    }
}

/// What the gradient of the op's output must go through to become the gradient of the
/// convolution's (pre-activation) output.
#[derive(Clone, Copy)]
pub(crate) enum Upstream<'a> {
    /// Plain convolution: `grad` as it is.
    Linear { grad: &'a [f32] },
    /// ReLU: `grad` where the op's output `out` is positive.
    Relu { grad: &'a [f32], out: &'a [f32] },
    /// ReLU + 2x2 max-pooling: each pooled gradient to its recorded window position.
    ReluPool { grad: &'a [f32], argmax: &'a [u8] },
}

impl Upstream<'_> {
    /// Writes the pre-activation gradient of channel `kk` of image `img` (`pixels` values)
    /// into `dst`.
    pub(crate) fn fill(&self, g: &ConvGeom, img: usize, kk: usize, dst: &mut [f32]) {
        let p = g.pixels();
        let at = (img * g.k + kk) * p;
        match *self {
            Upstream::Linear { grad } => dst.copy_from_slice(&grad[at..at + p]),
            Upstream::Relu { grad, out } => {
                let (grad, out) = (&grad[at..at + p], &out[at..at + p]);
                for ((d, &s), &o) in dst.iter_mut().zip(grad).zip(out) {
                    *d = if o > 0.0 { s } else { 0.0 };
                }
            }
            Upstream::ReluPool { grad, argmax } => {
                let (ph, pw) = pooled(g);
                let at = (img * g.k + kk) * ph * pw;
                let (grad, argmax) = (&grad[at..at + ph * pw], &argmax[at..at + ph * pw]);
                dst.fill(0.0);
                for py in 0..ph {
                    for px in 0..pw {
                        let i = py * pw + px;
                        let pos = usize::from(argmax[i]);
                        if pos < usize::from(CUT) {
                            dst[(2 * py + pos / 2) * g.ow + 2 * px + pos % 2] = grad[i];
                        }
                    }
                }
            }
        }
    }
}

/// Whether the weight gradient of a layer of this shape is computed transposed (see
/// [`group_dw`]).
pub(crate) fn dw_transposed(g: &ConvGeom) -> bool {
    g.k * g.taps() > SMALL_DW
}

/// Writes the pre-activation gradient of images `i0..i0 + imgs` into `dpre` (`k x ld`, the
/// images side by side) and adds each channel's sum to `db`.
pub(crate) fn fill_dpre(
    upstream: &Upstream<'_>,
    g: &ConvGeom,
    (i0, imgs): (usize, usize),
    ld: usize,
    dpre: &mut [f32],
    db: &mut [f32],
) {
    let p = g.pixels();
    for j in 0..imgs {
        for kk in 0..g.k {
            let dst = &mut dpre[kk * ld + j * p..kk * ld + (j + 1) * p];
            upstream.fill(g, i0 + j, kk, dst);
            db[kk] += dst.iter().sum::<f32>();
        }
    }
}

/// One group's weight gradient from its pre-activation gradient `dpre` (`k x ld`) and its
/// column matrix `cols` (`taps x ld`), into `dw` (`k * taps`, transposed when
/// [`dw_transposed`]).
///
/// The GEMM is laid out so that `gemm` needs no strided (scalar) packing: a small result
/// (conv1: 6 x 25) is computed row by row as dot products of `dpre` and the column matrix, a
/// larger one (conv2: 16 x 150) transposed, from `dpre` stored transposed in `dpre_t`
/// (`ld * k` scratch, unused otherwise).
pub(crate) fn group_dw(
    dpre: &[f32],
    cols: &[f32],
    dpre_t: &mut [f32],
    g: &ConvGeom,
    ld: usize,
    dw: &mut [f32],
) {
    let (taps, k) = (g.taps(), g.k);
    if dw_transposed(g) {
        for (kk, row) in dpre.chunks_exact(ld).enumerate() {
            for (q, &v) in row.iter().enumerate() {
                dpre_t[q * k + kk] = v;
            }
        }
        // dw^T (taps x k) = cols (taps x ld) * dpre^T (ld x k)
        matmul(
            MatMut::row_major(dw, taps, k),
            MatRef::row_major(cols, taps, ld),
            MatRef::row_major(dpre_t, ld, k),
            false,
        );
    } else {
        matmul(
            MatMut::row_major(dw, k, taps),
            MatRef::row_major(dpre, k, ld),
            MatRef::row_major(cols, taps, ld).t(),
            false,
        );
    }
}

/// Adds per-group partial weight and bias gradients (as [`group_dw`] and [`fill_dpre`] left
/// them) in group order, so the result does not depend on how rayon scheduled the groups.
pub(crate) fn sum_partials<'a>(
    partials: impl IntoIterator<Item = (&'a [f32], &'a [f32])>,
    g: &ConvGeom,
    with_dw: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (taps, k) = (g.taps(), g.k);
    let mut dw = vec![0.0f32; if with_dw { k * taps } else { 0 }];
    let mut db = vec![0.0f32; k];
    for (pdw, pdb) in partials {
        if dw_transposed(g) {
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
    (dw, db)
}

/// Backward pass, from the gradient of the op's output as `upstream` describes it.
pub(crate) fn backward(
    x: &[f32],
    w: &[f32],
    upstream: Upstream<'_>,
    g: &ConvGeom,
    needs: Needs,
) -> ConvGrads {
    let (p, taps, k) = (g.pixels(), g.taps(), g.k);
    let gsz = group_size(g);
    let dpre_t_len = |ld: usize| {
        if needs.dw && dw_transposed(g) {
            ld * k
        } else {
            0
        }
    };
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
        with_scratch(
            [k * ld, dpre_t_len(ld), taps * ld],
            |[dpre, dpre_t, cols]| {
                fill_dpre(&upstream, g, (i0, imgs), ld, dpre, &mut db);
                if needs.dw {
                    for j in 0..imgs {
                        let x_img = &x[(i0 + j) * g.in_img()..(i0 + j + 1) * g.in_img()];
                        im2col(x_img, g, cols, ld, j * p);
                    }
                    group_dw(dpre, cols, dpre_t, g, ld, &mut dw);
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
            },
        );
        (dw, db)
    };
    let mut dx = needs.dx.then(|| vec![0.0f32; g.n * g.in_img()]);
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
    let (dw, db) = sum_partials(
        partials
            .iter()
            .map(|(dw, db)| (dw.as_slice(), db.as_slice())),
        g,
        needs.dw,
    );
    ConvGrads {
        dx,
        dw: needs.dw.then_some(dw),
        db: needs.db.then_some(db),
    }
}

/// What follows the convolution inside the op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Epilogue {
    /// Nothing: `conv2d + bias`.
    None,
    /// `relu(conv2d + bias)`.
    Relu,
    /// `max_pool2x2(relu(conv2d + bias))`.
    ReluPool,
}

/// The candle custom op: arguments `(x, w, b)`, NCHW / KCHW / K, `f32`, contiguous, on the CPU.
#[derive(Debug)]
pub(crate) struct Conv2dOp {
    pub pad: usize,
    pub epilogue: Epilogue,
    /// For [`Epilogue::ReluPool`] when a gradient will be needed: the forward pass's window
    /// positions, which its backward pass routes the gradient through.
    pub argmax: Option<OnceLock<Vec<u8>>>,
}

impl Conv2dOp {
    /// An op whose forward pass keeps what its backward pass needs when `record` is true.
    pub(crate) fn new(pad: usize, epilogue: Epilogue, record: bool) -> Self {
        Self {
            pad,
            epilogue,
            argmax: (record && epilogue == Epilogue::ReluPool).then(OnceLock::new),
        }
    }

    /// The layer's name in profiles.
    fn label(&self, g: &ConvGeom) -> String {
        let (name, (oh, ow)) = match self.epilogue {
            Epilogue::None => ("conv2d", (g.oh, g.ow)),
            Epilogue::Relu => ("conv2d+relu", (g.oh, g.ow)),
            Epilogue::ReluPool => ("conv2d+relu+pool2x2", pooled(g)),
        };
        format!(
            "{name} {}x{}x{} -> {}x{oh}x{ow}, {}x{} pad {}",
            g.c, g.h, g.w, g.k, g.kh, g.kw, g.pad
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
        let Some(g) = ConvGeom::new(n, c, h, wd, k, kh, kw, self.pad) else {
            bail!(
                "conv2d: kernel {kh}x{kw} larger than input {h}x{wd} padded by {}",
                self.pad
            )
        };
        if self.epilogue == Epilogue::ReluPool && (g.oh < 2 || g.ow < 2) {
            bail!(
                "conv2d: output {}x{} is smaller than the 2x2 pooling window",
                g.oh,
                g.ow
            )
        }
        Ok(g)
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        match self.epilogue {
            Epilogue::None => "lrlab-conv2d",
            Epilogue::Relu => "lrlab-conv2d-relu",
            Epilogue::ReluPool => "lrlab-conv2d-relu-pool2x2",
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
        let label = || self.label(&g);
        if self.epilogue == Epilogue::ReluPool {
            let pooled_out = timed(label, Pass::Forward, g.n, || forward_relu_pool(x, w, b, &g));
            if let Some(slot) = &self.argmax {
                if slot.set(pooled_out.argmax).is_err() {
                    bail!("conv2d: an op instance ran its forward pass twice");
                }
            }
            let (ph, pw) = pooled(&g);
            return Ok((
                CpuStorage::F32(pooled_out.out),
                Shape::from((g.n, g.k, ph, pw)),
            ));
        }
        let relu = self.epilogue == Epilogue::Relu;
        let out = timed(label, Pass::Forward, g.n, || forward(x, w, b, &g, relu));
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
        let grad = storage_f32(&gs, gl)?;
        let upstream = match self.epilogue {
            Epilogue::None => Upstream::Linear { grad },
            Epilogue::Relu => Upstream::Relu {
                grad,
                out: storage_f32(&rs, rl)?,
            },
            Epilogue::ReluPool => match self.argmax.as_ref().and_then(OnceLock::get) {
                Some(argmax) => Upstream::ReluPool { grad, argmax },
                None => bail!("conv2d: backward pass without a recorded forward pass"),
            },
        };
        let (xd, wd) = (storage_f32(&xs, xl)?, storage_f32(&ws, wl)?);
        let grads = timed(
            || self.label(&g),
            Pass::Backward,
            g.n,
            || backward(xd, wd, upstream, &g, needs),
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
