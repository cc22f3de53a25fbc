//! HTTP inference server compatible with SageMaker NTM endpoints.
//!
//! The server implements SageMaker's container contract for inference:
//! - `GET /ping` returns 200 once the model is loaded (503 while it loads);
//! - `POST /invocations` scores the documents of the body (`text/csv`, `application/json`,
//!   `application/jsonlines`, `application/x-recordio-protobuf` or raw `text/plain`) and
//!   returns their topic weights as JSON, JSON Lines or RecordIO-protobuf, chosen by `Accept`;
//! - `GET /execution-parameters` suggests batch-transform settings.
//!
//! Bad requests get a 4xx status and a JSON body `{"error": ..., "request_id": ...}`. Every
//! response carries its request id in the `x-request-id` header, and every error is logged
//! with it. Decoding and scoring run on a dedicated rayon pool, so the async runtime only moves
//! bytes and `/ping` responds while long requests are scored.
//!
//! [`batch`] reads whole files in the request formats for offline batch transform.
//!
//! # Examples
//!
//! ```no_run
//! # async fn example() -> Result<(), ntm_serve::ServeError> {
//! use ntm_serve::{Server, ServerConfig};
//!
//! let config = ServerConfig::new("/opt/ml/model".into());
//! let server = Server::bind("127.0.0.1:0".parse().unwrap(), config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```

pub mod batch;
pub mod codec;
pub mod media;
pub mod model;
mod server;

use std::path::PathBuf;

pub use model::Model;
pub use server::{Server, ServerConfig, DEFAULT_MAX_PAYLOAD_BYTES};

/// Failures that stop the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The model could not be loaded.
    #[error("cannot load the model {}: {message}", .path.display())]
    Model {
        /// Path of the artifact.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The listening socket could not be opened or failed.
    #[error("{action} failed: {error}")]
    Io {
        /// Attempted operation, for example "binding 0.0.0.0:8080".
        action: String,
        /// The underlying error, part of the message so that it prints once.
        error: std::io::Error,
    },
    /// The scoring threads could not be started.
    #[error("cannot start {threads} scoring threads: {message}")]
    Threads {
        /// Requested thread count (0 means one per core).
        threads: usize,
        /// The thread pool's message.
        message: String,
    },
}
