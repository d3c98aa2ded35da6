//! A member trained in a group is the same run as trained alone: metrics, per-update records,
//! progress, checkpoints and weights, whoever else is in the group and whoever leaves it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;
use serde_json::json;

use super::*;
use crate::data::{synthetic, Dataset, Limits};
use crate::schedule::ScheduleSpec;
use crate::train::trainer::tests::defer_reads_on_the_cpu;
use crate::train::{
    checkpoint, ops, train, EpochMetrics, EpochReport, OptimizerSpec, Progress, RunSpec,
    ScheduleUnit, TrainConfig, TrainObserver,
};

/// Records a run's reports; optionally raises a stop flag once an epoch is stored.
#[derive(Default)]
struct Recorder<'s> {
    reports: Vec<EpochReport>,
    progress: Vec<Progress>,
    stop_after: Option<(u32, &'s AtomicBool)>,
}

impl TrainObserver for Recorder<'_> {
    fn on_progress(&mut self, p: &Progress) {
        self.progress.push(p.clone());
    }

    fn on_epoch(
        &mut self,
        report: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.reports.push(report.clone());
        if let Some((epoch, stop)) = self.stop_after {
            if report.metrics.epoch == epoch {
                stop.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// 300 training examples in batches of 32 (the last one partial), 100 test examples.
fn data() -> (tempfile::TempDir, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_dataset(dir.path(), 300, 100, 7, false).unwrap();
    let data = Dataset::load(dir.path(), Limits::default(), &Device::Cpu).unwrap();
    (dir, data)
}

fn plan(schedule: serde_json::Value, unit: ScheduleUnit, optimizer: OptimizerSpec) -> TrainPlan {
    TrainPlan::new(TrainConfig {
        epochs: 2,
        batch_size: 32,
        schedule: ScheduleSpec::from_json(&schedule).unwrap(),
        unit,
        optimizer,
        seed: 5,
    })
    .unwrap()
}

fn momentum(momentum: f64, nesterov: bool, weight_decay: f64) -> OptimizerSpec {
    OptimizerSpec {
        momentum,
        nesterov,
        weight_decay,
        ..OptimizerSpec::default()
    }
}

/// Three members that differ in everything a group lets them differ in: rates, schedule unit,
/// an adaptive schedule, momentum, Nesterov, weight decay.
fn three_plans() -> Vec<TrainPlan> {
    vec![
        plan(
            json!({"kind": "constant", "lr": 0.1}),
            ScheduleUnit::Epoch,
            momentum(0.9, false, 0.0),
        ),
        plan(
            json!({"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20}),
            ScheduleUnit::Step,
            OptimizerSpec::default(),
        ),
        plan(
            json!({"kind": "reduce_on_plateau", "lr": 0.05, "factor": 0.5, "patience": 0,
                   "monitor": "train_loss"}),
            ScheduleUnit::Epoch,
            momentum(0.5, true, 1e-3),
        ),
    ]
}

/// One member's setup: its checkpoint directory and pause point, and when its observer
/// raises its stop flag.
#[derive(Clone, Copy, Default)]
struct Setup<'a> {
    dir: Option<&'a Path>,
    until: Option<u32>,
    stop_after: Option<u32>,
}

fn solo(plan: &TrainPlan, data: &Dataset, setup: Setup<'_>) -> (MemberOutcome, Recorder<'static>) {
    let stop = AtomicBool::new(false);
    let mut recorder = Recorder::default();
    let outcome = train(
        RunSpec {
            plan,
            data,
            device: &Device::Cpu,
            checkpoint_dir: setup.dir,
            stop: &stop,
            until_epoch: setup.until,
        },
        &mut recorder,
    );
    (outcome, recorder)
}

/// A group member's outcome, epoch reports and progress snapshots.
type Trained = (MemberOutcome, Vec<EpochReport>, Vec<Progress>);

fn group(
    plans: &[TrainPlan],
    data: &Dataset,
    setups: &[Setup<'_>],
) -> Result<Vec<Trained>, GroupError> {
    let stops: Vec<AtomicBool> = plans.iter().map(|_| AtomicBool::new(false)).collect();
    let mut recorders: Vec<Recorder<'_>> = setups
        .iter()
        .zip(&stops)
        .map(|(setup, stop)| Recorder {
            stop_after: setup.stop_after.map(|epoch| (epoch, stop)),
            ..Recorder::default()
        })
        .collect();
    let members = plans
        .iter()
        .zip(setups)
        .zip(&stops)
        .zip(&mut recorders)
        .map(|(((plan, setup), stop), recorder)| MemberRun {
            plan,
            checkpoint_dir: setup.dir,
            stop,
            until_epoch: setup.until,
            observer: recorder,
        })
        .collect();
    let outcomes = train_group(GroupSpec {
        members,
        data,
        device: &Device::Cpu,
    })?;
    Ok(outcomes
        .into_iter()
        .zip(recorders)
        .map(|(outcome, r)| (outcome, r.reports, r.progress))
        .collect())
}

fn timeless(m: &EpochMetrics) -> EpochMetrics {
    EpochMetrics {
        seconds: 0.0,
        eval_seconds: 0.0,
        examples_per_sec: 0.0,
        ..m.clone()
    }
}

/// Everything but the timings, every value exact.
fn assert_same_reports(what: &str, a: &[EpochReport], b: &[EpochReport]) {
    assert_eq!(a.len(), b.len(), "{what}: epochs");
    for (a, b) in a.iter().zip(b) {
        assert_eq!(timeless(&a.metrics), timeless(&b.metrics), "{what}");
        assert_eq!(a.steps, b.steps, "{what}: per-update records");
    }
}

/// Every tensor of a safetensors file, by name, as values (so `-0.0 == 0.0`).
fn tensors(path: &Path) -> BTreeMap<String, Vec<f32>> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// The weights file and the latest checkpoint's tensors (weights and momentum) of a run.
fn saved(dir: &Path) -> (BTreeMap<String, Vec<f32>>, BTreeMap<String, Vec<f32>>) {
    let meta = checkpoint::read_meta(dir).unwrap().unwrap();
    (
        tensors(&checkpoint::weights_path(dir)),
        tensors(&dir.join(meta.tensors_file)),
    )
}

#[test]
fn members_of_a_group_of_three_match_their_single_runs_bit_for_bit() {
    let (_d, data) = data();
    let plans = three_plans();
    let dirs: Vec<tempfile::TempDir> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let setups: Vec<Setup<'_>> = dirs[..3]
        .iter()
        .map(|d| Setup {
            dir: Some(d.path()),
            ..Setup::default()
        })
        .collect();
    let grouped = group(&plans, &data, &setups).unwrap();
    for (m, ((outcome, reports, progress), plan)) in grouped.iter().zip(&plans).enumerate() {
        let (alone, recorder) = solo(
            plan,
            &data,
            Setup {
                dir: Some(dirs[3 + m].path()),
                ..Setup::default()
            },
        );
        let (outcome, alone) = (outcome.as_ref().unwrap(), alone.unwrap());
        let what = format!("member {m}");
        assert_eq!(outcome.epochs_done, 2, "{what}");
        assert_eq!(reports.len(), 2, "{what}");
        assert_eq!(reports[0].steps.len(), 10, "{what}");
        assert_same_reports(&what, reports, &recorder.reports);
        let (timeless_epochs, timeless_alone): (Vec<_>, Vec<_>) = (
            outcome.epochs.iter().map(timeless).collect(),
            alone.epochs.iter().map(timeless).collect(),
        );
        assert_eq!(timeless_epochs, timeless_alone, "{what}: summary");
        // The weights, momentum buffers and scheduler state on disk are the single run's.
        assert_eq!(
            saved(setups[m].dir.unwrap()),
            saved(dirs[3 + m].path()),
            "{what}: files"
        );
        let meta = |dir: &Path| {
            let meta = checkpoint::read_meta(dir).unwrap().unwrap();
            (
                meta.epoch,
                meta.global_step,
                meta.scheduler,
                meta.fingerprint,
            )
        };
        assert_eq!(meta(setups[m].dir.unwrap()), meta(dirs[3 + m].path()));
        // Each epoch's last progress shows its last update's loss, as in a single run.
        let ends: Vec<f64> = progress
            .iter()
            .filter(|p| p.step_in_epoch == p.steps_per_epoch)
            .map(|p| p.batch_loss)
            .collect();
        let last: Vec<f64> = reports
            .iter()
            .map(|r| r.steps.last().unwrap().loss)
            .collect();
        assert_eq!(ends, last, "{what}: progress");
    }
    // The members really differ, and learned: the comparison is not between copies.
    let test_loss = |m: usize| grouped[m].1[1].metrics.test_loss;
    assert!(test_loss(0) != test_loss(1) && test_loss(1) != test_loss(2));
    for (_, reports, _) in &grouped {
        assert!(reports[1].metrics.train_loss < reports[0].metrics.train_loss);
    }
}

#[test]
fn deferred_reads_as_on_a_gpu_give_the_same_members() {
    let (_d, data) = data();
    let plans = three_plans();
    let setups = [Setup::default(); 3];
    let now = group(&plans, &data, &setups).unwrap();
    let deferred = defer_reads_on_the_cpu(|| group(&plans, &data, &setups)).unwrap();
    for (m, (a, b)) in now.iter().zip(&deferred).enumerate() {
        assert_same_reports(&format!("member {m}"), &a.1, &b.1);
    }
}

#[test]
fn a_stopped_member_leaves_the_group_and_the_others_are_unchanged() {
    let (_d, data) = data();
    let plans = three_plans();
    let mut setups = [Setup::default(); 3];
    setups[1].stop_after = Some(1);
    let grouped = group(&plans, &data, &setups).unwrap();
    let (stopped, reports, _) = &grouped[1];
    assert!(
        matches!(stopped, Err(TrainError::Stopped { epoch: 2 })),
        "{stopped:?}"
    );
    let (_, alone) = solo(&plans[1], &data, Setup::default());
    assert_same_reports("the stopped member", reports, &alone.reports[..1]);
    for m in [0, 2] {
        let (outcome, reports, _) = &grouped[m];
        assert_eq!(outcome.as_ref().unwrap().epochs_done, 2);
        let (_, alone) = solo(&plans[m], &data, Setup::default());
        assert_same_reports(&format!("member {m}"), reports, &alone.reports);
    }
}

#[test]
fn a_diverging_member_fails_alone_at_its_single_runs_step() {
    let (_d, data) = data();
    let mut plans = three_plans();
    plans[0] = plan(
        json!({"kind": "constant", "lr": 1e6}),
        ScheduleUnit::Epoch,
        OptimizerSpec::default(),
    );
    let grouped = group(&plans, &data, &[Setup::default(); 3]).unwrap();
    let (alone, _) = solo(&plans[0], &data, Setup::default());
    match (&grouped[0].0, &alone) {
        (
            Err(TrainError::Diverged { epoch, step, loss }),
            Err(TrainError::Diverged {
                epoch: e,
                step: s,
                loss: l,
            }),
        ) => assert_eq!((epoch, step, loss.to_bits()), (e, s, l.to_bits())),
        other => panic!("both must diverge: {other:?}"),
    }
    for m in [1, 2] {
        let (_, alone) = solo(&plans[m], &data, Setup::default());
        assert_same_reports(&format!("member {m}"), &grouped[m].1, &alone.reports);
    }
}

#[test]
fn members_pause_at_their_own_epochs() {
    let (_d, data) = data();
    let plans = three_plans();
    let mut setups = [Setup::default(); 3];
    setups[2].until = Some(1);
    let grouped = group(&plans, &data, &setups).unwrap();
    let epochs: Vec<u32> = grouped
        .iter()
        .map(|(outcome, _, _)| outcome.as_ref().unwrap().epochs_done)
        .collect();
    assert_eq!(epochs, [2, 2, 1]);
    let (_, alone) = solo(&plans[0], &data, Setup::default());
    assert_same_reports("member 0", &grouped[0].1, &alone.reports);
}

#[test]
fn an_interrupted_group_resumes_every_member_from_its_own_checkpoint() {
    let (_d, data) = data();
    let plans = three_plans();
    let dirs: Vec<tempfile::TempDir> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    fn setup(d: &tempfile::TempDir) -> Setup<'_> {
        Setup {
            dir: Some(d.path()),
            ..Setup::default()
        }
    }
    let uninterrupted = group(
        &plans,
        &data,
        &dirs[..3].iter().map(setup).collect::<Vec<_>>(),
    )
    .unwrap();
    // Every member is stopped once its first epoch is stored, as a shutdown would.
    let interrupted: Vec<Setup<'_>> = dirs[3..]
        .iter()
        .map(|d| Setup {
            stop_after: Some(1),
            ..setup(d)
        })
        .collect();
    let first = group(&plans, &data, &interrupted).unwrap();
    for (outcome, reports, _) in &first {
        assert!(matches!(outcome, Err(TrainError::Stopped { epoch: 2 })));
        assert_eq!(reports.len(), 1);
    }
    let resumed = group(
        &plans,
        &data,
        &dirs[3..].iter().map(setup).collect::<Vec<_>>(),
    )
    .unwrap();
    for (m, (resumed, whole)) in resumed.iter().zip(&uninterrupted).enumerate() {
        let what = format!("member {m}");
        let summary = resumed.0.as_ref().unwrap();
        assert_eq!(summary.resumed_from_epoch, Some(1), "{what}");
        assert_eq!(summary.epochs_done, 2, "{what}");
        assert_same_reports(&what, &resumed.1, &whole.1[1..]);
        assert_eq!(saved(dirs[3 + m].path()), saved(dirs[m].path()), "{what}");
    }
}

#[test]
fn a_member_resumes_alone_from_its_group_checkpoint() {
    let (_d, data) = data();
    let plans = three_plans();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let setups: Vec<Setup<'_>> = dirs
        .iter()
        .map(|d| Setup {
            dir: Some(d.path()),
            until: Some(1),
            ..Setup::default()
        })
        .collect();
    group(&plans, &data, &setups).unwrap();
    let (resumed, recorder) = solo(
        &plans[2],
        &data,
        Setup {
            dir: Some(dirs[2].path()),
            ..Setup::default()
        },
    );
    assert_eq!(resumed.unwrap().resumed_from_epoch, Some(1));
    let (_, whole) = solo(&plans[2], &data, Setup::default());
    assert_same_reports("member 2", &recorder.reports, &whole.reports[1..]);
}

#[test]
fn groups_refuse_members_that_cannot_share_their_batches() {
    let (_d, data) = data();
    let base = three_plans();
    let with = |change: fn(&mut TrainConfig)| {
        let mut config = base[1].config().clone();
        change(&mut config);
        vec![base[0].clone(), TrainPlan::new(config).unwrap()]
    };
    let setups = [Setup::default(); 2];
    for (plans, field) in [
        (with(|c| c.seed = 6), "seed"),
        (with(|c| c.batch_size = 64), "batch size"),
    ] {
        match group(&plans, &data, &setups) {
            Err(GroupError::Incompatible { member: 1, reason }) => {
                assert!(reason.contains(field), "{reason}");
            }
            other => panic!("{field}: {:?}", other.map(|_| ())),
        }
    }
    assert!(matches!(group(&[], &data, &[]), Err(GroupError::Empty)));
    // Different epochs and pause points are fine: members leave when they are done.
    let longer = with(|c| c.epochs = 3);
    let grouped = group(&longer, &data, &setups).unwrap();
    assert_eq!(grouped[0].1.len(), 2);
    assert_eq!(grouped[1].1.len(), 3);
}

#[test]
fn members_must_resume_from_the_same_epoch_unless_they_are_done() {
    let (_d, data) = data();
    let plans = three_plans();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Member 0 has one epoch behind it, member 1 two (all of its plan), member 2 none.
    for (m, until) in [(0, 1), (1, 2)] {
        let setup = Setup {
            dir: Some(dirs[m].path()),
            until: Some(until),
            ..Setup::default()
        };
        solo(&plans[m], &data, setup).0.unwrap();
    }
    let setups: Vec<Setup<'_>> = dirs
        .iter()
        .map(|d| Setup {
            dir: Some(d.path()),
            ..Setup::default()
        })
        .collect();
    match group(&plans, &data, &setups) {
        Err(GroupError::EpochsDiffer { epochs }) => assert_eq!(epochs, [1, 0]),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Without member 2 they can group: member 1 has nothing left and finishes at once.
    let grouped = group(&plans[..2], &data, &setups[..2]).unwrap();
    let done = grouped[1].0.as_ref().unwrap();
    assert!(done.epochs.is_empty() && done.epochs_done == 2);
    assert_eq!(grouped[0].0.as_ref().unwrap().resumed_from_epoch, Some(1));
    let (_, whole) = solo(&plans[0], &data, Setup::default());
    assert_same_reports("member 0", &grouped[0].1, &whole.reports[1..]);
}

/// The grouped candle path (what GPUs run) against single runs on the reference path, which
/// is what a GPU runs for a single job.
#[test]
fn the_grouped_candle_path_matches_single_reference_runs() {
    let (_d, data) = data();
    let plans = three_plans();
    let setups = [Setup::default(); 3];
    let grouped = ops::with_reference_ops(|| group(&plans, &data, &setups)).unwrap();
    let fast = group(&plans, &data, &setups).unwrap();
    for (m, plan) in plans.iter().enumerate() {
        let (_, alone) = ops::with_reference_ops(|| solo(plan, &data, Setup::default()));
        let (group_reports, alone_reports) = (&grouped[m].1, &alone.reports);
        assert_eq!(group_reports.len(), 2);
        // The switch took effect: the reference path rounds differently from the kernels.
        let losses = |reports: &[EpochReport]| -> Vec<(f64, f64)> {
            reports
                .iter()
                .map(|r| (r.metrics.train_loss, r.metrics.test_loss))
                .collect()
        };
        assert_ne!(
            losses(group_reports),
            losses(&fast[m].1),
            "member {m}: the grouped path was not taken"
        );
        // Candle runs a grouped convolution group by group and a batched product item by
        // item, with the single run's arithmetic: the members match their single runs on the
        // reference path exactly, as on the fast path.
        assert_same_reports(&format!("member {m}"), group_reports, alone_reports);
    }
}
