//! Writes a small, learnable, Fashion-MNIST-shaped data set (the one the tests use) to a
//! directory, for running a real `lrlab serve` without the real data: CI's schemathesis
//! run, demos, screenshots.
//!
//! `cargo run --example gen-data -- DIR [TRAIN_IMAGES] [TEST_IMAGES]` (default 512 and 128).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gen-data DIR [TRAIN_IMAGES] [TEST_IMAGES]");
        return ExitCode::FAILURE;
    };
    let mut count = |default: usize, what: &str| match args.next() {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{what} must be a positive integer, got `{text}`")),
    };
    let sizes =
        count(512, "TRAIN_IMAGES").and_then(|train| Ok((train, count(128, "TEST_IMAGES")?)));
    let (train, test) = match sizes {
        Ok(sizes) => sizes,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match lrlab::data::synthetic::write_dataset(&dir, train, test, 7, true) {
        Ok(()) => {
            println!(
                "wrote {train} training and {test} test images to {}",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: could not write {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}
