//! `ntm train --preset quality`: the preset's keys reach the model, flags override them, and the
//! trained model with its batch norms and decoder anneal loads again for evaluation.

mod common;

use std::path::{Path, PathBuf};

use common::{evaluate_json, tar_member, train_four_block, Run};

fn train(root: &Path, flags: &[&str]) -> (Run, PathBuf) {
    train_four_block(root, "model", "5", flags)
}

fn configuration(run: &Run) -> String {
    run.log_messages()
        .into_iter()
        .find(|m| m.starts_with("Final configuration: "))
        .expect("a Final configuration line")
        .to_owned()
}

#[test]
fn preset_quality_trains_a_loadable_model() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train(root.path(), &["--preset", "quality"]);
    run.assert_success();
    let configuration = configuration(&run);
    assert!(
        configuration.contains("'decoder_batch_norm': 'true'"),
        "{configuration}"
    );
    assert!(
        configuration.contains("'preset': 'quality'"),
        "{configuration}"
    );
    // The preset's anneal follows the run's length, here the 5 epochs of the command line.
    for pair in [
        "'head_batch_norm': 'true'",
        "'decoder_batch_norm_anneal_epochs': '5'",
        "'optimizer': 'adam'",
        "'adam_beta1': '0.99'",
        "'epochs': '5'",
    ] {
        assert!(configuration.contains(pair), "{pair} in {configuration}");
    }

    let model = output.join("model.tar.gz");
    let metadata: serde_json::Value =
        serde_json::from_slice(&tar_member(&model, "model.json")).expect("model.json");
    assert_eq!(metadata["network"]["decoder_batch_norm"], true);
    assert_eq!(metadata["hyperparameters"]["preset"], "quality");
    assert!(metadata["tensors"]["decoder.bn.running_var"].is_array());
    assert!(metadata["tensors"]["log_sigma.bn.running_var"].is_array());
    assert_eq!(metadata["network"]["head_batch_norm"], true);
    // The anneal ended with the last epoch: the saved model is the plain decoder.
    assert_eq!(metadata["network"]["plain_decoder_share"], 1.0);
    assert_eq!(metadata["best_epoch"], 5);

    let reference = root.path().join("data").join("train");
    let report = evaluate_json(root.path(), &model, &reference, &[]);
    // Perplexity runs the network in inference mode, with the heads' stored running statistics.
    let perplexity = report["perplexity"]["value"].as_f64().expect("perplexity");
    assert!(perplexity.is_finite(), "{report}");
    assert!(perplexity > 1.0, "{report}");
}

#[test]
fn flags_override_the_preset() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train(
        root.path(),
        &["--decoder-batch-norm", "false", "--preset", "quality"],
    );
    run.assert_success();
    let configuration = configuration(&run);
    assert!(
        !configuration.contains("decoder_batch_norm"),
        "{configuration}"
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&tar_member(&output.join("model.tar.gz"), "model.json"))
            .expect("model.json");
    assert!(metadata["network"].get("decoder_batch_norm").is_none());
    assert!(metadata["network"].get("plain_decoder_share").is_none());
    assert_eq!(metadata["network"]["head_batch_norm"], true);
}

#[test]
fn unknown_preset_is_rejected() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train(root.path(), &["--preset", "best"]);
    let message = run.assert_failure();
    assert!(message.contains("`preset`"), "{message}");
    assert!(message.contains("\"best\""), "{message}");
    assert!(message.contains("none, quality"), "{message}");
    assert!(!output.exists());
}
