//! Finding the data set on this machine (or fetching it), in a fixed order of
//! preference, and explaining every option when none works.

use std::path::{Path, PathBuf};

use super::download;
use super::error::DataError;
use super::files::{missing_files, LOCAL_DIR, SYSTEM_DIR};
use super::remedies::remedies;

/// Where to find Fashion-MNIST, in this order:
/// 1. `explicit` (from `--data-dir` / `LRLAB_DATA_DIR`, resolved by the caller). An
///    explicit directory is authoritative: if it lacks files, the default places are
///    *not* searched (silently training on other data than the user named would be
///    worse than an error); with `allow_download` the files are downloaded into it;
/// 2. otherwise `./data/fashion-mnist` if it holds the four files;
/// 3. else `/usr/share/datasets/fashion-mnist` (`apt-get install dataset-fashion-mnist`);
/// 4. else, only if `allow_download`: download the canonical files into
///    `./data/fashion-mnist`, verifying their SHA-256, with a progress bar.
///
/// Each file may be plain or `.gz`. When nothing works, the error lists what was
/// searched and each remedy.
pub fn locate(explicit: Option<&Path>, allow_download: bool) -> Result<PathBuf, DataError> {
    let target = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(LOCAL_DIR));
    let fetch = |dir: &Path| download::download_all(dir);
    locate_in(
        explicit,
        &default_candidates(),
        allow_download.then_some((target.as_path(), &fetch as &Fetch)),
    )
}

/// A way to fill a directory with the four files (the real one downloads; tests
/// pass a stand-in so no test touches the network).
pub type Fetch<'a> = dyn Fn(&Path) -> Result<(), DataError> + 'a;

/// The fixed, non-explicit places searched, in order.
pub fn default_candidates() -> Vec<PathBuf> {
    vec![PathBuf::from(LOCAL_DIR), PathBuf::from(SYSTEM_DIR)]
}

/// The search behind [`locate`], with the candidate directories and the fetcher
/// given explicitly: `explicit` alone if given, else each of `candidates`; then (if
/// `fetch` is `Some((dir, f))`) `f(dir)` followed by a check that `dir` now holds
/// the files.
pub fn locate_in(
    explicit: Option<&Path>,
    candidates: &[PathBuf],
    fetch: Option<(&Path, &Fetch<'_>)>,
) -> Result<PathBuf, DataError> {
    let mut searched = Vec::new();
    let places: Vec<(&Path, &str)> = match explicit {
        Some(dir) => vec![(dir, "explicit data directory")],
        None => candidates
            .iter()
            .map(|p| (p.as_path(), "default location"))
            .collect(),
    };
    for (dir, what) in places {
        let missing = missing_files(dir);
        if missing.is_empty() {
            tracing::info!(path = %dir.display(), source = what, "Fashion-MNIST found");
            return Ok(dir.to_path_buf());
        }
        searched.push(describe_miss(dir, &missing));
    }
    let download_outcome = match fetch {
        None => "downloading was not allowed".to_string(),
        Some((dir, fetch)) => {
            tracing::info!(path = %dir.display(), "Fashion-MNIST not found locally; downloading");
            match fetch(dir) {
                Ok(()) if missing_files(dir).is_empty() => {
                    tracing::info!(path = %dir.display(), source = "download", "Fashion-MNIST found");
                    return Ok(dir.to_path_buf());
                }
                Ok(()) => format!(
                    "the download finished but {} still lacks files",
                    dir.display()
                ),
                // The remedies follow below; don't repeat those inside the error.
                Err(DataError::DownloadFailed { url, reason, .. }) => {
                    format!("the download of {url} failed: {reason}")
                }
                Err(e) => format!("the download failed: {e}"),
            }
        }
    };
    if searched.is_empty() {
        searched.push("  (no directories)".to_string());
    }
    Err(DataError::NotFound {
        message: format!(
            "Fashion-MNIST not found. Searched:\n{}\nand {download_outcome}.\n{}",
            searched.join("\n"),
            remedies(fetch.is_some())
        ),
    })
}

fn describe_miss(dir: &Path, missing: &[super::files::DataFile]) -> String {
    if !dir.is_dir() {
        return format!("  - {}: no such directory", dir.display());
    }
    let names: Vec<String> = missing.iter().map(|f| format!("{}[.gz]", f.name)).collect();
    format!("  - {}: missing {}", dir.display(), names.join(", "))
}
