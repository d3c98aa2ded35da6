//! One update of every member with candle's own ops: the path of every device but the CPU
//! (and of the CPU inside [`ops::with_reference_ops`](crate::train::ops::with_reference_ops)).
//!
//! The members' parameters are stacked into one tensor per parameter, member after member
//! (`Tensor::cat` of their `Var`s, so the gradients flow back to each member's own `Var`), and
//! the network runs once for the group: the first convolution with every member's output
//! channels (its input, the batch, is shared), the second as a grouped convolution
//! (`groups = K`), the linear layers as batched matrix products over a leading member
//! dimension. Each member's loss is its own slice of the logits; the backward pass starts from
//! their sum, whose gradient with respect to each loss is exactly 1, so each member gets the
//! gradient of its own loss. The optimizer then updates each member as in a single run.
//!
//! The layers are those of [`reference`], with max-pooling and ReLU by the same rules as every
//! other path. Candle runs a grouped convolution as one convolution per group (on a GPU, one
//! launch per member for that layer); every other layer is one op for the whole group.

use candle_core::{Result, Tensor};

use super::MemberStep;
use crate::train::model::PARAM_NAMES;
use crate::train::ops::{self, reference};
use crate::train::trainer::TrainState;
use crate::train::TrainError;

/// One update of every member of `states` on the batch `(x, y)`, member `m` at rate `lrs[m]`.
/// The outer error is a failure of the group's graph; a member's own failure is its entry.
pub(super) fn step(
    states: &mut [&mut TrainState],
    x: &Tensor,
    y: &Tensor,
    lrs: &[f64],
) -> std::result::Result<Vec<MemberStep>, TrainError> {
    let members = states.len();
    let stacked = (0..PARAM_NAMES.len())
        .map(|i| {
            let of_members: Vec<&Tensor> = states
                .iter()
                .map(|s| s.model.vars()[i].as_tensor())
                .collect();
            Tensor::cat(&of_members, 0)
        })
        .collect::<Result<Vec<Tensor>>>()?;
    let logits = forward(&stacked, x, members)?;
    let mut losses = Vec::with_capacity(members);
    let mut correct = Vec::with_capacity(members);
    for m in 0..members {
        let logits = logits.get(m)?;
        losses.push(ops::cross_entropy(&logits, y)?);
        correct.push(ops::correct_count(&logits.detach(), y)?);
    }
    let grads = Tensor::stack(&losses, 0)?.sum_all()?.backward()?;
    let steps = states
        .iter_mut()
        .zip(losses.into_iter().zip(correct))
        .zip(lrs)
        .map(|((state, (loss, correct)), &lr)| {
            state.sgd.step(state.model.vars(), &grads, lr)?;
            Ok((loss, correct))
        })
        .collect();
    Ok(steps)
}

/// Logits `(members, N, 10)` of every member for images `(N, 1, 28, 28)`, from the members'
/// parameters stacked along their first dimension (in [`PARAM_NAMES`] order).
pub(super) fn forward(p: &[Tensor], x: &Tensor, members: usize) -> Result<Tensor> {
    let n = x.dim(0)?;
    let h = reference::conv2d(x, &p[0], &p[1], 2)?;
    let h = reference::max_pool2x2(&reference::relu(&h)?)?;
    let h = reference::grouped_conv2d(&h, &p[2], &p[3], 0, members)?;
    let h = reference::max_pool2x2(&reference::relu(&h)?)?;
    // (N, members * 16, 5, 5) -> (members, N, 400): each member's features flattened as a
    // single run flattens them.
    let h = h.reshape((n, members, ()))?.transpose(0, 1)?.contiguous()?;
    let linear = |x: &Tensor, w: &Tensor, b: &Tensor| {
        let (rows, inputs) = w.dims2()?;
        let out = rows / members;
        reference::batched_linear(
            x,
            &w.reshape((members, out, inputs))?,
            &b.reshape((members, out))?,
        )
    };
    let h = reference::relu(&linear(&h, &p[4], &p[5])?)?;
    let h = reference::relu(&linear(&h, &p[6], &p[7])?)?;
    linear(&h, &p[8], &p[9])
}
