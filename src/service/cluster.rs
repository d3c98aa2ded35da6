//! Messages between the processes that share a database (on PostgreSQL, through
//! `LISTEN`/`NOTIFY`): "jobs were queued", which wakes idle workers at once, and a job's
//! status, epochs and end, which every process rebroadcasts to its own SSE clients — so
//! an API replica streams a job that a worker process trains elsewhere.
//!
//! Best effort: a message lost to a broken connection costs a wake-up (workers poll) or
//! a live event (the store holds every epoch; a client that reconnects gets them all).
//! Progress ticks stay in their process: they come several times a second per job.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{JobEvent, Service};
use crate::job::{JobError, JobId, JobStatus};
use crate::store::Store;
use crate::train::EpochMetrics;

/// One message, tagged with the process that sent it (which ignores its own).
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    origin: u64,
    #[serde(flatten)]
    body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Body {
    /// Jobs were queued (submitted, re-queued, let past a rung): idle workers look.
    Queued,
    Status {
        job: JobId,
        status: JobStatus,
    },
    Epoch {
        job: JobId,
        metrics: EpochMetrics,
    },
    Done {
        job: JobId,
        status: JobStatus,
        error: Option<JobError>,
    },
}

impl Body {
    /// The message for an event other processes relay, if it is one.
    pub(super) fn of(event: &JobEvent) -> Option<Body> {
        match event {
            JobEvent::Status { job, status } => Some(Body::Status {
                job: *job,
                status: *status,
            }),
            JobEvent::Epoch { job, metrics } => Some(Body::Epoch {
                job: *job,
                metrics: metrics.clone(),
            }),
            JobEvent::Done { job, status, error } => Some(Body::Done {
                job: *job,
                status: *status,
                error: error.clone(),
            }),
            JobEvent::Progress { .. } => None,
        }
    }

    fn into_event(self) -> Option<JobEvent> {
        match self {
            Body::Queued => None,
            Body::Status { job, status } => Some(JobEvent::Status { job, status }),
            Body::Epoch { job, metrics } => Some(JobEvent::Epoch { job, metrics }),
            Body::Done { job, status, error } => Some(JobEvent::Done { job, status, error }),
        }
    }
}

/// This process's side: sends what it publishes, in order, on a task of its own, so
/// neither a training thread nor a request waits for the database.
#[derive(Debug)]
pub(super) struct Outbox {
    origin: u64,
    sender: mpsc::UnboundedSender<String>,
}

impl Outbox {
    /// Starts the sending task; it ends once the outbox is dropped and drained.
    pub(super) fn start(store: Store) -> Outbox {
        let (sender, mut receiver) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(payload) = receiver.recv().await {
                if let Err(err) = store.publish(&payload).await {
                    tracing::debug!(error = %err, "could not tell other processes of an event");
                }
            }
        });
        Outbox {
            origin: rand::random(),
            sender,
        }
    }

    pub(super) fn send(&self, body: Body) {
        let message = Message {
            origin: self.origin,
            body,
        };
        match serde_json::to_string(&message) {
            Ok(payload) => {
                let _ = self.sender.send(payload);
            }
            Err(err) => tracing::debug!(error = %err, "could not encode a message"),
        }
    }
}

/// Relays what other processes publish into this one, until shutdown.
pub(super) async fn relay(service: Service, mut messages: mpsc::Receiver<String>, origin: u64) {
    loop {
        let payload = tokio::select! {
            () = service.closed() => return,
            payload = messages.recv() => match payload {
                Some(payload) => payload,
                None => return,
            },
        };
        let message: Message = match serde_json::from_str(&payload) {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(error = %err, "ignoring an unreadable message");
                continue;
            }
        };
        if message.origin == origin {
            continue;
        }
        let wakes = matches!(
            message.body,
            Body::Queued
                | Body::Status {
                    status: JobStatus::Queued,
                    ..
                }
        );
        if let Some(event) = message.body.into_event() {
            service.broadcast(event);
        }
        if wakes {
            service.0.wake.notify_waiters();
        }
    }
}

impl Outbox {
    pub(super) fn origin(&self) -> u64 {
        self.origin
    }
}
