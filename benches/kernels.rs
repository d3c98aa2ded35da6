//! Fast CPU kernels vs candle's reference ops on the LeNet's two convolution layers (batch 256),
//! forward alone and forward + backward, with 1 and 2 rayon threads.
//!
//! Run: `cargo bench --bench kernels` (CI smoke: `cargo bench --bench kernels -- --test`).
//! The machine may be shared, so compare the fast and reference timings of the same run
//! rather than absolute numbers across runs.

use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lrlab::train::kernels;

/// One convolution layer's inputs: images (or activations), weights and bias.
struct Layer {
    name: &'static str,
    x: Tensor,
    /// Whether `x` needs a gradient (activations do, the input images do not).
    x_grad: bool,
    w: Var,
    b: Var,
    pad: usize,
}

fn layer(name: &'static str, n: usize, c: usize, hw: usize, k: usize, pad: usize) -> Layer {
    let dev = Device::Cpu;
    let rand = |shape: &[usize]| Tensor::rand(-1f32, 1f32, shape, &dev).unwrap();
    Layer {
        name,
        x: rand(&[n, c, hw, hw]),
        x_grad: c > 1,
        w: Var::from_tensor(&rand(&[k, c, 5, 5])).unwrap(),
        b: Var::from_tensor(&rand(&[k])).unwrap(),
        pad,
    }
}

type ConvFn = fn(&Tensor, &Tensor, &Tensor, usize) -> candle_core::Result<Tensor>;

fn run(l: &Layer, conv: ConvFn, x: &Tensor, backward: bool) {
    let y = conv(x, l.w.as_tensor(), l.b.as_tensor(), l.pad).unwrap();
    if backward {
        // Backward from the output itself (an all-ones gradient): no loss ops in the timing.
        black_box(y.backward().unwrap());
    } else {
        black_box(y);
    }
}

fn bench_conv(c: &mut Criterion) {
    let layers = [
        layer("conv1 256x1x28x28 -> 6, pad 2", 256, 1, 28, 6, 2),
        layer("conv2 256x6x14x14 -> 16", 256, 6, 14, 16, 0),
    ];
    let impls: [(&str, ConvFn); 2] = [
        ("fast", kernels::conv2d),
        ("candle", kernels::reference::conv2d),
    ];
    for l in &layers {
        let x = if l.x_grad {
            Var::from_tensor(&l.x).unwrap().as_tensor().clone()
        } else {
            l.x.clone()
        };
        let mut group = c.benchmark_group(l.name);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (imp, conv) in impls {
                for (pass, backward) in [("forward", false), ("forward+backward", true)] {
                    let id =
                        BenchmarkId::new(format!("{imp} {pass}"), format!("{threads} threads"));
                    group.bench_function(id, |bench| {
                        pool.install(|| bench.iter(|| run(l, conv, &x, backward)))
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_conv
}
criterion_main!(benches);
