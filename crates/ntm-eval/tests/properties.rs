//! Bounds and finiteness of every metric on random corpora and topics.

use ntm_eval::{
    evaluate_topics, inverted_rbo, rank_biased_overlap, MetricOptions, Reference,
    VocabularyEmbeddings,
};
use proptest::prelude::*;

const VOCAB: usize = 12;

fn corpus() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(0..VOCAB as u32, 0..25), 0..12)
}

fn topics() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(
        prop::sample::subsequence((0..VOCAB as u32).collect::<Vec<_>>(), 1..6).prop_shuffle(),
        1..5,
    )
}

fn vectors() -> impl Strategy<Value = Vec<Option<Vec<f32>>>> {
    prop::collection::vec(
        prop::option::of(prop::collection::vec(-2.0f32..2.0, 3)),
        VOCAB,
    )
}

proptest! {
    #[test]
    fn metrics_are_finite_and_bounded(documents in corpus(), top in topics(), vectors in vectors()) {
        let embeddings = VocabularyEmbeddings::from_vectors(vectors);
        let m = evaluate_topics(
            &top,
            Reference::Tokens { documents: &documents, vocab_size: VOCAB },
            Some(&embeddings),
            &MetricOptions::default(),
        );
        let in_range = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo - 1e-9 && v <= hi + 1e-9;
        for scores in [&m.npmi, m.c_npmi.as_ref().unwrap()] {
            prop_assert_eq!(scores.per_topic.len(), top.len());
            for &v in scores.per_topic.iter().chain([&scores.overall]) {
                prop_assert!(in_range(v, -1.0, 1.0), "NPMI {}", v);
            }
        }
        for &v in m.c_v.as_ref().unwrap().per_topic.iter() {
            prop_assert!(in_range(v, -1.0, 1.0), "c_v {}", v);
        }
        for &v in &m.u_mass.per_topic {
            prop_assert!(v.is_finite() && v <= 1e-6, "u_mass {}", v);
        }
        prop_assert!(in_range(m.inverted_rbo.overall, 0.0, 1.0));
        prop_assert!(in_range(m.topic_diversity, 0.0, 1.0));
        let wetc = m.wetc.as_ref().unwrap();
        for v in wetc.per_topic.iter().flatten() {
            prop_assert!(in_range(*v, -1.0, 1.0), "WETC {}", v);
        }
    }

    #[test]
    fn rbo_is_symmetric_and_bounded(a in prop::sample::subsequence((0..20u32).collect::<Vec<_>>(), 0..10).prop_shuffle(),
                                    b in prop::sample::subsequence((0..20u32).collect::<Vec<_>>(), 0..10).prop_shuffle(),
                                    p in 0.05f64..1.0) {
        let ab = rank_biased_overlap(&a, &b, p);
        let ba = rank_biased_overlap(&b, &a, p);
        prop_assert!((ab - ba).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&ab));
        let irbo = inverted_rbo(&[a.clone(), b.clone()], p).overall;
        prop_assert!((irbo - (1.0 - ab)).abs() < 1e-12);
    }
}
