//! Checks on the full 20 Newsgroups bydate training split (11,314 posts).
//!
//! The corpus is not part of the repository, so this test is ignored by
//! default. Run it with the path of the gzip-compressed JSON Lines file:
//!
//! ```text
//! NTM_20NEWS_TRAIN=/path/to/20news-bydate-train.jsonl.gz \
//!     cargo test --release -p ntm-text --test full_corpus -- --ignored --nocapture
//! ```

use std::path::PathBuf;
use std::time::Instant;

use ntm_text::{
    read_documents, DocFrequency, SourceOptions, Tokenizer, TokenizerSettings, VocabularyBuilder,
    VocabularyLimits,
};

#[test]
#[ignore = "needs the 20 Newsgroups training split; set NTM_20NEWS_TRAIN"]
fn newsgroups_train_vocabulary_size() {
    let path = PathBuf::from(
        std::env::var_os("NTM_20NEWS_TRAIN")
            .expect("set NTM_20NEWS_TRAIN to the 20news-bydate-train.jsonl.gz file"),
    );

    let start = Instant::now();
    let documents = read_documents(&path, &SourceOptions::default()).expect("read corpus");
    let read_time = start.elapsed();
    assert_eq!(documents.len(), 11_314);

    let tokenizer = Tokenizer::new(TokenizerSettings {
        strip_newsgroup: true,
        ..TokenizerSettings::default()
    });
    let start = Instant::now();
    let mut builder = VocabularyBuilder::new();
    let mut n_tokens = 0;
    for document in &documents {
        let tokens = tokenizer.tokenize(&document.text);
        n_tokens += tokens.len();
        builder.add_document(&tokens);
    }
    let tokenize_time = start.elapsed();

    let limits = VocabularyLimits {
        min_df: DocFrequency::Count(20),
        max_df: DocFrequency::Fraction(0.5),
        max_features: None,
    };
    let vocabulary = builder.build(&limits).expect("build vocabulary");
    eprintln!(
        "read {} documents in {read_time:.2?}; tokenised and counted {n_tokens} tokens \
         ({} distinct) in {tokenize_time:.2?}; vocabulary with min_df=20, max_df=0.5: {} words",
        documents.len(),
        builder.n_words(),
        vocabulary.len()
    );
    assert!(
        (2_000..=10_000).contains(&vocabulary.len()),
        "vocabulary of {} words",
        vocabulary.len()
    );
    assert!(vocabulary.id("god").is_some());
    assert!(vocabulary.id("the").is_none());
}
