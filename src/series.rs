//! Downsampling long series so they stay cheap to send and draw, without hiding spikes.
//!
//! A per-update series has tens of thousands of points (a million for a long
//! schedule preview); a chart is a few hundred pixels wide. Averaging would
//! flatten exactly what people look for — a loss spike, the drop of a step
//! schedule — so each bucket keeps its minimum and maximum (and its first
//! value and mean). Buckets are fixed by the number of points and a bucket
//! count alone, so every run on one chart can be cut at the same steps.

/// Equal runs of consecutive indices over `0..len`; the last one may be shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// Indices per bucket (≥ 1).
    pub size: usize,
    /// Number of buckets: `len.div_ceil(size)`.
    pub count: usize,
    /// Length of the series the buckets cover.
    pub len: usize,
}

impl Buckets {
    /// At most `max_buckets` buckets over `len` points; one point per bucket when
    /// `len <= max_buckets` (nothing is reduced).
    pub fn new(len: usize, max_buckets: usize) -> Buckets {
        let size = len.div_ceil(max_buckets.max(1)).max(1);
        Buckets {
            size,
            count: len.div_ceil(size),
            len,
        }
    }

    /// Whether each bucket holds a single point.
    pub fn is_identity(&self) -> bool {
        self.size == 1
    }

    /// The first index of every bucket.
    pub fn starts(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count).map(move |b| b * self.size)
    }
}

/// A series reduced to buckets: per bucket its first value, minimum, maximum and mean.
/// NaN values (a diverged batch's loss) are skipped; a bucket with no finite value,
/// or beyond the end of the series, is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reduced {
    pub first: Vec<Option<f64>>,
    pub min: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
    pub mean: Vec<Option<f64>>,
}

/// Reduces `values` (index `i` is the series' point `i`) to `buckets`. `values` may be
/// shorter than `buckets.len` (a run with fewer updates on a shared chart): the buckets it
/// does not reach are `None`.
pub fn reduce(values: &[f64], buckets: &Buckets) -> Reduced {
    let mut out = Reduced {
        first: Vec::with_capacity(buckets.count),
        min: Vec::with_capacity(buckets.count),
        max: Vec::with_capacity(buckets.count),
        mean: Vec::with_capacity(buckets.count),
    };
    for start in buckets.starts() {
        let end = (start + buckets.size).min(values.len());
        let chunk = values.get(start..end).unwrap_or(&[]);
        let finite = chunk.iter().copied().filter(|v| !v.is_nan());
        let (mut lo, mut hi, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
        for v in finite {
            lo = lo.min(v);
            hi = hi.max(v);
            sum += v;
            n += 1;
        }
        out.first
            .push(chunk.first().copied().filter(|v| !v.is_nan()));
        if n == 0 {
            out.min.push(None);
            out.max.push(None);
            out.mean.push(None);
        } else {
            out.min.push(Some(lo));
            out.max.push(Some(hi));
            out.mean.push(Some(sum / n as f64));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_series_are_not_reduced() {
        let b = Buckets::new(5, 10);
        assert_eq!((b.size, b.count), (1, 5));
        assert!(b.is_identity());
        let r = reduce(&[1.0, 2.0, 3.0, 4.0, 5.0], &b);
        assert_eq!(r.min, r.max);
        assert_eq!(r.first[4], Some(5.0));
    }

    #[test]
    fn a_spike_survives_in_the_bucket_maximum() {
        let mut values = vec![1.0; 10_000];
        values[4_321] = 50.0;
        let b = Buckets::new(values.len(), 100);
        assert_eq!((b.size, b.count), (100, 100));
        let r = reduce(&values, &b);
        assert_eq!(r.max[43], Some(50.0));
        assert_eq!(r.min[43], Some(1.0));
        assert_eq!(r.max[42], Some(1.0));
        assert!((r.mean[43].unwrap() - (99.0 + 50.0) / 100.0).abs() < 1e-12);
    }

    #[test]
    fn the_last_bucket_may_be_short_and_shorter_series_leave_gaps() {
        let b = Buckets::new(10, 4);
        assert_eq!((b.size, b.count), (3, 4));
        assert_eq!(b.starts().collect::<Vec<_>>(), vec![0, 3, 6, 9]);
        let r = reduce(&[0.0, 1.0, 2.0, 3.0, 4.0], &b);
        assert_eq!(r.max, vec![Some(2.0), Some(4.0), None, None]);
    }

    #[test]
    fn nan_is_skipped_and_an_all_nan_bucket_is_empty() {
        let b = Buckets::new(4, 2);
        let r = reduce(&[f64::NAN, 2.0, f64::NAN, f64::NAN], &b);
        assert_eq!(r.min, vec![Some(2.0), None]);
        assert_eq!(r.first, vec![None, None]);
    }
}
