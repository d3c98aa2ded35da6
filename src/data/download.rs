//! Fetching the four canonical gzip files when no local copy exists.
//!
//! Each file is streamed to a temporary name next to its destination while its
//! SHA-256 is computed, checked against [`DataFile::gz_sha256`], fsynced and only then
//! renamed into place, so an interrupted or tampered download never leaves a file
//! that a later run would mistake for good data. Only this module touches the network;
//! tests exercise its pure parts ([`sha256_file`], [`verify_sha256`]) only.

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::error::DataError;
use super::files::{DataFile, ALL_FILES, MIRRORS};
use super::remedies::remedies;

/// Refuse bodies larger than this many times the expected size (a misbehaving
/// server must not fill the disk).
const SIZE_SLACK: u64 = 2;

/// Download all four files into `dir` (created if needed), skipping any already
/// there whose SHA-256 is right.
pub fn download_all(dir: &Path) -> Result<(), DataError> {
    fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_global(Some(Duration::from_secs(15 * 60)))
            .build(),
    );
    for file in ALL_FILES {
        let dest = dir.join(file.gz_name());
        if dest.is_file() && verify_sha256(&dest, file.gz_sha256).is_ok() {
            tracing::info!(path = %dest.display(), "already downloaded, checksum ok");
            continue;
        }
        download_one(&agent, &file, &dest)?;
    }
    Ok(())
}

/// Try each mirror for one file; report the last failure with the manual remedies.
fn download_one(agent: &ureq::Agent, file: &DataFile, dest: &Path) -> Result<(), DataError> {
    let mut failures = Vec::new();
    for mirror in MIRRORS {
        let url = format!("{mirror}{}", file.gz_name());
        match fetch_verified(agent, &url, file, dest) {
            Ok(()) => {
                tracing::info!(%url, path = %dest.display(), "downloaded and verified");
                return Ok(());
            }
            // A wrong checksum is not a transient failure: say so, but try the next mirror.
            Err(e) => {
                tracing::warn!(%url, error = %e, "download failed");
                failures.push(format!("{url}: {e}"));
            }
        }
    }
    Err(DataError::DownloadFailed {
        url: file.gz_name(),
        path: dest.to_path_buf(),
        reason: failures.join("; "),
        alternatives: remedies(true),
    })
}

/// Stream `url` to a temp file beside `dest`, verify it, then rename it into place.
fn fetch_verified(
    agent: &ureq::Agent,
    url: &str,
    file: &DataFile,
    dest: &Path,
) -> Result<(), String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = response.into_body();
    let len = body.content_length().unwrap_or(file.gz_size);
    let limit = file.gz_size.saturating_mul(SIZE_SLACK);
    if len > limit {
        return Err(format!(
            "server announces {len} bytes, expected {}",
            file.gz_size
        ));
    }
    let reader = body.into_with_config().limit(limit).reader();

    let tmp = temp_path(dest);
    let result = write_verified(reader, &tmp, len, file);
    match result {
        Ok(()) => fs::rename(&tmp, dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("cannot move {} to {}: {e}", tmp.display(), dest.display())
        }),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_verified(reader: impl Read, tmp: &Path, len: u64, file: &DataFile) -> Result<(), String> {
    let bar = ProgressBar::new(len).with_message(file.gz_name());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut reader = bar.wrap_read(reader);
    let mut out = File::create(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the response: {e}")),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    }
    out.sync_all()
        .map_err(|e| format!("syncing {}: {e}", tmp.display()))?;
    bar.finish();
    let actual = format!("{:x}", hasher.finalize());
    if actual != file.gz_sha256 {
        return Err(DataError::ChecksumMismatch {
            path: tmp.to_path_buf(),
            expected: file.gz_sha256.to_string(),
            actual,
        }
        .to_string());
    }
    Ok(())
}

fn temp_path(dest: &Path) -> PathBuf {
    let mut name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// SHA-256 of a file, as lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Check that `path` has SHA-256 `expected` (hex, either case).
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), DataError> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_local_file_matches_the_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        fs::write(&path, b"abc").unwrap();
        // FIPS 180-2 test vector for "abc".
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&path).unwrap(), abc);
        verify_sha256(&path, abc).unwrap();
        verify_sha256(&path, &abc.to_ascii_uppercase()).unwrap();
    }

    #[test]
    fn checksum_mismatch_names_file_expected_and_actual() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t10k-labels-idx1-ubyte.gz");
        fs::write(&path, b"not the real file").unwrap();
        let err = verify_sha256(&path, TEST_LABELS_SHA).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::ChecksumMismatch { .. }), "{msg}");
        assert!(msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");
        assert!(msg.contains(TEST_LABELS_SHA), "{msg}");
        assert!(msg.contains(&sha256_file(&path).unwrap()), "{msg}");
    }

    const TEST_LABELS_SHA: &str = super::super::files::TEST_LABELS.gz_sha256;

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.gz");
        let msg = sha256_file(&path).unwrap_err().to_string();
        assert!(msg.contains("nope.gz"), "{msg}");
    }

    #[test]
    fn temp_name_sits_beside_the_destination() {
        let p = temp_path(Path::new("/x/y/train-images-idx3-ubyte.gz"));
        assert_eq!(p, Path::new("/x/y/train-images-idx3-ubyte.gz.part"));
    }

    #[test]
    fn published_checksums_are_well_formed_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for f in ALL_FILES {
            assert_eq!(f.gz_sha256.len(), 64, "{}", f.name);
            assert!(f
                .gz_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!(seen.insert(f.gz_sha256));
        }
    }
}
