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
            let mut dst = vec![f32::NAN; g.taps() * ld];
            im2col(&x, &g, &mut dst, ld, g.pixels());
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
            let mut dx = vec![0.0; g.in_img()];
            col2im_add(&y, g.pixels(), 0, &g, &mut dx);
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }
}
