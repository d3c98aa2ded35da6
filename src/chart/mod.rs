//! Line charts as SVG, drawn with plotters: the one drawing path for every chart lrlab
//! serves — a schedule's preview, a job's metric, several jobs compared.
//!
//! A [`LineChart`] holds logical [`Series`]: a line with gaps (`None`), optionally over a
//! shaded band (a bucket's min/max, or a sweep's mean ± interval), or a band alone. It has
//! a title, labelled axes, an optional log-scaled y axis and a legend *below* the plot, in
//! columns, so that twenty jobs stay readable and never cover a curve. Colours follow the
//! dashboard's (Tableau 10), with a dash pattern per group of ten series.
//!
//! plotters is built without font features: its SVG backend writes `<text>` elements and
//! leaves rendering to the viewer, estimating label sizes with a built-in approximation,
//! so no font files are needed. Drawing is CPU work: callers on the async runtime render
//! on a blocking thread.

mod format;
mod legend;

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use format::{approx, truncate};

/// Smallest and largest width or height a chart is drawn at; callers bound user input
/// tighter (the API allows 200 to 4000 pixels).
pub const MIN_SIDE: u32 = 100;
pub const MAX_SIDE: u32 = 8000;

/// The dashboard's series colours (Tableau 10, readable with common colour-vision
/// deficiencies), in the same order, so a chart image matches the page it came from.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];
const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// A series' values do not line up with its x values.
    #[error("series `{label}` has {values} values for {xs} x values")]
    Misaligned {
        label: String,
        values: usize,
        xs: usize,
    },
    /// plotters failed (it only fails on backend errors, which a string backend has none of).
    #[error("could not draw the chart: {0}")]
    Draw(String),
}

fn draw_error<E: std::error::Error + Send + Sync>(err: DrawingAreaErrorKind<E>) -> ChartError {
    ChartError::Draw(err.to_string())
}

/// How a series' line is stroked: solid, dashed or dotted (one pattern per ten series).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dash {
    Solid,
    Dashed,
    Dotted,
}

impl Dash {
    fn of(index: usize) -> Dash {
        match (index / PALETTE.len()) % 3 {
            0 => Dash::Solid,
            1 => Dash::Dashed,
            _ => Dash::Dotted,
        }
    }

    /// Dash length and gap in pixels.
    fn pattern(self) -> Option<(i32, i32)> {
        match self {
            Dash::Solid => None,
            Dash::Dashed => Some((7, 4)),
            Dash::Dotted => Some((2, 3)),
        }
    }
}

/// The colour of the `index`-th series.
pub fn series_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Values aligned with a series' x values; `None` is a gap.
pub type Values = Vec<Option<f64>>;

/// One logical series: a line over `x`, a shaded band over `x`, or both. `None` values
/// are gaps (no data, or a value the axis cannot show, such as 0 on a log scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    /// The line's values, aligned with `x`.
    pub line: Option<Vec<Option<f64>>>,
    /// The band's lower and upper edges, aligned with `x`.
    pub band: Option<(Values, Values)>,
    /// Each value holds until the next x (rates per epoch or per update).
    pub stepped: bool,
}

impl Series {
    /// A line through `(x[i], y[i])`.
    pub fn line(label: impl Into<String>, x: Vec<f64>, y: Vec<Option<f64>>) -> Series {
        Series {
            label: label.into(),
            x,
            line: Some(y),
            band: None,
            stepped: false,
        }
    }

    /// A band between `lo` and `hi` with no line (a rate's min/max per bucket).
    pub fn band(
        label: impl Into<String>,
        x: Vec<f64>,
        lo: Vec<Option<f64>>,
        hi: Vec<Option<f64>>,
    ) -> Series {
        Series {
            label: label.into(),
            x,
            line: None,
            band: Some((lo, hi)),
            stepped: false,
        }
    }

    /// Adds a shaded band between `lo` and `hi` under the line.
    pub fn with_band(mut self, lo: Vec<Option<f64>>, hi: Vec<Option<f64>>) -> Series {
        self.band = Some((lo, hi));
        self
    }

    /// Draws each value as holding until the next x.
    pub fn stepped(mut self) -> Series {
        self.stepped = true;
        self
    }

    fn check(&self) -> Result<(), ChartError> {
        let columns = self
            .line
            .iter()
            .chain(self.band.iter().flat_map(|(lo, hi)| [lo, hi]));
        for values in columns {
            if values.len() != self.x.len() {
                return Err(ChartError::Misaligned {
                    label: self.label.clone(),
                    values: values.len(),
                    xs: self.x.len(),
                });
            }
        }
        Ok(())
    }
}

/// A line chart: title, axis labels, series, and how to draw them.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub width: u32,
    pub height: u32,
    pub log_y: bool,
    /// The y axis starts at 0 (or below, for negative values): for rates.
    pub y_from_zero: bool,
    /// x counts something (steps, epochs): only whole numbers get tick labels.
    pub integer_x: bool,
    /// Draw a legend below the plot naming every series.
    pub legend: bool,
    /// Shown in the plot when no series has a value to draw.
    pub empty_text: String,
    pub series: Vec<Series>,
}

impl LineChart {
    /// An 800×480 chart with a legend, linear axes and whole-number x ticks.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> LineChart {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            width: 800,
            height: 480,
            log_y: false,
            y_from_zero: false,
            integer_x: true,
            legend: true,
            empty_text: "No data yet".to_string(),
            series: Vec::new(),
        }
    }

    /// Sets the size in pixels (clamped to [`MIN_SIDE`]..=[`MAX_SIDE`]).
    pub fn size(mut self, width: u32, height: u32) -> LineChart {
        self.width = width.clamp(MIN_SIDE, MAX_SIDE);
        self.height = height.clamp(MIN_SIDE, MAX_SIDE);
        self
    }

    pub fn log_y(mut self, log_y: bool) -> LineChart {
        self.log_y = log_y;
        self
    }

    pub fn y_from_zero(mut self, from_zero: bool) -> LineChart {
        self.y_from_zero = from_zero;
        self
    }

    pub fn legend(mut self, legend: bool) -> LineChart {
        self.legend = legend;
        self
    }

    pub fn push(mut self, series: Series) -> LineChart {
        self.series.push(series);
        self
    }

    /// Draws the chart as an SVG document.
    pub fn to_svg(&self) -> Result<String, ChartError> {
        for series in &self.series {
            series.check()?;
        }
        let width = self.width.clamp(MIN_SIDE, MAX_SIDE);
        let height = self.height.clamp(MIN_SIDE, MAX_SIDE);
        let shapes: Vec<Shapes> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| Shapes::new(s, i, self.log_y))
            .collect();
        let legend = (self.legend && !self.series.is_empty()).then(|| {
            let labels: Vec<&str> = self.series.iter().map(|s| s.label.as_str()).collect();
            legend::Layout::new(&labels, width, height)
        });
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_error)?;
            let plot = match &legend {
                Some(layout) => {
                    let (plot, below) = root.split_vertically(height - layout.height);
                    layout.draw(&below, &self.series_styles())?;
                    plot
                }
                None => root.clone(),
            };
            let x = x_range(&shapes);
            if self.log_y {
                let (lo, hi) = log_y_range(&shapes);
                self.draw_plot(&plot, x, (lo..hi).log_scale(), &shapes)?;
            } else {
                let (lo, hi) = linear_y_range(&shapes, self.y_from_zero);
                self.draw_plot(&plot, x, lo..hi, &shapes)?;
            }
            root.present().map_err(draw_error)?;
        }
        Ok(svg)
    }

    fn series_styles(&self) -> Vec<(RGBColor, Dash)> {
        (0..self.series.len())
            .map(|i| (series_color(i), Dash::of(i)))
            .collect()
    }

    fn draw_plot<DB, Y>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x: Range<f64>,
        y: Y,
        shapes: &[Shapes],
    ) -> Result<(), ChartError>
    where
        DB: DrawingBackend,
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        // plotters draws SVG text at 1/1.24 of the size asked for: these are ~18, 14.5 and 12 px.
        let title_size = (f64::from(self.width) / 30.0).clamp(14.0, 26.0);
        let mut chart = ChartBuilder::on(area)
            .caption(
                &self.title,
                ("sans-serif", title_size).into_font().color(&TEXT),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x, y)
            .map_err(draw_error)?;
        let integer_x = self.integer_x;
        let x_format = move |v: &f64| {
            if !integer_x {
                approx(*v, 4)
            } else if (v - v.round()).abs() <= 1e-9 * v.abs().max(1.0) {
                format!("{}", v.round())
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&x_format)
            .y_label_formatter(&|v| approx(*v, 3))
            .max_light_lines(4)
            .axis_desc_style(("sans-serif", 18).into_font().color(&TEXT))
            .label_style(("sans-serif", 15).into_font().color(&MUTED))
            .draw()
            .map_err(draw_error)?;

        for s in shapes {
            for polygon in &s.bands {
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        polygon.clone(),
                        s.color.mix(0.18).filled(),
                    )))
                    .map_err(draw_error)?;
            }
        }
        for s in shapes {
            // A band without a line is outlined, so a narrow band stays visible.
            let (width, runs) = if s.lines.is_empty() {
                (1, &s.edges)
            } else {
                (2, &s.lines)
            };
            for run in runs {
                if let [point] = run.as_slice() {
                    chart
                        .draw_series(std::iter::once(Circle::new(*point, 3, s.color.filled())))
                        .map_err(draw_error)?;
                    continue;
                }
                let style = s.color.stroke_width(width);
                match s.dash.pattern() {
                    None => chart
                        .draw_series(LineSeries::new(run.iter().copied(), style))
                        .map(|_| ()),
                    Some((size, gap)) => chart
                        .draw_series(DashedLineSeries::new(run.iter().copied(), size, gap, style))
                        .map(|_| ()),
                }
                .map_err(draw_error)?;
            }
        }
        if shapes.iter().all(Shapes::is_empty) {
            let area = chart.plotting_area().strip_coord_spec();
            let (w, h) = area.dim_in_pixel();
            let style = ("sans-serif", 20)
                .into_font()
                .color(&MUTED)
                .pos(Pos::new(HPos::Center, VPos::Center));
            area.draw(&Text::new(
                self.empty_text.as_str(),
                ((w / 2) as i32, (h / 2) as i32),
                style,
            ))
            .map_err(draw_error)?;
        }
        Ok(())
    }
}

/// A series turned into what is drawn: runs of points without gaps.
struct Shapes {
    color: RGBColor,
    dash: Dash,
    /// The line, cut at its gaps.
    lines: Vec<Vec<(f64, f64)>>,
    /// Closed outlines of the band (upper edge forward, lower edge back).
    bands: Vec<Vec<(f64, f64)>>,
    /// The band's edges, outlined when there is no line.
    edges: Vec<Vec<(f64, f64)>>,
}

impl Shapes {
    fn new(series: &Series, index: usize, log_y: bool) -> Shapes {
        let drawable = |v: Option<f64>| v.filter(|v| v.is_finite() && (!log_y || *v > 0.0));
        let lines = series.line.as_ref().map_or_else(Vec::new, |y| {
            runs(&series.x, |i| drawable(y[i]).map(|v| (v, v)))
                .into_iter()
                .map(|run| step(run.into_iter().map(|(x, v, _)| (x, v)), series.stepped))
                .collect()
        });
        let (mut bands, mut edges) = (Vec::new(), Vec::new());
        if let Some((lo, hi)) = &series.band {
            for run in runs(&series.x, |i| Some((drawable(lo[i])?, drawable(hi[i])?))) {
                let upper = step(run.iter().map(|&(x, _, h)| (x, h)), series.stepped);
                let lower = step(run.iter().map(|&(x, l, _)| (x, l)), series.stepped);
                let mut outline = upper.clone();
                outline.extend(lower.iter().rev());
                bands.push(outline);
                edges.push(upper);
                edges.push(lower);
            }
        }
        Shapes {
            color: series_color(index),
            dash: Dash::of(index),
            lines,
            bands,
            edges,
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.edges.is_empty()
    }

    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.lines.iter().chain(&self.edges).flatten().copied()
    }
}

/// Runs of consecutive indices where `value(i)` is `Some`, as `(x, a, b)` triples.
fn runs(x: &[f64], value: impl Fn(usize) -> Option<(f64, f64)>) -> Vec<Vec<(f64, f64, f64)>> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    for (i, &xi) in x.iter().enumerate() {
        match value(i).filter(|_| xi.is_finite()) {
            Some((a, b)) => run.push((xi, a, b)),
            None if !run.is_empty() => out.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// The points of a line; for a stepped line each value holds until the next x.
fn step(points: impl Iterator<Item = (f64, f64)>, stepped: bool) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, y) in points {
        if stepped {
            if let Some(&(_, previous)) = out.last() {
                out.push((x, previous));
            }
        }
        out.push((x, y));
    }
    out
}

fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn finite(v: f64) -> f64 {
    v.clamp(-f64::MAX, f64::MAX)
}

fn x_range(shapes: &[Shapes]) -> Range<f64> {
    match extent(shapes.iter().flat_map(|s| s.points().map(|p| p.0))) {
        None => 0.0..1.0,
        Some((lo, hi)) if lo == hi => lo - 1.0..hi + 1.0,
        Some((lo, hi)) => lo..hi,
    }
}

/// From the lowest to the highest value with 5% room, never infinite even for values
/// near `f64::MAX`; with `from_zero`, from 0 (or the lowest value, if negative).
fn linear_y_range(shapes: &[Shapes], from_zero: bool) -> (f64, f64) {
    let Some((min, max)) = extent(shapes.iter().flat_map(|s| s.points().map(|p| p.1))) else {
        return (0.0, 1.0);
    };
    let bottom = if from_zero { min.min(0.0) } else { min };
    let span = max - bottom;
    let (lo, hi) = if span > 0.0 {
        let pad = span * 0.05;
        let lo = if from_zero && bottom == 0.0 {
            0.0
        } else {
            bottom - pad
        };
        (lo, max + pad)
    } else if max != 0.0 {
        let pad = max.abs() * 0.1;
        (if from_zero { bottom } else { bottom - pad }, max + pad)
    } else {
        (if from_zero { 0.0 } else { -1.0 }, 1.0)
    };
    (finite(lo), finite(hi))
}

/// The positive values' range with a little room, in ratio.
fn log_y_range(shapes: &[Shapes]) -> (f64, f64) {
    match extent(shapes.iter().flat_map(|s| s.points().map(|p| p.1))) {
        None => (0.1, 1.0),
        Some((lo, hi)) if lo == hi => (lo / 2.0, finite(hi * 2.0)),
        Some((lo, hi)) => (lo / 1.1, finite(hi * 1.1)),
    }
}

#[cfg(test)]
mod tests;
