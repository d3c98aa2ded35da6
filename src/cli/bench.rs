//! `lrlab bench`: training throughput on the real Fashion-MNIST, for each thread count.
//!
//! For every thread count it prints: the training examples/s of full epochs at the chosen
//! batch size (what `lrlab train` reports), the evaluation examples/s on the test set, the
//! forward and backward time of each layer's kernel per batch (from the kernels' profiler,
//! over separate profiled batches), and the forward+backward throughput of candle's reference
//! ops on a few batches, for the ratio.
//!
//! candle sizes its own CPU thread pool once per process, from `CANDLE_NUM_THREADS` /
//! `RAYON_NUM_THREADS`; so each thread count runs in a child process of this binary with both
//! set (`--in-process` measures the current process as it is instead).
//!
//! `--lockstep K,…` measures lockstep groups instead (see [`lockstep`]).

mod lockstep;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};

use crate::data::{self, Dataset, Limits};
use crate::schedule::ScheduleSpec;
use crate::train::kernels::profile;
use crate::train::model::{forward_with, LeNet};
use crate::train::{
    ops, train, EpochReport, OptimizerSpec, RunSpec, ScheduleUnit, TrainConfig, TrainObserver,
    TrainPlan,
};

/// Options of `lrlab bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Thread counts to measure, each in its own process.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Epochs to time (each is one full pass over the training set).
    #[arg(long, default_value_t = 1)]
    pub epochs: u32,
    /// Mini-batch size.
    #[arg(long, default_value_t = 256)]
    pub batch_size: u32,
    /// Fixed learning rate of the timed epochs (the PyTorch reference's "fixed" schedule).
    #[arg(long, default_value_t = 0.3)]
    pub lr: f64,
    /// Batches timed layer by layer (they also warm the caches up before the epochs).
    #[arg(long, default_value_t = 40)]
    pub profile_batches: usize,
    /// Batches run on candle's reference ops, for the speed-up ratio (0 skips them).
    #[arg(long, default_value_t = 3)]
    pub reference_batches: usize,
    /// Directory holding the Fashion-MNIST IDX files (see `lrlab train`).
    #[arg(long, env = "LRLAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Never download the data set.
    #[arg(long)]
    pub no_download: bool,
    /// Use only the first N training examples.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N test examples.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Measure in this process, with its current thread settings, instead of spawning one
    /// process per thread count.
    #[arg(long)]
    pub in_process: bool,
    /// Measure lockstep groups of these sizes (model-examples/s) against the same members
    /// trained as separate runs, one at a time and two at once; `--lockstep` alone: 1,2,4,6,12.
    /// The groups use the largest `--threads` count.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..=1,
        default_missing_value = "1,2,4,6,12"
    )]
    pub lockstep: Option<Vec<usize>>,
    /// PyTorch's single-model training examples/s on this machine
    /// (`../shared/peers/pytorch_lenet.py`), for a ratio column in the lockstep table.
    #[arg(long, value_name = "EXAMPLES_PER_SEC")]
    pub pytorch: Option<f64>,
    /// A lockstep benchmark child: train members 0..K as one group.
    #[arg(long, hide = true)]
    pub lockstep_group: Option<usize>,
    /// A lockstep benchmark child: train this many members one after another…
    #[arg(long, hide = true)]
    pub lockstep_solo: Option<usize>,
    /// …starting with this one.
    #[arg(long, hide = true, default_value_t = 0)]
    pub lockstep_first: usize,
}

/// Finds and loads the data set as the options say.
fn load_data(args: &BenchArgs) -> anyhow::Result<Dataset> {
    let dir = data::locate(args.data_dir.as_deref(), !args.no_download)?;
    let limits = Limits {
        train: args.train_limit,
        test: args.test_limit,
    };
    let data = Dataset::load(&dir, limits, &Device::Cpu)
        .with_context(|| format!("loading Fashion-MNIST from {}", dir.display()))?;
    println!(
        "data: {} ({} training, {} test examples), batch {}",
        dir.display(),
        data.train_len(),
        data.test_len(),
        args.batch_size
    );
    Ok(data)
}

/// Runs the benchmark as `args` says, printing to stdout.
pub fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.in_process {
        let role = match (args.lockstep_group, args.lockstep_solo) {
            (Some(k), _) => Some(lockstep::Role::Group(k)),
            (None, Some(count)) => Some(lockstep::Role::Solo {
                first: args.lockstep_first,
                count,
            }),
            (None, None) => None,
        };
        if let Some(role) = role {
            return lockstep::run_child(&args, role);
        }
        let data = load_data(&args)?;
        let report = measure(&data, &args)?;
        print!("{report}");
        return Ok(());
    }
    // Sittings on machines of the same kind differ by their vector units (AVX-512 or not) more
    // than by anything in the code, so every report starts by naming them.
    println!("{}", cpu_summary());
    if let Some(sizes) = &args.lockstep {
        return lockstep::run(&args, sizes);
    }
    let exe = std::env::current_exe().context("finding this program to run the benchmark")?;
    for &threads in &args.threads {
        if threads == 0 {
            bail!("--threads: a thread count must be at least 1");
        }
        // The same command line plus --in-process; the thread count goes by environment.
        let status = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .arg("--in-process")
            .env("RAYON_NUM_THREADS", threads.to_string())
            .env("CANDLE_NUM_THREADS", threads.to_string())
            .status()
            .with_context(|| format!("running {}", exe.display()))?;
        if !status.success() {
            bail!("the benchmark with {threads} thread(s) failed ({status})");
        }
    }
    Ok(())
}

/// One line naming the CPU and the vector extensions the kernels can use, e.g.
/// `cpu: AMD EPYC (2 logical cpus; avx2 fma, no avx512f)`.
pub fn cpu_summary() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    format!(
        "cpu: {model} ({cpus} logical cpus; {})",
        vector_extensions()
    )
}

#[cfg(target_arch = "x86_64")]
fn vector_extensions() -> String {
    let mut have = Vec::new();
    let mut lack = Vec::new();
    for (name, present) in [
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
    ] {
        if present {
            have.push(name);
        } else {
            lack.push(name);
        }
    }
    match (have.is_empty(), lack.is_empty()) {
        (_, true) => have.join(" "),
        (true, false) => format!("no {}", lack.join(" ")),
        (false, false) => format!("{}, no {}", have.join(" "), lack.join(" ")),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn vector_extensions() -> String {
    format!("{} vector units", std::env::consts::ARCH)
}

/// What one process measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// rayon's thread count in this process.
    pub threads: usize,
    /// Batch size of every measurement.
    pub batch_size: usize,
    /// The timed epochs' metrics.
    pub epochs: Vec<crate::train::EpochMetrics>,
    /// Test examples evaluated per second (mean over the epochs).
    pub eval_examples_per_sec: f64,
    /// Per-layer kernel times over the profiled batches.
    pub layers: Vec<profile::LayerTiming>,
    /// Mean wall time of one profiled batch's forward + backward (no optimizer step).
    pub step: Duration,
    /// Mean wall time of the same on candle's reference ops, if measured.
    pub reference_step: Option<Duration>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        writeln!(f, "threads {}:", self.threads)?;
        for m in &self.epochs {
            writeln!(
                f,
                "  epoch {}: {:.0} training examples/s ({:.2} s); loss {:.3}, train acc {:.3}, test acc {:.3}",
                m.epoch, m.examples_per_sec, m.seconds, m.train_loss, m.train_acc, m.test_acc
            )?;
        }
        writeln!(
            f,
            "  evaluation: {:.0} examples/s",
            self.eval_examples_per_sec
        )?;
        writeln!(
            f,
            "  per batch of {} (forward + backward, no optimizer): {:.2} ms",
            self.batch_size,
            ms(self.step)
        )?;
        writeln!(
            f,
            "    {:<44} {:>10} {:>10}",
            "layer", "forward", "backward"
        )?;
        let mut in_layers = Duration::ZERO;
        for t in &self.layers {
            let (fw, bw) = (
                t.forward_per_batch(self.batch_size),
                t.backward_per_batch(self.batch_size),
            );
            in_layers += fw + bw;
            writeln!(
                f,
                "    {:<44} {:>7.3} ms {:>7.3} ms",
                t.layer,
                ms(fw),
                ms(bw)
            )?;
        }
        writeln!(
            f,
            "    {:<44} {:>7.3} ms (loss, autograd, reshapes)",
            "rest",
            ms(self.step.saturating_sub(in_layers))
        )?;
        if let Some(reference) = self.reference_step {
            writeln!(
                f,
                "  candle reference ops: {:.2} ms per batch, {:.1}x slower",
                ms(reference),
                reference.as_secs_f64() / self.step.as_secs_f64().max(1e-12)
            )?;
        }
        Ok(())
    }
}

/// Records the epochs' reports.
struct Collect(Vec<EpochReport>);

impl TrainObserver for Collect {
    fn on_epoch(
        &mut self,
        report: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.push(report.clone());
        Ok(())
    }
}

/// Mean wall time of forward + backward over `batches` consecutive training batches.
fn time_steps(data: &Dataset, batch: usize, batches: usize) -> anyhow::Result<Duration> {
    let net = LeNet::new(0, DType::F32, &Device::Cpu)?;
    let params: Vec<Tensor> = net.vars().iter().map(|v| v.as_tensor().clone()).collect();
    let n = data.train_len();
    let mut total = Duration::ZERO;
    for b in 0..batches {
        let start = (b * batch) % n;
        let len = batch.min(n - start);
        let x = data.train_images.narrow(0, start, len)?;
        let y = data.train_labels.narrow(0, start, len)?;
        let started = Instant::now();
        let loss = ops::cross_entropy(&forward_with(&params, &x)?, &y)?;
        let grads = loss.backward()?;
        total += started.elapsed();
        drop(grads);
    }
    Ok(total / batches.max(1) as u32)
}

/// Runs every measurement in this process.
pub fn measure(data: &Dataset, args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        schedule: ScheduleSpec::from_json(&serde_json::json!({"kind": "constant", "lr": args.lr}))?,
        unit: ScheduleUnit::Epoch,
        optimizer: OptimizerSpec::default(),
        seed: 0,
    };
    let plan =
        TrainPlan::new(config).map_err(|e| anyhow::anyhow!("--{}: {}", e.path, e.message))?;
    let batch = plan.batch_size();
    if data.train_len() == 0 || data.test_len() == 0 {
        bail!("the benchmark needs training and test examples");
    }
    // Profiled batches first: they also warm up thread pools, allocator and caches.
    profile::set_profiling(true);
    let step = time_steps(data, batch, args.profile_batches.max(1));
    profile::set_profiling(false);
    let step = step?;
    let layers = profile::profile();

    let stop = AtomicBool::new(false);
    let mut collect = Collect(Vec::new());
    let spec = RunSpec {
        plan: &plan,
        data,
        device: &Device::Cpu,
        checkpoint_dir: None,
        stop: &stop,
        until_epoch: None,
    };
    let summary = train(spec, &mut collect)?;
    let eval_seconds: f64 = summary.epochs.iter().map(|m| m.eval_seconds).sum();
    let eval_examples_per_sec =
        (data.test_len() * summary.epochs.len()) as f64 / eval_seconds.max(1e-9);

    let reference_step = if args.reference_batches > 0 {
        Some(ops::with_reference_ops(|| {
            time_steps(data, batch, args.reference_batches)
        })?)
    } else {
        None
    };
    Ok(BenchReport {
        threads: rayon::current_num_threads(),
        batch_size: batch,
        epochs: summary.epochs,
        eval_examples_per_sec,
        layers,
        step,
        reference_step,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::data::synthetic;

    /// Options of a small in-process run.
    pub(super) fn args() -> BenchArgs {
        BenchArgs {
            threads: vec![1],
            epochs: 1,
            batch_size: 64,
            lr: 0.1,
            profile_batches: 2,
            reference_batches: 1,
            data_dir: None,
            no_download: true,
            train_limit: None,
            test_limit: None,
            in_process: true,
            lockstep: None,
            pytorch: None,
            lockstep_group: None,
            lockstep_solo: None,
            lockstep_first: 0,
        }
    }

    /// The line names the avx2/fma/avx512f verdicts the kernels' run-time dispatch will see.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn cpu_summary_names_the_vector_extensions() {
        let line = cpu_summary();
        assert!(line.starts_with("cpu: "), "{line}");
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        assert_eq!(line.contains("no avx512f"), !avx512, "{line}");
        assert!(line.contains("avx2"), "{line}");
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn lockstep_takes_a_list_or_the_default_one() {
        let parse = |line: &[&str]| Cli::try_parse_from(line).unwrap().bench.lockstep;
        assert_eq!(parse(&["bench"]), None);
        assert_eq!(parse(&["bench", "--lockstep"]), Some(vec![1, 2, 4, 6, 12]));
        assert_eq!(
            parse(&["bench", "--lockstep", "--train-limit", "2000"]),
            Some(vec![1, 2, 4, 6, 12])
        );
        assert_eq!(parse(&["bench", "--lockstep", "3,6"]), Some(vec![3, 6]));
    }

    #[test]
    fn measures_every_part_on_generated_data() {
        let dir = tempfile::tempdir().unwrap();
        synthetic::write_dataset(dir.path(), 300, 100, 5, false).unwrap();
        let data = Dataset::load(dir.path(), Limits::default(), &Device::Cpu).unwrap();
        let args = args();
        let _serial = profile::TEST_LOCK.lock();
        let report = measure(&data, &args).unwrap();
        assert_eq!(report.epochs.len(), 1);
        assert!(report.epochs[0].examples_per_sec > 0.0);
        assert!(report.eval_examples_per_sec > 0.0);
        assert!(report.step > Duration::ZERO);
        assert!(report.reference_step.is_some_and(|d| d > Duration::ZERO));
        // Each of the LeNet's five layer kernels, forward and backward.
        let layers: Vec<&str> = report.layers.iter().map(|t| t.layer.as_str()).collect();
        for layer in [
            "conv2d+relu+pool2x2 1x28x28 -> 6x14x14, 5x5 pad 2",
            "conv2d+relu+pool2x2 6x14x14 -> 16x5x5, 5x5 pad 0",
            "linear+relu 400 -> 120",
            "linear+relu 120 -> 84",
            "linear 84 -> 10",
        ] {
            assert!(layers.contains(&layer), "{layer} missing from {layers:?}");
        }
        assert!(report
            .layers
            .iter()
            .all(|t| t.forward_examples > 0 && t.backward_examples > 0));
        let text = report.to_string();
        assert!(
            text.contains("training examples/s") && text.contains("reference ops"),
            "{text}"
        );
    }
}
