//! Media types of requests (`Content-Type`) and responses (`Accept`).
//!
//! Type and parameter names are compared without regard to case, as RFC 9110 specifies.

use std::fmt;

/// Request content types, as listed in 415 responses.
pub const REQUEST_TYPES: &str = "text/csv (optionally with label_size=0 or label_size=1), \
     application/json, application/jsonlines, application/x-recordio-protobuf, text/plain";

/// Response content types, as listed in 406 responses.
pub const RESPONSE_TYPES: &str =
    "application/json (the default), application/jsonlines, application/x-recordio-protobuf";

/// Format of an inference request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// `text/csv`: one dense document per line, after `label_size` label columns.
    Csv {
        /// Leading label columns to skip on each line, 0 or 1.
        label_size: usize,
    },
    /// `application/json`: an `"instances"` list.
    Json,
    /// `application/jsonlines`: one instance per line.
    JsonLines,
    /// `application/x-recordio-protobuf`: RecordIO-framed `aialgs.data.Record` messages.
    RecordIo,
    /// `text/plain`: raw documents, one per line, counted with the model's vocabulary.
    Text,
}

/// Format of an inference response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/json`: `{"predictions": [{"topic_weights": [...]}, ...]}`.
    Json,
    /// `application/jsonlines`: one `{"topic_weights": [...]}` per line.
    JsonLines,
    /// `application/x-recordio-protobuf`: one record per document, label `topic_weights`.
    RecordIo,
}

impl ResponseFormat {
    /// Every response format, in the order of preference when the client has none.
    const ALL: [ResponseFormat; 3] = [
        ResponseFormat::Json,
        ResponseFormat::JsonLines,
        ResponseFormat::RecordIo,
    ];

    /// Returns the media type sent in the `Content-Type` header of the response.
    pub fn media_type(self) -> &'static str {
        match self {
            ResponseFormat::Json => "application/json",
            ResponseFormat::JsonLines => "application/jsonlines",
            ResponseFormat::RecordIo => "application/x-recordio-protobuf",
        }
    }
}

/// A `Content-Type` that the server does not accept, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedContentType {
    /// The header value as received; empty when the header is missing.
    pub value: String,
    /// Reason for the rejection.
    pub reason: String,
}

impl fmt::Display for UnsupportedContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}. Supported request content types: {REQUEST_TYPES}",
            self.reason
        )
    }
}

/// Splits a media type into its lowercase essence (`type/subtype`) and its parameters as
/// lowercase names with unquoted values.
fn split_media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let parameters = parts
        .filter_map(|part| part.split_once('='))
        .map(|(name, setting)| {
            (
                name.trim().to_ascii_lowercase(),
                setting.trim().trim_matches('"').to_owned(),
            )
        })
        .collect();
    (essence, parameters)
}

/// Parses the `Content-Type` of a request; `None` when the header is missing.
///
/// Unknown parameters are ignored. `charset`, when given, must be UTF-8 or US-ASCII, and
/// `label_size` (CSV only) must be 0 or 1.
///
/// # Errors
/// [`UnsupportedContentType`] for a missing header, an unknown type or a rejected parameter.
pub fn parse_content_type(value: Option<&str>) -> Result<RequestFormat, UnsupportedContentType> {
    let Some(value) = value else {
        return Err(UnsupportedContentType {
            value: String::new(),
            reason: "the request has no Content-Type header".to_owned(),
        });
    };
    let reject = |reason: String| UnsupportedContentType {
        value: value.to_owned(),
        reason,
    };
    let (essence, parameters) = split_media_type(value);
    let mut format = match essence.as_str() {
        "text/csv" => RequestFormat::Csv { label_size: 0 },
        "application/json" => RequestFormat::Json,
        "application/jsonlines" => RequestFormat::JsonLines,
        "application/x-recordio-protobuf" => RequestFormat::RecordIo,
        "text/plain" => RequestFormat::Text,
        _ => return Err(reject(format!("content type {value:?} is not supported"))),
    };
    for (name, setting) in parameters {
        match (name.as_str(), &mut format) {
            ("charset", RequestFormat::RecordIo) => {}
            ("charset", _) => {
                let setting = setting.to_ascii_lowercase();
                if !matches!(setting.as_str(), "utf-8" | "utf8" | "us-ascii") {
                    return Err(reject(format!(
                        "charset {setting:?} in content type {value:?} is not supported; \
                         send the body as UTF-8"
                    )));
                }
            }
            ("label_size", RequestFormat::Csv { label_size }) => {
                *label_size = match setting.as_str() {
                    "0" => 0,
                    "1" => 1,
                    _ => {
                        return Err(reject(format!(
                            "label_size must be 0 or 1, got {setting:?} in content type {value:?}"
                        )))
                    }
                };
            }
            _ => {}
        }
    }
    Ok(format)
}

/// Picks the response format from an `Accept` header; `None` when no supported type is
/// acceptable.
///
/// A missing or blank header selects JSON. Otherwise each supported type gets the quality
/// (`q`) of the most specific range that matches it (`type/subtype` over `type/*` over
/// `*/*`), so `application/json;q=0` excludes JSON even when `*/*` is listed. The type with
/// the highest non-zero quality wins. Among equal qualities the range listed first wins, and
/// for the same range (`*/*` or `application/*`) JSON wins over the others.
pub fn negotiate(accept: Option<&str>) -> Option<ResponseFormat> {
    let accept = match accept {
        Some(accept) if !accept.trim().is_empty() => accept,
        _ => return Some(ResponseFormat::Json),
    };
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .map(|range| {
            let (essence, parameters) = split_media_type(range);
            let quality = parameters
                .iter()
                .find(|(name, _)| name == "q")
                .map_or(1.0, |(_, q)| q.parse::<f32>().unwrap_or(1.0));
            (essence, quality)
        })
        .collect();

    let mut best: Option<(f32, usize, ResponseFormat)> = None;
    for format in ResponseFormat::ALL {
        let media_type = format.media_type();
        let main_type = media_type.split('/').next().unwrap_or_default();
        // Specificity: 2 for an exact match, 1 for `type/*`, 0 for `*/*`.
        let mut chosen: Option<(u8, usize, f32)> = None;
        for (position, (range, quality)) in ranges.iter().enumerate() {
            let specificity = if range == media_type {
                2
            } else if range.strip_suffix("/*") == Some(main_type) {
                1
            } else if range == "*/*" {
                0
            } else {
                continue;
            };
            if chosen.is_none_or(|(best_specificity, _, _)| specificity > best_specificity) {
                chosen = Some((specificity, position, *quality));
            }
        }
        let Some((_, position, quality)) = chosen else {
            continue;
        };
        if quality <= 0.0 {
            continue;
        }
        let better = best.is_none_or(|(best_quality, best_position, _)| {
            quality > best_quality || (quality == best_quality && position < best_position)
        });
        if better {
            best = Some((quality, position, format));
        }
    }
    best.map(|(_, _, format)| format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_with_parameters() {
        let cases = [
            ("text/csv", RequestFormat::Csv { label_size: 0 }),
            (
                "Text/CSV; charset=UTF-8",
                RequestFormat::Csv { label_size: 0 },
            ),
            (
                "text/csv;label_size=1",
                RequestFormat::Csv { label_size: 1 },
            ),
            ("application/json; charset=utf-8", RequestFormat::Json),
            ("APPLICATION/JSONLINES", RequestFormat::JsonLines),
            ("application/x-recordio-protobuf", RequestFormat::RecordIo),
            ("text/plain; charset=\"utf-8\"", RequestFormat::Text),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_content_type(Some(value)), Ok(expected), "{value}");
        }
    }

    #[test]
    fn content_types_rejected() {
        for value in [
            "application/octet-stream",
            "text/csv; label_size=2",
            "text/plain; charset=latin-1",
            "",
        ] {
            let error = parse_content_type(Some(value)).unwrap_err();
            assert!(
                error.to_string().contains("application/jsonlines"),
                "{error}"
            );
        }
        let error = parse_content_type(None).unwrap_err();
        assert!(error.to_string().contains("no Content-Type"), "{error}");
    }

    #[test]
    fn accept_negotiation() {
        let cases = [
            (None, Some(ResponseFormat::Json)),
            (Some(""), Some(ResponseFormat::Json)),
            (Some("*/*"), Some(ResponseFormat::Json)),
            (Some("application/*"), Some(ResponseFormat::Json)),
            (
                Some("application/jsonlines"),
                Some(ResponseFormat::JsonLines),
            ),
            (
                Some("application/x-recordio-protobuf"),
                Some(ResponseFormat::RecordIo),
            ),
            (
                Some("text/html, application/jsonlines, application/json"),
                Some(ResponseFormat::JsonLines),
            ),
            (
                Some("application/json;q=0.5, application/jsonlines"),
                Some(ResponseFormat::JsonLines),
            ),
            (
                Some("application/json;q=0, */*"),
                Some(ResponseFormat::JsonLines),
            ),
            (
                Some("Application/JSON; charset=utf-8"),
                Some(ResponseFormat::Json),
            ),
            (Some("text/html"), None),
            (Some("application/json;q=0"), None),
            (Some("text/*"), None),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate(accept), expected, "{accept:?}");
        }
    }
}
