//! Tests of the data layer on generated data (and, if installed, the real files).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;

use super::synthetic::{generate, write_dataset};
use super::*;

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid images file of `n` 28x28 images with pixel value `i % 256` at flat index `i`.
fn images_file(n: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..n * 784).map(|i| (i % 256) as u8).collect();
    encode_idx_images(28, 28, &pixels).unwrap()
}

fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

fn name() -> PathBuf {
    PathBuf::from("some/dir/train-images-idx3-ubyte")
}

// ---------- IDX parsing ----------

#[test]
fn generated_data_round_trips_plain_and_gzipped() {
    for gzip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), 50, 20, 9, gzip).unwrap();
        let suffix = if gzip { ".gz" } else { "" };
        assert!(dir
            .path()
            .join(format!("t10k-labels-idx1-ubyte{suffix}"))
            .is_file());

        let raw = RawDataset::load(dir.path(), Limits::default()).unwrap();
        let (train_px, train_lb) = generate(50, 9, 0);
        let (test_px, test_lb) = generate(20, 9, 1);
        assert_eq!(raw.train.images, train_px, "gzip = {gzip}");
        assert_eq!(raw.train.labels, train_lb);
        assert_eq!(raw.test.images, test_px);
        assert_eq!(raw.test.labels, test_lb);
        assert_eq!((raw.train.rows, raw.train.cols), (28, 28));
        assert_eq!((raw.train.len(), raw.test.len()), (50, 20));
    }
}

#[test]
fn parse_from_bytes_accepts_plain_and_gzip() {
    let file = images_file(3);
    for bytes in [file.clone(), gz(&file)] {
        let (rows, cols, px) = parse_idx_images(&bytes, &name()).unwrap();
        assert_eq!((rows, cols), (28, 28));
        assert_eq!(px, file[16..]);
    }
    let labels = encode_idx_labels(&[0, 9, 3]).unwrap();
    assert_eq!(
        parse_idx_labels(&gz(&labels), &name()).unwrap(),
        vec![0, 9, 3]
    );
}

#[test]
fn truncated_file_names_the_file_and_both_sizes() {
    let mut file = images_file(2);
    file.truncate(16 + 784 + 100);
    let err = parse_idx_images(&file, &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 1584,
                found: 900,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("train-images-idx3-ubyte"), "{msg}");
    assert!(msg.contains("expected 1584 bytes, found 900"), "{msg}");

    // Same through gzip: a complete gzip stream of a truncated IDX payload.
    let err = parse_idx_images(&gz(&file), &name()).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
}

#[test]
fn truncated_gzip_stream_is_an_error_naming_the_file() {
    let compressed = gz(&images_file(5));
    let cut = &compressed[..compressed.len() / 2];
    let err = parse_idx_images(cut, &name()).unwrap_err();
    assert!(
        matches!(err, DataError::Gzip { .. } | DataError::Truncated { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn corrupt_gzip_data_is_a_gzip_error() {
    let mut compressed = gz(&images_file(5));
    let mid = compressed.len() / 2;
    for b in &mut compressed[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let err = parse_idx_images(&compressed, &name()).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
}

#[test]
fn short_or_empty_header_is_truncation() {
    let err = parse_idx_images(&[], &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 16,
                found: 0,
                ..
            }
        ),
        "{err:?}"
    );
    let err = parse_idx_images(&header(2051, &[1, 28]), &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 16,
                found: 12,
                ..
            }
        ),
        "{err:?}"
    );
    let err = parse_idx_labels(&2049u32.to_be_bytes(), &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 8,
                found: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wrong_magic_reports_expected_and_found() {
    let labels = encode_idx_labels(&[1, 2, 3]).unwrap();
    let err = parse_idx_images(&labels, &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                expected: 2051,
                found: 2049,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("expected 2051"), "{err}");
    assert!(err.to_string().contains("found 2049"), "{err}");

    let err = parse_idx_labels(&images_file(1), &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                expected: 2049,
                found: 2051,
                ..
            }
        ),
        "{err:?}"
    );
    // A random file (here: text) is reported as a bad magic too, not as truncation.
    let err = parse_idx_labels(b"hello, world", &name()).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { .. }), "{err:?}");
}

#[test]
fn label_out_of_range_names_index_and_value() {
    let labels = encode_idx_labels(&[0, 9, 10, 3]).unwrap();
    let err = parse_idx_labels(&labels, &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 2,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("label 10 at index 2"), "{err}");
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut file = images_file(1);
    file.push(0);
    let err = parse_idx_images(&file, &name()).unwrap_err();
    assert!(
        matches!(err, DataError::TrailingData { expected: 800, .. }),
        "{err:?}"
    );
}

#[test]
fn absurd_headers_fail_without_allocating() {
    // A count far beyond the cap: refused from the header alone.
    let err = parse_idx_images(&header(2051, &[u32::MAX, 28, 28]), &name()).unwrap_err();
    assert!(matches!(err, DataError::BadDimensions { .. }), "{err:?}");
    let err = parse_idx_images(&header(2051, &[10, u32::MAX, u32::MAX]), &name()).unwrap_err();
    assert!(matches!(err, DataError::BadDimensions { .. }), "{err:?}");
    let err = parse_idx_images(&header(2051, &[10, 0, 28]), &name()).unwrap_err();
    assert!(matches!(err, DataError::BadDimensions { .. }), "{err:?}");
    let err = parse_idx_labels(&header(2049, &[u32::MAX]), &name()).unwrap_err();
    assert!(matches!(err, DataError::BadDimensions { .. }), "{err:?}");
    // A plausible count on a tiny file: truncation, reported with the sizes.
    let err = parse_idx_images(&header(2051, &[1_000_000, 28, 28]), &name()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 784_000_016,
                found: 16,
                ..
            }
        ),
        "{err:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes (with either valid magic in front, to get past the first check)
    /// never panic the parsers.
    #[test]
    fn arbitrary_bytes_never_panic(magic in prop_oneof![Just(2051u32), Just(2049u32), any::<u32>()],
                                   dims in proptest::collection::vec(0u32..64, 0..4),
                                   tail in proptest::collection::vec(any::<u8>(), 0..512),
                                   compress in any::<bool>()) {
        let mut bytes = header(magic, &dims);
        bytes.extend_from_slice(&tail);
        let bytes = if compress { gz(&bytes) } else { bytes };
        let _ = parse_idx_images(&bytes, &name());
        let _ = parse_idx_labels(&bytes, &name());
    }

    /// Every proper prefix of a valid file is an error, never a shorter data set.
    #[test]
    fn every_truncation_is_an_error(n in 1usize..4, cut_frac in 0.0f64..1.0) {
        let file = images_file(n);
        let cut = ((file.len() as f64) * cut_frac) as usize;
        prop_assert!(parse_idx_images(&file[..cut], &name()).is_err());
    }
}

// ---------- whole data set ----------

#[test]
fn count_mismatch_between_images_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 30, 10, 1, false).unwrap();
    let labels = dir.path().join("train-labels-idx1-ubyte");
    fs::write(&labels, encode_idx_labels(&[1; 29]).unwrap()).unwrap();
    let err = RawDataset::load(dir.path(), Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 30,
                n_labels: 29,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("train-labels-idx1-ubyte"),
        "{msg}"
    );
}

#[test]
fn corrupt_file_in_a_data_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 30, 10, 1, true).unwrap();
    let path = dir.path().join("t10k-images-idx3-ubyte.gz");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
    let err = RawDataset::load(dir.path(), Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("t10k-images-idx3-ubyte.gz"),
        "{err}"
    );
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 10, 10, 1, false).unwrap();
    fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let err = RawDataset::load(dir.path(), Limits::default()).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("t10k-labels-idx1-ubyte"), "{err}");
}

#[test]
fn images_that_are_not_28x28_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 10, 10, 1, false).unwrap();
    fs::write(
        dir.path().join("train-images-idx3-ubyte"),
        encode_idx_images(14, 56, &vec![0u8; 10 * 784]).unwrap(),
    )
    .unwrap();
    let err = RawDataset::load(dir.path(), Limits::default()).unwrap_err();
    assert!(matches!(err, DataError::BadDimensions { .. }), "{err:?}");
    assert!(err.to_string().contains("14x56"), "{err}");
}

#[test]
fn limits_keep_the_first_examples() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 40, 30, 3, true).unwrap();
    let full = RawDataset::load(dir.path(), Limits::default()).unwrap();
    let limits = Limits {
        train: Some(7),
        test: Some(1000),
    };
    let part = RawDataset::load(dir.path(), limits).unwrap();
    assert_eq!(part.train.len(), 7);
    assert_eq!(part.train.labels, full.train.labels[..7]);
    assert_eq!(part.train.images, full.train.images[..7 * 784]);
    assert_eq!(
        part.test, full.test,
        "a limit above the size keeps everything"
    );
}

#[test]
fn tensors_have_the_right_shapes_types_and_values() {
    let mut images = vec![0u8; 3 * 784];
    images[0] = 255;
    images[784 + 5] = 51;
    let raw = RawDataset {
        train: Split {
            images,
            labels: vec![9, 0, 4],
            rows: 28,
            cols: 28,
        },
        test: Split {
            images: vec![255; 784],
            labels: vec![7],
            rows: 28,
            cols: 28,
        },
    };
    let ds = Dataset::from_raw(&raw, &Device::Cpu).unwrap();
    assert_eq!(ds.train_images.dims(), &[3, 1, 28, 28]);
    assert_eq!(ds.train_images.dtype(), DType::F32);
    assert_eq!(ds.train_labels.dims(), &[3]);
    assert_eq!(ds.train_labels.dtype(), DType::U32);
    assert_eq!(ds.test_images.dims(), &[1, 1, 28, 28]);
    assert_eq!((ds.train_len(), ds.test_len()), (3, 1));

    let px = ds
        .train_images
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(px[0], 1.0);
    assert_eq!(px[1], 0.0);
    assert!((px[784 + 5] - 0.2).abs() < 1e-6);
    assert_eq!(ds.train_labels.to_vec1::<u32>().unwrap(), vec![9, 0, 4]);
    let test_px = ds
        .test_images
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(test_px.iter().all(|&p| p == 1.0));
}

#[test]
fn dataset_load_reads_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 25, 15, 4, true).unwrap();
    let limits = Limits {
        train: Some(20),
        test: None,
    };
    let ds = Dataset::load(dir.path(), limits, &Device::Cpu).unwrap();
    assert_eq!((ds.train_len(), ds.test_len()), (20, 15));
    let max = ds
        .train_images
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let min = ds
        .train_images
        .min_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(min >= 0.0 && max <= 1.0 && max > 0.5, "{min}..{max}");
}

// ---------- locating ----------

fn complete_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    write_dataset(&dir, 10, 10, 0, true).unwrap();
    dir
}

#[test]
fn locate_prefers_explicit_then_candidates_in_order() {
    let root = tempfile::tempdir().unwrap();
    let explicit = complete_dir(root.path(), "explicit");
    let first = complete_dir(root.path(), "first");
    let second = complete_dir(root.path(), "second");
    let empty = root.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let never: &Fetch = &|_: &Path| panic!("must not download when files exist");

    let cands = vec![first.clone(), second.clone()];
    let dl = Some((empty.as_path(), never));
    assert_eq!(locate_in(Some(&explicit), &cands, dl).unwrap(), explicit);
    assert_eq!(locate_in(None, &cands, dl).unwrap(), first);
    let cands = vec![
        empty.clone(),
        root.path().join("nonexistent"),
        second.clone(),
    ];
    assert_eq!(locate_in(None, &cands, dl).unwrap(), second);
}

#[test]
fn an_incomplete_explicit_dir_is_an_error_not_a_fallback() {
    let root = tempfile::tempdir().unwrap();
    let elsewhere = complete_dir(root.path(), "elsewhere");
    let named = root.path().join("named");
    fs::create_dir(&named).unwrap();
    let err = locate_in(Some(&named), &[elsewhere], None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("named: missing train-images-idx3-ubyte[.gz]"),
        "{msg}"
    );
    assert!(!msg.contains("elsewhere"), "{msg}");

    // With downloads allowed, the files go into the named directory.
    let fill: &Fetch = &|dir: &Path| {
        write_dataset(dir, 10, 10, 0, false).map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })
    };
    assert_eq!(
        locate_in(Some(&named), &[], Some((&named, fill))).unwrap(),
        named
    );
}

#[test]
fn a_directory_missing_one_file_is_skipped() {
    let root = tempfile::tempdir().unwrap();
    let partial = complete_dir(root.path(), "partial");
    fs::remove_file(partial.join("train-labels-idx1-ubyte.gz")).unwrap();
    let full = complete_dir(root.path(), "full");
    assert_eq!(
        locate_in(None, &[partial, full.clone()], None).unwrap(),
        full
    );
}

#[test]
fn download_is_the_last_resort_and_its_result_is_checked() {
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("target");
    let calls = std::cell::Cell::new(0);
    let fake: &Fetch = &|dir: &Path| {
        calls.set(calls.get() + 1);
        write_dataset(dir, 10, 10, 0, true).map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })
    };
    let cands = vec![root.path().join("a"), root.path().join("b")];
    assert_eq!(
        locate_in(None, &cands, Some((&target, fake))).unwrap(),
        target
    );
    assert_eq!(calls.get(), 1);

    // A fetcher that "succeeds" without producing the files is not trusted.
    let lazy: &Fetch = &|_: &Path| Ok(());
    let other = root.path().join("other");
    let err = locate_in(None, &cands, Some((&other, lazy))).unwrap_err();
    assert!(err.to_string().contains("still lacks files"), "{err}");
}

#[test]
fn nothing_found_explains_every_option() {
    let root = tempfile::tempdir().unwrap();
    let explicit = root.path().join("my-data");
    let cands = vec![root.path().join("local"), root.path().join("system")];
    let err = locate_in(Some(&explicit), &cands, None).unwrap_err();
    assert!(
        err.to_string().contains("my-data: no such directory"),
        "{err}"
    );
    let err = locate_in(None, &cands, None).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }));
    let msg = err.to_string();
    for needle in [
        "local",
        "system",
        "no such directory",
        "downloading was not allowed",
        "--data-dir",
        "LRLAB_DATA_DIR",
        "./data/fashion-mnist",
        "apt-get install dataset-fashion-mnist",
        "/usr/share/datasets/fashion-mnist",
        "let lrlab download them: drop --no-download",
        "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
}

#[test]
fn failed_download_is_explained_with_manual_alternatives() {
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("dl");
    let failing: &Fetch = &|dir: &Path| {
        Err(DataError::DownloadFailed {
            url: "t10k-labels-idx1-ubyte.gz".into(),
            path: dir.join("t10k-labels-idx1-ubyte.gz"),
            reason: "network unreachable".into(),
            alternatives: remedies(true),
        })
    };
    let err = locate_in(None, &[], Some((&target, failing))).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("network unreachable"), "{msg}");
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
    assert!(msg.contains("download the four .gz files by hand"), "{msg}");
    assert!(!msg.contains("allow lrlab to download"), "{msg}");
    // The remedies are listed once, not once per nested error.
    assert_eq!(msg.matches("To fix this").count(), 1, "{msg}");
}

#[test]
fn plain_files_are_preferred_over_gz() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 10, 10, 0, true).unwrap();
    assert_eq!(
        TRAIN_IMAGES.find_in(dir.path()).unwrap(),
        dir.path().join("train-images-idx3-ubyte.gz")
    );
    write_dataset(dir.path(), 10, 10, 0, false).unwrap();
    assert_eq!(
        TRAIN_IMAGES.find_in(dir.path()).unwrap(),
        dir.path().join("train-images-idx3-ubyte")
    );
}

// ---------- synthetic data ----------

#[test]
fn synthetic_data_is_deterministic_and_seed_dependent() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_dataset(a.path(), 30, 10, 5, false).unwrap();
    write_dataset(b.path(), 30, 10, 5, false).unwrap();
    for f in ALL_FILES {
        assert_eq!(
            fs::read(a.path().join(f.name)).unwrap(),
            fs::read(b.path().join(f.name)).unwrap()
        );
    }
    assert_ne!(generate(30, 5, 0), generate(30, 6, 0));
    assert_ne!(
        generate(30, 5, 0).0,
        generate(30, 5, 1).0,
        "train and test differ"
    );
}

#[test]
fn synthetic_classes_are_balanced_and_images_distinct() {
    let (pixels, labels) = generate(200, 11, 0);
    for class in 0..10u8 {
        assert_eq!(labels.iter().filter(|&&l| l == class).count(), 20);
    }
    let images: std::collections::HashSet<&[u8]> = pixels.chunks_exact(784).collect();
    assert_eq!(images.len(), 200, "every image is different (noise, shift)");
}

/// Learnable: class means from the training split classify the test split well.
/// Not trivial: no single pixel with a threshold separates any class from the rest.
#[test]
fn synthetic_classes_are_learnable_but_not_by_one_pixel() {
    let (train_px, train_lb) = generate(500, 2, 0);
    let (test_px, test_lb) = generate(300, 2, 1);
    let mut means = vec![[0f32; 784]; 10];
    let mut counts = [0f32; 10];
    for (img, &l) in train_px.chunks_exact(784).zip(&train_lb) {
        counts[l as usize] += 1.0;
        for (m, &p) in means[l as usize].iter_mut().zip(img) {
            *m += f32::from(p);
        }
    }
    for (m, c) in means.iter_mut().zip(counts) {
        m.iter_mut().for_each(|v| *v /= c);
    }
    let correct = test_px
        .chunks_exact(784)
        .zip(&test_lb)
        .filter(|(img, &l)| {
            let dist = |m: &[f32; 784]| -> f32 {
                m.iter()
                    .zip(img.iter())
                    .map(|(a, &b)| (a - f32::from(b)).powi(2))
                    .sum()
            };
            let best = (0..10).min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])));
            best == Some(l as usize)
        })
        .count();
    let acc = correct as f32 / test_lb.len() as f32;
    assert!(acc > 0.9, "nearest-class-mean accuracy {acc}");

    // For each class, the best one-pixel "pixel > 127" detector must make errors on
    // at least 5% of the examples (one-vs-rest, balanced error).
    for class in 0..10u8 {
        let best = (0..784)
            .map(|pix| {
                let (mut tp, mut fp, mut pos) = (0f32, 0f32, 0f32);
                for (img, &l) in train_px.chunks_exact(784).zip(&train_lb) {
                    let on = img[pix] > 127;
                    if l == class {
                        pos += 1.0;
                        tp += f32::from(u8::from(on));
                    } else {
                        fp += f32::from(u8::from(on));
                    }
                }
                let neg = train_lb.len() as f32 - pos;
                0.5 * (tp / pos + (1.0 - fp / neg))
            })
            .fold(0f32, f32::max);
        assert!(
            best < 0.95,
            "class {class}: one pixel reaches balanced accuracy {best}"
        );
    }
}

// ---------- the real data, when installed ----------

/// Whether this run is CI's (`CI` set, as `.ci/run` does), which installs the real data.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}

/// A check that needs the real files or cannot be made: skipped with a note locally, a
/// failure in CI (where a silent skip would hide a broken install).
fn cannot_check(what: &str, why: &str) {
    assert!(!in_ci(), "{what} is required in CI: {why}");
    eprintln!("note: skipping {what}: {why}");
}

/// Debian's Fashion-MNIST, or `None` (with [`cannot_check`]) where it is not installed.
fn debian_files(what: &str) -> Option<&'static Path> {
    let dir = Path::new(SYSTEM_DIR);
    if has_all_files(dir) {
        return Some(dir);
    }
    cannot_check(
        what,
        &format!("{SYSTEM_DIR} is absent (apt-get install dataset-fashion-mnist)"),
    );
    None
}

#[test]
fn real_debian_files_load_if_installed() {
    let Some(dir) = debian_files("the real-data check") else {
        return;
    };
    let limits = Limits {
        train: Some(1000),
        test: None,
    };
    let raw = RawDataset::load(dir, limits).unwrap();
    assert_eq!((raw.train.len(), raw.test.len()), (1000, 10_000));
    assert_eq!((raw.test.rows, raw.test.cols), (28, 28));
    for class in 0..10u8 {
        assert_eq!(
            raw.test.labels.iter().filter(|&&l| l == class).count(),
            1000
        );
    }
}

/// Debian's package holds the canonical deflate streams but rewrites the gzip
/// header (drops the file name, changes the time). Putting the original header
/// back must reproduce the published SHA-256 of each canonical file: this checks
/// our constants against real bytes without any network.
#[test]
fn checksum_constants_match_the_real_files_if_installed() {
    let Some(dir) = debian_files("the checksum cross-check") else {
        return;
    };
    // Original gzip mtimes of the canonical files (2017-08-31).
    let mtimes = [
        1_504_176_606u32,
        1_504_176_606,
        1_504_176_627,
        1_504_176_627,
    ];
    for (file, mtime) in ALL_FILES.iter().zip(mtimes) {
        let path = dir.join(file.gz_name());
        let debian = fs::read(&path).unwrap();
        // 10-byte header without FNAME: magic, CM=8, FLG=0, MTIME, XFL, OS.
        if debian.len() < 10 || debian[3] != 0 {
            cannot_check(
                &format!("the checksum cross-check of {}", file.name),
                &format!("{} has an unexpected gzip header", path.display()),
            );
            continue;
        }
        let mut canonical = vec![0x1f, 0x8b, 0x08, 0x08];
        canonical.extend_from_slice(&mtime.to_le_bytes());
        canonical.extend_from_slice(&debian[8..10]);
        canonical.extend_from_slice(file.name.as_bytes());
        canonical.push(0);
        canonical.extend_from_slice(&debian[10..]);
        assert_eq!(canonical.len() as u64, file.gz_size, "{}", file.name);
        let out = tempfile::NamedTempFile::new().unwrap();
        fs::write(out.path(), &canonical).unwrap();
        verify_sha256(out.path(), file.gz_sha256).unwrap();
    }
}
