//! `lrlab sweep FILE.json`: a sweep in the foreground, without a server.
//!
//! It runs the same job service as `lrlab serve` (queue, workers, early stopping) on a SQLite
//! file in `--out`, draws one progress bar per member, prints the summary table at the end,
//! and writes the summary, the band series and the decisions as CSV files (and an SVG band
//! chart per metric) to `--out`. Interrupted with Ctrl-C, it stops its members at their next
//! batch; run again with the same file and `--out`, it resumes the same sweep (the file's
//! hash is its idempotency key) from the members' checkpoints.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::job::JobId;
use crate::service::{DataConfig, JobEvent, Service, ServiceConfig, SweepDetails, SweepSubmission};
use crate::store::{self, ClaimLimits, LeaseConfig};
use crate::sweep::{band_chart, bands_csv, csv_field, BandKind, Metric, SweepId, SweepRequest};
use crate::train::DeviceSpec;

use super::serve::Switch;

/// Options of `lrlab sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The sweep request: a `POST /v1/sweeps` body (see `GET /v1/sweeps/presets`).
    #[arg(required_unless_present = "preset", conflicts_with = "preset")]
    pub file: Option<PathBuf>,
    /// Run a ready-made sweep instead of a file: chapter, exponent, warmup_length, best_fixed.
    #[arg(long)]
    pub preset: Option<String>,
    /// Directory for the database, the members' checkpoints and the results.
    #[arg(long, default_value = "sweep-out")]
    pub out: PathBuf,
    /// Workers per device: members trained at the same time on each device.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Devices to train on, comma-separated.
    #[arg(long, default_value = "cpu", value_delimiter = ',')]
    pub device: Vec<DeviceSpec>,
    /// Directory with the Fashion-MNIST IDX files (see `lrlab train`).
    #[arg(long, env = "LRLAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Never download Fashion-MNIST.
    #[arg(long)]
    pub no_download: bool,
    /// Train the members that share a seed together (when the sweep asks for it, its
    /// default); `off`: every member on its own.
    #[arg(long, env = "LRLAB_LOCKSTEP", default_value = "on")]
    pub lockstep: Switch,
}

/// Runs `lrlab sweep`.
pub fn run_sweep(args: SweepArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(sweep(args))
}

async fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    let (bytes, source) = match (&args.file, &args.preset) {
        (Some(file), _) => (
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
            file.display().to_string(),
        ),
        (None, Some(name)) => {
            let preset = crate::sweep::preset(name).ok_or_else(|| {
                let names: Vec<_> = crate::sweep::presets().iter().map(|p| p.name).collect();
                anyhow!("no preset `{name}`; the presets are {}", names.join(", "))
            })?;
            (
                serde_json::to_vec(&preset.request)?,
                format!("preset {name}"),
            )
        }
        (None, None) => return Err(anyhow!("give a sweep file or --preset NAME")),
    };
    let request: SweepRequest =
        crate::validation::from_json_slice(&bytes).map_err(|e| anyhow!("{source}: {e}"))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let db = format!("sqlite://{}", args.out.join("sweep.db").display());
    let store = store::open(&db).await?;
    let workers = args
        .device
        .iter()
        .flat_map(|d| std::iter::repeat_n(*d, usize::from(args.workers)))
        .collect();
    let service = Service::start(
        store.clone(),
        ServiceConfig {
            workers,
            artifacts_dir: args.out.join("artifacts"),
            data: DataConfig {
                dir: args.data_dir.clone(),
                allow_download: !args.no_download,
            },
            fault: None,
            // The sweep runs in this process only: its leases matter after a crash, when
            // the rerun re-queues what this process held.
            lease: LeaseConfig::default(),
            lockstep: args.lockstep == Switch::On,
            max_queued_per_tenant: None,
            claim_limits: ClaimLimits::NONE,
            max_sweep_jobs: None,
        },
    )
    .await?;
    let mut events = service.subscribe();
    let key = format!("cli-{:x}", Sha256::digest(&bytes));
    let details = match service.submit_sweep(&request, Some(&key)).await {
        Ok(SweepSubmission::Created(details)) => details,
        Ok(SweepSubmission::Replayed(details)) => {
            eprintln!(
                "resuming sweep {} from {}",
                details.record.id,
                args.out.display()
            );
            details
        }
        Err(err) => {
            service.shutdown().await;
            return Err(anyhow!("the sweep is not valid: {err}"));
        }
    };
    let id = details.record.id;
    let bars = Bars::new(&details);
    let interrupted = tokio::select! {
        result = follow(&service, id, &bars, &mut events) => { result?; false }
        _ = tokio::signal::ctrl_c() => true,
    };
    bars.clear();
    service.shutdown().await;
    if interrupted {
        store.close().await;
        eprintln!("interrupted: run the same command again to resume");
        return Ok(());
    }
    let details = service.sweep(id).await?;
    print!("{}", summary_table(&details));
    write_results(&service, &details, &args.out).await?;
    store.close().await;
    Ok(())
}

/// Updates the bars from the job events until the sweep has finished.
async fn follow(
    service: &Service,
    id: SweepId,
    bars: &Bars,
    events: &mut tokio::sync::broadcast::Receiver<JobEvent>,
) -> anyhow::Result<()> {
    loop {
        let details = service.sweep(id).await?;
        bars.update(&details);
        if details.record.status.is_finished() {
            return Ok(());
        }
        // Woken by any event; the sweep view is re-read at most a few times a second.
        let _ = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One progress bar per member: epochs done, and its status.
struct Bars {
    multi: MultiProgress,
    bars: HashMap<JobId, ProgressBar>,
}

impl Bars {
    fn new(details: &SweepDetails) -> Bars {
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:<40} [{bar:20}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bars = details
            .members
            .iter()
            .map(|job| {
                let bar = multi.add(ProgressBar::new(u64::from(job.spec.epochs)));
                bar.set_style(style.clone());
                bar.set_prefix(job.spec.name.clone());
                (job.id, bar)
            })
            .collect();
        Bars { multi, bars }
    }

    fn update(&self, details: &SweepDetails) {
        for job in &details.members {
            if let Some(bar) = self.bars.get(&job.id) {
                bar.set_position(u64::try_from(job.progress_epoch).unwrap_or(0));
                bar.set_message(job.status.as_str());
                if job.status.is_finished() && !bar.is_finished() {
                    bar.finish();
                }
            }
        }
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }
}

/// The summary as a table: rank, config, final value (mean ± 95% half-width, n), best epoch's
/// value, the paired difference to the best, and whether the data can tell it from the best.
pub fn summary_table(details: &SweepDetails) -> String {
    let metric = details.plan.metric.as_str();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sweep {} ({}): {} configs × {} seeds, ranked by final {metric}",
        details.record.id,
        details.record.name,
        details.plan.configs.len(),
        details.plan.seeds.len()
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<28} {:>22} {:>9} {:>24}  ≈ best",
        "rank",
        "config",
        format!("final {metric}"),
        "best",
        "vs best (paired 95%)",
    );
    let mut rows: Vec<_> = details.summary.configs.iter().collect();
    rows.sort_by_key(|row| row.rank.unwrap_or(usize::MAX));
    for row in rows {
        let final_value = row.final_value.map_or_else(String::new, |e| match e.ci95 {
            Some(ci) => format!(
                "{:.4} ± {:.4} (n={})",
                e.mean,
                (ci.high - ci.low) / 2.0,
                e.n
            ),
            None => format!("{:.4} (n={})", e.mean, e.n),
        });
        let best = row
            .best_value
            .map_or_else(String::new, |e| format!("{:.4}", e.mean));
        let vs = row.vs_best.map_or_else(String::new, |d| match d.ci95 {
            Some(ci) => format!("{:+.4} [{:+.4}, {:+.4}]", d.mean, ci.low, ci.high),
            None => format!("{:+.4}", d.mean),
        });
        let same = match row.indistinguishable_from_best {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let stopped = if row.complete { "" } else { " (stopped early)" };
        let _ = writeln!(
            out,
            "{:>4}  {:<28} {:>22} {:>9} {:>24}  {same}{stopped}",
            row.rank.map_or_else(|| "-".to_string(), |r| r.to_string()),
            row.name,
            final_value,
            best,
            vs
        );
    }
    out
}

/// Writes `summary.csv`, `decisions.csv`, and `series-<metric>.csv` + `chart-<metric>.svg`
/// for every metric.
async fn write_results(
    service: &Service,
    details: &SweepDetails,
    out: &Path,
) -> anyhow::Result<()> {
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("summary.csv", details.summary.to_csv())?;
    let (plan, decisions) = service.sweep_decisions(details.record.id).await?;
    let mut csv = String::from("seq,rung_epoch,config,value,cutoff,action\n");
    for d in decisions {
        let name = plan
            .configs
            .get(d.decision.config)
            .map_or("", |c| c.name.as_str());
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{}",
            d.seq,
            d.decision.rung_epoch,
            csv_field(name),
            d.decision.value,
            d.decision.cutoff,
            d.decision.action.as_str()
        );
    }
    write("decisions.csv", csv)?;
    for metric in Metric::ALL {
        let (plan, _, bands) = service
            .sweep_series(details.record.id, Some(metric))
            .await?;
        write(&format!("series-{metric}.csv"), bands_csv(&bands))?;
        let chart = band_chart(&plan.name, plan.seeds.len(), metric, &bands, BandKind::Std);
        let svg = chart
            .to_svg()
            .map_err(|err| anyhow!("drawing the {metric} chart: {err}"))?;
        write(&format!("chart-{metric}.svg"), svg)?;
    }
    eprintln!("results written to {}", out.display());
    Ok(())
}
