//! One module per subcommand.

pub mod channels;
pub mod container;
pub mod demo;
pub mod evaluate;
pub mod infer;
pub mod prepare;
pub mod report;
pub mod serve;
pub mod topics;
pub mod train;
