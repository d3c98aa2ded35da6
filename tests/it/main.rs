//! lrlab's integration tests, in one binary (one build, one link): the HTTP API
//! over a real server and SQLite file, the job service, crash recovery with the
//! real `lrlab` binary, and the training engine through its public API.

mod api_jobs;
mod browser;
mod cluster;
mod compare_charts;
mod crash_recovery;
mod hooked_store;
mod idempotency;
mod input_hardening;
mod job_cancel;
mod job_concurrency;
mod job_events;
mod job_queue;
mod job_results;
mod leases;
mod observability;
mod openapi;
mod roles;
mod schedules;
mod server_connections;
mod server_guards;
mod server_health;
mod service_matches_cli;
mod store;
mod support;
mod sweep_lockstep;
mod sweeps;
mod tenants;
mod test_db;
mod train_grad;
mod train_run;
mod worker_faults;
