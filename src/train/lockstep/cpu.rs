//! One update of every member on the CPU, with the fast kernels and without autograd.
//!
//! The step is the single-model fast path taken apart at its layers
//! ([`crate::train::kernels::group`]): the first convolution runs once for all members on
//! their shared batch, then each member's remaining forward pass, its loss (candle's own
//! cross-entropy, on a leaf holding the logits, so its gradient is computed by the same ops
//! as in a single run), its backward pass and its optimizer update run as one rayon task per
//! member, and finally the first convolution's weight gradients are taken for all members on
//! the batch's one column matrix. The gradients are the ones the single run's autograd pass
//! hands to the same kernels, so every value matches the single run bit for bit.

use candle_core::{Device, Tensor, Var};
use rayon::prelude::*;

use super::MemberStep;
use crate::train::kernels::group::{
    conv_relu_pool, conv_relu_pool_backward, linear_backward, linear_forward,
    shared_conv_relu_pool, shared_conv_relu_pool_backward, PooledActivation,
};
use crate::train::kernels::{with_f32_slices, ConvGeom};
use crate::train::model::PARAM_SHAPES;
use crate::train::trainer::TrainState;
use crate::train::{ops, TrainError};

/// Indices of the parameters in [`PARAM_SHAPES`] order.
const CONV1_W: usize = 0;
const CONV1_B: usize = 1;
const CONV2_W: usize = 2;
const FC1_W: usize = 4;
const FC2_W: usize = 6;
const FC3_W: usize = 8;

/// Whether this step can take the fast path: the batch and the parameters are `f32` on the
/// CPU and this thread has not asked for the reference ops (the single-model rule, asked once
/// for the whole step).
pub(super) fn applies(x: &Tensor, states: &[&mut TrainState]) -> bool {
    let params: Vec<&Tensor> = states
        .iter()
        .flat_map(|s| s.model.vars().iter().map(|v| v.as_tensor()))
        .collect();
    ops::fast(&[x]) && ops::fast(&params)
}

/// The two convolutions' shapes for a batch of `n` images `(n, c, h, w)`.
fn geometries(x: &Tensor) -> Result<(ConvGeom, ConvGeom), TrainError> {
    let (n, c, h, w) = x.dims4()?;
    let conv = |shape: &[usize], c: usize, h: usize, w: usize, pad: usize| {
        ConvGeom::new(n, c, h, w, shape[0], shape[2], shape[3], pad).ok_or_else(|| {
            TrainError::InvalidConfig(format!("a {h}x{w} input is too small for the LeNet"))
        })
    };
    let conv1 = conv(PARAM_SHAPES[CONV1_W], c, h, w, 2)?;
    let conv2 = conv(
        PARAM_SHAPES[CONV2_W],
        conv1.k,
        conv1.oh / 2,
        conv1.ow / 2,
        0,
    )?;
    Ok((conv1, conv2))
}

/// One update of every member of `states` on the batch `(x, y)`, member `m` at rate `lrs[m]`.
/// The outer error is a failure of the shared work; a member's own failure is its entry.
pub(super) fn step(
    states: &mut [&mut TrainState],
    x: &Tensor,
    y: &Tensor,
    lrs: &[f64],
) -> Result<Vec<MemberStep>, TrainError> {
    let (g1, g2) = geometries(x)?;
    let conv1: Vec<Tensor> = states
        .iter()
        .flat_map(|s| {
            let vars = s.model.vars();
            [vars[CONV1_W].as_tensor(), vars[CONV1_B].as_tensor()]
        })
        .cloned()
        .collect();
    let conv1: Vec<&Tensor> = conv1.iter().collect();
    let members = states.len();
    // The members' first-layer weights and biases stacked: one GEMM serves them all.
    let c1 = with_f32_slices(&[x], |xs| {
        with_f32_slices(&conv1, |p| {
            let ws: Vec<f32> = p
                .iter()
                .step_by(2)
                .flat_map(|w| w.iter().copied())
                .collect();
            let bs: Vec<f32> = p
                .iter()
                .skip(1)
                .step_by(2)
                .flat_map(|b| b.iter().copied())
                .collect();
            shared_conv_relu_pool(xs[0], &ws, &bs, &g1, members)
        })
    })??;

    let passes: Vec<Result<MemberPass, TrainError>> = states
        .par_iter_mut()
        .zip(&c1)
        .zip(lrs)
        .map(|((state, c1), &lr)| member_pass(state, c1, y, lr, &g2))
        .collect();

    // The first layer's gradients, for the members whose pass succeeded.
    let ok: Vec<usize> = (0..members).filter(|&m| passes[m].is_ok()).collect();
    let acts: Vec<&PooledActivation> = ok.iter().map(|&m| &c1[m]).collect();
    let grads: Vec<&[f32]> = ok
        .iter()
        .filter_map(|&m| passes[m].as_ref().ok().map(|p| p.d_conv1.as_slice()))
        .collect();
    let mut conv1_grads = with_f32_slices(&[x], |xs| {
        shared_conv_relu_pool_backward(xs[0], &acts, &grads, &g1)
    })?
    .into_iter();

    let mut out = Vec::with_capacity(members);
    for (state, (pass, &lr)) in states.iter_mut().zip(passes.into_iter().zip(lrs)) {
        out.push(pass.and_then(|MemberPass { loss, correct, .. }| {
            let (dw, db) = conv1_grads.next().ok_or_else(|| {
                TrainError::Candle(candle_core::Error::Msg(
                    "lockstep: a member's first-layer gradient is missing".to_string(),
                ))
            })?;
            update(state, CONV1_W, dw, lr)?;
            update(state, CONV1_B, db, lr)?;
            Ok((loss, correct))
        }));
    }
    Ok(out)
}

/// What a member's own part of the step leaves for the shared first layer's backward pass.
struct MemberPass {
    /// The batch's loss and correct count (scalar tensors).
    loss: Tensor,
    correct: Tensor,
    /// The gradient of its first layer's pooled output.
    d_conv1: Vec<f32>,
}

/// A member's part of the step after the shared first layer: its forward pass, loss,
/// backward pass and the update of every parameter but the first layer's.
fn member_pass(
    state: &mut TrainState,
    c1: &PooledActivation,
    y: &Tensor,
    lr: f64,
    g2: &ConvGeom,
) -> Result<MemberPass, TrainError> {
    let n = g2.n;
    let params: Vec<Tensor> = state.model.vars()[CONV2_W..]
        .iter()
        .map(|v| v.as_tensor().clone())
        .collect();
    let params: Vec<&Tensor> = params.iter().collect();
    let (o1, i1) = (PARAM_SHAPES[FC1_W][0], PARAM_SHAPES[FC1_W][1]);
    let o2 = PARAM_SHAPES[FC2_W][0];
    let o3 = PARAM_SHAPES[FC3_W][0];

    // Forward, keeping what the backward pass needs.
    let (c2, f1, f2, logits) = with_f32_slices(&params, |p| {
        let c2 = conv_relu_pool(&c1.out, p[0], p[1], g2);
        let f1 = linear_forward(&c2.out, p[2], p[3], (i1, o1), true);
        let f2 = linear_forward(&f1, p[4], p[5], (o1, o2), true);
        let logits = linear_forward(&f2, p[6], p[7], (o2, o3), false);
        (c2, f1, f2, logits)
    })?;

    // The loss and its gradient with respect to the logits, by candle's ops as in a single
    // run; the logits are a leaf here, so the backward pass stops at them.
    let logits = Var::from_tensor(&Tensor::from_vec(logits, (n, o3), &Device::Cpu)?)?;
    let loss = ops::cross_entropy(logits.as_tensor(), y)?;
    let correct = ops::correct_count(&logits.as_detached_tensor(), y)?;
    let dlogits = loss
        .backward()?
        .get(logits.as_tensor())
        .ok_or_else(|| {
            TrainError::Candle(candle_core::Error::Msg(
                "lockstep: the loss has no gradient for the logits".to_string(),
            ))
        })?
        .flatten_all()?
        .to_vec1::<f32>()?;

    // Backward, down to the gradient of the first layer's output.
    let (d_c1, grads) = with_f32_slices(&params, |p| {
        let (d_f2, dw3, db3) = linear_backward(&f2, p[6], &dlogits, None, (o2, o3));
        let (d_f1, dw2, db2) = linear_backward(&f1, p[4], &d_f2, Some(&f2), (o1, o2));
        let (d_c2, dw1, db1) = linear_backward(&c2.out, p[2], &d_f1, Some(&f1), (i1, o1));
        let conv = conv_relu_pool_backward(&c1.out, p[0], &c2, &d_c2, g2);
        let grads = [
            conv.dw.unwrap_or_default(),
            conv.db.unwrap_or_default(),
            dw1,
            db1,
            dw2,
            db2,
            dw3,
            db3,
        ];
        (conv.dx.unwrap_or_default(), grads)
    })?;
    drop(params);
    for (index, grad) in (CONV2_W..).zip(grads) {
        update(state, index, grad, lr)?;
    }
    Ok(MemberPass {
        loss,
        correct,
        d_conv1: d_c1,
    })
}

/// The optimizer's update of parameter `index` with gradient `grad`, as in a single run.
fn update(state: &mut TrainState, index: usize, grad: Vec<f32>, lr: f64) -> Result<(), TrainError> {
    let grad = Tensor::from_vec(grad, PARAM_SHAPES[index], &Device::Cpu)?;
    let var = &state.model.vars()[index];
    state.sgd.update(index, var, &grad, lr)?;
    Ok(())
}
