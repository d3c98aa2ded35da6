//! Access to candle's CPU storage as plain `f32` slices, and per-thread scratch memory.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

/// The `f32` elements of a contiguous CPU storage in layout order.
pub(crate) fn cpu_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("fast CPU kernels need contiguous inputs"),
    }
}

/// The `f32` elements of a contiguous tensor storage, which must live on the CPU. Used in the
/// backward passes, which receive tensors rather than storages: call
/// `let t = t.contiguous()?; let (s, l) = t.storage_and_layout(); storage_f32(&s, l)?`.
pub(crate) fn storage_f32<'a>(storage: &'a Storage, layout: &Layout) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(cpu) => cpu_f32(cpu, layout),
        other => bail!("fast CPU kernels got a tensor on {:?}", other.device()),
    }
}

/// Runs `f` on the `f32` elements of the CPU tensors `ts`, each in layout order (made
/// contiguous first, which costs nothing for a contiguous tensor). The tensors cannot be
/// written (`Var::set`) while `f` runs.
pub(crate) fn with_f32_slices<R>(ts: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> Result<R> {
    let contiguous = ts
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<Tensor>>>()?;
    let guards: Vec<_> = contiguous.iter().map(Tensor::storage_and_layout).collect();
    let slices = guards
        .iter()
        .map(|(storage, layout)| storage_f32(storage, layout))
        .collect::<Result<Vec<&[f32]>>>()?;
    Ok(f(&slices))
}

thread_local! {
    /// One growable buffer per thread (rayon workers live for the whole process), so the
    /// kernels' temporaries are allocated once instead of on every batch.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Lends `f` disjoint scratch slices of the given lengths, with unspecified contents.
///
/// The memory is this thread's reusable buffer; if that is already lent out (only possible if
/// `f` itself waited on other rayon work that re-entered a kernel on this thread), a fresh
/// buffer is used instead, so the call never fails.
pub(crate) fn with_scratch<const K: usize, R>(
    lens: [usize; K],
    f: impl FnOnce([&mut [f32]; K]) -> R,
) -> R {
    fn split<const K: usize>(buf: &mut Vec<f32>, lens: [usize; K]) -> [&mut [f32]; K] {
        let total: usize = lens.iter().sum();
        if buf.len() < total {
            buf.resize(total, 0.0);
        }
        let mut rest = &mut buf[..total];
        lens.map(|len| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            head
        })
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(split(&mut buf, lens)),
        Err(_) => f(split(&mut Vec::new(), lens)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn scratch_slices_are_disjoint_and_sized_even_when_nested() {
        with_scratch([3, 5], |[a, b]| {
            assert_eq!((a.len(), b.len()), (3, 5));
            a.fill(1.0);
            b.fill(2.0);
            assert!(a.iter().all(|&v| v == 1.0));
            with_scratch([4], |[c]| {
                c.fill(3.0);
                assert_eq!(c.len(), 4);
            });
            assert!(b.iter().all(|&v| v == 2.0));
        });
    }

    #[test]
    fn storage_f32_reads_a_made_contiguous_transpose_in_logical_order() {
        let t = Tensor::arange(0f32, 6., &candle_core::Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap()
            .t()
            .unwrap();
        let t = t.contiguous().unwrap();
        let (s, l) = t.storage_and_layout();
        let v = storage_f32(&s, l).unwrap().to_vec();
        assert_eq!(v, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
