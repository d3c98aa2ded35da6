//! How much memory a group member needs, and how many members a group takes.

use candle_core::Device;

use crate::train::model::PARAM_SHAPES;

/// Most members in one group on the CPU. Beyond a dozen the stacked first convolution
/// (72 output channels) gains nothing more, and the members' other layers already keep every
/// core busy; memory allows far more at ordinary batch sizes.
pub const MAX_GROUP_SIZE: usize = 12;

/// Most members in one group on a GPU, where one LeNet leaves the device almost idle.
const MAX_GROUP_SIZE_GPU: usize = 64;

/// Memory the members of one group may use together (estimated by [`member_bytes`]).
pub const GROUP_MEMORY_BUDGET: usize = 2 << 30;

/// On devices other than the CPU the members run as candle graphs, which also keep the
/// convolutions' outputs before pooling, the ReLU and pooling masks and the stacked
/// parameters: about this many times the fast path's activations.
const GRAPH_FACTOR: usize = 4;

/// `f32` values the CPU fast path keeps per example for the backward pass: the two pooled
/// convolution outputs (6x14x14 and 16x5x5) with a one-byte window position each, the outputs
/// of the three linear layers, and the gradients of all of them during the backward pass.
const ACTIVATIONS_PER_EXAMPLE: usize = 6 * 14 * 14 + 16 * 5 * 5 + 120 + 84 + 10;
/// The bytes of window positions per example (one per pooled output).
const POSITIONS_PER_EXAMPLE: usize = 6 * 14 * 14 + 16 * 5 * 5;

/// Bytes one member needs on the CPU at batch size `batch`: its parameters, momentum buffers
/// and gradients (3 x 61,706 `f32`, 723 KiB), and its activations with their gradients
/// (2 x 1,790 `f32` and 1,576 window bytes per example, 15.5 KiB: 3.9 MiB at batch 256).
/// The kernels' scratch memory is per thread, not per member.
pub fn member_bytes(batch: usize) -> usize {
    let params: usize = PARAM_SHAPES
        .iter()
        .map(|shape| shape.iter().product::<usize>())
        .sum();
    let f32_bytes = std::mem::size_of::<f32>();
    3 * params * f32_bytes
        + batch * (2 * ACTIVATIONS_PER_EXAMPLE * f32_bytes + POSITIONS_PER_EXAMPLE)
}

/// The most members one group of batch size `batch` takes on `device`: [`MAX_GROUP_SIZE`] on
/// the CPU (64 on GPUs), fewer when their memory would exceed [`GROUP_MEMORY_BUDGET`], and
/// at least one.
pub fn max_group_size(device: &Device, batch: usize) -> usize {
    let (cap, per_member) = if device.is_cpu() {
        (MAX_GROUP_SIZE, member_bytes(batch))
    } else {
        (MAX_GROUP_SIZE_GPU, GRAPH_FACTOR * member_bytes(batch))
    };
    (GROUP_MEMORY_BUDGET / per_member.max(1)).clamp(1, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_needs_under_five_mib_at_batch_256() {
        let bytes = member_bytes(256);
        assert_eq!(bytes, 3 * 61_706 * 4 + 256 * (2 * 1_790 * 4 + 1_576));
        let mib = bytes as f64 / f64::from(1 << 20);
        assert!((4.5..4.7).contains(&mib), "{mib} MiB");
    }

    #[test]
    fn groups_are_capped_by_compute_at_small_batches_and_by_memory_at_large_ones() {
        assert_eq!(max_group_size(&Device::Cpu, 256), MAX_GROUP_SIZE);
        // A whole-data-set batch needs about 0.9 GiB per member.
        assert_eq!(max_group_size(&Device::Cpu, 60_000), 2);
        let per_member = member_bytes(60_000);
        assert!(2 * per_member <= GROUP_MEMORY_BUDGET && 3 * per_member > GROUP_MEMORY_BUDGET);
    }
}
