//! Text helpers shared by the charts: escaping, number formatting, scales and topic colours.

use std::fmt::Write;

/// Colours of the first topics: distinct hues that keep white text readable and print well.
const PALETTE: [&str; 20] = [
    "#2f6fb0", "#d0622b", "#3a8f4a", "#c23b4f", "#7a55b0", "#8a6539", "#c0528f", "#5a6670",
    "#8c8c1c", "#18909c", "#c98f12", "#4b4fc4", "#5e8f1f", "#a03fb5", "#1e8a68", "#8b2f2f",
    "#4f95d6", "#a8761a", "#e06666", "#345c3a",
];

/// Returns the colour of topic `k`, the same in every chart and table of a report.
///
/// Topics past the fixed palette get hues spaced by the golden angle, so neighbouring topic
/// numbers never get similar colours.
pub fn topic_colour(k: usize) -> String {
    match PALETTE.get(k) {
        Some(colour) => (*colour).to_owned(),
        None => {
            let hue = (k as f64 * 137.507_764) % 360.0;
            let lightness = if k.is_multiple_of(2) { 38 } else { 46 };
            format!("hsl({hue:.1} 60% {lightness}%)")
        }
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` so that `text` can go into element text or a quoted
/// attribute of HTML or SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Formats a coordinate with at most two decimals. A non-finite value becomes 0, so no `NaN`
/// reaches the markup even if a caller forgot to filter such values out before drawing.
pub fn coordinate(value: f64) -> String {
    if !value.is_finite() {
        return "0".to_owned();
    }
    let mut text = format!("{value:.2}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text
}

/// Formats a share in `[0, 1]` as a percentage with two significant decimals below 1%.
pub fn percent(share: f64) -> String {
    if !share.is_finite() {
        return "–".to_owned();
    }
    let value = share * 100.0;
    if value.abs() >= 10.0 {
        format!("{value:.1}%")
    } else {
        format!("{value:.2}%")
    }
}

/// Formats a metric value with four decimals, or a dash when there is none.
pub fn metric(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "–".to_owned(),
    }
}

/// Returns round tick values that cover `[low, high]`: steps of 1, 2 or 5 times a power of
/// ten, about `count` of them. The first tick is at or below `low` and the last at or above
/// `high`.
pub fn nice_ticks(low: f64, high: f64, count: usize) -> Vec<f64> {
    let (low, high) = if low.is_finite() && high.is_finite() && low <= high {
        (low, high)
    } else {
        (0.0, 1.0)
    };
    let span = if high > low {
        high - low
    } else {
        low.abs().max(1.0) * 0.1
    };
    let rough = span / count.max(1) as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    let first = (low / step).floor();
    let last = (high / step).ceil().max(first + 1.0);
    ((first as i64)..=(last as i64))
        .map(|i| i as f64 * step)
        .collect()
}

/// Formats a tick label with as many decimals as the tick step needs.
pub fn tick_label(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 || step <= 0.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
        text[1..].to_owned()
    } else {
        text
    }
}

/// Returns the approximate width in pixels of `text` in a proportional sans-serif font of
/// `size` pixels; the charts size their label columns with it.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.58
}

/// Opens an `<svg>` element with the accessibility title and description every chart gets.
pub fn open_svg(out: &mut String, id: &str, width: f64, height: f64, title: &str, desc: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" class=\"chart\" \
         viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\">\
         <title id=\"{id}-title\">{title}</title><desc id=\"{id}-desc\">{desc}</desc>",
        id = escape(id),
        w = coordinate(width),
        h = coordinate(height),
        title = escape(title),
        desc = escape(desc),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn coordinate_trims_and_never_prints_nan() {
        assert_eq!(coordinate(12.0), "12");
        assert_eq!(coordinate(1.256), "1.26");
        assert_eq!(coordinate(-0.001), "0");
        assert_eq!(coordinate(f64::NAN), "0");
        assert_eq!(coordinate(f64::INFINITY), "0");
    }

    #[test]
    fn nice_ticks_cover_range_with_round_steps() {
        let ticks = nice_ticks(512.3, 587.9, 5);
        assert!(
            ticks[0] <= 512.3 && *ticks.last().expect("ticks") >= 587.9,
            "{ticks:?}"
        );
        assert_eq!(ticks[1] - ticks[0], 20.0, "{ticks:?}");
        let flat = nice_ticks(3.0, 3.0, 5);
        assert!(flat.len() >= 2, "{flat:?}");
        assert!(
            flat[0] <= 3.0 && *flat.last().expect("ticks") >= 3.0,
            "{flat:?}"
        );
        let bad = nice_ticks(f64::NAN, 1.0, 5);
        assert!(bad.iter().all(|t| t.is_finite()), "{bad:?}");
    }

    #[test]
    fn tick_labels_use_step_decimals() {
        assert_eq!(tick_label(520.0, 20.0), "520");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(-0.0, 0.1), "0.0");
    }

    #[test]
    fn topic_colours_differ() {
        let colours: Vec<String> = (0..40).map(topic_colour).collect();
        for (i, a) in colours.iter().enumerate() {
            for b in &colours[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
