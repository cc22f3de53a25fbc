//! MXNet / dmlc RecordIO framing: the container of SageMaker's `application/x-recordio-protobuf`.
//!
//! A file is a sequence of parts. Each part is
//!
//! | bytes | content |
//! |---|---|
//! | 4 | magic `0xCED7230A`, little-endian (`0A 23 D7 CE` on disk) |
//! | 4 | `lrec`, little-endian: bits 29-31 continuation flag, bits 0-28 payload length |
//! | len | payload |
//! | 0-3 | zero padding to the next multiple of 4 bytes |
//!
//! Continuation flag 0 marks a whole record. dmlc's C++ writer cuts a payload wherever a
//! 4-byte-aligned word of it equals the magic number, drops that word and writes the pieces
//! with flags 1 (first), 2 (middle) and 3 (last). Readers join the pieces with the magic
//! word put back between them. The SageMaker Python SDK writes only flag 0.
//!
//! Readers accept a missing final padding at the end of the file and ignore the content of
//! padding bytes, as dmlc's reader does.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::error::{FormatError, Result};
use crate::sniff::{hex_prefix, sniff};

/// The RecordIO magic number, stored little-endian at the start of every part.
pub const MAGIC: u32 = 0xCED7_230A;

/// Largest payload length one part can declare: 2^29 - 1 bytes.
pub const MAX_PART_LEN: usize = (1 << 29) - 1;

const HEADER_LEN: usize = 8;

/// Continuation flag of a whole record.
const WHOLE: u32 = 0;
/// Continuation flag of the first part of a split record.
const FIRST: u32 = 1;
/// Continuation flag of a middle part of a split record.
const MIDDLE: u32 = 2;
/// Continuation flag of the last part of a split record.
const LAST: u32 = 3;

/// Splits `lrec` into the continuation flag and the payload length.
fn decode_lrec(lrec: u32) -> (u32, usize) {
    (lrec >> 29, (lrec & ((1 << 29) - 1)) as usize)
}

fn encode_lrec(cflag: u32, len: usize) -> u32 {
    (cflag << 29) | len as u32
}

/// Number of zero bytes that follow a payload of `len` bytes.
fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Joins the parts of split records and checks that the flags come in a valid order.
#[derive(Debug, Default)]
struct Joiner {
    /// Bytes of the split record read so far; `None` outside a split record.
    open: Option<Vec<u8>>,
}

impl Joiner {
    /// Takes one part; returns the finished record when `cflag` completes one.
    fn push<'a>(
        &mut self,
        cflag: u32,
        part: Cow<'a, [u8]>,
        record: usize,
        offset: u64,
    ) -> Result<Option<Cow<'a, [u8]>>> {
        let bad = |expected| FormatError::BadContinuation {
            path: PathBuf::new(),
            record,
            offset,
            cflag,
            expected,
        };
        match (cflag, self.open.as_mut()) {
            (WHOLE, None) => Ok(Some(part)),
            (FIRST, None) => {
                self.open = Some(part.into_owned());
                Ok(None)
            }
            (MIDDLE, Some(buf)) => {
                buf.extend_from_slice(&MAGIC.to_le_bytes());
                buf.extend_from_slice(&part);
                Ok(None)
            }
            (LAST, Some(buf)) => {
                buf.extend_from_slice(&MAGIC.to_le_bytes());
                buf.extend_from_slice(&part);
                Ok(self.open.take().map(Cow::Owned))
            }
            (MIDDLE | LAST, None) => Err(bad("no split record is open (expected flag 0 or 1)")),
            (WHOLE | FIRST, Some(_)) => Err(bad(
                "the split record before it is unfinished (expected flag 2 or 3)",
            )),
            _ => Err(bad("only flags 0 to 3 exist")),
        }
    }

    fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

/// Pure decoder: iterates over the records of a RecordIO byte buffer.
///
/// Whole records are borrowed from the buffer; split records are joined into owned buffers.
/// The iterator stops after the first error. Errors leave the path empty; add it with
/// [`FormatError::with_path`].
#[derive(Debug)]
pub struct RecordIoSlices<'a> {
    bytes: &'a [u8],
    pos: usize,
    record: usize,
    record_offset: u64,
    joiner: Joiner,
    done: bool,
}

impl<'a> RecordIoSlices<'a> {
    /// Starts decoding `bytes` from the beginning.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            record: 0,
            record_offset: 0,
            joiner: Joiner::default(),
            done: false,
        }
    }

    fn next_record(&mut self) -> Result<Option<Cow<'a, [u8]>>> {
        loop {
            let rest = &self.bytes[self.pos..];
            let offset = self.pos as u64;
            if rest.is_empty() {
                if self.joiner.is_open() {
                    return Err(unfinished_split(self.record, self.record_offset));
                }
                return Ok(None);
            }
            if !self.joiner.is_open() {
                self.record_offset = offset;
            }
            let (cflag, len) = check_header(rest, self.record, offset)?;
            let body = &rest[HEADER_LEN..];
            if body.len() < len {
                return Err(truncated(self.record, offset, "payload", len, body.len()));
            }
            let part = &body[..len];
            self.pos += HEADER_LEN + len + padding(len).min(body.len() - len);
            if let Some(record) =
                self.joiner
                    .push(cflag, Cow::Borrowed(part), self.record, offset)?
            {
                self.record += 1;
                return Ok(Some(record));
            }
        }
    }
}

impl<'a> Iterator for RecordIoSlices<'a> {
    type Item = Result<Cow<'a, [u8]>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_record().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Decodes every record of `bytes` into owned payloads.
///
/// # Errors
/// [`FormatError::BadMagic`], [`FormatError::Truncated`] or [`FormatError::BadContinuation`]
/// with an empty path and the record index and byte offset of the fault.
pub fn decode_records(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    RecordIoSlices::new(bytes)
        .map(|r| r.map(Cow::into_owned))
        .collect()
}

/// Validates the header at the start of `rest` and returns its flag and payload length.
fn check_header(rest: &[u8], record: usize, offset: u64) -> Result<(u32, usize)> {
    if rest.len() >= 4 {
        let magic = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if magic != MAGIC {
            return Err(FormatError::BadMagic {
                path: PathBuf::new(),
                record,
                offset,
                found: hex_prefix(&rest[..4]),
                looks_like: sniff(&rest[..rest.len().min(64)]),
            });
        }
    }
    if rest.len() < HEADER_LEN {
        return Err(truncated(record, offset, "header", HEADER_LEN, rest.len()));
    }
    let lrec = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    Ok(decode_lrec(lrec))
}

fn truncated(
    record: usize,
    offset: u64,
    part: &'static str,
    expected: usize,
    available: usize,
) -> FormatError {
    FormatError::Truncated {
        path: PathBuf::new(),
        record,
        offset,
        part,
        expected: expected as u64,
        available: available as u64,
    }
}

/// Error for input that ends inside a split record; `record_offset` is where the record began.
fn unfinished_split(record: usize, record_offset: u64) -> FormatError {
    FormatError::BadContinuation {
        path: PathBuf::new(),
        record,
        offset: record_offset,
        cflag: FIRST,
        expected: "the input ends before the part with flag 3 that closes this split record",
    }
}

/// Streaming reader of RecordIO records from any [`Read`] source.
///
/// Memory use is one record at a time. A declared length larger than the remaining input
/// is detected without allocating the declared size. The reader stops after the first error.
#[derive(Debug)]
pub struct RecordIoReader<R> {
    inner: R,
    offset: u64,
    record: usize,
    record_offset: u64,
    joiner: Joiner,
    done: bool,
}

impl<R: Read> RecordIoReader<R> {
    /// Wraps `inner`; wrap files in a [`std::io::BufReader`] first.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            record: 0,
            record_offset: 0,
            joiner: Joiner::default(),
            done: false,
        }
    }

    /// Number of whole records returned so far, which is also the index of the next one.
    pub fn records_read(&self) -> usize {
        self.record
    }

    /// Reads the next record's payload, or `None` at the end of the input.
    ///
    /// # Errors
    /// The framing errors of [`decode_records`] with an empty path, and
    /// [`FormatError::Io`] when reading fails.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_record();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_record(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let offset = self.offset;
            let mut header = [0u8; HEADER_LEN];
            let got = read_up_to(&mut self.inner, &mut header).map_err(read_error)?;
            if got == 0 {
                if self.joiner.is_open() {
                    return Err(unfinished_split(self.record, self.record_offset));
                }
                return Ok(None);
            }
            if !self.joiner.is_open() {
                self.record_offset = offset;
            }
            let (cflag, len) = check_header(&header[..got], self.record, offset)?;
            let mut part = Vec::new();
            let read = (&mut self.inner)
                .take(len as u64)
                .read_to_end(&mut part)
                .map_err(read_error)?;
            if read < len {
                return Err(truncated(self.record, offset, "payload", len, read));
            }
            let mut pad = [0u8; 3];
            let pad_read =
                read_up_to(&mut self.inner, &mut pad[..padding(len)]).map_err(read_error)?;
            self.offset += (HEADER_LEN + len + pad_read) as u64;
            if let Some(record) = self
                .joiner
                .push(cflag, Cow::Owned(part), self.record, offset)?
            {
                self.record += 1;
                return Ok(Some(record.into_owned()));
            }
        }
    }
}

impl<R: Read> Iterator for RecordIoReader<R> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

fn read_error(source: io::Error) -> FormatError {
    FormatError::io(std::path::Path::new(""), "reading RecordIO data", source)
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn write_part<W: Write>(out: &mut W, cflag: u32, part: &[u8]) -> io::Result<()> {
    if part.len() > MAX_PART_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a RecordIO part holds at most {MAX_PART_LEN} bytes, got {}",
                part.len()
            ),
        ));
    }
    out.write_all(&MAGIC.to_le_bytes())?;
    out.write_all(&encode_lrec(cflag, part.len()).to_le_bytes())?;
    out.write_all(part)?;
    out.write_all(&[0u8; 3][..padding(part.len())])
}

/// Writes `payload` as one whole record (flag 0), as the SageMaker Python SDK does.
///
/// The payload is not split even when it contains the magic word; readers of both kinds
/// accept that. Fails with [`io::ErrorKind::InvalidInput`] for payloads over
/// [`MAX_PART_LEN`] bytes.
pub fn write_record<W: Write>(out: &mut W, payload: &[u8]) -> io::Result<()> {
    write_part(out, WHOLE, payload)
}

/// Writes `payload` the way dmlc's C++ writer does, splitting it at every 4-byte-aligned
/// magic word (flags 1, 2, 3). A payload without such a word is written whole.
pub fn write_split_record<W: Write>(out: &mut W, payload: &[u8]) -> io::Result<()> {
    let magic = MAGIC.to_le_bytes();
    let mut start = 0;
    let mut parts = 0;
    let aligned_end = payload.len() / 4 * 4;
    for word in (0..aligned_end).step_by(4) {
        if payload[word..word + 4] == magic {
            let cflag = if parts == 0 { FIRST } else { MIDDLE };
            write_part(out, cflag, &payload[start..word])?;
            parts += 1;
            start = word + 4;
        }
    }
    let cflag = if parts == 0 { WHOLE } else { LAST };
    write_part(out, cflag, &payload[start..])
}

/// Writer of whole RecordIO records to any [`Write`] sink.
#[derive(Debug)]
pub struct RecordIoWriter<W> {
    inner: W,
    records: usize,
}

impl<W: Write> RecordIoWriter<W> {
    /// Wraps `inner`; wrap files in a [`std::io::BufWriter`] first.
    pub fn new(inner: W) -> Self {
        Self { inner, records: 0 }
    }

    /// Writes one payload as a whole record (see [`write_record`]).
    pub fn write(&mut self, payload: &[u8]) -> io::Result<()> {
        write_record(&mut self.inner, payload)?;
        self.records += 1;
        Ok(())
    }

    /// Number of records written.
    pub fn records_written(&self) -> usize {
        self.records
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_dmlc() {
        let mut out = Vec::new();
        write_record(&mut out, b"abcde").unwrap();
        assert_eq!(&out[..4], &[0x0a, 0x23, 0xd7, 0xce]);
        assert_eq!(&out[4..8], &5u32.to_le_bytes());
        assert_eq!(&out[8..13], b"abcde");
        assert_eq!(&out[13..], &[0, 0, 0]);
    }

    #[test]
    fn split_writer_uses_flags_one_to_three() {
        let magic = MAGIC.to_le_bytes();
        let payload = [b"abcd".as_slice(), &magic, b"efgh", &magic, b"ij"].concat();
        let mut out = Vec::new();
        write_split_record(&mut out, &payload).unwrap();
        let flags: Vec<u32> = [4usize, 16, 28]
            .iter()
            .map(|&at| u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) >> 29)
            .collect();
        assert_eq!(flags, vec![1, 2, 3]);
        assert_eq!(decode_records(&out).unwrap(), vec![payload]);
    }

    #[test]
    fn unaligned_magic_is_not_split() {
        let magic = MAGIC.to_le_bytes();
        let payload = [b"ab".as_slice(), &magic, b"cd"].concat();
        let mut out = Vec::new();
        write_split_record(&mut out, &payload).unwrap();
        assert_eq!(out.len(), 8 + 8);
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()) >> 29, 0);
    }
}
