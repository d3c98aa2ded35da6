//! Sweeps in the service: submit a sweep's members, coordinate its early stopping, and
//! read its results.
//!
//! The coordinator is one idempotent function, [`Service::advance_sweep`]: it reads the
//! sweep's members, their stored epochs and the stored early-stopping log, works out what is
//! due (a config whose every running seed has reached an epoch the rule looks at, a config
//! whose members all failed, the end of the sweep), feeds it to the pure engine
//! ([`crate::sweep::Stopper`], rebuilt by replaying the log), and writes the new log entries,
//! the member updates and the sweep's status in one atomic step that is refused if another
//! coordinator wrote first. It runs after every stored epoch or settled run of a member, at
//! start-up for every unfinished sweep, and on cancel, so a restart loses no decision and
//! repeats none.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{JobEvent, Service, ServiceError};
use crate::auth::{scoped_key, DEFAULT_TENANT};
use crate::job::{job_warnings, JobId, JobPlan, JobStatus, Warning, FASHION_MNIST_TRAIN_LEN};
use crate::store::{
    JobRecord, MemberUpdate, NewMember, NewSweep, StoredSweepEvent, SweepDeleteOutcome, SweepEvent,
    SweepFilter, SweepRecord, SweepStatus, SweepStep, SweepSubmitted,
};
use crate::sweep::{
    self, band_series, canonical_json, summarize, ConfigBand, ConfigSeries, Decision, MemberSeries,
    Metric, Observation, Stopper, StoppingParams, Summary, SweepId, SweepPlan, SweepRequest,
};
use crate::train::EpochMetrics;

/// How often a coordinator step is retried when another one wrote first.
const STEP_RETRIES: usize = 8;

/// How a sweep submission was taken.
#[derive(Debug, Clone)]
pub enum SweepSubmission {
    Created(SweepDetails),
    Replayed(SweepDetails),
}

/// A sweep with its plan, members and summary: what `GET /v1/sweeps/{id}` shows.
#[derive(Debug, Clone)]
pub struct SweepDetails {
    pub record: SweepRecord,
    /// The expanded plan (configs, seeds, metric, early stopping).
    pub plan: SweepPlan,
    /// Member jobs in id order.
    pub members: Vec<JobRecord>,
    /// The summary of the sweep's metric on final and best values, once data exists.
    pub summary: Summary,
    /// The summary of the test loss, reported beside the sweep's metric.
    pub test_loss: Summary,
}

impl SweepDetails {
    /// The member of `config` run with `seed`.
    pub fn member(&self, config: usize, seed: u64) -> Option<&JobRecord> {
        self.members
            .iter()
            .find(|m| m.sweep.map(|(_, c)| c) == Some(config) && m.spec.seed == seed)
    }
}

/// A stored decision, with its position and time.
#[derive(Debug, Clone)]
pub struct SweepDecision {
    pub seq: u64,
    pub decision: Decision,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A page of sweeps, newest first.
#[derive(Debug, Clone)]
pub struct SweepPage {
    pub sweeps: Vec<SweepRecord>,
    pub total: i64,
    pub next_cursor: Option<SweepId>,
}

impl Service {
    /// Checks and expands a sweep request, then queues all its members at once. The
    /// request was read from its bytes, so the grid keeps the client's order.
    pub async fn submit_sweep(
        &self,
        request: &SweepRequest,
        idempotency_key: Option<&str>,
    ) -> Result<SweepSubmission, ServiceError> {
        self.submit_sweep_for(DEFAULT_TENANT, request, idempotency_key)
            .await
    }

    /// [`Service::submit_sweep`] for `tenant`: the sweep and its members are its tenant's,
    /// the idempotency key is scoped to the tenant, and the members count toward the
    /// tenant's queued-job limit.
    pub async fn submit_sweep_for(
        &self,
        tenant: &str,
        request: &SweepRequest,
        idempotency_key: Option<&str>,
    ) -> Result<SweepSubmission, ServiceError> {
        let plan = expand(request)?;
        self.check_sweep_size(request, &plan)?;
        let canonical = canonical_json(request);
        let request_hash = format!("{:x}", Sha256::digest(canonical.as_bytes()));
        let first_rung = first_rungs(&plan);
        let mut plans = Vec::with_capacity(plan.members.len());
        for member in &plan.members {
            let job = JobPlan::from_json(&member.job, || member.seed)?;
            let warnings = job_warnings(&job);
            plans.push((member.config, job, warnings));
        }
        let warnings = sweep_and_config_warnings(&plan, &plans);
        let members = plans
            .iter()
            .map(|(config, job, warnings)| NewMember {
                spec: job.spec(),
                warnings,
                total_steps: job.total_steps(),
                config: *config,
                run_until_epoch: first_rung[*config],
            })
            .collect();
        self.check_queue_room(tenant, plans.len()).await?;
        let scoped = idempotency_key.map(|key| scoped_key(tenant, key));
        let submitted = self
            .store()
            .submit_sweep(NewSweep {
                name: &plan.name,
                request: &canonical,
                warnings: &warnings,
                max_concurrent: plan.max_concurrent,
                members,
                idempotency: scoped.as_deref().map(|key| (key, request_hash.as_str())),
                tenant: Some(tenant),
            })
            .await?;
        match submitted {
            SweepSubmitted::Created(record) => {
                tracing::info!(sweep = %record.id, name = %record.name, members = plan.members.len(), "sweep queued");
                self.jobs_queued();
                Ok(SweepSubmission::Created(self.sweep(record.id).await?))
            }
            SweepSubmitted::Replayed(record) => {
                Ok(SweepSubmission::Replayed(self.sweep(record.id).await?))
            }
            SweepSubmitted::KeyReused { existing } => {
                Err(ServiceError::SweepKeyReused { existing })
            }
        }
    }

    /// One sweep with its plan, members and summary.
    pub async fn sweep(&self, id: SweepId) -> Result<SweepDetails, ServiceError> {
        let record = self.sweep_record(id).await?;
        let plan = stored_plan(&record)?;
        let members = self.store().sweep_members(id).await?;
        let metrics = self.store().sweep_metrics(id).await?;
        let summary = summarize(
            &config_series(&plan, &members, &metrics, plan.metric),
            plan.mode,
        );
        let test_loss = summarize(
            &config_series(&plan, &members, &metrics, Metric::TestLoss),
            Metric::TestLoss.natural_mode(),
        );
        Ok(SweepDetails {
            record,
            plan,
            members,
            summary,
            test_loss,
        })
    }

    /// A page of sweeps, newest first.
    pub async fn list_sweeps(&self, filter: &SweepFilter) -> Result<SweepPage, ServiceError> {
        let (sweeps, total) = self.store().list_sweeps(filter).await?;
        let next_cursor = (sweeps.len() == filter.limit as usize)
            .then(|| sweeps.last().map(|s| s.id))
            .flatten();
        Ok(SweepPage {
            sweeps,
            total,
            next_cursor,
        })
    }

    /// Per config, per epoch: mean, std, min, max, n and the 95% interval of `metric` (the
    /// sweep's own metric when `None`), with the metric used.
    pub async fn sweep_series(
        &self,
        id: SweepId,
        metric: Option<Metric>,
    ) -> Result<(SweepPlan, Metric, Vec<ConfigBand>), ServiceError> {
        let record = self.sweep_record(id).await?;
        let plan = stored_plan(&record)?;
        let metric = metric.unwrap_or(plan.metric);
        let members = self.store().sweep_members(id).await?;
        let metrics = self.store().sweep_metrics(id).await?;
        let bands = band_series(&config_series(&plan, &members, &metrics, metric));
        Ok((plan, metric, bands))
    }

    /// Every early-stopping decision of a sweep, in the order taken.
    pub async fn sweep_decisions(
        &self,
        id: SweepId,
    ) -> Result<(SweepPlan, Vec<SweepDecision>), ServiceError> {
        let record = self.sweep_record(id).await?;
        let plan = stored_plan(&record)?;
        let decisions = self
            .store()
            .sweep_events(id)
            .await?
            .into_iter()
            .filter_map(|stored| match stored.event {
                SweepEvent::Decision(decision) => Some(SweepDecision {
                    seq: stored.seq,
                    decision,
                    at: stored.at,
                }),
                SweepEvent::Observation(_) => None,
            })
            .collect();
        Ok((plan, decisions))
    }

    /// Cancels a sweep: queued and paused members at once, running ones at their next batch.
    pub async fn cancel_sweep(&self, id: SweepId) -> Result<SweepDetails, ServiceError> {
        match self.store().request_sweep_cancel(id).await? {
            None => return Err(ServiceError::SweepNotFound(id)),
            Some(status) if status.is_finished() => {
                return Err(ServiceError::SweepFinished { id, status })
            }
            Some(_) => {}
        }
        self.advance_sweep(id).await?;
        self.sweep(id).await
    }

    /// Deletes a finished sweep with its members, their metrics and their artifacts.
    pub async fn delete_sweep(&self, id: SweepId) -> Result<(), ServiceError> {
        let record = self.sweep_record(id).await?;
        if !record.status.is_finished() {
            return Err(ServiceError::SweepNotFinished {
                id,
                status: record.status,
            });
        }
        for member in self.store().sweep_members(id).await? {
            super::remove_dir_if_present(&self.artifacts_dir(member.id))
                .await
                .map_err(|source| ServiceError::ArtifactsKept {
                    id: member.id,
                    source,
                })?;
        }
        match self.store().delete_sweep(id).await? {
            SweepDeleteOutcome::Deleted => Ok(()),
            SweepDeleteOutcome::NotFinished(status) => {
                Err(ServiceError::SweepNotFinished { id, status })
            }
            SweepDeleteOutcome::NotFound => Err(ServiceError::SweepNotFound(id)),
        }
    }

    /// Runs [`Service::advance_sweep`] in the background (from workers and observers).
    pub(super) fn advance_sweep_later(&self, id: SweepId) {
        let service = self.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::error!(sweep = %id, "no runtime to coordinate the sweep on");
            return;
        };
        handle.spawn(async move {
            if let Err(err) = service.advance_sweep(id).await {
                tracing::error!(sweep = %id, error = %err, "could not advance the sweep");
            }
        });
    }

    /// Advances every unfinished sweep (at start-up, after a restart).
    pub(super) async fn advance_unfinished_sweeps(&self) {
        match self.store().unfinished_sweeps().await {
            Ok(ids) => {
                for id in ids {
                    if let Err(err) = self.advance_sweep(id).await {
                        tracing::error!(sweep = %id, error = %err, "could not resume the sweep's coordination");
                    }
                }
            }
            Err(err) => tracing::error!(error = %err, "could not list unfinished sweeps"),
        }
    }

    /// One coordinator step for sweep `id` (see the module docs). Idempotent: with nothing
    /// due it writes nothing but the status.
    pub async fn advance_sweep(&self, id: SweepId) -> Result<(), ServiceError> {
        let lock = self.sweep_lock(id);
        let _guard = lock.lock().await;
        for _ in 0..STEP_RETRIES {
            let record = self.sweep_record(id).await?;
            if record.status.is_finished() {
                return Ok(());
            }
            let plan = stored_plan(&record)?;
            let members = self.store().sweep_members(id).await?;
            let metrics = self.store().sweep_metrics(id).await?;
            let log = self.store().sweep_events(id).await?;
            let next_seq = log.len() as u64;
            let step = plan_step(&record, &plan, &members, &metrics, &log)?;
            let applied = self
                .store()
                .apply_sweep_step(SweepStep {
                    sweep: id,
                    next_seq,
                    events: &step.events,
                    updates: &step.updates,
                    status: step.status,
                })
                .await?;
            if !applied {
                continue;
            }
            for event in &step.events {
                if let SweepEvent::Decision(d) = event {
                    let name = plan.configs.get(d.config).map_or("?", |c| c.name.as_str());
                    tracing::info!(sweep = %id, config = %name, rung = d.rung_epoch, value = d.value, cutoff = d.cutoff, action = ?d.action, "sweep decision");
                }
            }
            self.after_step(&members, &step.updates);
            if step.status != record.status {
                tracing::info!(sweep = %id, status = %step.status, "sweep status");
            }
            return Ok(());
        }
        tracing::warn!(sweep = %id, "the sweep's log kept changing; its next event advances it");
        Ok(())
    }

    /// Stops running members that were stopped or canceled, wakes workers for resumed
    /// members, and tells SSE clients of members that ended.
    fn after_step(&self, members: &[JobRecord], updates: &[MemberUpdate]) {
        let status_of = |job: JobId| members.iter().find(|m| m.id == job).map(|m| m.status);
        let mut wake = false;
        for update in updates {
            match *update {
                MemberUpdate::Continue { job, .. } => {
                    if status_of(job) == Some(JobStatus::Paused) {
                        wake = true;
                        self.emit(JobEvent::Status {
                            job,
                            status: JobStatus::Queued,
                        });
                    }
                }
                MemberUpdate::StopEarly { job } | MemberUpdate::Cancel { job } => {
                    match status_of(job) {
                        Some(JobStatus::Running) => self.stop_if_running(job),
                        Some(JobStatus::Queued | JobStatus::Paused) => {
                            let status = match update {
                                MemberUpdate::StopEarly { .. } => JobStatus::StoppedEarly,
                                _ => JobStatus::Canceled,
                            };
                            self.emit(JobEvent::Status { job, status });
                            self.emit(JobEvent::Done {
                                job,
                                status,
                                error: None,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        if wake {
            self.jobs_queued();
        }
    }

    async fn sweep_record(&self, id: SweepId) -> Result<SweepRecord, ServiceError> {
        self.store()
            .sweep(id)
            .await?
            .ok_or(ServiceError::SweepNotFound(id))
    }

    /// Whether the sweep asks for its members to train in lockstep groups.
    pub(super) async fn sweep_trains_in_lockstep(&self, id: SweepId) -> Result<bool, ServiceError> {
        let record = self.sweep_record(id).await?;
        let request: SweepRequest = crate::validation::from_json_slice(record.request.as_bytes())
            .map_err(|e| {
            ServiceError::Store(crate::store::StoreError::CorruptSweep {
                sweep: id,
                detail: format!("request: {e}"),
            })
        })?;
        Ok(request.lockstep)
    }

    fn sweep_lock(&self, id: SweepId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .0
            .sweep_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(locks.entry(id).or_default())
    }
}

/// Expands a request with the job rules as its validator.
fn expand(request: &SweepRequest) -> Result<SweepPlan, ServiceError> {
    Ok(sweep::expand(request, |job| {
        JobPlan::from_json(job, || 0).map(|_| ())
    })?)
}

impl Service {
    /// Refuses a sweep of more members than `--max-sweep-jobs`, for every tenant alike
    /// (admins too: the limit protects the workers, whoever queues the work). Checked
    /// before any member is planned, so an oversized request costs little.
    fn check_sweep_size(
        &self,
        request: &SweepRequest,
        plan: &SweepPlan,
    ) -> Result<(), ServiceError> {
        let Some(limit) = self.0.config.max_sweep_jobs else {
            return Ok(());
        };
        let jobs = plan.members.len();
        if jobs <= usize::try_from(limit).unwrap_or(usize::MAX) {
            return Ok(());
        }
        let path = if plan.configs.len() <= 1 {
            "seeds"
        } else if request.grid.is_empty() {
            "variants"
        } else {
            "grid"
        };
        Err(ServiceError::SweepTooLarge {
            path,
            configs: plan.configs.len(),
            seeds: plan.seeds.len(),
            jobs,
            limit,
        })
    }
}

/// The plan of a stored sweep: its canonical request expanded again (deterministic).
fn stored_plan(record: &SweepRecord) -> Result<SweepPlan, ServiceError> {
    let corrupt = |detail: String| {
        ServiceError::Store(crate::store::StoreError::CorruptSweep {
            sweep: record.id,
            detail,
        })
    };
    let request: SweepRequest = crate::validation::from_json_slice(record.request.as_bytes())
        .map_err(|e| corrupt(format!("request: {e}")))?;
    sweep::expand(&request, |job| JobPlan::from_json(job, || 0).map(|_| ()))
        .map_err(|e| corrupt(format!("the stored request no longer expands: {e}")))
}

/// The epoch each config's members first pause at: the first ASHA rung below its last
/// epoch (the median rule never pauses members).
fn first_rungs(plan: &SweepPlan) -> Vec<Option<u32>> {
    plan.configs
        .iter()
        .map(|config| next_rung(plan, config.epochs, 0))
        .collect()
}

/// The first ASHA rung after epoch `after` and before `epochs`.
fn next_rung(plan: &SweepPlan, epochs: u32, after: u32) -> Option<u32> {
    match plan.early_stopping {
        Some(StoppingParams::Asha(params)) => params
            .rungs()
            .into_iter()
            .find(|&rung| rung > after && rung < epochs),
        _ => None,
    }
}

/// The sweep's own warnings, and each config's job warnings once (from its first member),
/// their paths and messages naming the config.
fn sweep_and_config_warnings(
    plan: &SweepPlan,
    members: &[(usize, JobPlan, Vec<Warning>)],
) -> Vec<Warning> {
    let mut warnings = sweep::sweep_warnings(plan, FASHION_MNIST_TRAIN_LEN);
    let mut seen = std::collections::HashSet::new();
    for (config, _, job_warnings) in members {
        if !seen.insert(*config) {
            continue;
        }
        let name = plan.configs.get(*config).map_or("?", |c| c.name.as_str());
        for warning in job_warnings {
            warnings.push(Warning {
                code: warning.code,
                message: format!("config {name}: {}", warning.message),
                path: Some(match &warning.path {
                    Some(path) => format!("configs[{config}].{path}"),
                    None => format!("configs[{config}]"),
                }),
            });
        }
    }
    warnings
}

/// Per config, per member (by seed), the per-epoch values of `metric`.
fn config_series(
    plan: &SweepPlan,
    members: &[JobRecord],
    metrics: &HashMap<JobId, Vec<EpochMetrics>>,
    metric: Metric,
) -> Vec<ConfigSeries> {
    plan.configs
        .iter()
        .map(|config| ConfigSeries {
            name: config.name.clone(),
            epochs: config.epochs,
            members: members
                .iter()
                .filter(|m| m.sweep.map(|(_, c)| c) == Some(config.index))
                .map(|m| MemberSeries {
                    seed: m.spec.seed,
                    values: metrics
                        .get(&m.id)
                        .map(|rows| rows.iter().map(|row| value_of(row, metric)).collect())
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect()
}

fn value_of(row: &EpochMetrics, metric: Metric) -> f64 {
    match metric {
        Metric::TestAcc => row.test_acc,
        Metric::TestLoss => row.test_loss,
        Metric::TrainAcc => row.train_acc,
        Metric::TrainLoss => row.train_loss,
    }
}

/// What one coordinator step writes.
struct Step {
    events: Vec<SweepEvent>,
    updates: Vec<MemberUpdate>,
    status: SweepStatus,
}

/// Works out one coordinator step from the stored state (pure).
fn plan_step(
    record: &SweepRecord,
    plan: &SweepPlan,
    members: &[JobRecord],
    metrics: &HashMap<JobId, Vec<EpochMetrics>>,
    log: &[StoredSweepEvent],
) -> Result<Step, ServiceError> {
    let mut events = Vec::new();
    let mut updates = Vec::new();
    let by_config = members_by_config(plan, members);

    if record.cancel_requested {
        for member in members.iter().filter(|m| !m.status.is_finished()) {
            updates.push(MemberUpdate::Cancel { job: member.id });
        }
    } else if let Some(params) = plan.early_stopping {
        let (observations, decisions): (Vec<Observation>, Vec<Decision>) = split_log(log);
        let (mut stopper, pending) =
            Stopper::replay(params, plan.config_epochs(), &observations, &decisions)
                .map_err(|e| corrupt(record.id, format!("early-stopping log: {e}")))?;
        let mut new_decisions: Vec<Decision> = pending;
        events.extend(new_decisions.iter().copied().map(SweepEvent::Decision));

        let observed = observed_epochs(&observations);
        let withdrawn: std::collections::HashSet<usize> = observations
            .iter()
            .filter_map(|o| match o {
                Observation::Withdrawn { config } => Some(*config),
                _ => None,
            })
            .collect();
        let finished = observations
            .iter()
            .any(|o| matches!(o, Observation::Finished));
        if !finished {
            for config in &plan.configs {
                let Some(config_members) = by_config.get(&config.index) else {
                    continue;
                };
                // Seeds that failed or were canceled no longer count.
                let running: Vec<&JobRecord> = config_members
                    .iter()
                    .copied()
                    .filter(|m| !matches!(m.status, JobStatus::Failed | JobStatus::Canceled))
                    .collect();
                if running.is_empty() {
                    if !withdrawn.contains(&config.index) {
                        let observation = Observation::Withdrawn {
                            config: config.index,
                        };
                        feed(
                            &mut stopper,
                            observation,
                            &mut events,
                            &mut new_decisions,
                            record,
                        )?;
                    }
                    continue;
                }
                let last_seen = observed.get(&config.index).copied().unwrap_or(0);
                for epoch in due_epochs(&params, config.epochs, last_seen) {
                    let values: Option<Vec<f64>> = running
                        .iter()
                        .map(|m| {
                            metrics
                                .get(&m.id)
                                .and_then(|rows| rows.iter().find(|r| r.epoch == epoch))
                                .map(|row| value_of(row, plan.metric))
                        })
                        .collect();
                    let Some(values) = values else {
                        break;
                    };
                    let value = values.iter().sum::<f64>() / values.len() as f64;
                    let observation = Observation::Value {
                        config: config.index,
                        epoch,
                        value,
                    };
                    feed(
                        &mut stopper,
                        observation,
                        &mut events,
                        &mut new_decisions,
                        record,
                    )?;
                }
            }
            // The sweep ends when no member can make progress: every member has ended or
            // waits at a rung that only further progress could release.
            let all_decisions: Vec<Decision> =
                decisions.iter().chain(&new_decisions).copied().collect();
            let cleared = cleared_rungs(&all_decisions);
            let stuck = members.iter().all(|m| {
                m.status.is_finished()
                    || (m.status == JobStatus::Paused && !is_cleared(&cleared, m))
            });
            if stuck && !members.is_empty() {
                feed(
                    &mut stopper,
                    Observation::Finished,
                    &mut events,
                    &mut new_decisions,
                    record,
                )?;
            }
        }
        let all_decisions: Vec<Decision> =
            decisions.iter().chain(&new_decisions).copied().collect();
        updates.extend(reconcile(plan, members, &all_decisions));
    }

    let status = sweep_status(record, members, &updates);
    Ok(Step {
        events,
        updates,
        status,
    })
}

/// Per config, the rungs its members have been let past (a `continue` or `resume` there).
fn cleared_rungs(decisions: &[Decision]) -> std::collections::HashSet<(usize, u32)> {
    decisions
        .iter()
        .filter(|d| matches!(d.action, sweep::Action::Continue | sweep::Action::Resume))
        .map(|d| (d.config, d.rung_epoch))
        .collect()
}

/// Whether a member's pause point is a rung its config has been let past.
fn is_cleared(cleared: &std::collections::HashSet<(usize, u32)>, member: &JobRecord) -> bool {
    match (member.sweep, member.run_until_epoch) {
        (Some((_, config)), Some(until)) => cleared.contains(&(config, until)),
        _ => false,
    }
}

/// The member updates that make the members agree with every decision taken so far: a
/// member whose pause point its config has been let past moves on to the next rung; a
/// member of a stopped config ends. Derived from the whole log rather than from the newest
/// decisions alone, so an update lost to a crash, or a member that was still stopping when
/// its config was decided, is caught up at the next step.
fn reconcile(plan: &SweepPlan, members: &[JobRecord], decisions: &[Decision]) -> Vec<MemberUpdate> {
    let cleared = cleared_rungs(decisions);
    let stopped: std::collections::HashSet<usize> = decisions
        .iter()
        .filter(|d| d.action == sweep::Action::Stop)
        .map(|d| d.config)
        .collect();
    let mut updates = Vec::new();
    for member in members.iter().filter(|m| !m.status.is_finished()) {
        let Some((_, config)) = member.sweep else {
            continue;
        };
        if stopped.contains(&config) {
            if !member.stop_early_requested {
                updates.push(MemberUpdate::StopEarly { job: member.id });
            }
        } else if let Some(until) = member.run_until_epoch {
            if cleared.contains(&(config, until)) {
                let epochs = plan.configs.get(config).map_or(0, |c| c.epochs);
                updates.push(MemberUpdate::Continue {
                    job: member.id,
                    run_until: next_rung(plan, epochs, until),
                });
            }
        }
    }
    updates
}

fn feed(
    stopper: &mut Stopper,
    observation: Observation,
    events: &mut Vec<SweepEvent>,
    decisions: &mut Vec<Decision>,
    record: &SweepRecord,
) -> Result<(), ServiceError> {
    let taken = stopper.observe(&observation).map_err(|e| {
        corrupt(
            record.id,
            format!("early stopping refused {observation:?}: {e}"),
        )
    })?;
    events.push(SweepEvent::Observation(observation));
    events.extend(taken.iter().copied().map(SweepEvent::Decision));
    decisions.extend(taken);
    Ok(())
}

fn corrupt(sweep: SweepId, detail: String) -> ServiceError {
    ServiceError::Store(crate::store::StoreError::CorruptSweep { sweep, detail })
}

fn split_log(log: &[StoredSweepEvent]) -> (Vec<Observation>, Vec<Decision>) {
    let mut observations = Vec::new();
    let mut decisions = Vec::new();
    for stored in log {
        match stored.event {
            SweepEvent::Observation(o) => observations.push(o),
            SweepEvent::Decision(d) => decisions.push(d),
        }
    }
    (observations, decisions)
}

/// The last epoch already observed for each config.
fn observed_epochs(observations: &[Observation]) -> BTreeMap<usize, u32> {
    let mut last = BTreeMap::new();
    for observation in observations {
        if let Observation::Value { config, epoch, .. } = *observation {
            let entry = last.entry(config).or_insert(0);
            *entry = (*entry).max(epoch);
        }
    }
    last
}

/// The epochs after `after` the rule looks at for a config of `epochs` epochs: ASHA its
/// rungs below the last epoch and the last epoch itself; the median rule every epoch.
fn due_epochs(params: &StoppingParams, epochs: u32, after: u32) -> Vec<u32> {
    match params {
        StoppingParams::Asha(asha) => {
            let mut due: Vec<u32> = asha
                .rungs()
                .into_iter()
                .filter(|&r| r > after && r < epochs)
                .collect();
            if epochs > after {
                due.push(epochs);
            }
            due
        }
        StoppingParams::Median(_) => (after + 1..=epochs).collect(),
    }
}

fn members_by_config<'a>(
    plan: &SweepPlan,
    members: &'a [JobRecord],
) -> BTreeMap<usize, Vec<&'a JobRecord>> {
    let mut by_config: BTreeMap<usize, Vec<&JobRecord>> = BTreeMap::new();
    for member in members {
        if let Some((_, config)) = member.sweep {
            if config < plan.configs.len() {
                by_config.entry(config).or_default().push(member);
            }
        }
    }
    by_config
}

/// The sweep's status once `updates` are applied.
fn sweep_status(
    record: &SweepRecord,
    members: &[JobRecord],
    updates: &[MemberUpdate],
) -> SweepStatus {
    let after = |m: &JobRecord| -> JobStatus {
        for update in updates {
            match *update {
                MemberUpdate::StopEarly { job }
                    if job == m.id && matches!(m.status, JobStatus::Queued | JobStatus::Paused) =>
                {
                    return JobStatus::StoppedEarly
                }
                MemberUpdate::Cancel { job }
                    if job == m.id && matches!(m.status, JobStatus::Queued | JobStatus::Paused) =>
                {
                    return JobStatus::Canceled
                }
                _ => {}
            }
        }
        m.status
    };
    let statuses: Vec<JobStatus> = members.iter().map(after).collect();
    if statuses.iter().all(|s| s.is_finished()) {
        if record.cancel_requested {
            SweepStatus::Canceled
        } else if statuses.iter().all(|s| *s == JobStatus::Failed) {
            SweepStatus::Failed
        } else {
            SweepStatus::Succeeded
        }
    } else if members.iter().any(|m| m.started_at.is_some()) {
        SweepStatus::Running
    } else {
        SweepStatus::Queued
    }
}
