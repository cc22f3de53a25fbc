//! Tokenised reference documents: one document per line, vocabulary words in text order.

use std::collections::HashMap;
use std::path::Path;

use ntm_formats::SparseRows;

use crate::error::EvalError;
use crate::text_input::for_each_line;

/// Reads a tokenised-documents file (plain or gzip-compressed): one document per line,
/// words separated by whitespace, every word in `vocabulary` (line `i` of the vocabulary
/// is word id `i`). Empty lines are empty documents. Returns each document's word ids in
/// text order.
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be read or is not UTF-8, and
/// [`EvalError::UnknownToken`] for the first word not in `vocabulary`.
pub fn read_token_documents(
    path: &Path,
    vocabulary: &[String],
) -> Result<Vec<Vec<u32>>, EvalError> {
    let ids: HashMap<&str, u32> = vocabulary
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i as u32))
        .collect();
    let mut documents = Vec::new();
    for_each_line(path, |line, text| {
        let mut doc = Vec::new();
        for word in text.split_whitespace() {
            match ids.get(word) {
                Some(&id) => doc.push(id),
                None => {
                    return Err(EvalError::UnknownToken {
                        path: path.to_path_buf(),
                        line,
                        word: word.to_owned(),
                    })
                }
            }
        }
        documents.push(doc);
        Ok(())
    })?;
    Ok(documents)
}

/// Counts each document's words into one row of `vocab_size` columns; empty documents give
/// empty rows.
pub fn token_counts(documents: &[Vec<u32>], vocab_size: usize) -> SparseRows {
    let mut rows = SparseRows::new(vocab_size);
    let mut counts: Vec<(u32, f32)> = Vec::new();
    for doc in documents {
        let mut sorted = doc.clone();
        sorted.sort_unstable();
        counts.clear();
        for w in sorted {
            match counts.last_mut() {
                Some((last, c)) if *last == w => *c += 1.0,
                _ => counts.push((w, 1.0)),
            }
        }
        let indices: Vec<u32> = counts.iter().map(|(w, _)| *w).collect();
        let values: Vec<f32> = counts.iter().map(|(_, c)| *c).collect();
        rows.push_row(&indices, &values);
    }
    rows
}
