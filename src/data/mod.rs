//! Fashion-MNIST for lrlab: finding it, reading its IDX files, keeping it on the
//! training device, and a synthetic stand-in for tests.
//!
//! The flow is `locate` -> [`RawDataset::load`] (host bytes, validated) ->
//! [`Dataset::from_raw`] (one f32 image tensor and one u32 label tensor per split,
//! copied to the device once). Training then forms batches by index selection with
//! [`epoch_permutation`], so no per-batch host copies happen and an epoch's order
//! can be recomputed after a restart.

mod download;
mod error;
mod files;
mod idx;
mod locate;
mod permutation;
mod remedies;
pub mod synthetic;

#[cfg(test)]
mod tests;

use std::path::Path;

use candle_core::{Device, Tensor};

pub use download::{download_all, sha256_file, verify_sha256};
pub use error::DataError;
pub use files::{
    has_all_files, missing_files, DataFile, ALL_FILES, ENV_VAR, LOCAL_DIR, MIRRORS, SYSTEM_DIR,
    TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
pub use idx::{
    encode_idx_images, encode_idx_labels, parse_idx_images, parse_idx_labels, read_idx_images,
    read_idx_labels, IMAGES_MAGIC, LABELS_MAGIC, MAX_EXAMPLES, NUM_CLASSES,
};
pub use locate::{default_candidates, locate, locate_in, Fetch};
pub use permutation::epoch_permutation;
pub use remedies::remedies;

/// Side of a Fashion-MNIST image; the LeNet's layer sizes depend on it.
pub const IMAGE_SIDE: usize = 28;

/// One split (train or test) as validated host bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// `len() * rows * cols` pixels, image after image, each row-major, 0..=255.
    pub images: Vec<u8>,
    /// One class index (0..=9) per image.
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Read an images file and a labels file, check they agree, keep the first
    /// `limit` examples (all if `None` or larger than the file).
    pub fn load(images: &Path, labels: &Path, limit: Option<usize>) -> Result<Split, DataError> {
        let (rows, cols, mut pixels) = read_idx_images(images)?;
        let mut label_bytes = read_idx_labels(labels)?;
        let per_image = rows * cols; // checked against MAX_SIDE by the reader
        let n_images = pixels.len() / per_image;
        if n_images != label_bytes.len() {
            return Err(DataError::CountMismatch {
                images: images.to_path_buf(),
                n_images,
                labels: labels.to_path_buf(),
                n_labels: label_bytes.len(),
            });
        }
        if let Some(limit) = limit {
            let keep = limit.min(n_images);
            pixels.truncate(keep * per_image);
            label_bytes.truncate(keep);
        }
        Ok(Split {
            images: pixels,
            labels: label_bytes,
            rows,
            cols,
        })
    }
}

/// Use only the first N examples of a split (the chapter's DATASET_LIMIT), for quick
/// runs. `None` means all; a limit above the split's size means all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Keep at most this many training examples.
    pub train: Option<usize>,
    /// Keep at most this many test examples.
    pub test: Option<usize>,
}

/// Both splits of Fashion-MNIST as validated host bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDataset {
    /// The 60,000 training examples (or the first `Limits::train`).
    pub train: Split,
    /// The 10,000 test examples (or the first `Limits::test`).
    pub test: Split,
}

impl RawDataset {
    /// Read the four IDX files from `dir` (each `name` or `name.gz`, the plain one
    /// preferred), validating headers, lengths and labels, and requiring 28x28 images
    /// in both splits (what the model is built for).
    pub fn load(dir: &Path, limits: Limits) -> Result<RawDataset, DataError> {
        let path_of = |file: DataFile| {
            file.find_in(dir).ok_or_else(|| DataError::Missing {
                path: dir.join(format!("{}[.gz]", file.name)),
            })
        };
        let train_images = path_of(TRAIN_IMAGES)?;
        let train_labels = path_of(TRAIN_LABELS)?;
        let test_images = path_of(TEST_IMAGES)?;
        let test_labels = path_of(TEST_LABELS)?;
        let train = Split::load(&train_images, &train_labels, limits.train)?;
        check_side(&train, &train_images)?;
        let test = Split::load(&test_images, &test_labels, limits.test)?;
        check_side(&test, &test_images)?;
        tracing::info!(
            path = %dir.display(),
            train = train.len(),
            test = test.len(),
            "Fashion-MNIST loaded"
        );
        Ok(RawDataset { train, test })
    }
}

fn check_side(split: &Split, images: &Path) -> Result<(), DataError> {
    if split.rows == IMAGE_SIDE && split.cols == IMAGE_SIDE {
        Ok(())
    } else {
        Err(DataError::BadDimensions {
            path: images.to_path_buf(),
            detail: format!(
                "images are {}x{}, expected {IMAGE_SIDE}x{IMAGE_SIDE}",
                split.rows, split.cols
            ),
        })
    }
}

/// Both splits as tensors on the training device, made once per run.
///
/// Images are `(N, 1, rows, cols)` f32 in `[0, 1]` (pixel / 255); labels are `(N,)`
/// u32. Batches are cut from these by `index_select` with an epoch's permutation.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Training images, `(N_train, 1, 28, 28)` f32.
    pub train_images: Tensor,
    /// Training labels, `(N_train,)` u32.
    pub train_labels: Tensor,
    /// Test images, `(N_test, 1, 28, 28)` f32.
    pub test_images: Tensor,
    /// Test labels, `(N_test,)` u32.
    pub test_labels: Tensor,
}

impl Dataset {
    /// Convert host bytes into device tensors: one host-to-device copy per tensor.
    pub fn from_raw(raw: &RawDataset, device: &Device) -> Result<Dataset, DataError> {
        let (train_images, train_labels) = split_tensors(&raw.train, "train", device)?;
        let (test_images, test_labels) = split_tensors(&raw.test, "test", device)?;
        Ok(Dataset {
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }

    /// [`RawDataset::load`] followed by [`Dataset::from_raw`].
    pub fn load(dir: &Path, limits: Limits, device: &Device) -> Result<Dataset, DataError> {
        Dataset::from_raw(&RawDataset::load(dir, limits)?, device)
    }

    /// Number of training examples.
    pub fn train_len(&self) -> usize {
        self.train_labels.dims().first().copied().unwrap_or(0)
    }

    /// Number of test examples.
    pub fn test_len(&self) -> usize {
        self.test_labels.dims().first().copied().unwrap_or(0)
    }
}

fn split_tensors(
    split: &Split,
    name: &str,
    device: &Device,
) -> Result<(Tensor, Tensor), DataError> {
    let n = split.len();
    let pixels: Vec<f32> = split.images.iter().map(|&p| f32::from(p) / 255.0).collect();
    let images =
        Tensor::from_vec(pixels, (n, 1, split.rows, split.cols), device).map_err(|source| {
            DataError::Tensor {
                what: format!("{name} images ({n} of {}x{})", split.rows, split.cols),
                source,
            }
        })?;
    let labels: Vec<u32> = split.labels.iter().map(|&l| u32::from(l)).collect();
    let labels = Tensor::from_vec(labels, n, device).map_err(|source| DataError::Tensor {
        what: format!("{name} labels ({n})"),
        source,
    })?;
    Ok((images, labels))
}
