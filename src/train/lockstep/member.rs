//! A group's life: every member resumed from its own checkpoint, epochs trained together,
//! members leaving as they stop, pause, finish or fail.

use std::sync::atomic::Ordering;
use std::time::Instant;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::{cpu, grouped, incompatibility, GroupError, GroupSpec, MemberOutcome, MemberRun};
use crate::data::{epoch_permutation, Dataset};
use crate::train::trainer::{
    self, EpochTally, LrRange, TrainState, Update, EVAL_BATCH, PROGRESS_INTERVAL,
};
use crate::train::{evaluate, EpochMetrics, Progress, RunSummary, TrainError};

/// One member while it is in the group.
struct Member<'a> {
    run: MemberRun<'a>,
    state: TrainState,
    fingerprint: String,
    /// Epochs done when it leaves: the plan's, or its pause point.
    last: u32,
    resumed_from_epoch: Option<u32>,
    /// Metrics of the epochs trained in this call.
    epochs: Vec<EpochMetrics>,
    /// Whether it left the group.
    left: bool,
    /// How it left, until that is reported.
    outcome: Option<MemberOutcome>,
}

impl<'a> Member<'a> {
    /// The member's state before training: fresh, or resumed from its checkpoint (a
    /// checkpoint that cannot be read is this member's failure, not the group's).
    fn new(run: MemberRun<'a>, data: &Dataset, device: &Device) -> Result<Self, TrainError> {
        let config = run.plan.config();
        let mut member = Member {
            state: TrainState::new(run.plan, device)?,
            fingerprint: trainer::fingerprint_of(config, data)?,
            last: trainer::last_epoch(config, run.until_epoch),
            resumed_from_epoch: None,
            epochs: Vec::new(),
            left: false,
            outcome: None,
            run,
        };
        if let Some(dir) = member.run.checkpoint_dir {
            let epochs = member.run.plan.config().epochs;
            match member
                .state
                .resume(dir, &member.fingerprint, epochs, device)
            {
                Ok(Some(epoch)) => {
                    tracing::info!(epoch, dir = %dir.display(), "resuming from checkpoint");
                    member.resumed_from_epoch = Some(epoch);
                }
                Ok(None) => {}
                Err(err) => member.leave(Err(err)),
            }
        }
        Ok(member)
    }

    fn active(&self) -> bool {
        !self.left
    }

    /// Whether it still has epochs to train.
    fn pending(&self) -> bool {
        self.active() && self.state.epochs_done < self.last
    }

    /// Takes the member out of the group with `outcome`.
    fn leave(&mut self, outcome: MemberOutcome) {
        if let Err(err) = &outcome {
            tracing::debug!(error = %err, "a member leaves its lockstep group");
        }
        self.left = true;
        self.outcome = Some(outcome);
    }

    /// Its last epoch is done: final weights, and out of the group.
    fn finish(&mut self) {
        let outcome = self.summary();
        self.leave(outcome);
    }

    fn summary(&mut self) -> MemberOutcome {
        let final_weights =
            trainer::save_final_weights(&self.state.model, self.run.checkpoint_dir)?;
        Ok(RunSummary {
            epochs: std::mem::take(&mut self.epochs),
            resumed_from_epoch: self.resumed_from_epoch,
            final_weights,
            epochs_done: self.state.epochs_done,
        })
    }
}

/// Hands every member's outcome that is in to `on_leave` (by member index), once.
fn report(members: &mut [Member<'_>], on_leave: &mut dyn FnMut(usize, MemberOutcome)) {
    for (i, member) in members.iter_mut().enumerate() {
        if let Some(outcome) = member.outcome.take() {
            on_leave(i, outcome);
        }
    }
}

/// See [`super::train_group_reporting`].
pub(super) fn train_group(
    group: GroupSpec<'_>,
    on_leave: &mut dyn FnMut(usize, MemberOutcome),
) -> Result<(), GroupError> {
    let GroupSpec {
        members,
        data,
        device,
    } = group;
    let Some(first) = members.first() else {
        return Err(GroupError::Empty);
    };
    trainer::check_data(data)?;
    let first = first.plan.config();
    for (member, run) in members.iter().enumerate().skip(1) {
        if let Some(reason) = incompatibility(first, run.plan.config()) {
            return Err(GroupError::Incompatible { member, reason });
        }
    }
    let mut members = members
        .into_iter()
        .map(|run| Member::new(run, data, device))
        .collect::<Result<Vec<_>, TrainError>>()?;
    let epochs: Vec<u32> = members
        .iter()
        .filter(|m| m.pending())
        .map(|m| m.state.epochs_done)
        .collect();
    if epochs.windows(2).any(|pair| pair[0] != pair[1]) {
        return Err(GroupError::EpochsDiffer { epochs });
    }
    // A member with nothing left to train ends at once, as a single run would.
    for member in members.iter_mut().filter(|m| m.active() && !m.pending()) {
        member.finish();
    }
    report(&mut members, on_leave);
    while members.iter().any(Member::active) {
        if let Err(err) = run_epoch(&mut members, data, device, on_leave) {
            // A failure of what the members share ends every one still training.
            let message = err.to_string();
            for member in members.iter_mut().filter(|m| m.active()) {
                member.leave(Err(TrainError::Candle(candle_core::Error::Msg(
                    message.clone(),
                ))));
            }
        }
        report(&mut members, on_leave);
    }
    Ok(())
}

/// A member's running figures over one epoch.
struct EpochRun {
    tally: EpochTally,
    lrs: LrRange,
}

/// Trains every active member through one epoch and ends it for them (evaluation, observer,
/// checkpoint); each member that stops or fails meanwhile leaves. An error is a failure of
/// the shared work (the batch order, a batch, the shared layers).
fn run_epoch(
    members: &mut [Member<'_>],
    data: &Dataset,
    device: &Device,
    on_leave: &mut dyn FnMut(usize, MemberOutcome),
) -> Result<(), TrainError> {
    let Some(lead) = members.iter().find(|m| m.active()) else {
        return Ok(());
    };
    let (seed, batch) = (lead.run.plan.config().seed, lead.run.plan.batch_size());
    let epoch_index = lead.state.epochs_done;
    let epoch = epoch_index + 1;
    let n = data.train_len();
    let steps_per_epoch = n.div_ceil(batch);

    let order = Tensor::from_vec(
        epoch_permutation(n, seed, u64::from(epoch_index)),
        n,
        device,
    )?;
    let mut runs = members
        .iter()
        .map(|m| {
            m.active()
                .then(|| {
                    EpochTally::new(epoch, device, steps_per_epoch).map(|tally| EpochRun {
                        tally,
                        lrs: LrRange::default(),
                    })
                })
                .transpose()
        })
        .collect::<Result<Vec<Option<EpochRun>>, TrainError>>()?;
    let started = Instant::now();
    let mut last_progress = started;
    let mut fast = false;

    for (i, start) in (0..n).step_by(batch).enumerate() {
        // Who trains this batch, and at which rate.
        let mut lrs = Vec::with_capacity(members.len());
        for (member, run) in members.iter_mut().zip(&mut runs) {
            let Some(run) = run.as_mut().filter(|_| member.active()) else {
                continue;
            };
            if member.run.stop.load(Ordering::Relaxed) {
                member.leave(Err(TrainError::Stopped { epoch }));
                continue;
            }
            match member
                .state
                .next_lr(member.run.plan.config().unit, epoch_index)
            {
                Ok(lr) => {
                    run.lrs.add(lr);
                    lrs.push(lr);
                }
                Err(err) => member.leave(Err(err)),
            }
        }
        // A stopped member is out before the batch, so its job can be settled at once.
        report(members, on_leave);
        if lrs.is_empty() {
            return Ok(());
        }

        // The batch is gathered once, where the data lives, for every member.
        let len = batch.min(n - start);
        let idx = order.narrow(0, start, len)?;
        let x = data.train_images.index_select(&idx, 0)?;
        let y = data.train_labels.index_select(&idx, 0)?;
        let mut states: Vec<&mut TrainState> = members
            .iter_mut()
            .filter(|m| m.active())
            .map(|m| &mut m.state)
            .collect();
        fast = cpu::applies(&x, &states);
        let results = if fast {
            cpu::step(&mut states, &x, &y, &lrs)?
        } else {
            grouped::step(&mut states, &x, &y, &lrs)?
        };
        drop(states);

        let last = start + len >= n;
        let now = Instant::now();
        let report_progress = last || now.duration_since(last_progress) >= PROGRESS_INTERVAL;
        if report_progress {
            last_progress = now;
        }
        let trained = members
            .iter_mut()
            .zip(&mut runs)
            .filter(|(m, _)| m.active());
        for (((member, run), result), lr) in trained.zip(results).zip(lrs) {
            let Some(run) = run.as_mut() else { continue };
            let update = Update {
                step: member.state.global_step,
                lr,
                batch: len,
            };
            let recorded = result.and_then(|(loss, correct)| {
                run.tally.record(update, &loss, &correct)?;
                member.state.global_step += 1;
                if last {
                    run.tally.read_back()?;
                }
                if report_progress {
                    let config = member.run.plan.config();
                    let batch_loss = run.tally.progress_loss(&loss)?;
                    let elapsed = now.duration_since(started).as_secs_f64();
                    member.run.observer.on_progress(&Progress {
                        epoch,
                        epochs: config.epochs,
                        step_in_epoch: i as u64 + 1,
                        steps_per_epoch: steps_per_epoch as u64,
                        global_step: member.state.global_step,
                        total_steps: steps_per_epoch as u64 * u64::from(config.epochs),
                        batch_loss,
                        examples_per_sec: (start + len) as f64 / elapsed.max(1e-9),
                    });
                }
                Ok(())
            });
            if let Err(err) = recorded {
                member.leave(Err(err));
            }
        }
        report(members, on_leave);
    }
    let seconds = started.elapsed().as_secs_f64();

    // Each member is evaluated as a single run is; on the CPU the members side by side.
    let models: Vec<_> = members
        .iter()
        .filter(|m| m.active())
        .map(|m| &m.state.model)
        .collect();
    let eval = |model: &&crate::train::LeNet| {
        let started = Instant::now();
        let metrics = evaluate(model, &data.test_images, &data.test_labels, EVAL_BATCH);
        metrics.map(|m| (m, started.elapsed().as_secs_f64()))
    };
    let evaluations: Vec<_> = if fast {
        models.par_iter().map(eval).collect()
    } else {
        models.iter().map(eval).collect()
    };

    let finishing = members
        .iter_mut()
        .zip(&mut runs)
        .filter(|(m, _)| m.active());
    for ((member, run), evaluation) in finishing.zip(evaluations) {
        let Some(EpochRun { tally, lrs }) = run.take() else {
            continue;
        };
        let ended = evaluation.and_then(|(test, eval_seconds)| {
            let report = tally.report(n, lrs, seconds, test, eval_seconds)?;
            member.state.complete_epoch(
                &report,
                member.run.observer,
                member.run.checkpoint_dir,
                &member.fingerprint,
                member.run.plan.config(),
            )?;
            Ok(report.metrics)
        });
        match ended {
            Ok(metrics) => {
                member.epochs.push(metrics);
                if !member.pending() {
                    member.finish();
                }
            }
            Err(err) => member.leave(Err(err)),
        }
    }
    Ok(())
}
