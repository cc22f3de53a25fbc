//! RecordIO framing: round trips, split records, padding and damaged input.

mod common;

use std::io::Cursor;

use ntm_formats::recordio::{
    decode_records, write_record, write_split_record, RecordIoReader, RecordIoWriter, MAGIC,
};
use ntm_formats::sniff::Sniffed;
use ntm_formats::FormatError;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Payloads that contain the magic word at aligned and unaligned offsets, or are empty.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12),
        Just(MAGIC.to_le_bytes().to_vec()),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

fn stream_all(bytes: &[u8]) -> Result<Vec<Vec<u8>>, FormatError> {
    RecordIoReader::new(Cursor::new(bytes)).collect()
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(7),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn whole_records_round_trip(payloads in prop::collection::vec(payload(), 0..8)) {
        let mut file = Vec::new();
        for p in &payloads {
            write_record(&mut file, p).unwrap();
        }
        prop_assert_eq!(file.len() % 4, 0);
        prop_assert_eq!(&decode_records(&file).unwrap(), &payloads);
        prop_assert_eq!(&stream_all(&file).unwrap(), &payloads);
    }

    #[test]
    fn split_records_round_trip(payloads in prop::collection::vec(payload(), 0..8)) {
        let mut file = Vec::new();
        for p in &payloads {
            write_split_record(&mut file, p).unwrap();
        }
        prop_assert_eq!(file.len() % 4, 0);
        prop_assert_eq!(&decode_records(&file).unwrap(), &payloads);
        prop_assert_eq!(&stream_all(&file).unwrap(), &payloads);
    }

    #[test]
    fn every_cut_is_reported_not_panicking(payloads in prop::collection::vec(payload(), 1..4), cut in 0usize..64) {
        let mut file = Vec::new();
        for p in &payloads {
            write_split_record(&mut file, p).unwrap();
        }
        let end = file.len().saturating_sub(1 + cut % file.len());
        let cut_file = &file[..end];
        // A cut at a record boundary or inside the final padding leaves valid records, which
        // must be a prefix of the input. Any other cut is an error, never a panic.
        let pure = decode_records(cut_file);
        let streamed = stream_all(cut_file);
        prop_assert_eq!(pure.is_ok(), streamed.is_ok());
        if let (Ok(records), Ok(streamed)) = (pure, streamed) {
            prop_assert_eq!(&records, &streamed);
            prop_assert!(records.len() <= payloads.len());
            prop_assert_eq!(&records[..], &payloads[..records.len()]);
        }
    }
}

#[test]
fn empty_payload_takes_one_header() {
    let mut file = Vec::new();
    write_record(&mut file, b"").unwrap();
    write_record(&mut file, b"x").unwrap();
    assert_eq!(file.len(), 8 + 8 + 4);
    assert_eq!(
        decode_records(&file).unwrap(),
        vec![b"".to_vec(), b"x".to_vec()]
    );
}

#[test]
fn padding_brings_each_record_to_four_bytes() {
    for len in 0..9usize {
        let mut file = Vec::new();
        write_record(&mut file, &vec![0xab; len]).unwrap();
        assert_eq!(
            file.len(),
            8 + len.div_ceil(4) * 4,
            "payload of {len} bytes"
        );
        assert!(
            file[8 + len..].iter().all(|&b| b == 0),
            "padding of {len} bytes is zero"
        );
    }
}

#[test]
fn missing_final_padding_is_accepted() {
    let mut file = Vec::new();
    write_record(&mut file, b"abcde").unwrap();
    file.truncate(13);
    assert_eq!(decode_records(&file).unwrap(), vec![b"abcde".to_vec()]);
    assert_eq!(stream_all(&file).unwrap(), vec![b"abcde".to_vec()]);
}

#[test]
fn writer_counts_records() {
    let mut writer = RecordIoWriter::new(Vec::new());
    writer.write(b"one").unwrap();
    writer.write(b"two").unwrap();
    assert_eq!(writer.records_written(), 2);
    let file = writer.into_inner().unwrap();
    assert_eq!(
        decode_records(&file).unwrap(),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
}

#[test]
fn csv_text_is_not_recordio() {
    let bytes = std::fs::read(common::data("not_recordio/not_recordio.rec")).unwrap();
    for err in [
        decode_records(&bytes).unwrap_err(),
        stream_all(&bytes).unwrap_err(),
    ] {
        let FormatError::BadMagic {
            record,
            offset,
            looks_like,
            ..
        } = &err
        else {
            panic!("expected BadMagic, got {err:?}");
        };
        assert_eq!((*record, *offset), (0, 0));
        assert_eq!(*looks_like, Sniffed::Csv);
        let message = err.to_string();
        assert!(message.contains("0xced7230a"), "{message}");
        assert!(message.contains("byte offset 0"), "{message}");
        assert!(message.contains("text/csv"), "{message}");
    }
}

#[test]
fn gzip_and_json_get_their_own_hint() {
    let gzip = decode_records(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0])
        .unwrap_err()
        .to_string();
    assert!(gzip.contains("gzip"), "{gzip}");
    let json = decode_records(br#"{"instances": []}"#)
        .unwrap_err()
        .to_string();
    assert!(json.contains("JSON"), "{json}");
}

#[test]
fn bad_magic_after_first_record_names_its_offset() {
    let mut file = Vec::new();
    write_record(&mut file, b"abcd").unwrap();
    file.extend_from_slice(b"1,2,3\n");
    let err = decode_records(&file).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::BadMagic {
                record: 1,
                offset: 12,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_payload_names_record_and_sizes() {
    let bytes = std::fs::read(common::data("not_recordio/truncated.rec")).unwrap();
    for err in [
        decode_records(&bytes).unwrap_err(),
        stream_all(&bytes).unwrap_err(),
    ] {
        let FormatError::Truncated {
            record,
            offset,
            expected,
            available,
            ..
        } = &err
        else {
            panic!("expected Truncated, got {err:?}");
        };
        assert_eq!((*record, *offset, *expected, *available), (0, 0, 100, 10));
        let message = err.to_string();
        assert!(message.contains("record 0"), "{message}");
        assert!(message.contains("truncated"), "{message}");
    }
}

#[test]
fn truncated_header_is_reported() {
    let mut file = Vec::new();
    write_record(&mut file, b"abcd").unwrap();
    file.extend_from_slice(&MAGIC.to_le_bytes()[..3]);
    let err = decode_records(&file).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::Truncated {
                record: 1,
                offset: 12,
                part: "header",
                expected: 8,
                available: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

fn part(cflag: u32, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_le_bytes().to_vec();
    out.extend_from_slice(&((cflag << 29) | body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

#[test]
fn out_of_order_flags_are_rejected() {
    let cases: Vec<(Vec<u8>, u32)> = vec![
        (part(3, b"tail"), 3),
        (part(2, b"mid!"), 2),
        ([part(1, b"head"), part(0, b"whole")].concat(), 0),
        ([part(1, b"head"), part(1, b"head")].concat(), 1),
        (part(5, b"oops"), 5),
    ];
    for (file, flag) in cases {
        for err in [
            decode_records(&file).unwrap_err(),
            stream_all(&file).unwrap_err(),
        ] {
            let FormatError::BadContinuation { cflag, .. } = err else {
                panic!("flag {flag}: expected BadContinuation, got {err:?}");
            };
            assert_eq!(cflag, flag);
        }
    }
}

#[test]
fn unfinished_split_record_is_rejected() {
    let file = [part(1, b"head"), part(2, b"mid!")].concat();
    let err = decode_records(&file).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::BadContinuation {
                record: 0,
                offset: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(stream_all(&file).is_err());
}

#[test]
fn split_parts_rejoin_with_magic() {
    let file = [part(1, b"ab"), part(2, b""), part(3, b"cd"), part(0, b"z")].concat();
    let magic = MAGIC.to_le_bytes();
    let joined = [b"ab".as_slice(), &magic, &magic, b"cd"].concat();
    assert_eq!(
        decode_records(&file).unwrap(),
        vec![joined.clone(), b"z".to_vec()]
    );
    assert_eq!(stream_all(&file).unwrap(), vec![joined, b"z".to_vec()]);
}
