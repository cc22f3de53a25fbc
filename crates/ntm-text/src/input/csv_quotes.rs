//! Detection of a quoted CSV field that is never closed.
//!
//! The `csv` parser ends an open quoted field at the end of the file without
//! complaint, so one stray `"` turns every later row into text of a single
//! document. [`QuoteTracker`] reads the bytes on their way to the parser with
//! the same quoting rules: comma delimiter, `"` quotes at the start of a field,
//! `""` inside one. It records the line of a quote still open at the end.

use std::io::{self, Read};

/// Position of the parser within the current field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field, where a quote opens a quoted field.
    FieldStart,
    /// Inside a field that did not start with a quote.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: either the closing quote or
    /// the first half of `""`.
    QuoteInQuoted,
}

/// A reader that passes its bytes through unchanged and follows CSV quoting.
pub(super) struct QuoteTracker<R> {
    inner: R,
    state: State,
    /// 1-based line of the next byte.
    line: u64,
    /// Line on which the current quoted field opened.
    opened_on: u64,
    /// Set at the end of the input to the line of the quote still open, if any.
    unclosed: Option<u64>,
}

impl<R: Read> QuoteTracker<R> {
    /// Wraps `inner`.
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            state: State::FieldStart,
            line: 1,
            opened_on: 0,
            unclosed: None,
        }
    }

    /// Returns the line of a quote left open at the end of the input, once, after the input
    /// has been read to its end.
    pub(super) fn take_unclosed(&mut self) -> Option<u64> {
        self.unclosed.take()
    }

    fn observe(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state = match (self.state, byte) {
                (State::FieldStart, b'"') => {
                    self.opened_on = self.line;
                    State::Quoted
                }
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::QuoteInQuoted, b'"') => State::Quoted,
                (State::Quoted, _) => State::Quoted,
                (_, b',' | b'\n' | b'\r') => State::FieldStart,
                _ => State::Unquoted,
            };
            if byte == b'\n' {
                self.line += 1;
            }
        }
    }
}

impl<R: Read> Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if self.state == State::Quoted {
                self.unclosed = Some(self.opened_on);
            }
        } else {
            self.observe(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` to its end in chunks of `chunk` bytes and returns the
    /// line of an unclosed quote.
    fn unclosed_line(input: &str, chunk: usize) -> Option<u64> {
        let mut tracker = QuoteTracker::new(input.as_bytes());
        let mut buf = vec![0u8; chunk];
        let mut seen = Vec::new();
        loop {
            let n = tracker.read(&mut buf).expect("read from a byte slice");
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        assert_eq!(seen, input.as_bytes(), "bytes pass through unchanged");
        tracker.take_unclosed()
    }

    #[test]
    fn closed_quotes_leave_no_mark() {
        let input = "id,text\n1,\"a, \"\"b\"\"\nc\"\n2,plain\n3,\"\"\n";
        for chunk in [1, 3, 64] {
            assert_eq!(unclosed_line(input, chunk), None, "chunk {chunk}");
        }
    }

    #[test]
    fn quote_inside_unquoted_field_is_literal() {
        assert_eq!(unclosed_line("id,text\n1,a 5\" disk\n2,b\n", 4), None);
    }

    #[test]
    fn unclosed_quote_reports_its_line() {
        let input = "id,text\n1,fine\n2,\"never closed\n3,lost\n4,lost too\n";
        for chunk in [1, 5, 64] {
            assert_eq!(unclosed_line(input, chunk), Some(3), "chunk {chunk}");
        }
    }

    #[test]
    fn closing_quote_then_text_is_unquoted() {
        // The parser appends `x` to the field and reads on as unquoted text.
        assert_eq!(unclosed_line("id,text\n1,\"a\"x\n2,b\n", 64), None);
    }

    #[test]
    fn crlf_rows_are_followed() {
        assert_eq!(
            unclosed_line("id,text\r\n1,\"a\r\nb\"\r\n2,\"c\r\n", 2),
            Some(4)
        );
    }
}
