//! The four Fashion-MNIST files: their names and the published checksums of the
//! canonical gzip files.

use std::path::{Path, PathBuf};

/// Project-local data directory, relative to the working directory; also where a
/// download goes when no explicit directory was given.
pub const LOCAL_DIR: &str = "data/fashion-mnist";
/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Environment variable the CLI reads as the explicit data directory.
pub const ENV_VAR: &str = "LRLAB_DATA_DIR";
/// Base URLs of the canonical public copies of the files (Zalando Research's own
/// bucket and its repository), tried in order.
pub const MIRRORS: [&str; 2] = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
];

/// One of the four files of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataFile {
    /// File name without `.gz` (e.g. `train-images-idx3-ubyte`).
    pub name: &'static str,
    /// SHA-256 (lower-case hex) of the canonical `name.gz` published by Zalando Research.
    pub gz_sha256: &'static str,
    /// Size in bytes of the canonical `name.gz`.
    pub gz_size: u64,
}

impl DataFile {
    /// `name.gz`, the name of the compressed file as published.
    pub fn gz_name(&self) -> String {
        format!("{}.gz", self.name)
    }

    /// The path of this file in `dir`: the uncompressed file if present, else the
    /// `.gz`; `None` when neither is a file.
    pub fn find_in(&self, dir: &Path) -> Option<PathBuf> {
        let plain = dir.join(self.name);
        if plain.is_file() {
            return Some(plain);
        }
        let gz = dir.join(self.gz_name());
        gz.is_file().then_some(gz)
    }
}

// Checksums of the canonical files (the ones behind the official MD5s in the
// Fashion-MNIST README: 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...).
// Cross-checked locally: Debian's dataset-fashion-mnist ships the same deflate
// streams with the gzip header's file name and time stripped (each file is shorter by
// exactly the length of its name plus NUL); restoring the name and the original time
// (2017-08-31) reproduces the official MD5 and these SHA-256 values byte for byte.

/// Training images: 60,000 images of 28x28 (magic 2051).
pub const TRAIN_IMAGES: DataFile = DataFile {
    name: "train-images-idx3-ubyte",
    gz_sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    gz_size: 26_421_880,
};
/// Training labels: 60,000 class indices (magic 2049).
pub const TRAIN_LABELS: DataFile = DataFile {
    name: "train-labels-idx1-ubyte",
    gz_sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    gz_size: 29_515,
};
/// Test images: 10,000 images of 28x28 (magic 2051).
pub const TEST_IMAGES: DataFile = DataFile {
    name: "t10k-images-idx3-ubyte",
    gz_sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    gz_size: 4_422_102,
};
/// Test labels: 10,000 class indices (magic 2049).
pub const TEST_LABELS: DataFile = DataFile {
    name: "t10k-labels-idx1-ubyte",
    gz_sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    gz_size: 5_148,
};

/// All four files, in the order the data set's README lists them.
pub const ALL_FILES: [DataFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// The files of `ALL_FILES` that `dir` lacks (neither plain nor `.gz`).
pub fn missing_files(dir: &Path) -> Vec<DataFile> {
    ALL_FILES
        .iter()
        .copied()
        .filter(|f| f.find_in(dir).is_none())
        .collect()
}

/// Whether `dir` holds all four files (each plain or gzipped).
pub fn has_all_files(dir: &Path) -> bool {
    missing_files(dir).is_empty()
}
