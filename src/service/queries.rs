//! Read-only views across jobs: several jobs' series side by side (charts, comparisons)
//! and job counts by status (monitoring).

use super::{Service, ServiceError};
use crate::job::{JobId, JobStatus};
use crate::series::{self, Buckets};
use crate::store::{JobFilter, JobRecord};
use crate::train::EpochMetrics;

/// Per-update records are read and reduced in pages of about this many updates, so a job
/// of millions of updates never sits in memory whole.
const STEP_PAGE: usize = 50_000;

/// Several jobs' per-update records reduced to the same buckets.
#[derive(Debug, Clone)]
pub struct StepBuckets {
    /// Cut over the longest job's updates; shorter jobs leave their last buckets empty.
    pub buckets: Buckets,
    pub jobs: Vec<JobSteps>,
}

/// One job's buckets: per bucket the rate's and the batch loss's extremes, and the
/// mean loss; `None` where the job has no update (or no finite loss) in the bucket.
#[derive(Debug, Clone)]
pub struct JobSteps {
    pub job: JobRecord,
    pub lr_min: Vec<Option<f64>>,
    pub lr_max: Vec<Option<f64>>,
    pub loss_min: Vec<Option<f64>>,
    pub loss_max: Vec<Option<f64>>,
    pub loss_mean: Vec<Option<f64>>,
}

impl JobSteps {
    fn new(job: JobRecord, count: usize) -> JobSteps {
        let empty = || Vec::with_capacity(count);
        JobSteps {
            job,
            lr_min: empty(),
            lr_max: empty(),
            loss_min: empty(),
            loss_max: empty(),
            loss_mean: empty(),
        }
    }

    /// Appends the buckets of one page of updates `from..from + len` (a whole number of
    /// buckets of `size`, but for the last page). Updates missing from `rows` are gaps.
    fn push_page(&mut self, rows: &[crate::train::StepRecord], from: u64, len: usize, size: usize) {
        let mut lr = vec![f64::NAN; len];
        let mut loss = vec![f64::NAN; len];
        for row in rows {
            let Some(i) = row
                .step
                .checked_sub(from)
                .and_then(|i| usize::try_from(i).ok())
            else {
                continue;
            };
            if i < len {
                lr[i] = row.lr;
                loss[i] = row.loss;
            }
        }
        let page = Buckets {
            size,
            count: len.div_ceil(size),
            len,
        };
        let lr = series::reduce(&lr, &page);
        let loss = series::reduce(&loss, &page);
        self.lr_min.extend(lr.min);
        self.lr_max.extend(lr.max);
        self.loss_min.extend(loss.min);
        self.loss_max.extend(loss.max);
        self.loss_mean.extend(loss.mean);
    }

    /// Fills the buckets a shorter job does not reach.
    fn pad_to(&mut self, count: usize) {
        for column in [
            &mut self.lr_min,
            &mut self.lr_max,
            &mut self.loss_min,
            &mut self.loss_max,
            &mut self.loss_mean,
        ] {
            column.resize(count, None);
        }
    }
}

impl Service {
    /// The per-update records of `ids` in at most `max_buckets` common buckets (min/max
    /// per bucket, so spikes survive); [`ServiceError::NotFound`] names the first unknown id.
    pub async fn step_buckets(
        &self,
        ids: &[JobId],
        max_buckets: usize,
    ) -> Result<StepBuckets, ServiceError> {
        let mut jobs = Vec::with_capacity(ids.len());
        let mut longest = 0u64;
        for &id in ids {
            let job = self.record(id).await?;
            longest = longest.max(self.store().step_count(id).await?);
            jobs.push(job);
        }
        let len = usize::try_from(longest).unwrap_or(usize::MAX);
        let buckets = Buckets::new(len, max_buckets);
        // Pages hold whole buckets, so page results line up with the common buckets.
        let per_page = buckets.size * (STEP_PAGE / buckets.size).max(1);
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let id = job.id;
            let mut steps = JobSteps::new(job, buckets.count);
            let mut from = 0usize;
            while from < len {
                let page = per_page.min(len - from);
                let limit = u32::try_from(page).unwrap_or(u32::MAX);
                let rows = self.store().steps(id, from as u64, limit).await?;
                // Reducing one page costs about as much as decoding its rows: cheap enough
                // for the runtime; the (large) response is rendered off it by the API.
                steps.push_page(&rows, from as u64, page, buckets.size);
                from += page;
                // Fewer rows than asked for, all inside this page: nothing comes later.
                let ended =
                    rows.len() < page && rows.last().is_none_or(|row| row.step < from as u64);
                if ended {
                    break;
                }
            }
            steps.pad_to(buckets.count);
            out.push(steps);
        }
        Ok(StepBuckets { buckets, jobs: out })
    }

    /// Each of `ids` with its stored epochs, in the order given; [`ServiceError::NotFound`]
    /// names the first unknown id.
    pub async fn metrics_of(
        &self,
        ids: &[JobId],
    ) -> Result<Vec<(JobRecord, Vec<EpochMetrics>)>, ServiceError> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let job = self.record(id).await?;
            let rows = self.store().epoch_metrics(id).await?;
            out.push((job, rows));
        }
        Ok(out)
    }

    /// How many jobs have each status, in [`JobStatus::ALL`] order.
    pub async fn job_counts(&self) -> Result<Vec<(JobStatus, i64)>, ServiceError> {
        let mut counts = Vec::with_capacity(JobStatus::ALL.len());
        for status in JobStatus::ALL {
            let filter = JobFilter {
                statuses: vec![status],
                limit: 1,
                ..JobFilter::default()
            };
            let (_, total) = self.store().list_jobs(&filter).await?;
            counts.push((status, total));
        }
        Ok(counts)
    }
}
