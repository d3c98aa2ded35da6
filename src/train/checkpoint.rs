//! Crash-safe checkpoints, so a run interrupted by a restart or a stop continues at the next
//! epoch and ends exactly where an uninterrupted run would have.
//!
//! A checkpoint directory holds `checkpoint.json` (the commit point: completed epoch, global
//! step, scheduler state, config fingerprint, and the name of the tensor file) and
//! `checkpoint-eNNNNN.safetensors` (weights and SGD momentum buffers of that epoch). The tensor
//! file is written first under its own epoch-numbered name, then the JSON replaces the previous
//! one by an atomic rename, so the pair on disk is always consistent: a crash at any point
//! leaves either the old checkpoint or the new one. Every file is written to a temporary name,
//! fsynced, renamed, and the directory fsynced.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::schedule::SchedulerState;

use super::{CheckpointError, TrainConfig, TrainError};

/// The metadata file; its presence means a checkpoint exists.
pub const META_FILE: &str = "checkpoint.json";
/// Final weights written at the end of a run (parameters only, named as in
/// [`super::model::PARAM_NAMES`]).
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// Version of the checkpoint layout; a different version is not resumed.
pub const FORMAT: u32 = 1;
/// Prefix of momentum-buffer tensor names in the tensor file.
pub const MOMENTUM_PREFIX: &str = "momentum.";

const TENSORS_PREFIX: &str = "checkpoint-e";
const TENSORS_SUFFIX: &str = ".safetensors";

/// The JSON half of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Number of completed epochs (1-based epoch number of the last completed epoch).
    pub epoch: u32,
    /// Updates done so far over the whole run.
    pub global_step: u64,
    /// The scheduler's adaptive state after the epoch.
    pub scheduler: SchedulerState,
    /// [`fingerprint`] of the run that wrote it; a checkpoint is only resumed by the same run.
    pub fingerprint: String,
    /// File name (in the same directory) of the tensors.
    pub tensors_file: String,
    /// The configuration, for people reading the file.
    pub config: TrainConfig,
}

/// A loaded checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Its metadata.
    pub meta: CheckpointMeta,
    /// Weights by parameter name, and momentum buffers as `momentum.<name>`.
    pub tensors: HashMap<String, Tensor>,
}

/// Identifies a run for resuming: SHA-256 over the configuration (except `epochs`, so a run
/// may be extended), the data set sizes and the model version. Everything that changes the
/// trajectory of the weights is in it.
pub fn fingerprint(
    config: &TrainConfig,
    train_len: usize,
    test_len: usize,
) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(config)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("epochs");
    }
    let canonical = serde_json::json!({
        "model": "lenet5-relu-maxpool-v1",
        "config": value,
        "train_len": train_len,
        "test_len": test_len,
    });
    Ok(format!(
        "{:x}",
        Sha256::digest(canonical.to_string().as_bytes())
    ))
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TrainError + '_ {
    move |e| TrainError::checkpoint(path, e)
}

/// Flushes a directory entry change (rename, create) to disk. Only Unix can open directories.
fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `path` atomically: `write` fills a temporary sibling, which is fsynced and renamed
/// over `path`; then the directory is fsynced.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    write(&tmp)?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
    write_atomic(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp).map_err(|e| TrainError::checkpoint(tmp, e))
    })
}

/// Writes the final weights file atomically.
pub fn save_weights(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
    save_tensors(path, tensors)
}

/// Writes a checkpoint into `dir` (created if missing) and removes the tensor files of older
/// checkpoints.
pub fn save(
    dir: &Path,
    meta: &CheckpointMeta,
    tensors: &HashMap<String, Tensor>,
) -> Result<(), TrainError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tensors_path = dir.join(&meta.tensors_file);
    save_tensors(&tensors_path, tensors)?;
    let meta_path = dir.join(META_FILE);
    let json =
        serde_json::to_vec_pretty(meta).map_err(|e| TrainError::checkpoint(&meta_path, e))?;
    write_atomic(&meta_path, |tmp| {
        File::create(tmp)
            .and_then(|mut f| f.write_all(&json))
            .map_err(io_err(tmp))
    })?;
    remove_stale_tensors(dir, Some(&meta.tensors_file))
}

/// The tensor file name for a checkpoint after `epoch`.
pub fn tensors_file_name(epoch: u32) -> String {
    format!("{TENSORS_PREFIX}{epoch:05}{TENSORS_SUFFIX}")
}

fn remove_stale_tensors(dir: &Path, keep: Option<&str>) -> Result<(), TrainError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_tensors = name.starts_with(TENSORS_PREFIX)
            && (name.ends_with(TENSORS_SUFFIX) || name.ends_with(".tmp"));
        if is_tensors && Some(name) != keep {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// Reads `dir`'s checkpoint metadata; `Ok(None)` when there is no checkpoint.
pub fn read_meta(dir: &Path) -> Result<Option<CheckpointMeta>, TrainError> {
    let path = dir.join(META_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::checkpoint(&path, e)),
    };
    let meta: CheckpointMeta =
        serde_json::from_slice(&bytes).map_err(|e| TrainError::checkpoint(&path, e))?;
    if meta.format != FORMAT {
        return Err(TrainError::checkpoint(
            &path,
            CheckpointError::Format(format!(
                "format {} is not supported (expected {FORMAT})",
                meta.format
            )),
        ));
    }
    Ok(Some(meta))
}

/// Loads `dir`'s checkpoint with its tensors on `device`; `Ok(None)` when there is none.
pub fn load(dir: &Path, device: &Device) -> Result<Option<Checkpoint>, TrainError> {
    let Some(meta) = read_meta(dir)? else {
        return Ok(None);
    };
    // The tensor file name comes from a file: refuse anything but a plain name in `dir`.
    let plain = Path::new(&meta.tensors_file).file_name() == Some(meta.tensors_file.as_ref());
    if !plain {
        let path = dir.join(META_FILE);
        return Err(TrainError::checkpoint(
            path,
            CheckpointError::Format(format!("bad tensors_file {:?}", meta.tensors_file)),
        ));
    }
    let path: PathBuf = dir.join(&meta.tensors_file);
    let tensors = candle_core::safetensors::load(&path, device)
        .map_err(|e| TrainError::checkpoint(&path, e))?;
    Ok(Some(Checkpoint { meta, tensors }))
}

/// Deletes `dir`'s checkpoint (metadata and tensor files), so the next run starts fresh.
pub fn remove(dir: &Path) -> Result<(), TrainError> {
    let meta = dir.join(META_FILE);
    match fs::remove_file(&meta) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(TrainError::checkpoint(meta, e)),
    }
    if dir.is_dir() {
        remove_stale_tensors(dir, None)?;
    }
    Ok(())
}

/// A file inside the checkpoint directory, for callers that write artefacts next to it.
pub fn weights_path(dir: &Path) -> PathBuf {
    dir.join(WEIGHTS_FILE)
}
