//! Lockstep groups in the worker: a claimed sweep member takes the queued members of its
//! sweep that can train with it, and the worker trains them together
//! ([`crate::train::lockstep`]) on one blocking thread.
//!
//! Each member keeps everything a job trained alone has: its job row, lease and heartbeat
//! ([`Worker::begin`]), stop flag and cancel, observer (metrics, epochs, events), checkpoint
//! directory and weights, and its settling ([`Worker::ending`], [`Worker::conclude`]), which
//! runs as soon as the member leaves the group while the others train on. Only the training
//! loop is shared.
//!
//! A member can join when it is queued in the same sweep, the sweep asks for lockstep
//! training (`"lockstep": true`, the default) and the worker allows it (`--lockstep on`,
//! the default), and it has the leader's seed and batch size
//! ([`incompatibility`]), epochs, model, data set and limits, the same completed epochs and
//! the same pause point. Groups are capped by [`max_group_size`] (memory per member in
//! [`crate::train::lockstep`]); the rest of the sweep forms later groups, as the next
//! claims find them. Because a member's results are bit for bit those of a single run,
//! grouping changes only the speed.

use std::sync::Arc;

use candle_core::Device;
use tokio::runtime::Handle;

use super::{
    join_failure, panic_error, prepare, run_blocking, run_end, Ending, HeldJob, JobObserver,
    ProgressWrite, RunEnd, RunError, Worker,
};
use crate::job::{FailureCode, JobError, JobPlan, JobStatus};
use crate::service::Service;
use crate::store::{Claim, JobRecord};
use crate::train::lockstep::{
    incompatibility, max_group_size, train_group_reporting, GroupSpec, MemberRun,
};

impl Worker {
    /// Claims the queued members of `leader`'s sweep that can train in lockstep with it (none
    /// when lockstep training is off, for the worker or the sweep). A failure to look them up
    /// only means the leader trains alone.
    pub(super) async fn lockstep_companions(
        &self,
        leader: &JobRecord,
        device: &Device,
    ) -> Vec<Claim> {
        let Some((sweep, _)) = leader.sweep else {
            return Vec::new();
        };
        if !self.service.0.config.lockstep {
            return Vec::new();
        }
        match self.service.sweep_trains_in_lockstep(sweep).await {
            Ok(true) => {}
            Ok(false) => return Vec::new(),
            Err(err) => {
                tracing::warn!(%sweep, error = %err, "could not read the sweep; the member trains alone");
                return Vec::new();
            }
        }
        let Ok(leader_plan) = JobPlan::new(leader.spec.clone()) else {
            // Its run reports the broken spec.
            return Vec::new();
        };
        let members = match self.service.store().sweep_members(sweep).await {
            Ok(members) => members,
            Err(err) => {
                tracing::warn!(%sweep, error = %err, "could not list the sweep's members; the member trains alone");
                return Vec::new();
            }
        };
        let batch = usize::try_from(leader.spec.batch_size).unwrap_or(usize::MAX);
        let room = max_group_size(device, batch).saturating_sub(1);
        let mut candidates: Vec<&JobRecord> = members
            .iter()
            .filter(|m| m.id != leader.id && can_join(leader, &leader_plan, m))
            .collect();
        // The queue's own order: priority, then age.
        candidates.sort_by_key(|m| (std::cmp::Reverse(m.spec.priority), m.id));
        let ids: Vec<_> = candidates.iter().take(room).map(|m| m.id).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let ttl = self.service.0.config.lease.ttl;
        match self
            .service
            .store()
            .claim_listed(
                &ids,
                &self.identity,
                ttl,
                self.service.0.config.claim_limits,
            )
            .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(%sweep, error = %err, "could not claim lockstep companions; the member trains alone");
                Vec::new()
            }
        }
    }

    /// Trains `leader` and its claimed `companions` as one lockstep group on a blocking
    /// thread, settling each member as soon as it leaves the group.
    pub(super) async fn run_group(&self, leader: Claim, companions: Vec<Claim>, device: &Device) {
        let size = companions.len() + 1;
        tracing::info!(members = size, "training a lockstep group");
        crate::observability::lockstep_group_started(size);
        let mut running = Vec::with_capacity(size);
        for claim in std::iter::once(leader).chain(companions) {
            running.push(Some(self.begin(claim).await));
        }
        let jobs: Vec<JobRecord> = running.iter().flatten().map(|r| r.job.clone()).collect();
        let helds: Vec<Arc<HeldJob>> = running
            .iter()
            .flatten()
            .map(|r| Arc::clone(&r.held))
            .collect();
        let (ended, mut ends) = tokio::sync::mpsc::unbounded_channel();
        let service = self.service.clone();
        let handle = Handle::current();
        let span = tracing::Span::current();
        let device = device.clone();
        let training = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            train_blocking(
                &service,
                &jobs,
                &helds,
                &device,
                &handle,
                &mut |i, result| {
                    // The receiver lives until the training thread is done.
                    let _ = ended.send((i, result));
                },
            );
        });
        while let Some((i, result)) = ends.recv().await {
            let Some(member) = running.get_mut(i).and_then(Option::take) else {
                continue;
            };
            let ending = self.ending(&member.held, result).await;
            self.conclude(member, ending).await;
        }
        // One training thread served them all: each member it did not report on fails.
        let failure = match training.await {
            Ok(()) => JobError::new(
                FailureCode::Internal,
                "the job's lockstep group ended without it".to_string(),
            ),
            Err(join_error) => panic_error(&join_failure(join_error)),
        };
        for member in running.into_iter().flatten() {
            let ending = if member.held.is_lost() {
                Ending::Lost
            } else {
                Ending::Finished(JobStatus::Failed, Some(failure.clone()))
            };
            self.conclude(member, ending).await;
        }
    }
}

/// Whether `member` can join a group led by `leader` (both members of one sweep): it
/// must see the same batches from the same weights ([`incompatibility`]), start at the
/// same epoch boundary and train as far.
fn can_join(leader: &JobRecord, leader_plan: &JobPlan, member: &JobRecord) -> bool {
    let (a, b) = (&leader.spec, &member.spec);
    let compatible = JobPlan::new(b.clone()).is_ok_and(|plan| {
        incompatibility(leader_plan.train().config(), plan.train().config()).is_none()
    });
    compatible
        && member.status == JobStatus::Queued
        && !member.cancel_requested
        && !member.stop_early_requested
        && member.progress_epoch == leader.progress_epoch
        && member.run_until_epoch == leader.run_until_epoch
        && a.epochs == b.epochs
        && a.model == b.model
        && a.dataset == b.dataset
        && a.limits() == b.limits()
}

/// Everything a group does off the async runtime: check every member's spec, load the data
/// once, train the group; each member's result goes to `report` (by index into `jobs`) as
/// soon as it is known, after its last progress write. A group the engine refuses (members
/// whose checkpoints turned out to be at different epochs) trains its members one after
/// another.
fn train_blocking(
    service: &Service,
    jobs: &[JobRecord],
    helds: &[Arc<HeldJob>],
    device: &Device,
    handle: &Handle,
    report: &mut dyn FnMut(usize, Result<RunEnd, RunError>),
) {
    let alone = |i: usize| run_blocking(service, &jobs[i], device, &helds[i], handle.clone());
    // The database is a trust boundary: each spec is checked again, by the same rules.
    let mut plans = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        match JobPlan::new(job.spec.clone()) {
            Ok(plan) => plans.push(Some(plan)),
            Err(err) => {
                report(i, Err(RunError::InvalidSpec(err)));
                plans.push(None);
            }
        }
    }
    let Some(limits) = plans.iter().flatten().next().map(|p| p.spec().limits()) else {
        return;
    };
    let data = match service.0.datasets.load(limits, device) {
        Ok(data) => data,
        Err(_) => {
            // Each member reports the failure as a single run would.
            for (i, plan) in plans.iter().enumerate() {
                if plan.is_some() {
                    report(i, alone(i));
                }
            }
            return;
        }
    };
    let mut dirs = Vec::with_capacity(jobs.len());
    for (i, plan) in plans.iter().enumerate() {
        dirs.push(match plan {
            Some(plan) => match prepare(service, &jobs[i], plan, &data, &helds[i], handle) {
                Ok(dir) => Some(dir),
                Err(err) => {
                    report(i, Err(err));
                    None
                }
            },
            None => None,
        });
    }
    let mut observers: Vec<JobObserver<'_>> = jobs
        .iter()
        .zip(helds)
        .map(|(job, held)| JobObserver::new(service, job, held, handle.clone()))
        .collect();
    let progress: Vec<ProgressWrite> = observers
        .iter()
        .map(|observer| observer.progress_write.clone())
        .collect();
    // The members still standing train together.
    let mut training: Vec<(usize, &JobPlan)> = Vec::new();
    let mut members = Vec::new();
    let standing = jobs.iter().zip(&plans).zip(&dirs).zip(&mut observers);
    for (i, (((job, plan), dir), observer)) in standing.enumerate() {
        if let (Some(plan), Some(dir)) = (plan, dir) {
            training.push((i, plan));
            members.push(MemberRun {
                plan: plan.train(),
                checkpoint_dir: Some(dir),
                stop: &helds[i].stop,
                until_epoch: job.run_until_epoch,
                observer,
            });
        }
    }
    if members.is_empty() {
        return;
    }
    let group = GroupSpec {
        members,
        data: &data,
        device,
    };
    let refused = train_group_reporting(group, &mut |member, outcome| {
        if let Some(&(i, plan)) = training.get(member) {
            // Nothing of the run may be written once its end is stored.
            progress[i].wait(handle);
            let result = outcome
                .map(|summary| run_end(plan, &summary))
                .map_err(RunError::Train);
            report(i, result);
        }
    });
    drop(observers);
    if let Err(err) = refused {
        tracing::warn!(error = %err, "the group cannot train in lockstep; its members train one after another");
        for &(i, _) in &training {
            report(i, alone(i));
        }
    }
}
