//! Errors of building a report from inconsistent inputs.

/// Report input that cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An array does not have the length that the model's shape requires.
    #[error("invalid {what}: expected {expected}, found {found}")]
    Shape {
        /// The input at fault.
        what: &'static str,
        /// The expected length, with how it follows from the shape.
        expected: String,
        /// The length found.
        found: usize,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("invalid {what}: {value} is not a finite number")]
    NonFinite {
        /// The value at fault, with its position.
        what: String,
        /// The value.
        value: f64,
    },
}
