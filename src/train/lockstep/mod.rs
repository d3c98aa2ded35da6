//! Lockstep training: several LeNets that share a seed and a batch size trained together, in
//! one pass over the data.
//!
//! In a sweep over schedules, every member with the same seed starts from the same weights
//! and sees the same batches in the same order ([`LeNet::new`](super::LeNet::new) and
//! [`epoch_permutation`](crate::data::epoch_permutation) depend on the seed only); the members
//! differ in their learning rates and optimizer settings. One LeNet is too narrow to keep a
//! CPU's vector units busy (its first convolution has 6 output channels) and leaves a GPU
//! almost idle; a group turns K narrow problems into one wider one:
//!
//! - **on the CPU** ([`cpu`]): the batch is gathered once; the first convolution's column
//!   matrix is built once for all members, its forward pass is one GEMM with every member's
//!   output channels stacked, and its weight gradients are taken against that one column
//!   matrix; the rest of each member's forward and backward pass runs as the single-model
//!   kernels, the members spread over rayon's threads in one parallel region (so two cores
//!   stay busy on a small network), and each member's optimizer step runs there too;
//! - **on other devices** ([`grouped`]): the members' parameters are stacked into one set of
//!   tensors and the network runs as one graph of candle ops: a convolution with `6K` output
//!   channels, a grouped convolution (`groups = K`), and batched matrix products.
//!
//! **What each member keeps.** Its own weights, optimizer state (momentum, Nesterov and weight
//! decay may differ), schedule and schedule unit, metrics (train and test loss and accuracy,
//! rates, per-update records), observer, checkpoint directory (the single-model format, so a
//! member can resume alone or in another group), pause point and stop flag. A member that is
//! stopped, pauses, finishes or fails leaves the group at that batch or epoch; the others go
//! on unchanged.
//!
//! **Exactness.** On the CPU a member's metrics, per-update losses, checkpoints and weights
//! are bit for bit those of the same job trained alone with [`train`](super::train), whatever
//! the group it trains in and whoever leaves it (see [`crate::train::kernels::group`]): the
//! fast path runs each member's arithmetic in the single-model kernels' order, so grouping is
//! a scheduling decision only and a sweep's results do not depend on how its members were
//! grouped. The grouped candle path is compared with the single-model reference path in the
//! tests.
//!
//! **Memory** (CPU, per member, at batch 256): parameters 61,706 `f32` (241 KiB), as much
//! again for momentum buffers (with momentum) and for gradients during a step, and the
//! activations the backward pass needs with their gradients, 15.5 KiB per example (3.9 MiB
//! at batch 256; [`member_bytes`]): 4.6 MiB per member in all, growing linearly with the
//! batch (0.9 GiB at a batch of 60,000). The kernels' scratch memory is per thread, not per member. [`max_group_size`] caps
//! a group at [`MAX_GROUP_SIZE`] members (12 on the CPU: a compute choice, where the stacked
//! first convolution is already 72 channels wide, far more than memory needs) and keeps the
//! members' memory within [`GROUP_MEMORY_BUDGET`]; a caller with more members splits them
//! into several groups.

mod cpu;
mod grouped;
mod member;
mod memory;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::Device;

use crate::data::Dataset;

use super::{RunSummary, TrainConfig, TrainError, TrainObserver, TrainPlan};

pub use memory::{max_group_size, member_bytes, GROUP_MEMORY_BUDGET, MAX_GROUP_SIZE};

/// One member of a lockstep group: what [`RunSpec`](super::RunSpec) holds for a single run,
/// less the data and device the group shares.
pub struct MemberRun<'a> {
    /// What to train, checked by [`TrainPlan::new`].
    pub plan: &'a TrainPlan,
    /// Where its checkpoints and final weights go; `None` saves nothing.
    pub checkpoint_dir: Option<&'a Path>,
    /// Raised by anyone to take this member out of the group at the next batch.
    pub stop: &'a AtomicBool,
    /// Stop (successfully, checkpointed) once this many epochs are done.
    pub until_epoch: Option<u32>,
    /// Receives this member's reports, exactly as for a single run.
    pub observer: &'a mut dyn TrainObserver,
}

/// A lockstep group: members that share the data, the device, the seed and the batch size.
pub struct GroupSpec<'a> {
    pub members: Vec<MemberRun<'a>>,
    /// The data, already on `device`.
    pub data: &'a Dataset,
    pub device: &'a Device,
}

/// How one member's run ended: what [`train`](super::train) would have returned for it.
pub type MemberOutcome = Result<RunSummary, TrainError>;

/// A member's loss and correct count of one batch (scalar tensors), or why its step failed.
type MemberStep = Result<(candle_core::Tensor, candle_core::Tensor), TrainError>;

/// Why a group cannot train at all (nothing was trained; no member's files were touched).
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("a lockstep group needs at least one member")]
    Empty,
    #[error("member {member} cannot train in lockstep with member 0: {reason}")]
    Incompatible { member: usize, reason: String },
    #[error(
        "the members' checkpoints are at different epochs ({epochs:?}); a lockstep group \
         starts from one epoch boundary"
    )]
    EpochsDiffer {
        /// The completed epochs of every member that still has epochs to train, in order.
        epochs: Vec<u32>,
    },
    #[error(transparent)]
    Train(#[from] TrainError),
}

/// Why two runs cannot share a group, if they cannot: they must see the same batches in the
/// same order from the same initial weights, so they need the same seed and batch size.
/// Everything else (schedule, unit, optimizer, epochs, pause point) may differ.
pub fn incompatibility(a: &TrainConfig, b: &TrainConfig) -> Option<String> {
    if a.seed != b.seed {
        return Some(format!("seed {} differs from seed {}", b.seed, a.seed));
    }
    if a.batch_size != b.batch_size {
        return Some(format!(
            "batch size {} differs from batch size {}",
            b.batch_size, a.batch_size
        ));
    }
    None
}

/// Trains every member of `group` together and returns each member's outcome, in order.
///
/// Each member resumes from its own checkpoint directory as [`train`](super::train) would;
/// the members that still have epochs to train must be at the same epoch boundary
/// ([`GroupError::EpochsDiffer`] otherwise). A member leaves the group when its stop flag is
/// raised (at the next batch, `Err(TrainError::Stopped)`), when it reaches its last epoch or
/// pause point, or when it fails (a divergence, an observer or checkpoint error); the others
/// train on. Per member, the observer calls, checkpoints and weights files are those of a
/// single run.
pub fn train_group(group: GroupSpec<'_>) -> Result<Vec<MemberOutcome>, GroupError> {
    let mut outcomes: Vec<Option<MemberOutcome>> = group.members.iter().map(|_| None).collect();
    member::train_group(group, &mut |i, outcome| outcomes[i] = Some(outcome))?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                Err(TrainError::InvalidConfig(
                    "a lockstep member ended without an outcome".to_string(),
                ))
            })
        })
        .collect())
}

/// [`train_group`], handing each member's outcome to `on_leave` (with the member's index)
/// as soon as it leaves the group, so a caller can settle that member while the others train
/// on. Every member's outcome is handed over exactly once, unless the group is refused.
pub fn train_group_reporting(
    group: GroupSpec<'_>,
    on_leave: &mut dyn FnMut(usize, MemberOutcome),
) -> Result<(), GroupError> {
    member::train_group(group, on_leave)
}
