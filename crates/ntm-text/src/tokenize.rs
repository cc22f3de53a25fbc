//! Tokenisation of raw text into word tokens.
//!
//! A [`Tokenizer`] applies these steps to a document:
//!
//! 1. When [`TokenizerSettings::strip_newsgroup`] is set, removes the header,
//!    quotes and signature of a newsgroup post ([`crate::newsgroup`]).
//! 2. Splits the text into words at Unicode word boundaries (UAX #29, through
//!    `unicode-segmentation`'s `unicode_words`).
//! 3. Composes each word to Unicode normalisation form C, so that a letter written as a base
//!    letter and a combining accent (`e` + U+0301) becomes the one alphabetic character (`é`)
//!    that step 5 accepts.
//! 4. Lowercases each word when [`TokenizerSettings::lowercase`] is set.
//! 5. Keeps a word only when every character is alphabetic
//!    ([`char::is_alphabetic`]) and it has at least
//!    [`TokenizerSettings::min_token_len`] characters, so numbers, `don't`,
//!    `e.g` and `x11` are all dropped.
//! 6. Drops stop words. The match ignores case: a word is a stop word when its
//!    lowercase form is in the list.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
use unicode_segmentation::UnicodeSegmentation;

use crate::newsgroup::strip_newsgroup;
use crate::stopwords::{self, StopWordsError};

/// The stop words a [`Tokenizer`] removes.
///
/// Serialised with a `kind` tag: `{"kind": "english"}`, `{"kind": "none"}`
/// or `{"kind": "custom", "words": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopWords {
    /// The built-in English list ([`stopwords::english`]).
    ///
    /// NOTE: only the choice is stored, not the words, so a model saved with
    /// this choice tokenises differently if a later release edits the list.
    English,
    /// No stop words.
    None,
    /// An explicit list, stored inline so that saved settings need no other file.
    Custom {
        /// The stop words; matched case-insensitively.
        words: Vec<String>,
    },
}

impl StopWords {
    /// Loads a custom list from a stop-word file (format in [`crate::stopwords`]).
    ///
    /// # Errors
    /// Returns [`StopWordsError`] when the file cannot be read or is not UTF-8.
    pub fn from_file(path: &Path) -> Result<Self, StopWordsError> {
        let words = stopwords::load_stop_words(path)?;
        Ok(Self::Custom { words })
    }

    /// Returns the lowercase words of this choice.
    pub fn words(&self) -> Vec<String> {
        match self {
            Self::English => stopwords::english(),
            Self::None => Vec::new(),
            Self::Custom { words } => words.iter().map(|word| word.to_lowercase()).collect(),
        }
    }
}

/// Settings of a [`Tokenizer`]; stored with a trained model so that inference
/// tokenises raw text exactly as training did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenizerSettings {
    /// Minimum token length in characters (Unicode scalar values). Default 2.
    pub min_token_len: usize,
    /// Whether tokens are lowercased. Default `true`.
    pub lowercase: bool,
    /// The stop words to drop. Default [`StopWords::English`].
    pub stop_words: StopWords,
    /// Whether newsgroup headers, quotes and signatures are removed first.
    /// Default `false`.
    pub strip_newsgroup: bool,
}

impl Default for TokenizerSettings {
    fn default() -> Self {
        Self {
            min_token_len: 2,
            lowercase: true,
            stop_words: StopWords::English,
            strip_newsgroup: false,
        }
    }
}

/// Splits raw text into filtered word tokens (steps in the module docs).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    settings: TokenizerSettings,
    stop_words: HashSet<String>,
}

impl Tokenizer {
    /// Creates a tokenizer from its settings.
    pub fn new(settings: TokenizerSettings) -> Self {
        let stop_words = settings.stop_words.words().into_iter().collect();
        Self {
            settings,
            stop_words,
        }
    }

    /// Returns the settings this tokenizer was created with.
    pub fn settings(&self) -> &TokenizerSettings {
        &self.settings
    }

    /// Returns the tokens of `text` in document order.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        self.tokenize_into(text, &mut tokens);
        tokens
    }

    /// Appends the tokens of `text` to `tokens`, in document order.
    pub fn tokenize_into(&self, text: &str, tokens: &mut Vec<String>) {
        if self.settings.strip_newsgroup {
            let cleaned = strip_newsgroup(text);
            self.push_words(&cleaned, tokens);
        } else {
            self.push_words(text, tokens);
        }
    }

    fn push_words(&self, text: &str, tokens: &mut Vec<String>) {
        let mut composed = String::new();
        for word in text.unicode_words() {
            let word = if is_nfc_quick(word.chars()) == IsNormalized::Yes {
                word
            } else {
                composed.clear();
                composed.extend(word.nfc());
                composed.as_str()
            };
            if !word.chars().all(char::is_alphabetic) {
                continue;
            }
            let token = if self.settings.lowercase {
                word.to_lowercase()
            } else {
                word.to_string()
            };
            // Lowercasing can change the character count (for example `İ`
            // becomes two characters), so the length is checked afterwards.
            if token.chars().count() < self.settings.min_token_len {
                continue;
            }
            if self.is_stop_word(&token) {
                continue;
            }
            tokens.push(token);
        }
    }

    fn is_stop_word(&self, token: &str) -> bool {
        if self.stop_words.is_empty() {
            return false;
        }
        if self.settings.lowercase || !token.chars().any(char::is_uppercase) {
            return self.stop_words.contains(token);
        }
        self.stop_words.contains(&token.to_lowercase())
    }
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new(TokenizerSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_stop_words() -> TokenizerSettings {
        TokenizerSettings {
            stop_words: StopWords::None,
            ..TokenizerSettings::default()
        }
    }

    #[test]
    fn default_drops_stop_words_and_short_tokens() {
        let tokens = Tokenizer::default().tokenize("The quick brown fox is a fox, I think.");
        assert_eq!(tokens, vec!["quick", "brown", "fox", "fox", "think"]);
    }

    #[test]
    fn tokens_with_digits_or_punctuation_are_dropped() {
        let tokenizer = Tokenizer::new(no_stop_words());
        let tokens =
            tokenizer.tokenize("x11 runs on 486 PCs; don't use e.g. win3.1 or co-op U.S.A");
        assert_eq!(tokens, vec!["runs", "on", "pcs", "use", "or", "co", "op"]);
    }

    #[test]
    fn unicode_letters_are_kept_and_lowercased() {
        let tokenizer = Tokenizer::new(no_stop_words());
        let tokens = tokenizer.tokenize("Zürich ÉCOLE naïve Straße Москва Αθήνα");
        assert_eq!(
            tokens,
            vec!["zürich", "école", "naïve", "straße", "москва", "αθήνα"]
        );
    }

    #[test]
    fn min_token_len_counts_characters() {
        let settings = TokenizerSettings {
            min_token_len: 3,
            ..no_stop_words()
        };
        let tokens = Tokenizer::new(settings).tokenize("ab abc éé ééé");
        assert_eq!(tokens, vec!["abc", "ééé"]);
    }

    #[test]
    fn no_lowercase_keeps_case_but_matches_stop_words() {
        let settings = TokenizerSettings {
            lowercase: false,
            ..TokenizerSettings::default()
        };
        let tokens = Tokenizer::new(settings).tokenize("The Linux kernel AND the GPU");
        assert_eq!(tokens, vec!["Linux", "kernel", "GPU"]);
    }

    #[test]
    fn custom_stop_words_replace_english() {
        let settings = TokenizerSettings {
            stop_words: StopWords::Custom {
                words: vec!["Kernel".to_string()],
            },
            ..TokenizerSettings::default()
        };
        let tokens = Tokenizer::new(settings).tokenize("the kernel of the KERNEL");
        assert_eq!(tokens, vec!["the", "of", "the"]);
    }

    #[test]
    fn custom_stop_words_load_from_file() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("stop.txt");
        std::fs::write(&path, "# domain words\nwindows\nfile\n").expect("write stop words");
        let stop_words = StopWords::from_file(&path).expect("load stop words");
        let settings = TokenizerSettings {
            stop_words,
            ..TokenizerSettings::default()
        };
        let tokens = Tokenizer::new(settings).tokenize("Windows file manager");
        assert_eq!(tokens, vec!["manager"]);
    }

    #[test]
    fn newsgroup_stripping_applies_before_splitting() {
        let post = "From: someone@example.com\nSubject: graphics card\n\nMatrox cards\n> quoted monitor\n-- \nsignature name\n";
        let plain = Tokenizer::default().tokenize(post);
        assert!(plain.contains(&"subject".to_string()), "{plain:?}");
        let settings = TokenizerSettings {
            strip_newsgroup: true,
            ..TokenizerSettings::default()
        };
        let tokens = Tokenizer::new(settings).tokenize(post);
        assert_eq!(tokens, vec!["matrox", "cards"]);
    }

    #[test]
    fn tokenize_into_appends() {
        let tokenizer = Tokenizer::new(no_stop_words());
        let mut tokens = vec!["first".to_string()];
        tokenizer.tokenize_into("second third", &mut tokens);
        assert_eq!(tokens, vec!["first", "second", "third"]);
    }

    #[test]
    fn settings_round_trip_through_json() {
        let settings = TokenizerSettings {
            min_token_len: 3,
            lowercase: false,
            stop_words: StopWords::Custom {
                words: vec!["alpha".to_string(), "beta".to_string()],
            },
            strip_newsgroup: true,
        };
        let json = serde_json::to_string(&settings).expect("serialise settings");
        assert!(json.contains(r#""kind":"custom""#), "{json}");
        let back: TokenizerSettings = serde_json::from_str(&json).expect("parse settings");
        assert_eq!(back, settings);
    }

    #[test]
    fn settings_fill_missing_fields_with_defaults() {
        let settings: TokenizerSettings =
            serde_json::from_str(r#"{"stop_words": {"kind": "none"}}"#).expect("parse settings");
        assert_eq!(settings, no_stop_words());
    }

    #[test]
    fn settings_reject_unknown_fields() {
        let result = serde_json::from_str::<TokenizerSettings>(r#"{"min_len": 3}"#);
        assert!(result.is_err());
    }

    #[test]
    fn decomposed_accents_are_composed() {
        let tokenizer = Tokenizer::new(TokenizerSettings::default());
        // "café" and "élève" with each accent as a separate combining character.
        let decomposed = "cafe\u{301} e\u{301}le\u{300}ve";
        assert_eq!(tokenizer.tokenize(decomposed), ["café", "élève"]);
        assert_eq!(
            tokenizer.tokenize(decomposed),
            tokenizer.tokenize("café élève")
        );
    }
}
