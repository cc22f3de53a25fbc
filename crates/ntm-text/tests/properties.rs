//! Property tests: vocabulary pruning, bag-of-words counts, tokens and splits
//! on random inputs.

use std::collections::{BTreeMap, BTreeSet};

use ntm_text::{
    strip_newsgroup, train_validation_split, DocFrequency, StopWords, Tokenizer, TokenizerSettings,
    VocabError, VocabularyBuilder, VocabularyLimits,
};
use proptest::prelude::*;

/// Random corpora over a small alphabet of words, so that frequencies repeat.
fn corpus() -> impl Strategy<Value = Vec<Vec<String>>> {
    let word = prop::sample::select(vec![
        "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay", "kiwi", "lark",
    ])
    .prop_map(str::to_string);
    prop::collection::vec(prop::collection::vec(word, 0..15), 0..25)
}

fn doc_frequency() -> impl Strategy<Value = DocFrequency> {
    prop_oneof![
        (1u64..12).prop_map(DocFrequency::Count),
        (0.0f64..=1.0).prop_map(DocFrequency::Fraction),
    ]
}

fn bound(value: DocFrequency, n_docs: usize) -> f64 {
    match value {
        DocFrequency::Count(count) => count as f64,
        DocFrequency::Fraction(fraction) => fraction * n_docs as f64,
    }
}

/// Document and term frequency of every word, recounted from scratch.
fn frequencies(docs: &[Vec<String>]) -> BTreeMap<String, (usize, usize)> {
    let mut stats: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for doc in docs {
        let unique: BTreeSet<&String> = doc.iter().collect();
        for word in unique {
            stats.entry(word.clone()).or_default().0 += 1;
        }
        for word in doc {
            stats.entry(word.clone()).or_default().1 += 1;
        }
    }
    stats
}

proptest! {
    #[test]
    fn vocabulary_respects_limits(
        docs in corpus(),
        min_df in doc_frequency(),
        max_df in doc_frequency(),
        max_features in prop::option::of(1usize..8),
    ) {
        let mut builder = VocabularyBuilder::new();
        for doc in &docs {
            builder.add_document(doc);
        }
        let limits = VocabularyLimits { min_df, max_df, max_features };
        let min_count = bound(min_df, docs.len());
        let max_count = bound(max_df, docs.len());
        let stats = frequencies(&docs);

        // Reference: the df filter, then the top max_features by (tf desc, word asc).
        let mut candidates: Vec<(&String, usize)> = stats
            .iter()
            .filter(|(_, &(df, _))| df as f64 >= min_count && df as f64 <= max_count)
            .map(|(word, &(_, tf))| (word, tf))
            .collect();
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if let Some(limit) = max_features {
            candidates.truncate(limit);
        }
        let mut expected: Vec<String> = candidates.iter().map(|(word, _)| (*word).clone()).collect();
        expected.sort();

        match builder.build(&limits) {
            Ok(vocabulary) => {
                prop_assert!(max_count >= min_count);
                prop_assert_eq!(vocabulary.words(), expected.as_slice());
                for word in vocabulary.words() {
                    let (df, _) = stats[word];
                    prop_assert!(df as f64 >= min_count, "{} has df {}", word, df);
                    prop_assert!(df as f64 <= max_count, "{} has df {}", word, df);
                }
                if let Some(limit) = max_features {
                    prop_assert!(vocabulary.len() <= limit);
                }
                for (id, word) in vocabulary.words().iter().enumerate() {
                    prop_assert_eq!(vocabulary.id(word), Some(id as u32));
                }
            }
            Err(VocabError::MaxDfBelowMinDf { .. }) => {
                prop_assert!(max_count < min_count);
                prop_assert!(!stats.is_empty());
            }
            Err(VocabError::Empty { .. }) => {
                prop_assert!(expected.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }

    #[test]
    fn counts_sum_to_in_vocabulary_tokens(docs in corpus(), probe in corpus()) {
        let mut builder = VocabularyBuilder::new();
        for doc in &docs {
            builder.add_document(doc);
        }
        let Ok(vocabulary) = builder.build(&VocabularyLimits::default()) else {
            return Ok(());
        };
        for tokens in probe.iter().chain(&docs) {
            let (ids, counts) = vocabulary.to_counts(tokens);
            let in_vocabulary = vocabulary.in_vocabulary_tokens(tokens);
            let total: f32 = counts.iter().sum();
            prop_assert_eq!(total as usize, in_vocabulary.len());
            prop_assert_eq!(ids.len(), counts.len());
            prop_assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
            for (id, count) in ids.iter().zip(&counts) {
                let occurrences = in_vocabulary.iter().filter(|&&other| other == *id).count();
                prop_assert_eq!(*count as usize, occurrences);
            }
        }
    }

    #[test]
    fn tokens_pass_every_filter(text in any::<String>(), min_token_len in 1usize..5) {
        let settings = TokenizerSettings { min_token_len, ..TokenizerSettings::default() };
        let stop_words: BTreeSet<String> = StopWords::English.words().into_iter().collect();
        for token in Tokenizer::new(settings).tokenize(&text) {
            prop_assert!(token.chars().all(char::is_alphabetic), "{:?}", token);
            prop_assert!(token.chars().count() >= min_token_len, "{:?}", token);
            prop_assert_eq!(&token, &token.to_lowercase());
            prop_assert!(!stop_words.contains(&token), "{:?}", token);
        }
    }

    #[test]
    fn stripping_keeps_only_input_lines(lines in prop::collection::vec("[ -~]{0,20}", 0..30)) {
        let text = lines.join("\n");
        let input_lines: BTreeSet<&str> = text.lines().collect();
        let stripped = strip_newsgroup(&text);
        for line in stripped.lines() {
            prop_assert!(input_lines.contains(line), "{:?} is not an input line", line);
        }
    }

    #[test]
    fn split_partitions_indices(n_docs in 0usize..300, fraction in 0.0f64..=1.0, seed in any::<u64>()) {
        let split = train_validation_split(n_docs, fraction, seed).expect("valid fraction");
        prop_assert_eq!(split.validation.len(), (fraction * n_docs as f64).round() as usize);
        let mut all: Vec<usize> = split.train.iter().chain(&split.validation).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..n_docs).collect::<Vec<_>>());
        prop_assert_eq!(train_validation_split(n_docs, fraction, seed).expect("valid fraction"), split);
    }
}
