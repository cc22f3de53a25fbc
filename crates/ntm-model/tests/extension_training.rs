//! The extension hyperparameters and the `quality` preset: parsing, validation, and training
//! with them end to end (determinism, artifact round trip).

use std::collections::BTreeMap;

use ntm_formats::SparseRows;
use ntm_model::artifact::ModelArtifact;
use ntm_model::hyperparams::{HyperparameterBuilder, Preset, RestartSelection, EXTENSION_KEYS};
use ntm_model::trainer::{train, TrainConfig, TrainControl, TrainData};
use ntm_model::{EncoderLayers, Hyperparameters, OptimizerKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn builder() -> HyperparameterBuilder {
    let mut b = HyperparameterBuilder::new();
    b.set("feature_dim", "20").unwrap();
    b.set("num_topics", "4").unwrap();
    b
}

fn error_text(key: &str, value: &str) -> String {
    let mut b = builder();
    match b.set(key, value) {
        Ok(_) => panic!("{key}={value:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn extensions_off_by_default() {
    let hp = builder().check().unwrap();
    assert_eq!(hp.prior_alpha, 0.0);
    assert!(!hp.decoder_batch_norm);
    assert_eq!(hp.theta_dropout, 0.0);
    assert_eq!(hp.kl_warmup_epochs, 0);
    assert_eq!(hp.restarts, 1);
    assert_eq!(hp.preset, Preset::None);
    assert!(hp.extensions().is_off());
    let map = hp.to_string_map();
    for key in EXTENSION_KEYS {
        assert!(!map.contains_key(key), "{key} listed at its default");
    }
}

#[test]
fn extension_values_round_trip() {
    let mut b = builder();
    b.set("prior_alpha", "0.02")
        .unwrap()
        .set("decoder_batch_norm", "True")
        .unwrap()
        .set("theta_dropout", "2e-1")
        .unwrap()
        .set("kl_warmup_epochs", "10.0")
        .unwrap()
        .set("head_batch_norm", "TRUE")
        .unwrap()
        .set("decoder_batch_norm_anneal_epochs", "1e2")
        .unwrap()
        .set("adam_beta1", "0.99")
        .unwrap()
        .set("restarts", "3")
        .unwrap()
        .set("restart_selection", "Topics")
        .unwrap();
    let hp = b.check().unwrap();
    assert_eq!(hp.restarts, 3);
    assert_eq!(hp.restart_selection, RestartSelection::Topics);
    assert!(hp.head_batch_norm);
    assert_eq!(hp.decoder_batch_norm_anneal_epochs, 100);
    assert!(hp.extensions().head_batch_norm);
    assert_eq!(hp.extensions().plain_decoder_share, 0.0);
    assert_eq!(hp.prior_alpha, 0.02);
    assert!(hp.decoder_batch_norm);
    assert_eq!(hp.theta_dropout, 0.2);
    assert_eq!(hp.kl_warmup_epochs, 10);
    let map = hp.to_string_map();
    assert_eq!(map["prior_alpha"], "0.02");
    assert_eq!(map["decoder_batch_norm"], "true");
    assert_eq!(map["theta_dropout"], "0.2");
    assert_eq!(map["kl_warmup_epochs"], "10");
    assert_eq!(map["head_batch_norm"], "true");
    assert_eq!(map["decoder_batch_norm_anneal_epochs"], "100");
    assert_eq!(map["adam_beta1"], "0.99");
    assert_eq!(map["restarts"], "3");
    assert_eq!(map["restart_selection"], "topics");
    assert_eq!(hp.optimizer_config().adam_beta1, 0.99);
    assert_eq!(Hyperparameters::from_string_map(&map).unwrap(), hp);
}

#[test]
fn bad_extension_values_name_key_value_and_allowed() {
    let cases = [
        (
            "prior_alpha",
            "-1",
            "out of range",
            "0 (standard normal prior",
        ),
        ("prior_alpha", "0.0001", "out of range", "1e-3..100"),
        (
            "prior_alpha",
            "many",
            "not a number",
            "Dirichlet concentration",
        ),
        ("theta_dropout", "0.95", "out of range", "0.0..0.9"),
        ("theta_dropout", "NaN", "NaN is not allowed", "0.0..0.9"),
        (
            "decoder_batch_norm",
            "yes",
            "not a boolean",
            "true or false",
        ),
        ("kl_warmup_epochs", "2.5", "not an integer", "integer >= 0"),
        ("kl_warmup_epochs", "-3", "out of range", "integer >= 0"),
        ("preset", "fast", "not a known preset", "none, quality"),
        ("head_batch_norm", "1.0", "not a boolean", "true or false"),
        ("adam_beta1", "1", "out of range", "0.0..0.999"),
        ("restarts", "0", "out of range", "integer 1..100"),
        ("restarts", "101", "out of range", "integer 1..100"),
        ("restarts", "1.5", "not an integer", "integer 1..100"),
        (
            "restart_selection",
            "best",
            "not a known selection",
            "run (keep the best run) or topics",
        ),
        (
            "decoder_batch_norm_anneal_epochs",
            "0.5",
            "not an integer",
            "needs decoder_batch_norm = true",
        ),
    ];
    for (key, value, reason, allowed) in cases {
        let message = error_text(key, value);
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert!(message.contains(&format!("{value:?}")), "{message}");
        assert!(message.contains(reason), "{message}");
        assert!(message.contains(allowed), "{message}");
    }
    let message = error_text("prior_alpa", "1");
    assert!(message.contains("did you mean `prior_alpha`?"), "{message}");

    // Topics are chosen across runs, so there must be more than one.
    let mut b = builder();
    b.set("restart_selection", "topics").unwrap();
    let message = b.check().unwrap_err().to_string();
    assert!(message.contains("`restart_selection`"), "{message}");
    assert!(message.contains("restarts is 1"), "{message}");

    // The anneal moves away from the batch-normalised decoder, so it needs one.
    let mut b = builder();
    b.set("decoder_batch_norm_anneal_epochs", "5").unwrap();
    let message = b.check().unwrap_err().to_string();
    assert!(
        message.contains("`decoder_batch_norm_anneal_epochs`"),
        "{message}"
    );
    assert!(message.contains("\"5\""), "{message}");
    assert!(message.contains("decoder_batch_norm is false"), "{message}");
}

#[test]
fn explicit_keys_override_preset() {
    let mut b = builder();
    b.set("preset", "quality").unwrap();
    let hp = b.check().unwrap();
    assert!(hp.decoder_batch_norm);
    assert_eq!(hp.preset, Preset::Quality);
    assert!(!Preset::Quality.values().is_empty());
    for (key, value) in Preset::Quality.values() {
        let mut single = builder();
        single.set(key, value).unwrap();
        if *key == "decoder_batch_norm_anneal_epochs" {
            single.set("decoder_batch_norm", "true").unwrap();
        }
        let expected = single.check().unwrap().to_string_map()[*key].clone();
        assert_eq!(hp.to_string_map()[*key], expected, "{key}");
    }

    // An explicit value set before or after the preset wins over it.
    let mut b = builder();
    b.set("decoder_batch_norm", "false").unwrap();
    b.set("preset", "Quality").unwrap();
    b.set("optimizer", "adam").unwrap();
    let hp = b.check().unwrap();
    assert!(!hp.decoder_batch_norm);
    assert_eq!(hp.optimizer, OptimizerKind::Adam);
    assert_eq!(hp.preset, Preset::Quality);
    let mut b = builder();
    b.set("preset", "quality").unwrap();
    b.set("decoder_batch_norm", "False").unwrap();
    assert!(!b.check().unwrap().decoder_batch_norm);

    // The preset's anneal spans the run: it follows `epochs` unless set explicitly, and it goes
    // away with the decoder batch norm instead of failing the check.
    let mut b = builder();
    b.set("preset", "quality")
        .unwrap()
        .set("epochs", "40")
        .unwrap();
    assert_eq!(b.check().unwrap().decoder_batch_norm_anneal_epochs, 40);
    b.set("decoder_batch_norm_anneal_epochs", "10").unwrap();
    assert_eq!(b.check().unwrap().decoder_batch_norm_anneal_epochs, 10);
    let mut b = builder();
    b.set("preset", "quality").unwrap();
    b.set("decoder_batch_norm", "false").unwrap();
    let hp = b.check().unwrap();
    assert_eq!(hp.decoder_batch_norm_anneal_epochs, 0);
    assert!(hp.head_batch_norm);

    // The preset `none` changes nothing.
    let mut b = builder();
    b.set("preset", "none").unwrap();
    let mut plain = b.check().unwrap();
    plain.preset = Preset::None;
    assert_eq!(plain, builder().check().unwrap());
    assert_eq!(plain.encoder_layers, EncoderLayers::Auto);
}

const BLOCKS: usize = 4;
const BLOCK_WORDS: usize = 5;
const VOCAB: usize = BLOCKS * BLOCK_WORDS;

fn block_corpus(docs: usize) -> SparseRows {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut rows = SparseRows::new(VOCAB);
    for d in 0..docs {
        let block = d % BLOCKS;
        let mut counts = [0.0f32; BLOCK_WORDS];
        for _ in 0..30 {
            counts[rng.random_range(0..BLOCK_WORDS)] += 1.0;
        }
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        for (w, &c) in counts.iter().enumerate() {
            if c > 0.0 {
                ids.push((block * BLOCK_WORDS + w) as u32);
                values.push(c);
            }
        }
        rows.push_row(&ids, &values);
    }
    rows
}

fn quality_config() -> (Hyperparameters, TrainConfig) {
    let mut b = HyperparameterBuilder::new();
    let map = BTreeMap::from([
        ("feature_dim", VOCAB.to_string()),
        ("num_topics", BLOCKS.to_string()),
        ("preset", "quality".to_owned()),
        ("epochs", "8".to_owned()),
        ("mini_batch_size", "32".to_owned()),
        ("encoder_layers", "16".to_owned()),
        ("kl_warmup_epochs", "4".to_owned()),
        ("prior_alpha", "0.1".to_owned()),
        ("theta_dropout", "0.2".to_owned()),
    ]);
    for (k, v) in &map {
        b.set(k, v).unwrap();
    }
    let hp = b.check().unwrap();
    let config = TrainConfig::from_hyperparameters(&hp, "algo-1");
    (hp, config)
}

fn run(config: &TrainConfig, rows: &SparseRows) -> ntm_model::trainer::TrainOutcome {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        train(
            config,
            TrainData::in_memory(rows, None, None),
            TrainControl::default(),
        )
    })
    .expect("training succeeds")
}

#[test]
fn preset_training_deterministic_and_loadable() {
    let rows = block_corpus(160);
    let (hp, config) = quality_config();
    assert!(config.extensions.decoder_batch_norm);
    assert_eq!(config.kl_warmup_epochs, 4);
    let first = run(&config, &rows);
    let second = run(&config, &rows);
    assert_eq!(first.network, second.network, "same seed, different model");
    let history = &first.history;
    assert!(history.iter().all(|e| e.train.total.is_finite()));
    assert!(
        history.last().unwrap().train.recons < history[0].train.recons,
        "reconstruction did not improve: {history:?}"
    );

    let mut other = config.clone();
    other.seed = 1;
    assert_ne!(run(&other, &rows).network.params, first.network.params);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.tar.gz");
    let artifact = ModelArtifact::new(
        first.network.clone(),
        hp.to_string_map(),
        first.history.clone(),
        first.best_epoch,
        None,
    );
    artifact.write_tar_gz(&path).unwrap();
    let loaded = ModelArtifact::load(&path).unwrap();
    assert_eq!(loaded.network, first.network);
    assert_eq!(loaded.metadata.hyperparameters["preset"], "quality");
    assert!(loaded.metadata.network.decoder_batch_norm);
}

/// Settings with the decoder anneal over `anneal` epochs, head batch norm, and early stopping
/// that would end the run after the first bad epoch.
fn anneal_config(epochs: usize, anneal: usize) -> TrainConfig {
    let mut b = HyperparameterBuilder::new();
    let map = BTreeMap::from([
        ("feature_dim", VOCAB.to_string()),
        ("num_topics", BLOCKS.to_string()),
        ("decoder_batch_norm", "true".to_owned()),
        ("head_batch_norm", "true".to_owned()),
        ("decoder_batch_norm_anneal_epochs", anneal.to_string()),
        ("epochs", epochs.to_string()),
        ("num_patience_epochs", "1".to_owned()),
        ("tolerance", "0.1".to_owned()),
        ("mini_batch_size", "32".to_owned()),
        ("encoder_layers", "16".to_owned()),
        ("optimizer", "adam".to_owned()),
        ("learning_rate", "0.01".to_owned()),
    ]);
    for (k, v) in &map {
        b.set(k, v).unwrap();
    }
    TrainConfig::from_hyperparameters(&b.check().unwrap(), "algo-1")
}

#[test]
fn decoder_anneal_ends_on_the_plain_decoder() {
    let rows = block_corpus(160);
    let config = anneal_config(7, 4);
    let outcome = run(&config, &rows);
    // Early stopping with a tolerance of 10 % would stop at epoch 2; it waits for the anneal.
    assert!(outcome.history.len() >= 5, "{:?}", outcome.history);
    let best = outcome.best_epoch.unwrap();
    assert!(best >= 4, "best epoch {best} lies inside the anneal");
    assert_eq!(outcome.network.extensions.plain_decoder_share, 1.0);
    assert!(outcome.network.extensions.head_batch_norm);
    assert_eq!(run(&config, &rows).network, outcome.network);

    // The saved network keeps its share and scores the same after loading.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.tar.gz");
    let artifact = ModelArtifact::new(
        outcome.network.clone(),
        BTreeMap::new(),
        outcome.history.clone(),
        outcome.best_epoch,
        None,
    );
    artifact.write_tar_gz(&path).unwrap();
    let loaded = ModelArtifact::load(&path).unwrap();
    assert_eq!(loaded.network, outcome.network);
    assert_eq!(loaded.metadata.network.plain_decoder_share, 1.0);
    assert!(loaded.metadata.network.head_batch_norm);
}

#[test]
fn short_run_keeps_last_anneal_epoch() {
    let rows = block_corpus(160);
    let outcome = run(&anneal_config(3, 4), &rows);
    assert_eq!(outcome.history.len(), 3);
    assert_eq!(outcome.best_epoch, Some(3));
    assert_eq!(outcome.network.extensions.plain_decoder_share, 0.75);
}
