//! One worker: claims jobs for its device and trains them on a blocking thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tracing::Instrument;

use super::{JobEvent, ProgressEvent, Service};
use crate::job::{JobId, JobStatus};
use crate::store::{JobError, JobRecord, StoreError};
use crate::train::{self, EpochReport, Progress, RunSpec, TrainError, TrainObserver};

/// How often an idle worker looks at the queue without being woken.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// How often a running job's progress is written to the database.
const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Worker {
    service: Service,
    name: String,
    device: String,
}

/// How a training run ended, as far as the job's status is concerned.
enum Ending {
    Finished(JobStatus, Option<JobError>),
    /// Stopped by shutdown: back to the queue, to resume from its checkpoint.
    Requeued,
}

impl Worker {
    pub(super) fn new(service: Service, slot: usize, device: String) -> Self {
        Worker {
            service,
            name: format!("worker-{slot}"),
            device,
        }
    }

    /// Claims and runs jobs until shutdown.
    pub(super) async fn run(self) {
        tracing::info!(worker = %self.name, device = %self.device, "worker started");
        while !self.service.is_shutting_down() {
            // Registered before looking at the queue, so a submission that
            // lands between the claim and the wait is not missed.
            let woken = self.service.0.wake.notified();
            match self
                .service
                .store()
                .claim_next(&self.name, &self.device)
                .await
            {
                Ok(Some(job)) => {
                    let span = tracing::info_span!("job", id = job.id, worker = %self.name);
                    self.run_job(job).instrument(span).await;
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

    async fn run_job(&self, job: JobRecord) {
        let id = job.id;
        tracing::info!(attempt = job.attempts, "job started");
        let stop = Arc::new(AtomicBool::new(false));
        self.service.running_jobs().insert(id, Arc::clone(&stop));
        // A cancel or shutdown that came between the claim and now.
        if self.service.is_shutting_down() || job.cancel_requested {
            stop.store(true, Ordering::SeqCst);
        }
        self.service.emit(JobEvent::Status {
            job: id,
            status: JobStatus::Running,
        });

        let ending = self.train(job, Arc::clone(&stop)).await;
        self.service.running_jobs().remove(&id);

        if let Err(err) = self.settle(id, ending).await {
            // The job stays `running` in the store and is re-queued at the next start.
            tracing::error!(error = %err, "could not record the end of the job");
        }
    }

    /// Trains the job on a blocking thread and classifies how it ended.
    async fn train(&self, job: JobRecord, stop: Arc<AtomicBool>) -> Ending {
        let id = job.id;
        let service = self.service.clone();
        let device_name = self.device.clone();
        let handle = Handle::current();
        let span = tracing::Span::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            run_blocking(&service, &job, &device_name, &stop, handle)
        })
        .await;
        match outcome {
            Ok(Ok(())) => Ending::Finished(JobStatus::Succeeded, None),
            Ok(Err(RunError::Train(TrainError::Stopped { .. }))) => {
                match self.service.store().cancel_requested(id).await {
                    Ok(true) => Ending::Finished(JobStatus::Canceled, None),
                    _ => Ending::Requeued,
                }
            }
            Ok(Err(err)) => Ending::Finished(JobStatus::Failed, Some(err.into_job_error())),
            Err(join_error) => {
                let message = if join_error.is_panic() {
                    panic_message(join_error.into_panic())
                } else {
                    "the training thread was aborted".to_string()
                };
                tracing::error!(%message, "training panicked");
                Ending::Finished(
                    JobStatus::Failed,
                    Some(JobError {
                        code: "internal_panic".into(),
                        message: format!("training stopped on an internal error: {message}"),
                    }),
                )
            }
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
            RunError::Data(_) => "data_unavailable",
            RunError::Train(err) => err.code(),
            RunError::Store(_) => "store",
        };
        JobError {
            code: code.to_string(),
            message: self.to_string(),
        }
    }
}

/// Everything a job does off the async runtime: load data, train, report.
fn run_blocking(
    service: &Service,
    job: &JobRecord,
    device_name: &str,
    stop: &AtomicBool,
    handle: Handle,
) -> Result<(), RunError> {
    let device = train::parse_device(device_name)?;
    let data = service.0.datasets.load(job.spec.limits(), &device)?;
    let train_len = u64::try_from(data.train_len()).unwrap_or(u64::MAX);
    handle.block_on(
        service
            .store()
            .set_total_steps(job.id, job.spec.total_steps(train_len)),
    )?;
    let checkpoint_dir = service.artifacts_dir(job.id);
    std::fs::create_dir_all(&checkpoint_dir).map_err(|source| TrainError::Checkpoint {
        path: checkpoint_dir.clone(),
        source: source.into(),
    })?;
    let config = job.spec.train_config();
    let mut observer = JobObserver {
        service,
        job: job.id,
        handle,
        last_write: None,
    };
    train::train(
        RunSpec {
            config: &config,
            data: &data,
            device: &device,
            checkpoint_dir: Some(&checkpoint_dir),
            stop,
        },
        &mut observer,
    )?;
    Ok(())
}

/// Streams a run's progress and epochs into the store and to SSE clients.
struct JobObserver<'a> {
    service: &'a Service,
    job: JobId,
    handle: Handle,
    last_write: Option<Instant>,
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
        self.handle
            .block_on(self.service.store().record_epoch(self.job, report))?;
        self.service.emit(JobEvent::Epoch {
            job: self.job,
            metrics: report.metrics.clone(),
        });
        Ok(())
    }
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
