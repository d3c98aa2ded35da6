//! Metrics for monitoring, in the Prometheus text format (`GET /metrics`).
//!
//! One recorder per process (the `metrics` facade is process-global): installed the first
//! time [`install`] runs, reused by every server the process starts afterwards (the
//! integration tests start many), so counters are per process. What each metric means:
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `lrlab_jobs` | gauge | `status` | jobs in the store by status, counted at scrape time |
//! | `lrlab_queue_depth` | gauge | | queued jobs, counted at scrape time |
//! | `lrlab_jobs_started_total` | counter | | runs started (a resumed job counts again) |
//! | `lrlab_jobs_finished_total` | counter | `status` | runs ended: succeeded, failed, canceled |
//! | `lrlab_jobs_requeued_total` | counter | | runs stopped by shutdown and put back in the queue |
//! | `lrlab_epochs_completed_total` | counter | | epochs trained and stored |
//! | `lrlab_lockstep_groups_total` | counter | | lockstep groups a worker trained (sweep members trained together) |
//! | `lrlab_lockstep_members_total` | counter | | runs started as members of those groups |
//! | `lrlab_worker_examples_per_second` | gauge | `worker` | training speed of the worker's last epoch; 0 when idle |
//! | `lrlab_http_requests_total` | counter | `route`, `method`, `status` | requests answered |
//! | `lrlab_http_request_duration_seconds` | histogram | `route`, `method` | time to the response's headers |
//!
//! Job counts are read from the store when scraped rather than kept up to date by the
//! workers: the store is the truth, several processes may share it, and a scrape every
//! few seconds costs five indexed counts. `route` is the route's template
//! (`/v1/jobs/{id}`), never the raw path, so ids do not multiply the series; requests no
//! route matches are `unmatched`.
//!
//! The job events are also logged here, one line each with the job id.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::job::{JobId, JobStatus};
use crate::train::EpochMetrics;

pub const JOBS: &str = "lrlab_jobs";
pub const QUEUE_DEPTH: &str = "lrlab_queue_depth";
pub const JOBS_STARTED: &str = "lrlab_jobs_started_total";
pub const JOBS_FINISHED: &str = "lrlab_jobs_finished_total";
pub const JOBS_REQUEUED: &str = "lrlab_jobs_requeued_total";
pub const EPOCHS_COMPLETED: &str = "lrlab_epochs_completed_total";
pub const LOCKSTEP_GROUPS: &str = "lrlab_lockstep_groups_total";
pub const LOCKSTEP_MEMBERS: &str = "lrlab_lockstep_members_total";
pub const WORKER_EXAMPLES_PER_SECOND: &str = "lrlab_worker_examples_per_second";
pub const HTTP_REQUESTS: &str = "lrlab_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "lrlab_http_request_duration_seconds";

/// Buckets of the request-duration histogram, in seconds: from a cached asset (~1 ms) to
/// the request timeout (30 s).
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histograms are drained into their buckets between scrapes, so their sample
/// buffers stay small however rarely the server is scraped.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Installs the process's recorder the first time it is called; later calls return it.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder
            .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_DURATION.to_string()), &DURATION_BUCKETS)
        {
            Ok(builder) => builder,
            Err(err) => {
                tracing::warn!(error = %err, "request-duration buckets refused; durations are summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(err) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("lrlab-metrics-upkeep".to_string())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "no metrics upkeep thread; histograms are drained at scrape time only");
        }
        handle
    })
}

fn describe() {
    describe_gauge!(JOBS, "Jobs in the store by status.");
    describe_gauge!(QUEUE_DEPTH, "Jobs waiting to be claimed.");
    describe_counter!(
        JOBS_STARTED,
        "Training runs started (a resumed job counts again)."
    );
    describe_counter!(JOBS_FINISHED, "Training runs ended, by final status.");
    describe_counter!(
        JOBS_REQUEUED,
        "Training runs stopped by shutdown and re-queued."
    );
    describe_counter!(EPOCHS_COMPLETED, "Epochs trained and stored.");
    describe_counter!(
        LOCKSTEP_GROUPS,
        "Lockstep groups trained: sweep members claimed and trained together."
    );
    describe_counter!(
        LOCKSTEP_MEMBERS,
        "Training runs started as members of a lockstep group."
    );
    describe_gauge!(
        WORKER_EXAMPLES_PER_SECOND,
        "Training examples per second of the worker's last epoch; 0 when idle."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time to the response's headers, by route template and method."
    );
}

/// Sets the job-count gauges from counts read at scrape time.
pub fn record_job_counts(counts: &[(JobStatus, i64)]) {
    for &(status, count) in counts {
        gauge!(JOBS, "status" => status.as_str()).set(count as f64);
        if status == JobStatus::Queued {
            gauge!(QUEUE_DEPTH).set(count as f64);
        }
    }
}

/// Every metric in the Prometheus text format.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

/// A worker started (or resumed) a job.
pub fn job_started() {
    counter!(JOBS_STARTED).increment(1);
}

/// A worker claimed `members` sweep members to train together in lockstep.
pub fn lockstep_group_started(members: usize) {
    counter!(LOCKSTEP_GROUPS).increment(1);
    counter!(LOCKSTEP_MEMBERS).increment(u64::try_from(members).unwrap_or(u64::MAX));
}

/// A worker stored an epoch of `job`.
pub fn epoch_stored(job: JobId, worker: &str, metrics: &EpochMetrics) {
    counter!(EPOCHS_COMPLETED).increment(1);
    gauge!(WORKER_EXAMPLES_PER_SECOND, "worker" => worker.to_string())
        .set(metrics.examples_per_sec);
    tracing::info!(
        job = %job,
        epoch = metrics.epoch,
        train_loss = metrics.train_loss,
        test_acc = metrics.test_acc,
        examples_per_sec = metrics.examples_per_sec.round(),
        "epoch stored"
    );
}

/// A worker's run of a job ended with `status`.
pub fn job_finished(worker: &str, status: JobStatus) {
    counter!(JOBS_FINISHED, "status" => status.as_str()).increment(1);
    gauge!(WORKER_EXAMPLES_PER_SECOND, "worker" => worker.to_string()).set(0.0);
}

/// A worker's run was stopped by shutdown and its job put back in the queue.
pub fn job_requeued(worker: &str) {
    counter!(JOBS_REQUEUED).increment(1);
    gauge!(WORKER_EXAMPLES_PER_SECOND, "worker" => worker.to_string()).set(0.0);
}

/// An HTTP request was answered. `route` is a route template or `unmatched`.
pub fn http_request(route: &str, method: &'static str, status: u16, elapsed: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.to_string(), "method" => method, "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION, "route" => route.to_string(), "method" => method)
        .record(elapsed.as_secs_f64());
}
