//! The `lrlab` command line: `serve`, `worker`, `train`, `sweep`, `preview`, `bench`, `token`.
//!
//! Front-ends only: each command parses its options and calls the engines
//! (`train`, `preview`) or the server assembly (`app`); the engines know
//! nothing of clap, progress bars or downloads.

pub mod bench;
pub mod preview;
pub mod serve;
pub mod sweep;
pub mod token;
pub mod train;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// lrlab: train a LeNet on Fashion-MNIST under any learning-rate schedule,
/// over HTTP or from the shell, and compare the schedules' curves and results.
#[derive(Debug, Parser)]
#[command(name = "lrlab", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr: `pretty` (human-readable) or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "LRLAB_LOG_FORMAT",
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and its training workers (`--workers 0`: the API only).
    Serve(serve::ServeArgs),
    /// Run training workers only, on a shared database (no API; `--metrics-bind` for
    /// Prometheus).
    Worker(serve::WorkerArgs),
    /// Train one network in the foreground, with a progress bar.
    Train(train::TrainArgs),
    /// Print a schedule's learning rates (table, CSV, JSON or SVG) without training.
    Preview(preview::PreviewArgs),
    /// Measure training and evaluation throughput on the real data, per thread count.
    Bench(bench::BenchArgs),
    /// Run a sweep (schedules × seeds, early stopping) in the foreground, without a server.
    Sweep(sweep::SweepArgs),
    /// Create, list and revoke API tokens (`--auth tokens`, docs/AUTH.md).
    Token(token::TokenArgs),
}

/// How long `lrlab serve` waits, once shut down, for blocking threads before it exits
/// anyway (see [`crate::app::SHUTDOWN_DEADLINE`]).
const RUNTIME_EXIT_GRACE: Duration = Duration::from_secs(1);

/// Runs a parsed command line; the process exit code says whether it worked.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => run_server(serve::serve(args)),
        Command::Worker(args) => run_server(serve::work(args)),
        Command::Train(args) => train::run_train(args),
        Command::Preview(args) => preview::run_preview(args, &mut std::io::stdout().lock()),
        Command::Bench(args) => bench::run_bench(args),
        Command::Sweep(args) => sweep::run_sweep(args),
        Command::Token(args) => token::run_token(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a long-lived process (`serve`, `worker`) on a multi-threaded runtime.
fn run_server(
    process: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            let served = runtime.block_on(process);
            // Dropping a runtime waits for every blocking thread, however long: a
            // training thread that has not reached its next batch yet (a data download,
            // a long evaluation) would hold the exit past the shutdown deadline. Its job
            // is still `running` in the store and is re-queued at the next start.
            runtime.shutdown_timeout(RUNTIME_EXIT_GRACE);
            served
        })
}

impl Command {
    /// The log level when `LRLAB_LOG` says nothing: the server logs what it does; commands
    /// that draw progress bars only log problems.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Serve(_) | Command::Worker(_) => "info",
            _ => "warn",
        }
    }
}

/// Logs go to stderr, filtered by `LRLAB_LOG` (else `RUST_LOG`; env-filter syntax,
/// default `default_level`).
pub fn init_tracing(format: LogFormat, default_level: &str) {
    let configured = ["LRLAB_LOG", "RUST_LOG"].iter().find_map(|var| {
        let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
        match tracing_subscriber::EnvFilter::try_new(&value) {
            Ok(filter) => Some(filter),
            Err(err) => {
                eprintln!("warning: ignoring {var}={value:?}: {err}");
                None
            }
        }
    });
    let filter = configured.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}
