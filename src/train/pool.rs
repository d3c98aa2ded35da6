//! 2×2 / stride-2 max-pooling with a correct gradient.
//!
//! candle 0.11's `max_pool2d` backward hands each window's maximum a gradient of 0.25 instead
//! of 1 (it routes the gradient through an average), which makes conv2's gradients 4× and
//! conv1's 16× too small. Here the CPU forward records each window's argmax and the backward
//! scatters the incoming gradient to exactly that element, as PyTorch does (ties: the first
//! element in row-major window order). Other devices use [`max_pool2x2_generic`], built from
//! candle ops whose own gradients are correct.

use std::sync::{Arc, OnceLock};

use candle_core::{
    backend::BackendStorage, bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, D,
};

/// Max-pools the last two dimensions of an (N, C, H, W) tensor with 2×2 windows and stride 2;
/// an odd trailing row or column is dropped (PyTorch's floor mode).
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return max_pool2x2_generic(x);
    }
    let x = x.contiguous()?;
    let op = MaxPool2x2 {
        record: x.track_op(),
        argmax: OnceLock::new(),
    };
    x.apply_op1(op)
}

/// The same pooling written with candle's differentiable ops: the windows are gathered into a
/// trailing axis of 4, a one-hot mask of each window's first maximum is built without
/// gradient, and the output is the masked sum, so the gradient reaches exactly one element per
/// window. Slower than the CPU kernel; used on GPUs and as a reference in tests.
pub fn max_pool2x2_generic(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    let x = x.narrow(2, 0, 2 * ho)?.narrow(3, 0, 2 * wo)?;
    let windows = x
        .reshape((n, c, ho, 2, wo, 2))?
        .permute((0, 1, 2, 4, 3, 5))?
        .reshape((n, c, ho, wo, 4))?;
    let frozen = windows.detach();
    let max = frozen.max_keepdim(D::Minus1)?;
    let is_max = frozen.broadcast_eq(&max)?.to_dtype(x.dtype())?;
    // first_k = is_max_k · Π_{j<k} (1 − is_max_j): a one-hot of the first maximum.
    let mut parts = Vec::with_capacity(4);
    let mut none_before: Option<Tensor> = None;
    for k in 0..4 {
        let e = is_max.narrow(D::Minus1, k, 1)?;
        let first = match &none_before {
            None => e.clone(),
            Some(nb) => (&e * nb)?,
        };
        let not_e = e.affine(-1.0, 1.0)?;
        none_before = Some(match none_before {
            None => not_e,
            Some(nb) => (nb * not_e)?,
        });
        parts.push(first);
    }
    let mask = Tensor::cat(&parts, D::Minus1)?;
    windows.mul(&mask)?.sum(D::Minus1)
}

/// The CPU forward op. `argmax` is filled by the forward pass (only when a gradient can be
/// asked for) and read by the backward pass, which lives in the same graph node.
struct MaxPool2x2 {
    record: bool,
    argmax: OnceLock<Arc<Vec<u32>>>,
}

/// Element types the CPU kernels handle.
trait PoolElem: Copy + PartialOrd + Default + std::ops::AddAssign {}
impl PoolElem for f32 {}
impl PoolElem for f64 {}

/// Pools `planes` contiguous H×W planes; returns the outputs and (if `record`) the flat input
/// index each output came from. NaN wins over numbers, as in PyTorch, so divergence shows.
fn pool_planes<T: PoolElem>(
    src: &[T],
    planes: usize,
    h: usize,
    w: usize,
    record: bool,
) -> (Vec<T>, Vec<u32>) {
    let (ho, wo) = (h / 2, w / 2);
    let mut out = Vec::with_capacity(planes * ho * wo);
    let mut arg = Vec::with_capacity(if record { planes * ho * wo } else { 0 });
    for p in 0..planes {
        let base = p * h * w;
        for i in 0..ho {
            for j in 0..wo {
                let top = base + 2 * i * w + 2 * j;
                let cands = [top, top + 1, top + w, top + w + 1];
                let mut best = cands[0];
                for &k in &cands[1..] {
                    let (v, b) = (src[k], src[best]);
                    let v_nan = v.partial_cmp(&v).is_none();
                    let b_nan = b.partial_cmp(&b).is_none();
                    if (v > b || v_nan) && !b_nan {
                        best = k;
                    }
                }
                out.push(src[best]);
                if record {
                    arg.push(best as u32);
                }
            }
        }
    }
    (out, arg)
}

impl CustomOp1 for MaxPool2x2 {
    fn name(&self) -> &'static str {
        "lrlab-max-pool-2x2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        if n * c * h * w > u32::MAX as usize {
            bail!(
                "max_pool2x2: input of {} elements is too large",
                n * c * h * w
            )
        }
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("max_pool2x2: input must be contiguous")
        };
        let (out, arg) = match storage {
            CpuStorage::F32(v) => {
                let (o, a) = pool_planes(&v[start..end], n * c, h, w, self.record);
                (CpuStorage::F32(o), a)
            }
            CpuStorage::F64(v) => {
                let (o, a) = pool_planes(&v[start..end], n * c, h, w, self.record);
                (CpuStorage::F64(o), a)
            }
            other => bail!("max_pool2x2: unsupported dtype {:?}", other.dtype()),
        };
        if self.record {
            // A second forward through the same op object cannot happen (apply_op1 consumes
            // it), so the cell is always empty here.
            let _ = self.argmax.set(Arc::new(arg));
        }
        Ok((out, Shape::from((n, c, h / 2, w / 2))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let Some(argmax) = self.argmax.get() else {
            bail!("max_pool2x2: backward without a recorded forward pass")
        };
        let scatter = ScatterToArgmax {
            argmax: Arc::clone(argmax),
            in_shape: arg.shape().clone(),
        };
        Ok(Some(grad_res.contiguous()?.apply_op1_no_bwd(&scatter)?))
    }
}

/// Backward of [`MaxPool2x2`]: zeros of the input's shape with each output gradient added at
/// its window's argmax.
struct ScatterToArgmax {
    argmax: Arc<Vec<u32>>,
    in_shape: Shape,
}

fn scatter<T: PoolElem>(grad: &[T], argmax: &[u32], len: usize) -> Vec<T> {
    let mut out = vec![T::default(); len];
    for (&g, &k) in grad.iter().zip(argmax) {
        out[k as usize] += g;
    }
    out
}

impl CustomOp1 for ScatterToArgmax {
    fn name(&self) -> &'static str {
        "lrlab-max-pool-2x2-bwd"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("max_pool2x2 backward: gradient must be contiguous")
        };
        if end - start != self.argmax.len() {
            bail!(
                "max_pool2x2 backward: {} gradients for {} windows",
                end - start,
                self.argmax.len()
            )
        }
        let len = self.in_shape.elem_count();
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(scatter(&v[start..end], &self.argmax, len)),
            CpuStorage::F64(v) => CpuStorage::F64(scatter(&v[start..end], &self.argmax, len)),
            other => bail!(
                "max_pool2x2 backward: unsupported dtype {:?}",
                other.dtype()
            ),
        };
        Ok((out, self.in_shape.clone()))
    }
}
