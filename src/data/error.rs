//! The one error type of the data layer.
//!
//! Every variant names the file (or directory) it is about and says what is wrong
//! with it in terms a user can act on, because these errors end up verbatim in CLI
//! output and in failed-job records.

use std::path::PathBuf;

/// Why loading, locating or downloading Fashion-MNIST failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file the loader needs does not exist.
    #[error("{path}: file not found", path = .path.display())]
    Missing {
        /// The file that was looked for (without and with `.gz` where both were tried).
        path: PathBuf,
    },

    /// The file exists but reading it failed at the OS level.
    #[error("{path}: cannot read: {source}", path = .path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying OS error.
        source: std::io::Error,
    },

    /// The file starts like a gzip stream but does not decompress.
    #[error("{path}: corrupt gzip data: {source}", path = .path.display())]
    Gzip {
        /// The gzip-compressed file.
        path: PathBuf,
        /// The decompressor's error.
        source: std::io::Error,
    },

    /// The IDX magic number is not the one for this kind of file.
    #[error(
        "{path}: bad magic number: expected {expected} ({kind}), found {found}",
        path = .path.display()
    )]
    BadMagic {
        /// The IDX file.
        path: PathBuf,
        /// 2051 for images, 2049 for labels.
        expected: u32,
        /// What the header held.
        found: u32,
        /// "images" or "labels", to make the message self-explanatory.
        kind: &'static str,
    },

    /// The header declares dimensions we refuse (zero, absurdly large, or not 28x28).
    #[error("{path}: bad dimensions: {detail}", path = .path.display())]
    BadDimensions {
        /// The IDX file.
        path: PathBuf,
        /// What is wrong with the declared dimensions.
        detail: String,
    },

    /// The (decompressed) file is shorter than its header promises.
    #[error(
        "{path}: truncated: expected {expected} bytes, found {found}",
        path = .path.display()
    )]
    Truncated {
        /// The IDX file.
        path: PathBuf,
        /// Header plus payload size the header implies.
        expected: u64,
        /// How many (decompressed) bytes the file actually holds.
        found: u64,
    },

    /// The (decompressed) file is longer than its header says: a sign of a wrong or corrupt file.
    #[error(
        "{path}: trailing data: expected {expected} bytes, the file holds more",
        path = .path.display()
    )]
    TrailingData {
        /// The IDX file.
        path: PathBuf,
        /// Header plus payload size the header implies.
        expected: u64,
    },

    /// The image file and the label file of one split disagree on the number of examples.
    #[error(
        "{images} holds {n_images} images but {labels} holds {n_labels} labels",
        images = .images.display(),
        labels = .labels.display()
    )]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// Number of images it declares.
        n_images: usize,
        /// The labels file.
        labels: PathBuf,
        /// Number of labels it declares.
        n_labels: usize,
    },

    /// A label is not a Fashion-MNIST class (0..=9).
    #[error(
        "{path}: label {label} at index {index} is out of range (classes are 0..=9)",
        path = .path.display()
    )]
    LabelOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// Index of the first bad label.
        index: usize,
        /// The bad value.
        label: u8,
    },

    /// No directory held the data set and downloading was not allowed or failed.
    ///
    /// The message lists every place looked at and every way to fix it.
    #[error("{message}")]
    NotFound {
        /// The full, user-facing explanation (places searched, remedies).
        message: String,
    },

    /// Downloading one file failed; the message includes the manual alternatives.
    #[error(
        "downloading {url} to {path} failed: {reason}\n{alternatives}",
        path = .path.display()
    )]
    DownloadFailed {
        /// What was being fetched.
        url: String,
        /// Where it was going to be stored.
        path: PathBuf,
        /// Why it failed.
        reason: String,
        /// What the user can do instead (see [`crate::data::remedies`]).
        alternatives: String,
    },

    /// A file's SHA-256 is not the published one.
    #[error(
        "{path}: SHA-256 mismatch: expected {expected}, actual {actual}",
        path = .path.display()
    )]
    ChecksumMismatch {
        /// The file checked.
        path: PathBuf,
        /// Hex digest we require.
        expected: String,
        /// Hex digest of the file as found.
        actual: String,
    },

    /// Creating a tensor from a loaded split failed (e.g. out of device memory).
    #[error("{what}: tensor error: {source}")]
    Tensor {
        /// Which tensor (e.g. "train images from /path/train-images-idx3-ubyte.gz").
        what: String,
        /// candle's error.
        source: candle_core::Error,
    },
}
