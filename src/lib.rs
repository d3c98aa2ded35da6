//! lrlab: training-as-a-service for learning-rate schedule experiments.
//!
//! The crate is layered so that each part can be tested on its own:
//! - [`schedule`]: the pure learning-rate schedule engine (no I/O, no HTTP, no candle);
//! - [`data`]: Fashion-MNIST IDX loading, location and a synthetic generator for tests;
//! - [`train`]: the candle LeNet, its optimizer, the training loop and checkpoints;
//! - [`store`]: the job store on SQLite or PostgreSQL (all SQL lives there);
//! - [`service`]: the queue workers that run stored jobs with [`train`];
//! - [`job`]: the job domain (what is submitted, stored and warned about);
//! - [`preview`]: a schedule's curve as a table, CSV or an SVG chart;
//! - [`chart`]: SVG line charts (previews, job metrics, comparisons);
//! - [`observability`]: Prometheus metrics and the job events' log lines;
//! - [`api`]: the axum HTTP layer over all of the above.

pub mod api;
pub mod app;
pub mod auth;
pub mod chart;
pub mod cli;
pub mod data;
pub mod job;
pub mod json_keys;
pub mod observability;
pub mod preview;
pub mod schedule;
pub mod series;
pub mod service;
pub mod store;
pub mod sweep;
pub mod train;
pub mod validation;
