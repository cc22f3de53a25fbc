//! The same seed, data and thread count give the same weights bit for bit; another seed does not.

mod common;

use common::{prepare_newsgroups, tar_member, train_small};

#[test]
fn same_seed_gives_identical_weights() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "recordio");
    let weights = |name: &str, seed: &str| {
        let model = root.path().join(name);
        train_small(root.path(), &channels, &model, seed, "3");
        tar_member(&model.join("model.tar.gz"), "model.safetensors")
    };

    let first = weights("first", "11");
    let second = weights("second", "11");
    let other_seed = weights("other-seed", "12");

    assert!(!first.is_empty(), "model.safetensors is empty");
    assert!(
        first == second,
        "two runs with seed 11 and one thread wrote different model.safetensors"
    );
    assert!(
        first != other_seed,
        "seeds 11 and 12 wrote the same model.safetensors"
    );
}
