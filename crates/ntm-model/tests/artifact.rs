//! Writing and reading the model artifact.

use std::collections::BTreeMap;

use ntm_model::artifact::{EpochRecord, LossRecord, ModelArtifact};
use ntm_model::hyperparams::Activation;
use ntm_model::network::{Network, NetworkConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn artifact(batch_norm: bool) -> ModelArtifact {
    let config = NetworkConfig {
        feature_dim: 7,
        num_topics: 3,
        encoder_layers: vec![6, 5],
        activation: Activation::Tanh,
        batch_norm,
    };
    let network = Network::new(config, &mut ChaCha8Rng::seed_from_u64(3));
    let loss = LossRecord {
        recons: 10.0,
        kld: 1.5,
        total: 11.5,
    };
    let history = vec![EpochRecord {
        epoch: 1,
        documents: 9,
        train: loss,
        validation: Some(loss),
        seconds: 0.5,
    }];
    let hyperparameters = BTreeMap::from([("num_topics".to_owned(), "3".to_owned())]);
    let vocabulary = Some((0..7).map(|i| format!("word{i}")).collect());
    let mut artifact = ModelArtifact::new(network, hyperparameters, history, Some(1), vocabulary);
    artifact.metadata.tokenizer = Some(serde_json::json!({"min_token_len": 2}));
    artifact
}

#[test]
fn tar_round_trip_keeps_everything() {
    for batch_norm in [false, true] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("model.tar.gz");
        let original = artifact(batch_norm);
        original.write_tar_gz(&path).expect("write");
        let loaded = ModelArtifact::load(&path).expect("load");
        assert_eq!(loaded.network.params, original.network.params);
        assert_eq!(loaded.network.running, original.network.running);
        assert_eq!(loaded.metadata, original.metadata);
        assert_eq!(loaded.vocabulary, original.vocabulary);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("model.tar.gz")],
            "temporary files left behind"
        );
    }
}

#[test]
fn folder_round_trip() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let original = artifact(true);
    original.write_dir(dir.path()).expect("write");
    for file in ["model.safetensors", "model.json", "vocab.txt"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let loaded = ModelArtifact::load(dir.path()).expect("load");
    assert_eq!(loaded.network.params, original.network.params);
}

#[test]
fn missing_and_corrupt_members_are_named() {
    let dir = tempfile::tempdir().expect("temporary folder");
    artifact(false).write_dir(dir.path()).expect("write");
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").expect("overwrite");
    let message = ModelArtifact::load(dir.path())
        .expect_err("corrupt weights")
        .to_string();
    assert!(message.contains("model.safetensors"), "{message}");

    std::fs::remove_file(dir.path().join("model.json")).expect("remove");
    let message = ModelArtifact::load(dir.path())
        .expect_err("no metadata")
        .to_string();
    assert!(message.contains("model.json"), "{message}");
}

#[test]
fn damaged_archive_and_short_vocabulary_are_named() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("model.tar.gz");
    artifact(false).write_tar_gz(&path).expect("write");
    let bytes = std::fs::read(&path).expect("read");
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write the first half");
    let message = error_chain(&ModelArtifact::load(&cut).expect_err("half an archive"));
    assert!(
        message.contains("cut.tar.gz is truncated or corrupt"),
        "{message}"
    );

    // A vocabulary with a line missing would shift every later word onto the wrong feature.
    let folder = dir.path().join("folder");
    artifact(false).write_dir(&folder).expect("write");
    let words: Vec<String> = (0..6).map(|i| format!("word{i}\n")).collect();
    std::fs::write(folder.join("vocab.txt"), words.concat()).expect("cut the vocabulary");
    let message = ModelArtifact::load(&folder)
        .expect_err("short vocabulary")
        .to_string();
    assert!(
        message.contains("vocab.txt")
            && message.contains("6 lines")
            && message.contains("7 features"),
        "{message}"
    );

    let weights = folder.join("model.safetensors");
    artifact(false).write_dir(&folder).expect("write again");
    let bytes = std::fs::read(&weights).expect("read");
    std::fs::write(&weights, &bytes[..bytes.len() - 10]).expect("cut the weights");
    let message = ModelArtifact::load(&folder)
        .expect_err("short weights")
        .to_string();
    assert!(
        message.contains("model.safetensors") && message.contains("truncated or corrupt"),
        "{message}"
    );
}

/// Joins an error with its sources, as the command line prints them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[test]
fn newer_format_version_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut newer = artifact(false);
    newer.metadata.format_version = 99;
    newer.write_dir(dir.path()).expect("write");
    let message = ModelArtifact::load(dir.path())
        .expect_err("newer version")
        .to_string();
    assert!(message.contains("99"), "{message}");
}

#[cfg(unix)]
#[test]
fn written_files_are_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("model.tar.gz");
    artifact(false).write_tar_gz(&path).expect("write");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644, "mode {mode:o}");
}
