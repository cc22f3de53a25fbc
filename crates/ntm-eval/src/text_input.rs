//! Opening plain or gzip-compressed text files.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::EvalError;

/// Opens `path` for reading lines, decompressing it when it starts with the gzip magic
/// bytes, whatever its name.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead>, EvalError> {
    let io_error = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(io_error)?);
    let head = file.fill_buf().map_err(io_error)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(file))))
    } else {
        Ok(Box::new(file))
    }
}

/// Reads every line of `path`, without line terminators.
pub(crate) fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<(), EvalError>,
) -> Result<(), EvalError> {
    let mut reader = open_text(path)?;
    let mut bytes = Vec::new();
    let mut number = 0usize;
    loop {
        bytes.clear();
        let read = reader
            .by_ref()
            .read_until(b'\n', &mut bytes)
            .map_err(|source| EvalError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let line = std::str::from_utf8(&bytes).map_err(|e| EvalError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line {number} is not valid UTF-8: {e}"),
            ),
        })?;
        f(number, line.trim_end_matches(['\n', '\r']))?;
    }
}
