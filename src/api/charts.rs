//! Chart images for READMEs and reports: `GET /v1/jobs/{id}/chart.svg` and
//! `GET /v1/compare.svg?ids=1,2,3`, both `&metric=test_acc&log_y=true&width=800&height=480`.
//!
//! The images are drawn by [`crate::chart`] from the same data the dashboard plots: the
//! per-epoch rows, or the per-update records in common min/max buckets. Each job's legend
//! entry names it and its schedule (`cosine #3: cosine 0.3→0.01 over 20, warm-up 5`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use super::compare::{job_ids, unknown_job};
use super::encode;
use super::error::ApiError;
use super::jobs::job_id;
use super::query::QueryParams;
use super::routes::Routes;
use super::AppState;
use crate::chart::{LineChart, Series};
use crate::job::{job_summary, JobId};
use crate::service::StepBuckets;
use crate::store::JobRecord;
use crate::train::EpochMetrics;

/// Width and height of an image when none are asked for, and their bounds.
pub const DEFAULT_SIZE: (u32, u32) = (800, 480);
pub const MIN_SIDE: u32 = 200;
pub const MAX_SIDE: u32 = 4000;
/// Per-update series are cut into at most this many buckets (fewer on narrow images).
const MAX_STEP_BUCKETS: u32 = 2000;

/// What a chart shows: a per-epoch metric, or a per-update series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartMetric {
    TestAcc,
    TrainAcc,
    TestLoss,
    TrainLoss,
    Lr,
    LrStep,
    LossStep,
}

impl ChartMetric {
    /// Every metric, in the dashboard's order.
    pub const ALL: [ChartMetric; 7] = [
        ChartMetric::TestAcc,
        ChartMetric::TrainAcc,
        ChartMetric::TestLoss,
        ChartMetric::TrainLoss,
        ChartMetric::Lr,
        ChartMetric::LrStep,
        ChartMetric::LossStep,
    ];

    /// The name in `?metric=`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartMetric::TestAcc => "test_acc",
            ChartMetric::TrainAcc => "train_acc",
            ChartMetric::TestLoss => "test_loss",
            ChartMetric::TrainLoss => "train_loss",
            ChartMetric::Lr => "lr",
            ChartMetric::LrStep => "lr_step",
            ChartMetric::LossStep => "loss_step",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ChartMetric::TestAcc => "Test accuracy",
            ChartMetric::TrainAcc => "Train accuracy",
            ChartMetric::TestLoss => "Test loss",
            ChartMetric::TrainLoss => "Train loss",
            ChartMetric::Lr => "Learning rate per epoch",
            ChartMetric::LrStep => "Learning rate per update",
            ChartMetric::LossStep => "Batch loss per update",
        }
    }

    fn y_label(self) -> &'static str {
        match self {
            ChartMetric::TestAcc | ChartMetric::TrainAcc => "accuracy",
            ChartMetric::TestLoss | ChartMetric::TrainLoss | ChartMetric::LossStep => "loss",
            ChartMetric::Lr | ChartMetric::LrStep => "learning rate",
        }
    }

    fn is_per_update(self) -> bool {
        matches!(self, ChartMetric::LrStep | ChartMetric::LossStep)
    }

    fn is_rate(self) -> bool {
        matches!(self, ChartMetric::Lr | ChartMetric::LrStep)
    }

    /// The metric's value in an epoch's row; `None` for the per-update series.
    fn of(self, row: &EpochMetrics) -> Option<f64> {
        match self {
            ChartMetric::TestAcc => Some(row.test_acc),
            ChartMetric::TrainAcc => Some(row.train_acc),
            ChartMetric::TestLoss => Some(row.test_loss),
            ChartMetric::TrainLoss => Some(row.train_loss),
            ChartMetric::Lr => Some(row.lr),
            ChartMetric::LrStep | ChartMetric::LossStep => None,
        }
    }
}

impl std::str::FromStr for ChartMetric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChartMetric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ChartMetric::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown metric `{s}`, expected one of {}", names.join(", "))
            })
    }
}

/// The options every chart image takes.
#[derive(Debug, Clone, Copy)]
struct ChartOptions {
    metric: ChartMetric,
    log_y: bool,
    width: u32,
    height: u32,
}

impl ChartOptions {
    const PARAMETERS: [&'static str; 4] = ["metric", "log_y", "width", "height"];

    fn parse(params: &QueryParams) -> Result<ChartOptions, ApiError> {
        let metric = match params.get("metric") {
            None => ChartMetric::TestAcc,
            Some(word) => word
                .parse()
                .map_err(|message| ApiError::bad_query("metric", message))?,
        };
        Ok(ChartOptions {
            metric,
            log_y: params.flag("log_y")?,
            width: params.int_in("width", DEFAULT_SIZE.0, MIN_SIDE..=MAX_SIDE)?,
            height: params.int_in("height", DEFAULT_SIZE.1, MIN_SIDE..=MAX_SIDE)?,
        })
    }

    /// Buckets for per-update series: about one per pixel column of the plot.
    fn step_buckets(&self) -> usize {
        self.width.min(MAX_STEP_BUCKETS) as usize
    }

    fn chart(&self, title: String) -> LineChart {
        let m = self.metric;
        let x = if m.is_per_update() { "update" } else { "epoch" };
        LineChart::new(title, x, m.y_label())
            .size(self.width, self.height)
            .log_y(self.log_y)
            .y_from_zero(m.is_rate())
    }
}

/// A job's legend entry: its name, id and schedule.
fn legend_label(job: &JobRecord) -> String {
    format!("{} #{}: {}", job.spec.name, job.id, job_summary(&job.spec))
}

/// One job's per-epoch series of `metric`; the rate holds for its epoch, with the epoch's
/// range of rates shaded when it changes within epochs.
fn epoch_series(metric: ChartMetric, job: &JobRecord, rows: &[EpochMetrics]) -> Series {
    let x = rows.iter().map(|row| f64::from(row.epoch)).collect();
    let y = rows.iter().map(|row| metric.of(row)).collect();
    let series = Series::line(legend_label(job), x, y);
    if metric != ChartMetric::Lr {
        return series;
    }
    let varies = rows.iter().any(|row| row.lr_min != row.lr_max);
    let series = series.stepped();
    if varies {
        series.with_band(
            rows.iter().map(|row| Some(row.lr_min)).collect(),
            rows.iter().map(|row| Some(row.lr_max)).collect(),
        )
    } else {
        series
    }
}

/// Every job's per-update series of `metric` over the common buckets (x: the 1-based
/// number of each bucket's first update): a rate's min/max band, or the mean batch loss
/// over its min/max band.
fn step_series(metric: ChartMetric, steps: StepBuckets) -> Vec<Series> {
    let x: Vec<f64> = steps.buckets.starts().map(|s| (s + 1) as f64).collect();
    let wide = steps.buckets.size > 1;
    steps
        .jobs
        .into_iter()
        .map(|job| {
            let label = legend_label(&job.job);
            match (metric, wide) {
                (ChartMetric::LrStep, true) => {
                    Series::band(label, x.clone(), job.lr_min, job.lr_max).stepped()
                }
                (ChartMetric::LrStep, false) => {
                    Series::line(label, x.clone(), job.lr_min).stepped()
                }
                (_, true) => Series::line(label, x.clone(), job.loss_mean)
                    .with_band(job.loss_min, job.loss_max),
                (_, false) => Series::line(label, x.clone(), job.loss_mean),
            }
        })
        .collect()
}

/// Reads what `options` asks for about `ids` and builds the chart titled `title(jobs)`.
async fn build(
    state: &AppState,
    ids: &[JobId],
    options: ChartOptions,
    title: impl FnOnce(&[&JobRecord]) -> String,
) -> Result<LineChart, crate::service::ServiceError> {
    let metric = options.metric;
    if metric.is_per_update() {
        let steps = state
            .service()
            .step_buckets(ids, options.step_buckets())
            .await?;
        let title = title(&steps.jobs.iter().map(|j| &j.job).collect::<Vec<_>>());
        Ok(step_series(metric, steps)
            .into_iter()
            .fold(options.chart(title), LineChart::push))
    } else {
        let jobs = state.service().metrics_of(ids).await?;
        let title = title(&jobs.iter().map(|(job, _)| job).collect::<Vec<_>>());
        Ok(jobs
            .iter()
            .map(|(job, rows)| epoch_series(metric, job, rows))
            .fold(options.chart(title), LineChart::push))
    }
}

/// The SVG, drawn off the async runtime. SVG may carry scripts: the policy forbids any.
pub(super) async fn svg_response(
    headers: &HeaderMap,
    chart: LineChart,
) -> Result<Response, ApiError> {
    let mut response = encode::off_runtime(headers, "image/svg+xml", move || {
        chart.to_svg().map_err(ApiError::internal)
    })
    .await?;
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/v1/jobs/{id}/chart.svg", job_chart)
        .get("/v1/compare.svg", compare_chart)
}

/// `GET /v1/jobs/{id}/chart.svg?metric=test_acc&log_y=true&width=800&height=480`.
async fn job_chart(
    State(state): State<AppState>,
    path: Result<Path<JobId>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let params = QueryParams::parse(query.as_deref(), &ChartOptions::PARAMETERS)?;
    let options = ChartOptions::parse(&params)?;
    let chart = build(&state, &[id], options, |jobs| {
        let name = jobs.first().map_or("", |job| job.spec.name.as_str());
        format!("{} — {name} #{id}", options.metric.title())
    })
    .await?;
    svg_response(&headers, chart).await
}

/// `GET /v1/compare.svg?ids=1,2,3&metric=test_acc&log_y=true&width=800&height=480`.
async fn compare_chart(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut allowed = vec!["ids"];
    allowed.extend(ChartOptions::PARAMETERS);
    let params = QueryParams::parse(query.as_deref(), &allowed)?;
    let ids = job_ids(&params)?;
    let options = ChartOptions::parse(&params)?;
    let chart = build(&state, &ids, options, |jobs| {
        let n = jobs.len();
        format!(
            "{} — {n} job{}",
            options.metric.title(),
            if n == 1 { "" } else { "s" }
        )
    })
    .await
    .map_err(unknown_job)?;
    svg_response(&headers, chart).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse_by_name_and_unknown_ones_list_the_choices() {
        for metric in ChartMetric::ALL {
            assert_eq!(metric.as_str().parse::<ChartMetric>(), Ok(metric));
        }
        let err = "accuracy".parse::<ChartMetric>().unwrap_err();
        assert!(
            err.contains("test_acc") && err.contains("loss_step"),
            "{err}"
        );
    }

    #[test]
    fn options_have_defaults_and_bounds() {
        let parse = |raw: &str| {
            let params = QueryParams::parse(Some(raw), &ChartOptions::PARAMETERS).unwrap();
            ChartOptions::parse(&params)
        };
        let options = parse("").unwrap();
        assert_eq!(options.metric, ChartMetric::TestAcc);
        assert_eq!((options.width, options.height), DEFAULT_SIZE);
        assert!(!options.log_y);
        let options = parse("metric=lr_step&log_y=true&width=200&height=4000").unwrap();
        assert_eq!(
            (options.metric, options.log_y, options.width, options.height),
            (ChartMetric::LrStep, true, 200, 4000)
        );
        for (raw, path) in [
            ("metric=acc", "metric"),
            ("width=199", "width"),
            ("height=4001", "height"),
            ("log_y=1", "log_y"),
        ] {
            match parse(raw) {
                Err(ApiError::Client { path: Some(p), .. }) => assert_eq!(p, path, "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }
}
