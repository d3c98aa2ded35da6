//! `lrlab preview`: the preview API, offline.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use crate::preview::{Preview, PreviewFormat, MAX_PREVIEW_STEPS};
use crate::schedule::Schedule;

/// Print the learning rate a schedule gives at each step.
#[derive(Debug, Clone, Args)]
pub struct PreviewArgs {
    /// The schedule spec as JSON, e.g. '{"kind":"cosine","lr":0.1,"max_steps":100}'.
    pub schedule: String,
    /// How many steps to preview (1 to 1000000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_PREVIEW_STEPS as u64))]
    pub steps: u64,
    /// Output format: table, csv, json or svg.
    #[arg(long, default_value = "table")]
    pub format: PreviewFormat,
    /// For `--format json`: reduce a longer preview to this many buckets (first, min and
    /// max of each), as the API does by default; every step when left out.
    #[arg(long)]
    pub max_points: Option<usize>,
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
    let max_points = args.max_points.unwrap_or(preview.steps);
    let text = preview.render(args.format, args.title.as_deref(), max_points)?;
    out.write_all(text.as_bytes())?;
    if args.format == PreviewFormat::Json {
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::Value;

    use super::*;

    /// The contents of an SVG's `<text>` elements, trimmed.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
            .collect()
    }
    use crate::schedule::SpecError;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: PreviewArgs,
    }

    fn args(argv: &[&str]) -> PreviewArgs {
        Cli::try_parse_from(std::iter::once("preview").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    fn run(argv: &[&str]) -> anyhow::Result<String> {
        let mut out = Vec::new();
        run_preview(args(argv), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const COSINE: &str =
        r#"{"kind":"warmup","steps":2,"then":{"kind":"cosine","lr":0.1,"max_steps":4}}"#;

    #[test]
    fn json_output_matches_the_api_body() {
        let out = run(&[COSINE, "--steps", "7", "--format", "json"]).unwrap();
        let body: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(body["steps"], 7);
        assert_eq!(body["adaptive"], false);
        let lr: Vec<f64> = serde_json::from_value(body["lr"].clone()).unwrap();
        // warm-up 0 → 0.1 over 2 steps, then the cosine from its own step 0
        // (0.1·(1+cos(π·k/4))/2 for k = 0..4), then 0.
        let expected = [
            0.0,
            0.05,
            0.1,
            0.08535533905932738,
            0.05,
            0.014644660940672627,
            0.0,
        ];
        for (got, want) in lr.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{lr:?}");
        }
        assert_eq!(lr.len(), 7);
    }

    #[test]
    fn adaptive_schedules_are_flagged() {
        let out = run(&[
            r#"{"kind":"reduce_on_plateau","lr":0.1}"#,
            "--steps",
            "3",
            "--format",
            "json",
        ])
        .unwrap();
        let body: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (&body["steps"], &body["lr"], &body["adaptive"]),
            (
                &Value::from(3),
                &serde_json::json!([0.1, 0.1, 0.1]),
                &Value::from(true)
            )
        );
        let table = run(&[r#"{"kind":"reduce_on_plateau","lr":0.1}"#, "--steps", "3"]).unwrap();
        assert!(table.starts_with("note: reduce_on_plateau"));
    }

    #[test]
    fn csv_and_svg_outputs() {
        let csv = run(&[COSINE, "--steps", "3", "--format", "csv"]).unwrap();
        assert_eq!(csv, "step,lr\n0,0\n1,0.05\n2,0.1\n");
        let svg = run(&[COSINE, "--steps", "50", "--format", "svg"]).unwrap();
        assert!(svg.contains("warmup → cosine"));
        let titled = run(&[
            COSINE, "--steps", "50", "--format", "svg", "--title", "mine",
        ])
        .unwrap();
        assert!(texts(&titled).contains(&"mine"));
    }

    #[test]
    fn invalid_specs_fail_with_the_field_path() {
        let err = run(&[
            r#"{"kind":"warmup","steps":5,"then":{"kind":"cosine","lr":0.1,"max_steps":10,"bogus":1}}"#,
            "--steps",
            "3",
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("`then.bogus`"), "{err:#}");
        let spec = err.downcast_ref::<SpecError>().unwrap();
        assert_eq!(
            (spec.code.as_str(), spec.path.as_str()),
            ("unknown_field", "then.bogus")
        );

        let err = run(&["{not json", "--steps", "3"]).unwrap_err();
        assert!(format!("{err:#}").contains("not valid JSON"));
    }

    #[test]
    fn steps_are_bounded_on_the_command_line() {
        for bad in ["0", "1000001", "-1", "many"] {
            assert!(
                Cli::try_parse_from(["preview", COSINE, "--steps", bad]).is_err(),
                "--steps {bad} accepted"
            );
        }
        assert!(Cli::try_parse_from(["preview", COSINE, "--steps", "1000000"]).is_ok());
        assert!(
            Cli::try_parse_from(["preview", COSINE]).is_err(),
            "--steps is required"
        );
    }
}
