//! Raw text to bag-of-words: the text side of ntm.
//!
//! The pipeline that `ntm prepare` runs, step by step:
//!
//! 1. [`input`] reads documents (id and raw text) from JSON Lines, CSV or a
//!    folder of text files, optionally gzip-compressed.
//! 2. [`tokenize`] turns each text into word tokens: optional newsgroup
//!    cleaning ([`newsgroup`]), Unicode word splitting, lowercasing, an
//!    alphabetic-only and minimum-length filter, and stop-word removal
//!    ([`stopwords`]).
//! 3. [`split`] picks a seeded validation subset of the documents.
//! 4. [`vocab`] counts document and term frequencies, prunes words with
//!    scikit-learn `CountVectorizer` rules (`min_df`, `max_df`,
//!    `max_features`) and maps tokens to word-id counts for sparse rows.
//!
//! # Examples
//!
//! ```
//! use ntm_text::{DocFrequency, Tokenizer, VocabularyBuilder, VocabularyLimits};
//!
//! let texts = ["The orbit of the Moon", "Moon landing footage", "Orbit and landing"];
//! let tokenizer = Tokenizer::default();
//! let tokens: Vec<Vec<String>> = texts.iter().map(|text| tokenizer.tokenize(text)).collect();
//!
//! let mut builder = VocabularyBuilder::new();
//! for document in &tokens {
//!     builder.add_document(document);
//! }
//! let limits = VocabularyLimits {
//!     min_df: DocFrequency::Count(2),
//!     ..VocabularyLimits::default()
//! };
//! let vocabulary = builder.build(&limits)?;
//! assert_eq!(vocabulary.words(), ["landing", "moon", "orbit"]);
//!
//! let (ids, counts) = vocabulary.to_counts(&tokens[0]);
//! assert_eq!(ids, [1, 2]);
//! assert_eq!(counts, [1.0, 1.0]);
//! # Ok::<(), ntm_text::VocabError>(())
//! ```

pub mod input;
pub mod newsgroup;
pub mod split;
pub mod stopwords;
pub mod tokenize;
pub mod vocab;

pub use input::{
    detect_source_kind, open_documents, read_documents, resolve_source_kind, Document, Documents,
    InputError, SourceKind, SourceOptions,
};
pub use newsgroup::strip_newsgroup;
pub use split::{train_validation_split, SplitError, TrainValidationSplit};
pub use stopwords::StopWordsError;
pub use tokenize::{StopWords, Tokenizer, TokenizerSettings};
pub use vocab::{DocFrequency, VocabError, Vocabulary, VocabularyBuilder, VocabularyLimits};
