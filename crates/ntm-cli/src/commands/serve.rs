//! `ntm serve`: the SageMaker inference container's HTTP server.
//!
//! SageMaker runs `docker run IMAGE serve` with the model unpacked into `/opt/ml/model`, so
//! `ntm serve` without arguments serves that folder on 0.0.0.0:8080, or on the port in
//! `SAGEMAKER_BIND_TO_PORT`. SIGTERM and Ctrl-C stop accepting connections and let the
//! requests in flight finish before the process exits.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ntm_serve::{Server, ServerConfig};
use tracing::info;

const MIB: u64 = 1024 * 1024;

/// Arguments of `ntm serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The model: a folder with its files (as SageMaker unpacks `model.tar.gz`), a folder that
    /// contains `model.tar.gz`, or a `model.tar.gz` file.
    #[arg(long, default_value = "/opt/ml/model")]
    pub model: PathBuf,
    /// TCP port to listen on; 0 lets the system pick a free port, which the log names. Without
    /// it, the environment variable SAGEMAKER_BIND_TO_PORT gives the port, else 8080.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on. The default 0.0.0.0 accepts connections on every interface, as
    /// SageMaker requires; use 127.0.0.1 (or `localhost`) to serve this machine only.
    #[arg(long, default_value = "0.0.0.0", value_parser = parse_host)]
    pub host: IpAddr,
    /// Threads that decode and score requests; 0 starts one per core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Largest accepted request body in MiB (1 to 100); larger requests get 413. 0 selects the
    /// maximum, 100, as SageMaker batch transform uses 0 for "no limit". Without it, the
    /// environment variable SAGEMAKER_MAX_PAYLOAD_IN_MB gives the limit, else 6.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_PAYLOAD_MB))]
    pub max_payload_mb: Option<u64>,
}

/// Largest payload limit in MiB.
const MAX_PAYLOAD_MB: u64 = 100;

/// Returns the flag's value, else the environment variable's, else `default`. A variable that
/// is set but invalid is an error that names it, since no flag was given.
fn flag_or_env<T>(flag: Option<T>, variable: &str, allowed: &str, default: T) -> Result<T>
where
    T: std::str::FromStr,
{
    if let Some(value) = flag {
        return Ok(value);
    }
    match std::env::var(variable) {
        Ok(text) => text.trim().parse::<T>().map_err(|_| {
            anyhow::anyhow!(
                "invalid value {text:?} in the environment variable {variable}: expected {allowed}"
            )
        }),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!(
                "the environment variable {variable} is not valid UTF-8: expected {allowed}"
            )
        }
    }
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let port = flag_or_env(
        args.port,
        "SAGEMAKER_BIND_TO_PORT",
        "a port number from 0 to 65535",
        8080u16,
    )?;
    let max_payload_mb = flag_or_env(
        args.max_payload_mb,
        "SAGEMAKER_MAX_PAYLOAD_IN_MB",
        "a whole number of MiB from 0 to 100",
        6u64,
    )?;
    if max_payload_mb > MAX_PAYLOAD_MB {
        anyhow::bail!(
            "invalid value \"{max_payload_mb}\" in the environment variable \
             SAGEMAKER_MAX_PAYLOAD_IN_MB: expected a whole number of MiB from 0 to 100"
        );
    }
    let payload_mb = if max_payload_mb == 0 {
        MAX_PAYLOAD_MB
    } else {
        max_payload_mb
    };
    let config = ServerConfig {
        model_path: args.model.clone(),
        threads: args.threads,
        max_payload_bytes: usize::try_from(payload_mb * MIB)
            .context("the payload limit does not fit in memory addresses")?,
    };
    // Two runtime threads move bytes, or one when the process may use only one core (for
    // example under `taskset -c 0`): there a second thread only adds wake-ups and context
    // switches. Decoding and scoring run on the server's own pool.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.clamp(1, 2))
        .thread_name("ntm-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    runtime.block_on(async {
        // Install the signal handlers before binding, so a SIGTERM right after start-up is
        // not lost.
        let shutdown = shutdown_signal()?;
        let address = SocketAddr::new(args.host, port);
        let server = Server::bind(address, config).await?;
        server.run(shutdown).await?;
        Ok(())
    })
}

/// Returns a future that completes on SIGTERM (SageMaker's stop signal) or Ctrl-C.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => info!("Received SIGTERM"),
                _ = interrupt.recv() => info!("Received SIGINT"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            info!("Received Ctrl-C");
        })
    }
}

/// Parses `--host`: an IPv4 or IPv6 address, or `localhost` for 127.0.0.1.
fn parse_host(value: &str) -> Result<IpAddr, String> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    value.parse().map_err(|_| {
        format!(
            "{value:?} is not an IP address; give one such as 127.0.0.1 or 0.0.0.0, or localhost"
        )
    })
}

#[cfg(test)]
mod host_tests {
    use super::parse_host;

    #[test]
    fn host_takes_addresses_and_localhost() {
        assert_eq!(parse_host("localhost"), Ok([127, 0, 0, 1].into()));
        assert_eq!(parse_host("LocalHost"), Ok([127, 0, 0, 1].into()));
        assert_eq!(parse_host("0.0.0.0"), Ok([0, 0, 0, 0].into()));
        assert!(parse_host("::1").is_ok_and(|ip| ip.is_loopback()));
        let message = parse_host("localhst").expect_err("a misspelt name");
        assert!(
            message.contains("\"localhst\" is not an IP address"),
            "{message}"
        );
    }
}
