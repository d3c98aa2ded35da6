//! Correctness of the custom ops: forward and gradients against candle's reference ops and
//! against central finite differences, on seeded random inputs.

use std::time::Duration;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::train::ops::{self, reference};

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn randn(r: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let len = shape.iter().product();
    let v: Vec<f32> = (0..len).map(|_| r.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Largest |a - b| relative to the larger magnitude (at least 1) in the two tensors.
fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (values(a), values(b));
    let scale = a.iter().chain(&b).fold(1.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    let d = max_rel_diff(a, b);
    assert!(d <= tol, "{what}: relative difference {d} > {tol}");
}

/// The layer under test, applied to its arguments.
type Layer<'a> = &'a dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>;

/// Gradients of `sum(layer(args) * weights)` for every argument that is a `Var`.
fn grads(layer: Layer, args: &[Tensor], vars: &[bool], weights: &Tensor) -> Vec<Option<Tensor>> {
    let args: Vec<Tensor> = args
        .iter()
        .zip(vars)
        .map(|(a, &v)| {
            if v {
                Var::from_tensor(a).unwrap().as_tensor().clone()
            } else {
                a.clone()
            }
        })
        .collect();
    let out = layer(&args).unwrap();
    let loss = (out * weights).unwrap().sum_all().unwrap();
    let store = loss.backward().unwrap();
    args.iter().map(|a| store.get(a).cloned()).collect()
}

/// Checks `layer` against `reference`: forward values, and the gradients of a random linear
/// functional of the output with respect to every argument (all of them tracked).
fn check_against_reference(what: &str, layer: Layer, reference: Layer, args: &[Tensor], seed: u64) {
    let (fast, slow) = (layer(args).unwrap(), reference(args).unwrap());
    assert_close(&format!("{what} forward"), &fast, &slow, 1e-5);
    let weights = randn(&mut rng(seed), fast.dims());
    let vars = vec![true; args.len()];
    let g_fast = grads(layer, args, &vars, &weights);
    let g_slow = grads(reference, args, &vars, &weights);
    for (i, (f, s)) in g_fast.iter().zip(&g_slow).enumerate() {
        let (f, s) = (f.as_ref().unwrap(), s.as_ref().unwrap());
        assert_close(&format!("{what} grad of argument {i}"), f, s, 1e-4);
    }
}

/// Checks the gradient of `sum(layer(args) * weights)` with respect to argument `which`
/// against central differences at `samples` random coordinates. The loss is summed in f64,
/// and the layer is deterministic, so outputs that a coordinate does not touch cancel exactly.
fn check_finite_differences(
    what: &str,
    layer: Layer,
    args: &[Tensor],
    which: usize,
    eps: f32,
    seed: u64,
) {
    let mut r = rng(seed);
    let out = layer(args).unwrap();
    let weights = randn(&mut r, out.dims());
    let wv = values(&weights);
    // The loss, and which outputs are exactly zero (a ReLU's kinks).
    let eval = |args: &[Tensor]| -> (f64, Vec<bool>) {
        let out = values(&layer(args).unwrap());
        let loss = out
            .iter()
            .zip(&wv)
            .map(|(&o, &w)| o as f64 * w as f64)
            .sum();
        (loss, out.iter().map(|&o| o == 0.0).collect())
    };
    let mut vars = vec![false; args.len()];
    vars[which] = true;
    let analytic = values(grads(layer, args, &vars, &weights)[which].as_ref().unwrap());
    let base = values(&args[which]);
    let shape = args[which].dims().to_vec();
    let samples = base.len().min(24);
    let mut checked = 0;
    for _ in 0..samples {
        let j = r.random_range(0..base.len());
        let at = |delta: f32| {
            let mut v = base.clone();
            v[j] += delta;
            let mut a = args.to_vec();
            a[which] = Tensor::from_vec(v, shape.as_slice(), &Device::Cpu).unwrap();
            eval(&a)
        };
        let ((plus, kinks_plus), (minus, kinks_minus)) = (at(eps), at(-eps));
        if kinks_plus != kinks_minus {
            // The step crossed a ReLU kink: the difference quotient is not a derivative.
            continue;
        }
        checked += 1;
        let fd = (plus - minus) / (2.0 * eps as f64);
        let an = analytic[j] as f64;
        assert!(
            (an - fd).abs() <= 1e-2 * (1.0 + fd.abs()),
            "{what}: d/d arg{which}[{j}]: analytic {an} vs finite difference {fd}"
        );
    }
    assert!(
        checked * 2 >= samples,
        "{what}: only {checked} of {samples} samples avoided a kink"
    );
}

fn conv_args(
    r: &mut ChaCha8Rng,
    n: usize,
    c: usize,
    hw: (usize, usize),
    k: usize,
    ks: usize,
) -> Vec<Tensor> {
    vec![
        randn(r, &[n, c, hw.0, hw.1]),
        randn(r, &[k, c, ks, ks]),
        randn(r, &[k]),
    ]
}

/// (batch, in channels, (height, width), out channels, kernel size, padding)
type ConvCase = (usize, usize, (usize, usize), usize, usize, usize);

const CONV_CASES: &[ConvCase] = &[
    (1, 1, (8, 8), 3, 5, 2),
    (3, 2, (7, 9), 4, 3, 0),
    (7, 6, (14, 14), 16, 5, 0),
    (3, 1, (28, 28), 6, 5, 2),
    (7, 3, (6, 5), 2, 3, 2),
    (1, 4, (5, 5), 5, 5, 0),
    // Enough images for several groups per thread and a partial last group.
    (37, 2, (10, 10), 3, 3, 1),
];

#[test]
fn conv2d_matches_candle_forward_and_gradients() {
    for (case, &(n, c, hw, k, ks, pad)) in CONV_CASES.iter().enumerate() {
        let args = conv_args(&mut rng(case as u64), n, c, hw, k, ks);
        let fast = |a: &[Tensor]| conv2d(&a[0], &a[1], &a[2], pad);
        let slow = |a: &[Tensor]| reference::conv2d(&a[0], &a[1], &a[2], pad);
        check_against_reference(
            &format!("conv2d case {case}"),
            &fast,
            &slow,
            &args,
            100 + case as u64,
        );
        let fast = |a: &[Tensor]| conv2d_relu(&a[0], &a[1], &a[2], pad);
        let slow = |a: &[Tensor]| reference::relu(&reference::conv2d(&a[0], &a[1], &a[2], pad)?);
        check_against_reference(
            &format!("conv2d_relu case {case}"),
            &fast,
            &slow,
            &args,
            200 + case as u64,
        );
        if poolable(hw, ks, pad) {
            let fast = |a: &[Tensor]| conv2d_relu_pool2x2(&a[0], &a[1], &a[2], pad);
            let slow = |a: &[Tensor]| {
                reference::max_pool2x2(&reference::relu(&reference::conv2d(
                    &a[0], &a[1], &a[2], pad,
                )?)?)
            };
            check_against_reference(
                &format!("conv2d_relu_pool2x2 case {case}"),
                &fast,
                &slow,
                &args,
                300 + case as u64,
            );
        }
    }
}

/// Whether the convolution's output (h + 2p - k + 1 each way) is at least 2x2, so that it can
/// be pooled.
fn poolable(hw: (usize, usize), ks: usize, pad: usize) -> bool {
    hw.0 + 2 * pad > ks && hw.1 + 2 * pad > ks
}

#[test]
fn conv2d_relu_pool_gradients_match_finite_differences() {
    // Small problems and a small step, so that no window's maximum changes place.
    for (case, &(n, c, hw, k, ks, pad)) in [(1, 2, (6, 6), 3, 3, 0), (3, 1, (5, 7), 2, 3, 2)]
        .iter()
        .enumerate()
    {
        let args = conv_args(&mut rng(120 + case as u64), n, c, hw, k, ks);
        let fast = |a: &[Tensor]| conv2d_relu_pool2x2(&a[0], &a[1], &a[2], pad);
        for which in 0..3 {
            check_finite_differences(
                &format!("conv2d_relu_pool2x2 case {case}"),
                &fast,
                &args,
                which,
                1e-3,
                case as u64,
            );
        }
    }
}

#[test]
fn fused_pooling_equals_pooling_the_fused_relu_bit_for_bit() {
    // Same GEMM, same window order: the fused op must agree exactly with the two-op chain.
    let mut r = rng(130);
    let args = conv_args(&mut r, 9, 6, (14, 14), 16, 5);
    let weights = randn(&mut r, &[9, 16, 5, 5]);
    let fused = |a: &[Tensor]| conv2d_relu_pool2x2(&a[0], &a[1], &a[2], 0);
    let chain = |a: &[Tensor]| max_pool2x2(&conv2d_relu(&a[0], &a[1], &a[2], 0)?);
    assert_eq!(
        values(&fused(&args).unwrap()),
        values(&chain(&args).unwrap())
    );
    let vars = [true, true, true];
    let (gf, gc) = (
        grads(&fused, &args, &vars, &weights),
        grads(&chain, &args, &vars, &weights),
    );
    for (f, c) in gf.iter().zip(&gc) {
        assert_eq!(values(f.as_ref().unwrap()), values(c.as_ref().unwrap()));
    }
}

#[test]
fn fused_pooling_breaks_ties_created_by_the_bias_like_the_chain() {
    // 1x1 convolution with weight 1 and bias 1e6: the four distinct inputs of the window all
    // round to 1e6 once the bias is added, so the first of them is the maximum.
    let x = Tensor::new(&[[[[0.01f32, 0.02], [0.03, 0.015]]]], &Device::Cpu).unwrap();
    let w = Tensor::new(&[[[[1f32]]]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[1e6f32], &Device::Cpu).unwrap();
    let weights = Tensor::new(&[[[[1f32]]]], &Device::Cpu).unwrap();
    let fused = |a: &[Tensor]| conv2d_relu_pool2x2(&a[0], &a[1], &a[2], 0);
    let chain = |a: &[Tensor]| max_pool2x2(&conv2d_relu(&a[0], &a[1], &a[2], 0)?);
    let args = [x, w, b];
    for layer in [&fused as Layer, &chain] {
        let g = grads(layer, &args, &[true, false, false], &weights);
        assert_eq!(values(g[0].as_ref().unwrap()), [1.0, 0.0, 0.0, 0.0]);
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    for (case, &(n, c, hw, k, ks, pad)) in CONV_CASES.iter().enumerate().take(6) {
        let args = conv_args(&mut rng(10 + case as u64), n, c, hw, k, ks);
        let fast = |a: &[Tensor]| conv2d(&a[0], &a[1], &a[2], pad);
        for which in 0..3 {
            check_finite_differences(
                &format!("conv2d case {case}"),
                &fast,
                &args,
                which,
                1e-2,
                case as u64,
            );
        }
    }
}

#[test]
fn conv2d_relu_gradients_match_finite_differences() {
    // Small outputs and a small step, so that no pre-activation crosses zero.
    for (case, &(n, c, hw, k, ks, pad)) in [(1, 2, (6, 6), 3, 3, 0), (3, 1, (5, 4), 2, 3, 2)]
        .iter()
        .enumerate()
    {
        let args = conv_args(&mut rng(20 + case as u64), n, c, hw, k, ks);
        let fast = |a: &[Tensor]| conv2d_relu(&a[0], &a[1], &a[2], pad);
        for which in 0..3 {
            check_finite_differences(
                &format!("conv2d_relu case {case}"),
                &fast,
                &args,
                which,
                1e-3,
                case as u64,
            );
        }
    }
}

#[test]
fn conv2d_on_images_computes_no_input_gradient_and_correct_weight_gradients() {
    for (case, &(n, c, hw, k, ks, pad)) in CONV_CASES.iter().enumerate() {
        let args = conv_args(&mut rng(30 + case as u64), n, c, hw, k, ks);
        let weights = randn(
            &mut rng(40),
            conv2d(&args[0], &args[1], &args[2], pad).unwrap().dims(),
        );
        let fast = |a: &[Tensor]| conv2d_relu(&a[0], &a[1], &a[2], pad);
        let slow = |a: &[Tensor]| reference::relu(&reference::conv2d(&a[0], &a[1], &a[2], pad)?);
        let vars = [false, true, true];
        let g_fast = grads(&fast, &args, &vars, &weights);
        let g_slow = grads(&slow, &args, &vars, &weights);
        assert!(g_fast[0].is_none(), "case {case}: images got a gradient");
        for i in 1..3 {
            let (f, s) = (g_fast[i].as_ref().unwrap(), g_slow[i].as_ref().unwrap());
            assert_close(&format!("case {case} arg {i}"), f, s, 1e-4);
        }
        if poolable(hw, ks, pad) {
            let fast = |a: &[Tensor]| conv2d_relu_pool2x2(&a[0], &a[1], &a[2], pad);
            let slow = |a: &[Tensor]| {
                reference::max_pool2x2(&reference::relu(&reference::conv2d(
                    &a[0], &a[1], &a[2], pad,
                )?)?)
            };
            let weights = randn(&mut rng(41), fast(&args).unwrap().dims());
            let g_fast = grads(&fast, &args, &vars, &weights);
            let g_slow = grads(&slow, &args, &vars, &weights);
            assert!(
                g_fast[0].is_none(),
                "case {case}: images got a gradient (pooled)"
            );
            for i in 1..3 {
                let (f, s) = (g_fast[i].as_ref().unwrap(), g_slow[i].as_ref().unwrap());
                assert_close(&format!("pooled case {case} arg {i}"), f, s, 1e-4);
            }
        }
    }
}

#[test]
fn conv2d_backward_skips_exactly_the_gradients_not_needed() {
    let mut r = rng(50);
    let g = im2col::ConvGeom::new(3, 2, 6, 6, 4, 3, 3, 1).unwrap();
    let x = values(&randn(&mut r, &[3, 2, 6, 6]));
    let w = values(&randn(&mut r, &[4, 2, 3, 3]));
    let grad = values(&randn(&mut r, &[3, 4, 6, 6]));
    let all = conv::backward(
        &x,
        &w,
        conv::Upstream::Linear { grad: &grad },
        &g,
        conv::Needs {
            dx: true,
            dw: true,
            db: true,
        },
    );
    let only_w = conv::backward(
        &x,
        &w,
        conv::Upstream::Linear { grad: &grad },
        &g,
        conv::Needs {
            dx: false,
            dw: true,
            db: false,
        },
    );
    assert!(only_w.dx.is_none() && only_w.db.is_none());
    assert_eq!(only_w.dw, all.dw);
    let only_x = conv::backward(
        &x,
        &w,
        conv::Upstream::Linear { grad: &grad },
        &g,
        conv::Needs {
            dx: true,
            dw: false,
            db: false,
        },
    );
    assert!(only_x.dw.is_none());
    assert_eq!(only_x.dx, all.dx);
}

#[test]
fn max_pool_routes_the_whole_gradient_to_each_maximum() {
    let x = Tensor::new(&[[[[1f32, 5., 2., 0.], [3., 4., 8., 7.]]]], &Device::Cpu).unwrap();
    let weights = Tensor::new(&[[[[1f32, 2.]]]], &Device::Cpu).unwrap();
    let pool = |a: &[Tensor]| max_pool2x2(&a[0]);
    assert_eq!(values(&pool(std::slice::from_ref(&x)).unwrap()), [5.0, 8.0]);
    let g = grads(&pool, &[x], &[true], &weights);
    assert_eq!(
        values(g[0].as_ref().unwrap()),
        [0., 1., 0., 0., 0., 0., 2., 0.]
    );
}

/// Distinct values at least 0.01 apart in random order, so finite differences never swap
/// a window's maximum.
fn distinct(r: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let len: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..len)
        .map(|i| i as f32 * 0.01 - len as f32 * 0.005)
        .collect();
    for i in (1..len).rev() {
        v.swap(i, r.random_range(0..=i));
    }
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

#[test]
fn max_pool_matches_reference_and_finite_differences() {
    for (case, shape) in [[1, 1, 4, 4], [3, 2, 7, 9], [7, 6, 28, 28], [2, 16, 10, 10]]
        .iter()
        .enumerate()
    {
        let args = [distinct(&mut rng(60 + case as u64), shape)];
        let fast = |a: &[Tensor]| max_pool2x2(&a[0]);
        let slow = |a: &[Tensor]| reference::max_pool2x2(&a[0]);
        check_against_reference(
            &format!("pool case {case}"),
            &fast,
            &slow,
            &args,
            case as u64,
        );
        check_finite_differences(
            &format!("pool case {case}"),
            &fast,
            &args,
            0,
            1e-3,
            case as u64,
        );
    }
}

#[test]
fn linear_matches_reference_and_finite_differences() {
    for (case, &(n, i, o)) in [(1, 5, 3), (3, 400, 120), (7, 84, 10), (70, 33, 40)]
        .iter()
        .enumerate()
    {
        let mut r = rng(70 + case as u64);
        let args = vec![
            randn(&mut r, &[n, i]),
            randn(&mut r, &[o, i]),
            randn(&mut r, &[o]),
        ];
        let fast = |a: &[Tensor]| linear(&a[0], &a[1], &a[2]);
        let slow = |a: &[Tensor]| reference::linear(&a[0], &a[1], &a[2]);
        check_against_reference(
            &format!("linear case {case}"),
            &fast,
            &slow,
            &args,
            case as u64,
        );
        let fast_relu = |a: &[Tensor]| linear_relu(&a[0], &a[1], &a[2]);
        let slow_relu = |a: &[Tensor]| reference::relu(&reference::linear(&a[0], &a[1], &a[2])?);
        check_against_reference(
            &format!("linear_relu case {case}"),
            &fast_relu,
            &slow_relu,
            &args,
            case as u64,
        );
        for which in 0..3 {
            check_finite_differences(
                &format!("linear case {case}"),
                &fast,
                &args,
                which,
                1e-2,
                case as u64,
            );
        }
    }
    // The ReLU variant on a small layer with a small step (no kink is crossed).
    let mut r = rng(79);
    let args = vec![
        randn(&mut r, &[3, 6]),
        randn(&mut r, &[4, 6]),
        randn(&mut r, &[4]),
    ];
    let fast_relu = |a: &[Tensor]| linear_relu(&a[0], &a[1], &a[2]);
    for which in 0..3 {
        check_finite_differences("linear_relu", &fast_relu, &args, which, 1e-3, 9);
    }
}

#[test]
fn results_are_identical_for_one_and_two_threads() {
    let mut r = rng(80);
    let args = conv_args(&mut r, 37, 6, (14, 14), 16, 5);
    let weights = randn(&mut r, &[37, 16, 5, 5]);
    let block = |a: &[Tensor]| {
        let fused = conv2d_relu_pool2x2(&a[0], &a[1], &a[2], 0)?;
        let chain = max_pool2x2(&conv2d_relu(&a[0], &a[1], &a[2], 0)?)?;
        fused + chain
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let g = grads(&block, &args, &[true, true, true], &weights);
            g.iter()
                .map(|t| values(t.as_ref().unwrap()))
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn ops_send_other_dtypes_to_the_reference_and_the_kernels_refuse_them() {
    let mut r = rng(90);
    let args: Vec<Tensor> = conv_args(&mut r, 2, 2, (6, 6), 3, 3)
        .iter()
        .map(|t| t.to_dtype(DType::F64).unwrap())
        .collect();
    let y = ops::conv2d_relu(&args[0], &args[1], &args[2], 1).unwrap();
    assert_eq!(y.dtype(), DType::F64);
    let want =
        reference::relu(&reference::conv2d(&args[0], &args[1], &args[2], 1).unwrap()).unwrap();
    assert_eq!(
        y.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        want.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    );
    assert_eq!(ops::max_pool2x2(&args[0]).unwrap().dims(), [2, 2, 3, 3]);
    // The kernels are the fast path only, and say so rather than fail inside candle.
    for err in [
        conv2d_relu(&args[0], &args[1], &args[2], 1).unwrap_err(),
        max_pool2x2(&args[0]).unwrap_err(),
    ] {
        assert!(
            err.to_string().contains("f32 tensors on the CPU only"),
            "{err}"
        );
    }
}

/// Values of `t` as bit patterns, so NaNs compare equal to themselves.
fn bits(t: &Tensor) -> Vec<u32> {
    values(t).iter().map(|v| v.to_bits()).collect()
}

/// Forward values and input gradients of the fast max-pool and of the reference, which must
/// agree bit for bit: both pick exactly one element per window by the same rule.
fn pool_fast_and_reference(x: &Tensor, weights: &Tensor) -> [(Vec<u32>, Vec<f32>); 2] {
    let fast = |a: &[Tensor]| max_pool2x2(&a[0]);
    let slow = |a: &[Tensor]| reference::max_pool2x2(&a[0]);
    [&fast as Layer, &slow].map(|layer| {
        let out = layer(std::slice::from_ref(x)).unwrap();
        let g = grads(layer, std::slice::from_ref(x), &[true], weights);
        (bits(&out), values(g[0].as_ref().unwrap()))
    })
}

#[test]
fn max_pool_ties_go_to_the_first_maximum_on_both_paths() {
    let x = Tensor::new(
        &[[[
            // all equal | ReLU zeros | tie in the bottom row | tie of the first and last
            [0f32, 0., 0., 0., 0., 1., 2., 5.],
            [0., 0., 0., 0., 3., 3., 5., 1.],
        ]]],
        &Device::Cpu,
    )
    .unwrap();
    let weights = Tensor::new(&[[[[1f32, 2., 3., 4.]]]], &Device::Cpu).unwrap();
    let [fast, slow] = pool_fast_and_reference(&x, &weights);
    assert_eq!(fast, slow);
    let (out, grad) = fast;
    assert_eq!(
        out,
        bits(&Tensor::new(&[0f32, 0., 3., 5.], &Device::Cpu).unwrap())
    );
    #[rustfmt::skip]
    assert_eq!(grad, [
        1., 0., 2., 0., 0., 0., 0., 4.,
        0., 0., 0., 0., 3., 0., 0., 0.,
    ]);

    // Many ties, as after a ReLU: whole windows of zeros and repeated small integers.
    let mut r = rng(92);
    let shape = [3, 4, 10, 12];
    let len: usize = shape.iter().product();
    let v: Vec<f32> = (0..len)
        .map(|_| (r.random_range(-3i32..3).max(0)) as f32)
        .collect();
    let x = Tensor::from_vec(v, &shape, &Device::Cpu).unwrap();
    let weights = randn(&mut r, &[3, 4, 5, 6]);
    let [fast, slow] = pool_fast_and_reference(&x, &weights);
    assert_eq!(fast, slow);
}

#[test]
fn max_pool_nans_follow_the_same_rule_on_both_paths() {
    let nan = f32::NAN;
    let x = Tensor::new(
        &[[[
            // NaN first: it wins | NaN later: passed over | all NaN | NaN and infinity
            [nan, 1., 0., 1., nan, nan, 2., nan],
            [2., 3., nan, -1., nan, nan, f32::INFINITY, nan],
        ]]],
        &Device::Cpu,
    )
    .unwrap();
    let weights = Tensor::new(&[[[[1f32, 2., 3., 4.]]]], &Device::Cpu).unwrap();
    let [fast, slow] = pool_fast_and_reference(&x, &weights);
    assert_eq!(fast, slow);
    let (out, grad) = fast;
    assert_eq!(
        out,
        bits(&Tensor::new(&[nan, 1., nan, f32::INFINITY], &Device::Cpu).unwrap())
    );
    #[rustfmt::skip]
    assert_eq!(grad, [
        1., 0., 0., 2., 3., 0., 0., 0.,
        0., 0., 0., 0., 0., 0., 4., 0.,
    ]);
}

#[test]
fn fused_conv_relu_pool_breaks_relu_ties_like_the_reference_chain() {
    // A 1x1 convolution with weight 1 and bias 0 passes the input through exactly on both
    // paths, so the windows hold exact ties: zeros, negatives the ReLU turns into zeros, and
    // equal positive values. Where a window's maximum is not positive no gradient may pass
    // (the ReLU's gradient is 0 at 0), whichever of its zeros the pooling picks.
    let hand = Tensor::new(
        &[[[
            // zero first, rest ≤ 0 | all zero | negative first | equal positives
            [0f32, -1., 0., 0., -1., 0., 2., 2.],
            [0., 0., 0., 0., 0., -2., 1., 2.],
        ]]],
        &Device::Cpu,
    )
    .unwrap();
    let mut r = rng(93);
    let shape = [4, 1, 8, 6];
    let len: usize = shape.iter().product();
    let v: Vec<f32> = (0..len).map(|_| r.random_range(-2i32..3) as f32).collect();
    let random = Tensor::from_vec(v, &shape, &Device::Cpu).unwrap();
    let w = Tensor::new(&[[[[1f32]]]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[0f32], &Device::Cpu).unwrap();
    let fused = |a: &[Tensor]| conv2d_relu_pool2x2(&a[0], &a[1], &a[2], 0);
    let chain = |a: &[Tensor]| {
        reference::max_pool2x2(&reference::relu(&reference::conv2d(
            &a[0], &a[1], &a[2], 0,
        )?)?)
    };
    for (case, x) in [hand, random].into_iter().enumerate() {
        let (n, _, h, wd) = x.dims4().unwrap();
        let weights = randn(&mut r, &[n, 1, h / 2, wd / 2]);
        let args = [x, w.clone(), b.clone()];
        assert_eq!(
            values(&fused(&args).unwrap()),
            values(&chain(&args).unwrap()),
            "case {case}"
        );
        let (gf, gc) = (
            grads(&fused, &args, &[true, false, false], &weights),
            grads(&chain, &args, &[true, false, false], &weights),
        );
        let (gf, gc) = (
            values(gf[0].as_ref().unwrap()),
            values(gc[0].as_ref().unwrap()),
        );
        assert_eq!(gf, gc, "case {case}");
        assert!(gf.iter().any(|&g| g != 0.0), "case {case}: no gradient");
        if case == 0 {
            // Only the equal positives' window passes a gradient, to its first 2.
            let nonzero: Vec<usize> = (0..gf.len()).filter(|&i| gf[i] != 0.0).collect();
            assert_eq!(nonzero, [6]);
        }
    }
}

#[test]
fn relu_has_gradient_zero_at_zero_on_both_paths() {
    let x = Tensor::new(&[[-1f32, 0., 2.]], &Device::Cpu).unwrap();
    let w = Tensor::new(&[[1f32]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[0f32], &Device::Cpu).unwrap();
    let weights = Tensor::new(&[[1f32], [1.], [1.]], &Device::Cpu).unwrap();
    let x = x.t().unwrap().contiguous().unwrap();
    let fast = |a: &[Tensor]| linear_relu(&a[0], &a[1], &a[2]);
    let slow = |a: &[Tensor]| reference::relu(&reference::linear(&a[0], &a[1], &a[2])?);
    let args = [x, w, b];
    for layer in [&fast as Layer, &slow] {
        assert_eq!(values(&layer(&args).unwrap()), [0., 0., 2.]);
        let g = grads(layer, &args, &[true, false, false], &weights);
        assert_eq!(values(g[0].as_ref().unwrap()), [0., 0., 1.]);
    }
    // NaN passes through both, so a diverging run shows in its loss.
    let nan = Tensor::new(&[f32::NAN, -1.], &Device::Cpu).unwrap();
    assert!(values(&ops::relu(&nan).unwrap())[0].is_nan());
}

#[test]
fn shape_errors_are_reported_not_panics() {
    let mut r = rng(91);
    let x = randn(&mut r, &[2, 3, 8, 8]);
    let w = randn(&mut r, &[4, 2, 3, 3]);
    let b = randn(&mut r, &[4]);
    assert!(conv2d(&x, &w, &b, 0).is_err(), "channel mismatch");
    let w = randn(&mut r, &[4, 3, 9, 9]);
    assert!(conv2d(&x, &w, &b, 0).is_err(), "kernel larger than input");
    let w = randn(&mut r, &[4, 3, 3, 3]);
    assert!(
        conv2d(&x, &w, &randn(&mut r, &[5]), 0).is_err(),
        "bias length"
    );
    let w = randn(&mut r, &[4, 3, 8, 8]);
    assert!(
        conv2d(&x, &w, &b, 0).is_ok(),
        "a 1x1 output can be convolved"
    );
    assert!(
        conv2d_relu_pool2x2(&x, &w, &b, 0).is_err(),
        "but not pooled"
    );
    assert!(max_pool2x2(&randn(&mut r, &[2, 3, 8])).is_err(), "rank 3");
    assert!(
        max_pool2x2(&randn(&mut r, &[2, 3, 1, 8])).is_err(),
        "too small"
    );
    assert!(linear(
        &randn(&mut r, &[2, 3]),
        &randn(&mut r, &[4, 5]),
        &randn(&mut r, &[4])
    )
    .is_err());
}

/// Parameters of a freshly initialised LeNet, as tracked tensors.
fn lenet_params(seed: u64) -> Vec<Tensor> {
    let net = crate::train::LeNet::new(seed, DType::F32, &Device::Cpu).unwrap();
    net.vars()
        .iter()
        .map(|v| Var::from_tensor(v.as_tensor()).unwrap().as_tensor().clone())
        .collect()
}

/// Images like Fashion-MNIST's: values in [0, 1), zero on a 6-pixel frame and wherever a
/// random value falls below 0 (about half the rest). Over the zeros conv1's pre-activation is
/// exactly its bias on both paths, so pooling windows there are exact ties.
fn images_with_background(r: &mut ChaCha8Rng, n: usize) -> Tensor {
    let v: Vec<f32> = (0..n * 28 * 28)
        .map(|i| {
            let (y, x) = ((i / 28) % 28, i % 28);
            let v: f32 = r.random_range(-1.0f32..1.0);
            if (6..22).contains(&y) && (6..22).contains(&x) {
                v.max(0.0)
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, (n, 1, 28, 28), &Device::Cpu).unwrap()
}

#[test]
fn whole_network_gradients_match_the_reference_path() {
    use crate::train::model::forward_with;
    let mut r = rng(100);
    let labels = Tensor::new(&[3u32, 1, 4, 1, 5], &Device::Cpu).unwrap();
    let params = lenet_params(1);
    for (what, x) in [
        ("uniform images", randn(&mut r, &[5, 1, 28, 28])),
        (
            "images with a background",
            images_with_background(&mut r, 5),
        ),
    ] {
        let run = || {
            let logits = forward_with(&params, &x).unwrap();
            let loss = ops::cross_entropy(&logits, &labels).unwrap();
            let grads = loss.backward().unwrap();
            let g: Vec<Tensor> = params
                .iter()
                .map(|p| grads.get(p).unwrap().clone())
                .collect();
            (logits, g)
        };
        let (fast_logits, fast_grads) = run();
        let (ref_logits, ref_grads) = ops::with_reference_ops(run);
        assert_close(&format!("{what}: logits"), &fast_logits, &ref_logits, 1e-5);
        for (i, (f, s)) in fast_grads.iter().zip(&ref_grads).enumerate() {
            assert!(
                values(s).iter().any(|v| *v != 0.0),
                "{what}: parameter {i} has no gradient"
            );
            assert_close(&format!("{what}: gradient of parameter {i}"), f, s, 1e-4);
        }
    }
}

#[test]
fn evaluation_matches_the_reference_path() {
    use crate::train::evaluate;
    let mut r = rng(101);
    let net = crate::train::LeNet::new(2, DType::F32, &Device::Cpu).unwrap();
    let images = images_with_background(&mut r, 300);
    let labels: Vec<u32> = (0..300).map(|i| (i * 7 % 10) as u32).collect();
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    // Batches of 128: two full ones and a partial one, weighted by their sizes.
    let fast = evaluate(&net, &images, &labels, 128).unwrap();
    let reference = ops::with_reference_ops(|| evaluate(&net, &images, &labels, 128)).unwrap();
    assert!(
        (fast.0 - reference.0).abs() <= 1e-5 * reference.0,
        "{fast:?} vs {reference:?}"
    );
    // An untrained network's argmax is far from its runner-up for almost every image.
    assert!(
        (fast.1 - reference.1).abs() <= 1.0 / 300.0,
        "{fast:?} vs {reference:?}"
    );
    // The batch size changes only how the sums are grouped.
    let whole = evaluate(&net, &images, &labels, 300).unwrap();
    assert!((whole.0 - fast.0).abs() <= 1e-6 * fast.0);
    assert_eq!(whole.1, fast.1);
    assert!(fast.0.is_finite() && fast.0 > 1.0, "{fast:?}");
}

#[test]
fn training_with_fast_kernels_matches_the_reference_path() {
    use std::sync::atomic::AtomicBool;

    use crate::data::{synthetic, Dataset, Limits};
    use crate::schedule::ScheduleSpec;
    use crate::train::{
        train, EpochReport, OptimizerSpec, RunSpec, ScheduleUnit, TrainConfig, TrainObserver,
        TrainPlan,
    };

    struct Quiet;
    impl TrainObserver for Quiet {
        fn on_epoch(
            &mut self,
            _: &EpochReport,
        ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_dataset(dir.path(), 512, 256, 7, false).unwrap();
    let data = Dataset::load(dir.path(), Limits::default(), &Device::Cpu).unwrap();
    let plan = TrainPlan::new(TrainConfig {
        epochs: 2,
        batch_size: 32,
        schedule: ScheduleSpec::from_json(&serde_json::json!({"kind": "constant", "lr": 0.2}))
            .unwrap(),
        unit: ScheduleUnit::Epoch,
        optimizer: OptimizerSpec::default(),
        seed: 3,
    })
    .unwrap();
    let stop = AtomicBool::new(false);
    let run = || {
        let spec = RunSpec {
            plan: &plan,
            data: &data,
            device: &Device::Cpu,
            checkpoint_dir: None,
            stop: &stop,
            until_epoch: None,
        };
        train(spec, &mut Quiet).unwrap().epochs
    };
    let fast = run();
    let reference = ops::with_reference_ops(run);
    assert_eq!(fast.len(), 2);
    // The switch took effect: the two paths round differently, so the losses differ.
    let losses = |m: &[crate::train::EpochMetrics]| -> Vec<(f64, f64)> {
        m.iter().map(|e| (e.train_loss, e.test_loss)).collect()
    };
    assert_ne!(
        losses(&fast),
        losses(&reference),
        "the reference path was not taken"
    );
    // The two paths sum in different orders, so they differ by float rounding, which SGD
    // amplifies as it goes (a max-pool window whose two largest values are within rounding
    // of each other can route a gradient differently). Measured with two equally valid
    // summation orders in col2im: relative loss differences of 1e-8..5e-5 after the first
    // epoch (16 updates), up to 1e-4 after the second and percents after a third. Hence a
    // tolerance that grows with the epoch, and only two epochs.
    for (f, s) in fast.iter().zip(&reference) {
        let (loss_tol, examples) = if f.epoch == 1 {
            (1e-4, 1.0)
        } else {
            (1e-2, 8.0)
        };
        for (what, a, b) in [
            ("train loss", f.train_loss, s.train_loss),
            ("test loss", f.test_loss, s.test_loss),
        ] {
            assert!(
                (a - b).abs() <= loss_tol * b.abs(),
                "epoch {}: {what} {a} vs {b}",
                f.epoch
            );
        }
        assert!(
            (f.train_acc - s.train_acc).abs() <= examples / 512.0,
            "{f:?} vs {s:?}"
        );
        assert!(
            (f.test_acc - s.test_acc).abs() <= examples / 256.0,
            "{f:?} vs {s:?}"
        );
    }
    // The run learned something, so the comparison is not between two untrained networks.
    assert!(fast[1].train_loss < 0.9 * fast[0].train_loss, "{fast:?}");
    assert!(fast[1].test_acc > 0.3, "{fast:?}");
}

#[test]
fn profiling_records_forward_and_backward_per_layer() {
    let mut r = rng(110);
    let args = conv_args(&mut r, 3, 2, (9, 9), 4, 3);
    let _serial = profile::TEST_LOCK.lock();
    profile::set_profiling(true);
    let block = |a: &[Tensor]| max_pool2x2(&conv2d_relu(&a[0], &a[1], &a[2], 1)?);
    let weights = randn(&mut r, &[3, 4, 4, 4]);
    grads(&block, &args, &[false, true, true], &weights);
    profile::set_profiling(false);
    let timings = profile::profile();
    for layer in ["conv2d+relu 2x9x9 -> 4x9x9, 3x3 pad 1", "max_pool2x2 4x9x9"] {
        let t = timings
            .iter()
            .find(|t| t.layer == layer)
            .unwrap_or_else(|| panic!("{layer} missing from {timings:?}"));
        // Other tests may run the same shapes concurrently, hence at least.
        assert!(t.forward_examples >= 3 && t.backward_examples >= 3, "{t:?}");
        assert!(
            t.forward > Duration::ZERO && t.backward > Duration::ZERO,
            "{t:?}"
        );
    }
}
