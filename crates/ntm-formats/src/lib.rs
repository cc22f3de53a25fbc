//! Readers and writers for the data formats of SageMaker's Neural Topic Model.
//!
//! The crate is layered like a pure decoder under an I/O layer. Reading a channel goes:
//! 1. [`channel`]: lists a channel's files and picks each file's [`ContentType`], declared
//!    or detected by [`sniff`] from the first bytes.
//! 2. [`recordio`]: splits `application/x-recordio-protobuf` files into record payloads;
//!    [`record`] decodes each payload (an `aialgs.data.Record` protobuf) into one document.
//! 3. [`csv`]: parses `text/csv` files, one dense document per line.
//! 4. [`sparse`]: the CSR matrix every reader produces and every consumer takes.
//!
//! [`body`] decodes the JSON and JSON Lines bodies of inference requests.
//! [`vocab`] reads the `vocab.txt` of the auxiliary channel. Every fallible function returns
//! [`FormatError`], which names the file and the position of the fault.
//!
//! Decoders over bytes in memory ([`csv::parse_csv`], [`record::decode_recordio_protobuf`])
//! keep empty documents so that output rows line up with input rows, as inference needs.
//! The channel readers used for training skip and count them.

pub mod body;
pub mod channel;
pub mod csv;
pub mod error;
pub mod record;
pub mod recordio;
pub mod sniff;
pub mod sparse;
pub mod vocab;

pub use channel::{list_channel_files, read_channel, ChannelData, ChannelReader, ContentType};
pub use error::{Cell, DocumentPosition, FormatError, RowPosition};
pub use sparse::SparseRows;
