//! One worker: claims jobs for its device and trains them on a blocking thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tracing::Instrument;

use candle_core::Device;

use super::lease::{Heartbeat, HeldJob};
use super::{JobEvent, ProgressEvent, Service};
use crate::job::{FailureCode, InvalidJob, JobError, JobId, JobPlan, JobStatus};
use crate::store::{Claim, JobRecord, StoreError, WorkerActivity, WorkerIdentity};
use crate::train::{self, DeviceSpec, EpochReport, Progress, RunSpec, TrainError, TrainObserver};

mod lockstep;

/// A function workers call at the end of every epoch, before storing it (tests use it to
/// inject faults such as a panic inside training).
pub type FaultHook = Arc<dyn Fn(JobId, u32) + Send + Sync>;

/// How often an idle worker looks at the queue without being woken.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// How often a running job's progress is written to the database.
const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the end of an epoch waits for a progress write under way before dropping it.
const PROGRESS_WRITE_WAIT: Duration = Duration::from_secs(2);

pub(super) struct Worker {
    service: Service,
    name: String,
    device: DeviceSpec,
    identity: WorkerIdentity,
}

/// How a training run ended, as far as the job's status is concerned.
enum Ending {
    Finished(JobStatus, Option<JobError>),
    /// Stopped by shutdown: back to the queue, to resume from its checkpoint.
    Requeued,
    /// A sweep member reached its pause point (an early-stopping rung) after this many
    /// epochs.
    Paused(u32),
    /// The lease was lost: the job is someone else's now; write nothing.
    Lost,
}

impl Worker {
    pub(super) fn new(service: Service, slot: usize, device: DeviceSpec) -> Self {
        let name = format!("worker-{slot}");
        Worker {
            service,
            identity: WorkerIdentity::local(&name, device.to_string()),
            name,
            device,
        }
    }

    /// Opens its device once, then claims and runs jobs until shutdown.
    pub(super) async fn run(self) {
        let spec = self.device;
        let device = match tokio::task::spawn_blocking(move || spec.open()).await {
            Ok(Ok(device)) => device,
            Ok(Err(err)) => {
                tracing::error!(worker = %self.name, device = %spec, error = %err, "the worker's device cannot be opened; it takes no jobs");
                self.service
                    .device_failed(format!("{}: {spec} cannot be used: {err}", self.name));
                return;
            }
            Err(err) => {
                tracing::error!(worker = %self.name, device = %spec, error = %err, "opening the worker's device failed");
                return;
            }
        };
        tracing::info!(worker = %self.name, device = %self.device, "worker started");
        let lease = self.service.0.config.lease;
        let mut last_beat: Option<Instant> = None;
        while !self.service.is_shutting_down() {
            // Registered before looking at the queue, so a submission that
            // lands between the claim and the wait is not missed.
            let woken = self.service.0.wake.notified();
            match self
                .service
                .store()
                .claim_next(
                    &self.identity,
                    lease.ttl,
                    self.service.0.config.claim_limits,
                )
                .await
            {
                Ok(Some(claim)) => {
                    let companions = self.lockstep_companions(&claim.job, &device).await;
                    if companions.is_empty() {
                        let span =
                            tracing::info_span!("job", id = %claim.job.id, worker = %self.name);
                        self.run_job(claim, &device).instrument(span).await;
                    } else {
                        let ids: Vec<String> = std::iter::once(&claim)
                            .chain(&companions)
                            .map(|claim| claim.job.id.to_string())
                            .collect();
                        let span = tracing::info_span!("lockstep", jobs = %ids.join(","), worker = %self.name);
                        self.run_group(claim, companions, &device)
                            .instrument(span)
                            .await;
                    }
                    last_beat = None;
                }
                Ok(None) => {
                    if last_beat.is_none_or(|at| at.elapsed() >= lease.heartbeat) {
                        last_beat = Some(Instant::now());
                        self.beat(WorkerActivity::IDLE).await;
                    }
                    let _ = tokio::time::timeout(IDLE_POLL, woken).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not claim a job");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
        if let Err(err) = self.service.store().worker_stopped(&self.identity).await {
            tracing::debug!(error = %err, "could not remove the worker from the listing");
        }
        tracing::info!(worker = %self.name, "worker stopped");
    }

    /// Tells the `workers` table this worker is alive (and what it trains).
    async fn beat(&self, activity: WorkerActivity) {
        let ttl = self.service.0.config.lease.ttl;
        if let Err(err) = self
            .service
            .store()
            .worker_heartbeat(&self.identity, activity, ttl)
            .await
        {
            tracing::debug!(error = %err, "could not record the worker's heartbeat");
        }
    }

    async fn run_job(&self, claim: Claim, device: &Device) {
        let running = self.begin(claim).await;
        let service = self.service.clone();
        let handle = Handle::current();
        let span = tracing::Span::current();
        let (job, held) = (running.job.clone(), Arc::clone(&running.held));
        let device = device.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            run_blocking(&service, &job, &device, &held, handle)
        })
        .await;
        let ending = match outcome {
            Ok(result) => self.ending(&running.held, result).await,
            Err(join_error) => panicked(&running.held, join_error),
        };
        self.conclude(running, ending).await;
    }

    /// A claimed job starts: its stop flag is registered, its lease renewed by a heartbeat
    /// from now on, and the flag raised at once if a cancel, an early stop or a shutdown
    /// came between the claim and now.
    async fn begin(&self, claim: Claim) -> Running {
        let Claim { job, lease } = claim;
        let id = job.id;
        tracing::info!(job = %id, attempt = job.attempts, "job started");
        crate::observability::job_started();
        let stop = Arc::new(AtomicBool::new(false));
        self.service.running_jobs().insert(id, Arc::clone(&stop));
        let held = Arc::new(HeldJob::new(
            lease,
            Arc::clone(&stop),
            self.service.0.config.lease,
        ));
        self.beat(WorkerActivity::training(id, None)).await;
        let heartbeat = Heartbeat::start(
            self.service.store().clone(),
            self.identity.clone(),
            Arc::clone(&held),
        );
        // The flag is registered first, then the store is read, so a request that set the
        // store's flag before we registered ours is seen here.
        let stop_requested = match self.service.store().job(id).await {
            Ok(Some(now)) => now.cancel_requested || now.stop_early_requested,
            Ok(None) => true,
            Err(err) => {
                tracing::warn!(job = %id, error = %err, "could not read the job's stop flags");
                job.cancel_requested || job.stop_early_requested
            }
        };
        if self.service.is_shutting_down() || stop_requested {
            stop.store(true, Ordering::SeqCst);
        }
        self.service.emit(JobEvent::Status {
            job: id,
            status: JobStatus::Running,
        });
        Running {
            job,
            held,
            heartbeat,
        }
    }

    /// How a run that returned ended, as far as the job's status is concerned.
    async fn ending(&self, held: &HeldJob, result: Result<RunEnd, RunError>) -> Ending {
        if held.is_lost() {
            return Ending::Lost;
        }
        match result {
            Ok(RunEnd::Completed) => Ending::Finished(JobStatus::Succeeded, None),
            Ok(RunEnd::Paused(epochs)) => Ending::Paused(epochs),
            Err(RunError::Train(TrainError::Stopped { .. })) => {
                match self.service.store().job(held.lease.job).await {
                    Ok(Some(job)) if job.cancel_requested => {
                        Ending::Finished(JobStatus::Canceled, None)
                    }
                    Ok(Some(job)) if job.stop_early_requested => {
                        Ending::Finished(JobStatus::StoppedEarly, None)
                    }
                    _ => Ending::Requeued,
                }
            }
            Err(err) => {
                // The whole cause, paths included, for the operator; clients get it redacted.
                tracing::warn!(error = %err, "job failed");
                Ending::Finished(JobStatus::Failed, Some(err.into_job_error()))
            }
        }
    }

    /// A job's run is over: its end is stored (the lease renewed until then), and its
    /// sweep told.
    async fn conclude(&self, running: Running, ending: Ending) {
        let Running {
            job,
            held,
            heartbeat,
        } = running;
        self.service.running_jobs().remove(&job.id);
        held.begin_settling();
        let settled = self.settle(&held, ending).await;
        drop(heartbeat);
        match settled {
            Ok(()) => {}
            Err(StoreError::LeaseLost { .. }) => {}
            // The job stays `running` in the store until its lease expires; then it is
            // re-queued and resumes from its last checkpoint.
            Err(err) => {
                tracing::error!(job = %job.id, error = %err, "could not record the end of the job")
            }
        }
        if let Some((sweep, _)) = job.sweep {
            // A member that paused or ended may complete a rung or end the sweep.
            self.service.advance_sweep_later(sweep);
        }
    }

    /// Stores how the job ended, with the lease (fenced, retried across a database
    /// restart), then tells event subscribers.
    async fn settle(&self, held: &HeldJob, ending: Ending) -> Result<(), StoreError> {
        let store = self.service.store();
        let id = held.lease.job;
        match ending {
            Ending::Lost => {}
            Ending::Requeued => {
                held.write("the re-queue", || store.release(&held.lease))
                    .await?;
                crate::observability::job_requeued(&self.name);
                tracing::info!(job = %id, "job stopped by shutdown; re-queued");
                self.service.emit(JobEvent::Status {
                    job: id,
                    status: JobStatus::Queued,
                });
            }
            Ending::Paused(epochs) => {
                let status = held
                    .write("the pause", || store.pause(&held.lease, epochs))
                    .await?;
                tracing::info!(job = %id, %status, epochs, "sweep member reached its early-stopping rung");
                self.service.emit(JobEvent::Status { job: id, status });
                if status.is_finished() {
                    self.service.emit(JobEvent::Done {
                        job: id,
                        status,
                        error: None,
                    });
                } else if status == JobStatus::Queued {
                    // Its sweep let it past the rung while it was stopping: train on.
                    self.service.0.wake.notify_waiters();
                }
            }
            Ending::Finished(status, error) => {
                held.write("the end of the job", || {
                    store.finish(&held.lease, status, error.as_ref())
                })
                .await?;
                crate::observability::job_finished(&self.name, status);
                match &error {
                    Some(err) => {
                        tracing::warn!(job = %id, %status, code = %err.code, message = %err.message, "job ended")
                    }
                    None => tracing::info!(job = %id, %status, "job ended"),
                }
                self.service.emit(JobEvent::Status { job: id, status });
                self.service.emit(JobEvent::Done {
                    job: id,
                    status,
                    error,
                });
            }
        }
        Ok(())
    }
}

/// A job a worker holds while it trains: its record, its lease and the lease's heartbeat.
struct Running {
    job: JobRecord,
    held: Arc<HeldJob>,
    heartbeat: Heartbeat,
}

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("the stored spec breaks a rule at `{}`: {}", .0.path, .0.message)]
    InvalidSpec(InvalidJob),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RunError {
    fn into_job_error(self) -> JobError {
        let code = match &self {
            RunError::InvalidSpec(_) => FailureCode::InvalidSpec,
            RunError::Data(_) => FailureCode::DataUnavailable,
            RunError::Train(err) => match err {
                TrainError::Diverged { .. } | TrainError::DivergedMetric { .. } => {
                    FailureCode::Diverged
                }
                TrainError::InvalidConfig(_) | TrainError::Schedule(_) => {
                    FailureCode::InvalidSchedule
                }
                TrainError::Checkpoint { .. } => FailureCode::Checkpoint,
                TrainError::Observer(_) => FailureCode::Store,
                TrainError::Device(_) => FailureCode::Device,
                TrainError::Candle(_) | TrainError::Stopped { .. } => FailureCode::Internal,
            },
            RunError::Store(_) => FailureCode::Store,
        };
        JobError::new(code, self.to_string())
    }
}

/// How a run that did not fail ended.
enum RunEnd {
    /// Every epoch of the plan is done.
    Completed,
    /// It stopped at its pause point (`run_until_epoch`) before the last epoch, after this
    /// many epochs.
    Paused(u32),
}

/// Everything a job does off the async runtime: load data, train, report.
fn run_blocking(
    service: &Service,
    job: &JobRecord,
    device: &Device,
    held: &Arc<HeldJob>,
    handle: Handle,
) -> Result<RunEnd, RunError> {
    // The database is a trust boundary: the spec is checked again, by the same rules.
    let plan = JobPlan::new(job.spec.clone()).map_err(RunError::InvalidSpec)?;
    let data = service.0.datasets.load(plan.spec().limits(), device)?;
    let checkpoint_dir = prepare(service, job, &plan, &data, held, &handle)?;
    let mut observer = JobObserver::new(service, job, held, handle);
    let trained = train::train(
        RunSpec {
            plan: plan.train(),
            data: &data,
            device,
            checkpoint_dir: Some(&checkpoint_dir),
            stop: &held.stop,
            until_epoch: job.run_until_epoch,
        },
        &mut observer,
    );
    // Nothing of the run may be written once its end is stored.
    observer.await_progress_write();
    Ok(run_end(&plan, &trained?))
}

/// Before a job's training starts: its update count for the loaded data is stored and its
/// checkpoint directory made; returns that directory.
fn prepare(
    service: &Service,
    job: &JobRecord,
    plan: &JobPlan,
    data: &crate::data::Dataset,
    held: &HeldJob,
    handle: &Handle,
) -> Result<std::path::PathBuf, RunError> {
    let train_len = u64::try_from(data.train_len()).unwrap_or(u64::MAX);
    let total_steps = plan.spec().total_steps(train_len);
    handle.block_on(held.write("the job's length", || {
        service.store().set_total_steps(&held.lease, total_steps)
    }))?;
    let checkpoint_dir = service.artifacts_dir(job.id);
    std::fs::create_dir_all(&checkpoint_dir).map_err(|source| TrainError::Checkpoint {
        path: checkpoint_dir.clone(),
        source: source.into(),
    })?;
    Ok(checkpoint_dir)
}

/// Whether a run that returned did all its epochs or stopped at its pause point.
fn run_end(plan: &JobPlan, summary: &train::RunSummary) -> RunEnd {
    if summary.epochs_done < plan.spec().epochs {
        RunEnd::Paused(summary.epochs_done)
    } else {
        RunEnd::Completed
    }
}

/// Streams a run's progress and epochs into the store and to SSE clients.
struct JobObserver<'a> {
    service: &'a Service,
    job: JobId,
    held: Arc<HeldJob>,
    /// The sweep the job is a member of: told of every stored epoch.
    sweep: Option<crate::sweep::SweepId>,
    worker: &'a str,
    handle: Handle,
    last_write: Option<Instant>,
    /// The progress write under way, if any.
    progress_write: ProgressWrite,
}

/// The progress write under way for one job, if any; shared by its observer and, in a
/// lockstep group, the code that reports the member's end (the observer itself is the
/// group's until the group ends).
#[derive(Clone, Default)]
struct ProgressWrite(Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>);

impl ProgressWrite {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::JoinHandle<()>>> {
        // The slot holds a handle or nothing; a poisoned one is still consistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_busy(&self) -> bool {
        self.slot()
            .as_ref()
            .is_some_and(|write| !write.is_finished())
    }

    /// Lets the write under way end, for at most [`PROGRESS_WRITE_WAIT`], then drops it:
    /// before an epoch is stored (whose progress an older write landing later would undo)
    /// and before the run's end is (after which nothing of it may be written).
    fn wait(&self, handle: &Handle) {
        let Some(mut write) = self.slot().take() else {
            return;
        };
        let ended = handle.block_on(tokio::time::timeout(PROGRESS_WRITE_WAIT, &mut write));
        if ended.is_err() {
            write.abort();
            tracing::warn!("a progress write did not return in time; dropped");
        }
    }
}

impl<'a> JobObserver<'a> {
    fn new(
        service: &'a Service,
        job: &'a JobRecord,
        held: &Arc<HeldJob>,
        handle: Handle,
    ) -> JobObserver<'a> {
        JobObserver {
            service,
            job: job.id,
            held: Arc::clone(held),
            sweep: job.sweep.map(|(sweep, _)| sweep),
            worker: job.worker.as_deref().unwrap_or("-"),
            handle,
            last_write: None,
            progress_write: ProgressWrite::default(),
        }
    }

    /// Writes how far the job has got, in the background: progress is advisory, so
    /// training never waits for it (a slow or unreachable database would hold every batch
    /// for the pool's acquire timeout). While one write is under way the next ones are
    /// skipped, so writes never pile up nor land out of order.
    fn write_progress(&mut self, completed_epochs: u32, step: u64) {
        if self.progress_write.is_busy() {
            return;
        }
        let store = self.service.store().clone();
        let held = Arc::clone(&self.held);
        let write = async move {
            match store
                .set_progress(&held.lease, completed_epochs, step)
                .await
            {
                Ok(()) => held.confirm(),
                Err(StoreError::LeaseLost { .. }) => held.lose(),
                // The epoch rows are what must not be lost; they are retried.
                Err(err) => tracing::warn!(error = %err, "could not store progress"),
            }
        };
        *self.progress_write.slot() = Some(
            self.handle
                .spawn(write.instrument(tracing::Span::current())),
        );
    }

    /// See [`ProgressWrite::wait`].
    fn await_progress_write(&mut self) {
        self.progress_write.wait(&self.handle);
    }
}

impl TrainObserver for JobObserver<'_> {
    fn on_progress(&mut self, p: &Progress) {
        self.held.set_examples_per_sec(p.examples_per_sec);
        let fraction = if p.total_steps == 0 {
            0.0
        } else {
            p.global_step as f64 / p.total_steps as f64
        };
        self.service.emit(JobEvent::Progress {
            job: self.job,
            progress: ProgressEvent {
                epoch: p.epoch,
                epochs: p.epochs,
                step: p.global_step,
                total_steps: p.total_steps,
                fraction,
                batch_loss: p.batch_loss,
                examples_per_sec: p.examples_per_sec,
            },
        });
        if self
            .last_write
            .is_none_or(|at| at.elapsed() >= PROGRESS_WRITE_INTERVAL)
        {
            self.last_write = Some(Instant::now());
            self.write_progress(p.epoch.saturating_sub(1), p.global_step);
        }
    }

    fn on_epoch(
        &mut self,
        report: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(fault) = &self.service.0.config.fault {
            fault(self.job, report.metrics.epoch);
        }
        self.await_progress_write();
        let store = self.service.store();
        let held = &self.held;
        self.handle
            .block_on(held.write("the epoch", || store.record_epoch(&held.lease, report)))?;
        crate::observability::epoch_stored(self.job, self.worker, &report.metrics);
        self.service.emit(JobEvent::Epoch {
            job: self.job,
            metrics: report.metrics.clone(),
        });
        if let Some(sweep) = self.sweep {
            self.service.advance_sweep_later(sweep);
        }
        Ok(())
    }
}

/// A training thread that panicked fails its job.
fn panicked(held: &HeldJob, join_error: tokio::task::JoinError) -> Ending {
    let error = panic_error(&join_failure(join_error));
    if held.is_lost() {
        return Ending::Lost;
    }
    Ending::Finished(JobStatus::Failed, Some(error))
}

/// What a training thread that did not return says about itself.
fn join_failure(join_error: tokio::task::JoinError) -> String {
    let message = if join_error.is_panic() {
        panic_message(join_error.into_panic())
    } else {
        "the training thread was aborted".to_string()
    };
    tracing::error!(%message, "training panicked");
    message
}

/// The error of a job whose training thread panicked with `message`.
fn panic_error(message: &str) -> JobError {
    JobError::new(
        FailureCode::InternalPanic,
        format!("training stopped on an internal error: {message}"),
    )
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "unknown panic".to_string()
    }
}
