//! Guessing a file's format from its first bytes, for content detection and error hints.

use std::fmt;

use crate::recordio::MAGIC;

/// Format guessed from the first bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Starts with the RecordIO magic number `0xCED7230A` (bytes `0A 23 D7 CE`).
    RecordIo,
    /// Text made of numbers, commas and line breaks.
    Csv,
    /// Text that starts with `{` or `[` after optional white space.
    Json,
    /// The gzip magic bytes `1F 8B`.
    Gzip,
    /// Other UTF-8 text.
    Text,
    /// Bytes that match none of the above.
    Binary,
    /// No bytes at all.
    Empty,
}

impl fmt::Display for Sniffed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Sniffed::RecordIo => "RecordIO-protobuf",
            Sniffed::Csv => "CSV text",
            Sniffed::Json => "JSON",
            Sniffed::Gzip => "gzip-compressed data",
            Sniffed::Text => "plain text",
            Sniffed::Binary => "binary data of an unknown format",
            Sniffed::Empty => "an empty file",
        };
        f.write_str(name)
    }
}

impl Sniffed {
    /// Returns a sentence that suggests the content type or step that fits these bytes.
    pub fn hint(&self) -> String {
        match self {
            Sniffed::RecordIo => "The bytes look like RecordIO-protobuf; use content type \
                                  application/x-recordio-protobuf."
                .to_owned(),
            Sniffed::Csv => "The bytes look like CSV text; use content type text/csv.".to_owned(),
            Sniffed::Json => "The bytes look like JSON, which training channels do not accept; \
                              convert it to text/csv or application/x-recordio-protobuf."
                .to_owned(),
            Sniffed::Gzip => "The bytes look like gzip-compressed data; decompress the file \
                              before uploading it."
                .to_owned(),
            Sniffed::Text => "The bytes look like plain text, not RecordIO-protobuf.".to_owned(),
            Sniffed::Binary => "The bytes match no supported format.".to_owned(),
            Sniffed::Empty => "The file is empty.".to_owned(),
        }
    }
}

/// Guesses the format of `bytes`, the start of a file or of a record boundary.
///
/// Eight bytes are enough for RecordIO and gzip. Text is judged on all the bytes given, and
/// a multi-byte UTF-8 character cut off at the end of `bytes` still counts as text.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.is_empty() {
        return Sniffed::Empty;
    }
    if bytes.len() >= 4 && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == MAGIC {
        return Sniffed::RecordIo;
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Sniffed::Gzip;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // An error without `error_len` is a character cut off by the end of the sample.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Sniffed::Binary,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text
        .chars()
        .any(|c| c.is_control() && !c.is_ascii_whitespace())
    {
        return Sniffed::Binary;
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Sniffed::Json;
    }
    let numeric = trimmed.chars().all(|c| {
        c.is_ascii_digit()
            || matches!(
                c,
                ',' | '.' | '-' | '+' | 'e' | 'E' | ' ' | '\t' | '\r' | '\n'
            )
    });
    if numeric || trimmed.contains(',') {
        Sniffed::Csv
    } else {
        Sniffed::Text
    }
}

/// Formats up to the first eight bytes as hex pairs, for error messages.
pub(crate) fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if shown.is_empty() {
        "none".to_owned()
    } else {
        shown.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_each_format() {
        assert_eq!(
            sniff(&[0x0a, 0x23, 0xd7, 0xce, 0, 0, 0, 0]),
            Sniffed::RecordIo
        );
        assert_eq!(sniff(b"1,0,2,0\n0,1,0,1\n"), Sniffed::Csv);
        assert_eq!(sniff(b"ball,goal,team\n"), Sniffed::Csv);
        assert_eq!(sniff(b"  {\"instances\": []}"), Sniffed::Json);
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Sniffed::Gzip);
        assert_eq!(sniff(b"hello world"), Sniffed::Text);
        assert_eq!(sniff(&[0, 1, 2, 0xff]), Sniffed::Binary);
        assert_eq!(sniff(b""), Sniffed::Empty);
    }

    #[test]
    fn sniff_accepts_cut_utf8_character() {
        // "caf" followed by the first byte of the two-byte "é".
        assert_eq!(sniff(b"caf\xc3"), Sniffed::Text);
    }
}
