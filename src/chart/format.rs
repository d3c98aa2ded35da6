//! Numbers on axes and in legends: a few significant digits, for reading.

/// Formats `x` with about `digits` significant digits: plain decimals from 1e-4 to 1e6,
/// scientific notation outside (`2.50e-7`), trailing zeros dropped.
pub fn approx(x: f64, digits: usize) -> String {
    let a = x.abs();
    if x == 0.0 {
        return "0".to_owned();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    if !(1e-4..1e6).contains(&a) {
        return format!("{x:.prec$e}", prec = digits.saturating_sub(1));
    }
    let magnitude = a.log10().floor() as i64;
    let decimals = (digits as i64 - 1 - magnitude).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Cuts `text` to at most `max_chars` characters, ending with `…` when it was longer.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approximate_numbers_read_well() {
        assert_eq!(approx(0.1, 6), "0.1");
        assert_eq!(approx(0.014644660940672627, 6), "0.0146447");
        assert_eq!(approx(1234.5678, 3), "1235");
        assert_eq!(approx(2.5e-7, 3), "2.50e-7");
        assert_eq!(approx(0.0, 3), "0");
        assert_eq!(approx(f64::NAN, 3), "NaN");
    }

    #[test]
    fn long_labels_are_cut_with_an_ellipsis() {
        assert_eq!(truncate("cosine", 10), "cosine");
        assert_eq!(truncate("cosine 0.3→0.01 over 20", 8), "cosine …");
        assert_eq!(truncate("αβγδ", 3).chars().count(), 3);
    }
}
