//! Fast CPU kernels vs candle's reference ops on the LeNet's two convolution layers (batch 256):
//! the convolution alone and the conv + ReLU + max-pool block the model uses, forward alone and
//! forward + backward, with 1 and 2 rayon threads.
//!
//! Run: `cargo bench --bench kernels` (CI smoke: `cargo bench --bench kernels -- --test`).
//! The machine may be shared, so compare the fast and reference timings of the same run
//! rather than absolute numbers across runs. On a busy machine, `KERNELS_BENCH_CPU_TIME=1`
//! reports the CPU time all of the process's threads spent per iteration instead of wall time
//! (Linux only): stable under load, but blind to how well the work spreads over threads.

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lrlab::train::kernels;
use lrlab::train::ops::reference;

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

/// CPU time consumed so far by all threads of this process, from `/proc/self/task/*/schedstat`
/// (nanoseconds on the CPU is its first field).
fn process_cpu_time() -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
                ns += stat
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

/// Times `iters` calls of `f` in wall time, or in process CPU time when asked for.
fn measure(iters: u64, cpu_time: bool, mut f: impl FnMut()) -> Duration {
    let (wall, cpu) = (Instant::now(), process_cpu_time());
    for _ in 0..iters {
        f();
    }
    if cpu_time {
        process_cpu_time().saturating_sub(cpu)
    } else {
        wall.elapsed()
    }
}

/// The layer block as candle's ops compose it: the path a GPU runs (`train::ops::reference`).
fn reference_block(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> candle_core::Result<Tensor> {
    reference::max_pool2x2(&reference::relu(&reference::conv2d(x, w, b, pad)?)?)
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
    let impls: [(&str, ConvFn); 4] = [
        ("fast conv", kernels::conv2d),
        ("candle conv", reference::conv2d),
        ("fast conv+relu+pool", kernels::conv2d_relu_pool2x2),
        ("candle conv+relu+pool", reference_block),
    ];
    let cpu_time = std::env::var_os("KERNELS_BENCH_CPU_TIME").is_some_and(|v| v != "0");
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
                        pool.install(|| {
                            bench.iter_custom(|iters| {
                                measure(iters, cpu_time, || run(l, conv, &x, backward))
                            })
                        })
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
