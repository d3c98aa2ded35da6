//! Tests of the preview formats.

use serde_json::json;

use super::chart::downsample;
use super::*;
use crate::schedule::Schedule;

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
fn steps_are_bounded() {
    // Built in code, the bound holds (the command line's is tested in `cli::preview`).
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
