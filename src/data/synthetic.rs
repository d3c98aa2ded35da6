//! A small, learnable stand-in for Fashion-MNIST, written in the same IDX format.
//!
//! Tests of the training engine and the job service must not need the real data
//! (60 MB, not in CI caches) yet should exercise the real loading path and a real
//! learning problem. Each of the 10 classes is a distinct shape (bars, diagonals,
//! frame, disk, checkerboard, cross, ring...) drawn at a random small shift and
//! scale, with random stroke brightness, dropped-out stroke pixels and background
//! noise: a LeNet separates the classes within a few epochs, but no single pixel
//! does, and no two images are equal.

use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::files::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use super::idx::{encode_idx_images, encode_idx_labels, NUM_CLASSES};

/// Side of the generated images (as Fashion-MNIST).
pub const SIDE: usize = 28;

/// Write a synthetic data set with `train` training and `test` test examples to `dir`
/// (created if needed) under the four Fashion-MNIST file names, gzipped (`.gz`
/// names) or not. The same `seed` always writes the same bytes. Classes are
/// balanced (example `i` of a split has class `i % 10` before shuffling).
pub fn write_dataset(
    dir: &Path,
    train: usize,
    test: usize,
    seed: u64,
    gzip: bool,
) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let splits = [
        (train, TRAIN_IMAGES.name, TRAIN_LABELS.name, 0u8),
        (test, TEST_IMAGES.name, TEST_LABELS.name, 1u8),
    ];
    for (count, images_name, labels_name, split) in splits {
        let (pixels, labels) = generate(count, seed, split);
        write_file(
            dir,
            images_name,
            &encode_idx_images(SIDE, SIDE, &pixels)?,
            gzip,
        )?;
        write_file(dir, labels_name, &encode_idx_labels(&labels)?, gzip)?;
    }
    Ok(())
}

/// Generate `count` images (row-major, `count*28*28` bytes) and their labels for one
/// split; `split` separates the random streams of train and test.
pub fn generate(count: usize, seed: u64, split: u8) -> (Vec<u8>, Vec<u8>) {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8] = split;
    key[16..].copy_from_slice(b"lrlab/synthetic!");
    let mut rng = ChaCha8Rng::from_seed(key);

    let mut labels: Vec<u8> = (0..count)
        .map(|i| (i % NUM_CLASSES as usize) as u8)
        .collect();
    labels.shuffle(&mut rng);
    let mut pixels = Vec::with_capacity(count * SIDE * SIDE);
    for &label in &labels {
        draw(&mut rng, label, &mut pixels);
    }
    (pixels, labels)
}

/// Append one 28x28 image of class `label` to `out`.
fn draw(rng: &mut ChaCha8Rng, label: u8, out: &mut Vec<u8>) {
    let dx: f32 = rng.random_range(-2.0..2.0);
    let dy: f32 = rng.random_range(-2.0..2.0);
    let scale: f32 = rng.random_range(0.85..1.15);
    let stroke: f32 = rng.random_range(150.0..255.0);
    let center = (SIDE as f32 - 1.0) / 2.0;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let u = (x as f32 - center - dx) / scale;
            let v = (y as f32 - center - dy) / scale;
            let on = in_shape(label, u, v) && rng.random_bool(0.9);
            let noise: f32 = rng.random_range(0.0..60.0);
            let value = if on { stroke - noise } else { noise };
            out.push(value.clamp(0.0, 255.0) as u8);
        }
    }
}

/// Whether the point `(u, v)` (pixels from the image center, before shift/scale)
/// is part of the shape of class `label`.
fn in_shape(label: u8, u: f32, v: f32) -> bool {
    let (au, av) = (u.abs(), v.abs());
    let inside = au <= 9.5 && av <= 9.5;
    let r2 = u * u + v * v;
    match label {
        0 => av <= 2.0 && au <= 9.5,         // horizontal bar
        1 => au <= 2.0 && av <= 9.5,         // vertical bar
        2 => (u - v).abs() <= 2.5 && inside, // diagonal
        3 => (u + v).abs() <= 2.5 && inside, // anti-diagonal
        4 => inside && au.max(av) >= 7.0,    // square frame
        5 => r2 <= 36.0,                     // filled disk
        6 => {
            inside && ((u + 12.0) / 4.0).floor() as i32 % 2 == ((v + 12.0) / 4.0).floor() as i32 % 2
        } // checkerboard
        7 => (au <= 1.5 && av <= 9.5) || (av <= 1.5 && au <= 9.5), // plus
        8 => ((v - 5.0).abs() <= 1.5 || (v + 5.0).abs() <= 1.5) && au <= 9.5, // two bars
        _ => (49.0..=90.0).contains(&r2),    // ring
    }
}

fn write_file(dir: &Path, name: &str, bytes: &[u8], gzip: bool) -> std::io::Result<()> {
    if gzip {
        let file = fs::File::create(dir.join(format!("{name}.gz")))?;
        let mut encoder = GzEncoder::new(file, Compression::fast());
        encoder.write_all(bytes)?;
        encoder.finish()?.sync_all()
    } else {
        fs::write(dir.join(name), bytes)
    }
}
