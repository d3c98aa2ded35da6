//! Reading and writing the IDX format that (Fashion-)MNIST ships in.
//!
//! An IDX file is a big-endian header (magic number, then one `u32` per dimension)
//! followed by the raw `u8` payload. Images use magic 2051 (`[n, rows, cols]`), labels
//! 2049 (`[n]`). Files may be gzip-compressed; we detect that from the gzip magic bytes
//! rather than from the file name, so a mis-named file still loads.
//!
//! Parsing never trusts the header: dimensions are range-checked and multiplied with
//! overflow checks before anything is allocated, and the payload is read through a
//! length-limited reader, so a corrupt or hostile file (or a gzip bomb) yields a
//! [`DataError`] instead of a panic or a huge allocation.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::error::DataError;

/// Magic number of an IDX file of unsigned-byte 3-D data (images).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX file of unsigned-byte 1-D data (labels).
pub const LABELS_MAGIC: u32 = 2049;
/// Largest number of examples a file may declare. Fashion-MNIST has 60,000; the cap
/// only exists so a corrupt count cannot make us reserve terabytes.
pub const MAX_EXAMPLES: usize = 10_000_000;
/// Largest image side a file may declare (Fashion-MNIST: 28).
pub const MAX_SIDE: usize = 1024;
/// Largest image payload we accept, in bytes (1 GiB; Fashion-MNIST's is 47 MB).
pub const MAX_IMAGE_BYTES: usize = 1 << 30;
/// Number of classes in Fashion-MNIST; labels must be below it.
pub const NUM_CLASSES: u8 = 10;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Most bytes reserved up front for a payload; more is allocated only as data arrives.
const INITIAL_CAPACITY: usize = 64 << 20;

/// Images read from an IDX file: `(rows, cols, pixels)`, pixels row-major, `n*rows*cols` long.
pub type IdxImages = (usize, usize, Vec<u8>);

/// Read an images IDX file (magic 2051), gzip-compressed or not.
///
/// Returns `(rows, cols, pixels)` with `pixels.len() == n * rows * cols`.
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    with_decoded_file(path, |reader| decode_images(reader, path))
}

/// Read a labels IDX file (magic 2049), gzip-compressed or not, and check every
/// label is a class index (0..=9).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    with_decoded_file(path, |reader| decode_labels(reader, path))
}

/// Parse an images IDX file held in memory (gzip-compressed or not); `name` is only
/// used in error messages.
pub fn parse_idx_images(bytes: &[u8], name: &Path) -> Result<IdxImages, DataError> {
    with_decoded_bytes(bytes, |reader| decode_images(reader, name))
}

/// Parse a labels IDX file held in memory (gzip-compressed or not); `name` is only
/// used in error messages.
pub fn parse_idx_labels(bytes: &[u8], name: &Path) -> Result<Vec<u8>, DataError> {
    with_decoded_bytes(bytes, |reader| decode_labels(reader, name))
}

/// Encode images as an uncompressed IDX file (magic 2051). Used by the synthetic
/// generator and by tests that need to craft corrupt files.
pub fn encode_idx_images(rows: usize, cols: usize, pixels: &[u8]) -> std::io::Result<Vec<u8>> {
    let per_image = rows.checked_mul(cols).filter(|&s| s > 0).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "image size must be non-zero",
        )
    })?;
    if !pixels.len().is_multiple_of(per_image) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} pixels is not a whole number of {rows}x{cols} images",
                pixels.len()
            ),
        ));
    }
    let count = pixels.len() / per_image;
    let mut out = Vec::with_capacity(16 + pixels.len());
    out.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
    for dim in [count, rows, cols] {
        out.extend_from_slice(&to_u32(dim)?.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    Ok(out)
}

/// Encode labels as an uncompressed IDX file (magic 2049).
pub fn encode_idx_labels(labels: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&to_u32(labels.len())?.to_be_bytes());
    out.extend_from_slice(labels);
    Ok(out)
}

fn to_u32(value: usize) -> std::io::Result<u32> {
    u32::try_from(value).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("dimension {value} does not fit an IDX header"),
        )
    })
}

/// A byte source that knows whether it is being gunzipped, so read errors can be
/// reported as gzip corruption or as OS errors.
struct Source<R> {
    reader: R,
    gzip: bool,
}

fn with_decoded_file<T>(
    path: &Path,
    decode: impl FnOnce(&mut Source<Box<dyn Read + '_>>) -> Result<T, DataError>,
) -> Result<T, DataError> {
    let file = File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let head = buffered.fill_buf().map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let gzip = head.starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    decode(&mut Source { reader, gzip })
}

fn with_decoded_bytes<'a, T>(
    bytes: &'a [u8],
    decode: impl FnOnce(&mut Source<Box<dyn Read + 'a>>) -> Result<T, DataError>,
) -> Result<T, DataError> {
    let gzip = bytes.starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read + 'a> = if gzip {
        Box::new(MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    decode(&mut Source { reader, gzip })
}

impl<R: Read> Source<R> {
    fn error(&self, path: &Path, source: std::io::Error) -> DataError {
        if self.gzip {
            DataError::Gzip {
                path: path.to_path_buf(),
                source,
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Fill `buf` as far as the source allows; returns how many bytes were read.
    fn fill(&mut self, buf: &mut [u8], path: &Path) -> Result<usize, DataError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(path, e)),
            }
        }
        Ok(filled)
    }

    /// Read a payload of exactly `len` bytes. The buffer grows as data arrives
    /// (starting at most at [`INITIAL_CAPACITY`]), so a header that lies about the
    /// size of a small file costs a clear error, not a huge allocation. A short read
    /// is reported as truncation of a file that should hold `expected_total` bytes,
    /// `header_len` of which were the header.
    fn payload(
        &mut self,
        len: usize,
        path: &Path,
        header_len: u64,
        expected_total: u64,
    ) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::with_capacity(len.min(INITIAL_CAPACITY));
        if let Err(e) = (&mut self.reader).take(len as u64).read_to_end(&mut out) {
            return Err(self.error(path, e));
        }
        if out.len() < len {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                expected: expected_total,
                found: header_len + out.len() as u64,
            });
        }
        Ok(out)
    }

    /// Require that nothing follows the payload.
    fn expect_end(&mut self, path: &Path, expected_total: u64) -> Result<(), DataError> {
        let mut probe = [0u8; 1];
        if self.fill(&mut probe, path)? != 0 {
            return Err(DataError::TrailingData {
                path: path.to_path_buf(),
                expected: expected_total,
            });
        }
        Ok(())
    }

    /// Read and check the magic number, then read `dims` dimension words. A short
    /// header is reported as truncation relative to the header size (the payload size
    /// is not known yet); a wrong magic is reported before a short header because the
    /// wrong file type is the more useful diagnosis.
    fn header(
        &mut self,
        path: &Path,
        expected_magic: u32,
        kind: &'static str,
        dims: usize,
    ) -> Result<Vec<usize>, DataError> {
        let header_len = 4 * (1 + dims);
        let mut header = vec![0u8; header_len];
        let got = self.fill(&mut header, path)?;
        let truncated = || DataError::Truncated {
            path: path.to_path_buf(),
            expected: header_len as u64,
            found: got as u64,
        };
        if got < 4 {
            return Err(truncated());
        }
        let magic = be_u32(&header[0..4]);
        if magic != expected_magic {
            return Err(DataError::BadMagic {
                path: path.to_path_buf(),
                expected: expected_magic,
                found: magic,
                kind,
            });
        }
        if got < header_len {
            return Err(truncated());
        }
        Ok(header[4..]
            .chunks_exact(4)
            .map(|word| be_u32(word) as usize)
            .collect())
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_be_bytes(word)
}

fn decode_images<R: Read>(source: &mut Source<R>, path: &Path) -> Result<IdxImages, DataError> {
    let dims = source.header(path, IMAGES_MAGIC, "images", 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let bad = |detail: String| DataError::BadDimensions {
        path: path.to_path_buf(),
        detail,
    };
    if count > MAX_EXAMPLES {
        return Err(bad(format!(
            "header declares {count} images, more than the {MAX_EXAMPLES} we accept"
        )));
    }
    if rows == 0 || cols == 0 || rows > MAX_SIDE || cols > MAX_SIDE {
        return Err(bad(format!(
            "header declares {rows}x{cols} images; each side must be 1..={MAX_SIDE}"
        )));
    }
    let payload = count
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .filter(|&v| v <= MAX_IMAGE_BYTES)
        .ok_or_else(|| {
            bad(format!(
                "{count} images of {rows}x{cols} exceed the {MAX_IMAGE_BYTES}-byte limit"
            ))
        })?;
    let header_len = 16u64;
    let total = header_len + payload as u64;
    let pixels = source.payload(payload, path, header_len, total)?;
    source.expect_end(path, total)?;
    Ok((rows, cols, pixels))
}

fn decode_labels<R: Read>(source: &mut Source<R>, path: &Path) -> Result<Vec<u8>, DataError> {
    let dims = source.header(path, LABELS_MAGIC, "labels", 1)?;
    let count = dims[0];
    if count > MAX_EXAMPLES {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            detail: format!(
                "header declares {count} labels, more than the {MAX_EXAMPLES} we accept"
            ),
        });
    }
    let header_len = 8u64;
    let total = header_len + count as u64;
    let labels = source.payload(count, path, header_len, total)?;
    source.expect_end(path, total)?;
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= NUM_CLASSES) {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label,
        });
    }
    Ok(labels)
}
