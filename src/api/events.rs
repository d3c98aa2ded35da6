//! `GET /v1/jobs/{id}/events`: a job's progress as Server-Sent Events.
//!
//! A client first gets the current state (`status`, then every stored
//! `epoch`), then live `progress` and `epoch` events, and a final `done`.
//! The subscription is made before the state is read, so nothing that
//! happens in between is missed; epochs already sent are not sent twice.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::job_view::JobView;
use super::jobs::job_id;
use super::routes::Routes;
use super::AppState;
use crate::job::{JobError, JobId, JobStatus};
use crate::service::JobEvent;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new().get("/v1/jobs/{id}/events", events)
}

#[derive(Debug, Serialize)]
struct DoneData {
    status: JobStatus,
    error: Option<JobError>,
}

/// An event with a JSON payload. Our payloads always serialize; should one ever not, the
/// client gets an `error` event saying so (and the log has why), never a silent `{}`.
fn sse_event<T: Serialize>(name: &str, data: &T) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|err| {
            tracing::error!(event = name, error = %err, "could not encode an SSE event");
            Event::default()
                .event("error")
                .data(format!("could not encode the {name} event"))
        })
}

/// Per-connection state of the live part of the stream.
struct Live {
    state: AppState,
    job: JobId,
    receiver: tokio::sync::broadcast::Receiver<JobEvent>,
    /// The last epoch sent, so a row both stored and broadcast is sent once.
    last_epoch: u32,
    finished: bool,
    /// Events to send before reading more from the broadcast (a resync after a lag).
    pending: std::collections::VecDeque<Event>,
}

async fn events(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = job_id(path)?;
    let receiver = state.service().subscribe();
    let details = state.service().job(id).await?;
    let rows = state.service().metrics(id).await?;
    let job = &details.record;
    let finished = job.status.is_finished();
    let done = DoneData {
        status: job.status,
        error: job.error.clone(),
    };
    let mut initial = vec![sse_event("status", &JobView::from(details))];
    let last_epoch = rows.last().map_or(0, |row| row.epoch);
    initial.extend(rows.iter().map(|row| sse_event("epoch", row)));
    if finished {
        initial.push(sse_event("done", &done));
    }

    let live = Live {
        state,
        job: id,
        receiver,
        last_epoch,
        finished,
        pending: std::collections::VecDeque::new(),
    };
    let live = stream::unfold(live, next_live_event);
    let stream = stream::iter(initial).chain(live).map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The next live event of this job, or `None` once it is done.
async fn next_live_event(mut live: Live) -> Option<(Event, Live)> {
    loop {
        if let Some(event) = live.pending.pop_front() {
            return Some((event, live));
        }
        if live.finished {
            return None;
        }
        let received = tokio::select! {
            received = live.receiver.recv() => received,
            () = live.state.service().closed() => return None,
        };
        let event = match received {
            Ok(event) => event,
            Err(RecvError::Closed) => return None,
            Err(RecvError::Lagged(_)) => {
                // Too slow to keep up: resend the current state and the epochs stored
                // meanwhile, instead of the missed ticks.
                if let Err(err) = resync(&mut live).await {
                    tracing::warn!(job = %live.job, error = %err, "ending an SSE stream that fell behind");
                    return None;
                }
                continue;
            }
        };
        if event.job() != live.job {
            continue;
        }
        let out = match event {
            JobEvent::Status { status, .. } => {
                sse_event("status", &serde_json::json!({"status": status}))
            }
            JobEvent::Progress { progress, .. } => sse_event("progress", &progress),
            JobEvent::Epoch { metrics, .. } => {
                if metrics.epoch <= live.last_epoch {
                    continue;
                }
                live.last_epoch = metrics.epoch;
                sse_event("epoch", &metrics)
            }
            JobEvent::Done { status, error, .. } => {
                live.finished = true;
                sse_event("done", &DoneData { status, error })
            }
        };
        return Some((out, live));
    }
}

/// Queues the job's current state, the epochs stored since the last one sent, and `done`
/// if it has finished.
async fn resync(live: &mut Live) -> Result<(), ApiError> {
    let details = live.state.service().job(live.job).await?;
    let rows = live.state.service().metrics(live.job).await?;
    let status = details.record.status;
    let error = details.record.error.clone();
    live.pending
        .push_back(sse_event("status", &JobView::from(details)));
    let sent = live.last_epoch;
    for row in rows.iter().filter(|row| row.epoch > sent) {
        live.pending.push_back(sse_event("epoch", row));
        live.last_epoch = row.epoch;
    }
    if status.is_finished() {
        live.finished = true;
        live.pending
            .push_back(sse_event("done", &DoneData { status, error }));
    }
    Ok(())
}
