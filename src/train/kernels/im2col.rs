//! Convolution geometry and the im2col / col2im rearrangements that turn a stride-1
//! convolution into matrix products.
//!
//! The column matrix of one image has one row per kernel tap `(c, ky, kx)` and one column per
//! output pixel `(oy, ox)`. Several images can share one column matrix side by side (leading
//! dimension `ld`, this image's columns starting at `off`), so that the weight gradient of a
//! group of images is a single, larger GEMM.

/// Shapes of a stride-1, dilation-1, single-group 2-D convolution with symmetric zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub k: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeom {
    /// Derives the output size; `None` when the padded input is smaller than the kernel.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per tensor dimension"
    )]
    pub(crate) fn new(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        k: usize,
        kh: usize,
        kw: usize,
        pad: usize,
    ) -> Option<Self> {
        let oh = (h + 2 * pad + 1).checked_sub(kh)?;
        let ow = (w + 2 * pad + 1).checked_sub(kw)?;
        if oh == 0 || ow == 0 || kh == 0 || kw == 0 {
            return None;
        }
        Some(Self {
            n,
            c,
            h,
            w,
            k,
            kh,
            kw,
            pad,
            oh,
            ow,
        })
    }

    /// Elements of one input image.
    pub(crate) fn in_img(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Elements of one output image.
    pub(crate) fn out_img(&self) -> usize {
        self.k * self.pixels()
    }

    /// Output pixels per channel (columns of one image's column matrix).
    pub(crate) fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Kernel taps per output channel (rows of the column matrix).
    pub(crate) fn taps(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// For kernel offset `kx`, the output columns `ox` whose input column `ox + kx - pad` is
    /// inside the image: `ox0..ox1`, reading from input column `ox0 + kx - pad`.
    fn col_range(&self, kx: usize) -> (usize, usize) {
        let ox0 = self.pad.saturating_sub(kx).min(self.ow);
        let ox1 = (self.w + self.pad).saturating_sub(kx).min(self.ow).max(ox0);
        (ox0, ox1)
    }

    /// Input row for output row `oy` and kernel row `ky`, if inside the image.
    fn in_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy + ky).checked_sub(self.pad).filter(|&iy| iy < self.h)
    }
}

/// Copies a short run (an output row: 10 to 28 elements in the LeNet) with fixed-size block
/// moves instead of a `memcpy` call per run, which dominated im2col's time.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    const B: usize = 8;
    let len = dst.len();
    debug_assert_eq!(len, src.len());
    if len < B {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
        return;
    }
    for (d, s) in dst.chunks_exact_mut(B).zip(src.chunks_exact(B)) {
        let block: &[f32; B] = s.try_into().unwrap_or(&[0.0; B]);
        d.copy_from_slice(block);
    }
    // The tail as one more block ending at the last element (it overlaps what was copied).
    let tail: &[f32; B] = src[len - B..].try_into().unwrap_or(&[0.0; B]);
    dst[len - B..].copy_from_slice(tail);
}

/// Writes the column matrix of one image `x` (`c * h * w`) into `dst`, rows `ld` apart, this
/// image's block at column offset `off`. Every element of the block is written (padding as
/// zeros), so `dst` may hold stale data.
pub(crate) fn im2col(x: &[f32], g: &ConvGeom, dst: &mut [f32], ld: usize, off: usize) {
    #[cfg(target_arch = "x86_64")]
    if avx512::applies(g) {
        avx512::im2col(x, g, dst, ld, off);
        return;
    }
    im2col_portable(x, g, dst, ld, off);
}

/// [`im2col`] in plain Rust, for any CPU.
fn im2col_portable(x: &[f32], g: &ConvGeom, dst: &mut [f32], ld: usize, off: usize) {
    debug_assert_eq!(x.len(), g.in_img());
    let p = g.pixels();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = (c * g.kh + ky) * g.kw + kx;
                let block = &mut dst[row * ld + off..row * ld + off + p];
                let (ox0, ox1) = g.col_range(kx);
                for (oy, out) in block.chunks_exact_mut(g.ow).enumerate() {
                    match g.in_row(oy, ky) {
                        Some(iy) if ox1 > ox0 => {
                            let ix0 = ox0 + kx - g.pad;
                            let src = &plane[iy * g.w + ix0..iy * g.w + ix0 + (ox1 - ox0)];
                            out[..ox0].fill(0.0);
                            copy_run(&mut out[ox0..ox1], src);
                            out[ox1..].fill(0.0);
                        }
                        _ => out.fill(0.0),
                    }
                }
            }
        }
    }
}

/// Adds the column-matrix gradient block of one image (rows `ld` apart, block at column `off`)
/// back onto the image gradient `dx` (`c * h * w`): the adjoint of [`im2col`].
pub(crate) fn col2im_add(src: &[f32], ld: usize, off: usize, g: &ConvGeom, dx: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512::applies(g) {
        avx512::col2im_add(src, ld, off, g, dx);
        return;
    }
    col2im_add_portable(src, ld, off, g, dx);
}

/// [`col2im_add`] in plain Rust, for any CPU.
fn col2im_add_portable(src: &[f32], ld: usize, off: usize, g: &ConvGeom, dx: &mut [f32]) {
    debug_assert_eq!(dx.len(), g.in_img());
    let p = g.pixels();
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = (c * g.kh + ky) * g.kw + kx;
                let block = &src[row * ld + off..row * ld + off + p];
                let (ox0, ox1) = g.col_range(kx);
                if ox1 == ox0 {
                    continue;
                }
                let ix0 = ox0 + kx - g.pad;
                for (oy, grad) in block.chunks_exact(g.ow).enumerate() {
                    if let Some(iy) = g.in_row(oy, ky) {
                        let dst = &mut plane[iy * g.w + ix0..iy * g.w + ix0 + (ox1 - ox0)];
                        for (d, s) in dst.iter_mut().zip(&grad[ox0..ox1]) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// AVX-512 versions: each row (at most 64 pixels; 10 to 28 in the LeNet) is moved with one
/// masked load and store per 16 lanes, the padding coming from the load mask, instead of a
/// `memcpy` and `memset` call per row. Results are bit-for-bit those of the portable loops.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __mmask16, _mm512_mask_add_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    };

    use super::ConvGeom;

    /// Widest output or input row handled (four 16-lane blocks).
    const MAX_OW: usize = 64;
    /// Widest kernel handled.
    const MAX_KW: usize = 16;

    /// Whether the CPU has AVX-512F and the rows and kernel are narrow enough.
    pub(super) fn applies(g: &ConvGeom) -> bool {
        g.ow <= MAX_OW
            && g.w <= MAX_OW
            && g.kw <= MAX_KW
            && std::arch::is_x86_feature_detected!("avx512f")
    }

    /// Lanes `lo..hi` of a 16-lane block, clamped to the block.
    fn lanes(lo: usize, hi: usize) -> __mmask16 {
        let (lo, hi) = (lo.min(16), hi.min(16));
        if hi <= lo {
            return 0;
        }
        let upto = |n: usize| if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
        upto(hi) & !upto(lo)
    }

    /// For kernel column `kx`: per 16-lane block of an output row, the lanes to store (inside
    /// the row) and the lanes to load (whose input column is inside the image).
    fn masks(g: &ConvGeom, kx: usize) -> [(__mmask16, __mmask16); MAX_OW / 16] {
        let (ox0, ox1) = g.col_range(kx);
        std::array::from_fn(|b| {
            let start = 16 * b;
            (
                lanes(0, g.ow.saturating_sub(start)),
                lanes(ox0.saturating_sub(start), ox1.saturating_sub(start)),
            )
        })
    }

    /// Checks every bound the unchecked loops below rely on, then runs them.
    pub(super) fn im2col(x: &[f32], g: &ConvGeom, dst: &mut [f32], ld: usize, off: usize) {
        assert!(x.len() >= g.in_img(), "im2col: input too short");
        assert!(
            g.taps() == 0 || dst.len() >= (g.taps() - 1) * ld + off + g.pixels(),
            "im2col: destination too short"
        );
        // SAFETY: `applies` checked AVX-512F and `ow <= MAX_OW`; the asserts above bound
        // every row written; loads touch only lanes whose input position is in the image.
        unsafe { im2col_unchecked(x, g, dst, ld, off) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn im2col_unchecked(x: &[f32], g: &ConvGeom, dst: &mut [f32], ld: usize, off: usize) {
        let blocks = g.ow.div_ceil(16);
        for c in 0..g.c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let masks = masks(g, kx);
                    let row = (c * g.kh + ky) * g.kw + kx;
                    for oy in 0..g.oh {
                        // SAFETY (all pointer uses below): the destination row lies inside
                        // `dst` (checked by the caller); a source lane is loaded only when its
                        // row `iy` and column `ox + kx - pad` are inside the image, so the
                        // out-of-image addresses of masked-off lanes are never accessed.
                        let out = unsafe { dst.as_mut_ptr().add(row * ld + off + oy * g.ow) };
                        let src_row = g
                            .in_row(oy, ky)
                            .map(|iy| x.as_ptr().wrapping_add(c * g.h * g.w + iy * g.w));
                        for (b, &(store, load)) in masks.iter().enumerate().take(blocks) {
                            let load = if src_row.is_some() { load } else { 0 };
                            let src = src_row
                                .unwrap_or(x.as_ptr())
                                .wrapping_add(16 * b + kx)
                                .wrapping_sub(g.pad);
                            unsafe {
                                let v = _mm512_maskz_loadu_ps(load, src);
                                _mm512_mask_storeu_ps(out.add(16 * b), store, v);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Checks every bound the unchecked loops below rely on, then runs them.
    pub(super) fn col2im_add(src: &[f32], ld: usize, off: usize, g: &ConvGeom, dx: &mut [f32]) {
        assert!(dx.len() >= g.in_img(), "col2im: image too short");
        assert!(
            g.taps() == 0 || src.len() >= (g.taps() - 1) * ld + off + g.pixels(),
            "col2im: columns too short"
        );
        // SAFETY: as for `im2col`, with the roles of image and columns swapped.
        unsafe { col2im_unchecked(src, ld, off, g, dx) }
    }

    /// For kernel column `kx`: per 16-lane block of an image row, the lanes (input columns
    /// `ix`) that some output column `ox = ix + pad - kx` of the row reaches.
    fn image_masks(g: &ConvGeom, kx: usize) -> [__mmask16; MAX_OW / 16] {
        let lo = kx.saturating_sub(g.pad);
        let hi = (kx + g.ow).saturating_sub(g.pad).min(g.w);
        std::array::from_fn(|b| lanes(lo.saturating_sub(16 * b), hi.saturating_sub(16 * b)))
    }

    /// Each image row is loaded once per kernel row, gets the contributions of all kernel
    /// columns added in registers, and is stored once: adding through memory instead stalled
    /// on every load of a row just stored at a one-element offset. The additions happen in
    /// the portable loop's order, so the result is the same to the bit.
    #[target_feature(enable = "avx512f")]
    unsafe fn col2im_unchecked(src: &[f32], ld: usize, off: usize, g: &ConvGeom, dx: &mut [f32]) {
        let mut masks = [[0; MAX_OW / 16]; MAX_KW];
        for (kx, m) in masks.iter_mut().enumerate().take(g.kw) {
            *m = image_masks(g, kx);
        }
        let blocks = g.w.div_ceil(16);
        for c in 0..g.c {
            for ky in 0..g.kh {
                for oy in 0..g.oh {
                    let Some(iy) = g.in_row(oy, ky) else {
                        continue;
                    };
                    // SAFETY: the image row is inside `dx` and each column row inside `src`
                    // (checked by the caller); a column lane is loaded only when its output
                    // column is inside the row, so masked-off addresses are never accessed.
                    let img_row = unsafe { dx.as_mut_ptr().add(c * g.h * g.w + iy * g.w) };
                    for b in 0..blocks {
                        let row_lanes = lanes(0, g.w - 16 * b);
                        unsafe {
                            let at = img_row.add(16 * b);
                            let mut acc = _mm512_maskz_loadu_ps(row_lanes, at);
                            for (kx, m) in masks.iter().enumerate().take(g.kw) {
                                let tap = (c * g.kh + ky) * g.kw + kx;
                                let grad = src
                                    .as_ptr()
                                    .add(tap * ld + off + oy * g.ow)
                                    .wrapping_add(16 * b + g.pad)
                                    .wrapping_sub(kx);
                                let v = _mm512_maskz_loadu_ps(m[b], grad);
                                acc = _mm512_mask_add_ps(acc, m[b], acc, v);
                            }
                            _mm512_mask_storeu_ps(at, row_lanes, acc);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of the column matrix, one element at a time.
    fn naive_cols(x: &[f32], g: &ConvGeom) -> Vec<f32> {
        let mut cols = vec![0.0; g.taps() * g.pixels()];
        for c in 0..g.c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let iy = (oy + ky) as isize - g.pad as isize;
                            let ix = (ox + kx) as isize - g.pad as isize;
                            let v =
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w
                                {
                                    x[(c * g.h + iy as usize) * g.w + ix as usize]
                                } else {
                                    0.0
                                };
                            cols[((c * g.kh + ky) * g.kw + kx) * g.pixels() + oy * g.ow + ox] = v;
                        }
                    }
                }
            }
        }
        cols
    }

    fn geoms() -> Vec<ConvGeom> {
        vec![
            ConvGeom::new(1, 1, 6, 5, 2, 3, 3, 0).unwrap(),
            ConvGeom::new(1, 2, 6, 5, 2, 3, 2, 2).unwrap(),
            ConvGeom::new(1, 3, 4, 4, 1, 5, 5, 2).unwrap(),
            // Padding wider than the kernel reach: whole rows and columns of zeros.
            ConvGeom::new(1, 1, 3, 3, 1, 2, 2, 3).unwrap(),
            // Rows of two, three and (beyond the AVX-512 path) five 16-lane blocks.
            ConvGeom::new(1, 2, 5, 28, 3, 5, 5, 2).unwrap(),
            ConvGeom::new(1, 1, 4, 40, 1, 3, 3, 1).unwrap(),
            ConvGeom::new(1, 1, 3, 70, 1, 3, 3, 0).unwrap(),
        ]
    }

    #[test]
    fn output_size_follows_padding_and_rejects_oversized_kernels() {
        let g = ConvGeom::new(2, 1, 28, 28, 6, 5, 5, 2).unwrap();
        assert_eq!((g.oh, g.ow, g.taps(), g.pixels()), (28, 28, 25, 784));
        let g = ConvGeom::new(2, 6, 14, 14, 16, 5, 5, 0).unwrap();
        assert_eq!((g.oh, g.ow), (10, 10));
        assert!(ConvGeom::new(1, 1, 3, 3, 1, 5, 5, 0).is_none());
        assert!(ConvGeom::new(1, 1, 3, 3, 1, 5, 5, 1).is_some());
    }

    #[test]
    fn im2col_matches_definition_and_overwrites_stale_data() {
        for g in geoms() {
            let x: Vec<f32> = (0..g.in_img()).map(|v| v as f32 + 1.0).collect();
            let want = naive_cols(&x, &g);
            // Two images side by side in one matrix; this one is the second block.
            let ld = 2 * g.pixels();
            for f in [im2col, im2col_portable] {
                let mut dst = vec![f32::NAN; g.taps() * ld];
                f(&x, &g, &mut dst, ld, g.pixels());
                for r in 0..g.taps() {
                    assert_eq!(
                        &dst[r * ld + g.pixels()..(r + 1) * ld],
                        &want[r * g.pixels()..(r + 1) * g.pixels()],
                        "{g:?} row {r}"
                    );
                    assert!(dst[r * ld..r * ld + g.pixels()].iter().all(|v| v.is_nan()));
                }
            }
        }
    }

    #[test]
    fn both_paths_agree_bit_for_bit_on_the_lenet_shapes() {
        for g in [
            ConvGeom::new(2, 1, 28, 28, 6, 5, 5, 2).unwrap(),
            ConvGeom::new(2, 6, 14, 14, 16, 5, 5, 0).unwrap(),
        ] {
            let x: Vec<f32> = (0..g.in_img()).map(|v| (v as f32 * 0.37).sin()).collect();
            let ld = 2 * g.pixels();
            let (mut a, mut b) = (vec![1.0; g.taps() * ld], vec![2.0; g.taps() * ld]);
            for off in [0, g.pixels()] {
                im2col(&x, &g, &mut a, ld, off);
                im2col_portable(&x, &g, &mut b, ld, off);
            }
            assert_eq!(a, b, "im2col {g:?}");
            let cols: Vec<f32> = (0..g.taps() * ld)
                .map(|v| (v as f32 * 0.11).cos())
                .collect();
            let (mut a, mut b) = (x.clone(), x.clone());
            for off in [0, g.pixels()] {
                col2im_add(&cols, ld, off, &g, &mut a);
                col2im_add_portable(&cols, ld, off, &g, &mut b);
            }
            assert_eq!(a, b, "col2im {g:?}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> == <x, col2im(y)> for all x, y.
        for g in geoms() {
            let x: Vec<f32> = (0..g.in_img())
                .map(|v| ((v * 7) % 11) as f32 - 5.0)
                .collect();
            let y: Vec<f32> = (0..g.taps() * g.pixels())
                .map(|v| ((v * 5) % 13) as f32 - 6.0)
                .collect();
            let cols = naive_cols(&x, &g);
            let lhs: f32 = cols.iter().zip(&y).map(|(a, b)| a * b).sum();
            for f in [col2im_add, col2im_add_portable] {
                let mut dx = vec![0.0; g.in_img()];
                f(&y, g.pixels(), 0, &g, &mut dx);
                let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
                assert_eq!(lhs, rhs, "{g:?}");
            }
        }
    }
}
