//! The `lrlab` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lrlab::cli::Cli::parse();
    lrlab::cli::init_tracing();
    lrlab::cli::run(cli)
}
