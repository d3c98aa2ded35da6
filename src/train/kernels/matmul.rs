//! Safe, bounds-checked views over `f32` slices and a single-threaded GEMM on them.
//!
//! The kernels call [`gemm`](https://docs.rs/gemm) from inside rayon tasks that already split
//! the batch, so every product here runs with `Parallelism::None`; the views check once, up
//! front, that every index the product touches lies inside its slice, which is what makes the
//! one `unsafe` call below sound.

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A view with explicit strides; panics if an element would lie outside `data`
    /// (an internal indexing bug, never an input error: shapes are validated before).
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < data.len(),
            "matrix view {rows}x{cols} (rs {rs}, cs {cs}) exceeds slice of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// A dense row-major `rows x cols` view.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A mutable matrix view whose rows are `ld` apart and whose elements within a row are
/// contiguous, so that distinct elements never alias.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    ld: usize,
}

impl<'a> MatMut<'a> {
    /// A view of `rows x cols` with leading dimension `ld >= cols`; panics on an internal
    /// indexing bug (see [`MatRef::new`]).
    pub(crate) fn with_ld(data: &'a mut [f32], rows: usize, cols: usize, ld: usize) -> Self {
        assert!(ld >= cols, "leading dimension {ld} < columns {cols}");
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * ld + cols <= data.len(),
            "matrix view {rows}x{cols} (ld {ld}) exceeds slice of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            ld,
        }
    }

    /// A dense row-major `rows x cols` view.
    pub(crate) fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::with_ld(data, rows, cols, cols)
    }
}

/// `dst = a * b` (or `dst += a * b` when `accumulate`), single-threaded.
pub(crate) fn matmul(dst: MatMut<'_>, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    assert_eq!(dst.rows, a.rows, "matmul: dst rows vs lhs rows");
    assert_eq!(dst.cols, b.cols, "matmul: dst cols vs rhs cols");
    assert_eq!(a.cols, b.rows, "matmul: inner dimensions");
    let (m, n, k) = (dst.rows, dst.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in dst.data.chunks_mut(dst.ld).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the constructors checked that every element (i, j) with i < rows, j < cols of
    // each view lies inside its slice, and the dimension checks above make the product touch
    // exactly those elements. `dst` is borrowed mutably, so it cannot alias `a` or `b`, and its
    // rows are `ld >= cols` apart so distinct elements of it are distinct memory.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.ld as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matmul_matches_naive_with_transposes_and_accumulation() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|v| v as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|v| (v % 5) as f32 - 1.5).collect();
        let want = naive(&a, &b, m, n, k);
        let mut c = vec![0.0; m * n];
        matmul(
            MatMut::row_major(&mut c, m, n),
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            false,
        );
        assert_eq!(c, want);
        // b stored transposed (n x k), read through a transposed view; accumulate doubles it.
        let bt: Vec<f32> = (0..n * k).map(|idx| b[(idx % k) * n + idx / k]).collect();
        matmul(
            MatMut::row_major(&mut c, m, n),
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&bt, n, k).t(),
            true,
        );
        let doubled: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
        assert_eq!(c, doubled);
    }

    #[test]
    fn matmul_writes_only_its_columns_when_ld_is_wider() {
        let a = [1.0, 2.0];
        let b = [3.0, 4.0];
        let mut c = [9.0; 6];
        matmul(
            MatMut::with_ld(&mut c, 2, 2, 3),
            MatRef::row_major(&a, 2, 1),
            MatRef::row_major(&b, 1, 2),
            false,
        );
        assert_eq!(c, [3.0, 4.0, 9.0, 6.0, 8.0, 9.0]);
    }

    #[test]
    #[should_panic(expected = "exceeds slice")]
    fn views_reject_out_of_bounds_shapes() {
        let a = [0.0; 5];
        let _ = MatRef::row_major(&a, 2, 3);
    }
}
