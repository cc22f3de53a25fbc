//! The report's SVG charts and page on hand-made inputs: well-formed markup, one bar per
//! word or topic, finite coordinates, escaped words and no NaN anywhere.

use ntm_eval::{evaluate_topics, MetricOptions, Reference};
use ntm_report::charts::{loss_chart, prevalence_chart, topic_map_chart, topic_words_chart};
use ntm_report::{
    classical_mds, render_report, EpochLoss, Layout, ModelSummary, ReferenceSummary, ReportInput,
    TopicWords,
};

/// Attributes that hold one number in the charts.
const NUMERIC_ATTRIBUTES: [&str; 11] = [
    "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height",
];

fn topics() -> Vec<TopicWords> {
    vec![
        TopicWords {
            words: vec![
                "space".into(),
                "nasa".into(),
                "orbit".into(),
                "launch".into(),
            ],
            probabilities: vec![0.08, 0.05, 0.03, 0.01],
        },
        TopicWords {
            words: vec![
                "<b>&".into(),
                "god".into(),
                "\"faith\"".into(),
                "church".into(),
            ],
            probabilities: vec![0.06, 0.04, 0.02, 0.02],
        },
        TopicWords {
            words: vec![
                "game".into(),
                "team".into(),
                "season".into(),
                "hockey".into(),
            ],
            probabilities: vec![0.1, 0.07, 0.05, 0.0],
        },
    ]
}

fn history() -> Vec<EpochLoss> {
    (1..=6)
        .map(|epoch| EpochLoss {
            epoch,
            train: 600.0 - 10.0 * epoch as f64,
            validation: Some(590.0 - 6.0 * epoch as f64 + if epoch > 4 { 20.0 } else { 0.0 }),
        })
        .collect()
}

fn layout() -> Layout {
    let d = [0.0, 0.6, 0.8, 0.6, 0.0, 0.7, 0.8, 0.7, 0.0];
    classical_mds(&d, 3).expect("layout")
}

fn input(with_reference: bool) -> ReportInput {
    // Word ids 0..12 in the order of `topics()`; three documents, one per topic's words.
    let top_ids: Vec<Vec<u32>> = (0..3u32).map(|k| (4 * k..4 * k + 4).collect()).collect();
    let documents: Vec<Vec<u32>> =
        vec![vec![0, 1, 2, 3, 0], vec![4, 5, 6, 7], vec![8, 9, 10, 11, 1]];
    let metrics = evaluate_topics(
        &top_ids,
        Reference::Tokens {
            documents: &documents,
            vocab_size: 12,
        },
        None,
        &MetricOptions::default(),
    );
    ReportInput {
        summary: ModelSummary {
            name: "model<1>.tar.gz".into(),
            ntm_version: "0.1.0".into(),
            num_topics: 3,
            vocab_size: 12,
            encoder_layers: vec![9, 6],
            activation: "sigmoid".into(),
            batch_norm: false,
            hyperparameters: vec![
                ("num_topics".into(), "3".into()),
                ("epochs".into(), "6".into()),
            ],
            best_epoch: Some(4),
            training_documents: Some(120),
            test_loss: Some(551.25),
            has_vocabulary: true,
        },
        history: history(),
        topics: topics(),
        layout: layout(),
        metrics,
        reference: with_reference.then(|| ReferenceSummary {
            path: "channels/tokens/test.txt".into(),
            tokenised: true,
            documents: 3,
            prevalence: vec![0.5, 0.2, 0.3],
            perplexity: Some(812.5),
        }),
    }
}

/// Parses one SVG element and checks what every chart must have.
fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    let document = roxmltree::Document::parse(svg)
        .unwrap_or_else(|e| panic!("chart is not well-formed XML ({e}):\n{svg}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let first: Vec<&str> = root
        .children()
        .filter(|n| n.is_element())
        .take(2)
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(
        first,
        ["title", "desc"],
        "chart starts with <title> and <desc>"
    );
    document
}

/// Checks that every numeric attribute and polyline point is a finite number.
fn assert_finite_coordinates(document: &roxmltree::Document<'_>) {
    for node in document.descendants().filter(|n| n.is_element()) {
        for name in NUMERIC_ATTRIBUTES {
            if let Some(value) = node.attribute(name) {
                let number: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={value:?} on <{}>", node.tag_name().name()));
                assert!(number.is_finite(), "{name}={value}");
            }
        }
        if let Some(points) = node.attribute("points") {
            for pair in points.split(' ') {
                for value in pair.split(',') {
                    let number: f64 = value.parse().unwrap_or_else(|_| panic!("point {pair:?}"));
                    assert!(number.is_finite(), "point {pair}");
                }
            }
        }
    }
}

fn elements_with_class<'a>(
    document: &'a roxmltree::Document<'a>,
    tag: &str,
    class: &str,
) -> Vec<roxmltree::Node<'a, 'a>> {
    document
        .descendants()
        .filter(|n| n.has_tag_name(tag))
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split(' ').any(|part| part == class))
        })
        .collect()
}

#[test]
fn word_chart_has_one_bar_per_word() {
    for (k, topic) in topics().iter().enumerate() {
        let svg = topic_words_chart(k, topic);
        let document = parse_svg(&svg);
        assert_finite_coordinates(&document);
        let bars = elements_with_class(&document, "rect", "bar");
        assert_eq!(bars.len(), topic.words.len(), "topic {k}");
        let words: Vec<&str> = elements_with_class(&document, "text", "word")
            .iter()
            .map(|n| n.text().unwrap_or(""))
            .collect();
        assert_eq!(words, topic.words, "topic {k}: word labels in rank order");
    }
}

#[test]
fn word_chart_bars_follow_probability() {
    let topic = &topics()[0];
    let svg = topic_words_chart(0, topic);
    let document = parse_svg(&svg);
    let widths: Vec<f64> = elements_with_class(&document, "rect", "bar")
        .iter()
        .map(|n| {
            n.attribute("width")
                .expect("width")
                .parse()
                .expect("number")
        })
        .collect();
    for pair in widths.windows(2) {
        assert!(
            pair[0] > pair[1],
            "bars shrink with probability: {widths:?}"
        );
    }
    // Bars are proportional to probability: 0.08 against 0.05.
    let ratio = widths[0] / widths[1];
    assert!((ratio - 0.08 / 0.05).abs() < 0.02, "{widths:?}");
}

#[test]
fn word_chart_survives_nan_probability() {
    let topic = TopicWords {
        words: vec!["a".into(), "b".into()],
        probabilities: vec![f64::NAN, 0.5],
    };
    let svg = topic_words_chart(4, &topic);
    assert!(!svg.contains("NaN"), "{svg}");
    assert_finite_coordinates(&parse_svg(&svg));
}

#[test]
fn loss_chart_draws_both_series_and_best_epoch() {
    let svg = loss_chart(&history(), Some(4));
    let document = parse_svg(&svg);
    assert_finite_coordinates(&document);
    for series in ["train", "validation"] {
        let group = elements_with_class(&document, "g", series);
        assert_eq!(group.len(), 1, "{series} group");
        let points = group[0]
            .descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count();
        assert_eq!(points, 6, "{series}: one point per epoch");
        let line = group[0]
            .descendants()
            .find(|n| n.has_tag_name("polyline"))
            .expect("polyline");
        assert_eq!(
            line.attribute("points").expect("points").split(' ').count(),
            6
        );
    }
    let marker = elements_with_class(&document, "g", "best-epoch");
    assert_eq!(marker.len(), 1);
    assert!(svg.contains("best epoch 4"));
    // The marker sits on the x of the fourth epoch's training point.
    let marker_x = marker[0]
        .descendants()
        .find(|n| n.has_tag_name("line"))
        .and_then(|n| n.attribute("x1"))
        .expect("marker line");
    let fourth_x = elements_with_class(&document, "g", "train")[0]
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .nth(3)
        .and_then(|n| n.attribute("cx"))
        .expect("fourth point");
    assert_eq!(marker_x, fourth_x);
}

#[test]
fn loss_chart_breaks_line_at_nan() {
    let mut epochs = history();
    epochs[2].train = f64::NAN;
    epochs[3].validation = Some(f64::INFINITY);
    let svg = loss_chart(&epochs, None);
    assert!(!svg.contains("NaN"), "{svg}");
    assert!(!svg.contains("inf"), "{svg}");
    let document = parse_svg(&svg);
    assert_finite_coordinates(&document);
    let train = &elements_with_class(&document, "g", "train")[0];
    let lines = train
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert_eq!(lines, 2, "epochs 1-2 and 4-6");
    assert!(svg.contains("2 non-finite values are not drawn"));
}

#[test]
fn loss_chart_handles_one_epoch_and_none() {
    let one = [EpochLoss {
        epoch: 1,
        train: 12.5,
        validation: None,
    }];
    let svg = loss_chart(&one, Some(1));
    let document = parse_svg(&svg);
    assert_finite_coordinates(&document);
    assert!(elements_with_class(&document, "g", "validation").is_empty());
    let empty = loss_chart(&[], None);
    let document = parse_svg(&empty);
    assert_finite_coordinates(&document);
    assert!(empty.contains("No finite losses recorded"));
}

#[test]
fn prevalence_chart_orders_topics_by_weight() {
    let svg = prevalence_chart(&[0.2, 0.5, f64::NAN], &topics());
    assert!(!svg.contains("NaN"), "{svg}");
    let document = parse_svg(&svg);
    assert_finite_coordinates(&document);
    let order: Vec<&str> = document
        .descendants()
        .filter(|n| n.has_tag_name("g"))
        .filter_map(|n| n.attribute("data-topic"))
        .collect();
    assert_eq!(order, ["1", "0", "2"]);
    assert_eq!(elements_with_class(&document, "rect", "bar").len(), 3);
    // The escaped word of topic 1 reads back as the original text.
    assert!(document
        .descendants()
        .any(|n| n.text() == Some("1 · <b>& god \"faith\"")));
}

#[test]
fn map_sizes_circles_by_prevalence() {
    let layout = layout();
    let svg = topic_map_chart(&layout, Some(&[0.64, 0.16, 0.2]), &topics());
    let document = parse_svg(&svg);
    assert_finite_coordinates(&document);
    let radius = |k: &str| -> f64 {
        document
            .descendants()
            .find(|n| n.has_tag_name("g") && n.attribute("data-topic") == Some(k))
            .and_then(|g| g.descendants().find(|n| n.has_tag_name("circle")))
            .and_then(|c| c.attribute("r"))
            .expect("circle")
            .parse()
            .expect("number")
    };
    // Area proportional to prevalence: radius ratio √(0.64 / 0.16) = 2.
    assert!((radius("0") / radius("1") - 2.0).abs() < 0.01);
    let same = topic_map_chart(&layout, None, &topics());
    let document = parse_svg(&same);
    let radii: Vec<&str> = document
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .filter_map(|n| n.attribute("r"))
        .collect();
    assert_eq!(radii.len(), 3);
    assert!(radii.iter().all(|r| *r == radii[0]), "{radii:?}");
}

#[test]
fn map_keeps_distance_ratios_on_screen() {
    let layout = layout();
    let svg = topic_map_chart(&layout, None, &topics());
    let document = parse_svg(&svg);
    let centres: Vec<(f64, f64)> = (0..3)
        .map(|k| {
            let circle = document
                .descendants()
                .find(|n| n.has_tag_name("g") && n.attribute("data-topic") == Some(&k.to_string()))
                .and_then(|g| g.descendants().find(|n| n.has_tag_name("circle")))
                .expect("circle");
            let number = |name| -> f64 { circle.attribute(name).expect(name).parse().expect(name) };
            (number("cx"), number("cy"))
        })
        .collect();
    let screen = |a: usize, b: usize| {
        ((centres[a].0 - centres[b].0).powi(2) + (centres[a].1 - centres[b].1).powi(2)).sqrt()
    };
    let layout_distance = |a: usize, b: usize| {
        let (p, q) = (layout.points[a], layout.points[b]);
        ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
    };
    let ratio_screen = screen(0, 2) / screen(0, 1);
    let ratio_layout = layout_distance(0, 2) / layout_distance(0, 1);
    // Coordinates are rounded to 0.01 px.
    assert!(
        (ratio_screen - ratio_layout).abs() < 1e-3,
        "{ratio_screen} vs {ratio_layout}"
    );
}

#[test]
fn map_of_single_topic_is_centred() {
    let layout = classical_mds(&[0.0], 1).expect("layout");
    let svg = topic_map_chart(&layout, Some(&[1.0]), &topics()[..1]);
    let document = parse_svg(&svg);
    assert_finite_coordinates(&document);
    let circle = document
        .descendants()
        .find(|n| n.has_tag_name("circle"))
        .expect("circle");
    assert_eq!(circle.attribute("cx"), Some("480"));
    assert_eq!(circle.attribute("cy"), Some("280"));
}

/// Returns every `<svg>…</svg>` element of a page.
fn svg_elements(page: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("closing </svg>") + start + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

#[test]
fn page_with_reference_has_every_chart() {
    let page = render_report(&input(true)).expect("page");
    let charts = svg_elements(&page);
    // Loss chart, one word chart per topic, prevalence and map.
    assert_eq!(charts.len(), 1 + 3 + 1 + 1);
    for svg in &charts {
        assert_finite_coordinates(&parse_svg(svg));
    }
    for id in [
        "loss-chart",
        "prevalence-chart",
        "topic-map",
        "topic-2-words",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "chart {id}");
    }
    assert!(!page.contains("NaN"));
    assert!(page.contains("<th scope=\"col\" class=\"num\">c_npmi</th>"));
    assert!(page.contains("<th scope=\"col\" class=\"num\">NPMI</th>"));
    assert!(!page.contains(">WETC<"), "no WETC without embeddings");
    assert!(page.contains("Perplexity"));
    assert_eq!(
        page.matches("<tr data-topic=").count(),
        3,
        "one table row per topic"
    );
}

#[test]
fn page_without_reference_says_prevalence_needs_one() {
    let page = render_report(&input(false)).expect("page");
    assert!(page.contains("Prevalence needs a reference corpus"));
    assert!(!page.contains("id=\"prevalence-chart\""));
    assert!(
        !page.contains(">NPMI<"),
        "no co-occurrence columns without a reference"
    );
    assert!(page.contains(">TU<"));
    assert!(page.contains("Inverted RBO"));
    assert_eq!(svg_elements(&page).len(), 1 + 3 + 1);
}

#[test]
fn page_loads_nothing_from_outside() {
    let page = render_report(&input(true)).expect("page");
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none';"));
    let without_namespace = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for needle in [
        "http:", "https:", "src=", "href=\"/", "<link", "@import", "url(",
    ] {
        assert!(
            !without_namespace.contains(needle),
            "page contains {needle:?}"
        );
    }
    for href in without_namespace.split("href=\"").skip(1) {
        assert!(
            href.starts_with('#'),
            "link leaves the page: {}",
            &href[..href.len().min(40)]
        );
    }
}

#[test]
fn page_escapes_words_and_names() {
    let page = render_report(&input(true)).expect("page");
    assert!(!page.contains("<b>&"), "raw word markup");
    assert!(page.contains("&lt;b&gt;&amp;"));
    assert!(page.contains("model&lt;1&gt;.tar.gz"));
}

#[test]
fn page_is_deterministic() {
    let a = render_report(&input(true)).expect("page");
    let b = render_report(&input(true)).expect("page");
    assert_eq!(a, b);
}

#[test]
fn render_rejects_mismatched_inputs() {
    let mut bad = input(true);
    bad.topics.pop();
    let error = render_report(&bad).expect_err("two word lists for three topics");
    assert!(error.to_string().contains("topic word lists"), "{error}");
    assert!(error.to_string().contains("found 2"), "{error}");

    let mut bad = input(true);
    if let Some(reference) = bad.reference.as_mut() {
        reference.prevalence.push(0.1);
    }
    let error = render_report(&bad).expect_err("four prevalence values");
    assert!(error.to_string().contains("prevalence"), "{error}");

    let mut bad = input(false);
    bad.topics[1].probabilities.pop();
    let error = render_report(&bad).expect_err("three probabilities for four words");
    assert!(error.to_string().contains("topic 1"), "{error}");
}
