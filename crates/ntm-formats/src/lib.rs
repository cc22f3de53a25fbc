//! Readers and writers for the data formats of SageMaker's Neural Topic Model.
//!
//! The crate is layered like a pure decoder under an I/O layer:
//! 1. [`sparse`]: the CSR matrix every reader produces and every consumer takes.

pub mod sparse;

pub use sparse::SparseRows;
