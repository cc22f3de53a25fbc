//! The HTTP routes, request ids, body limits and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::codec;
use crate::media::{self, RequestFormat, ResponseFormat};
use crate::model::Model;
use crate::ServeError;

/// Default maximum request body: 6 MiB, which covers SageMaker's 6 MB real-time payload limit.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 6 * MIB;

const MIB: usize = 1024 * 1024;

/// Bytes of an oversized body read and discarded after the limit, so that a client that sends
/// the whole body before reading the response still receives the 413.
const DRAIN_MAX_BYTES: usize = 64 * MIB;

/// Time spent discarding an oversized body before the connection is closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Header that carries the request id in every response.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Settings of an inference server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The model: a folder of artifact files, a folder that contains `model.tar.gz`, or a
    /// `model.tar.gz` file.
    pub model_path: PathBuf,
    /// Threads that decode and score requests; 0 starts one per core.
    pub threads: usize,
    /// Largest accepted request body, in bytes; larger bodies get 413.
    pub max_payload_bytes: usize,
}

impl ServerConfig {
    /// Creates settings with one scoring thread per core and the default payload limit.
    pub fn new(model_path: PathBuf) -> Self {
        Self {
            model_path,
            threads: 0,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
struct AppState {
    /// Set once the model has loaded; `/ping` and `/invocations` return 503 before.
    model: Arc<OnceLock<Arc<Model>>>,
    pool: Arc<rayon::ThreadPool>,
    max_payload_bytes: usize,
    request_ids: Arc<RequestIds>,
}

/// Generator of request ids: a per-process prefix taken from the start time, then a counter.
struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        Self {
            prefix: (nanos as u64 ^ (nanos >> 64) as u64) as u32,
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{number:06}", self.prefix)
    }
}

/// The request id of the current request, set by [`assign_request_id`].
#[derive(Clone)]
struct RequestId(Arc<str>);

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    address: SocketAddr,
    config: ServerConfig,
    state: AppState,
}

impl Server {
    /// Opens the listening socket and starts the scoring threads; the model loads in
    /// [`Server::run`], so the socket accepts connections at once.
    ///
    /// # Errors
    /// [`ServeError::Io`] when the address cannot be bound, [`ServeError::Threads`] when the
    /// scoring threads cannot start.
    pub async fn bind(address: SocketAddr, config: ServerConfig) -> Result<Server, ServeError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| ServeError::Io {
                action: format!("binding {address}"),
                error,
            })?;
        let address = listener.local_addr().map_err(|error| ServeError::Io {
            action: format!("reading the address bound for {address}"),
            error,
        })?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|index| format!("ntm-score-{index}"))
            .panic_handler(|_| error!("a scoring thread panicked; the request gets 500"))
            .build()
            .map_err(|error| ServeError::Threads {
                threads: config.threads,
                message: error.to_string(),
            })?;
        let state = AppState {
            model: Arc::new(OnceLock::new()),
            pool: Arc::new(pool),
            max_payload_bytes: config.max_payload_bytes,
            request_ids: Arc::new(RequestIds::new()),
        };
        Ok(Server {
            listener,
            address,
            config,
            state,
        })
    }

    /// Returns the address the socket is bound to, with the port the system chose for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Loads the model and serves requests until `shutdown` completes, then stops accepting
    /// connections and returns once the requests in flight have their responses.
    ///
    /// # Errors
    /// [`ServeError::Model`] when the model cannot be loaded (the server then stops), and
    /// [`ServeError::Io`] when the socket fails.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let address = self.local_addr();
        let (failure_sender, failure_receiver) = oneshot::channel::<ServeError>();
        let model_slot = Arc::clone(&self.state.model);
        let model_path = self.config.model_path.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            match Model::load(&model_path) {
                Ok(model) => {
                    info!(
                        "Loaded the model {} in {:.2}s: feature_dim {}, num_topics {}",
                        model_path.display(),
                        started.elapsed().as_secs_f64(),
                        model.feature_dim(),
                        model.num_topics()
                    );
                    let _ = model_slot.set(Arc::new(model));
                }
                Err(error) => {
                    error!("{error}");
                    let _ = failure_sender.send(error);
                }
            }
        });

        let failure: Arc<Mutex<Option<ServeError>>> = Arc::default();
        let failure_slot = Arc::clone(&failure);
        let stop = async move {
            tokio::select! {
                () = shutdown => {
                    info!("Shutting down: no new connections; finishing the requests in flight");
                }
                Ok(error) = failure_receiver => {
                    if let Ok(mut slot) = failure_slot.lock() {
                        *slot = Some(error);
                    }
                }
            }
        };

        info!(
            "Listening on {address} (POST /invocations, GET /ping, GET /execution-parameters); \
             request bodies up to {} bytes; scoring threads: {}",
            self.state.max_payload_bytes,
            self.state.pool.current_num_threads()
        );
        let app = router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|error| ServeError::Io {
                action: format!("serving on {address}"),
                error,
            })?;
        let failure = failure.lock().ok().and_then(|mut slot| slot.take());
        match failure {
            Some(error) => Err(error),
            None => {
                info!("Server stopped");
                Ok(())
            }
        }
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invocations))
        .route("/execution-parameters", get(execution_parameters))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            assign_request_id,
        ))
        .with_state(state)
}

/// Gives each request an id, stores it for the handlers and returns it in `x-request-id`.
async fn assign_request_id(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = state.request_ids.next();
    let header = HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id.into()));
    let mut response = next.run(request).await;
    if let Some(header) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, header);
    }
    response
}

async fn ping(State(state): State<AppState>, Extension(id): Extension<RequestId>) -> Response {
    if state.model.get().is_some() {
        StatusCode::OK.into_response()
    } else {
        error_response(
            &id,
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is still loading".to_owned(),
        )
    }
}

/// Returns 404 with a JSON error body for a path the server does not serve.
async fn unknown_path(Extension(id): Extension<RequestId>, request: Request) -> Response {
    error_response(
        &id,
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint at {}; the server answers GET /ping, POST /invocations and GET \
             /execution-parameters",
            request.uri().path()
        ),
    )
}

/// Returns 405 with a JSON error body for a served path asked with another method; axum adds
/// the `Allow` header.
async fn wrong_method(Extension(id): Extension<RequestId>, request: Request) -> Response {
    let path = request.uri().path();
    let allowed = if path == "/invocations" {
        "POST"
    } else {
        "GET"
    };
    error_response(
        &id,
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} is not allowed on {path}; use {allowed}",
            request.method()
        ),
    )
}

/// Suggests batch-transform settings: one concurrent transform per scoring thread, many
/// records per request, and the payload limit in whole MiB.
async fn execution_parameters(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "MaxConcurrentTransforms": state.pool.current_num_threads(),
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": (state.max_payload_bytes / MIB).max(1),
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn invocations(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let Some(model) = state.model.get().cloned() else {
        return error_response(
            &id,
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is still loading; retry when GET /ping returns 200".to_owned(),
        );
    };
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let request_format = match media::parse_content_type(content_type.as_deref()) {
        Ok(format) => format,
        Err(error) => {
            return error_response(&id, StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string())
        }
    };
    let accept = parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let Some(response_format) = media::negotiate(Some(&accept)) else {
        return error_response(
            &id,
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "no supported response type in Accept {accept:?}. Supported response types: {}",
                media::RESPONSE_TYPES
            ),
        );
    };

    let bytes = match read_body(&parts.headers, body, state.max_payload_bytes).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge { received, drained }) => {
            let limit = state.max_payload_bytes;
            let mut response = error_response(
                &id,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than the limit of {limit} bytes ({} MiB; at \
                     least {received} bytes were sent). Split the documents over several \
                     requests, or score them with a batch transform job",
                    limit / MIB
                ),
            );
            if !drained {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
        Err(ReadError::Failed(message)) => {
            return error_response(&id, StatusCode::BAD_REQUEST, message)
        }
    };
    if bytes.is_empty() {
        return error_response(
            &id,
            StatusCode::BAD_REQUEST,
            "the request body is empty; send at least one document".to_owned(),
        );
    }

    let (sender, receiver) = oneshot::channel();
    state.pool.spawn(move || {
        let _ = sender.send(score_request(
            &model,
            request_format,
            response_format,
            &bytes,
        ));
    });
    match receiver.await {
        Ok(Ok((documents, body))) => {
            debug!(
                request_id = &*id.0,
                documents,
                milliseconds = started.elapsed().as_secs_f64() * 1e3,
                "scored"
            );
            ([(CONTENT_TYPE, response_format.media_type())], body).into_response()
        }
        Ok(Err((status, message))) => error_response(&id, status, message),
        Err(_) => error_response(
            &id,
            StatusCode::INTERNAL_SERVER_ERROR,
            "scoring the request failed unexpectedly".to_owned(),
        ),
    }
}

/// Decodes, scores and encodes one request on a scoring thread; returns the number of
/// documents and the response body.
fn score_request(
    model: &Model,
    request_format: RequestFormat,
    response_format: ResponseFormat,
    bytes: &[u8],
) -> Result<(usize, Vec<u8>), (StatusCode, String)> {
    let rows =
        codec::decode(request_format, bytes, model).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    let mut weights = Vec::new();
    model.topic_weights(&rows, &mut weights).map_err(|error| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("scoring failed: {error}"),
        )
    })?;
    let k = model.num_topics();
    // Counts near the f32 maximum can overflow the first layer; report that instead of
    // writing NaN, which JSON cannot even represent.
    if let Some(row) = codec::first_non_finite_row(&weights, k) {
        let largest = rows.row(row).1.iter().copied().fold(0.0f32, f32::max);
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "document {row} (0-based, in request order) has counts too large for the \
                 model (largest {largest}): its topic weights are not finite numbers. Send \
                 word counts of real documents"
            ),
        ));
    }
    Ok((rows.n_rows(), codec::encode(response_format, &weights, k)))
}

enum ReadError {
    /// The body exceeds the limit; `drained` records whether the rest was read and discarded.
    TooLarge { received: usize, drained: bool },
    /// The connection failed while the body was read.
    Failed(String),
}

/// Reads the whole body, up to `limit` bytes.
///
/// A `Content-Length` over the limit is rejected before any byte is read. An oversized body
/// is then read and discarded (up to [`DRAIN_MAX_BYTES`] more, for at most [`DRAIN_TIMEOUT`]),
/// so that clients that send the whole body before reading see the 413; the body is never
/// buffered past the limit. A client that sent `Expect: 100-continue` is not asked for the
/// body at all.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ReadError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > limit as u64) {
        let expects_continue = headers
            .get(EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let drainable = length <= (limit + DRAIN_MAX_BYTES) as u64 && !expects_continue;
        let drained = drainable && drain(body, DRAIN_MAX_BYTES + limit).await;
        return Err(ReadError::TooLarge {
            received: usize::try_from(length).unwrap_or(usize::MAX),
            drained,
        });
    }

    let capacity = declared.map_or(0, |length| length as usize);
    let mut bytes = Vec::with_capacity(capacity);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ReadError::Failed(format!("reading the request body failed: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if bytes.len() + data.len() > limit {
            let received = bytes.len() + data.len();
            drop(bytes);
            let drained = drain(body, DRAIN_MAX_BYTES).await;
            return Err(ReadError::TooLarge { received, drained });
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes)
}

/// Reads and discards the rest of `body`; returns whether it ended within `max_bytes` and
/// [`DRAIN_TIMEOUT`].
async fn drain(mut body: Body, max_bytes: usize) -> bool {
    let discard = async {
        let mut discarded = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            if let Ok(data) = frame.into_data() {
                discarded += data.len();
                if discarded > max_bytes {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIMEOUT, discard)
        .await
        .unwrap_or(false)
}

/// Logs an error with its request id and builds its JSON response.
fn error_response(id: &RequestId, status: StatusCode, message: String) -> Response {
    let request_id = &*id.0;
    if status.is_server_error() {
        error!(request_id, status = status.as_u16(), "{message}");
    } else {
        warn!(request_id, status = status.as_u16(), "{message}");
    }
    let body = serde_json::json!({ "error": message, "request_id": request_id });
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ntm_model::artifact::ModelArtifact;
    use ntm_model::hyperparams::Activation;
    use ntm_model::network::{Network, NetworkConfig};
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn non_finite_weights_are_rejected() {
        // A ReLU encoder whose first layer overflows to infinity for huge counts, and a mu head
        // that then adds +inf and -inf, so the topic weights are NaN.
        let config = NetworkConfig {
            feature_dim: 3,
            num_topics: 2,
            encoder_layers: vec![2],
            activation: Activation::Relu,
            batch_norm: false,
        };
        let mut network = Network::new(config, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        for tensor in &mut network.params.tensors {
            match tensor.name.as_str() {
                "encoder.0.weight" => tensor.data.fill(10.0),
                "encoder.0.bias" | "mu.bias" => tensor.data.fill(0.0),
                "mu.weight" => tensor.data.copy_from_slice(&[1.0, 1.0, -1.0, -1.0]),
                _ => {}
            }
        }
        let artifact = ModelArtifact::new(network, BTreeMap::new(), Vec::new(), None, None);
        let model = Model::from_artifact(artifact);
        let format = RequestFormat::Csv { label_size: 0 };

        let ok = score_request(&model, format, ResponseFormat::Json, b"1,2,0\n");
        assert!(ok.is_ok(), "{ok:?}");

        let body = b"1,2,0\n3e38,3e38,3e38\n";
        let (status, message) =
            score_request(&model, format, ResponseFormat::Json, body).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("document 1"), "{message}");
        assert!(
            message.contains("3e38") || message.contains("300000000"),
            "{message}"
        );
    }
}
