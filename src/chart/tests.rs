//! Tests of the line chart: what is drawn, where the gaps are, what the axes show.

use super::*;

/// The contents of an SVG's `<text>` elements, trimmed.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
        .collect()
}

/// Polylines stroked in the first series' colour at `width` (2: a line, 1: a band's edge;
/// the legend's swatch is 3 wide, the axes are black).
fn strokes(svg: &str, width: u32) -> usize {
    svg.matches(&format!(
        "<polyline fill=\"none\" opacity=\"1\" stroke=\"#1F77B4\" stroke-width=\"{width}\""
    ))
    .count()
}

fn xs(n: usize) -> Vec<f64> {
    (1..=n).map(|i| i as f64).collect()
}

#[test]
fn a_chart_has_its_title_axis_labels_and_a_legend_naming_every_series() {
    let svg = LineChart::new("Test accuracy", "epoch", "accuracy")
        .push(Series::line(
            "cosine #1",
            xs(3),
            vec![Some(0.5), Some(0.7), Some(0.8)],
        ))
        .push(Series::line(
            "constant #2",
            xs(3),
            vec![Some(0.4), Some(0.6), Some(0.65)],
        ))
        .to_svg()
        .unwrap();
    assert!(svg.starts_with("<svg"));
    let texts = texts(&svg);
    for label in [
        "Test accuracy",
        "epoch",
        "accuracy",
        "cosine #1",
        "constant #2",
    ] {
        assert!(texts.contains(&label), "{label} missing from {texts:?}");
    }
    // The two series get the dashboard's first two colours, in the plot and the legend.
    assert_eq!(strokes(&svg, 2), 1);
    assert_eq!(strokes(&svg, 3), 1, "the legend's swatch");
    assert_eq!(svg.matches("stroke=\"#FF7F0E\"").count(), 2);
}

#[test]
fn gaps_split_a_line_and_a_lone_point_is_a_dot() {
    let y = vec![
        Some(1.0),
        Some(2.0),
        None,
        Some(3.0),
        Some(4.0),
        None,
        Some(5.0),
    ];
    let svg = LineChart::new("t", "x", "y")
        .legend(false)
        .push(Series::line("s", xs(7), y))
        .to_svg()
        .unwrap();
    assert_eq!(strokes(&svg, 2), 2, "two runs of two points");
    assert!(svg.contains("<circle"), "the lone last point");
}

#[test]
fn log_y_drops_values_it_cannot_show_and_labels_powers_of_ten() {
    let y = vec![
        Some(1.0),
        Some(0.0),
        Some(0.1),
        Some(0.01),
        Some(-1.0),
        Some(0.001),
    ];
    let chart = LineChart::new("loss", "epoch", "loss")
        .log_y(true)
        .legend(false)
        .push(Series::line("s", xs(6), y));
    let svg = chart.to_svg().unwrap();
    // 0 and -1 are gaps: 1 alone, 0.1 → 0.01, 0.001 alone.
    assert_eq!(strokes(&svg, 2), 1);
    assert_eq!(svg.matches("<circle").count(), 2);
    let texts = texts(&svg);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("1.00e-3") || *t == "0.001"),
        "{texts:?}"
    );
}

#[test]
fn a_band_is_shaded_under_its_line_and_outlined_without_one() {
    let x = xs(4);
    let lo = vec![Some(1.0), Some(1.0), Some(0.5), Some(0.4)];
    let hi = vec![Some(2.0), Some(3.0), Some(0.9), Some(0.6)];
    let mean = vec![Some(1.5), Some(2.0), Some(0.7), Some(0.5)];
    let with_line = LineChart::new("t", "x", "y")
        .push(Series::line("loss", x.clone(), mean).with_band(lo.clone(), hi.clone()))
        .to_svg()
        .unwrap();
    assert_eq!(with_line.matches("<polygon").count(), 1);
    assert_eq!(
        (strokes(&with_line, 2), strokes(&with_line, 1)),
        (1, 0),
        "the mean line only"
    );
    let alone = LineChart::new("t", "x", "y")
        .push(Series::band("lr", x, lo, hi))
        .to_svg()
        .unwrap();
    assert_eq!(alone.matches("<polygon").count(), 1);
    assert_eq!(
        (strokes(&alone, 2), strokes(&alone, 1)),
        (0, 2),
        "both edges"
    );
}

#[test]
fn a_stepped_line_holds_each_value_until_the_next_x() {
    let stepped = step([(1.0, 0.3), (2.0, 0.1), (3.0, 0.01)].into_iter(), true);
    assert_eq!(
        stepped,
        vec![(1.0, 0.3), (2.0, 0.3), (2.0, 0.1), (3.0, 0.1), (3.0, 0.01)]
    );
}

#[test]
fn an_empty_chart_says_so_and_still_has_its_axes() {
    let svg = LineChart::new("Test accuracy", "epoch", "accuracy")
        .push(Series::line("queued #3", vec![], vec![]))
        .to_svg()
        .unwrap();
    let texts = texts(&svg);
    assert!(texts.contains(&"No data yet"), "{texts:?}");
    assert!(texts.contains(&"epoch") && texts.contains(&"queued #3"));
}

#[test]
fn misaligned_series_are_refused() {
    let err = LineChart::new("t", "x", "y")
        .push(Series::line("s", xs(3), vec![Some(1.0)]))
        .to_svg()
        .unwrap_err();
    assert!(matches!(
        err,
        ChartError::Misaligned {
            values: 1,
            xs: 3,
            ..
        }
    ));
}

#[test]
fn the_size_is_bounded_and_used() {
    let chart = LineChart::new("t", "x", "y").size(1, 100_000);
    assert_eq!((chart.width, chart.height), (MIN_SIDE, MAX_SIDE));
    let svg = LineChart::new("t", "x", "y")
        .size(640, 360)
        .to_svg()
        .unwrap();
    assert!(svg.contains("width=\"640\"") && svg.contains("height=\"360\""));
}

#[test]
fn eleven_series_change_dash_after_ten_colours() {
    let mut chart = LineChart::new("t", "x", "y");
    for i in 0..11 {
        chart = chart.push(Series::line(
            format!("s{i}"),
            xs(2),
            vec![Some(1.0), Some(i as f64)],
        ));
    }
    assert_eq!(Dash::of(9), Dash::Solid);
    assert_eq!(Dash::of(10), Dash::Dashed);
    assert_eq!(series_color(10), series_color(0));
    let svg = chart.to_svg().unwrap();
    assert!(
        strokes(&svg, 2) > 3,
        "series 0, then series 10 drawn as dashes"
    );
}

#[test]
fn y_ranges_stay_finite_and_start_at_zero_for_rates() {
    let shapes = |values: &[f64]| {
        let series = Series::line(
            "s",
            xs(values.len()),
            values.iter().map(|v| Some(*v)).collect(),
        );
        vec![Shapes::new(&series, 0, false)]
    };
    assert_eq!(
        linear_y_range(&shapes(&[0.0, f64::MAX]), true),
        (0.0, f64::MAX)
    );
    let (lo, hi) = linear_y_range(&shapes(&[0.5, 0.9]), false);
    assert!(lo < 0.5 && lo > 0.45 && hi > 0.9 && hi < 0.95, "{lo} {hi}");
    assert_eq!(linear_y_range(&shapes(&[0.3, 0.3]), true).0, 0.0);
    assert_eq!(linear_y_range(&[], false), (0.0, 1.0));
}
