//! `lrlab preview`: the preview API, offline.

use std::io::Write;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::{title_for, to_csv, to_svg, to_table, Preview, MAX_PREVIEW_STEPS};
use crate::schedule::Schedule;

/// Output format of `lrlab preview`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreviewFormat {
    /// A sampled, human-readable table.
    Table,
    /// `step,lr` rows.
    Csv,
    /// `{"steps": n, "lr": [...], "adaptive": bool}`, as the API returns.
    Json,
    /// An SVG line chart.
    Svg,
}

/// Print the learning rate a schedule gives at each step.
#[derive(Debug, Clone, Args)]
pub struct PreviewArgs {
    /// The schedule spec as JSON, e.g. '{"kind":"cosine","lr":0.1,"max_steps":100}'.
    pub schedule: String,
    /// How many steps to preview (1 to 1000000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_PREVIEW_STEPS as u64))]
    pub steps: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PreviewFormat::Table)]
    pub format: PreviewFormat,
    /// Chart title for `--format svg` (default: the schedule's kinds).
    #[arg(long)]
    pub title: Option<String>,
}

/// Parses and validates the spec, evaluates it and writes the preview to
/// `out`. A spec that breaks a rule fails with the
/// [`SpecError`](crate::schedule::SpecError) (downcastable) and its field path.
pub fn run_preview(args: PreviewArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let value: serde_json::Value =
        serde_json::from_str(&args.schedule).context("the schedule is not valid JSON")?;
    let schedule = Schedule::from_json(&value).map_err(|e| {
        let at = if e.path.is_empty() {
            String::new()
        } else {
            format!(" at `{}`", e.path)
        };
        let context = format!("invalid schedule{at} ({})", e.code);
        anyhow::Error::new(e).context(context)
    })?;
    let preview = Preview::new(&schedule, args.steps)?;
    match args.format {
        PreviewFormat::Table => {
            if preview.adaptive {
                writeln!(
                    out,
                    "note: reduce_on_plateau adapts to metrics during training; shown at its initial rate"
                )?;
            }
            out.write_all(to_table(&preview.lr).as_bytes())?;
        }
        PreviewFormat::Csv => out.write_all(to_csv(&preview.lr).as_bytes())?,
        PreviewFormat::Json => {
            serde_json::to_writer(&mut *out, &preview)?;
            writeln!(out)?;
        }
        PreviewFormat::Svg => {
            let title = args.title.unwrap_or_else(|| title_for(&schedule));
            out.write_all(to_svg(&preview.lr, &title)?.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}
