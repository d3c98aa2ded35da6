//! The `lrlab` command line: `serve`, `train`, `preview`, `bench`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::server::{self, ServeArgs};

/// lrlab: train a LeNet on Fashion-MNIST under any learning-rate schedule,
/// over HTTP or from the shell, and compare the schedules' curves and results.
#[derive(Debug, Parser)]
#[command(name = "lrlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and its training workers.
    Serve(ServeArgs),
    /// Train one network in the foreground, with a progress bar.
    Train(crate::train::cli::TrainArgs),
    /// Print a schedule's learning rates (table, CSV, JSON or SVG) without training.
    Preview(crate::preview::PreviewArgs),
    /// Measure training and evaluation throughput on the real data, per thread count.
    Bench(crate::train::bench::BenchArgs),
}

/// Runs a parsed command line; the process exit code says whether it worked.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(server::serve(args))),
        Command::Train(args) => crate::train::cli::run_train(args),
        Command::Preview(args) => crate::preview::run_preview(args, &mut std::io::stdout().lock()),
        Command::Bench(args) => crate::train::bench::run_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: `info` for lrlab).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lrlab=info"));
    // A second initialisation (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
