use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("finish gzip")
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    std::fs::write(path, bytes).expect("write file");
}

fn ids_and_texts(documents: &[Document]) -> Vec<(&str, &str)> {
    documents
        .iter()
        .map(|document| (document.id.as_str(), document.text.as_str()))
        .collect()
}

#[test]
fn detect_kind_from_extension_and_folder() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let cases = [
        ("a.jsonl", SourceKind::JsonLines),
        ("a.JSON", SourceKind::JsonLines),
        ("a.ndjson.gz", SourceKind::JsonLines),
        ("a.jsonl.GZ", SourceKind::JsonLines),
        ("a.csv", SourceKind::Csv),
        ("a.csv.gz", SourceKind::Csv),
    ];
    for (name, expected) in cases {
        let path = dir.path().join(name);
        write(&path, b"");
        assert_eq!(detect_source_kind(&path).expect(name), expected, "{name}");
    }
    assert_eq!(
        detect_source_kind(dir.path()).expect("folder"),
        SourceKind::TextFolder
    );

    for name in ["a.txt", "a.gz", "jsonl"] {
        let path = dir.path().join(name);
        write(&path, b"");
        let err = detect_source_kind(&path).expect_err(name);
        assert!(
            matches!(err, InputError::UnknownSourceKind { .. }),
            "{name}: {err:?}"
        );
    }
    let err = detect_source_kind(&dir.path().join("missing.jsonl")).expect_err("missing");
    assert!(matches!(err, InputError::Io { .. }), "{err:?}");
}

#[test]
fn override_kind_skips_detection() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.txt");
    write(&path, b"{\"text\": \"hello\"}\n");
    let options = SourceOptions {
        kind: Some(SourceKind::JsonLines),
        ..SourceOptions::default()
    };
    let documents = read_documents(&path, &options).expect("read");
    assert_eq!(ids_and_texts(&documents), vec![("1", "hello")]);
    assert_eq!(
        resolve_source_kind(&path, Some(SourceKind::Csv)).expect("override"),
        SourceKind::Csv
    );
}

#[test]
fn source_kind_names_parse_and_display() {
    for name in SourceKind::NAMES {
        let kind: SourceKind = name.parse().expect(name);
        assert_eq!(kind.to_string(), name);
        let json = serde_json::to_string(&kind).expect("serialise kind");
        assert_eq!(json, format!("\"{name}\""));
    }
    assert_eq!("NDJSON".parse::<SourceKind>(), Ok(SourceKind::JsonLines));
    let err = "xml".parse::<SourceKind>().expect_err("xml");
    assert_eq!(err.name, "xml");
}

#[test]
fn jsonl_uses_id_field_or_line_number() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.jsonl");
    let content = concat!(
        "{\"id\": \"sci.space/1\", \"text\": \"orbit\", \"label\": \"x\"}\n",
        "\n",
        "{\"text\": \"no id here\"}\n",
        "{\"id\": 42, \"text\": \"numeric id\"}\r\n",
        "{\"text\": \"last line without newline\"}"
    );
    write(&path, content.as_bytes());
    let documents = read_documents(&path, &SourceOptions::default()).expect("read");
    assert_eq!(
        ids_and_texts(&documents),
        vec![
            ("sci.space/1", "orbit"),
            ("3", "no id here"),
            ("42", "numeric id"),
            ("5", "last line without newline"),
        ]
    );
}

#[test]
fn jsonl_gz_reads_concatenated_members() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.jsonl.gz");
    let mut bytes = gzip(b"{\"id\": \"a\", \"body\": \"first\"}\n");
    bytes.extend(gzip(b"{\"id\": \"b\", \"body\": \"second\"}\n"));
    write(&path, &bytes);
    let options = SourceOptions {
        text_field: "body".to_string(),
        ..SourceOptions::default()
    };
    let documents = read_documents(&path, &options).expect("read");
    assert_eq!(
        ids_and_texts(&documents),
        vec![("a", "first"), ("b", "second")]
    );
}

#[test]
fn jsonl_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("bad.jsonl");
    let good = "{\"text\": \"fine\"}\n";
    let cases: [(&str, &str); 6] = [
        ("{\"text\": \"unterminated}\n", "invalid JSON"),
        ("[1, 2]\n", "expected a JSON object, found an array"),
        (
            "{\"title\": \"t\", \"body\": \"x\"}\n",
            "missing text field \"text\"; the object has the fields \"body\", \"title\"; \
             choose the field with --text-field",
        ),
        (
            "{}\n",
            "missing text field \"text\"; the object has no fields",
        ),
        (
            "{\"text\": 7}\n",
            "field \"text\" must be a string, found a number",
        ),
        (
            "{\"text\": \"x\", \"id\": true}\n",
            "field \"id\" must be a string or a number, found a boolean",
        ),
    ];
    for (bad_line, message) in cases {
        write(&path, format!("{good}{good}{bad_line}{good}").as_bytes());
        let mut documents = open_documents(&path, &SourceOptions::default()).expect("open");
        assert!(documents.next().expect("first").is_ok());
        assert!(documents.next().expect("second").is_ok());
        let err = documents.next().expect("third").expect_err(bad_line);
        let text = err.to_string();
        assert!(text.contains("bad.jsonl, line 3:"), "{text}");
        assert!(text.contains(message), "{text}");
        assert!(
            documents.next().is_none(),
            "iteration must stop after an error"
        );
    }
}

#[test]
fn corrupt_gzip_is_an_io_error() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.jsonl.gz");
    let mut bytes = gzip(b"{\"text\": \"a\"}\n");
    // Drop the trailer's size field, so the stream ends early.
    bytes.truncate(bytes.len() - 4);
    write(&path, &bytes);
    let result = read_documents(&path, &SourceOptions::default());
    let err = result.expect_err("corrupt gzip");
    assert!(matches!(err, InputError::Io { .. }), "{err:?}");
}

#[test]
fn folder_reads_files_in_path_order_skipping_hidden() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let root = dir.path();
    write(&root.join("b.txt"), b"bee");
    write(&root.join("a/z.txt"), b"zed");
    write(&root.join("a/b/c.txt"), b"sea");
    write(&root.join("a-file"), b"dash");
    write(&root.join("c.txt.gz"), &gzip(b"compressed"));
    write(&root.join(".hidden"), b"secret");
    write(&root.join(".git/config"), b"config");
    write(&root.join("a/.DS_Store"), b"junk");

    let documents = read_documents(root, &SourceOptions::default()).expect("read");
    assert_eq!(
        ids_and_texts(&documents),
        vec![
            ("a/b/c.txt", "sea"),
            ("a/z.txt", "zed"),
            ("a-file", "dash"),
            ("b.txt", "bee"),
            ("c.txt.gz", "compressed"),
        ]
    );
}

#[test]
fn folder_decodes_invalid_utf8_lossily() {
    let dir = tempfile::tempdir().expect("temporary folder");
    write(&dir.path().join("latin1.txt"), b"caf\xe9 au lait");
    write(&dir.path().join("more.txt"), b"na\xefve");
    let documents = read_documents(dir.path(), &SourceOptions::default()).expect("read");
    assert_eq!(
        ids_and_texts(&documents),
        vec![
            ("latin1.txt", "caf\u{fffd} au lait"),
            ("more.txt", "na\u{fffd}ve")
        ]
    );
}

#[test]
fn folder_kind_on_file_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.jsonl");
    write(&path, b"");
    let options = SourceOptions {
        kind: Some(SourceKind::TextFolder),
        ..SourceOptions::default()
    };
    let err = read_documents(&path, &options).expect_err("file is not a folder");
    assert!(matches!(err, InputError::NotAFolder { .. }), "{err:?}");
}

#[test]
fn csv_reads_text_column_with_quotes() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.csv");
    let content = "id,label,text\nr1,pos,\"Great film, \"\"really\"\"\nwatch it\"\nr2,neg,dull\n";
    write(&path, content.as_bytes());
    let documents = read_documents(&path, &SourceOptions::default()).expect("read");
    assert_eq!(
        ids_and_texts(&documents),
        vec![("r1", "Great film, \"really\"\nwatch it"), ("r2", "dull")]
    );
}

#[test]
fn csv_without_id_uses_line_numbers() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.csv.gz");
    let content = "review,stars\n\"two\nlines\",5\none line,3\n";
    write(&path, &gzip(content.as_bytes()));
    let options = SourceOptions {
        text_field: "review".to_string(),
        ..SourceOptions::default()
    };
    let documents = read_documents(&path, &options).expect("read");
    assert_eq!(
        ids_and_texts(&documents),
        vec![("2", "two\nlines"), ("4", "one line")]
    );
}

#[test]
fn csv_missing_column_lists_header() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.csv");
    write(&path, b"id,body\n1,hello\n");
    let err = read_documents(&path, &SourceOptions::default()).expect_err("no text column");
    match &err {
        InputError::MissingColumn {
            column, available, ..
        } => {
            assert_eq!(column, "text");
            assert_eq!(available, &vec!["id".to_string(), "body".to_string()]);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("docs.csv"), "{err}");
}

#[test]
fn csv_ragged_record_is_an_error() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.csv");
    write(&path, b"id,text\n1,hello\n2\n");
    let mut documents = open_documents(&path, &SourceOptions::default()).expect("open");
    assert!(documents.next().expect("first").is_ok());
    let err = documents
        .next()
        .expect("second")
        .expect_err("ragged record");
    assert!(matches!(err, InputError::Csv { .. }), "{err:?}");
    // The position comes from the CSV parser, the error's source.
    let source = std::error::Error::source(&err)
        .expect("a source")
        .to_string();
    assert!(source.contains("line: 3"), "{source}");
}

#[test]
fn jsonl_null_id_falls_back_to_line() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.jsonl");
    write(
        &path,
        b"{\"text\": \"a\", \"id\": \"first\"}\n{\"text\": \"b\", \"id\": null}\n",
    );
    let documents = read_documents(&path, &SourceOptions::default()).expect("read");
    assert_eq!(documents[0].id, "first");
    assert_eq!(documents[1].id, "2");
}

#[test]
fn gzip_without_gz_name_is_decompressed() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.jsonl");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(b"{\"text\": \"hidden gzip\"}\n")
        .expect("compress");
    write(&path, &encoder.finish().expect("finish"));
    let documents = read_documents(&path, &SourceOptions::default()).expect("read");
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].text, "hidden gzip");
}

#[test]
fn csv_unclosed_quote_names_its_line() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.csv");
    write(
        &path,
        b"id,text\n1,fine\n2,\"never closed\n3,would be lost\n",
    );
    let results: Vec<_> = open_documents(&path, &SourceOptions::default())
        .expect("open")
        .collect();
    let last = results.last().expect("at least one result");
    match last {
        Err(InputError::UnclosedQuote { line, .. }) => assert_eq!(*line, 3),
        other => panic!("expected an unclosed-quote error, got {other:?}"),
    }
    let message = last.as_ref().expect_err("an error").to_string();
    assert!(message.contains("docs.csv, line 3"), "{message}");
}

#[test]
fn csv_gzip_unclosed_quote_is_an_error() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("docs.csv.gz");
    write(&path, &gzip(b"text\n\"open\nnext row\n"));
    let err = read_documents(&path, &SourceOptions::default()).expect_err("unclosed quote");
    assert!(
        matches!(err, InputError::UnclosedQuote { line: 2, .. }),
        "{err:?}"
    );
}
