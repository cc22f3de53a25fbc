//! Parsing and validation of SageMaker NTM hyperparameters.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ntm_model::hyperparams::{HyperparameterBuilder, KNOWN_KEYS};
use ntm_model::{Activation, EncoderLayers, HyperparameterError, Hyperparameters, OptimizerKind};
use serde_json::{json, Value};

fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hp")
        .join(name)
}

fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(data_path(name)).expect("fixture is readable");
    serde_json::from_str(&text).expect("fixture is valid JSON")
}

fn required_only() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("feature_dim".to_string(), "20".to_string()),
        ("num_topics".to_string(), "4".to_string()),
    ])
}

fn parse_with(key: &str, value: &str) -> Result<Hyperparameters, HyperparameterError> {
    let mut map = required_only();
    map.insert(key.to_string(), value.to_string());
    Hyperparameters::from_string_map(&map)
}

fn error_text(key: &str, value: &str) -> String {
    match parse_with(key, value) {
        Ok(hp) => panic!("{key}={value:?} was accepted as {hp:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_follow_sagemaker() {
    let hp = Hyperparameters::from_string_map(&required_only()).unwrap();
    assert_eq!(hp.feature_dim, 20);
    assert_eq!(hp.num_topics, 4);
    assert_eq!(hp.encoder_layers, EncoderLayers::Auto);
    assert_eq!(hp.encoder_widths(), vec![12, 8]);
    assert_eq!(hp.encoder_layers_activation, Activation::Sigmoid);
    assert_eq!(hp.mini_batch_size, 256);
    assert_eq!(hp.epochs, 50);
    assert_eq!(hp.optimizer, OptimizerKind::Adadelta);
    assert_eq!(hp.tolerance, 0.001);
    assert_eq!(hp.num_patience_epochs, 3);
    assert!(!hp.batch_norm);
    assert_eq!(hp.rescale_gradient, 1.0);
    assert_eq!(hp.clip_gradient, f64::INFINITY);
    assert_eq!(hp.weight_decay, 0.0);
    assert_eq!(hp.learning_rate, 0.001);
    assert_eq!(hp.sub_sample, 1.0);
    assert_eq!(hp.seed, 0);
    assert!(hp.internal.is_empty());
    assert_eq!(Hyperparameters::new(20, 4).unwrap(), hp);
}

#[test]
fn valid_all_strings_fixture_is_accepted() {
    let value = read_json("valid_all_strings.json");
    let hp = Hyperparameters::from_json_value(&value).unwrap();
    assert_eq!(hp.feature_dim, 20);
    assert_eq!(hp.num_topics, 4);
    assert_eq!(hp.epochs, 10);
    assert_eq!(hp.mini_batch_size, 32);
    assert_eq!(hp.learning_rate, 0.01);
    assert!(!hp.batch_norm);
    assert_eq!(hp.optimizer, OptimizerKind::Adadelta);
    assert_eq!(hp.encoder_layers, EncoderLayers::Widths(vec![12, 8]));
    assert_eq!(hp.encoder_layers_activation, Activation::Sigmoid);
    assert_eq!(hp.num_patience_epochs, 3);
    assert_eq!(hp.tolerance, 0.001);
    assert_eq!(hp.sub_sample, 1.0);
    assert_eq!(hp.clip_gradient, f64::INFINITY);
    assert_eq!(hp.rescale_gradient, 1.0);
    assert_eq!(hp.weight_decay, 0.0);

    let from_file = Hyperparameters::from_json_file(&data_path("valid_all_strings.json")).unwrap();
    assert_eq!(from_file, hp);
}

#[test]
fn every_bad_fixture_names_key_value_and_allowed() {
    let cases = read_json("bad_cases.json");
    let cases = cases.as_array().expect("a list of cases");
    assert_eq!(cases.len(), 14);
    for case in cases {
        let key = case["parameter"].as_str().unwrap();
        let value = case["value"].as_str().unwrap();
        let allowed = case["allowed"].as_str().unwrap();
        let error = Hyperparameters::from_json_value(&case["hyperparameters"])
            .expect_err(&format!("{key}={value} must be rejected"));
        let message = error.to_string();
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert!(message.contains(&format!("{value:?}")), "{message}");
        match error {
            HyperparameterError::UnknownKey { suggestion, .. } => {
                assert_eq!(key, "num_topic");
                assert_eq!(suggestion, Some("num_topics"));
                assert!(message.contains("did you mean `num_topics`?"), "{message}");
            }
            HyperparameterError::InvalidValue {
                key: error_key,
                value: error_value,
                allowed: error_allowed,
                ..
            } => {
                assert_eq!(error_key, key);
                assert_eq!(error_value, value);
                assert!(error_allowed.contains(allowed), "{key}: {error_allowed}");
                assert!(message.contains(allowed), "{message}");
            }
            other => panic!("{key}={value}: unexpected error {other:?}"),
        }
    }
}

#[test]
fn sdk_string_forms_are_accepted() {
    assert!(parse_with("batch_norm", "True").unwrap().batch_norm);
    assert!(parse_with("batch_norm", "true").unwrap().batch_norm);
    assert!(!parse_with("batch_norm", "False").unwrap().batch_norm);
    assert!(!parse_with("batch_norm", "false").unwrap().batch_norm);

    assert_eq!(
        parse_with("learning_rate", "1e-06").unwrap().learning_rate,
        1e-6
    );
    assert_eq!(parse_with("tolerance", "1e-06").unwrap().tolerance, 1e-6);
    assert_eq!(
        parse_with("rescale_gradient", "1.0")
            .unwrap()
            .rescale_gradient,
        1.0
    );
    for infinity in ["Inf", "inf", "Infinity", "infinity", "INF"] {
        let hp = parse_with("clip_gradient", infinity).unwrap();
        assert_eq!(hp.clip_gradient, f64::INFINITY, "{infinity}");
    }

    assert_eq!(
        parse_with("clip_gradient", "0.001").unwrap().clip_gradient,
        0.001
    );
    assert_eq!(parse_with("epochs", "10.0").unwrap().epochs, 10);
    assert_eq!(parse_with("epochs", " 7 ").unwrap().epochs, 7);

    assert_eq!(
        parse_with("optimizer", "Adam").unwrap().optimizer,
        OptimizerKind::Adam
    );
    assert_eq!(
        parse_with("encoder_layers_activation", "relu")
            .unwrap()
            .encoder_layers_activation,
        Activation::Relu
    );
    assert_eq!(
        parse_with("encoder_layers_activation", "SoftPlus")
            .unwrap()
            .encoder_layers_activation,
        Activation::Softplus
    );
    let err = parse_with("encoder_layers_activation", "gelu")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gelu") && err.contains("sigmoid, tanh, relu, softplus"),
        "{err}"
    );
    assert_eq!(
        parse_with("seed", "18446744073709551615").unwrap().seed,
        u64::MAX
    );
}

#[test]
fn encoder_layers_accepts_every_list_form() {
    for text in ["100,50", "100, 50", "[100, 50]", "[100,50]", " 100 , 50 "] {
        let hp = parse_with("encoder_layers", text).unwrap();
        assert_eq!(
            hp.encoder_layers,
            EncoderLayers::Widths(vec![100, 50]),
            "{text}"
        );
        assert_eq!(hp.encoder_widths(), vec![100, 50]);
    }
    assert_eq!(
        parse_with("encoder_layers", "auto").unwrap().encoder_layers,
        EncoderLayers::Auto
    );
    assert_eq!(
        parse_with("encoder_layers", "30").unwrap().encoder_layers,
        EncoderLayers::Widths(vec![30])
    );
    for bad in ["", "[]", "100,", "0,5", "-3", "[100, 50", "100 50", "1.5"] {
        let message = error_text("encoder_layers", bad);
        assert!(message.contains("`encoder_layers`"), "{bad:?}: {message}");
        assert!(
            message.contains("comma-separated positive integers"),
            "{bad:?}: {message}"
        );
    }
}

#[test]
fn non_integral_integers_are_rejected() {
    let message = error_text("epochs", "10.5");
    assert!(message.contains("not an integer"), "{message}");
    assert!(message.contains("\"10.5\""), "{message}");
    let message = error_text("mini_batch_size", "abc");
    assert!(message.contains("not an integer"), "{message}");
    let message = error_text("feature_dim", "inf");
    assert!(message.contains("`feature_dim`"), "{message}");
    let message = error_text("seed", "-1");
    assert!(message.contains("out of range"), "{message}");
}

#[test]
fn range_bounds_are_inclusive_where_documented() {
    // (key, accepted values at the bounds, rejected values just outside, allowed text)
    let table: [(&str, &[&str], &[&str], &str); 11] = [
        (
            "feature_dim",
            &["1", "1000000"],
            &["0", "1000001"],
            "integer 1..1000000",
        ),
        (
            "num_topics",
            &["2", "1000"],
            &["1", "1001"],
            "integer 2..1000",
        ),
        (
            "mini_batch_size",
            &["1", "10000"],
            &["0", "10001"],
            "integer 1..10000",
        ),
        ("epochs", &["1", "100000"], &["0", "-1"], "integer >= 1"),
        (
            "num_patience_epochs",
            &["1", "1000"],
            &["0"],
            "integer >= 1",
        ),
        (
            "tolerance",
            &["1e-06", "0.1"],
            &["9e-07", "0.11"],
            "float 1e-6..0.1",
        ),
        (
            "rescale_gradient",
            &["0.001", "1.0"],
            &["0.0009", "1.5"],
            "float 1e-3..1.0",
        ),
        (
            "clip_gradient",
            &["0.001", "1e30", "Inf"],
            &["0.0005", "-Inf"],
            "float >= 1e-3",
        ),
        (
            "weight_decay",
            &["0.0", "1.0"],
            &["-0.1", "1.01"],
            "float 0.0..1.0",
        ),
        (
            "learning_rate",
            &["1e-06", "1.0"],
            &["0", "1.5"],
            "float 1e-6..1.0",
        ),
        (
            "sub_sample",
            &["1e-3", "1.0"],
            &["0.0", "1.01"],
            "float in (0, 1]",
        ),
    ];
    for (key, accepted, rejected, allowed) in table {
        for value in accepted {
            assert!(
                parse_with(key, value).is_ok(),
                "{key}={value} must be accepted"
            );
        }
        for value in rejected {
            let message = error_text(key, value);
            assert!(message.contains("out of range"), "{message}");
            assert!(message.contains(allowed), "{message}");
        }
    }

    assert!(error_text("learning_rate", "nan").contains("NaN is not allowed"));
}

#[test]
fn internal_keys_are_kept_and_ignored() {
    let mut map = required_only();
    map.insert("_kvstore".to_string(), "auto_gpu".to_string());
    map.insert("_tuning_objective_metric".to_string(), String::new());
    let hp = Hyperparameters::from_string_map(&map).unwrap();
    assert_eq!(
        hp.internal.get("_kvstore").map(String::as_str),
        Some("auto_gpu")
    );
    let strings = hp.to_string_map();
    assert_eq!(
        strings.get("_kvstore").map(String::as_str),
        Some("auto_gpu")
    );
    assert_eq!(
        strings.get("_tuning_objective_metric").map(String::as_str),
        Some("")
    );
}

#[test]
fn unknown_key_suggests_closest_and_lists_valid_keys() {
    let message = error_text("mini_batch_siz", "64");
    assert!(
        message.contains("unknown hyperparameter `mini_batch_siz`"),
        "{message}"
    );
    assert!(
        message.contains("did you mean `mini_batch_size`?"),
        "{message}"
    );
    for key in KNOWN_KEYS {
        assert!(message.contains(key), "{message} lacks {key}");
    }
    let message = error_text("colour", "blue");
    assert!(
        message.contains("unknown hyperparameter `colour`"),
        "{message}"
    );
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn missing_required_keys_are_named() {
    let mut builder = HyperparameterBuilder::new();
    builder.set("num_topics", "4").unwrap();
    let message = builder.check().unwrap_err().to_string();
    assert!(
        message.contains("missing required hyperparameter `feature_dim`"),
        "{message}"
    );
    assert!(message.contains("integer 1..1000000"), "{message}");

    let mut builder = HyperparameterBuilder::new();
    builder.set("feature_dim", "4").unwrap();
    let message = builder.check().unwrap_err().to_string();
    assert!(message.contains("`num_topics`"), "{message}");
}

#[test]
fn json_numbers_booleans_and_arrays_are_accepted() {
    let value = json!({
        "feature_dim": 20,
        "num_topics": 4.0,
        "batch_norm": true,
        "encoder_layers": [100, 50],
        "learning_rate": 0.01,
        "clip_gradient": 5,
        "_num_gpus": "auto",
        "_flag": null,
    });
    let hp = Hyperparameters::from_json_value(&value).unwrap();
    assert_eq!(hp.num_topics, 4);
    assert!(hp.batch_norm);
    assert_eq!(hp.encoder_layers, EncoderLayers::Widths(vec![100, 50]));
    assert_eq!(hp.learning_rate, 0.01);
    assert_eq!(hp.clip_gradient, 5.0);
    assert_eq!(hp.internal.get("_flag").map(String::as_str), Some("null"));

    let error = Hyperparameters::from_json_value(&json!({"feature_dim": 20, "num_topics": null}))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`num_topics`") && error.contains("\"null\""),
        "{error}"
    );

    let error = Hyperparameters::from_json_value(&json!([1, 2])).unwrap_err();
    assert!(
        matches!(
            error,
            HyperparameterError::NotAnObject { found: "an array" }
        ),
        "{error}"
    );
}

#[test]
fn invalid_json_and_missing_file_are_reported() {
    let error = Hyperparameters::from_json_str("{\"feature_dim\": \"20\",\n  oops}").unwrap_err();
    match &error {
        HyperparameterError::InvalidJson { line, .. } => assert_eq!(*line, 2),
        other => panic!("unexpected error {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("hyperparameters.json");
    let error = Hyperparameters::from_json_file(&missing).unwrap_err();
    assert!(matches!(error, HyperparameterError::Io { .. }));
    assert!(
        error.to_string().contains("hyperparameters.json"),
        "{error}"
    );

    std::fs::write(&missing, "{\"feature_dim\": \"20\", \"num_topics\": \"x\"}").unwrap();
    let error = Hyperparameters::from_json_file(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`num_topics`") && error.contains("\"x\""),
        "{error}"
    );
}

#[test]
fn overrides_replace_file_values_with_same_validation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hyperparameters.json");
    std::fs::write(
        &path,
        r#"{"feature_dim": "20", "num_topics": "4", "epochs": "10"}"#,
    )
    .unwrap();

    let mut builder = HyperparameterBuilder::new();
    builder.apply_json_file(&path).unwrap();
    builder
        .set("epochs", "3")
        .unwrap()
        .set("optimizer", "sgd")
        .unwrap();
    let error = builder.set("epochs", "0").unwrap_err().to_string();
    assert!(
        error.contains("`epochs`") && error.contains("\"0\""),
        "{error}"
    );
    let hp = builder.check().unwrap();
    assert_eq!(hp.epochs, 3, "a rejected override leaves the earlier value");
    assert_eq!(hp.optimizer, OptimizerKind::Sgd);

    let mut again = hp.to_builder();
    again.set("num_topics", "7").unwrap();
    let changed = again.check().unwrap();
    assert_eq!(changed.num_topics, 7);
    assert_eq!(changed.epochs, 3);
}

#[test]
fn string_map_round_trips_through_parser() {
    let mut map = required_only();
    map.insert("learning_rate".to_string(), "1e-06".to_string());
    map.insert("encoder_layers".to_string(), "[100, 50]".to_string());
    map.insert("batch_norm".to_string(), "True".to_string());
    map.insert("clip_gradient".to_string(), "Infinity".to_string());
    map.insert("optimizer".to_string(), "rmsprop".to_string());
    map.insert("seed".to_string(), "42".to_string());
    let hp = Hyperparameters::from_string_map(&map).unwrap();

    let strings = hp.to_string_map();
    assert_eq!(strings["learning_rate"], "1e-06");
    assert_eq!(strings["encoder_layers"], "100,50");
    assert_eq!(strings["batch_norm"], "true");
    assert_eq!(strings["clip_gradient"], "Inf");
    assert_eq!(strings["rescale_gradient"], "1.0");
    assert_eq!(strings["tolerance"], "0.001");
    assert_eq!(strings["weight_decay"], "0.0");
    assert_eq!(strings["optimizer"], "rmsprop");
    assert_eq!(strings["seed"], "42");
    assert_eq!(strings.len(), KNOWN_KEYS.len());

    let reparsed = Hyperparameters::from_string_map(&strings).unwrap();
    assert_eq!(reparsed, hp);
}

#[test]
fn final_configuration_line_lists_every_key() {
    let hp = Hyperparameters::new(8, 3).unwrap();
    let line = hp.final_configuration_line();
    assert!(
        line.starts_with("Final configuration: {'batch_norm': 'false', "),
        "{line}"
    );
    assert!(line.contains("'clip_gradient': 'Inf'"), "{line}");
    assert!(line.contains("'encoder_layers': 'auto'"), "{line}");
    assert!(line.contains("'feature_dim': '8'"), "{line}");
    assert!(line.ends_with("'weight_decay': '0.0'}"), "{line}");
}

#[test]
fn optimizer_config_carries_optimizer_settings() {
    let mut map = required_only();
    map.insert("optimizer".to_string(), "adam".to_string());
    map.insert("learning_rate".to_string(), "0.01".to_string());
    map.insert("rescale_gradient".to_string(), "0.5".to_string());
    map.insert("clip_gradient".to_string(), "2.5".to_string());
    map.insert("weight_decay".to_string(), "0.1".to_string());
    let config = Hyperparameters::from_string_map(&map)
        .unwrap()
        .optimizer_config();
    assert_eq!(config.kind, OptimizerKind::Adam);
    assert_eq!(config.learning_rate, 0.01f32);
    assert_eq!(config.rescale_grad, 0.5f32);
    assert_eq!(config.clip_gradient, 2.5f32);
    assert_eq!(config.weight_decay, 0.1f32);
}

#[test]
fn early_stopping_disabled_when_patience_exceeds_epochs() {
    let mut map = required_only();
    map.insert("epochs".to_string(), "5".to_string());
    map.insert("num_patience_epochs".to_string(), "6".to_string());
    assert!(!Hyperparameters::from_string_map(&map)
        .unwrap()
        .early_stopping_enabled());
    map.insert("num_patience_epochs".to_string(), "5".to_string());
    assert!(Hyperparameters::from_string_map(&map)
        .unwrap()
        .early_stopping_enabled());
}
