//! Data sets shared by the jobs of one server.
//!
//! Reading and decompressing Fashion-MNIST takes about a second; jobs reuse
//! the raw bytes, read once per data directory, and only cut them to their
//! own limits and copy them to their device.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::Device;

use crate::data::{self, DataError, Dataset, Limits, RawDataset, Split};

/// Where to find the data and whether fetching it is allowed.
#[derive(Debug, Clone, Default)]
pub struct DataConfig {
    /// `--data-dir` / `LRLAB_DATA_DIR`, if given.
    pub dir: Option<PathBuf>,
    /// Whether the server may download Fashion-MNIST when it is nowhere to be found.
    pub allow_download: bool,
}

/// Raw data sets by directory, loaded on first use.
#[derive(Debug, Default)]
pub struct DatasetCache {
    config: DataConfig,
    raw: Mutex<HashMap<PathBuf, Arc<RawDataset>>>,
}

impl DatasetCache {
    pub fn new(config: DataConfig) -> Self {
        DatasetCache {
            config,
            raw: Mutex::new(HashMap::new()),
        }
    }

    /// The data set for a job: located, read once, cut to `limits`, on `device`.
    /// Blocking (file I/O and decompression): call it off the async runtime.
    pub fn load(&self, limits: Limits, device: &Device) -> Result<Dataset, DataError> {
        let dir = data::locate(self.config.dir.as_deref(), self.config.allow_download)?;
        let raw = self.raw(&dir)?;
        Dataset::from_raw(&limited(&raw, limits), device)
    }

    fn raw(&self, dir: &Path) -> Result<Arc<RawDataset>, DataError> {
        if let Some(raw) = self.lock().get(dir) {
            return Ok(Arc::clone(raw));
        }
        let raw = Arc::new(RawDataset::load(dir, Limits::default())?);
        self.lock().insert(dir.to_path_buf(), Arc::clone(&raw));
        Ok(raw)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Arc<RawDataset>>> {
        // The map stays consistent even if a holder panicked: it only inserts whole entries.
        self.raw
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The first `limits` examples of each split.
fn limited(raw: &RawDataset, limits: Limits) -> RawDataset {
    RawDataset {
        train: prefix(&raw.train, limits.train),
        test: prefix(&raw.test, limits.test),
    }
}

fn prefix(split: &Split, limit: Option<usize>) -> Split {
    let pixels = split.rows * split.cols;
    let count = limit.map_or(split.labels.len(), |n| n.min(split.labels.len()));
    Split {
        images: split.images[..count * pixels].to_vec(),
        labels: split.labels[..count].to_vec(),
        rows: split.rows,
        cols: split.cols,
    }
}
