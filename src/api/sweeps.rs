//! `/v1/sweeps`: submit, inspect, list, cancel and delete sweeps; their summaries, band
//! series and early-stopping decisions; ready-made presets.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::error::ApiError;
use super::idempotency::{idempotency_key, submitted};
use super::json::OrderedJson;
use super::query::QueryParams;
use super::routes::Routes;
use super::AppState;
use crate::auth::Caller;
use crate::job::{JobId, JobStatus, Warning};
use crate::service::{SweepDecision, SweepDetails, SweepSubmission};
use crate::store::{SweepFilter, SweepRecord, SweepStatus};
use crate::sweep::{
    band_chart, bands_csv, presets, Action, BandKind, ConfigBand, ConfigOrigin, Metric, Mode,
    StoppingParams, Summary, SweepId, SweepRequest,
};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .post("/v1/sweeps", submit)
        .get("/v1/sweeps", list)
        .get("/v1/sweeps/presets", list_presets)
        .post("/v1/sweeps/presets/{name}", submit_preset)
        .get("/v1/sweeps/{id}", show)
        .delete("/v1/sweeps/{id}", delete)
        .post("/v1/sweeps/{id}/cancel", cancel)
        .get("/v1/sweeps/{id}/series", series)
        .get("/v1/sweeps/{id}/decisions", decisions)
        .get("/v1/sweeps/{id}/chart.svg", chart)
}

/// A sweep id from the path; anything that is not one is simply not found.
pub(super) fn sweep_id(path: Result<Path<SweepId>, PathRejection>) -> Result<SweepId, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::not_found("sweep"))
}

/// How far a sweep has got.
#[derive(Debug, Serialize)]
struct SweepProgress {
    /// Members that have ended (succeeded, failed, canceled or stopped early).
    done: usize,
    total: usize,
    queued: usize,
    running: usize,
    paused: usize,
}

/// One member of a config: its seed and job.
#[derive(Debug, Serialize)]
struct MemberView {
    seed: u64,
    job: JobId,
    status: JobStatus,
    /// Epochs completed.
    epoch: i64,
}

#[derive(Debug, Serialize)]
struct ConfigView {
    index: usize,
    name: String,
    origin: ConfigOrigin,
    /// The fields this config changes (job path → value).
    overrides: Value,
    epochs: u32,
    members: Vec<MemberView>,
}

#[derive(Debug, Serialize)]
struct SummaryView {
    metric: &'static str,
    #[serde(flatten)]
    summary: Summary,
}

#[derive(Debug, Serialize)]
struct SweepLinks {
    #[serde(rename = "self")]
    this: String,
    jobs: String,
    series: String,
    decisions: String,
    chart: String,
}

/// A sweep as clients see it.
#[derive(Debug, Serialize)]
struct SweepView {
    id: SweepId,
    name: String,
    status: SweepStatus,
    cancel_requested: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    progress: SweepProgress,
    seeds: Vec<u64>,
    /// The metric the summary ranks by, and its direction.
    metric: Metric,
    mode: Mode,
    early_stopping: Option<StoppingParams>,
    max_concurrent: Option<u32>,
    lockstep: bool,
    warnings: Vec<Warning>,
    configs: Vec<ConfigView>,
    /// Mean, std, n and 95% interval of the final and best value per config, the ranking and
    /// the paired comparison against the best.
    summary: SummaryView,
    /// The same for the test loss.
    test_loss: SummaryView,
    links: SweepLinks,
}

fn progress_of(members: &[crate::store::JobRecord]) -> SweepProgress {
    let count = |status: JobStatus| members.iter().filter(|m| m.status == status).count();
    SweepProgress {
        done: members.iter().filter(|m| m.status.is_finished()).count(),
        total: members.len(),
        queued: count(JobStatus::Queued),
        running: count(JobStatus::Running),
        paused: count(JobStatus::Paused),
    }
}

fn links(id: SweepId) -> SweepLinks {
    let base = format!("/v1/sweeps/{id}");
    SweepLinks {
        jobs: format!("/v1/jobs?sweep={id}"),
        series: format!("{base}/series"),
        decisions: format!("{base}/decisions"),
        chart: format!("{base}/chart.svg"),
        this: base,
    }
}

impl From<SweepDetails> for SweepView {
    fn from(details: SweepDetails) -> Self {
        let configs = details
            .plan
            .configs
            .iter()
            .map(|config| ConfigView {
                index: config.index,
                name: config.name.clone(),
                origin: config.origin.clone(),
                overrides: serde_json::to_value(&config.overrides).unwrap_or(Value::Null),
                epochs: config.epochs,
                members: details
                    .plan
                    .seeds
                    .iter()
                    .filter_map(|&seed| details.member(config.index, seed))
                    .map(|job| MemberView {
                        seed: job.spec.seed,
                        job: job.id,
                        status: job.status,
                        epoch: job.progress_epoch,
                    })
                    .collect(),
            })
            .collect();
        let record = details.record;
        SweepView {
            id: record.id,
            name: record.name,
            status: record.status,
            cancel_requested: record.cancel_requested,
            created_at: record.created_at,
            updated_at: record.updated_at,
            finished_at: record.finished_at,
            progress: progress_of(&details.members),
            seeds: details.plan.seeds.clone(),
            metric: details.plan.metric,
            mode: details.plan.mode,
            early_stopping: details.plan.early_stopping,
            max_concurrent: details.plan.max_concurrent,
            lockstep: details.plan.lockstep,
            warnings: record.warnings,
            configs,
            summary: SummaryView {
                metric: details.plan.metric.as_str(),
                summary: details.summary,
            },
            test_loss: SummaryView {
                metric: Metric::TestLoss.as_str(),
                summary: details.test_loss,
            },
            links: links(record.id),
        }
    }
}

/// `POST /v1/sweeps`: expand, check every member job, queue them all.
async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OrderedJson(request): OrderedJson<SweepRequest>,
) -> Result<Response, ApiError> {
    queue_sweep(&state, &caller, &headers, &request).await
}

/// `POST /v1/sweeps/presets/{name}`: the preset's request, submitted as is, so one `curl`
/// starts a chapter exercise. Answers like `POST /v1/sweeps`.
async fn submit_preset(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let preset = crate::sweep::preset(&name)
        .ok_or_else(|| ApiError::not_found(format!("preset `{name}`")))?;
    // Read as `POST /v1/sweeps` reads a body, so both name and hash the configs alike.
    let bytes = serde_json::to_vec(&preset.request).map_err(ApiError::internal)?;
    let request: SweepRequest = super::json::parse_json_ordered(&bytes)?;
    queue_sweep(&state, &caller, &headers, &request).await
}

/// Queues `request` for the caller's tenant under the request's Idempotency-Key: 201 with
/// the sweep, or 200 with the first one for a retry. Both submission routes answer so.
async fn queue_sweep(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request: &SweepRequest,
) -> Result<Response, ApiError> {
    let key = idempotency_key(headers)?;
    let (details, replayed) = match state
        .service()
        .submit_sweep_for(&caller.tenant, request, key.as_deref())
        .await?
    {
        SweepSubmission::Created(details) => (details, false),
        SweepSubmission::Replayed(details) => (details, true),
    };
    let location = format!("/v1/sweeps/{}", details.record.id);
    Ok(submitted(SweepView::from(details), &location, replayed))
}

/// `GET /v1/sweeps/{id}`.
async fn show(
    State(state): State<AppState>,
    path: Result<Path<SweepId>, PathRejection>,
) -> Result<Json<SweepView>, ApiError> {
    let id = sweep_id(path)?;
    Ok(Json(state.service().sweep(id).await?.into()))
}

#[derive(Debug, Serialize)]
struct SweepListItem {
    id: SweepId,
    name: String,
    status: SweepStatus,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    links: SweepLinks,
}

impl From<SweepRecord> for SweepListItem {
    fn from(record: SweepRecord) -> Self {
        SweepListItem {
            id: record.id,
            name: record.name,
            status: record.status,
            created_at: record.created_at,
            finished_at: record.finished_at,
            links: links(record.id),
        }
    }
}

#[derive(Debug, Serialize)]
struct SweepPageView {
    sweeps: Vec<SweepListItem>,
    total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET /v1/sweeps?limit=50&cursor=…`: newest first.
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Json<SweepPageView>, ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["limit", "cursor"])?;
    let filter = SweepFilter {
        before: params.parse_opt::<SweepId>("cursor", "a cursor from a previous page")?,
        limit: params.limit(DEFAULT_PAGE, MAX_PAGE)?,
        tenant: caller.scope().map(str::to_string),
    };
    let page = state.service().list_sweeps(&filter).await?;
    Ok(Json(SweepPageView {
        sweeps: page.sweeps.into_iter().map(SweepListItem::from).collect(),
        total: page.total,
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}

/// `POST /v1/sweeps/{id}/cancel`: queued and paused members at once, running ones at their
/// next batch.
async fn cancel(
    State(state): State<AppState>,
    path: Result<Path<SweepId>, PathRejection>,
) -> Result<(StatusCode, Json<SweepView>), ApiError> {
    let id = sweep_id(path)?;
    let details = state.service().cancel_sweep(id).await?;
    Ok((StatusCode::ACCEPTED, Json(details.into())))
}

/// `DELETE /v1/sweeps/{id}`: a finished sweep with its jobs, metrics and artifacts.
async fn delete(
    State(state): State<AppState>,
    path: Result<Path<SweepId>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = sweep_id(path)?;
    state.service().delete_sweep(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
struct SeriesView {
    sweep: SweepId,
    metric: Metric,
    configs: Vec<ConfigBand>,
}

/// The `metric` query parameter of a sweep's series or chart: the sweep's own by default.
pub(super) fn metric_param(params: &QueryParams) -> Result<Option<Metric>, ApiError> {
    params
        .get("metric")
        .map(|word| {
            word.parse::<Metric>()
                .map_err(|err| ApiError::bad_query("metric", err.to_string()))
        })
        .transpose()
}

/// `GET /v1/sweeps/{id}/series?metric=test_acc&format=json|csv`: per config, per epoch:
/// mean, std, min, max, n and the 95% interval.
async fn series(
    State(state): State<AppState>,
    path: Result<Path<SweepId>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = sweep_id(path)?;
    let params = QueryParams::parse(query.as_deref(), &["metric", "format"])?;
    let format = params.get("format").unwrap_or("json");
    if !["json", "csv"].contains(&format) {
        return Err(ApiError::bad_query(
            "format",
            format!("unknown format `{format}`, expected json or csv"),
        ));
    }
    let (_, metric, bands) = state
        .service()
        .sweep_series(id, metric_param(&params)?)
        .await?;
    if format == "csv" {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            bands_csv(&bands),
        )
            .into_response());
    }
    Ok(Json(SeriesView {
        sweep: id,
        metric,
        configs: bands,
    })
    .into_response())
}

#[derive(Debug, Serialize)]
struct DecisionView {
    seq: u64,
    at: DateTime<Utc>,
    rung_epoch: u32,
    config: usize,
    config_name: String,
    /// The config's mean over its seeds at the rung (null for NaN).
    value: Option<f64>,
    /// What it had to reach (null when there was nothing to compare with).
    cutoff: Option<f64>,
    action: Action,
}

#[derive(Debug, Serialize)]
struct DecisionsView {
    sweep: SweepId,
    decisions: Vec<DecisionView>,
}

/// `GET /v1/sweeps/{id}/decisions`: every early-stopping decision, in order.
async fn decisions(
    State(state): State<AppState>,
    path: Result<Path<SweepId>, PathRejection>,
) -> Result<Json<DecisionsView>, ApiError> {
    let id = sweep_id(path)?;
    let (plan, decisions) = state.service().sweep_decisions(id).await?;
    let finite = |x: f64| x.is_finite().then_some(x);
    Ok(Json(DecisionsView {
        sweep: id,
        decisions: decisions
            .into_iter()
            .map(|SweepDecision { seq, decision, at }| DecisionView {
                seq,
                at,
                rung_epoch: decision.rung_epoch,
                config: decision.config,
                config_name: plan
                    .configs
                    .get(decision.config)
                    .map_or_else(String::new, |c| c.name.clone()),
                value: finite(decision.value),
                cutoff: finite(decision.cutoff),
                action: decision.action,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize)]
struct PresetView {
    name: &'static str,
    question: &'static str,
    request: Value,
}

/// `GET /v1/sweeps/presets`: ready-made sweeps for the chapter's questions.
async fn list_presets() -> Json<Value> {
    let presets: Vec<PresetView> = presets()
        .into_iter()
        .map(|p| PresetView {
            name: p.name,
            question: p.question,
            request: p.request,
        })
        .collect();
    Json(serde_json::json!({ "presets": presets }))
}

/// `GET /v1/sweeps/{id}/chart.svg?metric=test_acc&band=std|ci&log_y=false&width=&height=`: one
/// mean line per config over a shaded band (± one standard deviation over the seeds, or the
/// 95% interval), a legend naming each config and its seeds.
async fn chart(
    State(state): State<AppState>,
    path: Result<Path<SweepId>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use super::charts::{DEFAULT_SIZE, MAX_SIDE, MIN_SIDE};
    let id = sweep_id(path)?;
    let params = QueryParams::parse(
        query.as_deref(),
        &["metric", "band", "log_y", "width", "height"],
    )?;
    let ci = match params.get("band").unwrap_or("std") {
        "std" => false,
        "ci" => true,
        other => {
            return Err(ApiError::bad_query(
                "band",
                format!("unknown band `{other}`, expected std or ci"),
            ))
        }
    };
    let log_y = params.flag("log_y")?;
    let width = params.int_in("width", DEFAULT_SIZE.0, MIN_SIDE..=MAX_SIDE)?;
    let height = params.int_in("height", DEFAULT_SIZE.1, MIN_SIDE..=MAX_SIDE)?;
    let (plan, metric, bands) = state
        .service()
        .sweep_series(id, metric_param(&params)?)
        .await?;
    let kind = if ci { BandKind::Ci95 } else { BandKind::Std };
    let chart = band_chart(&plan.name, plan.seeds.len(), metric, &bands, kind)
        .size(width, height)
        .log_y(log_y);
    super::charts::svg_response(&headers, chart).await
}
