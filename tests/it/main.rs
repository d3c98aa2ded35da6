//! lrlab's integration tests, in one binary (one build, one link): the HTTP API
//! over a real server and SQLite file, the job service, crash recovery with the
//! real `lrlab` binary, and the training engine through its public API.

mod api_jobs;
mod crash_recovery;
mod job_concurrency;
mod job_events;
mod leases;
mod schedules;
mod store;
mod support;
mod test_db;
mod train_grad;
mod train_run;
