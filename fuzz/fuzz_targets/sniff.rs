//! The content sniffer behind channel content detection and error hints.
//!
//! `sniff` must classify every input, `ContentType::detect` must follow it, and text must
//! stay text when the sample is cut short, since channels sniff only the first bytes of a
//! file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ntm_formats::recordio::MAGIC;
use ntm_formats::sniff::{sniff, Sniffed};
use ntm_formats::ContentType;

/// Sample length the channel reader sniffs.
const SAMPLE_LEN: usize = 64;

fuzz_target!(|data: &[u8]| {
    let sniffed = sniff(data);
    assert_eq!(
        sniffed == Sniffed::Empty,
        data.is_empty(),
        "Empty iff no bytes"
    );
    if data.len() >= 4 && data[..4] == MAGIC.to_le_bytes() {
        assert_eq!(sniffed, Sniffed::RecordIo, "magic number not recognised");
    }
    assert!(!sniffed.to_string().is_empty(), "empty name");
    assert!(!sniffed.hint().is_empty(), "empty hint");

    let expected = match sniffed {
        Sniffed::RecordIo => Some(ContentType::RecordIoProtobuf),
        Sniffed::Csv | Sniffed::Text => Some(ContentType::Csv { label_size: 0 }),
        _ => None,
    };
    assert_eq!(
        ContentType::detect(data),
        expected,
        "detect disagrees with sniff"
    );

    // Cutting text anywhere, even inside a multi-byte character, leaves text.
    if matches!(sniffed, Sniffed::Csv | Sniffed::Json | Sniffed::Text) {
        for cut in 1..data.len().min(SAMPLE_LEN + 1) {
            let prefix = sniff(&data[..cut]);
            assert!(
                matches!(prefix, Sniffed::Csv | Sniffed::Json | Sniffed::Text),
                "{sniffed:?} input has a {cut}-byte prefix sniffed as {prefix:?}"
            );
        }
    }
});
