//! Gradients of every layer and of the whole LeNet against central finite differences (f64),
//! and the max-pooling, on both of its paths, against a brute-force oracle.

use candle_core::{DType, Device, Tensor, Var};
use lrlab::train::kernels;
use lrlab::train::model::{forward_with, LeNet, PARAM_NAMES};
use lrlab::train::ops::{self, reference};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EPS: f64 = 1e-5;

fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize], scale: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Checks d f / d inputs[k] from backprop against central differences at up to `coords`
/// sampled coordinates of each input. Returns the largest |analytic gradient| seen, so callers
/// can assert the check was not trivially comparing zeros.
fn check_grads(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    coords: usize,
) -> f64 {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let tracked: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let loss = f(&tracked).unwrap();
    assert_eq!(loss.dims(), &[] as &[usize], "loss must be a scalar");
    let grads = loss.backward().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut largest: f64 = 0.0;
    for (k, var) in vars.iter().enumerate() {
        let g = flat(
            grads
                .get(var.as_tensor())
                .expect("gradient for every input"),
        );
        let base = flat(&inputs[k]);
        assert_eq!(g.len(), base.len());
        let picks: Vec<usize> = if base.len() <= coords {
            (0..base.len()).collect()
        } else {
            (0..coords)
                .map(|_| rng.random_range(0..base.len()))
                .collect()
        };
        for idx in picks {
            let eval = |delta: f64| -> f64 {
                let mut v = base.clone();
                v[idx] += delta;
                let mut ins: Vec<Tensor> = inputs.to_vec();
                ins[k] = Tensor::from_vec(v, inputs[k].shape(), &Device::Cpu).unwrap();
                f(&ins).unwrap().to_scalar::<f64>().unwrap()
            };
            let fd = (eval(EPS) - eval(-EPS)) / (2.0 * EPS);
            let tol = 1e-6 + 1e-5 * fd.abs().max(g[idx].abs());
            assert!(
                (fd - g[idx]).abs() <= tol,
                "input {k}, coordinate {idx}: backprop {} vs finite difference {fd}",
                g[idx]
            );
            largest = largest.max(g[idx].abs());
        }
    }
    largest
}

/// A fixed random projection turns a tensor output into a scalar loss whose gradient is that
/// projection, so every output element's gradient is exercised with a distinct weight.
fn project(out: &Tensor, r: &Tensor) -> candle_core::Result<Tensor> {
    (out * r)?.sum_all()
}

#[test]
fn layer_shapes_follow_the_modern_lenet() {
    let dev = Device::Cpu;
    let net = LeNet::new(0, DType::F32, &dev).unwrap();
    let x = Tensor::zeros((4, 1, 28, 28), DType::F32, &dev).unwrap();
    let p: Vec<Tensor> = net.vars().iter().map(|v| v.as_tensor().clone()).collect();
    let c1 = ops::conv2d(&x, &p[0], &p[1], 2).unwrap();
    assert_eq!(c1.dims(), &[4, 6, 28, 28]);
    let p1 = ops::max_pool2x2(&ops::relu(&c1).unwrap()).unwrap();
    assert_eq!(p1.dims(), &[4, 6, 14, 14]);
    let c2 = ops::conv2d(&p1, &p[2], &p[3], 0).unwrap();
    assert_eq!(c2.dims(), &[4, 16, 10, 10]);
    let p2 = ops::max_pool2x2(&c2).unwrap();
    assert_eq!(p2.dims(), &[4, 16, 5, 5]);
    assert_eq!(net.forward(&x).unwrap().dims(), &[4, 10]);
    assert_eq!(net.forward_inference(&x).unwrap().dims(), &[4, 10]);
    let params: usize = net.vars().iter().map(|v| v.elem_count()).sum();
    assert_eq!(params, 61_706, "LeNet-5 parameter count");
}

#[test]
fn initialisation_is_seeded_xavier_uniform() {
    let dev = Device::Cpu;
    let a = LeNet::new(7, DType::F32, &dev).unwrap();
    let b = LeNet::new(7, DType::F32, &dev).unwrap();
    let c = LeNet::new(8, DType::F32, &dev).unwrap();
    let as_f64 = |net: &LeNet, i: usize| flat(&net.vars()[i].to_dtype(DType::F64).unwrap());
    for (i, name) in PARAM_NAMES.iter().enumerate() {
        assert_eq!(
            as_f64(&a, i),
            as_f64(&b, i),
            "{name} differs for the same seed"
        );
        assert_ne!(
            as_f64(&a, i),
            as_f64(&c, i),
            "{name} equal for different seeds"
        );
    }
    // fc1: fan_in 400, fan_out 120 → bound √(6/520) ≈ 0.1074; U(−b, b) has std b/√3 ≈ 0.0620.
    let w = flat(&a.vars()[4].to_dtype(DType::F64).unwrap());
    let bound = (6.0f64 / 520.0).sqrt();
    assert!(w.iter().all(|v| v.abs() < bound));
    let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
    assert!((std - bound / 3f64.sqrt()).abs() < 0.003, "std {std}");
    // conv1 bias: fan_in 25 → U(−0.2, 0.2).
    assert!(flat(&a.vars()[1].to_dtype(DType::F64).unwrap())
        .iter()
        .all(|v| v.abs() < 0.2));
}

/// Brute-force 2×2/2 max-pooling on an (N·C, H, W) buffer: values and first-argmax indices.
fn pool_reference(x: &[f64], planes: usize, h: usize, w: usize) -> (Vec<f64>, Vec<usize>) {
    let (mut out, mut arg) = (Vec::new(), Vec::new());
    for p in 0..planes {
        for i in 0..h / 2 {
            for j in 0..w / 2 {
                let mut best = None::<(f64, usize)>;
                for di in 0..2 {
                    for dj in 0..2 {
                        let k = p * h * w + (2 * i + di) * w + 2 * j + dj;
                        if best.is_none_or(|(b, _)| x[k] > b) {
                            best = Some((x[k], k));
                        }
                    }
                }
                let (v, k) = best.unwrap();
                out.push(v);
                arg.push(k);
            }
        }
    }
    (out, arg)
}

/// Checks a max-pool against the oracle: its values, and a gradient that reaches exactly each
/// window's first maximum with weight one. `x` is f64; `dtype` is what the pool runs in.
fn pool_matches_oracle(
    pool_fn: fn(&Tensor) -> candle_core::Result<Tensor>,
    x: &Tensor,
    dtype: DType,
) {
    let (n, c, h, w) = x.dims4().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let r = rand_tensor(&mut rng, &[n, c, h / 2, w / 2], 1.0)
        .to_dtype(dtype)
        .unwrap();
    let xv = Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap();
    let out = pool_fn(xv.as_tensor()).unwrap();
    let grads = project(&out, &r).unwrap().backward().unwrap();
    let as_f64 = |t: &Tensor| flat(&t.to_dtype(DType::F64).unwrap());
    // The oracle sees the values the pool saw (f32-rounded when it runs in f32).
    let (want, arg) = pool_reference(&as_f64(xv.as_tensor()), n * c, h, w);
    assert_eq!(as_f64(&out), want);
    let mut want_grad = vec![0.0; n * c * h * w];
    for (g, k) in as_f64(&r).into_iter().zip(arg) {
        want_grad[k] = g;
    }
    assert_eq!(as_f64(grads.get(xv.as_tensor()).unwrap()), want_grad);
}

/// Both paths: the fast kernel (f32 on the CPU) and the reference, in f64 and in f32.
fn pool_paths_match_oracle(x: &Tensor) {
    pool_matches_oracle(kernels::max_pool2x2, x, DType::F32);
    pool_matches_oracle(ops::max_pool2x2, x, DType::F32);
    pool_matches_oracle(reference::max_pool2x2, x, DType::F32);
    pool_matches_oracle(reference::max_pool2x2, x, DType::F64);
    ops::with_reference_ops(|| pool_matches_oracle(ops::max_pool2x2, x, DType::F32));
}

#[test]
fn max_pool_gradient_goes_to_each_windows_maximum_with_weight_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for shape in [[2, 3, 6, 6], [1, 2, 5, 7], [3, 1, 28, 28]] {
        let x = rand_tensor(&mut rng, &shape, 1.0);
        pool_paths_match_oracle(&x);
    }
    // Ties (as after a ReLU, where whole windows are 0): only the first element gets it.
    let ties = Tensor::from_vec(
        vec![
            0.0f64, 0.0, 1.0, 1.0, 0.0, 0.0, 0.5, 1.0, 2.0, 2.0, 3.0, 3.0, 2.0, 2.0, 3.0, 3.0,
        ],
        (1, 1, 4, 4),
        &Device::Cpu,
    )
    .unwrap();
    pool_paths_match_oracle(&ties);
}

#[test]
fn max_pool_in_f32_and_on_strided_input_matches_the_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = rand_tensor(&mut rng, &[2, 4, 8, 6], 1.0)
        .to_dtype(DType::F32)
        .unwrap()
        .transpose(2, 3)
        .unwrap();
    let a = kernels::max_pool2x2(&x).unwrap();
    let b = reference::max_pool2x2(&x).unwrap();
    assert_eq!(a.dims(), &[2, 4, 3, 4]);
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a, b);
}

#[test]
fn max_pool_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = rand_tensor(&mut rng, &[2, 3, 6, 6], 1.0);
    let r = rand_tensor(&mut rng, &[2, 3, 3, 3], 1.0);
    let big = check_grads(&[x], |p| project(&ops::max_pool2x2(&p[0])?, &r), 216);
    assert!(big > 0.1);
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for (cin, cout, hw, pad) in [(1, 6, 8, 2), (6, 16, 9, 0)] {
        let x = rand_tensor(&mut rng, &[2, cin, hw, hw], 1.0);
        let w = rand_tensor(&mut rng, &[cout, cin, 5, 5], 0.3);
        let b = rand_tensor(&mut rng, &[cout], 0.3);
        let out_hw = hw + 2 * pad - 4;
        let r = rand_tensor(&mut rng, &[2, cout, out_hw, out_hw], 1.0);
        let big = check_grads(
            &[x, w, b],
            |p| project(&ops::conv2d(&p[0], &p[1], &p[2], pad)?, &r),
            40,
        );
        assert!(big > 0.1);
    }
}

#[test]
fn linear_and_relu_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let x = rand_tensor(&mut rng, &[3, 20], 1.0);
    let w = rand_tensor(&mut rng, &[7, 20], 0.5);
    let b = rand_tensor(&mut rng, &[7], 0.5);
    let r = rand_tensor(&mut rng, &[3, 7], 1.0);
    let big = check_grads(
        &[x, w, b],
        |p| project(&ops::relu(&ops::linear(&p[0], &p[1], &p[2])?)?, &r),
        60,
    );
    assert!(big > 0.1);
}

#[test]
fn cross_entropy_is_stable_and_its_gradient_matches_finite_differences() {
    let dev = Device::Cpu;
    let labels = Tensor::new(&[2u32, 0, 9], &dev).unwrap();
    // Huge logits: a naive exp would overflow; the loss of a confident right answer is ~0,
    // of a confident wrong one the logit gap.
    let logits = Tensor::new(
        &[
            [0f64, 0., 1000., 0., 0., 0., 0., 0., 0., 0.],
            [0f64, 0., 1000., 0., 0., 0., 0., 0., 0., 0.],
            [0f64; 10],
        ],
        &dev,
    )
    .unwrap();
    let loss: f64 = ops::cross_entropy(&logits, &labels)
        .unwrap()
        .to_scalar()
        .unwrap();
    let want = (0.0 + 1000.0 + 10f64.ln()) / 3.0;
    assert!((loss - want).abs() < 1e-9, "{loss} vs {want}");

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let logits = rand_tensor(&mut rng, &[3, 10], 3.0);
    check_grads(&[logits], |p| ops::cross_entropy(&p[0], &labels), 30);
}

#[test]
fn whole_network_gradients_match_finite_differences() {
    let dev = Device::Cpu;
    let net = LeNet::new(11, DType::F64, &dev).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let x = rand_tensor(&mut rng, &[3, 1, 28, 28], 1.0)
        .affine(0.5, 0.5)
        .unwrap();
    let y = Tensor::new(&[3u32, 7, 1], &dev).unwrap();
    let params: Vec<Tensor> = net.vars().iter().map(|v| v.as_detached_tensor()).collect();
    let big = check_grads(
        &params,
        |p| ops::cross_entropy(&forward_with(p, &x)?, &y),
        12,
    );
    assert!(big > 1e-3);
}
