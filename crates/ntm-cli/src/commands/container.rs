//! SageMaker training-container mode: `ntm train` with no `--data` and `--output`.
//!
//! SageMaker runs `docker run IMAGE train` with this layout under `/opt/ml`:
//! - `input/config/hyperparameters.json`: the job's hyperparameters, every value a string;
//! - `input/config/inputdataconfig.json`: per channel, its `ContentType` and `TrainingInputMode`;
//! - `input/config/resourceconfig.json`: `current_host`, the name used in metric lines;
//! - `input/data/<channel>/`: the channel files in File mode, or the FIFOs
//!   `input/data/<channel>_<epoch>` in Pipe mode, one per pass.
//!
//! The model's files are written unpacked into `model/` (SageMaker archives that folder as
//! `model.tar.gz`). A failure writes its reason to `output/failure` and exits non-zero.
//! SIGTERM (SageMaker's StopTrainingJob) stops training at the next batch boundary; the best
//! finished epoch is written, and nothing is written when no epoch has finished.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ntm_formats::ContentType;
use serde::Deserialize;
use tracing::{error, info, warn};

use super::train::{self, ChannelSettings, TrainArgs};

/// Host name used when `resourceconfig.json` is absent: SageMaker's first host.
const DEFAULT_HOST: &str = "algo-1";

/// One channel's entry in `inputdataconfig.json`.
#[derive(Debug, Deserialize)]
struct ChannelConfig {
    #[serde(rename = "ContentType")]
    content_type: Option<String>,
    #[serde(rename = "TrainingInputMode")]
    training_input_mode: Option<String>,
}

/// The part of `resourceconfig.json` ntm uses.
#[derive(Debug, Deserialize)]
struct ResourceConfig {
    current_host: String,
}

/// Runs a training job from the container layout; on failure writes `output/failure`.
pub fn train(args: &TrainArgs) -> Result<()> {
    let root = &args.sagemaker_root;
    if !root.join("input").is_dir() {
        bail!(
            "no --data and --output given, and {} holds no SageMaker job (no input/ folder); \
             pass --data DIR --output DIR, or --sagemaker-root for another container layout",
            root.display()
        );
    }
    info!(
        "SageMaker container mode: reading the job from {}",
        root.display()
    );
    let path = root.join("output").join("failure");
    // A reused job folder may hold the reason of an earlier run, which this run must not report.
    match fs::remove_file(&path) {
        Ok(()) => info!("Removed the earlier failure reason {}", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => bail!(
            "cannot remove the earlier failure reason {}: {error}",
            path.display()
        ),
    }
    let result = run(args, root);
    if let Err(failure) = &result {
        let written = fs::create_dir_all(root.join("output"))
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                Ok(ntm_model::artifact::write_atomically(
                    &path,
                    format!("{failure:#}").as_bytes(),
                )?)
            });
        if let Err(write_error) = written {
            error!(
                "cannot write the failure reason to {}: {write_error:#}",
                path.display()
            );
        }
    }
    result
}

fn run(args: &TrainArgs, root: &Path) -> Result<()> {
    let config = root.join("input").join("config");

    // 1. Hyperparameters: SageMaker's file, then any flags given on the command line.
    let hyperparameters_path = config.join("hyperparameters.json");
    let file = if hyperparameters_path.is_file() {
        Some((
            hyperparameters_path.as_path(),
            train::read_hyperparameters_file(&hyperparameters_path)?,
        ))
    } else {
        warn!(
            "{} not found: using flags and defaults only",
            hyperparameters_path.display()
        );
        None
    };
    let values = train::merge_values(file, args);

    // 2. Channel content types and input modes.
    let content_types = read_input_data_config(&config.join("inputdataconfig.json"))?;

    // 3. The host name for metric lines.
    let resource_path = config.join("resourceconfig.json");
    let host = if resource_path.is_file() {
        let text = fs::read_to_string(&resource_path)
            .with_context(|| format!("cannot read {}", resource_path.display()))?;
        let resources: ResourceConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid resource configuration",
                resource_path.display()
            )
        })?;
        resources.current_host
    } else {
        DEFAULT_HOST.to_owned()
    };

    // 4. SIGTERM requests a stop at the next batch boundary.
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
        .context("cannot install the SIGTERM handler")?;

    train::container_job(root, values, content_types, host, args, stop)
}

/// Reads `inputdataconfig.json`: each channel's content type and input mode.
fn read_input_data_config(path: &Path) -> Result<ChannelSettings> {
    let mut types = ChannelSettings::default();
    if !path.is_file() {
        info!(
            "{} not found: detecting each channel file's format",
            path.display()
        );
        return Ok(types);
    }
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let channels: BTreeMap<String, ChannelConfig> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid input data configuration", path.display()))?;
    for (name, channel) in channels {
        if name == "auxiliary" {
            continue;
        }
        match channel.training_input_mode.as_deref() {
            None => {}
            Some(mode) if mode.eq_ignore_ascii_case("pipe") => {
                types.pipe.insert(name.clone());
            }
            Some(mode)
                if mode.eq_ignore_ascii_case("file") || mode.eq_ignore_ascii_case("fastfile") => {}
            Some(other) => bail!(
                "{}: channel {name} has TrainingInputMode {other:?}; expected File, FastFile or Pipe",
                path.display()
            ),
        }
        if let Some(content_type) = channel
            .content_type
            .as_deref()
            .filter(|t| !t.trim().is_empty())
        {
            let parsed: ContentType = content_type.parse().with_context(|| {
                format!("{}: invalid ContentType of channel {name}", path.display())
            })?;
            types.per_channel.insert(name, parsed);
        }
    }
    Ok(types)
}
