//! A worker's side of leases: heartbeats while a job runs, fenced writes that survive a
//! database restart, the sweep that re-queues jobs of dead workers, and the start-up
//! recovery of this machine's crashed processes. The rules are in `docs/QUEUE.md`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{JobEvent, Service};
use crate::job::{JobId, JobStatus};
use crate::store::{
    process_may_be_alive, Lease, LeaseConfig, Store, StoreError, WorkerActivity, WorkerIdentity,
};

/// How long a failed fenced write waits before it is tried again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A running job's lease, shared by its worker, its heartbeat task and its training
/// thread.
pub(super) struct HeldJob {
    pub(super) lease: Lease,
    /// The job's stop flag, checked between batches.
    pub(super) stop: Arc<AtomicBool>,
    lost: AtomicBool,
    /// The worker is storing the job's end, which ends the lease: a heartbeat refused
    /// now is expected.
    settling: AtomicBool,
    /// When the database last confirmed the lease (claim, heartbeat or fenced write).
    confirmed: Mutex<Instant>,
    /// The latest training throughput (examples/s, as `f64` bits; NaN: none yet), which
    /// the heartbeat reports in the `workers` table.
    examples_per_sec: AtomicU64,
    config: LeaseConfig,
}

impl HeldJob {
    pub(super) fn new(lease: Lease, stop: Arc<AtomicBool>, config: LeaseConfig) -> HeldJob {
        HeldJob {
            lease,
            stop,
            lost: AtomicBool::new(false),
            settling: AtomicBool::new(false),
            confirmed: Mutex::new(Instant::now()),
            examples_per_sec: AtomicU64::new(f64::NAN.to_bits()),
            config,
        }
    }

    /// The job belongs to someone else now (or may): stop it and write nothing more.
    pub(super) fn lose(&self) {
        if !self.lost.swap(true, Ordering::SeqCst) {
            tracing::warn!(job = %self.lease.job, "lost the job's lease (it expired and may run elsewhere now); stopping it without writing");
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Notes the job's latest training throughput.
    pub(super) fn set_examples_per_sec(&self, rate: f64) {
        self.examples_per_sec
            .store(rate.to_bits(), Ordering::Relaxed);
    }

    /// What the worker is doing, for its heartbeat.
    fn activity(&self) -> WorkerActivity {
        let rate = f64::from_bits(self.examples_per_sec.load(Ordering::Relaxed));
        WorkerActivity::training(self.lease.job, rate.is_finite().then_some(rate))
    }

    /// Says that the job's end is being stored (its lease ends with it).
    pub(super) fn begin_settling(&self) {
        self.settling.store(true, Ordering::SeqCst);
    }

    /// Notes that the database just accepted a write fenced by this lease.
    pub(super) fn confirm(&self) {
        *self
            .confirmed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
    }

    /// Whether the lease may still be ours: the database confirmed it less than a
    /// lease's length ago, so nobody can have taken the job yet.
    fn may_still_hold(&self) -> bool {
        self.confirmed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .elapsed()
            < self.config.ttl
    }

    /// Runs one fenced write, retrying transient failures (a database restart) while
    /// the lease may still be ours. A lost lease, or a database away for longer than a
    /// lease, marks the job lost.
    pub(super) async fn write<T, F, Fut>(&self, what: &str, mut write: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        loop {
            if self.is_lost() {
                return Err(StoreError::LeaseLost {
                    job: self.lease.job,
                });
            }
            match write().await {
                Ok(written) => {
                    self.confirm();
                    return Ok(written);
                }
                Err(err @ StoreError::LeaseLost { .. }) => {
                    self.lose();
                    return Err(err);
                }
                Err(err) if err.is_transient() => {
                    if !self.may_still_hold() {
                        self.lose();
                        return Err(err);
                    }
                    tracing::warn!(error = %err, "could not store {what}; retrying");
                    tokio::time::sleep(RETRY_PAUSE.min(self.config.heartbeat)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Renews a running job's lease every heartbeat; ends when dropped.
pub(super) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Heartbeat {
    /// Also raises the job's stop flag when a cancel or an early stop is pending (asked for
    /// through another process's API, or decided by a sweep coordinator elsewhere) or the
    /// lease is lost.
    pub(super) fn start(store: Store, worker: WorkerIdentity, held: Arc<HeldJob>) -> Heartbeat {
        Heartbeat(tokio::spawn(async move {
            let config = held.config;
            let mut ticks = tokio::time::interval(config.heartbeat);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match store.heartbeat(&held.lease, config.ttl).await {
                    Ok(renewal) => {
                        held.confirm();
                        if renewal.stop_requested() {
                            held.stop.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(StoreError::LeaseLost { .. }) => {
                        if !held.settling.load(Ordering::SeqCst) {
                            held.lose();
                        }
                        return;
                    }
                    Err(err) => {
                        if !held.may_still_hold() {
                            held.lose();
                            return;
                        }
                        tracing::warn!(error = %err, "could not renew the job's lease; retrying");
                    }
                }
                if let Err(err) = store
                    .worker_heartbeat(&worker, held.activity(), config.ttl)
                    .await
                {
                    tracing::debug!(error = %err, "could not record the worker's heartbeat");
                }
            }
        }))
    }
}

/// Re-queues jobs whose leases expired, every heartbeat, until shutdown: whichever
/// process notices first recovers the jobs of a machine that died.
pub(super) async fn sweep_expired(service: Service) {
    let mut ticks = tokio::time::interval(service.0.config.lease.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = service.closed() => return,
        }
        if let Err(err) = requeue_expired(&service).await {
            tracing::warn!(error = %err, "could not re-queue jobs with expired leases");
        }
    }
}

/// One sweep; the jobs it moved are announced to this process's event subscribers.
pub(super) async fn requeue_expired(service: &Service) -> Result<Vec<JobId>, StoreError> {
    let expired = service.store().requeue_expired().await?;
    for job in &expired {
        if job.status == JobStatus::Queued {
            tracing::warn!(job = %job.job, "the job's lease expired (its worker stopped answering); it resumes from its last checkpoint");
        } else {
            tracing::warn!(job = %job.job, status = %job.status, "the job's lease expired (its worker stopped answering); it ended as it was asked to");
        }
        service.emit(JobEvent::Status {
            job: job.job,
            status: job.status,
        });
        if job.status.is_finished() {
            service.emit(JobEvent::Done {
                job: job.job,
                status: job.status,
                error: None,
            });
        }
        if job.status == JobStatus::Queued {
            service.0.wake.notify_waiters();
        }
        if let Some(sweep) = job.sweep {
            // A member that ended, or lost its running slot, may let its sweep move on.
            service.advance_sweep_later(sweep);
        }
    }
    Ok(expired.into_iter().map(|job| job.job).collect())
}

/// At start-up: the running jobs of processes of this machine that are gone (a crash, a
/// kill) go back to the queue at once, without waiting for their leases to expire.
pub(super) async fn requeue_dead_processes(
    store: &Store,
    host: &str,
) -> Result<Vec<JobId>, StoreError> {
    let mut requeued = Vec::new();
    for held in store.held_leases().await? {
        if held.worker.host != host || process_may_be_alive(held.worker.pid) {
            continue;
        }
        match store.release(&held.lease).await {
            Ok(()) => requeued.push(held.lease.job),
            // Another process took or settled it meanwhile.
            Err(StoreError::LeaseLost { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(requeued)
}
