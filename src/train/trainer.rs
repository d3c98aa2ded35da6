//! The training loop: epochs of shuffled mini-batches, scheduled rates, evaluation,
//! checkpoints and resume.

use std::collections::HashMap;
use std::path::Path;
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
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// On GPUs, losses are read back every this many updates instead of after each one, so the
/// host does not stall the device on every batch.
const GPU_SYNC_EVERY: usize = 32;

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
}

/// Trains the LeNet as `run.plan` says, reporting to `observer`.
///
/// With a checkpoint directory: resumes after the last completed epoch if the directory holds a
/// checkpoint of the same run ([`checkpoint::fingerprint`]), else starts fresh; writes a
/// checkpoint after every epoch (after [`TrainObserver::on_epoch`]) and `weights.safetensors`
/// at the end.
pub fn train(run: RunSpec<'_>, observer: &mut dyn TrainObserver) -> Result<RunSummary, TrainError> {
    let config = run.plan.config();
    let (train_len, test_len) = (run.data.train_len(), run.data.test_len());
    if train_len == 0 || test_len == 0 {
        return Err(TrainError::InvalidConfig(format!(
            "the data set needs training and test examples (got {train_len} and {test_len})"
        )));
    }
    let mut state = TrainState {
        model: LeNet::new(config.seed, DType::F32, run.device)?,
        sgd: Sgd::new(config.optimizer, PARAM_NAMES.len()),
        scheduler: Scheduler::new(run.plan.schedule().clone()),
        epochs_done: 0,
        global_step: 0,
    };
    let fingerprint = checkpoint::fingerprint(config, train_len, test_len).map_err(|e| {
        TrainError::InvalidConfig(format!("the configuration cannot be encoded: {e}"))
    })?;
    let mut resumed_from_epoch = None;
    if let Some(dir) = run.checkpoint_dir {
        if let Some(epoch) = state.resume(dir, &fingerprint, config.epochs, run.device)? {
            tracing::info!(epoch, dir = %dir.display(), "resuming from checkpoint");
            resumed_from_epoch = Some(epoch);
        }
    }

    let mut summary_epochs = Vec::new();
    while state.epochs_done < config.epochs {
        let report = run_epoch(&run, &mut state, observer)?;
        observer.on_epoch(&report).map_err(TrainError::Observer)?;
        if let Some(monitor) = state.scheduler.monitor() {
            let m = &report.metrics;
            state.scheduler.observe(match monitor {
                Monitor::TestLoss => m.test_loss,
                Monitor::TrainLoss => m.train_loss,
                Monitor::TestAcc => m.test_acc,
            });
        }
        state.epochs_done += 1;
        if let Some(dir) = run.checkpoint_dir {
            state.save(dir, &fingerprint, config)?;
            // The latest weights on their own, so a running job's weights can be
            // downloaded without its optimizer state.
            checkpoint::save_weights(&checkpoint::weights_path(dir), &state.model.named_tensors())?;
        }
        summary_epochs.push(report.metrics);
    }

    let final_weights = match run.checkpoint_dir {
        Some(dir) => {
            let path = checkpoint::weights_path(dir);
            checkpoint::save_weights(&path, &state.model.named_tensors())?;
            Some(path)
        }
        None => None,
    };
    Ok(RunSummary {
        epochs: summary_epochs,
        resumed_from_epoch,
        final_weights,
    })
}

/// Everything a checkpoint must restore for a resumed run to match an uninterrupted one
/// (the example order is a function of (seed, epoch) and needs no state).
struct TrainState {
    model: LeNet,
    sgd: Sgd,
    scheduler: Scheduler,
    epochs_done: u32,
    global_step: u64,
}

impl TrainState {
    /// Loads the checkpoint in `dir` if it belongs to this run; returns its epoch.
    fn resume(
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

/// Losses and correct counts of updates whose values have not been read back yet.
struct Pending {
    losses: Vec<Tensor>,
    correct: Vec<Tensor>,
    batch_sizes: Vec<usize>,
    steps: Vec<(u64, f64)>,
}

/// Running sums of an epoch.
#[derive(Default)]
struct EpochSums {
    loss: f64,
    correct: f64,
    last_loss: f64,
    records: Vec<StepRecord>,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            losses: Vec::new(),
            correct: Vec::new(),
            batch_sizes: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Reads the pending values back (one transfer each) and checks every loss is finite.
    fn flush(&mut self, epoch: u32, sums: &mut EpochSums) -> Result<(), TrainError> {
        if self.losses.is_empty() {
            return Ok(());
        }
        let losses: Vec<f32> = Tensor::stack(&self.losses, 0)?.to_vec1()?;
        let correct: Vec<f32> = Tensor::stack(&self.correct, 0)?.to_vec1()?;
        for i in 0..losses.len() {
            let (step, lr) = self.steps[i];
            let loss = f64::from(losses[i]);
            if !loss.is_finite() {
                return Err(TrainError::Diverged { epoch, step, loss });
            }
            sums.loss += loss * self.batch_sizes[i] as f64;
            sums.correct += f64::from(correct[i]);
            sums.last_loss = loss;
            sums.records.push(StepRecord { step, lr, loss });
        }
        self.losses.clear();
        self.correct.clear();
        self.batch_sizes.clear();
        self.steps.clear();
        Ok(())
    }
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
    let sync_every = if run.device.is_cpu() {
        1
    } else {
        GPU_SYNC_EVERY
    };

    let order = Tensor::from_vec(
        epoch_permutation(n, config.seed, u64::from(epoch_index)),
        n,
        run.device,
    )?;
    let mut sums = EpochSums {
        records: Vec::with_capacity(steps_per_epoch as usize),
        ..EpochSums::default()
    };
    let mut pending = Pending::new();
    let (mut lr_first, mut lr_min, mut lr_max) = (f64::NAN, f64::INFINITY, f64::NEG_INFINITY);
    let started = Instant::now();
    let mut last_progress = started;

    for (i, start) in (0..n).step_by(batch).enumerate() {
        if run.stop.load(Ordering::Relaxed) {
            return Err(TrainError::Stopped { epoch });
        }
        let t = match config.unit {
            ScheduleUnit::Epoch => u64::from(epoch_index),
            ScheduleUnit::Step => state.global_step,
        };
        let lr = state.scheduler.lr(t);
        if !lr.is_finite() || lr < 0.0 {
            return Err(TrainError::InvalidConfig(format!(
                "the schedule gave learning rate {lr} at t = {t}"
            )));
        }
        if i == 0 {
            lr_first = lr;
        }
        lr_min = lr_min.min(lr);
        lr_max = lr_max.max(lr);

        let len = batch.min(n - start);
        let idx = order.narrow(0, start, len)?;
        let x = data.train_images.index_select(&idx, 0)?;
        let y = data.train_labels.index_select(&idx, 0)?;
        let logits = state.model.forward(&x)?;
        let loss = ops::cross_entropy(&logits, &y)?;
        let grads = loss.backward()?;
        state.sgd.step(state.model.vars(), &grads, lr)?;
        drop(grads);

        pending.losses.push(loss.detach());
        pending
            .correct
            .push(ops::correct_count(&logits.detach(), &y)?);
        pending.batch_sizes.push(len);
        pending.steps.push((state.global_step, lr));
        state.global_step += 1;
        let last = start + len >= n;
        if pending.losses.len() >= sync_every || last {
            pending.flush(epoch, &mut sums)?;
        }

        let now = Instant::now();
        if last || now.duration_since(last_progress) >= PROGRESS_INTERVAL {
            last_progress = now;
            let elapsed = now.duration_since(started).as_secs_f64();
            observer.on_progress(&Progress {
                epoch,
                epochs: config.epochs,
                step_in_epoch: i as u64 + 1,
                steps_per_epoch,
                global_step: state.global_step,
                total_steps,
                batch_loss: sums.last_loss,
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

    Ok(EpochReport {
        metrics: EpochMetrics {
            epoch,
            train_loss: sums.loss / n as f64,
            train_acc: sums.correct / n as f64,
            test_loss,
            test_acc,
            lr: lr_first,
            lr_min,
            lr_max,
            seconds,
            eval_seconds,
            examples_per_sec: n as f64 / seconds.max(1e-9),
        },
        steps: sums.records,
    })
}

/// Mean loss and accuracy of `model` on (images, labels), in batches of `batch`, without
/// building a graph. One read-back per batch (a handful per evaluation), summed in f64 on the
/// host, which also works on devices without f64 support.
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
    let (mut loss_sum, mut correct_sum) = (0.0f64, 0.0f64);
    for start in (0..n).step_by(batch) {
        let len = batch.min(n - start);
        let x = images.narrow(0, start, len)?;
        let y = labels.narrow(0, start, len)?;
        let logits = model.forward_inference(&x)?;
        let loss = ops::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        let correct = ops::correct_count(&logits, &y)?.to_scalar::<f32>()?;
        loss_sum += f64::from(loss) * len as f64;
        correct_sum += f64::from(correct);
    }
    Ok((loss_sum / n as f64, correct_sum / n as f64))
}
