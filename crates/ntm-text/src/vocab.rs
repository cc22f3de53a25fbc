//! Vocabulary building with scikit-learn `CountVectorizer` pruning rules, and
//! the [`Vocabulary`] that maps tokens to word ids.
//!
//! [`VocabularyBuilder::build`] follows `CountVectorizer.fit` (scikit-learn 1.x):
//!
//! 1. Counts, for every word, its document frequency `df` (the number of
//!    documents that contain it) and its term frequency `tf` (its total count
//!    over all documents).
//! 2. Converts `min_df` and `max_df` to document counts: an absolute count is
//!    used as is, a fraction `f` becomes `f * n_docs` (a real number, not
//!    rounded). Fails when the `max_df` count is below the `min_df` count.
//! 3. Removes words with `df < min_doc_count` or `df > max_doc_count`.
//! 4. With `max_features = Some(k)`, keeps the `k` words with the largest `tf`;
//!    ties are broken by the byte order of the word, smaller first.
//! 5. Sorts the remaining words by byte order and gives them ids `0..len`.
//!    Fails when no word remains.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A document-frequency bound: an absolute number of documents or a fraction
/// of all documents.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocFrequency {
    /// An absolute number of documents; must be at least 1.
    Count(u64),
    /// A fraction of the number of documents; must be in `[0, 1]`.
    Fraction(f64),
}

impl DocFrequency {
    /// Checks the allowed range: a count of at least 1 or a finite fraction in `[0, 1]`.
    ///
    /// # Errors
    /// [`VocabError::InvalidDocFrequency`] naming `parameter` and the value.
    pub fn validate(self, parameter: &'static str) -> Result<Self, VocabError> {
        let valid = match self {
            Self::Count(count) => count >= 1,
            Self::Fraction(fraction) => (0.0..=1.0).contains(&fraction),
        };
        if valid {
            Ok(self)
        } else {
            Err(VocabError::InvalidDocFrequency {
                parameter,
                value: self,
            })
        }
    }

    /// Converts the bound to a number of documents in a corpus of `n_docs` documents.
    pub fn to_doc_count(self, n_docs: usize) -> f64 {
        match self {
            Self::Count(count) => count as f64,
            Self::Fraction(fraction) => fraction * n_docs as f64,
        }
    }
}

impl fmt::Display for DocFrequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(count) => write!(f, "{count}"),
            Self::Fraction(fraction) => write!(f, "{fraction:?}"),
        }
    }
}

/// Failure to parse a [`DocFrequency`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid document frequency {text:?}: expected an integer count of at least 1 \
     (such as 20) or a fraction in [0, 1] written with a decimal point (such as 0.5)"
)]
pub struct ParseDocFrequencyError {
    /// The text that failed to parse.
    pub text: String,
}

impl FromStr for DocFrequency {
    type Err = ParseDocFrequencyError;

    /// Parses `"20"` as a count and `"0.5"`, `"1.0"` or `"5e-1"` as a fraction,
    /// as `CountVectorizer` distinguishes `int` from `float`; then checks the range.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let error = || ParseDocFrequencyError {
            text: text.to_string(),
        };
        let value = if trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
            Self::Count(trimmed.parse().map_err(|_| error())?)
        } else {
            Self::Fraction(trimmed.parse().map_err(|_| error())?)
        };
        value.validate("document frequency").map_err(|_| error())
    }
}

/// Pruning parameters of [`VocabularyBuilder::build`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VocabularyLimits {
    /// Words in fewer documents are removed. Default `Count(1)` (keep all).
    pub min_df: DocFrequency,
    /// Words in more documents are removed. Default `Fraction(1.0)` (keep all).
    pub max_df: DocFrequency,
    /// When set, only this many words with the largest corpus counts are kept.
    pub max_features: Option<usize>,
}

impl Default for VocabularyLimits {
    fn default() -> Self {
        Self {
            min_df: DocFrequency::Count(1),
            max_df: DocFrequency::Fraction(1.0),
            max_features: None,
        }
    }
}

/// Errors of vocabulary building and loading.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VocabError {
    /// A `min_df` or `max_df` value outside its allowed range.
    #[error(
        "invalid {parameter} {value}: use a document count of at least 1 or a fraction in [0, 1]"
    )]
    InvalidDocFrequency {
        /// `min_df` or `max_df`.
        parameter: &'static str,
        /// The rejected value.
        value: DocFrequency,
    },
    /// `max_features` of zero.
    #[error("invalid max_features 0: use at least 1, or no limit")]
    ZeroMaxFeatures,
    /// The `max_df` bound allows fewer documents than the `min_df` bound.
    #[error(
        "max_df {max_df} allows at most {max_doc_count} of {n_docs} documents, \
         fewer than the {min_doc_count} documents that min_df {min_df} requires"
    )]
    MaxDfBelowMinDf {
        /// The `min_df` parameter.
        min_df: DocFrequency,
        /// The `max_df` parameter.
        max_df: DocFrequency,
        /// `min_df` in documents.
        min_doc_count: f64,
        /// `max_df` in documents.
        max_doc_count: f64,
        /// Number of documents counted.
        n_docs: usize,
    },
    /// No word is left after pruning.
    #[error(
        "the vocabulary is empty: of {n_words} distinct words in {n_docs} documents, none \
         appears in at least {min_doc_count} and at most {max_doc_count} documents; \
         lower min_df or raise max_df"
    )]
    Empty {
        /// Distinct words before pruning.
        n_words: usize,
        /// Number of documents counted.
        n_docs: usize,
        /// `min_df` in documents.
        min_doc_count: f64,
        /// `max_df` in documents.
        max_doc_count: f64,
    },
    /// A word that appears twice in a list given to [`Vocabulary::from_words`].
    #[error("duplicate word {word:?} at ids {first} and {second}")]
    DuplicateWord {
        /// The repeated word.
        word: String,
        /// Id of its first occurrence.
        first: u32,
        /// Id of its second occurrence.
        second: u32,
    },
    /// More words than `u32` ids can address.
    #[error("{n_words} words do not fit in 32-bit word ids")]
    TooManyWords {
        /// The number of words given.
        n_words: usize,
    },
}

/// Counts of one word over the documents added so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct WordStats {
    /// Number of documents that contain the word.
    doc_freq: u64,
    /// Total count of the word over all documents.
    term_freq: u64,
    /// Index of the last document that contained the word, so that repeats
    /// inside one document raise `doc_freq` once.
    last_doc: usize,
}

/// Accumulates word statistics document by document, then builds a [`Vocabulary`].
#[derive(Debug, Clone, Default)]
pub struct VocabularyBuilder {
    stats: HashMap<String, WordStats>,
    n_docs: usize,
}

impl VocabularyBuilder {
    /// Creates a builder that has seen no document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the tokens of one document (an empty document still counts
    /// towards the number of documents).
    pub fn add_document<S: AsRef<str>>(&mut self, tokens: &[S]) {
        let doc_index = self.n_docs;
        for token in tokens {
            let token = token.as_ref();
            match self.stats.get_mut(token) {
                Some(stats) => {
                    stats.term_freq += 1;
                    if stats.last_doc != doc_index {
                        stats.doc_freq += 1;
                        stats.last_doc = doc_index;
                    }
                }
                None => {
                    let stats = WordStats {
                        doc_freq: 1,
                        term_freq: 1,
                        last_doc: doc_index,
                    };
                    self.stats.insert(token.to_string(), stats);
                }
            }
        }
        self.n_docs += 1;
    }

    /// Number of documents added.
    pub fn n_docs(&self) -> usize {
        self.n_docs
    }

    /// Number of distinct words seen.
    pub fn n_words(&self) -> usize {
        self.stats.len()
    }

    /// Document frequency of `word`: how many added documents contain it.
    pub fn doc_freq(&self, word: &str) -> u64 {
        self.stats.get(word).map_or(0, |stats| stats.doc_freq)
    }

    /// Term frequency of `word`: its total count over the added documents.
    pub fn term_freq(&self, word: &str) -> u64 {
        self.stats.get(word).map_or(0, |stats| stats.term_freq)
    }

    /// Builds the pruned vocabulary (rules in the module docs).
    ///
    /// # Errors
    /// [`VocabError::InvalidDocFrequency`] or [`VocabError::ZeroMaxFeatures`]
    /// for out-of-range limits, [`VocabError::MaxDfBelowMinDf`] when the
    /// bounds leave no admissible document frequency, and
    /// [`VocabError::Empty`] when no word survives.
    pub fn build(&self, limits: &VocabularyLimits) -> Result<Vocabulary, VocabError> {
        // 1. Check the limits and convert them to document counts.
        let min_df = limits.min_df.validate("min_df")?;
        let max_df = limits.max_df.validate("max_df")?;
        if limits.max_features == Some(0) {
            return Err(VocabError::ZeroMaxFeatures);
        }
        let min_doc_count = min_df.to_doc_count(self.n_docs);
        let max_doc_count = max_df.to_doc_count(self.n_docs);
        if self.stats.is_empty() {
            return Err(VocabError::Empty {
                n_words: 0,
                n_docs: self.n_docs,
                min_doc_count,
                max_doc_count,
            });
        }
        if max_doc_count < min_doc_count {
            return Err(VocabError::MaxDfBelowMinDf {
                min_df,
                max_df,
                min_doc_count,
                max_doc_count,
                n_docs: self.n_docs,
            });
        }

        // 2. Remove words outside the document-frequency bounds.
        let mut surviving: Vec<(&str, u64)> = self
            .stats
            .iter()
            .filter(|(_, stats)| {
                let df = stats.doc_freq as f64;
                df >= min_doc_count && df <= max_doc_count
            })
            .map(|(word, stats)| (word.as_str(), stats.term_freq))
            .collect();

        // 3. Keep the most frequent words: by corpus count, descending, then by word.
        if let Some(max_features) = limits.max_features {
            if surviving.len() > max_features {
                surviving.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                surviving.truncate(max_features);
            }
        }

        if surviving.is_empty() {
            return Err(VocabError::Empty {
                n_words: self.stats.len(),
                n_docs: self.n_docs,
                min_doc_count,
                max_doc_count,
            });
        }

        // 4. Assign ids in byte order of the words.
        let mut words: Vec<String> = surviving
            .into_iter()
            .map(|(word, _)| word.to_string())
            .collect();
        words.sort_unstable();
        tracing::debug!(
            n_docs = self.n_docs,
            n_words_seen = self.stats.len(),
            vocabulary_size = words.len(),
            "built vocabulary"
        );
        Vocabulary::from_words(words)
    }
}

/// A fixed list of words with ids `0..len`, and the lookup from word to id.
///
/// Serialised as the plain list of words in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    /// Creates a vocabulary whose word `i` gets id `i`.
    ///
    /// # Errors
    /// [`VocabError::DuplicateWord`] when a word repeats, and
    /// [`VocabError::TooManyWords`] past `u32::MAX` words.
    pub fn from_words(words: Vec<String>) -> Result<Self, VocabError> {
        if u32::try_from(words.len()).is_err() {
            return Err(VocabError::TooManyWords {
                n_words: words.len(),
            });
        }
        let mut ids = HashMap::with_capacity(words.len());
        for (id, word) in (0u32..).zip(&words) {
            if let Some(first) = ids.insert(word.clone(), id) {
                return Err(VocabError::DuplicateWord {
                    word: word.clone(),
                    first,
                    second: id,
                });
            }
        }
        Ok(Self { words, ids })
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Returns whether the vocabulary has no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Returns the words in id order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Returns the id of `word`, if it is in the vocabulary.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied()
    }

    /// Returns the word with id `id`, if the id is in range.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// Returns the ids of the in-vocabulary tokens in document order,
    /// skipping tokens that are not in the vocabulary.
    pub fn in_vocabulary_tokens<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<u32> {
        tokens
            .iter()
            .filter_map(|token| self.id(token.as_ref()))
            .collect()
    }

    /// Converts tokens to a bag of words: strictly increasing word ids and the
    /// count of each, ready for a sparse row. Tokens outside the vocabulary
    /// are skipped, so the counts sum to the number of in-vocabulary tokens.
    pub fn to_counts<S: AsRef<str>>(&self, tokens: &[S]) -> (Vec<u32>, Vec<f32>) {
        let mut ids = self.in_vocabulary_tokens(tokens);
        ids.sort_unstable();

        let mut unique_ids: Vec<u32> = Vec::new();
        let mut counts: Vec<f32> = Vec::new();
        for id in ids {
            match (unique_ids.last(), counts.last_mut()) {
                (Some(&last), Some(count)) if last == id => *count += 1.0,
                _ => {
                    unique_ids.push(id);
                    counts.push(1.0);
                }
            }
        }
        (unique_ids, counts)
    }
}

impl TryFrom<Vec<String>> for Vocabulary {
    type Error = VocabError;

    fn try_from(words: Vec<String>) -> Result<Self, Self::Error> {
        Self::from_words(words)
    }
}

impl From<Vocabulary> for Vec<String> {
    fn from(vocabulary: Vocabulary) -> Self {
        vocabulary.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder_from(docs: &[&str]) -> VocabularyBuilder {
        let mut builder = VocabularyBuilder::new();
        for doc in docs {
            let tokens: Vec<&str> = doc.split_whitespace().collect();
            builder.add_document(&tokens);
        }
        builder
    }

    fn limits(
        min_df: DocFrequency,
        max_df: DocFrequency,
        max_features: Option<usize>,
    ) -> VocabularyLimits {
        VocabularyLimits {
            min_df,
            max_df,
            max_features,
        }
    }

    const DOCS: [&str; 4] = [
        "apple banana apple cherry",
        "banana cherry date",
        "cherry date egg egg egg",
        "cherry fig",
    ];

    #[test]
    fn builder_counts_doc_and_term_frequency() {
        let builder = builder_from(&DOCS);
        assert_eq!(builder.n_docs(), 4);
        assert_eq!(builder.n_words(), 6);
        assert_eq!(builder.doc_freq("apple"), 1);
        assert_eq!(builder.term_freq("apple"), 2);
        assert_eq!(builder.doc_freq("cherry"), 4);
        assert_eq!(builder.term_freq("egg"), 3);
        assert_eq!(builder.doc_freq("egg"), 1);
        assert_eq!(builder.doc_freq("absent"), 0);
    }

    #[test]
    fn default_limits_keep_every_word_sorted() {
        let vocabulary = builder_from(&DOCS)
            .build(&VocabularyLimits::default())
            .expect("build");
        assert_eq!(
            vocabulary.words(),
            ["apple", "banana", "cherry", "date", "egg", "fig"]
        );
        assert_eq!(vocabulary.id("cherry"), Some(2));
        assert_eq!(vocabulary.word(5), Some("fig"));
        assert_eq!(vocabulary.word(6), None);
    }

    #[test]
    fn count_bounds_are_inclusive() {
        // df: apple 1, banana 2, cherry 4, date 2, egg 1, fig 1.
        let vocabulary = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(2),
                DocFrequency::Count(2),
                None,
            ))
            .expect("build");
        assert_eq!(vocabulary.words(), ["banana", "date"]);
    }

    #[test]
    fn fraction_bounds_scale_by_document_count() {
        // max_df 0.75 of 4 documents is 3, which drops cherry (df 4);
        // min_df 0.3 of 4 is 1.2, which drops the words with df 1.
        let vocabulary = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Fraction(0.3),
                DocFrequency::Fraction(0.75),
                None,
            ))
            .expect("build");
        assert_eq!(vocabulary.words(), ["banana", "date"]);
    }

    #[test]
    fn max_df_fraction_is_not_rounded() {
        // 0.5 of 4 documents is exactly 2: df 2 stays, df 4 goes.
        let vocabulary = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(1),
                DocFrequency::Fraction(0.5),
                None,
            ))
            .expect("build");
        assert_eq!(
            vocabulary.words(),
            ["apple", "banana", "date", "egg", "fig"]
        );
        // 0.49 of 4 is 1.96, so df 2 goes too.
        let vocabulary = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(1),
                DocFrequency::Fraction(0.49),
                None,
            ))
            .expect("build");
        assert_eq!(vocabulary.words(), ["apple", "egg", "fig"]);
    }

    #[test]
    fn max_features_breaks_ties_by_byte_order() {
        // tf: apple 2, banana 2, cherry 4, date 2, egg 3, fig 1.
        let vocabulary = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(1),
                DocFrequency::Fraction(1.0),
                Some(3),
            ))
            .expect("build");
        assert_eq!(vocabulary.words(), ["apple", "cherry", "egg"]);
        let vocabulary = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(1),
                DocFrequency::Fraction(1.0),
                Some(4),
            ))
            .expect("build");
        assert_eq!(vocabulary.words(), ["apple", "banana", "cherry", "egg"]);
    }

    #[test]
    fn max_features_applies_after_df_pruning() {
        let vocabulary = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(2),
                DocFrequency::Count(3),
                Some(1),
            ))
            .expect("build");
        // banana and date (df 2, tf 2 each) survive pruning; banana wins the tie.
        assert_eq!(vocabulary.words(), ["banana"]);
    }

    #[test]
    fn max_df_below_min_df_rejected() {
        let err = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(3),
                DocFrequency::Fraction(0.5),
                None,
            ))
            .expect_err("max_df below min_df");
        assert_eq!(
            err,
            VocabError::MaxDfBelowMinDf {
                min_df: DocFrequency::Count(3),
                max_df: DocFrequency::Fraction(0.5),
                min_doc_count: 3.0,
                max_doc_count: 2.0,
                n_docs: 4,
            }
        );
        assert!(
            err.to_string().contains("at most 2 of 4 documents"),
            "{err}"
        );
    }

    #[test]
    fn empty_result_is_rejected_with_counts() {
        let err = builder_from(&DOCS)
            .build(&limits(
                DocFrequency::Count(5),
                DocFrequency::Count(10),
                None,
            ))
            .expect_err("no word has df 5");
        assert_eq!(
            err,
            VocabError::Empty {
                n_words: 6,
                n_docs: 4,
                min_doc_count: 5.0,
                max_doc_count: 10.0,
            }
        );
        let err = VocabularyBuilder::new()
            .build(&VocabularyLimits::default())
            .expect_err("no documents");
        assert!(
            matches!(err, VocabError::Empty { n_docs: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn out_of_range_limits_are_rejected() {
        let builder = builder_from(&DOCS);
        let cases = [
            (
                limits(DocFrequency::Count(0), DocFrequency::Fraction(1.0), None),
                "min_df",
            ),
            (
                limits(DocFrequency::Count(1), DocFrequency::Fraction(1.5), None),
                "max_df",
            ),
            (
                limits(
                    DocFrequency::Fraction(-0.1),
                    DocFrequency::Fraction(1.0),
                    None,
                ),
                "min_df",
            ),
            (
                limits(
                    DocFrequency::Fraction(f64::NAN),
                    DocFrequency::Fraction(1.0),
                    None,
                ),
                "min_df",
            ),
        ];
        for (case, expected) in cases {
            match builder.build(&case) {
                Err(VocabError::InvalidDocFrequency { parameter, .. }) => {
                    assert_eq!(parameter, expected, "{case:?}")
                }
                other => panic!("{case:?} gave {other:?}"),
            }
        }
        let err = builder
            .build(&limits(
                DocFrequency::Count(1),
                DocFrequency::Fraction(1.0),
                Some(0),
            ))
            .expect_err("max_features 0");
        assert_eq!(err, VocabError::ZeroMaxFeatures);
    }

    #[test]
    fn doc_frequency_parse_count_or_fraction() {
        assert_eq!("20".parse::<DocFrequency>(), Ok(DocFrequency::Count(20)));
        assert_eq!(
            " 0.5 ".parse::<DocFrequency>(),
            Ok(DocFrequency::Fraction(0.5))
        );
        assert_eq!(
            "1.0".parse::<DocFrequency>(),
            Ok(DocFrequency::Fraction(1.0))
        );
        assert_eq!("1".parse::<DocFrequency>(), Ok(DocFrequency::Count(1)));
        for bad in ["0", "1.5", "-1", "abc", "", "NaN", "0.5.1"] {
            let err = bad.parse::<DocFrequency>().expect_err(bad);
            assert_eq!(err.text, bad);
        }
    }

    #[test]
    fn to_counts_returns_sorted_ids_and_counts() {
        let vocabulary = builder_from(&DOCS)
            .build(&VocabularyLimits::default())
            .expect("build");
        let tokens = ["fig", "apple", "unknown", "fig", "cherry", "fig"];
        let (ids, counts) = vocabulary.to_counts(&tokens);
        assert_eq!(ids, vec![0, 2, 5]);
        assert_eq!(counts, vec![1.0, 1.0, 3.0]);
        let empty: [&str; 0] = [];
        assert_eq!(vocabulary.to_counts(&empty), (vec![], vec![]));
    }

    #[test]
    fn in_vocabulary_tokens_keep_document_order() {
        let vocabulary = builder_from(&DOCS)
            .build(&VocabularyLimits::default())
            .expect("build");
        let tokens = ["fig", "apple", "unknown", "fig", "cherry"];
        assert_eq!(vocabulary.in_vocabulary_tokens(&tokens), vec![5, 0, 5, 2]);
    }

    #[test]
    fn from_words_rejects_duplicates() {
        let words = vec!["a".to_string(), "b".to_string(), "a".to_string()];
        let err = Vocabulary::from_words(words).expect_err("duplicate");
        assert_eq!(
            err,
            VocabError::DuplicateWord {
                word: "a".to_string(),
                first: 0,
                second: 2
            }
        );
    }

    #[test]
    fn vocabulary_serialises_as_word_list() {
        let vocabulary = builder_from(&DOCS)
            .build(&VocabularyLimits::default())
            .expect("build");
        let json = serde_json::to_string(&vocabulary).expect("serialise");
        assert_eq!(json, r#"["apple","banana","cherry","date","egg","fig"]"#);
        let back: Vocabulary = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, vocabulary);
        assert!(serde_json::from_str::<Vocabulary>(r#"["x","x"]"#).is_err());
    }

    #[test]
    fn limits_round_trip_through_json() {
        let limits = limits(
            DocFrequency::Count(20),
            DocFrequency::Fraction(0.5),
            Some(2000),
        );
        let json = serde_json::to_string(&limits).expect("serialise");
        let back: VocabularyLimits = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, limits);
    }
}
