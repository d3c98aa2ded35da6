//! The legend below a chart: one entry per series, in columns filled top to bottom.
//!
//! Below the plot rather than inside it, so twenty entries never cover a curve; it takes
//! at most half the image, using more (narrower) columns when there are many entries, and
//! labels too long for their column end with `…`.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_error, truncate, ChartError, Dash, TEXT};

/// Asked of plotters, which writes SVG text at 1/1.24 of it: about 13 px.
const FONT_SIZE: f64 = 16.0;
/// A rough width of one character of a 13 px sans-serif label (viewers' fonts differ).
const CHAR_WIDTH: f64 = FONT_SIZE / 1.24 * 0.56;
const ROW_HEIGHT: u32 = 20;
const PADDING: u32 = 10;
const SIDE_MARGIN: u32 = 16;
const SWATCH: i32 = 24;
/// Columns are at least this wide while the legend fits in half the image.
const PREFERRED_COLUMN: u32 = 320;
const NARROWEST_COLUMN: u32 = 80;

/// Where the entries go.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layout {
    labels: Vec<String>,
    columns: u32,
    rows: u32,
    column_width: u32,
    /// Height of the legend strip in pixels.
    pub height: u32,
}

impl Layout {
    pub(super) fn new(labels: &[&str], width: u32, height: u32) -> Layout {
        let n = u32::try_from(labels.len()).unwrap_or(u32::MAX).max(1);
        let usable = width.saturating_sub(2 * SIDE_MARGIN).max(NARROWEST_COLUMN);
        let max_rows = ((height / 2).saturating_sub(2 * PADDING) / ROW_HEIGHT).max(1);
        let columns_needed = n.div_ceil(max_rows);
        let widest = (usable / PREFERRED_COLUMN).max(1);
        let columns = columns_needed
            .max(widest.min(n))
            .min((usable / NARROWEST_COLUMN).max(1));
        let rows = n.div_ceil(columns);
        let column_width = usable / columns;
        let max_chars =
            ((f64::from(column_width) - f64::from(SWATCH) - 12.0) / CHAR_WIDTH).max(4.0) as usize;
        Layout {
            labels: labels
                .iter()
                .map(|label| truncate(label, max_chars))
                .collect(),
            columns,
            rows,
            column_width,
            height: (rows * ROW_HEIGHT + 2 * PADDING).min(height / 2),
        }
    }

    /// Pixel position of entry `i`'s swatch start (column-major order).
    fn position(&self, i: u32) -> (i32, i32) {
        let column = i / self.rows;
        debug_assert!(column < self.columns, "entry {i} is beyond the last column");
        let row = i % self.rows;
        let x = SIDE_MARGIN + column * self.column_width;
        let y = PADDING + row * ROW_HEIGHT + ROW_HEIGHT / 2;
        (x as i32, y as i32)
    }

    pub(super) fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        styles: &[(RGBColor, Dash)],
    ) -> Result<(), ChartError> {
        let font = ("sans-serif", FONT_SIZE)
            .into_font()
            .color(&TEXT)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (i, (label, (color, dash))) in self.labels.iter().zip(styles).enumerate() {
            let (x, y) = self.position(u32::try_from(i).unwrap_or(u32::MAX));
            let stroke = color.stroke_width(3);
            match dash.pattern() {
                None => area
                    .draw(&PathElement::new(vec![(x, y), (x + SWATCH, y)], stroke))
                    .map_err(draw_error)?,
                Some((size, gap)) => {
                    let mut start = x;
                    while start < x + SWATCH {
                        let end = (start + size).min(x + SWATCH);
                        area.draw(&PathElement::new(vec![(start, y), (end, y)], stroke))
                            .map_err(draw_error)?;
                        start = end + gap;
                    }
                }
            }
            area.draw(&Text::new(
                label.as_str(),
                (x + SWATCH + 8, y),
                font.clone(),
            ))
            .map_err(draw_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_entries_take_one_row_per_entry_in_wide_columns() {
        let layout = Layout::new(&["a", "b"], 800, 480);
        assert_eq!((layout.columns, layout.rows), (2, 1));
        assert_eq!(layout.height, ROW_HEIGHT + 2 * PADDING);
    }

    #[test]
    fn twenty_entries_fit_in_half_the_image_in_more_columns() {
        let labels: Vec<String> = (0..20)
            .map(|i| format!("job {i}: cosine 0.3→0.01 over 20, warm-up 5"))
            .collect();
        let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let layout = Layout::new(&refs, 400, 480);
        assert!(layout.height <= 240, "{layout:?}");
        assert!(layout.columns * layout.rows >= 20);
        // Every entry lies inside the image and the labels were shortened to their column.
        let (x, y) = layout.position(19);
        assert!(x < 400 && y < layout.height as i32, "{x},{y}");
        assert!(layout.labels.iter().all(|l| l.ends_with('…')));
    }

    #[test]
    fn entries_fill_columns_top_to_bottom() {
        let layout = Layout::new(&["a", "b", "c", "d", "e", "f", "g"], 400, 200);
        let (x0, y0) = layout.position(0);
        let (x1, y1) = layout.position(1);
        assert_eq!(x0, x1);
        assert!(y1 > y0);
    }
}
