//! Assembles the report page: header, sections, metrics table, style sheet and script.

use std::fmt::Write;

use crate::charts::{loss_chart, prevalence_chart, topic_map_chart, topic_words_chart};
use crate::svg::{escape, metric, percent, topic_colour};
use crate::{ReportInput, TopicWords};

/// Policy that forbids every fetch: only the page's own inline style, script and `data:`
/// images may run or load.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// Renders the whole page; the input's lengths are already checked.
pub fn page(input: &ReportInput) -> String {
    let summary = &input.summary;
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"ntm {}\">\n\
         <title>Topic model report: {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        escape(&summary.ntm_version),
        escape(&summary.name),
    );
    header(&mut out, input);
    out.push_str("<main>\n");
    model_section(&mut out, input);
    training_section(&mut out, input);
    topics_section(&mut out, input);
    prevalence_section(&mut out, input);
    map_section(&mut out, input);
    metrics_section(&mut out, input);
    let _ = write!(
        out,
        "</main>\n<footer><p>Written by ntm {} as one self-contained file: it loads no fonts, \
         images or scripts from anywhere else.</p></footer>\n<script>\n{SCRIPT}</script>\n\
         </body>\n</html>\n",
        escape(&summary.ntm_version)
    );
    out
}

fn header(out: &mut String, input: &ReportInput) {
    let summary = &input.summary;
    let epochs = input.history.len();
    let best = match summary.best_epoch {
        Some(best) => format!("{best} of {epochs}"),
        None => format!("– of {epochs}"),
    };
    let mut facts = vec![
        ("Topics", summary.num_topics.to_string()),
        ("Vocabulary", summary.vocab_size.to_string()),
        ("Best epoch", best),
        (
            "Training documents",
            summary
                .training_documents
                .map_or_else(|| "–".to_owned(), |d| d.to_string()),
        ),
    ];
    if let Some(loss) = summary.test_loss {
        facts.push(("Test loss", format!("{loss:.2}")));
    }
    if let Some(reference) = &input.reference {
        facts.push(("Reference documents", reference.documents.to_string()));
        if let Some(perplexity) = reference.perplexity {
            facts.push(("Perplexity", format!("{perplexity:.1}")));
        }
    }
    let _ = write!(
        out,
        "<header>\n<p class=\"eyebrow\">Topic model report</p>\n<h1>{}</h1>\n<dl class=\"facts\">",
        escape(&summary.name)
    );
    for (name, value) in facts {
        let _ = write!(out, "<div><dt>{name}</dt><dd>{}</dd></div>", escape(&value));
    }
    out.push_str(
        "</dl>\n<nav aria-label=\"Sections\"><ul>\
         <li><a href=\"#model\">Model</a></li><li><a href=\"#training\">Training</a></li>\
         <li><a href=\"#topics\">Top words</a></li><li><a href=\"#prevalence\">Prevalence</a></li>\
         <li><a href=\"#map\">Topic map</a></li><li><a href=\"#metrics\">Metrics</a></li>\
         </ul></nav>\n</header>\n",
    );
}

fn model_section(out: &mut String, input: &ReportInput) {
    let summary = &input.summary;
    let layers = summary
        .encoder_layers
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" → ");
    let _ = write!(
        out,
        "<section id=\"model\" aria-labelledby=\"model-heading\">\n<h2 id=\"model-heading\">Model</h2>\n\
         <p class=\"lead\">Encoder {} → {layers} → {} topics, {} activation, batch normalisation {}. \
         Trained with ntm {}.</p>\n",
        summary.vocab_size,
        summary.num_topics,
        escape(&summary.activation),
        if summary.batch_norm { "on" } else { "off" },
        escape(&summary.ntm_version),
    );
    if summary.hyperparameters.is_empty() {
        out.push_str("<p>The model records no hyperparameters.</p>\n");
    } else {
        out.push_str("<h3>Hyperparameters</h3>\n<dl class=\"params\">");
        for (name, value) in &summary.hyperparameters {
            let _ = write!(
                out,
                "<div><dt>{}</dt><dd>{}</dd></div>",
                escape(name),
                escape(value)
            );
        }
        out.push_str("</dl>\n");
    }
    out.push_str("</section>\n");
}

fn training_section(out: &mut String, input: &ReportInput) {
    out.push_str(
        "<section id=\"training\" aria-labelledby=\"training-heading\">\n\
         <h2 id=\"training-heading\">Training</h2>\n",
    );
    if input.history.is_empty() {
        out.push_str("<p class=\"notice\">The model records no epochs.</p>\n</section>\n");
        return;
    }
    let _ = write!(
        out,
        "<figure>{}<figcaption>Total loss per document (reconstruction plus KL divergence, in \
         nats) after each epoch. {}</figcaption></figure>\n</section>\n",
        loss_chart(&input.history, input.summary.best_epoch),
        match input.summary.best_epoch {
            Some(best) => format!("The dashed line marks epoch {best}, whose weights were saved."),
            None => "The model does not record which epoch was saved.".to_owned(),
        }
    );
}

fn topics_section(out: &mut String, input: &ReportInput) {
    let words = input.topics.first().map_or(0, |t| t.words.len());
    let _ = write!(
        out,
        "<section id=\"topics\" aria-labelledby=\"topics-heading\">\n\
         <h2 id=\"topics-heading\">Top words</h2>\n<p class=\"lead\">The {words} most probable \
         words of each topic. A bar is the word's probability in the topic's word distribution, \
         the softmax of the topic's decoder column, drawn relative to the topic's first word.{}</p>\n\
         <p class=\"lead hover-hint\">Hovering a bar, circle or table row highlights its topic \
         in every chart and table.</p>\n<div class=\"topic-grid\">\n",
        if input.summary.has_vocabulary {
            ""
        } else {
            " The model has no vocabulary, so words are shown as feature ids."
        }
    );
    for (k, topic) in input.topics.iter().enumerate() {
        let _ = writeln!(
            out,
            "<figure class=\"topic-card\" data-topic=\"{k}\" style=\"--topic: {}\">\
             <figcaption class=\"topic-name\"><span class=\"swatch\" aria-hidden=\"true\"></span>Topic {k}</figcaption>\
             {}</figure>",
            topic_colour(k),
            topic_words_chart(k, topic)
        );
    }
    out.push_str("</div>\n</section>\n");
}

fn prevalence_section(out: &mut String, input: &ReportInput) {
    out.push_str(
        "<section id=\"prevalence\" aria-labelledby=\"prevalence-heading\">\n\
         <h2 id=\"prevalence-heading\">Prevalence</h2>\n",
    );
    match &input.reference {
        Some(reference) => {
            let _ = writeln!(
                out,
                "<figure>{}<figcaption>Mean topic weight over the {} documents of {} that \
                 contain at least one vocabulary word. A document's topic weights are the \
                 softmax of the encoder's posterior mean, as <code>ntm infer</code> writes \
                 them, so the bars add up to 100%.</figcaption></figure>",
                prevalence_chart(&reference.prevalence, &input.topics),
                reference.documents,
                escape(&reference.path),
            );
        }
        None => out.push_str(
            "<p class=\"notice\">Prevalence needs a reference corpus: run <code>ntm report</code> \
             with <code>--reference</code> and a channel folder or tokenised-documents file.</p>\n",
        ),
    }
    out.push_str("</section>\n");
}

fn map_section(out: &mut String, input: &ReportInput) {
    let prevalence = input.reference.as_ref().map(|r| r.prevalence.as_slice());
    let _ = write!(
        out,
        "<section id=\"map\" aria-labelledby=\"map-heading\">\n<h2 id=\"map-heading\">Topic map</h2>\n\
         <figure>{}<figcaption>Topics placed by classical multidimensional scaling of the \
         Jensen-Shannon distances between their word distributions: topics that use the same \
         words lie close together. The two axes have no meaning of their own and keep {} of \
         the distance structure. {} A word label that would overlap another label or circle is \
         left out; hovering a circle shows its topic's words.</figcaption></figure>\n</section>\n",
        topic_map_chart(&input.layout, prevalence, &input.topics),
        percent(input.layout.explained),
        if prevalence.is_some() {
            "Circle area is proportional to prevalence."
        } else {
            "All circles have the same size, because prevalence needs a reference corpus."
        }
    );
}

/// One numeric column of the metrics table.
struct MetricColumn {
    name: &'static str,
    per_topic: Vec<Option<f64>>,
    /// Value of the `all` row; `None` leaves the cell empty.
    overall: Option<f64>,
    /// Whether values are shares shown as percentages.
    percent: bool,
}

impl MetricColumn {
    fn scores(name: &'static str, per_topic: &[f64], overall: f64) -> Self {
        MetricColumn {
            name,
            per_topic: per_topic.iter().map(|&v| Some(v)).collect(),
            overall: Some(overall),
            percent: false,
        }
    }

    fn cell(&self, value: Option<f64>) -> String {
        match value {
            Some(v) if self.percent => percent(v),
            _ => metric(value),
        }
    }
}

fn metrics_section(out: &mut String, input: &ReportInput) {
    let m = &input.metrics;
    let reference = input.reference.as_ref();
    let mut columns = Vec::new();
    if let Some(reference) = reference {
        columns.push(MetricColumn {
            name: "Prevalence",
            per_topic: reference.prevalence.iter().map(|&v| Some(v)).collect(),
            overall: None,
            percent: true,
        });
    }
    columns.push(MetricColumn::scores(
        "TU",
        &m.topic_uniqueness.per_topic,
        m.topic_uniqueness.overall,
    ));
    if reference.is_some() {
        columns.push(MetricColumn::scores(
            "NPMI",
            &m.npmi.per_topic,
            m.npmi.overall,
        ));
        columns.push(MetricColumn::scores(
            "u_mass",
            &m.u_mass.per_topic,
            m.u_mass.overall,
        ));
    }
    if let Some(scores) = &m.c_npmi {
        columns.push(MetricColumn::scores(
            "c_npmi",
            &scores.per_topic,
            scores.overall,
        ));
    }
    if let Some(scores) = &m.c_v {
        columns.push(MetricColumn::scores(
            "c_v",
            &scores.per_topic,
            scores.overall,
        ));
    }
    if let Some(wetc) = &m.wetc {
        columns.push(MetricColumn {
            name: "WETC",
            per_topic: wetc.per_topic.clone(),
            overall: wetc.overall,
            percent: false,
        });
    }

    let _ = write!(
        out,
        "<section id=\"metrics\" aria-labelledby=\"metrics-heading\">\n\
         <h2 id=\"metrics-heading\">Metrics</h2>\n<p class=\"lead\">Topic quality on the top {} \
         words of each topic, as <code>ntm evaluate</code> computes it. {}</p>\n\
         <div class=\"table-wrap\"><table class=\"metrics\">\n<caption>Metrics per topic and \
         their mean over topics</caption>\n<thead><tr><th scope=\"col\">Topic</th>\
         <th scope=\"col\">Top words</th>",
        m.top_n,
        match reference {
            Some(r) => format!(
                "Coherence is measured on {} ({} documents).{}",
                escape(&r.path),
                m.reference_documents,
                if r.tokenised {
                    ""
                } else {
                    " The sliding-window measures c_npmi and c_v need a tokenised-documents \
                     reference, so they are not shown."
                }
            ),
            None => "Coherence needs a reference corpus (<code>--reference</code>), so only the \
                     measures computed from the topics alone are shown."
                .to_owned(),
        }
    );
    for column in &columns {
        let _ = write!(out, "<th scope=\"col\" class=\"num\">{}</th>", column.name);
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (k, topic) in input.topics.iter().enumerate() {
        let _ = write!(
            out,
            "<tr data-topic=\"{k}\" style=\"--topic: {}\"><th scope=\"row\"><span class=\"swatch\" \
             aria-hidden=\"true\"></span>{k}</th><td>{}</td>",
            topic_colour(k),
            escape(&topic_word_line(topic))
        );
        for column in &columns {
            let value = column.per_topic.get(k).copied().flatten();
            let _ = write!(out, "<td class=\"num\">{}</td>", column.cell(value));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n<tfoot><tr><th scope=\"row\">all</th><td>mean over topics</td>");
    for column in &columns {
        let text = match column.overall {
            Some(_) => column.cell(column.overall),
            None => String::new(),
        };
        let _ = write!(out, "<td class=\"num\">{text}</td>");
    }
    out.push_str("</tr></tfoot>\n</table></div>\n<dl class=\"facts model-metrics\">");
    let mut overall = vec![
        (
            "Topic diversity".to_owned(),
            metric(Some(m.topic_diversity)),
        ),
        (
            format!("Inverted RBO (p = {})", m.inverted_rbo.weight),
            metric(Some(m.inverted_rbo.overall)),
        ),
    ];
    if let Some(perplexity) = reference.and_then(|r| r.perplexity) {
        overall.push(("Perplexity".to_owned(), format!("{perplexity:.2}")));
    }
    if let Some(wetc) = &m.wetc {
        overall.push((
            "Top words without a vector".to_owned(),
            format!(
                "{} <small>({} in the vocabulary)</small>",
                wetc.missing_top_words, wetc.missing_vocabulary_words
            ),
        ));
    }
    for (name, value) in overall {
        let _ = write!(out, "<div><dt>{name}</dt><dd>{value}</dd></div>");
    }
    out.push_str("</dl>\n</section>\n");
}

fn topic_word_line(topic: &TopicWords) -> String {
    topic.words.join(" ")
}
