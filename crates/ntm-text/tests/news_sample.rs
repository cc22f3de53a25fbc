//! End-to-end checks on 40 real newsgroup posts (two from each of the 20
//! newsgroups of the bydate training split), stored gzip-compressed as JSON Lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ntm_text::{
    read_documents, DocFrequency, Document, SourceOptions, Tokenizer, TokenizerSettings,
    VocabularyBuilder, VocabularyLimits,
};

fn sample_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/news-sample.jsonl.gz")
}

fn sample_documents() -> Vec<Document> {
    read_documents(&sample_path(), &SourceOptions::default()).expect("read the news sample")
}

fn newsgroup_tokenizer() -> Tokenizer {
    Tokenizer::new(TokenizerSettings {
        strip_newsgroup: true,
        ..TokenizerSettings::default()
    })
}

fn is_subsequence(short: &[String], long: &[String]) -> bool {
    let mut remaining = long.iter();
    short
        .iter()
        .all(|token| remaining.any(|other| other == token))
}

#[test]
fn sample_has_two_posts_per_newsgroup() {
    let documents = sample_documents();
    assert_eq!(documents.len(), 40);
    let mut per_group: BTreeMap<&str, usize> = BTreeMap::new();
    for document in &documents {
        let (group, _) = document.id.split_once('/').expect("id is group/file");
        *per_group.entry(group).or_default() += 1;
    }
    assert_eq!(per_group.len(), 20);
    assert!(per_group.values().all(|&count| count == 2), "{per_group:?}");
}

#[test]
fn stripping_removes_headers_and_keeps_token_order() {
    let documents = sample_documents();
    let plain = Tokenizer::default();
    let stripped = newsgroup_tokenizer();

    let mut docs_with_subject = 0;
    for document in &documents {
        let all_tokens = plain.tokenize(&document.text);
        let body_tokens = stripped.tokenize(&document.text);
        assert!(
            all_tokens.contains(&"subject".to_string()),
            "{}",
            document.id
        );
        assert!(
            body_tokens.len() < all_tokens.len(),
            "{}: stripping removed nothing",
            document.id
        );
        // Whole lines are removed, so the remaining tokens keep their order.
        assert!(is_subsequence(&body_tokens, &all_tokens), "{}", document.id);
        if body_tokens.contains(&"subject".to_string()) {
            docs_with_subject += 1;
        }
    }
    assert!(
        docs_with_subject <= 2,
        "{docs_with_subject} bodies still mention subject"
    );
}

#[test]
fn vocabulary_matches_document_frequencies() {
    let documents = sample_documents();
    let tokenizer = newsgroup_tokenizer();
    let token_lists: Vec<Vec<String>> = documents
        .iter()
        .map(|document| tokenizer.tokenize(&document.text))
        .collect();

    let mut builder = VocabularyBuilder::new();
    for tokens in &token_lists {
        builder.add_document(tokens);
    }
    let limits = VocabularyLimits {
        min_df: DocFrequency::Count(2),
        max_df: DocFrequency::Fraction(0.5),
        max_features: None,
    };
    let vocabulary = builder.build(&limits).expect("build vocabulary");

    // Recount document frequencies independently from per-document word sets.
    let mut doc_freq: BTreeMap<&str, usize> = BTreeMap::new();
    for tokens in &token_lists {
        let unique: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        for word in unique {
            *doc_freq.entry(word).or_default() += 1;
        }
    }
    let expected: Vec<&str> = doc_freq
        .iter()
        .filter(|(_, &df)| (2..=20).contains(&df))
        .map(|(&word, _)| word)
        .collect();
    assert!(expected.len() > 50, "only {} words", expected.len());
    assert_eq!(vocabulary.words(), expected.as_slice());

    for tokens in &token_lists {
        let (ids, counts) = vocabulary.to_counts(tokens);
        let in_vocabulary = vocabulary.in_vocabulary_tokens(tokens);
        let total: f32 = counts.iter().sum();
        assert_eq!(total as usize, in_vocabulary.len());
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
