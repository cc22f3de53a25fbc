//! One module per subcommand.

pub mod channels;
pub mod container;
pub mod demo;
pub mod evaluate;
pub mod infer;
pub mod prepare;
pub mod serve;
pub mod report;
pub mod topics;
pub mod train;
