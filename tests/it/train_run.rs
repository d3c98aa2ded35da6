//! The training loop on generated data: learning, scheduled rates, plateau reduction,
//! divergence, stop, checkpoint/resume and determinism.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;
use lrlab::data::{synthetic, Dataset, Limits};
use lrlab::schedule::{Schedule, ScheduleSpec};
use lrlab::train::{
    checkpoint, train, DeviceSpec, EpochMetrics, EpochReport, OptimizerSpec, Progress, RunSpec,
    RunSummary, ScheduleUnit, StepRecord, TrainConfig, TrainError, TrainObserver, TrainPlan,
};
use serde_json::json;

fn dataset(train: usize, test: usize) -> Dataset {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_dataset(dir.path(), train, test, 7, false).unwrap();
    Dataset::load(dir.path(), Limits::default(), &Device::Cpu).unwrap()
}

fn spec(v: serde_json::Value) -> ScheduleSpec {
    ScheduleSpec::from_json(&v).unwrap()
}

fn config(epochs: u32, batch_size: u32, schedule: serde_json::Value) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
        schedule: spec(schedule),
        unit: ScheduleUnit::Epoch,
        optimizer: OptimizerSpec::default(),
        seed: 3,
    }
}

/// Records every report; optionally raises the stop flag after a given epoch, or fails.
struct Recorder<'a> {
    reports: Vec<EpochReport>,
    progress: Vec<Progress>,
    stop_after: Option<(u32, &'a AtomicBool)>,
    fail_at: Option<u32>,
}

impl<'a> Recorder<'a> {
    fn new() -> Self {
        Recorder {
            reports: Vec::new(),
            progress: Vec::new(),
            stop_after: None,
            fail_at: None,
        }
    }
}

impl TrainObserver for Recorder<'_> {
    fn on_progress(&mut self, p: &Progress) {
        self.progress.push(p.clone());
    }

    fn on_epoch(
        &mut self,
        report: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.fail_at == Some(report.metrics.epoch) {
            return Err("database is gone".into());
        }
        self.reports.push(report.clone());
        if let Some((epoch, flag)) = self.stop_after {
            if report.metrics.epoch == epoch {
                flag.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

fn run(
    cfg: &TrainConfig,
    data: &Dataset,
    dir: Option<&Path>,
    stop: &AtomicBool,
    obs: &mut Recorder<'_>,
) -> Result<RunSummary, TrainError> {
    // The rules are checked when the plan is made, before any training.
    let plan = TrainPlan::new(cfg.clone()).map_err(|e| TrainError::InvalidConfig(e.message))?;
    train(
        RunSpec {
            plan: &plan,
            data,
            device: &Device::Cpu,
            checkpoint_dir: dir,
            stop,
            until_epoch: None,
        },
        obs,
    )
}

/// Metrics without the wall-clock fields, which differ between runs.
fn timeless(m: &EpochMetrics) -> EpochMetrics {
    EpochMetrics {
        seconds: 0.0,
        eval_seconds: 0.0,
        examples_per_sec: 0.0,
        ..m.clone()
    }
}

#[test]
fn loss_falls_and_accuracy_exceeds_0_9_within_a_few_epochs() {
    let data = dataset(600, 200);
    let mut cfg = config(4, 32, json!({"kind": "constant", "lr": 0.05}));
    cfg.optimizer.momentum = 0.9;
    let stop = AtomicBool::new(false);
    let mut obs = Recorder::new();
    let summary = run(&cfg, &data, None, &stop, &mut obs).unwrap();
    let m = &summary.epochs;
    assert_eq!(m.len(), 4);
    assert_eq!(m.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(m[3].train_loss < 0.5 * m[0].train_loss, "{m:?}");
    assert!(m[3].test_loss < m[0].test_loss, "{m:?}");
    assert!(m[3].test_acc > 0.9, "{m:?}");
    // Train accuracy is averaged while the weights still change, so it lags behind.
    assert!(m[3].train_acc > 0.8, "{m:?}");
    assert!(m
        .iter()
        .all(|e| e.seconds > 0.0 && e.examples_per_sec > 0.0));
    assert_eq!(summary.final_weights, None);
    assert_eq!(summary.resumed_from_epoch, None);
    // 600 / 32 → 19 updates per epoch, the last one partial; records are contiguous.
    let steps: Vec<u64> = obs
        .reports
        .iter()
        .flat_map(|r| r.steps.iter().map(|s| s.step))
        .collect();
    assert_eq!(steps, (0..76).collect::<Vec<u64>>());
    // Train loss is the batch-size-weighted mean of the epoch's step losses.
    let r = &obs.reports[0];
    let weighted: f64 = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.loss * if i == 18 { 600.0 - 18.0 * 32.0 } else { 32.0 })
        .sum::<f64>()
        / 600.0;
    assert!((weighted - r.metrics.train_loss).abs() < 1e-9);
    // Progress: throttled, but always once at each epoch's end.
    let ends: Vec<&Progress> = obs
        .progress
        .iter()
        .filter(|p| p.step_in_epoch == p.steps_per_epoch)
        .collect();
    assert_eq!(ends.len(), 4);
    assert_eq!(ends[3].global_step, 76);
    assert_eq!(ends[3].total_steps, 76);
}

#[test]
fn with_unit_step_every_update_uses_the_schedules_rate_for_its_index() {
    let data = dataset(100, 40);
    let schedule = json!({"kind": "cosine", "lr": 0.2, "final_lr": 0.01, "max_steps": 10});
    let mut cfg = config(2, 16, schedule.clone());
    cfg.unit = ScheduleUnit::Step;
    let reference = Schedule::from_json(&schedule).unwrap();
    let stop = AtomicBool::new(false);
    let mut obs = Recorder::new();
    run(&cfg, &data, None, &stop, &mut obs).unwrap();
    let mut expected_step = 0;
    for r in &obs.reports {
        assert_eq!(r.steps.len(), 7);
        for s in &r.steps {
            assert_eq!(s.step, expected_step);
            assert_eq!(s.lr, reference.lr(s.step), "step {}", s.step);
            expected_step += 1;
        }
        let lrs: Vec<f64> = r.steps.iter().map(|s| s.lr).collect();
        assert_eq!(r.metrics.lr, lrs[0]);
        assert_eq!(
            r.metrics.lr_min,
            lrs.iter().cloned().fold(f64::INFINITY, f64::min)
        );
        assert_eq!(r.metrics.lr_max, lrs.iter().cloned().fold(0.0, f64::max));
    }
    assert_eq!(
        obs.reports[1].steps[6].lr, 0.01,
        "past max_steps the final rate holds"
    );
}

#[test]
fn with_unit_epoch_the_rate_is_the_schedules_value_at_the_epoch_index() {
    let data = dataset(64, 32);
    let schedule = json!({"kind": "cosine", "lr": 0.2, "final_lr": 0.01, "max_steps": 2});
    let cfg = config(3, 16, schedule.clone());
    let reference = Schedule::from_json(&schedule).unwrap();
    let stop = AtomicBool::new(false);
    let mut obs = Recorder::new();
    run(&cfg, &data, None, &stop, &mut obs).unwrap();
    for (e, r) in obs.reports.iter().enumerate() {
        let want = reference.lr(e as u64);
        assert_eq!(r.steps.len(), 4);
        assert!(r.steps.iter().all(|s| s.lr == want), "epoch {e}");
        assert_eq!(
            (r.metrics.lr, r.metrics.lr_min, r.metrics.lr_max),
            (want, want, want)
        );
    }
    assert_ne!(obs.reports[0].metrics.lr, obs.reports[1].metrics.lr);
}

#[test]
fn reduce_on_plateau_lowers_the_rate_when_the_metric_stalls() {
    let data = dataset(64, 32);
    // A relative threshold of 0.9 counts an epoch as an improvement only if the training loss
    // falls below a tenth of the best so far, which a small rate cannot do: every epoch after
    // the first is a plateau, and with patience 0 the rate is halved after each of them.
    let cfg = config(
        4,
        32,
        json!({"kind": "reduce_on_plateau", "lr": 0.01, "factor": 0.5, "patience": 0,
               "threshold": 0.9, "monitor": "train_loss"}),
    );
    let stop = AtomicBool::new(false);
    let mut obs = Recorder::new();
    let summary = run(&cfg, &data, None, &stop, &mut obs).unwrap();
    let lrs: Vec<f64> = summary.epochs.iter().map(|m| m.lr).collect();
    assert_eq!(lrs, [0.01, 0.01, 0.005, 0.0025]);
    // Every update of an epoch uses the epoch's reduced rate.
    assert!(obs.reports[3].steps.iter().all(|s| s.lr == 0.0025));

    // A closed-form schedule is not affected by the metrics.
    let cfg = config(3, 32, json!({"kind": "constant", "lr": 0.01}));
    let summary = run(&cfg, &data, None, &stop, &mut Recorder::new()).unwrap();
    assert!(summary.epochs.iter().all(|m| m.lr == 0.01));
}

#[test]
fn a_huge_rate_diverges_with_the_epoch_and_step_named() {
    let data = dataset(64, 32);
    let cfg = config(3, 16, json!({"kind": "constant", "lr": 1e6}));
    let stop = AtomicBool::new(false);
    let mut obs = Recorder::new();
    let dir = tempfile::tempdir().unwrap();
    let err = run(&cfg, &data, Some(dir.path()), &stop, &mut obs).unwrap_err();
    let TrainError::Diverged { epoch, step, loss } = err else {
        panic!("expected divergence, got {err:?}");
    };
    assert!(!loss.is_finite());
    assert!(
        step >= 1,
        "the first batch's loss is computed before any update"
    );
    assert_eq!(u64::from(epoch), step / 4 + 1);
    assert_eq!(
        TrainError::Diverged { epoch, step, loss }.code(),
        "diverged"
    );
    // No checkpoint for an epoch that diverged.
    assert_eq!(
        checkpoint::read_meta(dir.path()).unwrap().map(|m| m.epoch),
        Some(epoch - 1).filter(|&e| e > 0)
    );
}

#[test]
fn a_nan_test_loss_after_the_only_update_of_an_epoch_is_a_divergence() {
    // One update per epoch: its batch loss is computed before the update and is finite, but
    // the update breaks the weights, so the test loss is not. Such a row must never reach an
    // observer (a store cannot keep NaN); the run ends `diverged`, naming the metric.
    let data = dataset(256, 100);
    let cfg = config(2, 256, json!({"kind": "constant", "lr": 1e16}));
    let stop = AtomicBool::new(false);
    let mut obs = Recorder::new();
    let dir = tempfile::tempdir().unwrap();
    let err = run(&cfg, &data, Some(dir.path()), &stop, &mut obs).unwrap_err();
    let TrainError::DivergedMetric {
        epoch,
        metric,
        value,
    } = err
    else {
        panic!("expected a diverged metric, got {err:?}");
    };
    assert_eq!((epoch, metric), (1, "test loss"));
    assert!(!value.is_finite());
    let err = TrainError::DivergedMetric {
        epoch,
        metric,
        value,
    };
    assert_eq!(err.code(), "diverged");
    assert_eq!(
        err.to_string(),
        format!("training diverged: the test loss of epoch 1 is {value}")
    );
    assert!(obs.reports.is_empty(), "{:?}", obs.reports);
    assert_eq!(
        checkpoint::read_meta(dir.path()).unwrap().map(|m| m.epoch),
        None
    );
}

#[test]
fn two_runs_with_the_same_seed_are_identical() {
    let data = dataset(128, 64);
    let mut cfg = config(2, 32, json!({"kind": "constant", "lr": 0.1}));
    cfg.optimizer = OptimizerSpec {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
        ..OptimizerSpec::default()
    };
    let stop = AtomicBool::new(false);
    let (mut a, mut b) = (Recorder::new(), Recorder::new());
    run(&cfg, &data, None, &stop, &mut a).unwrap();
    run(&cfg, &data, None, &stop, &mut b).unwrap();
    for (x, y) in a.reports.iter().zip(&b.reports) {
        assert_eq!(timeless(&x.metrics), timeless(&y.metrics));
        assert_eq!(x.steps, y.steps);
    }
    cfg.seed += 1;
    let mut c = Recorder::new();
    run(&cfg, &data, None, &stop, &mut c).unwrap();
    assert_ne!(
        a.reports[0].steps, c.reports[0].steps,
        "the seed must matter"
    );
}

#[test]
fn stop_then_resume_ends_exactly_like_an_uninterrupted_run() {
    let data = dataset(160, 64);
    let mut cfg = config(
        3,
        32,
        json!({"kind": "reduce_on_plateau", "lr": 0.05, "factor": 0.5, "patience": 0,
               "monitor": "train_loss", "threshold": 0.5}),
    );
    cfg.optimizer.momentum = 0.9;
    let stop = AtomicBool::new(false);

    let full_dir = tempfile::tempdir().unwrap();
    let mut full = Recorder::new();
    let full_summary = run(&cfg, &data, Some(full_dir.path()), &stop, &mut full).unwrap();
    // threshold 0.5 (relative) makes every epoch after the first a plateau, so the scheduler
    // state that the checkpoint carries actually changes the rate.
    let lrs: Vec<f64> = full_summary.epochs.iter().map(|m| m.lr).collect();
    assert_eq!(lrs, [0.05, 0.05, 0.025]);

    let dir = tempfile::tempdir().unwrap();
    let flag = AtomicBool::new(false);
    let mut first = Recorder::new();
    first.stop_after = Some((1, &flag));
    let err = run(&cfg, &data, Some(dir.path()), &flag, &mut first).unwrap_err();
    assert!(matches!(err, TrainError::Stopped { epoch: 2 }), "{err:?}");
    assert_eq!(err.code(), "stopped");
    assert_eq!(
        checkpoint::read_meta(dir.path()).unwrap().map(|m| m.epoch),
        Some(1)
    );
    assert!(
        dir.path().join(checkpoint::WEIGHTS_FILE).exists(),
        "the latest epoch's weights are written with its checkpoint"
    );

    flag.store(false, Ordering::Relaxed);
    let mut second = Recorder::new();
    let summary = run(&cfg, &data, Some(dir.path()), &flag, &mut second).unwrap();
    assert_eq!(summary.resumed_from_epoch, Some(1));
    assert_eq!(summary.epochs.len(), 2);
    let resumed: Vec<&EpochReport> = first.reports.iter().chain(&second.reports).collect();
    assert_eq!(resumed.len(), full.reports.len());
    for (x, y) in resumed.iter().zip(&full.reports) {
        assert_eq!(timeless(&x.metrics), timeless(&y.metrics));
        assert_eq!(x.steps, y.steps);
    }
    let w1 = std::fs::read(full_summary.final_weights.unwrap()).unwrap();
    let w2 = std::fs::read(summary.final_weights.unwrap()).unwrap();
    assert_eq!(w1, w2, "final weights differ");
    assert_eq!(
        checkpoint::read_meta(dir.path()).unwrap().map(|m| m.epoch),
        Some(3)
    );

    // Calling again with the run complete does nothing but rewrite the final weights.
    let mut third = Recorder::new();
    let summary = run(&cfg, &data, Some(dir.path()), &flag, &mut third).unwrap();
    assert_eq!(summary.resumed_from_epoch, Some(3));
    assert!(summary.epochs.is_empty() && third.reports.is_empty());
}

#[test]
fn a_checkpoint_of_another_run_is_not_resumed() {
    let data = dataset(64, 32);
    let mut cfg = config(1, 32, json!({"kind": "constant", "lr": 0.1}));
    let stop = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    run(&cfg, &data, Some(dir.path()), &stop, &mut Recorder::new()).unwrap();
    assert_eq!(
        checkpoint::read_meta(dir.path()).unwrap().map(|m| m.epoch),
        Some(1)
    );
    cfg.seed += 1;
    let summary = run(&cfg, &data, Some(dir.path()), &stop, &mut Recorder::new()).unwrap();
    assert_eq!(summary.resumed_from_epoch, None);
    assert_eq!(summary.epochs.len(), 1);
    // Only the current checkpoint's tensor file is kept.
    let tensor_files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("checkpoint-e")
        })
        .count();
    assert_eq!(tensor_files, 1);
}

#[test]
fn a_raised_stop_flag_stops_before_the_first_batch() {
    let data = dataset(64, 32);
    let cfg = config(2, 32, json!({"kind": "constant", "lr": 0.1}));
    let stop = AtomicBool::new(true);
    let dir = tempfile::tempdir().unwrap();
    let err = run(&cfg, &data, Some(dir.path()), &stop, &mut Recorder::new()).unwrap_err();
    assert!(matches!(err, TrainError::Stopped { epoch: 1 }), "{err:?}");
    assert_eq!(
        checkpoint::read_meta(dir.path()).unwrap().map(|m| m.epoch),
        None
    );
}

#[test]
fn an_observer_failure_aborts_before_the_epochs_checkpoint() {
    let data = dataset(64, 32);
    let cfg = config(3, 32, json!({"kind": "constant", "lr": 0.1}));
    let stop = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let mut obs = Recorder::new();
    obs.fail_at = Some(2);
    let err = run(&cfg, &data, Some(dir.path()), &stop, &mut obs).unwrap_err();
    assert_eq!(err.code(), "observer");
    assert!(err.to_string().contains("database is gone"));
    assert_eq!(
        checkpoint::read_meta(dir.path()).unwrap().map(|m| m.epoch),
        Some(1)
    );
}

#[test]
fn invalid_configs_are_rejected_before_training() {
    let data = dataset(32, 16);
    let stop = AtomicBool::new(false);
    for mut cfg in [
        config(0, 32, json!({"kind": "constant", "lr": 0.1})),
        config(1, 0, json!({"kind": "constant", "lr": 0.1})),
        config(1, 32, json!({"kind": "constant", "lr": 0.1})),
    ] {
        if cfg.epochs == 1 && cfg.batch_size == 32 {
            cfg.optimizer.nesterov = true;
        }
        let err = run(&cfg, &data, None, &stop, &mut Recorder::new()).unwrap_err();
        assert_eq!(err.code(), "invalid_config", "{cfg:?}");
    }
}

#[test]
fn the_config_round_trips_through_json_with_defaults() {
    let cfg: TrainConfig = serde_json::from_value(json!({
        "epochs": 10, "batch_size": 256, "schedule": {"kind": "constant", "lr": 0.3}
    }))
    .unwrap();
    assert_eq!(cfg.unit, ScheduleUnit::Epoch);
    assert_eq!(cfg.optimizer, OptimizerSpec::default());
    assert_eq!(cfg.seed, 0);
    let back: TrainConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(
        serde_json::to_value(ScheduleUnit::Step).unwrap(),
        json!("step")
    );
    assert!(serde_json::from_value::<TrainConfig>(json!({
        "epochs": 1, "batch_size": 1, "schedule": {"kind": "constant", "lr": 0.3}, "lr": 1
    }))
    .is_err());
}

#[test]
fn a_corrupt_checkpoint_is_an_error_not_a_silent_restart() {
    let data = dataset(32, 16);
    let cfg = config(1, 32, json!({"kind": "constant", "lr": 0.1}));
    let stop = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(checkpoint::META_FILE),
        b"{\"format\": 1, \"epo",
    )
    .unwrap();
    let err = run(&cfg, &data, Some(dir.path()), &stop, &mut Recorder::new()).unwrap_err();
    assert_eq!(err.code(), "checkpoint");
    assert!(err.to_string().contains(checkpoint::META_FILE), "{err}");

    // A valid checkpoint whose tensor file is missing.
    let good = tempfile::tempdir().unwrap();
    run(&cfg, &data, Some(good.path()), &stop, &mut Recorder::new()).unwrap();
    let meta = checkpoint::read_meta(good.path()).unwrap().unwrap();
    std::fs::remove_file(good.path().join(&meta.tensors_file)).unwrap();
    let mut longer = cfg.clone();
    longer.epochs = 2;
    let err = run(
        &longer,
        &data,
        Some(good.path()),
        &stop,
        &mut Recorder::new(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "checkpoint");
}

#[test]
fn the_cli_writes_metrics_steps_and_weights_and_resumes_in_its_out_dir() {
    use lrlab::cli::train::{run_train, TrainArgs};
    let data_dir = tempfile::tempdir().unwrap();
    synthetic::write_dataset(data_dir.path(), 64, 32, 1, true).unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = |epochs| TrainArgs {
        schedule: r#"{"kind":"constant","lr":0.1}"#.to_string(),
        epochs,
        batch_size: 32,
        unit: ScheduleUnit::Step,
        momentum: 0.5,
        nesterov: false,
        weight_decay: 0.0,
        seed: 0,
        train_limit: Some(48),
        test_limit: None,
        device: DeviceSpec::Cpu,
        data_dir: Some(data_dir.path().to_path_buf()),
        no_download: true,
        out: out.path().to_path_buf(),
        restart: false,
    };
    run_train(args(1)).unwrap();
    run_train(args(2)).unwrap();
    let metrics = std::fs::read_to_string(out.path().join("metrics.csv")).unwrap();
    let rows: Vec<&str> = metrics.lines().collect();
    assert_eq!(rows.len(), 3, "{metrics}");
    // One metrics CSV writer for the CLI and the API: the same columns.
    assert_eq!(rows[0], EpochMetrics::CSV_HEADER);
    let lr_column = |row: &str| row.split(',').nth(5).map(str::to_string);
    assert!(rows[1].starts_with("1,") && rows[2].starts_with("2,"));
    assert_eq!(lr_column(rows[1]).as_deref(), Some("0.1"));
    assert_eq!(lr_column(rows[2]).as_deref(), Some("0.1"));
    let steps = std::fs::read_to_string(out.path().join("steps.csv")).unwrap();
    let steps: Vec<&str> = steps.lines().collect();
    assert_eq!(steps.len(), 1 + 4, "48 examples / 32 → 2 updates per epoch");
    assert!(steps[4].starts_with("2,3,0.1,"));
    assert!(out.path().join(checkpoint::WEIGHTS_FILE).exists());
    assert_eq!(
        checkpoint::read_meta(out.path()).unwrap().map(|m| m.epoch),
        Some(2)
    );

    let mut bad = args(1);
    bad.schedule = r#"{"kind":"constant"}"#.to_string();
    assert!(run_train(bad).is_err());
    if cfg!(not(feature = "cuda")) {
        let mut bad = args(1);
        bad.device = DeviceSpec::Cuda(0);
        assert!(run_train(bad).is_err());
    }
}

/// The real Fashion-MNIST through `lrlab train`: two epochs on its first 12,000 images learn
/// (test accuracy 0.79–0.80 on the whole test set over seeds 0–2; chance is 0.1) and leave
/// the metrics, the per-update records and the weights in `--out`. Skipped with a note
/// where the data set is not installed, except in CI (`CI` set), which installs it.
#[test]
fn real_data_two_short_epochs_through_the_cli_learn_and_write_their_files() {
    use lrlab::cli::train::{run_train, TrainArgs};
    let Some(dir) = crate::support::real_fashion_mnist("the real-data CLI run") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    run_train(TrainArgs {
        schedule: r#"{"kind":"constant","lr":0.05}"#.to_string(),
        epochs: 2,
        batch_size: 128,
        unit: ScheduleUnit::Epoch,
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.0,
        seed: 0,
        train_limit: Some(12_000),
        test_limit: None,
        device: DeviceSpec::Cpu,
        data_dir: Some(dir),
        no_download: true,
        out: out.path().to_path_buf(),
        restart: false,
    })
    .unwrap();

    let metrics = std::fs::read_to_string(out.path().join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    assert_eq!(lines.next(), Some(EpochMetrics::CSV_HEADER));
    let rows: Vec<Vec<f64>> = lines
        .map(|line| line.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{metrics}");
    // epoch,train_loss,train_acc,test_loss,test_acc,lr,…
    assert_eq!((rows[0][0], rows[1][0]), (1.0, 2.0));
    assert!(
        rows[1][1] < rows[0][1],
        "the training loss should fall:\n{metrics}"
    );
    assert!(
        rows[1][4] > 0.7,
        "it should learn (chance is 0.1):\n{metrics}"
    );
    assert!(rows.iter().all(|row| row[5] == 0.05));

    let steps = std::fs::read_to_string(out.path().join("steps.csv")).unwrap();
    let steps: Vec<&str> = steps.lines().collect();
    assert_eq!(steps[0], StepRecord::CSV_HEADER);
    let per_epoch = 12_000usize.div_ceil(128);
    assert_eq!(steps.len(), 1 + 2 * per_epoch);
    assert!(steps[steps.len() - 1].starts_with(&format!("2,{},0.05,", 2 * per_epoch - 1)));

    // The weights are a safetensors file holding the LeNet's layers.
    let weights = std::fs::read(out.path().join(checkpoint::WEIGHTS_FILE)).unwrap();
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + header_len]).unwrap();
    let names: Vec<&String> = header.as_object().unwrap().keys().collect();
    for layer in ["conv1", "conv2", "fc1", "fc2", "fc3"] {
        assert!(
            names.iter().any(|name| name.contains(layer)),
            "{layer} missing: {names:?}"
        );
    }
}
