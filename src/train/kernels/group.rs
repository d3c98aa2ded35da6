//! Kernels for a lockstep group: several models of the same shape trained on the same batch
//! (see [`crate::train::lockstep`]).
//!
//! The only layer whose input the members share is the first convolution (its input is the
//! batch itself). Its column matrix is built once per group of images for all members, its
//! forward pass is one GEMM whose output channels are every member's channels stacked
//! (`members * k` rows: 36 for six LeNets instead of 6), and its weight gradients are K
//! products against that one column matrix. Every later layer has per-member inputs: those
//! run as the single-model kernels, one call per member, which the caller spreads over rayon's
//! threads.
//!
//! **Exactness.** Each member's values are those of the single-model op, bit for bit:
//! - stacking rows changes only how many output columns `gemm` computes, never how one output
//!   element is summed (an FMA chain over the taps, the same for every row and column of the
//!   micro-kernel's tile, as long as the product takes the same code path — which holds for
//!   any number of stacked rows, since the batch dimension keeps the product far above
//!   `gemm`'s small-matrix thresholds);
//! - the pooling epilogue is the single-model op's ([`conv::pool_plane`]);
//! - the weight gradients use the single-model op's grouping of images, its products
//!   ([`conv::group_dw`]) and its order of summing the groups ([`conv::sum_partials`]).
//!
//! The tests check this against the single-model ops for several member counts.

use rayon::prelude::*;

use super::conv::{self, ConvGrads, Needs, PooledOut, Upstream};
use super::im2col::{im2col, ConvGeom};
use super::linear;
use super::matmul::{matmul, MatMut, MatRef};
use super::profile::{timed, Pass};
use super::storage::with_scratch;

/// Scratch bytes one task of the shared forward pass works in (every member's accumulators
/// plus the column matrix): about what the single-model op keeps in a core's L2 per group.
const SHARED_GROUP_BYTES: usize = 256 * 1024;

/// Groups the shared forward pass splits a batch into at least, so two threads balance.
const MIN_GROUPS: usize = 16;

/// What a fused convolution + ReLU + 2x2 max-pooling keeps from its forward pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct PooledActivation {
    /// `(n, k, oh / 2, ow / 2)`, row-major.
    pub out: Vec<f32>,
    /// Per output, the window position the backward pass routes its gradient to.
    pub argmax: Vec<u8>,
}

impl From<PooledOut> for PooledActivation {
    fn from(p: PooledOut) -> Self {
        PooledActivation {
            out: p.out,
            argmax: p.argmax,
        }
    }
}

/// Images per task of the shared forward pass: as many as fit [`SHARED_GROUP_BYTES`] with all
/// members' accumulators, leaving at least [`MIN_GROUPS`] tasks. Independent of the thread
/// count (and, for the results, of anything at all: see the module docs).
fn shared_group_size(g: &ConvGeom, members: usize) -> usize {
    let per_img = (members * g.k + g.taps()) * g.pixels() * std::mem::size_of::<f32>();
    let by_cache = (SHARED_GROUP_BYTES / per_img.max(1)).max(1);
    by_cache.min(g.n.div_ceil(MIN_GROUPS).max(1))
}

/// `max_pool2x2(relu(conv2d(x, w_m, b_m)))` for every member `m` at once, on their shared
/// input `x` (`g.n` images of `g.in_img()`): `ws` holds the members' weights one after the
/// other (`members * g.k` rows of `g.taps()`), `bs` their biases (`members * g.k`). Returns
/// each member's pooled output, as the single-model fused op gives it.
pub(crate) fn shared_conv_relu_pool(
    x: &[f32],
    ws: &[f32],
    bs: &[f32],
    g: &ConvGeom,
    members: usize,
) -> Vec<PooledActivation> {
    let (p, taps, k) = (g.pixels(), g.taps(), g.k);
    let rows = members * k;
    assert_eq!(
        ws.len(),
        rows * taps,
        "shared conv: weights of {members} members"
    );
    assert_eq!(bs.len(), rows, "shared conv: biases of {members} members");
    let (ph, pw) = (g.oh / 2, g.ow / 2);
    let out_img = k * ph * pw;
    let mut acts: Vec<PooledActivation> = (0..members)
        .map(|_| PooledActivation {
            out: vec![0.0; g.n * out_img],
            argmax: vec![0; g.n * out_img],
        })
        .collect();
    if g.n == 0 || members == 0 {
        return acts;
    }
    let gsz = shared_group_size(g, members);
    let groups = g.n.div_ceil(gsz);
    // Per task, every member's slice of the task's images.
    let mut tasks: Vec<Vec<(&mut [f32], &mut [u8])>> =
        (0..groups).map(|_| Vec::with_capacity(members)).collect();
    for act in &mut acts {
        let parts = act
            .out
            .chunks_mut(gsz * out_img)
            .zip(act.argmax.chunks_mut(gsz * out_img));
        for (task, part) in tasks.iter_mut().zip(parts) {
            task.push(part);
        }
    }
    let label = || format!("lockstep shared {} x{members}", conv_label(g));
    timed(label, Pass::Forward, g.n, || {
        tasks
            .into_par_iter()
            .zip(x.par_chunks(gsz * g.in_img()))
            .for_each(|(mut parts, x_grp)| {
                let imgs = x_grp.len() / g.in_img();
                let ld = imgs * p;
                with_scratch([rows * ld, taps * ld], |[acc, cols]| {
                    for (j, x_img) in x_grp.chunks_exact(g.in_img()).enumerate() {
                        im2col(x_img, g, cols, ld, j * p);
                    }
                    // acc (members·k x ld) = W_all (members·k x taps) · cols (taps x ld)
                    matmul(
                        MatMut::row_major(acc, rows, ld),
                        MatRef::row_major(ws, rows, taps),
                        MatRef::row_major(cols, taps, ld),
                        false,
                    );
                    for (member, (out, argmax)) in parts.iter_mut().enumerate() {
                        let planes = out
                            .chunks_exact_mut(ph * pw)
                            .zip(argmax.chunks_exact_mut(ph * pw));
                        for (plane, (o, a)) in planes.enumerate() {
                            let (j, kk) = (plane / k, plane % k);
                            let row = member * k + kk;
                            let src = &acc[row * ld + j * p..row * ld + (j + 1) * p];
                            conv::pool_plane(src, bs[row], g, o, a);
                        }
                    }
                });
            });
    });
    acts
}

/// The weight and bias gradients of every member of [`shared_conv_relu_pool`], each from the
/// gradient of its pooled output (`grads[m]`) and its recorded window positions; no input
/// gradient (the shared input is the batch, which needs none). Returns `(dw, db)` per member.
pub(crate) fn shared_conv_relu_pool_backward(
    x: &[f32],
    acts: &[&PooledActivation],
    grads: &[&[f32]],
    g: &ConvGeom,
) -> Vec<(Vec<f32>, Vec<f32>)> {
    assert_eq!(acts.len(), grads.len(), "shared conv backward: members");
    let (p, taps, k) = (g.pixels(), g.taps(), g.k);
    let upstreams: Vec<Upstream<'_>> = acts
        .iter()
        .zip(grads)
        .map(|(act, grad)| Upstream::ReluPool {
            grad,
            argmax: &act.argmax,
        })
        .collect();
    if g.n == 0 {
        return vec![(vec![0.0; k * taps], vec![0.0; k]); acts.len()];
    }
    // The single-model op's grouping: each member's partial sums must cover the same images.
    let gsz = conv::group_size(g);
    let dpre_t_len = |ld: usize| if conv::dw_transposed(g) { ld * k } else { 0 };
    let label = || format!("lockstep shared {} x{}", conv_label(g), acts.len());
    timed(label, Pass::Backward, g.n, || {
        let partials: Vec<Vec<(Vec<f32>, Vec<f32>)>> = (0..g.n.div_ceil(gsz))
            .into_par_iter()
            .map(|grp| {
                let i0 = grp * gsz;
                let imgs = gsz.min(g.n - i0);
                let ld = imgs * p;
                with_scratch(
                    [k * ld, dpre_t_len(ld), taps * ld],
                    |[dpre, dpre_t, cols]| {
                        for j in 0..imgs {
                            let x_img = &x[(i0 + j) * g.in_img()..(i0 + j + 1) * g.in_img()];
                            im2col(x_img, g, cols, ld, j * p);
                        }
                        upstreams
                            .iter()
                            .map(|upstream| {
                                let (mut dw, mut db) = (vec![0.0f32; k * taps], vec![0.0f32; k]);
                                conv::fill_dpre(upstream, g, (i0, imgs), ld, dpre, &mut db);
                                conv::group_dw(dpre, cols, dpre_t, g, ld, &mut dw);
                                (dw, db)
                            })
                            .collect()
                    },
                )
            })
            .collect();
        (0..upstreams.len())
            .map(|member| {
                let parts = partials
                    .iter()
                    .map(|grp| (grp[member].0.as_slice(), grp[member].1.as_slice()));
                conv::sum_partials(parts, g, true)
            })
            .collect()
    })
}

/// One member's fused convolution + ReLU + 2x2 max-pooling: the single-model op's forward.
pub(crate) fn conv_relu_pool(x: &[f32], w: &[f32], b: &[f32], g: &ConvGeom) -> PooledActivation {
    let label = || format!("conv2d+relu+pool2x2 {}", conv_label(g));
    timed(label, Pass::Forward, g.n, || {
        conv::forward_relu_pool(x, w, b, g)
    })
    .into()
}

/// The gradients of [`conv_relu_pool`]: of its input, weights and bias, from the gradient of
/// its pooled output.
pub(crate) fn conv_relu_pool_backward(
    x: &[f32],
    w: &[f32],
    act: &PooledActivation,
    grad: &[f32],
    g: &ConvGeom,
) -> ConvGrads {
    let label = || format!("conv2d+relu+pool2x2 {}", conv_label(g));
    let upstream = Upstream::ReluPool {
        grad,
        argmax: &act.argmax,
    };
    let needs = Needs {
        dx: true,
        dw: true,
        db: true,
    };
    timed(label, Pass::Backward, g.n, || {
        conv::backward(x, w, upstream, g, needs)
    })
}

/// One member's fully connected layer `act(x w^T + b)`, `x` being `(n, i)`: the single-model
/// op's forward.
pub(crate) fn linear_forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (i, o): (usize, usize),
    relu: bool,
) -> Vec<f32> {
    let n = x.len().checked_div(i).unwrap_or(0);
    timed(
        || linear_label(i, o, relu),
        Pass::Forward,
        n,
        || linear::forward(x, w, b, i, o, relu),
    )
}

/// The gradients `(dx, dw, db)` of [`linear_forward`] from the gradient of its output; `out`
/// is its output when it has a ReLU.
pub(crate) fn linear_backward(
    x: &[f32],
    w: &[f32],
    grad: &[f32],
    out: Option<&[f32]>,
    (i, o): (usize, usize),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = grad.len().checked_div(o).unwrap_or(0);
    let grads = timed(
        || linear_label(i, o, out.is_some()),
        Pass::Backward,
        n,
        || linear::backward(x, w, grad, out, (i, o), (true, true, true)),
    );
    (
        grads.dx.unwrap_or_default(),
        grads.dw.unwrap_or_default(),
        grads.db.unwrap_or_default(),
    )
}

/// A convolution's per-example shapes, as the single-model ops name them in profiles.
fn conv_label(g: &ConvGeom) -> String {
    format!(
        "{}x{}x{} -> {}x{}x{}, {}x{} pad {}",
        g.c,
        g.h,
        g.w,
        g.k,
        g.oh / 2,
        g.ow / 2,
        g.kh,
        g.kw,
        g.pad
    )
}

fn linear_label(i: usize, o: usize, relu: bool) -> String {
    format!("linear{} {i} -> {o}", if relu { "+relu" } else { "" })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn random(r: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| r.random_range(-1.0f32..1.0)).collect()
    }

    /// Images with exact zeros (a background), as real images have: there the first layer's
    /// pre-activation is its bias, so pooling windows hold exact ties.
    fn images(r: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        random(r, len).into_iter().map(|v| v.max(0.0)).collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The LeNet's first layer at batch sizes with one, several and a partial last group.
    fn geometries() -> Vec<ConvGeom> {
        [1, 7, 37, 256]
            .into_iter()
            .filter_map(|n| ConvGeom::new(n, 1, 28, 28, 6, 5, 5, 2))
            .collect()
    }

    #[test]
    fn stacked_members_get_the_single_model_forward_pass_bit_for_bit() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        for g in geometries() {
            let x = images(&mut r, g.n * g.in_img());
            for members in [1, 2, 3, 6, 12, 13] {
                let ws = random(&mut r, members * g.k * g.taps());
                let bs = random(&mut r, members * g.k);
                let stacked = shared_conv_relu_pool(&x, &ws, &bs, &g, members);
                assert_eq!(stacked.len(), members);
                for (m, act) in stacked.iter().enumerate() {
                    let w = &ws[m * g.k * g.taps()..(m + 1) * g.k * g.taps()];
                    let b = &bs[m * g.k..(m + 1) * g.k];
                    let alone = conv::forward_relu_pool(&x, w, b, &g);
                    let what = format!("n {} member {m} of {members}", g.n);
                    assert_eq!(bits(&act.out), bits(&alone.out), "{what}");
                    assert_eq!(act.argmax, alone.argmax, "{what}");
                }
            }
        }
    }

    #[test]
    fn shared_weight_gradients_are_the_single_model_ones_bit_for_bit() {
        let mut r = ChaCha8Rng::seed_from_u64(2);
        for g in geometries() {
            let x = images(&mut r, g.n * g.in_img());
            let members = 4;
            let ws = random(&mut r, members * g.k * g.taps());
            let bs = random(&mut r, members * g.k);
            let acts = shared_conv_relu_pool(&x, &ws, &bs, &g, members);
            let grads: Vec<Vec<f32>> = acts.iter().map(|a| random(&mut r, a.out.len())).collect();
            let act_refs: Vec<&PooledActivation> = acts.iter().collect();
            let grad_refs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
            let shared = shared_conv_relu_pool_backward(&x, &act_refs, &grad_refs, &g);
            for (m, (dw, db)) in shared.iter().enumerate() {
                let w = &ws[m * g.k * g.taps()..(m + 1) * g.k * g.taps()];
                let upstream = Upstream::ReluPool {
                    grad: &grads[m],
                    argmax: &acts[m].argmax,
                };
                let needs = Needs {
                    dx: false,
                    dw: true,
                    db: true,
                };
                let alone = conv::backward(&x, w, upstream, &g, needs);
                let what = format!("n {} member {m}", g.n);
                assert_eq!(Some(bits(dw)), alone.dw.as_deref().map(bits), "{what}");
                assert_eq!(Some(bits(db)), alone.db.as_deref().map(bits), "{what}");
                assert!(dw.iter().any(|&v| v != 0.0), "{what}: no gradient");
            }
        }
    }

    #[test]
    fn shared_passes_are_identical_for_one_and_two_threads() {
        let g = ConvGeom::new(37, 1, 28, 28, 6, 5, 5, 2).unwrap();
        let mut r = ChaCha8Rng::seed_from_u64(3);
        let x = images(&mut r, g.n * g.in_img());
        let ws = random(&mut r, 3 * g.k * g.taps());
        let bs = random(&mut r, 3 * g.k);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let acts = shared_conv_relu_pool(&x, &ws, &bs, &g, 3);
                let grads: Vec<Vec<f32>> = acts.iter().map(|a| a.out.clone()).collect();
                let act_refs: Vec<&PooledActivation> = acts.iter().collect();
                let grad_refs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
                let dw = shared_conv_relu_pool_backward(&x, &act_refs, &grad_refs, &g);
                (
                    acts.into_iter().map(|a| bits(&a.out)).collect::<Vec<_>>(),
                    dw,
                )
            })
        };
        assert_eq!(run(1), run(2));
    }
}
