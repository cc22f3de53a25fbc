//! One module per subcommand.

pub mod container;
pub mod demo;
pub mod infer;
pub mod prepare;
pub mod serve;
pub mod topics;
pub mod train;
