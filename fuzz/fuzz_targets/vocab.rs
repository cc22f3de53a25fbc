//! `vocab.txt` parsing: `parse_vocab` must return one word per line or an encoding error
//! at the right place, and `write_vocab` must either reject the words or write a file that
//! parses to the same words.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ntm_formats::vocab::{parse_vocab, write_vocab};
use ntm_formats::FormatError;

fuzz_target!(|data: &[u8]| {
    let words = match parse_vocab(data) {
        Ok(words) => words,
        Err(FormatError::VocabEncoding { line, offset, .. }) => {
            let error = std::str::from_utf8(data).expect_err("valid UTF-8 was rejected");
            assert_eq!(
                offset,
                error.valid_up_to() as u64,
                "offset of the invalid byte"
            );
            let newlines = data[..error.valid_up_to()].iter().filter(|&&b| b == b'\n');
            assert_eq!(
                line,
                newlines.count() as u64 + 1,
                "line of the invalid byte"
            );
            return;
        }
        Err(other) => panic!("unexpected error: {other:?}"),
    };

    let text = std::str::from_utf8(data).expect("parsed input is UTF-8");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let expected_words = if text.is_empty() {
        0
    } else {
        text.matches('\n').count() + usize::from(!text.ends_with('\n'))
    };
    assert_eq!(words.len(), expected_words, "one word per line");
    for word in &words {
        assert!(!word.contains('\n'), "word {word:?} contains a line feed");
    }

    match write_vocab(Vec::new(), &words) {
        Ok(written) => {
            let reread = parse_vocab(&written).expect("a written vocabulary parses");
            assert_eq!(reread, words, "write_vocab round trip");
        }
        Err(error) => {
            let first_is_bom = words.first().is_some_and(|w| w.starts_with('\u{feff}'));
            assert!(
                first_is_bom || words.iter().any(|w| w.contains('\r')),
                "write_vocab rejected words it can write: {error}"
            );
        }
    }
});
