//! One worker: claims jobs for its device and trains them on a blocking thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tracing::Instrument;

use candle_core::Device;

use super::{JobEvent, ProgressEvent, Service};
use crate::job::{FailureCode, InvalidJob, JobError, JobId, JobPlan, JobStatus};
use crate::store::{JobRecord, StoreError};
use crate::train::{self, DeviceSpec, EpochReport, Progress, RunSpec, TrainError, TrainObserver};

mod lockstep;

/// A function workers call at the end of every epoch, before storing it (tests use it to
/// inject faults such as a panic inside training).
pub type FaultHook = Arc<dyn Fn(JobId, u32) + Send + Sync>;

/// How often an idle worker looks at the queue without being woken.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// How often a running job's progress is written to the database.
const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Worker {
    service: Service,
    name: String,
    device: DeviceSpec,
}

/// How a training run ended, as far as the job's status is concerned.
#[derive(Clone)]
enum Ending {
    Finished(JobStatus, Option<JobError>),
    /// Stopped by shutdown: back to the queue, to resume from its checkpoint.
    Requeued,
    /// A sweep member reached its pause point (an early-stopping rung) after this many
    /// epochs.
    Paused(u32),
}

impl Worker {
    pub(super) fn new(service: Service, slot: usize, device: DeviceSpec) -> Self {
        Worker {
            service,
            name: format!("worker-{slot}"),
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
        while !self.service.is_shutting_down() {
            // Registered before looking at the queue, so a submission that
            // lands between the claim and the wait is not missed.
            let woken = self.service.0.wake.notified();
            match self
                .service
                .store()
                .claim_next(&self.name, &self.device.to_string())
                .await
            {
                Ok(Some(job)) => {
                    let companions = self.lockstep_companions(&job, &device).await;
                    if companions.is_empty() {
                        let span = tracing::info_span!("job", id = %job.id, worker = %self.name);
                        self.run_job(job, &device).instrument(span).await;
                    } else {
                        let ids: Vec<String> = std::iter::once(&job)
                            .chain(&companions)
                            .map(|job| job.id.to_string())
                            .collect();
                        let span = tracing::info_span!("lockstep", jobs = %ids.join(","), worker = %self.name);
                        self.run_group(job, companions, &device)
                            .instrument(span)
                            .await;
                    }
                }
                Ok(None) => {
                    let _ = tokio::time::timeout(IDLE_POLL, woken).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not claim a job");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
        tracing::info!(worker = %self.name, "worker stopped");
    }

    async fn run_job(&self, job: JobRecord, device: &Device) {
        let id = job.id;
        let sweep = job.sweep.map(|(sweep, _)| sweep);
        let stop = self.start(&job).await;
        let ending = self.train(job, device.clone(), Arc::clone(&stop)).await;
        self.end(id, sweep, ending).await;
    }

    /// A claimed job starts: its stop flag is registered and raised at once if a cancel or a
    /// shutdown came between the claim and now.
    async fn start(&self, job: &JobRecord) -> Arc<AtomicBool> {
        let id = job.id;
        tracing::info!(job = %id, attempt = job.attempts, "job started");
        let stop = Arc::new(AtomicBool::new(false));
        self.service.running_jobs().insert(id, Arc::clone(&stop));
        // A cancel or shutdown that came between the claim and now: the flag is
        // registered first, then the store is read, so a cancel that set the
        // store's flag before we registered ours is seen here.
        let canceled = match self.service.store().cancel_requested(id).await {
            Ok(requested) => requested,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the job's cancel flag");
                job.cancel_requested
            }
        };
        if self.service.is_shutting_down() || canceled {
            stop.store(true, Ordering::SeqCst);
        }
        self.service.emit(JobEvent::Status {
            job: id,
            status: JobStatus::Running,
        });
        stop
    }

    /// A job's run ended: its status is settled and its sweep told.
    async fn end(&self, id: JobId, sweep: Option<crate::sweep::SweepId>, ending: Ending) {
        self.service.running_jobs().remove(&id);
        if let Err(err) = self.settle(id, ending).await {
            // The job stays `running` in the store and is re-queued at the next start.
            tracing::error!(job = %id, error = %err, "could not record the end of the job");
        }
        if let Some(sweep) = sweep {
            // A member that paused or ended may complete a rung or end the sweep.
            self.service.advance_sweep_later(sweep);
        }
    }

    /// Trains the job on a blocking thread and classifies how it ended.
    async fn train(&self, job: JobRecord, device: Device, stop: Arc<AtomicBool>) -> Ending {
        let id = job.id;
        let service = self.service.clone();
        let handle = Handle::current();
        let span = tracing::Span::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            run_blocking(&service, &job, &device, &stop, handle)
        })
        .await;
        match outcome {
            Ok(result) => self.ending(id, result).await,
            Err(join_error) => panicked(join_error),
        }
    }

    /// How a run that returned ended, as far as the job's status is concerned.
    async fn ending(&self, id: JobId, result: Result<RunEnd, RunError>) -> Ending {
        match result {
            Ok(RunEnd::Completed) => Ending::Finished(JobStatus::Succeeded, None),
            Ok(RunEnd::Paused(epochs)) => Ending::Paused(epochs),
            Err(RunError::Train(TrainError::Stopped { .. })) => {
                match self.service.store().job(id).await {
                    Ok(Some(job)) if job.cancel_requested => {
                        Ending::Finished(JobStatus::Canceled, None)
                    }
                    Ok(Some(job)) if job.stop_early_requested => {
                        Ending::Finished(JobStatus::StoppedEarly, None)
                    }
                    _ => Ending::Requeued,
                }
            }
            Err(err) => Ending::Finished(JobStatus::Failed, Some(err.into_job_error())),
        }
    }

    async fn settle(&self, id: JobId, ending: Ending) -> Result<(), StoreError> {
        let store = self.service.store();
        match ending {
            Ending::Requeued => {
                store.requeue(id).await?;
                tracing::info!("job stopped by shutdown; re-queued");
                self.service.emit(JobEvent::Status {
                    job: id,
                    status: JobStatus::Queued,
                });
            }
            Ending::Paused(epochs) => {
                let status = store.pause(id, epochs).await?;
                tracing::info!(%status, epochs, "sweep member reached its early-stopping rung");
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
                store.finish(id, status, error.as_ref()).await?;
                match &error {
                    Some(err) => {
                        tracing::warn!(%status, code = %err.code, message = %err.message, "job ended")
                    }
                    None => tracing::info!(%status, "job ended"),
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
    stop: &AtomicBool,
    handle: Handle,
) -> Result<RunEnd, RunError> {
    // The database is a trust boundary: the spec is checked again, by the same rules.
    let plan = JobPlan::new(job.spec.clone()).map_err(RunError::InvalidSpec)?;
    let data = service.0.datasets.load(plan.spec().limits(), device)?;
    let checkpoint_dir = prepare(service, job, &plan, &data, &handle)?;
    let mut observer = JobObserver::new(service, job, handle);
    let summary = train::train(
        RunSpec {
            plan: plan.train(),
            data: &data,
            device,
            checkpoint_dir: Some(&checkpoint_dir),
            stop,
            until_epoch: job.run_until_epoch,
        },
        &mut observer,
    )?;
    Ok(run_end(&plan, &summary))
}

/// Before a job's training starts: its update count for the loaded data is stored and its
/// checkpoint directory made; returns that directory.
fn prepare(
    service: &Service,
    job: &JobRecord,
    plan: &JobPlan,
    data: &crate::data::Dataset,
    handle: &Handle,
) -> Result<std::path::PathBuf, RunError> {
    let train_len = u64::try_from(data.train_len()).unwrap_or(u64::MAX);
    handle.block_on(
        service
            .store()
            .set_total_steps(job.id, plan.spec().total_steps(train_len)),
    )?;
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
    /// The sweep the job is a member of: told of every stored epoch.
    sweep: Option<crate::sweep::SweepId>,
    handle: Handle,
    last_write: Option<Instant>,
}

impl<'a> JobObserver<'a> {
    fn new(service: &'a Service, job: &JobRecord, handle: Handle) -> Self {
        JobObserver {
            service,
            job: job.id,
            sweep: job.sweep.map(|(sweep, _)| sweep),
            handle,
            last_write: None,
        }
    }
}

impl TrainObserver for JobObserver<'_> {
    fn on_progress(&mut self, p: &Progress) {
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
            let completed_epochs = p.epoch.saturating_sub(1);
            if let Err(err) = self.handle.block_on(self.service.store().set_progress(
                self.job,
                completed_epochs,
                p.global_step,
            )) {
                // Progress is advisory; the epoch rows are what must not be lost.
                tracing::warn!(error = %err, "could not store progress");
            }
        }
    }

    fn on_epoch(
        &mut self,
        report: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(fault) = &self.service.0.config.fault {
            fault(self.job, report.metrics.epoch);
        }
        self.handle
            .block_on(self.service.store().record_epoch(self.job, report))?;
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

/// A training thread that panicked fails its job (or every job of its group).
fn panicked(join_error: tokio::task::JoinError) -> Ending {
    let message = if join_error.is_panic() {
        panic_message(join_error.into_panic())
    } else {
        "the training thread was aborted".to_string()
    };
    tracing::error!(%message, "training panicked");
    Ending::Finished(
        JobStatus::Failed,
        Some(JobError::new(
            FailureCode::InternalPanic,
            format!("training stopped on an internal error: {message}"),
        )),
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
