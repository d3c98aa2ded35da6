//! The "modern LeNet" of the d2l chapter, with its parameters held as candle `Var`s.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ops;

/// Parameter names, in the order [`LeNet::vars`] returns them; also the tensor names in
/// weights and checkpoint files.
pub const PARAM_NAMES: [&str; 10] = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "fc3.weight",
    "fc3.bias",
];

/// Parameter shapes, matching [`PARAM_NAMES`] and PyTorch's layouts.
pub const PARAM_SHAPES: [&[usize]; 10] = [
    &[6, 1, 5, 5],
    &[6],
    &[16, 6, 5, 5],
    &[16],
    &[120, 400],
    &[120],
    &[84, 120],
    &[84],
    &[10, 84],
    &[10],
];

/// Number of classes the network scores.
pub const NUM_CLASSES: usize = 10;

/// Conv(1→6, 5×5, pad 2) → ReLU → MaxPool 2 → Conv(6→16, 5×5) → ReLU → MaxPool 2 → flatten →
/// Linear(400→120) → ReLU → Linear(120→84) → ReLU → Linear(84→10).
#[derive(Debug, Clone)]
pub struct LeNet {
    vars: Vec<Var>,
}

/// fan_in and fan_out of a weight of this shape, as PyTorch computes them.
fn fans(shape: &[usize]) -> (usize, usize) {
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

impl LeNet {
    /// Fresh weights from a ChaCha8 stream seeded with `seed` (candle cannot seed its CPU RNG):
    /// Xavier-uniform weights, U(−b, b) with b = √(6 / (fan_in + fan_out)), as the chapter's
    /// `init_weights`; biases U(−1/√fan_in, 1/√fan_in), PyTorch's default for these layers.
    pub fn new(seed: u64, dtype: DType, device: &Device) -> Result<LeNet> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut vars = Vec::with_capacity(PARAM_NAMES.len());
        for pair in PARAM_SHAPES.chunks(2) {
            let (w_shape, b_shape) = (pair[0], pair[1]);
            let (fan_in, fan_out) = fans(w_shape);
            let w_bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            let b_bound = 1.0 / (fan_in as f64).sqrt();
            for (shape, bound) in [(w_shape, w_bound), (b_shape, b_bound)] {
                let n: usize = shape.iter().product();
                let values: Vec<f64> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
                let t = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
                vars.push(Var::from_tensor(&t)?);
            }
        }
        Ok(LeNet { vars })
    }

    /// The trainable parameters, in [`PARAM_NAMES`] order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Logits (N, 10) for images (N, 1, 28, 28), recording the graph for backprop.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p: Vec<Tensor> = self.vars.iter().map(|v| v.as_tensor().clone()).collect();
        forward_with(&p, x)
    }

    /// Logits without recording a graph: for evaluation, where no gradient is needed.
    pub fn forward_inference(&self, x: &Tensor) -> Result<Tensor> {
        let p: Vec<Tensor> = self.vars.iter().map(Var::as_detached_tensor).collect();
        forward_with(&p, &x.detach())
    }

    /// (name, tensor) pairs for saving.
    pub fn named_tensors(&self) -> HashMap<String, Tensor> {
        PARAM_NAMES
            .iter()
            .zip(&self.vars)
            .map(|(n, v)| (n.to_string(), v.as_detached_tensor()))
            .collect()
    }

    /// Overwrites every parameter from `tensors` (by name); the shapes must match exactly.
    pub fn load_tensors(
        &self,
        tensors: &HashMap<String, Tensor>,
    ) -> std::result::Result<(), String> {
        for ((name, shape), var) in PARAM_NAMES.iter().zip(PARAM_SHAPES).zip(&self.vars) {
            let t = tensors
                .get(*name)
                .ok_or_else(|| format!("tensor {name} is missing"))?;
            if t.dims() != shape {
                return Err(format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    t.dims()
                ));
            }
            let t = t
                .to_dtype(var.dtype())
                .and_then(|t| t.to_device(var.device()))
                .map_err(|e| format!("tensor {name}: {e}"))?;
            var.set(&t).map_err(|e| format!("tensor {name}: {e}"))?;
        }
        Ok(())
    }
}

/// The network as a function of its parameters `p` (in [`PARAM_NAMES`] order), so tests can
/// differentiate with respect to any of them and the trainer can run it detached.
pub fn forward_with(p: &[Tensor], x: &Tensor) -> Result<Tensor> {
    let x = ops::conv2d_relu_pool2x2(x, &p[0], &p[1], 2)?;
    let x = ops::conv2d_relu_pool2x2(&x, &p[2], &p[3], 0)?;
    let x = x.flatten_from(1)?;
    let x = ops::linear_relu(&x, &p[4], &p[5])?;
    let x = ops::linear_relu(&x, &p[6], &p[7])?;
    ops::linear(&x, &p[8], &p[9])
}
