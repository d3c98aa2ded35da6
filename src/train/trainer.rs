//! The training loop: epochs of shuffled mini-batches, scheduled rates, evaluation,
//! checkpoints and resume.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};

use crate::data::{epoch_permutation, Dataset};
use crate::schedule::{Monitor, Scheduler};

use super::checkpoint::{self, CheckpointMeta, MOMENTUM_PREFIX};
use super::model::{LeNet, PARAM_NAMES};
use super::optim::Sgd;
use super::{
    ops, CheckpointError, EpochMetrics, EpochReport, Progress, RunSummary, ScheduleUnit,
    StepRecord, TrainConfig, TrainError, TrainObserver, TrainPlan,
};

/// Test-set evaluation batch: large, since no activations are kept for a backward pass.
pub const EVAL_BATCH: usize = 2048;
/// Minimum time between two progress callbacks.
pub(super) const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// One training call's inputs.
pub struct RunSpec<'a> {
    /// What to train, checked by [`TrainPlan::new`].
    pub plan: &'a TrainPlan,
    /// The data, already on `device`.
    pub data: &'a Dataset,
    /// Where to train.
    pub device: &'a Device,
    /// Where checkpoints and final weights go; `None` trains without saving anything.
    pub checkpoint_dir: Option<&'a Path>,
    /// Raised by anyone to stop the run at the next batch boundary.
    pub stop: &'a AtomicBool,
    /// Stop (successfully, checkpointed) once this many epochs are done, before the plan's
    /// last one: a sweep member pausing at an early-stopping rung.
    pub until_epoch: Option<u32>,
}

/// Trains the LeNet as `run.plan` says, reporting to `observer`.
///
/// With a checkpoint directory: resumes after the last completed epoch if the directory holds a
/// checkpoint of the same run ([`checkpoint::fingerprint`]), else starts fresh; writes a
/// checkpoint after every epoch (after [`TrainObserver::on_epoch`]) and `weights.safetensors`
/// at the end.
pub fn train(run: RunSpec<'_>, observer: &mut dyn TrainObserver) -> Result<RunSummary, TrainError> {
    let config = run.plan.config();
    check_data(run.data)?;
    let mut state = TrainState::new(run.plan, run.device)?;
    let fingerprint = fingerprint_of(config, run.data)?;
    let mut resumed_from_epoch = None;
    if let Some(dir) = run.checkpoint_dir {
        if let Some(epoch) = state.resume(dir, &fingerprint, config.epochs, run.device)? {
            tracing::info!(epoch, dir = %dir.display(), "resuming from checkpoint");
            resumed_from_epoch = Some(epoch);
        }
    }

    let mut summary_epochs = Vec::new();
    let last = last_epoch(config, run.until_epoch);
    while state.epochs_done < last {
        let report = run_epoch(&run, &mut state, observer)?;
        state.complete_epoch(&report, observer, run.checkpoint_dir, &fingerprint, config)?;
        summary_epochs.push(report.metrics);
    }

    let final_weights = save_final_weights(&state.model, run.checkpoint_dir)?;
    Ok(RunSummary {
        epochs: summary_epochs,
        resumed_from_epoch,
        final_weights,
        epochs_done: state.epochs_done,
    })
}

/// A run needs training and test examples.
pub(super) fn check_data(data: &Dataset) -> Result<(), TrainError> {
    let (train_len, test_len) = (data.train_len(), data.test_len());
    if train_len == 0 || test_len == 0 {
        return Err(TrainError::InvalidConfig(format!(
            "the data set needs training and test examples (got {train_len} and {test_len})"
        )));
    }
    Ok(())
}

/// The checkpoint fingerprint of a run of `config` on `data` ([`checkpoint::fingerprint`]).
pub(super) fn fingerprint_of(config: &TrainConfig, data: &Dataset) -> Result<String, TrainError> {
    checkpoint::fingerprint(config, data.train_len(), data.test_len())
        .map_err(|e| TrainError::InvalidConfig(format!("the configuration cannot be encoded: {e}")))
}

/// The number of epochs done when a run stops: the plan's, or its pause point if earlier.
pub(super) fn last_epoch(config: &TrainConfig, until_epoch: Option<u32>) -> u32 {
    until_epoch.map_or(config.epochs, |until| until.min(config.epochs))
}

/// Writes the final weights file into `dir`, if there is one, and returns its path.
pub(super) fn save_final_weights(
    model: &LeNet,
    dir: Option<&Path>,
) -> Result<Option<PathBuf>, TrainError> {
    match dir {
        Some(dir) => {
            let path = checkpoint::weights_path(dir);
            checkpoint::save_weights(&path, &model.named_tensors())?;
            Ok(Some(path))
        }
        None => Ok(None),
    }
}

/// Everything a checkpoint must restore for a resumed run to match an uninterrupted one
/// (the example order is a function of (seed, epoch) and needs no state).
pub(super) struct TrainState {
    pub(super) model: LeNet,
    pub(super) sgd: Sgd,
    pub(super) scheduler: Scheduler,
    pub(super) epochs_done: u32,
    pub(super) global_step: u64,
}

impl TrainState {
    /// The state before the first update: the seed's initial weights, no momentum yet.
    pub(super) fn new(plan: &TrainPlan, device: &Device) -> Result<TrainState, TrainError> {
        let config = plan.config();
        Ok(TrainState {
            model: LeNet::new(config.seed, DType::F32, device)?,
            sgd: Sgd::new(config.optimizer, PARAM_NAMES.len()),
            scheduler: Scheduler::new(plan.schedule().clone()),
            epochs_done: 0,
            global_step: 0,
        })
    }

    /// The learning rate of the next update of epoch `epoch_index` (0-based), checked.
    pub(super) fn next_lr(&self, unit: ScheduleUnit, epoch_index: u32) -> Result<f64, TrainError> {
        let t = match unit {
            ScheduleUnit::Epoch => u64::from(epoch_index),
            ScheduleUnit::Step => self.global_step,
        };
        let lr = self.scheduler.lr(t);
        if !lr.is_finite() || lr < 0.0 {
            return Err(TrainError::InvalidConfig(format!(
                "the schedule gave learning rate {lr} at t = {t}"
            )));
        }
        Ok(lr)
    }

    /// Ends an epoch whose report is in: the observer sees it, an adaptive schedule is fed
    /// its metric, and with a checkpoint directory the checkpoint and the latest weights are
    /// written (in that order, so a crash in between redoes the epoch).
    pub(super) fn complete_epoch(
        &mut self,
        report: &EpochReport,
        observer: &mut dyn TrainObserver,
        checkpoint_dir: Option<&Path>,
        fingerprint: &str,
        config: &TrainConfig,
    ) -> Result<(), TrainError> {
        observer.on_epoch(report).map_err(TrainError::Observer)?;
        if let Some(monitor) = self.scheduler.monitor() {
            let m = &report.metrics;
            self.scheduler.observe(match monitor {
                Monitor::TestLoss => m.test_loss,
                Monitor::TrainLoss => m.train_loss,
                Monitor::TestAcc => m.test_acc,
            });
        }
        self.epochs_done += 1;
        if let Some(dir) = checkpoint_dir {
            self.save(dir, fingerprint, config)?;
            // The latest weights on their own, so a running job's weights can be
            // downloaded without its optimizer state.
            checkpoint::save_weights(&checkpoint::weights_path(dir), &self.model.named_tensors())?;
        }
        Ok(())
    }

    /// Loads the checkpoint in `dir` if it belongs to this run; returns its epoch.
    pub(super) fn resume(
        &mut self,
        dir: &Path,
        fingerprint: &str,
        epochs: u32,
        device: &Device,
    ) -> Result<Option<u32>, TrainError> {
        let Some(meta) = checkpoint::read_meta(dir)? else {
            return Ok(None);
        };
        if meta.fingerprint != fingerprint || meta.epoch > epochs {
            tracing::warn!(
                dir = %dir.display(),
                checkpoint_epoch = meta.epoch,
                "ignoring a checkpoint of a different run; starting fresh"
            );
            return Ok(None);
        }
        let Some(ckpt) = checkpoint::load(dir, device)? else {
            return Ok(None);
        };
        let bad = |msg: String| {
            TrainError::checkpoint(
                dir.join(&ckpt.meta.tensors_file),
                CheckpointError::Format(msg),
            )
        };
        self.model.load_tensors(&ckpt.tensors).map_err(bad)?;
        let buffers = PARAM_NAMES
            .iter()
            .zip(self.model.vars())
            .map(
                |(name, var)| match ckpt.tensors.get(&format!("{MOMENTUM_PREFIX}{name}")) {
                    Some(t) if t.dims() == var.dims() => Ok(Some(t.to_dtype(var.dtype())?)),
                    Some(t) => Err(bad(format!("momentum of {name} has shape {:?}", t.dims()))),
                    None => Ok(None),
                },
            )
            .collect::<Result<Vec<_>, TrainError>>()?;
        self.sgd.restore_buffers(buffers).map_err(bad)?;
        self.scheduler.restore(ckpt.meta.scheduler.clone());
        self.epochs_done = ckpt.meta.epoch;
        self.global_step = ckpt.meta.global_step;
        Ok(Some(ckpt.meta.epoch))
    }

    fn save(&self, dir: &Path, fingerprint: &str, config: &TrainConfig) -> Result<(), TrainError> {
        let mut tensors: HashMap<String, Tensor> = self.model.named_tensors();
        for (name, buf) in PARAM_NAMES.iter().zip(self.sgd.buffers()) {
            if let Some(buf) = buf {
                tensors.insert(format!("{MOMENTUM_PREFIX}{name}"), buf.clone());
            }
        }
        let meta = CheckpointMeta {
            format: checkpoint::FORMAT,
            epoch: self.epochs_done,
            global_step: self.global_step,
            scheduler: self.scheduler.state(),
            fingerprint: fingerprint.to_string(),
            tensors_file: checkpoint::tensors_file_name(self.epochs_done),
            config: config.clone(),
        };
        checkpoint::save(dir, &meta, &tensors)
    }
}

/// Running sums of an epoch, in f64 on the host, fed one update at a time in update order.
#[derive(Default)]
pub(super) struct EpochSums {
    loss: f64,
    correct: f64,
    last_loss: f64,
    records: Vec<StepRecord>,
}

impl EpochSums {
    /// Adds one update's read-back loss and correct count; a loss that is not finite ends
    /// the run as [`TrainError::Diverged`].
    fn add(
        &mut self,
        epoch: u32,
        update: Update,
        loss: f32,
        correct: f32,
    ) -> Result<(), TrainError> {
        let Update { step, lr, batch } = update;
        let loss = f64::from(loss);
        if !loss.is_finite() {
            return Err(TrainError::Diverged { epoch, step, loss });
        }
        self.loss += loss * batch as f64;
        self.correct += f64::from(correct);
        self.last_loss = loss;
        self.records.push(StepRecord { step, lr, loss });
        Ok(())
    }
}

/// What the host knows about an update before its loss is read back.
#[derive(Clone, Copy)]
pub(super) struct Update {
    /// Global 0-based index.
    pub(super) step: u64,
    pub(super) lr: f64,
    /// Examples in the batch.
    pub(super) batch: usize,
}

/// Collects an epoch's per-update losses and correct counts, and decides when the host reads
/// them.
///
/// A read makes the host wait until the device has finished all queued work. On the CPU that
/// is free (the work is done when the op returns), so each update's values are read at once,
/// exactly as they always were, and a diverging run stops at its first non-finite loss. On any
/// other device each update's loss and correct count are copied, on the device, into two
/// buffers with one slot per update, and the host reads them in one transfer after the epoch's
/// last update: the device is never stalled inside an epoch (bar the progress peeks, below).
/// That read feeds the same f64 sums and per-update records as on the CPU, in the same order,
/// and finds a divergence there, reported with the first non-finite update's step and loss,
/// exactly as on the CPU; the updates after it ran on broken weights, which costs at most one
/// epoch of device time.
///
/// Progress callbacks show the latest loss read back. On a device that is a peek at the
/// current update's loss when a callback is due (at most [`PROGRESS_INTERVAL`] apart, so at
/// most four short stalls a second); a peek that finds a non-finite loss reads the buffers at
/// once, so a diverged run stops within a progress interval instead of at the epoch's end.
pub(super) struct EpochTally {
    epoch: u32,
    sums: EpochSums,
    /// `None` on the CPU.
    device: Option<DeviceBuffers>,
}

/// Device-side slots of an epoch's updates, and the host-side facts of those not read yet.
struct DeviceBuffers {
    /// (updates in the epoch,) f32 batch losses.
    losses: Tensor,
    /// (updates in the epoch,) f32 correct counts.
    correct: Tensor,
    /// Slot of the first update not read back yet.
    first_unread: usize,
    /// The updates from `first_unread` on, in order.
    unread: Vec<Update>,
}

impl EpochTally {
    pub(super) fn new(
        epoch: u32,
        device: &Device,
        updates: usize,
    ) -> Result<EpochTally, TrainError> {
        let device = if defer_reads(device) {
            Some(DeviceBuffers {
                losses: Tensor::zeros(updates, DType::F32, device)?,
                correct: Tensor::zeros(updates, DType::F32, device)?,
                first_unread: 0,
                unread: Vec::new(),
            })
        } else {
            None
        };
        Ok(EpochTally {
            epoch,
            sums: EpochSums {
                records: Vec::with_capacity(updates),
                last_loss: f64::NAN,
                ..EpochSums::default()
            },
            device,
        })
    }

    /// Records an update's batch loss and correct count (scalar f32 tensors).
    pub(super) fn record(
        &mut self,
        update: Update,
        loss: &Tensor,
        correct: &Tensor,
    ) -> Result<(), TrainError> {
        match &mut self.device {
            None => self.sums.add(
                self.epoch,
                update,
                loss.to_scalar::<f32>()?,
                correct.to_scalar::<f32>()?,
            ),
            Some(buf) => {
                let slot = buf.first_unread + buf.unread.len();
                buf.losses.slice_set(&loss.reshape(1)?, 0, slot)?;
                buf.correct.slice_set(&correct.reshape(1)?, 0, slot)?;
                buf.unread.push(update);
                Ok(())
            }
        }
    }

    /// Reads back every update recorded on the device and not read yet, in one transfer.
    pub(super) fn read_back(&mut self) -> Result<(), TrainError> {
        let Some(buf) = &mut self.device else {
            return Ok(());
        };
        let (from, len) = (buf.first_unread, buf.unread.len());
        if len == 0 {
            return Ok(());
        }
        let both = Tensor::stack(
            &[
                buf.losses.narrow(0, from, len)?,
                buf.correct.narrow(0, from, len)?,
            ],
            0,
        )?;
        // (2, len): losses, then correct counts.
        let values: Vec<f32> = both.flatten_all()?.to_vec1()?;
        let (losses, correct) = values.split_at(len);
        buf.first_unread += len;
        let unread = std::mem::take(&mut buf.unread);
        for ((update, &loss), &correct) in unread.into_iter().zip(losses).zip(correct) {
            self.sums.add(self.epoch, update, loss, correct)?;
        }
        Ok(())
    }

    /// The epoch's report once every update is read back: the training figures over its `n`
    /// examples, the rates `lrs` applied, its timings and its test metrics; a value that is
    /// not finite is a divergence ([`check_finite`]).
    pub(super) fn report(
        self,
        n: usize,
        lrs: LrRange,
        seconds: f64,
        (test_loss, test_acc): (f64, f64),
        eval_seconds: f64,
    ) -> Result<EpochReport, TrainError> {
        let sums = self.sums;
        let metrics = EpochMetrics {
            epoch: self.epoch,
            train_loss: sums.loss / n as f64,
            train_acc: sums.correct / n as f64,
            test_loss,
            test_acc,
            lr: lrs.first,
            lr_min: lrs.min,
            lr_max: lrs.max,
            seconds,
            eval_seconds,
            examples_per_sec: n as f64 / seconds.max(1e-9),
        };
        check_finite(&metrics)?;
        Ok(EpochReport {
            metrics,
            steps: sums.records,
        })
    }

    /// The loss a progress callback shows now; `loss` is the latest update's.
    pub(super) fn progress_loss(&mut self, loss: &Tensor) -> Result<f64, TrainError> {
        if self
            .device
            .as_ref()
            .is_some_and(|buf| !buf.unread.is_empty())
        {
            let peek = f64::from(loss.to_scalar::<f32>()?);
            if !peek.is_finite() {
                // Reports the first non-finite update, which may come before this one.
                self.read_back()?;
            }
            return Ok(peek);
        }
        Ok(self.sums.last_loss)
    }
}

/// Whether per-update values wait on the device until the epoch's end (see [`EpochTally`]).
fn defer_reads(device: &Device) -> bool {
    #[cfg(test)]
    if tests::deferring_reads_on_the_cpu() {
        return true;
    }
    !device.is_cpu()
}

/// Trains epoch `state.epochs_done + 1` and evaluates it.
fn run_epoch(
    run: &RunSpec<'_>,
    state: &mut TrainState,
    observer: &mut dyn TrainObserver,
) -> Result<EpochReport, TrainError> {
    let config = run.plan.config();
    let data = run.data;
    let epoch_index = state.epochs_done;
    let epoch = epoch_index + 1;
    let n = data.train_len();
    let batch = run.plan.batch_size();
    let steps_per_epoch = n.div_ceil(batch) as u64;
    let total_steps = steps_per_epoch * u64::from(config.epochs);

    let order = Tensor::from_vec(
        epoch_permutation(n, config.seed, u64::from(epoch_index)),
        n,
        run.device,
    )?;
    let mut tally = EpochTally::new(epoch, run.device, steps_per_epoch as usize)?;
    let mut lrs = LrRange::default();
    let started = Instant::now();
    let mut last_progress = started;

    for (i, start) in (0..n).step_by(batch).enumerate() {
        if run.stop.load(Ordering::Relaxed) {
            return Err(TrainError::Stopped { epoch });
        }
        let lr = state.next_lr(config.unit, epoch_index)?;
        lrs.add(lr);

        // The batch is gathered where the data lives: no per-batch copy of images to a device.
        let len = batch.min(n - start);
        let idx = order.narrow(0, start, len)?;
        let x = data.train_images.index_select(&idx, 0)?;
        let y = data.train_labels.index_select(&idx, 0)?;
        let logits = state.model.forward(&x)?;
        let loss = ops::cross_entropy(&logits, &y)?;
        let grads = loss.backward()?;
        state.sgd.step(state.model.vars(), &grads, lr)?;
        drop(grads);

        let correct = ops::correct_count(&logits.detach(), &y)?;
        let update = Update {
            step: state.global_step,
            lr,
            batch: len,
        };
        tally.record(update, &loss, &correct)?;
        state.global_step += 1;
        let last = start + len >= n;
        if last {
            tally.read_back()?;
        }

        let now = Instant::now();
        if last || now.duration_since(last_progress) >= PROGRESS_INTERVAL {
            last_progress = now;
            let batch_loss = tally.progress_loss(&loss)?;
            let elapsed = now.duration_since(started).as_secs_f64();
            observer.on_progress(&Progress {
                epoch,
                epochs: config.epochs,
                step_in_epoch: i as u64 + 1,
                steps_per_epoch,
                global_step: state.global_step,
                total_steps,
                batch_loss,
                examples_per_sec: (start + len) as f64 / elapsed.max(1e-9),
            });
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let eval_started = Instant::now();
    let (test_loss, test_acc) = evaluate(
        &state.model,
        &data.test_images,
        &data.test_labels,
        EVAL_BATCH,
    )?;
    let eval_seconds = eval_started.elapsed().as_secs_f64();

    tally.report(n, lrs, seconds, (test_loss, test_acc), eval_seconds)
}

/// The rates an epoch applied: its first, lowest and highest.
#[derive(Debug, Clone, Copy)]
pub(super) struct LrRange {
    first: f64,
    min: f64,
    max: f64,
}

impl Default for LrRange {
    fn default() -> Self {
        LrRange {
            first: f64::NAN,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl LrRange {
    /// Notes the rate of the epoch's next update.
    pub(super) fn add(&mut self, lr: f64) {
        if self.first.is_nan() {
            self.first = lr;
        }
        self.min = self.min.min(lr);
        self.max = self.max.max(lr);
    }
}

/// A NaN or infinite value anywhere in an epoch's metrics is a divergence, reported before any
/// observer sees the row (a store cannot keep it: SQLite turns NaN into NULL). Every batch loss
/// was finite by now, so this is what catches the epoch's last update breaking the weights: the
/// test loss is then NaN although training looked fine, as with one update per epoch.
fn check_finite(m: &EpochMetrics) -> Result<(), TrainError> {
    let values = [
        ("train loss", m.train_loss),
        ("train accuracy", m.train_acc),
        ("test loss", m.test_loss),
        ("test accuracy", m.test_acc),
        ("learning rate", m.lr),
        ("lowest learning rate", m.lr_min),
        ("highest learning rate", m.lr_max),
        ("training time", m.seconds),
        ("evaluation time", m.eval_seconds),
        ("training throughput", m.examples_per_sec),
    ];
    match values.into_iter().find(|(_, v)| !v.is_finite()) {
        Some((metric, value)) => Err(TrainError::DivergedMetric {
            epoch: m.epoch,
            metric,
            value,
        }),
        None => Ok(()),
    }
}

/// Mean loss and accuracy of `model` on (images, labels), in batches of `batch`, without
/// building a graph.
///
/// Each batch's mean loss and correct count stay on the device until the last batch, then come
/// back in one transfer and are summed on the host in f64 (the loss weighted by batch size):
/// one wait for the device per evaluation, no f32 accumulation over thousands of examples,
/// and no need for f64 support on the device.
pub fn evaluate(
    model: &LeNet,
    images: &Tensor,
    labels: &Tensor,
    batch: usize,
) -> Result<(f64, f64), TrainError> {
    let n = labels.dims1()?;
    if n == 0 || batch == 0 {
        return Err(TrainError::InvalidConfig(
            "evaluation needs examples and a batch size".to_string(),
        ));
    }
    let mut per_batch = Vec::with_capacity(2 * n.div_ceil(batch));
    for start in (0..n).step_by(batch) {
        let len = batch.min(n - start);
        let x = images.narrow(0, start, len)?;
        let y = labels.narrow(0, start, len)?;
        let logits = model.forward_inference(&x)?;
        per_batch.push(ops::cross_entropy(&logits, &y)?);
        per_batch.push(ops::correct_count(&logits, &y)?);
    }
    let values: Vec<f32> = Tensor::stack(&per_batch, 0)?.to_vec1()?;
    let (mut loss_sum, mut correct_sum) = (0.0f64, 0.0f64);
    for (pair, start) in values.chunks_exact(2).zip((0..n).step_by(batch)) {
        let len = batch.min(n - start);
        loss_sum += f64::from(pair[0]) * len as f64;
        correct_sum += f64::from(pair[1]);
    }
    Ok((loss_sum / n as f64, correct_sum / n as f64))
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;
    use std::sync::atomic::AtomicBool;

    use candle_core::{Device, Tensor};

    use super::{EpochTally, Update};
    use crate::data::{synthetic, Dataset, Limits};
    use crate::schedule::ScheduleSpec;
    use crate::train::{
        train, EpochMetrics, EpochReport, OptimizerSpec, Progress, RunSpec, RunSummary,
        ScheduleUnit, TrainConfig, TrainError, TrainObserver, TrainPlan,
    };

    thread_local! {
        /// Makes this thread's CPU runs keep their per-update values in device buffers, as
        /// GPUs do, so that path is tested without a GPU (see [`defer_reads_on_the_cpu`]).
        static DEFER_READS: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether this test thread asked for GPU-style read-backs on the CPU.
    pub(super) fn deferring_reads_on_the_cpu() -> bool {
        DEFER_READS.with(Cell::get)
    }

    /// Runs `f` with this thread's training runs reading back once per epoch, as on a GPU.
    pub(in crate::train) fn defer_reads_on_the_cpu<R>(f: impl FnOnce() -> R) -> R {
        let previous = DEFER_READS.with(|d| d.replace(true));
        let out = f();
        DEFER_READS.with(|d| d.set(previous));
        out
    }

    #[derive(Default)]
    struct Recorder {
        reports: Vec<EpochReport>,
        progress: Vec<Progress>,
    }

    impl TrainObserver for Recorder {
        fn on_progress(&mut self, p: &Progress) {
            self.progress.push(p.clone());
        }

        fn on_epoch(
            &mut self,
            report: &EpochReport,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            self.reports.push(report.clone());
            Ok(())
        }
    }

    /// 100 training examples in batches of 16 (the last one partial), with momentum so the
    /// optimizer state matters too.
    fn run(lr: f64) -> (Result<RunSummary, TrainError>, Recorder) {
        let dir = tempfile::tempdir().unwrap();
        synthetic::write_dataset(dir.path(), 100, 40, 7, false).unwrap();
        let data = Dataset::load(dir.path(), Limits::default(), &Device::Cpu).unwrap();
        let plan = TrainPlan::new(TrainConfig {
            epochs: 2,
            batch_size: 16,
            schedule: ScheduleSpec::from_json(&serde_json::json!({"kind": "constant", "lr": lr}))
                .unwrap(),
            unit: ScheduleUnit::Epoch,
            optimizer: OptimizerSpec {
                momentum: 0.9,
                ..OptimizerSpec::default()
            },
            seed: 5,
        })
        .unwrap();
        let stop = AtomicBool::new(false);
        let mut recorder = Recorder::default();
        let spec = RunSpec {
            plan: &plan,
            data: &data,
            device: &Device::Cpu,
            checkpoint_dir: None,
            stop: &stop,
            until_epoch: None,
        };
        (train(spec, &mut recorder), recorder)
    }

    fn timeless(m: &EpochMetrics) -> EpochMetrics {
        EpochMetrics {
            seconds: 0.0,
            eval_seconds: 0.0,
            examples_per_sec: 0.0,
            ..m.clone()
        }
    }

    #[test]
    fn reading_back_once_per_epoch_gives_the_same_metrics_and_records_bit_for_bit() {
        let (now, now_obs) = run(0.05);
        let (deferred, deferred_obs) = defer_reads_on_the_cpu(|| run(0.05));
        let (now, deferred) = (now.unwrap(), deferred.unwrap());
        assert_eq!(now.epochs.len(), 2);
        for (a, b) in now.epochs.iter().zip(&deferred.epochs) {
            assert_eq!(timeless(a), timeless(b));
        }
        for (a, b) in now_obs.reports.iter().zip(&deferred_obs.reports) {
            assert_eq!(a.steps.len(), 7);
            assert_eq!(a.steps, b.steps);
        }
        // Each epoch's last progress shows its last update's loss on both paths.
        for obs in [&now_obs, &deferred_obs] {
            let ends: Vec<f64> = obs
                .progress
                .iter()
                .filter(|p| p.step_in_epoch == p.steps_per_epoch)
                .map(|p| p.batch_loss)
                .collect();
            let last: Vec<f64> = obs
                .reports
                .iter()
                .map(|r| r.steps.last().unwrap().loss)
                .collect();
            assert_eq!(ends, last);
        }
    }

    #[test]
    fn reading_back_once_per_epoch_reports_the_same_first_diverged_step() {
        let (now, now_obs) = run(1e6);
        let (deferred, deferred_obs) = defer_reads_on_the_cpu(|| run(1e6));
        let (
            Err(TrainError::Diverged { epoch, step, loss }),
            Err(TrainError::Diverged {
                epoch: d_epoch,
                step: d_step,
                loss: d_loss,
            }),
        ) = (now, deferred)
        else {
            panic!("both runs must diverge on a batch loss");
        };
        assert_eq!((epoch, step), (d_epoch, d_step));
        assert_eq!(loss.to_bits(), d_loss.to_bits());
        assert!(step >= 1 && !loss.is_finite());
        assert_eq!(now_obs.reports.len(), deferred_obs.reports.len());
    }

    #[test]
    fn device_buffers_are_read_once_and_a_non_finite_peek_reports_the_first_bad_update() {
        defer_reads_on_the_cpu(|| {
            let scalar = |v: f32| Tensor::new(v, &Device::Cpu).unwrap();
            let update = |i: u64| Update {
                step: 10 + i,
                lr: 0.1,
                batch: 16,
            };
            let mut tally = EpochTally::new(3, &Device::Cpu, 6).unwrap();
            for (i, loss) in [2.0, 1.5].into_iter().enumerate() {
                tally
                    .record(update(i as u64), &scalar(loss), &scalar(4.0))
                    .unwrap();
            }
            // A finite peek shows the latest loss and reads nothing else.
            assert_eq!(tally.progress_loss(&scalar(1.5)).unwrap(), 1.5);
            assert!(tally.sums.records.is_empty());
            tally.read_back().unwrap();
            assert_eq!(tally.sums.records.len(), 2);
            assert_eq!(tally.sums.loss, 16.0 * 2.0 + 16.0 * 1.5);
            assert_eq!(tally.sums.correct, 8.0);
            // Later updates go into the next slots; the first non-finite one is reported,
            // even when the peek sees a later one.
            for (i, loss) in [1.0, f32::INFINITY, f32::NAN].into_iter().enumerate() {
                tally
                    .record(update(2 + i as u64), &scalar(loss), &scalar(4.0))
                    .unwrap();
            }
            let err = tally.progress_loss(&scalar(f32::NAN)).unwrap_err();
            let TrainError::Diverged { epoch, step, loss } = err else {
                panic!("expected a divergence, got {err:?}");
            };
            assert_eq!((epoch, step, loss), (3, 13, f64::INFINITY));
            assert_eq!(tally.sums.records.len(), 3);
        });
    }
}
