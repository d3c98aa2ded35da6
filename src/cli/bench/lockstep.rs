//! `lrlab bench --lockstep K,…`: model-examples/s (training examples × members per second) of
//! lockstep groups of K members, against the same K members trained as separate jobs.
//!
//! Every measurement runs in a child process of this binary, as the thread-count runs do:
//!
//! - **lockstep**: one process with the largest `--threads` count trains the K members as one
//!   group;
//! - **one at a time**: one process with the same thread count trains the K members one after
//!   another (`lrlab serve --workers 1`);
//! - **two at once**: two processes with one thread each, started together, train half of
//!   the members each (`--workers 2` with one thread per job); their throughput is all their
//!   members' examples over the longer process's time.
//!
//! Member `i` trains at a constant rate of `--lr` · (12 − i mod 12) / 12, with momentum 0.5 on
//! odd `i`, for `--epochs` epochs; all members use seed 0. Times are training time only (the
//! epochs' `seconds`, without evaluation), after a warm-up of `--profile-batches` batches that
//! also yields the group's per-layer kernel times.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{bail, Context};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::{load_data, BenchArgs};
use crate::data::Dataset;
use crate::schedule::ScheduleSpec;
use crate::train::kernels::profile::{self, LayerTiming};
use crate::train::lockstep::{train_group, GroupSpec, MemberRun};
use crate::train::{
    train, EpochMetrics, EpochReport, OptimizerSpec, RunSpec, ScheduleUnit, TrainConfig,
    TrainObserver, TrainPlan,
};

/// The line a child process reports its measurement on (the rest of its output is for people).
const RESULT_PREFIX: &str = "lockstep-bench-result ";

/// Distinct member configurations before they repeat.
const CONFIGS: usize = 12;

/// What one child process measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Measured {
    /// Members trained.
    members: usize,
    /// Training examples × members.
    model_examples: f64,
    /// Training seconds they took.
    seconds: f64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.model_examples / self.seconds.max(1e-9)
    }
}

/// What a child process of the lockstep benchmark does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Train members `0..k` as one group.
    Group(usize),
    /// Train members `first..first + count` one after another.
    Solo { first: usize, count: usize },
}

/// Member `i`'s plan (see the module docs).
fn member_plan(i: usize, args: &BenchArgs) -> anyhow::Result<TrainPlan> {
    let step = (CONFIGS - i % CONFIGS) as f64 / CONFIGS as f64;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        schedule: ScheduleSpec::from_json(
            &serde_json::json!({"kind": "constant", "lr": args.lr * step}),
        )?,
        unit: ScheduleUnit::Epoch,
        optimizer: OptimizerSpec {
            momentum: if i % 2 == 1 { 0.5 } else { 0.0 },
            ..OptimizerSpec::default()
        },
        seed: 0,
    };
    TrainPlan::new(config).map_err(|e| anyhow::anyhow!("--{}: {}", e.path, e.message))
}

/// Keeps nothing: the benchmark reads the returned summaries.
struct Quiet;

impl TrainObserver for Quiet {
    fn on_epoch(
        &mut self,
        _: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
}

/// The first `batches` batches of training examples (and a few test examples), for warm-ups.
fn head(data: &Dataset, batches: usize, batch: usize) -> anyhow::Result<Dataset> {
    let train = (batches.max(1) * batch).min(data.train_len());
    let test = data.test_len().min(512);
    Ok(Dataset {
        train_images: data.train_images.narrow(0, 0, train)?,
        train_labels: data.train_labels.narrow(0, 0, train)?,
        test_images: data.test_images.narrow(0, 0, test)?,
        test_labels: data.test_labels.narrow(0, 0, test)?,
    })
}

/// Trains `plans` as one group on `data`; returns every member's epochs.
fn group_epochs(plans: &[TrainPlan], data: &Dataset) -> anyhow::Result<Vec<Vec<EpochMetrics>>> {
    let stop = AtomicBool::new(false);
    let mut observers: Vec<Quiet> = plans.iter().map(|_| Quiet).collect();
    let members = plans
        .iter()
        .zip(&mut observers)
        .map(|(plan, observer)| MemberRun {
            plan,
            checkpoint_dir: None,
            stop: &stop,
            until_epoch: None,
            observer,
        })
        .collect();
    let outcomes = train_group(GroupSpec {
        members,
        data,
        device: &Device::Cpu,
    })?;
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| {
            outcome
                .map(|summary| summary.epochs)
                .with_context(|| format!("member {i} of the group"))
        })
        .collect()
}

/// Trains `plan` alone on `data`; returns its epochs.
fn solo_epochs(plan: &TrainPlan, data: &Dataset) -> anyhow::Result<Vec<EpochMetrics>> {
    let stop = AtomicBool::new(false);
    let spec = RunSpec {
        plan,
        data,
        device: &Device::Cpu,
        checkpoint_dir: None,
        stop: &stop,
        until_epoch: None,
    };
    Ok(train(spec, &mut Quiet)?.epochs)
}

/// A child process: measures its role on the real data and reports on stdout.
pub(super) fn run_child(args: &BenchArgs, role: Role) -> anyhow::Result<()> {
    let data = load_data(args)?;
    let threads = rayon::current_num_threads();
    let n = data.train_len() as f64;
    let warm = head(&data, args.profile_batches, args.batch_size as usize)?;
    let measured = match role {
        Role::Group(k) => {
            let plans = (0..k)
                .map(|i| member_plan(i, args))
                .collect::<anyhow::Result<Vec<_>>>()?;
            profile::set_profiling(true);
            let warmed = group_epochs(&plans, &warm);
            profile::set_profiling(false);
            warmed?;
            let layers = profile::profile();
            let epochs = group_epochs(&plans, &data)?;
            // Every member of a group epoch reports the group's training time.
            let seconds: f64 = epochs
                .first()
                .map(|e| e.iter().map(|m| m.seconds).sum())
                .unwrap_or(0.0);
            let measured = Measured {
                members: k,
                model_examples: n * (k * epochs.first().map_or(0, Vec::len)) as f64,
                seconds,
            };
            println!(
                "lockstep, {k} member(s), {threads} thread(s): {:.0} model-examples/s ({:.2} s)",
                measured.rate(),
                seconds
            );
            print_layers(&layers, args.batch_size as usize);
            measured
        }
        Role::Solo { first, count } => {
            let plans = (first..first + count)
                .map(|i| member_plan(i, args))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some(plan) = plans.first() {
                solo_epochs(plan, &warm)?;
            }
            let mut measured = Measured {
                members: count,
                model_examples: 0.0,
                seconds: 0.0,
            };
            for plan in &plans {
                let epochs = solo_epochs(plan, &data)?;
                measured.model_examples += n * epochs.len() as f64;
                measured.seconds += epochs.iter().map(|m| m.seconds).sum::<f64>();
            }
            println!(
                "separate, {count} member(s) one after another, {threads} thread(s): {:.0} model-examples/s ({:.2} s)",
                measured.rate(),
                measured.seconds
            );
            measured
        }
    };
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&measured)?);
    Ok(())
}

/// The group's kernel times per batch: the shared first layer once per batch, the members'
/// layers per member (CPU time of their concurrent tasks, averaged over the members).
fn print_layers(layers: &[LayerTiming], batch: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("  per batch of {batch} (warm-up batches; member layers per member):");
    println!("    {:<52} {:>10} {:>10}", "layer", "forward", "backward");
    for t in layers {
        println!(
            "    {:<52} {:>7.3} ms {:>7.3} ms",
            t.layer,
            ms(t.forward_per_batch(batch)),
            ms(t.backward_per_batch(batch))
        );
    }
}

/// Starts a child process for `role` with `threads` rayon threads.
fn spawn(args_os: &[std::ffi::OsString], role: Role, threads: usize) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding this program to run the benchmark")?;
    let mut command = Command::new(&exe);
    command
        .args(args_os)
        .arg("--in-process")
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env("CANDLE_NUM_THREADS", threads.to_string())
        .stdout(Stdio::piped());
    match role {
        Role::Group(k) => command.args(["--lockstep-group", &k.to_string()]),
        Role::Solo { first, count } => command.args([
            "--lockstep-solo",
            &count.to_string(),
            "--lockstep-first",
            &first.to_string(),
        ]),
    };
    command
        .spawn()
        .with_context(|| format!("running {}", exe.display()))
}

/// Waits for a child, echoes its output and returns its measurement.
fn collect(child: Child, what: &str) -> anyhow::Result<Measured> {
    let output = child
        .wait_with_output()
        .with_context(|| format!("waiting for the {what} run"))?;
    let mut measured = None;
    for line in BufReader::new(output.stdout.as_slice()).lines() {
        let line = line?;
        match line.strip_prefix(RESULT_PREFIX) {
            Some(json) => measured = Some(serde_json::from_str::<Measured>(json)?),
            None => println!("{line}"),
        }
    }
    if !output.status.success() {
        bail!("the {what} run failed ({})", output.status);
    }
    measured.with_context(|| format!("the {what} run reported no result"))
}

/// One row of the final table.
struct Row {
    members: usize,
    lockstep: f64,
    one_at_a_time: f64,
    two_at_once: Option<f64>,
}

/// The parent process: every group size, and the separate runs of the same members.
pub(super) fn run(args: &BenchArgs, sizes: &[usize]) -> anyhow::Result<()> {
    let threads = args.threads.iter().copied().max().unwrap_or(2).max(1);
    // The same command line without the lockstep list; roles are added per child.
    let args_os: Vec<std::ffi::OsString> = strip_lockstep_list(std::env::args_os().skip(1));
    let mut rows = Vec::new();
    for &k in sizes {
        if k == 0 {
            bail!("--lockstep: a group needs at least one member");
        }
        let lockstep = collect(spawn(&args_os, Role::Group(k), threads)?, "lockstep")?;
        let solo = Role::Solo { first: 0, count: k };
        let one_at_a_time = collect(spawn(&args_os, solo, threads)?, "one-at-a-time")?;
        let two_at_once = if threads >= 2 {
            let (a, b) = (k.div_ceil(2), k / 2);
            let first = spawn(&args_os, Role::Solo { first: 0, count: a }, 1)?;
            let second = (b > 0)
                .then(|| spawn(&args_os, Role::Solo { first: a, count: b }, 1))
                .transpose()?;
            let mut parts = vec![collect(first, "two-at-once")?];
            if let Some(second) = second {
                parts.push(collect(second, "two-at-once")?);
            }
            let examples: f64 = parts.iter().map(|m| m.model_examples).sum();
            let seconds = parts.iter().map(|m| m.seconds).fold(0.0, f64::max);
            Some(examples / seconds.max(1e-9))
        } else {
            None
        };
        rows.push(Row {
            members: k,
            lockstep: lockstep.rate(),
            one_at_a_time: one_at_a_time.rate(),
            two_at_once,
        });
    }
    print!("{}", table(&rows, threads, args.pytorch));
    Ok(())
}

/// The command line's arguments without `--lockstep` and its list (each child gets a role
/// instead).
fn strip_lockstep_list(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut skipping = false;
    for arg in args {
        let text = arg.to_string_lossy();
        if text == "--lockstep" {
            skipping = true;
            continue;
        }
        if text.starts_with("--lockstep=") {
            continue;
        }
        if skipping && !text.starts_with('-') {
            skipping = false;
            continue;
        }
        skipping = false;
        out.push(arg);
    }
    out
}

/// The comparison table.
fn table(rows: &[Row], threads: usize, pytorch: Option<f64>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nmodel-examples/s (training examples x members per second, training time only)"
    );
    let _ = writeln!(
        out,
        "{:>3} {:>12} {:>14} {:>14} {:>10}{}",
        "K",
        "lockstep",
        "1 at a time",
        "2 at once",
        "x best",
        if pytorch.is_some() { "  x PyTorch" } else { "" }
    );
    let _ = writeln!(
        out,
        "{:>3} {:>12} {:>14} {:>14}",
        "",
        format!("({threads} thr)"),
        format!("({threads} thr)"),
        "(1 thr each)"
    );
    for row in rows {
        let best = row.two_at_once.unwrap_or(0.0).max(row.one_at_a_time);
        let two = row
            .two_at_once
            .map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
        let _ = write!(
            out,
            "{:>3} {:>12.0} {:>14.0} {:>14} {:>9.2}x",
            row.members,
            row.lockstep,
            row.one_at_a_time,
            two,
            row.lockstep / best.max(1e-9)
        );
        if let Some(pytorch) = pytorch {
            let _ = write!(out, " {:>9.2}x", row.lockstep / pytorch.max(1e-9));
        }
        let _ = writeln!(out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{synthetic, Limits};

    fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
        args.iter().map(Into::into).collect()
    }

    #[test]
    fn children_get_the_command_line_without_the_lockstep_list() {
        for (given, kept) in [
            (
                &["bench", "--lockstep", "1,2", "--epochs", "2"][..],
                &["bench", "--epochs", "2"][..],
            ),
            (&["bench", "--lockstep"], &["bench"]),
            (
                &["bench", "--lockstep", "--train-limit", "10"],
                &["bench", "--train-limit", "10"],
            ),
            (
                &["bench", "--lockstep=4", "--no-download"],
                &["bench", "--no-download"],
            ),
        ] {
            assert_eq!(
                strip_lockstep_list(os(given).into_iter()),
                os(kept),
                "{given:?}"
            );
        }
    }

    #[test]
    fn members_differ_and_repeat_after_twelve() {
        let args = super::super::tests::args();
        let lr = |i| member_plan(i, &args).unwrap().config().schedule.clone();
        assert_ne!(lr(0), lr(1));
        assert_eq!(lr(0), lr(12));
        let momentum = |i| member_plan(i, &args).unwrap().config().optimizer.momentum;
        assert_eq!((momentum(0), momentum(1)), (0.0, 0.5));
    }

    #[test]
    fn a_group_counts_every_member_s_examples() {
        let dir = tempfile::tempdir().unwrap();
        synthetic::write_dataset(dir.path(), 96, 32, 5, false).unwrap();
        let data = Dataset::load(dir.path(), Limits::default(), &Device::Cpu).unwrap();
        let args = super::super::tests::args();
        let plans: Vec<TrainPlan> = (0..3).map(|i| member_plan(i, &args).unwrap()).collect();
        let epochs = group_epochs(&plans, &data).unwrap();
        assert_eq!(epochs.len(), 3);
        let alone = solo_epochs(&plans[1], &data).unwrap();
        assert_eq!(epochs[1][0].train_loss, alone[0].train_loss);
    }

    #[test]
    fn the_table_compares_with_the_better_separate_setting() {
        let rows = [Row {
            members: 6,
            lockstep: 60_000.0,
            one_at_a_time: 20_000.0,
            two_at_once: Some(30_000.0),
        }];
        let text = table(&rows, 2, Some(20_000.0));
        let line = text.lines().last().unwrap();
        assert!(line.contains("2.00x") && line.contains("3.00x"), "{text}");
    }
}
