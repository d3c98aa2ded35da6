//! Tests of the preview formats and the `preview` command.

use clap::Parser;
use serde_json::{json, Value};

use super::chart::downsample;
use super::*;
use crate::schedule::{Schedule, SpecError};

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

/// The contents of an SVG's `<text>` elements, trimmed.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
        .collect()
}

const COSINE: &str =
    r#"{"kind":"warmup","steps":2,"then":{"kind":"cosine","lr":0.1,"max_steps":4}}"#;

#[test]
fn csv_has_a_header_and_rows_that_parse_back_exactly() {
    let rates = [0.1, 0.1 + 0.2, 1e-7, 0.0, f64::MAX, 123_456.789, 5e-324];
    let csv = to_csv(&rates);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,lr"));
    for (i, line) in lines.enumerate() {
        let (step, rate) = line.split_once(',').unwrap();
        assert_eq!(step.parse::<usize>().unwrap(), i);
        assert_eq!(
            rate.parse::<f64>().unwrap().to_bits(),
            rates[i].to_bits(),
            "{line}"
        );
    }
    assert_eq!(csv.lines().count(), rates.len() + 1);
    assert!(csv.len() < 200, "no 309-digit numbers: {csv}");
}

#[test]
fn short_tables_show_every_step() {
    let table = to_table(&[0.5, 0.25, 0.125]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["step", "learning", "rate"]
    );
    assert_eq!(rows[1].split_whitespace().collect::<Vec<_>>(), ["0", "0.5"]);
    assert_eq!(
        rows[3].split_whitespace().collect::<Vec<_>>(),
        ["2", "0.125"]
    );
    assert!(!table.contains("shown"));
}

#[test]
fn long_tables_sample_evenly_including_first_and_last() {
    let lr: Vec<f64> = (0..1_000_000).map(|t| 1.0 - t as f64 / 1e6).collect();
    let table = to_table(&lr);
    let steps: Vec<usize> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(steps.len(), 41);
    assert_eq!((steps[0], steps[40]), (0, 999_999));
    assert!(steps
        .windows(2)
        .all(|w| w[1] - w[0] >= 24_999 && w[1] - w[0] <= 25_001));
    assert!(table.contains("41 of 1000000 steps shown"));
    assert!(
        table.contains("min 1.00000e-6")
            || table.contains("min 1e-6")
            || table.contains("min 0.000001"),
        "{table}"
    );
}

#[test]
fn svg_has_title_axis_labels_and_the_curve() {
    let s = Schedule::from_json(&serde_json::from_str(COSINE).unwrap()).unwrap();
    let svg = to_svg(&s.preview(10), "warmup <then> cosine").unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    let texts = texts(&svg);
    for label in ["step", "learning rate", "warmup &lt;then&gt; cosine"] {
        assert!(texts.contains(&label), "{label} missing from {texts:?}");
    }
    // Tick labels: steps 0..9 and rates up to 0.1.
    assert!(texts.contains(&"0") && texts.contains(&"0.1"), "{texts:?}");
    assert!(svg.contains("<polyline"), "no line drawn");
}

#[test]
fn svg_of_a_long_series_stays_small_and_keeps_a_spike() {
    let mut lr = vec![0.1; 1_000_000];
    lr[777_777] = 5.0;
    let svg = to_svg(&lr, "spike").unwrap();
    assert!(svg.len() < 200_000, "{} bytes", svg.len());
    let points = downsample(&lr, 2000);
    assert!(points.len() <= 2002);
    assert!(points.contains(&(777_777.0, 5.0)));
    assert_eq!(points.first(), Some(&(0.0, 0.1)));
    assert_eq!(points.last(), Some(&(999_999.0, 0.1)));
    assert!(
        points.windows(2).all(|w| w[0].0 < w[1].0),
        "points must stay in step order"
    );
}

#[test]
fn svg_handles_single_points_flat_lines_and_huge_rates() {
    for lr in [
        vec![0.3],
        vec![0.0; 5],
        vec![f64::MAX; 3],
        vec![0.0, f64::MAX],
    ] {
        let svg = to_svg(&lr, "edge").unwrap();
        assert!(svg.contains("<polyline") || lr.len() == 1, "{lr:?}");
    }
}

#[test]
fn svg_refuses_empty_and_non_finite_series() {
    assert!(matches!(to_svg(&[], "x"), Err(PreviewError::Empty)));
    assert!(matches!(
        to_svg(&[0.1, f64::NAN], "x"),
        Err(PreviewError::NonFinite { step: 1 })
    ));
}

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
        body,
        json!({"steps": 3, "lr": [0.1, 0.1, 0.1], "adaptive": true})
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
        (spec.code, spec.path.as_str()),
        ("unknown_field", "then.bogus")
    );

    let err = run(&["{not json", "--steps", "3"]).unwrap_err();
    assert!(format!("{err:#}").contains("not valid JSON"));
}

#[test]
fn steps_are_bounded() {
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
    // Built in code, the bound still holds.
    let s = Schedule::from_json(&json!({"kind": "constant", "lr": 0.1})).unwrap();
    assert!(matches!(Preview::new(&s, 0), Err(PreviewError::Steps(0))));
    assert!(matches!(
        Preview::new(&s, 1_000_001),
        Err(PreviewError::Steps(_))
    ));
    assert_eq!(Preview::new(&s, 1_000_000).unwrap().lr.len(), 1_000_000);
}

#[test]
fn titles_follow_nested_kinds() {
    let s = Schedule::from_json(&json!({"kind": "sequential", "phases": [
        {"steps": 3, "schedule": {"kind": "linear", "start_lr": 0.0, "end_lr": 0.1, "steps": 3}},
        {"schedule": {"kind": "warmup", "steps": 1, "then": {"kind": "constant", "lr": 0.1}}}
    ]}))
    .unwrap();
    assert_eq!(title_for(&s), "sequential (linear, warmup → constant)");
}

#[test]
fn approximate_numbers_read_well() {
    use super::text::approx;
    assert_eq!(approx(0.1, 6), "0.1");
    assert_eq!(approx(0.014644660940672627, 6), "0.0146447");
    assert_eq!(approx(1234.5678, 3), "1235");
    assert_eq!(approx(2.5e-7, 3), "2.50e-7");
    assert_eq!(approx(0.0, 3), "0");
}
