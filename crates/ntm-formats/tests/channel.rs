//! Channels: file listing, content types, detection, streaming and empty documents.

mod common;

use std::fs;
use std::path::Path;

use ntm_formats::channel::MAX_EMPTY_POSITIONS;
use ntm_formats::record::encode_sparse_record;
use ntm_formats::recordio::write_record;
use ntm_formats::sniff::Sniffed;
use ntm_formats::{
    list_channel_files, read_channel, ChannelReader, ContentType, DocumentPosition, FormatError,
    RowPosition,
};

fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn recordio_rows(rows: &[(&[u64], &[f32])], feature_dim: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (keys, values) in rows {
        write_record(&mut out, &encode_sparse_record(keys, values, feature_dim)).unwrap();
    }
    out
}

#[test]
fn listing_is_byte_ordered_and_skips_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "b.csv",
        "a/z.csv",
        "a.csv",
        "B.csv",
        "a/b/c.csv",
        ".hidden.csv",
        ".git/x.csv",
        "a/.tmp",
        "é.csv",
    ] {
        write(root, name, b"1\n");
    }
    let files = list_channel_files(root).unwrap();
    let relative: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .collect();
    // '.' (0x2e) sorts before '/' (0x2f), and upper case before lower case.
    assert_eq!(
        relative,
        vec!["B.csv", "a.csv", "a/b/c.csv", "a/z.csv", "b.csv", "é.csv"]
    );
}

#[test]
fn single_file_is_a_channel() {
    let path = common::data("empty_rows/train.csv");
    assert_eq!(list_channel_files(&path).unwrap(), vec![path]);
}

#[test]
fn missing_channel_is_an_io_error() {
    let err = list_channel_files(Path::new("/nonexistent/channel")).unwrap_err();
    assert!(matches!(err, FormatError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/channel"));
}

#[test]
fn empty_folder_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".keep", b"");
    let err = ChannelReader::open(dir.path(), None, 4, 10).unwrap_err();
    assert!(matches!(err, FormatError::EmptyChannel { .. }), "{err:?}");
}

#[test]
fn content_types_parse() {
    let cases = [
        ("text/csv", ContentType::Csv { label_size: 0 }),
        ("text/csv;label_size=0", ContentType::Csv { label_size: 0 }),
        ("Text/CSV; label_size=1", ContentType::Csv { label_size: 1 }),
        (
            "text/csv; charset=utf-8",
            ContentType::Csv { label_size: 0 },
        ),
        (
            "application/x-recordio-protobuf",
            ContentType::RecordIoProtobuf,
        ),
        (
            "APPLICATION/X-RECORDIO-PROTOBUF; foo=bar",
            ContentType::RecordIoProtobuf,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<ContentType>().unwrap(), expected, "{text}");
    }
    for bad in [
        "application/json",
        "text/csv;label_size=2",
        "",
        "application/octet-stream",
    ] {
        let err = bad.parse::<ContentType>().unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("application/x-recordio-protobuf"),
            "{message}"
        );
        assert!(message.contains("text/csv"), "{message}");
    }
}

#[test]
fn content_type_display_parses_back() {
    for ct in [
        ContentType::Csv { label_size: 1 },
        ContentType::RecordIoProtobuf,
    ] {
        assert_eq!(ct.to_string().parse::<ContentType>().unwrap(), ct);
    }
}

#[test]
fn content_is_detected_per_file() {
    assert_eq!(
        ContentType::detect(b"1,0,2\n"),
        Some(ContentType::Csv { label_size: 0 })
    );
    assert_eq!(
        ContentType::detect(&recordio_rows(&[(&[1], &[1.0])], 3)),
        Some(ContentType::RecordIoProtobuf)
    );
    assert_eq!(ContentType::detect(&[0x1f, 0x8b, 8]), None);

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "part-0.csv", b"1,0,0\n");
    write(
        dir.path(),
        "part-1.rec",
        &recordio_rows(&[(&[2], &[5.0])], 3),
    );
    let data = read_channel(dir.path(), None, 3).unwrap();
    assert_eq!(data.rows.n_rows(), 2);
    assert_eq!(data.rows.row(0), (&[0u32][..], &[1.0f32][..]));
    assert_eq!(data.rows.row(1), (&[2u32][..], &[5.0f32][..]));
}

#[test]
fn recordio_declared_but_csv_found() {
    let path = common::data("not_recordio/not_recordio.rec");
    let err = read_channel(&path, Some(ContentType::RecordIoProtobuf), 4).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::BadMagic {
                offset: 0,
                looks_like: Sniffed::Csv,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("not_recordio.rec"), "{message}");
    assert!(message.contains("text/csv"), "{message}");
}

#[test]
fn truncated_file_names_path_and_record() {
    let path = common::data("not_recordio/truncated.rec");
    let err = read_channel(&path, Some(ContentType::RecordIoProtobuf), 4).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("truncated.rec"), "{message}");
    assert!(message.contains("record 0"), "{message}");
    assert!(message.contains("truncated"), "{message}");
    assert!(
        message.contains("needs 100 bytes but only 10 remain"),
        "{message}"
    );
}

#[test]
fn csv_declared_but_recordio_found() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "train.rec",
        &recordio_rows(&[(&[0], &[1.0])], 2),
    );
    let err = read_channel(dir.path(), Some(ContentType::Csv { label_size: 0 }), 2).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::ContentMismatch {
                looks_like: Sniffed::RecordIo,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("train.rec"), "{message}");
    assert!(
        message.contains("application/x-recordio-protobuf"),
        "{message}"
    );
}

#[test]
fn gzip_file_is_rejected_when_detecting() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train.csv.gz", &[0x1f, 0x8b, 8, 0, 0, 0]);
    let err = read_channel(dir.path(), None, 2).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::ContentMismatch {
                looks_like: Sniffed::Gzip,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("decompress"), "{err}");
}

#[test]
fn empty_rows_are_skipped_and_counted() {
    let path = common::data("empty_rows/train.csv");
    let data = read_channel(&path, Some(ContentType::Csv { label_size: 0 }), 4).unwrap();
    assert_eq!(data.rows.n_rows(), 4);
    assert_eq!(data.empty_documents, 1);
    assert_eq!(
        data.first_empty,
        vec![DocumentPosition {
            path: path.clone(),
            row: RowPosition::Line(3)
        }]
    );
    assert_eq!(
        data.rows.row(2),
        (&[0u32, 3][..], &[1.0f32, 5.0][..]),
        "line 4 follows line 2"
    );
}

#[test]
fn all_empty_channel_is_rejected() {
    let path = common::data("empty_rows/all_empty.csv");
    let err = read_channel(&path, None, 4).unwrap_err();
    assert!(
        matches!(err, FormatError::NoDocuments { empty: 2, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("no non-empty documents"), "{message}");
    assert!(message.contains("all_empty.csv line 1"), "{message}");
}

#[test]
fn empty_channel_file_reports_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.csv");
    std::fs::write(&path, "").unwrap();
    let err = read_channel(&path, None, 4).unwrap_err();
    assert!(
        matches!(err, FormatError::NoDocuments { empty: 0, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("its files hold no rows"), "{message}");
    assert!(!message.contains("all 0 rows"), "{message}");
}

#[test]
fn empty_records_are_positioned_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(&[u64], &[f32])> =
        vec![(&[1], &[1.0]), (&[], &[]), (&[0], &[0.0]), (&[2], &[2.0])];
    write(dir.path(), "a.rec", &recordio_rows(&rows, 3));
    let data = read_channel(dir.path(), Some(ContentType::RecordIoProtobuf), 3).unwrap();
    assert_eq!(data.rows.n_rows(), 2);
    let empty: Vec<RowPosition> = data.first_empty.iter().map(|p| p.row).collect();
    assert_eq!(empty, vec![RowPosition::Record(1), RowPosition::Record(2)]);
}

#[test]
fn empty_positions_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.csv", "0,0\n".repeat(9).as_bytes());
    write(dir.path(), "b.csv", b"1,1\n");
    let data = read_channel(dir.path(), None, 2).unwrap();
    assert_eq!(data.empty_documents, 9);
    assert_eq!(data.first_empty.len(), MAX_EMPTY_POSITIONS);
}

#[test]
fn chunks_span_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.csv", b"1,0\n2,0\n3,0\n");
    write(dir.path(), "2/a.csv", b"4,0\n");
    write(dir.path(), "3.csv", b"");
    write(dir.path(), "4.csv", b"5,0\n6,0\n");
    let reader = ChannelReader::open(dir.path(), None, 2, 4).unwrap();
    assert_eq!(reader.files().len(), 4);
    let chunks: Vec<_> = reader.map(Result::unwrap).collect();
    let sizes: Vec<usize> = chunks.iter().map(|c| c.n_rows()).collect();
    assert_eq!(sizes, vec![4, 2]);
    let firsts: Vec<f32> = chunks.iter().flat_map(|c| c.values().to_vec()).collect();
    assert_eq!(firsts, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn error_in_second_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "part-0.csv", b"1,0\n");
    write(dir.path(), "part-1.csv", b"1,0\n0,-2\n");
    let err = read_channel(dir.path(), None, 2).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("part-1.csv: line 2, column 2"),
        "{message}"
    );
}
