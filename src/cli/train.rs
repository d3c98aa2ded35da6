//! `lrlab train`: one training run in the foreground, with a progress bar, one line per epoch,
//! the chapter's summary lines, and CSV files of the metrics.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{self, Dataset};
use crate::job::{JobPlan, JobRequest, OptimizerSpec};
use crate::train::{
    checkpoint, train, DeviceSpec, EpochMetrics, EpochReport, Progress, RunSpec, ScheduleUnit,
    StepRecord, TrainObserver,
};

/// Options of `lrlab train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Learning-rate schedule as JSON, e.g. '{"kind":"constant","lr":0.3}'.
    #[arg(long)]
    pub schedule: String,
    /// Number of epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: u32,
    /// Examples per update.
    #[arg(long, default_value_t = 256)]
    pub batch_size: u32,
    /// What the schedule's step index counts: `epoch` or `step` (optimizer updates).
    #[arg(long, default_value_t = ScheduleUnit::Epoch)]
    pub unit: ScheduleUnit,
    /// SGD momentum in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// Use Nesterov momentum (needs --momentum > 0).
    #[arg(long)]
    pub nesterov: bool,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Seed of the weight initialisation and the example order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use only the first N training examples.
    #[arg(long)]
    pub train_limit: Option<u64>,
    /// Use only the first N test examples.
    #[arg(long)]
    pub test_limit: Option<u64>,
    /// Device: cpu, cuda:N or metal (GPUs need the matching cargo feature).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Directory holding the Fashion-MNIST IDX files.
    #[arg(long, env = "LRLAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not download the data set when it is not found locally.
    #[arg(long)]
    pub no_download: bool,
    /// Output directory for metrics.csv, steps.csv, weights.safetensors and the checkpoint;
    /// a run with the same settings resumes from its checkpoint.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Discard a checkpoint in --out and start from scratch.
    #[arg(long)]
    pub restart: bool,
}

impl TrainArgs {
    /// The job these options describe, checked by the same rules as a submitted job; an
    /// error names the flag.
    pub fn plan(&self) -> anyhow::Result<JobPlan> {
        let schedule: serde_json::Value =
            serde_json::from_str(&self.schedule).context("--schedule is not valid JSON")?;
        let request = JobRequest {
            name: None,
            model: Default::default(),
            dataset: Default::default(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: OptimizerSpec {
                momentum: self.momentum,
                nesterov: self.nesterov,
                weight_decay: self.weight_decay,
                ..OptimizerSpec::default()
            },
            schedule,
            schedule_unit: self.unit,
            seed: Some(self.seed),
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            priority: 0,
        };
        JobPlan::from_request(request, || self.seed).map_err(|e| {
            let flag = match e.path.as_str() {
                path if path.starts_with("schedule") => "schedule",
                "optimizer.momentum" => "momentum",
                "optimizer.nesterov" => "nesterov",
                "optimizer.weight_decay" => "weight-decay",
                "batch_size" => "batch-size",
                "train_limit" => "train-limit",
                "test_limit" => "test-limit",
                other => other,
            };
            let at = match e.path.strip_prefix("schedule.") {
                Some(inner) => format!(" (at `{inner}`)"),
                None => String::new(),
            };
            anyhow!("--{flag}{at}: {} ({})", e.message, e.code)
        })
    }
}

/// Runs `lrlab train`.
pub fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let device = args.device.open()?;
    let dir = data::locate(args.data_dir.as_deref(), !args.no_download)?;
    let data = Dataset::load(&dir, plan.spec().limits(), &device)
        .with_context(|| format!("loading Fashion-MNIST from {}", dir.display()))?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    if args.restart {
        checkpoint::remove(&args.out)?;
    }
    eprintln!(
        "training on {} examples, testing on {}, device {}",
        data.train_len(),
        data.test_len(),
        args.device
    );

    let mut observer = CliObserver::new(&args.out)?;
    let stop = AtomicBool::new(false);
    let result = train(
        RunSpec {
            plan: plan.train(),
            data: &data,
            device: &device,
            checkpoint_dir: Some(&args.out),
            stop: &stop,
            until_epoch: None,
        },
        &mut observer,
    );
    observer.bar.finish_and_clear();
    let summary = result?;
    if let Some(epoch) = summary.resumed_from_epoch {
        println!("(resumed after epoch {epoch})");
    }
    if let Some(last) = summary.epochs.last() {
        let examples = data.train_len() as f64 * summary.epochs.len() as f64;
        let seconds: f64 = summary.epochs.iter().map(|m| m.seconds).sum();
        println!(
            "loss {:.3}, train acc {:.3}, test acc {:.3}",
            last.train_loss, last.train_acc, last.test_acc
        );
        println!(
            "{:.1} examples/sec on {}",
            examples / seconds.max(1e-9),
            args.device
        );
    } else {
        println!(
            "nothing to do: the checkpoint in {} is complete",
            args.out.display()
        );
    }
    if let Some(path) = summary.final_weights {
        println!("weights: {}", path.display());
    }
    Ok(())
}

/// Progress bar plus CSV writers.
struct CliObserver {
    bar: ProgressBar,
    out: PathBuf,
    started_files: bool,
}

impl CliObserver {
    fn new(out: &Path) -> anyhow::Result<CliObserver> {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {msg} [{bar:30}] {pos}/{len} updates, {per_sec}, eta {eta}",
            )
            .context("progress bar template")?
            .progress_chars("=> "),
        );
        println!(
            "{:>5} {:>9} {:>10} {:>9} {:>9} {:>8} {:>7} {:>10}",
            "epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "sec", "examples/s"
        );
        Ok(CliObserver {
            bar,
            out: out.to_path_buf(),
            started_files: false,
        })
    }

    /// Rewrites `name` keeping its header and the rows whose first column (the epoch) is
    /// below `epoch`: on a resume, rows of epochs that are being redone are dropped.
    fn truncate_csv(&self, name: &str, header: &str, epoch: u32) -> anyhow::Result<()> {
        let path = self.out.join(name);
        let mut kept = vec![header.to_string()];
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines().skip(1) {
                let line = line.with_context(|| format!("reading {}", path.display()))?;
                let row_epoch = line.split(',').next().and_then(|e| e.parse::<u32>().ok());
                if row_epoch.is_some_and(|e| e < epoch) {
                    kept.push(line);
                }
            }
        }
        let mut text = kept.join("\n");
        text.push('\n');
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    fn append(&self, name: &str, rows: impl Iterator<Item = String>) -> anyhow::Result<()> {
        let path = self.out.join(name);
        let f = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut w = BufWriter::new(f);
        for row in rows {
            writeln!(w, "{row}")?;
        }
        w.flush()?;
        Ok(())
    }

    fn write_epoch(&mut self, report: &EpochReport) -> anyhow::Result<()> {
        let m = &report.metrics;
        if !self.started_files {
            self.truncate_csv("metrics.csv", EpochMetrics::CSV_HEADER, m.epoch)?;
            self.truncate_csv("steps.csv", StepRecord::CSV_HEADER, m.epoch)?;
            self.started_files = true;
        }
        self.append("metrics.csv", std::iter::once(m.csv_row()))?;
        self.append("steps.csv", report.steps.iter().map(|s| s.csv_row(m.epoch)))?;
        let line = format!(
            "{:>5} {:>9.5} {:>10.4} {:>9.4} {:>9.4} {:>8.4} {:>7.1} {:>10.0}",
            m.epoch,
            m.lr,
            m.train_loss,
            m.train_acc,
            m.test_loss,
            m.test_acc,
            m.seconds,
            m.examples_per_sec
        );
        self.bar.suspend(|| println!("{line}"));
        Ok(())
    }
}

impl TrainObserver for CliObserver {
    fn on_progress(&mut self, p: &Progress) {
        self.bar.set_length(p.steps_per_epoch);
        self.bar.set_position(p.step_in_epoch);
        self.bar.set_message(format!(
            "{}/{} loss {:.4} {:.0} ex/s",
            p.epoch, p.epochs, p.batch_loss, p.examples_per_sec
        ));
    }

    fn on_epoch(
        &mut self,
        report: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.write_epoch(report).map_err(|e| e.into())
    }
}
