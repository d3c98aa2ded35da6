//! SGD with momentum, Nesterov momentum and weight decay, with PyTorch's update rule.
//!
//! candle-nn's `SGD` has none of these options. The rule (dampening 0), per parameter p with
//! gradient g, rate lr, momentum μ and weight decay λ:
//!
//! ```text
//! d = g + λ·p
//! buf = d                  on the first update, else  buf = μ·buf + d     (only if μ > 0)
//! d = d + μ·buf            if Nesterov, else  d = buf                     (only if μ > 0)
//! p = p − lr·d
//! ```

use candle_core::{backprop::GradStore, Result, Tensor, Var};

use super::OptimizerSpec;

/// SGD state: the configuration and one momentum buffer per parameter (created on its first
/// update, as in PyTorch, so a checkpoint taken before any update has none).
#[derive(Debug, Clone)]
pub struct Sgd {
    config: OptimizerSpec,
    buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    /// An optimizer for `num_params` parameters, with a spec checked by
    /// [`super::TrainPlan::new`].
    pub fn new(config: OptimizerSpec, num_params: usize) -> Sgd {
        Sgd {
            config,
            buffers: vec![None; num_params],
        }
    }

    /// One update of every parameter that has a gradient in `grads`; parameters without one are
    /// left alone (PyTorch skips parameters whose `.grad` is None).
    pub fn step(&mut self, params: &[Var], grads: &GradStore, lr: f64) -> Result<()> {
        for (i, var) in params.iter().enumerate() {
            if let Some(g) = grads.get(var.as_tensor()) {
                self.update(i, var, g, lr)?;
            }
        }
        Ok(())
    }

    /// The update of parameter `index` with gradient `grad`.
    pub fn update(&mut self, index: usize, param: &Var, grad: &Tensor, lr: f64) -> Result<()> {
        let OptimizerSpec {
            momentum,
            nesterov,
            weight_decay,
            ..
        } = self.config;
        let Some(slot) = self.buffers.get_mut(index) else {
            candle_core::bail!("sgd: parameter index {index} out of range")
        };
        let p = param.as_detached_tensor();
        let mut d = grad.detach();
        if weight_decay != 0.0 {
            d = (d + p.affine(weight_decay, 0.0)?)?;
        }
        if momentum != 0.0 {
            let buf = match slot.take() {
                None => d.clone(),
                Some(buf) => (buf.affine(momentum, 0.0)? + &d)?,
            };
            d = if nesterov {
                (d + buf.affine(momentum, 0.0)?)?
            } else {
                buf.clone()
            };
            *slot = Some(buf);
        }
        param.set(&(p - d.affine(lr, 0.0)?)?)
    }

    /// The momentum buffers, for checkpoints (`None` where a parameter was never updated or
    /// momentum is off).
    pub fn buffers(&self) -> &[Option<Tensor>] {
        &self.buffers
    }

    /// Restores buffers saved by [`Sgd::buffers`]; the count must match the parameters.
    pub fn restore_buffers(
        &mut self,
        buffers: Vec<Option<Tensor>>,
    ) -> std::result::Result<(), String> {
        if buffers.len() != self.buffers.len() {
            return Err(format!(
                "{} momentum buffers for {} parameters",
                buffers.len(),
                self.buffers.len()
            ));
        }
        self.buffers = buffers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn var(v: &[f64]) -> Var {
        Var::from_tensor(&Tensor::new(v, &Device::Cpu).unwrap()).unwrap()
    }

    fn vals(v: &Var) -> Vec<f64> {
        v.as_tensor().to_vec1().unwrap()
    }

    fn grad(v: &[f64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    fn sgd(momentum: f64, nesterov: bool, weight_decay: f64) -> Sgd {
        Sgd::new(
            OptimizerSpec {
                momentum,
                nesterov,
                weight_decay,
                ..OptimizerSpec::default()
            },
            1,
        )
    }

    // Expected values below are worked by hand from the update rule in the module docs.

    #[test]
    fn plain_sgd_subtracts_lr_times_gradient() {
        let p = var(&[1.0, -2.0]);
        let mut opt = sgd(0.0, false, 0.0);
        opt.update(0, &p, &grad(&[0.5, 1.0]), 0.1).unwrap();
        close(&vals(&p), &[0.95, -2.1]);
        opt.update(0, &p, &grad(&[0.5, 1.0]), 0.2).unwrap();
        close(&vals(&p), &[0.85, -2.3]);
        assert!(opt.buffers()[0].is_none());
    }

    #[test]
    fn momentum_starts_with_the_gradient_then_accumulates() {
        let p = var(&[1.0]);
        let mut opt = sgd(0.9, false, 0.0);
        // step 1: buf = 1, p = 1 - 0.1·1 = 0.9
        opt.update(0, &p, &grad(&[1.0]), 0.1).unwrap();
        close(&vals(&p), &[0.9]);
        // step 2: buf = 0.9·1 + 2 = 2.9, p = 0.9 - 0.29 = 0.61
        opt.update(0, &p, &grad(&[2.0]), 0.1).unwrap();
        close(&vals(&p), &[0.61]);
        // step 3: buf = 0.9·2.9 + 0 = 2.61, p = 0.61 - 0.261 = 0.349
        opt.update(0, &p, &grad(&[0.0]), 0.1).unwrap();
        close(&vals(&p), &[0.349]);
        let buf: Vec<f64> = opt.buffers()[0].as_ref().unwrap().to_vec1().unwrap();
        close(&buf, &[2.61]);
    }

    #[test]
    fn nesterov_looks_ahead_along_the_buffer() {
        let p = var(&[1.0]);
        let mut opt = sgd(0.9, true, 0.0);
        // step 1: buf = 1, d = 1 + 0.9·1 = 1.9, p = 1 - 0.19 = 0.81
        opt.update(0, &p, &grad(&[1.0]), 0.1).unwrap();
        close(&vals(&p), &[0.81]);
        // step 2: buf = 0.9 + 2 = 2.9, d = 2 + 0.9·2.9 = 4.61, p = 0.81 - 0.461 = 0.349
        opt.update(0, &p, &grad(&[2.0]), 0.1).unwrap();
        close(&vals(&p), &[0.349]);
    }

    #[test]
    fn weight_decay_is_added_to_the_gradient_before_momentum() {
        let p = var(&[2.0]);
        let mut opt = sgd(0.5, false, 0.1);
        // step 1: d = 1 + 0.1·2 = 1.2, buf = 1.2, p = 2 - 0.12 = 1.88
        opt.update(0, &p, &grad(&[1.0]), 0.1).unwrap();
        close(&vals(&p), &[1.88]);
        // step 2: d = 1 + 0.188 = 1.188, buf = 0.6 + 1.188 = 1.788, p = 1.88 - 0.1788 = 1.7012
        opt.update(0, &p, &grad(&[1.0]), 0.1).unwrap();
        close(&vals(&p), &[1.7012]);
    }

    #[test]
    fn step_uses_the_gradients_of_a_backward_pass() {
        // loss = Σ p², gradient 2p; plain SGD with lr 0.25 halves p.
        let p = var(&[4.0, -2.0]);
        let loss = p.as_tensor().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut opt = sgd(0.0, false, 0.0);
        opt.step(std::slice::from_ref(&p), &grads, 0.25).unwrap();
        close(&vals(&p), &[2.0, -1.0]);
        assert_eq!(p.dtype(), DType::F64);
    }

    #[test]
    fn an_unknown_parameter_index_is_an_error() {
        let p = var(&[1.0]);
        assert!(sgd(0.9, false, 0.0)
            .update(1, &p, &grad(&[1.0]), 0.1)
            .is_err());
    }
}
