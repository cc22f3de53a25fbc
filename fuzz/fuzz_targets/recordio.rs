//! RecordIO framing: `decode_records`, `RecordIoSlices` and `RecordIoReader` must agree on
//! every input, use no more memory than the input justifies, and re-encoding what they
//! decode with either writer must give the same records back.

#![no_main]

use std::borrow::Cow;
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use ntm_formats::recordio::{
    decode_records, write_record, write_split_record, RecordIoReader, RecordIoSlices,
};
use ntm_formats::FormatError;
use ntm_fuzz::Trickle;

/// Records decoded before the first error, and a description of that error.
type Outcome = (Vec<Vec<u8>>, Option<String>);

/// Describes an error for comparison between decoders.
///
/// A bad magic number is described by its position and bytes only, because the slice decoder
/// sniffs up to 64 bytes for its hint while the streaming reader has only the 8 header bytes.
fn describe(error: &FormatError) -> String {
    match error {
        FormatError::BadMagic {
            record,
            offset,
            found,
            ..
        } => format!("bad magic in record {record} at offset {offset}: {found}"),
        other => other.to_string(),
    }
}

/// Splits the items of a decoder into the records and the error that ended it, checking
/// that nothing follows an error.
fn collect(items: impl Iterator<Item = Result<Vec<u8>, FormatError>>, name: &str) -> Outcome {
    let mut records = Vec::new();
    let mut error = None;
    for item in items {
        assert!(error.is_none(), "{name}: an item follows an error");
        match item {
            Ok(record) => records.push(record),
            Err(e) => error = Some(describe(&e)),
        }
    }
    (records, error)
}

/// Asserts that two decoders returned the same records and the same error.
fn assert_same(left: &Outcome, right: &Outcome, context: &str) {
    assert_eq!(left.0, right.0, "{context}: records differ");
    assert_eq!(left.1, right.1, "{context}: errors differ");
}

fuzz_target!(|data: &[u8]| {
    let sliced = collect(
        RecordIoSlices::new(data).map(|r| r.map(Cow::into_owned)),
        "RecordIoSlices",
    );

    match decode_records(data) {
        Ok(records) => {
            assert_eq!(
                sliced.1, None,
                "decode_records succeeds where RecordIoSlices fails"
            );
            assert_eq!(records, sliced.0, "decode_records: records differ");
        }
        Err(e) => assert_eq!(
            Some(describe(&e)),
            sliced.1,
            "decode_records: errors differ"
        ),
    }

    let mut reader = RecordIoReader::new(Cursor::new(data));
    let streamed = collect(reader.by_ref(), "RecordIoReader");
    assert_same(&sliced, &streamed, "RecordIoReader over a cursor");
    assert_eq!(reader.records_read(), streamed.0.len(), "records_read");
    assert!(
        reader.next().is_none(),
        "RecordIoReader yields an item after its end"
    );

    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 11);
    let trickled = collect(
        RecordIoReader::new(Trickle::new(data, chunk)),
        "RecordIoReader",
    );
    assert_same(&sliced, &trickled, "RecordIoReader over short reads");

    // Every payload byte comes from the input: a joined record replaces each 8-byte header
    // after the first with a 4-byte magic word.
    let payload_bytes: usize = sliced.0.iter().map(Vec::len).sum();
    assert!(
        payload_bytes <= data.len(),
        "more payload bytes than input bytes"
    );

    let mut whole_parts = Vec::new();
    let mut split_parts = Vec::new();
    for record in &sliced.0 {
        write_record(&mut whole_parts, record).expect("writing to a Vec succeeds");
        write_split_record(&mut split_parts, record).expect("writing to a Vec succeeds");
    }
    assert_eq!(
        whole_parts.len() % 4,
        0,
        "written parts are not padded to 4 bytes"
    );
    let reread = decode_records(&whole_parts).expect("written records decode");
    assert_eq!(
        reread, sliced.0,
        "records written whole read back differently"
    );
    let reread = decode_records(&split_parts).expect("written split records decode");
    assert_eq!(
        reread, sliced.0,
        "records written split read back differently"
    );
});
