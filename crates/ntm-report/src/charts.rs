//! The inline SVG charts of the report. Each function returns one `<svg>` element whose
//! coordinates are all finite, with a `<title>` and `<desc>` for screen readers.

use std::fmt::Write;

use crate::layout::Layout;
use crate::svg::{
    coordinate as c, escape, nice_ticks, open_svg, percent, text_width, tick_label, topic_colour,
};
use crate::{EpochLoss, TopicWords};

/// Colour of the training-loss line.
const TRAIN_COLOUR: &str = "#27415e";
/// Colour of the validation-loss line.
const VALIDATION_COLOUR: &str = "#c0561b";
/// Font size of chart labels, in pixels.
const FONT: f64 = 13.0;
/// Maximum length of a word label in characters; longer words end with an ellipsis.
const MAX_LABEL_CHARS: usize = 22;

/// Draws the training and validation loss per epoch as lines, with the best epoch marked by a
/// dashed vertical line. Non-finite losses are left out as gaps in the lines.
pub fn loss_chart(history: &[EpochLoss], best_epoch: Option<usize>) -> String {
    let (width, height) = (720.0, 340.0);
    let (left, right, top, bottom) = (72.0, 24.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let has_validation = history.iter().any(|e| e.validation.is_some());

    let values: Vec<f64> = history
        .iter()
        .flat_map(|e| std::iter::once(e.train).chain(e.validation))
        .filter(|v| v.is_finite())
        .collect();
    let skipped = history
        .iter()
        .flat_map(|e| std::iter::once(e.train).chain(e.validation))
        .filter(|v| !v.is_finite())
        .count();
    let mut desc = format!(
        "Line chart of the training loss{} per document over {} epochs.",
        if has_validation {
            " and validation loss"
        } else {
            ""
        },
        history.len()
    );
    if let Some(best) = best_epoch {
        let _ = write!(desc, " The saved weights are from epoch {best}.");
    }
    if skipped > 0 {
        let _ = write!(desc, " {skipped} non-finite values are not drawn.");
    }

    let mut out = String::new();
    open_svg(
        &mut out,
        "loss-chart",
        width,
        height,
        "Loss per epoch",
        &desc,
    );
    if values.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"note\">No finite losses recorded</text></svg>",
            c(width / 2.0),
            c(height / 2.0)
        );
        return out;
    }

    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let y_ticks = nice_ticks(low, high, 5);
    let (y_min, y_max) = (y_ticks[0], y_ticks[y_ticks.len() - 1]);
    let y_step = y_ticks.get(1).map_or(1.0, |t| t - y_ticks[0]);
    let y = |v: f64| top + plot_h * (1.0 - (v - y_min) / (y_max - y_min));

    let first = history.iter().map(|e| e.epoch).min().unwrap_or(1) as f64;
    let last = history.iter().map(|e| e.epoch).max().unwrap_or(1) as f64;
    let inset = 12.0;
    let x = |epoch: f64| {
        if last > first {
            left + inset + (plot_w - 2.0 * inset) * (epoch - first) / (last - first)
        } else {
            left + plot_w / 2.0
        }
    };

    // Grid and y-axis labels.
    out.push_str("<g class=\"grid\">");
    for &tick in &y_ticks {
        let _ = write!(
            out,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\"/>",
            c(left),
            c(left + plot_w),
            yy = c(y(tick))
        );
    }
    out.push_str("</g><g class=\"axis-label\">");
    for &tick in &y_ticks {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dy=\"0.35em\">{}</text>",
            c(left - 8.0),
            c(y(tick)),
            tick_label(tick, y_step)
        );
    }
    let x_ticks: Vec<f64> = nice_ticks(first, last, 10)
        .into_iter()
        .filter(|t| t.fract() == 0.0 && *t >= first && *t <= last)
        .collect();
    for &tick in &x_ticks {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            c(x(tick)),
            c(top + plot_h + 20.0),
            tick
        );
    }
    let _ = write!(
        out,
        "</g><line class=\"axis\" x1=\"{l}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\"/>\
         <text class=\"axis-title\" x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\">epoch</text>\
         <text class=\"axis-title\" transform=\"translate(16 {cy}) rotate(-90)\" text-anchor=\"middle\">loss per document (nats)</text>",
        l = c(left),
        r = c(left + plot_w),
        b = c(top + plot_h),
        cx = c(left + plot_w / 2.0),
        ty = c(height - 10.0),
        cy = c(top + plot_h / 2.0),
    );

    // Best epoch marker.
    if let Some(best) = best_epoch.filter(|&b| (b as f64) >= first && (b as f64) <= last) {
        let bx = c(x(best as f64));
        let _ = write!(
            out,
            "<g class=\"best-epoch\"><line x1=\"{bx}\" x2=\"{bx}\" y1=\"{}\" y2=\"{}\"/>\
             <text x=\"{bx}\" y=\"{}\" text-anchor=\"middle\">best epoch {best}</text></g>",
            c(top),
            c(top + plot_h),
            c(top - 6.0),
        );
    }

    let train: Vec<(usize, f64)> = history.iter().map(|e| (e.epoch, e.train)).collect();
    draw_series(&mut out, "train", "training", TRAIN_COLOUR, &train, &x, &y);
    if has_validation {
        let validation: Vec<(usize, f64)> = history
            .iter()
            .map(|e| (e.epoch, e.validation.unwrap_or(f64::NAN)))
            .collect();
        draw_series(
            &mut out,
            "validation",
            "validation",
            VALIDATION_COLOUR,
            &validation,
            &x,
            &y,
        );
    }

    // Legend, top left above the plot.
    let mut lx = left;
    let mut legend = vec![("training", TRAIN_COLOUR)];
    if has_validation {
        legend.push(("validation", VALIDATION_COLOUR));
    }
    out.push_str("<g class=\"legend\">");
    for (label, colour) in legend {
        let _ = write!(
            out,
            "<line x1=\"{}\" x2=\"{}\" y1=\"14\" y2=\"14\" stroke=\"{colour}\" stroke-width=\"3\"/>\
             <text x=\"{}\" y=\"14\" dy=\"0.35em\">{label}</text>",
            c(lx),
            c(lx + 22.0),
            c(lx + 28.0)
        );
        lx += 28.0 + text_width(label, FONT) + 24.0;
    }
    out.push_str("</g></svg>");
    out
}

/// Draws one loss series as polylines, broken where a value is not finite, with a point and
/// a tooltip per epoch.
fn draw_series(
    out: &mut String,
    class: &str,
    label: &str,
    colour: &str,
    points: &[(usize, f64)],
    x: &dyn Fn(f64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    let _ = write!(
        out,
        "<g class=\"series {class}\" stroke=\"{colour}\" fill=\"{colour}\">"
    );
    let mut segment: Vec<String> = Vec::new();
    let flush = |segment: &mut Vec<String>, out: &mut String| {
        if segment.len() > 1 {
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke-width=\"2.5\" points=\"{}\"/>",
                segment.join(" ")
            );
        }
        segment.clear();
    };
    for &(epoch, value) in points {
        if value.is_finite() {
            segment.push(format!("{},{}", c(x(epoch as f64)), c(y(value))));
        } else {
            flush(&mut segment, out);
        }
    }
    flush(&mut segment, out);
    for &(epoch, value) in points.iter().filter(|(_, v)| v.is_finite()) {
        let _ = write!(
            out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" stroke=\"none\"><title>epoch {epoch}, {label} loss {value:.3}</title></circle>",
            c(x(epoch as f64)),
            c(y(value)),
        );
    }
    out.push_str("</g>");
}

/// Draws the top words of topic `k` as horizontal bars, one per word, with the bar length
/// proportional to the word's probability in the topic (scaled to the topic's top word).
pub fn topic_words_chart(k: usize, topic: &TopicWords) -> String {
    let row = 22.0;
    let width = 360.0;
    let value_width = 58.0;
    let labels: Vec<String> = topic.words.iter().map(|w| shorten(w)).collect();
    let label_width = labels
        .iter()
        .map(|l| text_width(l, FONT))
        .fold(0.0, f64::max)
        .clamp(48.0, 170.0)
        + 10.0;
    let bar_room = width - label_width - value_width;
    let height = row * topic.words.len() as f64 + 8.0;
    let top_probability = topic
        .probabilities
        .iter()
        .copied()
        .filter(|p| p.is_finite())
        .fold(0.0, f64::max);
    let colour = topic_colour(k);

    let mut out = String::new();
    open_svg(
        &mut out,
        &format!("topic-{k}-words"),
        width,
        height,
        &format!("Topic {k}: top {} words", topic.words.len()),
        &format!(
            "Horizontal bars of the probability of each top word in topic {k}: {}.",
            topic
                .words
                .iter()
                .zip(&topic.probabilities)
                .map(|(w, p)| format!("{w} {}", percent(*p)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let _ = write!(out, "<g data-topic=\"{k}\" fill=\"{colour}\">");
    for (i, ((word, label), &p)) in topic
        .words
        .iter()
        .zip(&labels)
        .zip(&topic.probabilities)
        .enumerate()
    {
        let y = 4.0 + i as f64 * row;
        let share = if top_probability > 0.0 && p.is_finite() {
            (p / top_probability).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let bar = (share * bar_room).max(1.0);
        let _ = write!(
            out,
            "<text class=\"word\" x=\"{}\" y=\"{}\" dy=\"0.35em\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\">\
             <title>{}: {}</title></rect>\
             <text class=\"value\" x=\"{}\" y=\"{}\" dy=\"0.35em\">{}</text>",
            c(label_width - 8.0),
            c(y + row / 2.0),
            escape(label),
            c(label_width),
            c(y + 3.0),
            c(bar),
            c(row - 6.0),
            escape(word),
            percent(p),
            c(label_width + bar + 5.0),
            c(y + row / 2.0),
            percent(p),
        );
    }
    out.push_str("</g></svg>");
    out
}

/// Draws the mean topic weight over the reference documents as horizontal bars, largest
/// first, each labelled with the topic number and its first words.
pub fn prevalence_chart(weights: &[f64], topics: &[TopicWords]) -> String {
    let row = 24.0;
    let width = 720.0;
    let value_width = 64.0;
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (wa, wb) = (finite_or_zero(weights[a]), finite_or_zero(weights[b]));
        wb.total_cmp(&wa).then(a.cmp(&b))
    });
    let labels: Vec<String> = (0..weights.len())
        .map(|k| format!("{k} · {}", first_words(topics.get(k), 3)))
        .collect();
    let label_width = labels
        .iter()
        .map(|l| text_width(l, FONT))
        .fold(0.0, f64::max)
        .clamp(100.0, 300.0)
        + 12.0;
    let bar_room = width - label_width - value_width;
    let height = row * weights.len() as f64 + 8.0;
    let top_weight = weights
        .iter()
        .copied()
        .map(finite_or_zero)
        .fold(0.0, f64::max);

    let mut out = String::new();
    open_svg(
        &mut out,
        "prevalence-chart",
        width,
        height,
        "Topic prevalence",
        &format!(
            "Horizontal bars of the mean weight of each of {} topics over the reference \
             documents, largest first.",
            weights.len()
        ),
    );
    for (i, &k) in order.iter().enumerate() {
        let y = 4.0 + i as f64 * row;
        let weight = finite_or_zero(weights[k]);
        let share = if top_weight > 0.0 {
            weight / top_weight
        } else {
            0.0
        };
        let bar = (share * bar_room).max(1.0);
        let _ = write!(
            out,
            "<g data-topic=\"{k}\"><text class=\"word\" x=\"{}\" y=\"{}\" dy=\"0.35em\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\" fill=\"{}\">\
             <title>topic {k}: mean weight {}</title></rect>\
             <text class=\"value\" x=\"{}\" y=\"{}\" dy=\"0.35em\">{}</text></g>",
            c(label_width - 8.0),
            c(y + row / 2.0),
            escape(&labels[k]),
            c(label_width),
            c(y + 3.0),
            c(bar),
            c(row - 6.0),
            topic_colour(k),
            percent(weight),
            c(label_width + bar + 5.0),
            c(y + row / 2.0),
            percent(weight),
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{x}\" x2=\"{x}\" y1=\"2\" y2=\"{}\"/></svg>",
        c(height - 2.0),
        x = c(label_width)
    );
    out
}

/// Draws the topics as circles at their 2-D layout positions, labelled with their number and
/// first words. With `prevalence`, circle areas are proportional to it (with a minimum
/// radius of 4 pixels); without it, all circles have the same size. A word label that would
/// overlap another label or circle, or leave the chart, is left out; the circle's tooltip
/// still names the topic's words.
pub fn topic_map_chart(
    layout: &Layout,
    prevalence: Option<&[f64]>,
    topics: &[TopicWords],
) -> String {
    let (width, height) = (960.0, 560.0);
    let (pad_x, pad_y) = (150.0, 56.0);
    let n = layout.points.len();
    let max_radius = 28.0;
    let top_weight = prevalence
        .map(|p| p.iter().copied().map(finite_or_zero).fold(0.0, f64::max))
        .unwrap_or(0.0);
    let radius = |k: usize| match prevalence {
        Some(p) if top_weight > 0.0 => {
            (max_radius * (finite_or_zero(p[k]) / top_weight).sqrt()).max(4.0)
        }
        _ => 12.0,
    };

    let finite_points: Vec<[f64; 2]> = layout
        .points
        .iter()
        .map(|p| [finite_or_zero(p[0]), finite_or_zero(p[1])])
        .collect();
    let (mut x_low, mut x_high, mut y_low, mut y_high) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for p in &finite_points {
        x_low = x_low.min(p[0]);
        x_high = x_high.max(p[0]);
        y_low = y_low.min(p[1]);
        y_high = y_high.max(p[1]);
    }
    let x_span = x_high - x_low;
    let y_span = y_high - y_low;
    let scale_x = if x_span > 0.0 {
        (width - 2.0 * pad_x) / x_span
    } else {
        f64::INFINITY
    };
    let scale_y = if y_span > 0.0 {
        (height - 2.0 * pad_y) / y_span
    } else {
        f64::INFINITY
    };
    // One scale for both axes, so that screen distances stay proportional to layout distances.
    let scale = scale_x.min(scale_y);
    let scale = if scale.is_finite() { scale } else { 0.0 };
    let (x_mid, y_mid) = ((x_low + x_high) / 2.0, (y_low + y_high) / 2.0);
    let centres: Vec<(f64, f64)> = finite_points
        .iter()
        .map(|p| {
            (
                width / 2.0 + (p[0] - x_mid) * scale,
                height / 2.0 - (p[1] - y_mid) * scale,
            )
        })
        .collect();

    let mut out = String::new();
    open_svg(
        &mut out,
        "topic-map",
        width,
        height,
        "Map of the topics",
        &format!(
            "{n} topics placed so that their distances approximate the Jensen-Shannon \
             distances between their word distributions{}.",
            if prevalence.is_some() {
                "; circle area shows prevalence"
            } else {
                ""
            }
        ),
    );

    // A scale bar of 0.1 Jensen-Shannon distance, bottom left, when it fits.
    let bar = 0.1 * scale;
    if bar > 4.0 && bar < width / 2.0 {
        let _ = write!(
            out,
            "<g class=\"scale-bar\"><line x1=\"16\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text x=\"16\" y=\"{}\">0.1 JS distance</text></g>",
            c(16.0 + bar),
            c(height - 22.0),
            y = c(height - 12.0),
        );
    }

    // Largest circles first, so that small ones stay visible on top.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| radius(b).total_cmp(&radius(a)).then(a.cmp(&b)));
    for &k in &order {
        let (x, y) = centres[k];
        let r = radius(k);
        let words = first_words(topics.get(k), 3);
        let tooltip = match prevalence {
            Some(p) => format!("topic {k}: {words}; prevalence {}", percent(p[k])),
            None => format!("topic {k}: {words}"),
        };
        let _ = write!(
            out,
            "<g data-topic=\"{k}\" class=\"map-topic\"><circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\">\
             <title>{}</title></circle>",
            c(x),
            c(y),
            c(r),
            topic_colour(k),
            escape(&tooltip),
        );
        if r >= 9.0 {
            let _ = write!(
                out,
                "<text class=\"map-number\" x=\"{}\" y=\"{}\" dy=\"0.35em\" text-anchor=\"middle\">{k}</text>",
                c(x),
                c(y)
            );
        }
        out.push_str("</g>");
    }

    // Labels go on top of every circle, placed greedily in the circles' drawing order.
    let circles: Vec<Area> = (0..n)
        .map(|k| {
            let (x, y) = centres[k];
            let r = radius(k);
            Area::new(x - r, y - r, x + r, y + r)
        })
        .collect();
    let mut placed_labels: Vec<Area> = Vec::new();
    for &k in &order {
        let words = first_words(topics.get(k), 3);
        let r = radius(k);
        let mut texts = Vec::new();
        if r >= 9.0 {
            texts.push(words);
        } else {
            texts.push(format!("{k} · {words}"));
            // A circle too small for its number keeps at least the number.
            texts.push(k.to_string());
        }
        let placed = texts.iter().find_map(|text| {
            place_label(
                centres[k],
                r,
                text,
                (width, height),
                k,
                &circles,
                &placed_labels,
            )
            .map(|placement| (text, placement))
        });
        if let Some((text, (x, y, anchor, area))) = placed {
            placed_labels.push(area);
            let _ = write!(
                out,
                "<text data-topic=\"{k}\" class=\"map-label\" x=\"{}\" y=\"{}\" dy=\"0.35em\" text-anchor=\"{anchor}\">{}</text>",
                c(x),
                c(y),
                escape(text)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Font size of the topic map's labels, in pixels.
const MAP_FONT: f64 = 12.0;

/// An axis-aligned rectangle `[x0, x1] × [y0, y1]` in chart pixels.
#[derive(Debug, Clone, Copy)]
struct Area {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Area {
    fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Self {
        Area { x0, y0, x1, y1 }
    }

    fn overlaps(&self, other: &Area) -> bool {
        self.x0 < other.x1 && other.x0 < self.x1 && self.y0 < other.y1 && other.y0 < self.y1
    }
}

/// Finds a place for the label of circle `own` centred at `centre` with radius `r`: to the
/// right, left, above or below, the first that stays inside the chart and clear of other
/// circles and placed labels. Returns the text position, its anchor and the area it covers.
fn place_label(
    centre: (f64, f64),
    r: f64,
    text: &str,
    (width, height): (f64, f64),
    own: usize,
    circles: &[Area],
    placed_labels: &[Area],
) -> Option<(f64, f64, &'static str, Area)> {
    let (x, y) = centre;
    let w = text_width(text, MAP_FONT);
    let h = MAP_FONT + 2.0;
    let gap = 4.0;
    let candidates = [
        (
            x + r + gap,
            y,
            "start",
            Area::new(x + r + gap, y - h / 2.0, x + r + gap + w, y + h / 2.0),
        ),
        (
            x - r - gap,
            y,
            "end",
            Area::new(x - r - gap - w, y - h / 2.0, x - r - gap, y + h / 2.0),
        ),
        (
            x,
            y - r - gap - h / 2.0,
            "middle",
            Area::new(x - w / 2.0, y - r - gap - h, x + w / 2.0, y - r - gap),
        ),
        (
            x,
            y + r + gap + h / 2.0,
            "middle",
            Area::new(x - w / 2.0, y + r + gap, x + w / 2.0, y + r + gap + h),
        ),
    ];
    candidates.into_iter().find(|(_, _, _, area)| {
        let inside =
            area.x0 >= 2.0 && area.y0 >= 2.0 && area.x1 <= width - 2.0 && area.y1 <= height - 2.0;
        inside
            && !placed_labels.iter().any(|t| t.overlaps(area))
            && !circles
                .iter()
                .enumerate()
                .any(|(k, circle)| k != own && circle.overlaps(area))
    })
}

/// Returns up to `count` first words of a topic, space-separated and shortened.
fn first_words(topic: Option<&TopicWords>, count: usize) -> String {
    topic
        .map(|t| {
            t.words
                .iter()
                .take(count)
                .map(|w| shorten(w))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Shortens a word label to [`MAX_LABEL_CHARS`] characters, ending it with an ellipsis.
fn shorten(word: &str) -> String {
    if word.chars().count() <= MAX_LABEL_CHARS {
        word.to_owned()
    } else {
        let mut short: String = word.chars().take(MAX_LABEL_CHARS - 1).collect();
        short.push('…');
        short
    }
}

fn finite_or_zero(value: f64) -> f64 {
    if value.is_finite() {
        value
    } else {
        0.0
    }
}
