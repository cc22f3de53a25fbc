//! The five update rules against values computed from the MXNet 1.x formulas.
//!
//! Each rule has a literal hand computation for some elements and a float64 reference of
//! its formula for two steps. The parameter set has a decayed weight tensor and a bias
//! tensor without decay, both with the same values, so the effect of weight decay shows.

use ntm_model::{Optimizer, OptimizerConfig, OptimizerKind, ParamSet, RowSupport, Tensor};

const WEIGHTS: [f32; 4] = [0.5, -1.0, 2.0, 0.0];
const GRADS_STEP1: [f32; 4] = [0.2, -3.0, 0.05, 0.0];
const GRADS_STEP2: [f32; 4] = [-0.4, 1.0, 0.3, -0.7];

fn tensor(name: &str, data: &[f32], decay: bool) -> Tensor {
    Tensor {
        name: name.to_string(),
        shape: vec![data.len()],
        data: data.to_vec(),
        decay,
    }
}

/// Builds a decayed weight tensor and a bias tensor without decay, both containing `data`.
fn params_with(data: &[f32]) -> ParamSet {
    ParamSet {
        tensors: vec![
            tensor("enc.weight", data, true),
            tensor("enc.bias", data, false),
        ],
    }
}

fn config(
    kind: OptimizerKind,
    learning_rate: f32,
    rescale_grad: f32,
    clip_gradient: f32,
    weight_decay: f32,
) -> OptimizerConfig {
    OptimizerConfig {
        kind,
        learning_rate,
        rescale_grad,
        clip_gradient,
        weight_decay,
        ..OptimizerConfig::default()
    }
}

/// Runs the optimizer for the two fixed gradient steps and returns the parameters after each.
fn run_two_steps(config: OptimizerConfig) -> (ParamSet, ParamSet) {
    let mut params = params_with(&WEIGHTS);
    let mut optimizer = Optimizer::new(config, &params);
    optimizer.step(&mut params, &params_with(&GRADS_STEP1));
    let after_first = params.clone();
    optimizer.step(&mut params, &params_with(&GRADS_STEP2));
    assert_eq!(optimizer.num_update(), 2);
    (after_first, params)
}

fn assert_close(actual: f32, expected: f64, label: &str) {
    let tolerance = 2e-6 * expected.abs().max(1e-2);
    assert!(
        (f64::from(actual) - expected).abs() <= tolerance,
        "{label}: got {actual}, expected {expected}"
    );
}

fn clip64(x: f64, c: f64) -> f64 {
    x.clamp(-c, c)
}

/// Float64 state of one element for the reference rules.
#[derive(Default, Clone, Copy)]
struct Reference {
    w: f64,
    a: f64,
    b: f64,
}

/// Applies one update of `kind` to one element in float64, straight from the formula sheet.
fn reference_step(
    kind: OptimizerKind,
    s: &mut Reference,
    g: f64,
    t: i32,
    cfg: &OptimizerConfig,
    decay: bool,
) {
    let lr = f64::from(cfg.learning_rate);
    let r = f64::from(cfg.rescale_grad);
    let c = f64::from(cfg.clip_gradient);
    let wd = if decay {
        f64::from(cfg.weight_decay)
    } else {
        0.0
    };
    match kind {
        OptimizerKind::Sgd => {
            s.w = (1.0 - lr * wd) * s.w - lr * clip64(r * g, c);
        }
        OptimizerKind::Adam => {
            // MXNet's kernel stores β1, β2 and 1 − β in float32, so 1 − 0.999 is 0.0010000467.
            let beta1_f32 = cfg.adam_beta1 as f32;
            let (beta1, beta2) = (f64::from(beta1_f32), f64::from(0.999f32));
            let (one_minus_beta1, one_minus_beta2) =
                (f64::from(1.0f32 - beta1_f32), f64::from(1.0f32 - 0.999f32));
            let g_hat = clip64(r * g + wd * s.w, c);
            s.a = beta1 * s.a + one_minus_beta1 * g_hat;
            s.b = beta2 * s.b + one_minus_beta2 * g_hat * g_hat;
            let lr_t = lr * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - cfg.adam_beta1.powi(t));
            s.w -= lr_t * s.a / (s.b.sqrt() + 1e-8);
        }
        OptimizerKind::Adagrad => {
            let g_hat = clip64(r * g, c);
            s.a += g_hat * g_hat;
            s.w -= lr * (g_hat / (s.a + 1e-7).sqrt() + wd * s.w);
        }
        OptimizerKind::Adadelta => {
            // float32 arrays times Python floats: ρ = 0.9 and 1 − ρ round to float32.
            let (rho, one_minus_rho) = (f64::from(0.9f32), f64::from(0.1f32));
            let g_hat = clip64(r * g, c);
            s.a = rho * s.a + one_minus_rho * g_hat * g_hat;
            let delta = (s.b + 1e-5).sqrt() / (s.a + 1e-5).sqrt() * g_hat;
            s.b = rho * s.b + one_minus_rho * delta * delta;
            s.w -= delta + wd * s.w;
        }
        OptimizerKind::Rmsprop => {
            // The kernel stores γ1 and 1 − γ1 in float32, as for Adam.
            let (gamma1, one_minus_gamma1) = (f64::from(0.9f32), f64::from(1.0f32 - 0.9f32));
            let g_hat = clip64(r * g + wd * s.w, c);
            s.a = one_minus_gamma1 * g_hat * g_hat + gamma1 * s.a;
            s.w -= lr * g_hat / (s.a + 1e-8).sqrt();
        }
    }
}

/// Checks both steps of `kind` against the float64 reference, for every element of both tensors.
fn check_against_reference(cfg: OptimizerConfig) {
    let (first, second) = run_two_steps(cfg);
    for (tensor_index, decay) in [(0, true), (1, false)] {
        for i in 0..WEIGHTS.len() {
            let mut s = Reference {
                w: f64::from(WEIGHTS[i]),
                ..Reference::default()
            };
            reference_step(cfg.kind, &mut s, f64::from(GRADS_STEP1[i]), 1, &cfg, decay);
            let label = format!("{} step 1 tensor {tensor_index} element {i}", cfg.kind);
            assert_close(first.tensors[tensor_index].data[i], s.w, &label);
            reference_step(cfg.kind, &mut s, f64::from(GRADS_STEP2[i]), 2, &cfg, decay);
            let label = format!("{} step 2 tensor {tensor_index} element {i}", cfg.kind);
            assert_close(second.tensors[tensor_index].data[i], s.w, &label);
        }
    }
}

#[test]
fn sgd_two_steps_match_formula() {
    let cfg = config(OptimizerKind::Sgd, 0.1, 0.5, 1.0, 0.1);
    let (first, second) = run_two_steps(cfg);
    let weight = &first.tensors[0].data;
    let bias = &first.tensors[1].data;
    // w ← (1 − ηλ)·w − η·clip(r·g), with ηλ = 0.01.
    assert_close(weight[0], 0.99 * 0.5 - 0.1 * (0.5 * 0.2), "weight[0]");
    // r·g = −1.5 is clipped to −1; the decay term stays outside the clip.
    let clipped = -1.0;
    assert_close(
        weight[1],
        0.99 * f64::from(WEIGHTS[1]) - 0.1 * clipped,
        "weight[1]",
    );
    assert_close(weight[1], -0.89, "weight[1] literal");
    assert_close(bias[1], f64::from(WEIGHTS[1]) - 0.1 * clipped, "bias[1]");
    // Step 2 starts from step 1's weight: 0.99·0.485 − 0.1·(0.5·−0.4).
    assert_close(
        second.tensors[0].data[0],
        0.99 * 0.485 - 0.1 * (0.5 * -0.4),
        "step 2 weight[0]",
    );
    check_against_reference(cfg);
}

#[test]
fn adam_two_steps_match_formula() {
    let cfg = config(OptimizerKind::Adam, 0.01, 0.5, 0.2, 0.1);
    let (first, _) = run_two_steps(cfg);
    // Step 1: ĝ = clip(0.5·0.2 + 0.1·0.5) = 0.15, m = 0.1·ĝ, v = 0.001·ĝ²,
    // η₁ = 0.01·√0.001/0.1, so w moves by η₁·m/(√v + 1e-8) = 0.01·0.15/(0.15 + 1e-8/√0.001).
    let step = 0.01 * 0.15 / (0.15 + 1e-8 / 0.001f64.sqrt());
    assert_close(first.tensors[0].data[0], 0.5 - step, "weight[0]");
    // ĝ = clip(0.5·0.05 + 0.1·2.0) = clip(0.225) = 0.2: the decay term is clipped with the gradient.
    let step = 0.01 * 0.2 / (0.2 + 1e-8 / 0.001f64.sqrt());
    assert_close(first.tensors[0].data[2], 2.0 - step, "weight[2]");
    // A zero gradient on a zero weight leaves it at zero.
    assert_eq!(first.tensors[0].data[3], 0.0);
    check_against_reference(cfg);
}

#[test]
fn adam_beta1_sets_the_first_moment_decay() {
    let cfg = OptimizerConfig {
        adam_beta1: 0.99,
        ..config(OptimizerKind::Adam, 0.01, 0.5, 0.2, 0.1)
    };
    let (first, second) = run_two_steps(cfg);
    // Step 1 is the same for any β1: the bias correction divides m = (1 − β1)·ĝ by 1 − β1.
    let step = 0.01 * 0.15 / (0.15 + 1e-8 / 0.001f64.sqrt());
    assert_close(first.tensors[0].data[0], 0.5 - step, "weight[0]");
    // Step 2 differs from β1 = 0.9.
    let (_, default_second) = run_two_steps(config(OptimizerKind::Adam, 0.01, 0.5, 0.2, 0.1));
    assert_ne!(second.tensors[0].data, default_second.tensors[0].data);
    check_against_reference(cfg);
}

#[test]
fn adagrad_two_steps_match_formula() {
    let cfg = config(OptimizerKind::Adagrad, 0.1, 0.5, 1.0, 0.1);
    let (first, second) = run_two_steps(cfg);
    // ĝ = clip(−1.5) = −1, h = 1, w ← w − η·(ĝ/√(h + 1e-7) + λw).
    let (w, g_hat) = (-1.0, -1.0);
    let expected = w - 0.1 * (g_hat / (1.0f64 + 1e-7).sqrt() + 0.1 * w);
    assert_close(first.tensors[0].data[1], expected, "weight[1]");
    assert_close(
        first.tensors[1].data[1],
        -1.0 - 0.1 * (-1.0 / (1.0f64 + 1e-7).sqrt()),
        "bias[1]",
    );
    // Step 2 on the bias: ĝ = 0.5, h = 1 + 0.25.
    let bias1 = -1.0 + 0.1 / (1.0f64 + 1e-7).sqrt();
    assert_close(
        second.tensors[1].data[1],
        bias1 - 0.1 * (0.5 / (1.25f64 + 1e-7).sqrt()),
        "step 2 bias[1]",
    );
    check_against_reference(cfg);
}

#[test]
fn adadelta_two_steps_match_formula() {
    let cfg = config(OptimizerKind::Adadelta, 0.001, 0.5, 1.0, 0.1);
    let (first, _) = run_two_steps(cfg);
    // ĝ = 0.1, A_g = 0.1·0.01 = 0.001, Δ = √1e-5/√(0.001 + 1e-5)·0.1, w ← w − (Δ + λw).
    let delta = (1e-5f64).sqrt() / (0.001f64 + 1e-5).sqrt() * 0.1;
    assert_close(
        first.tensors[0].data[0],
        0.5 - (delta + 0.1 * 0.5),
        "weight[0]",
    );
    assert_close(first.tensors[1].data[0], 0.5 - delta, "bias[0]");
    check_against_reference(cfg);
}

#[test]
fn rmsprop_two_steps_match_formula() {
    let cfg = config(OptimizerKind::Rmsprop, 0.01, 0.5, 0.2, 0.1);
    let (first, _) = run_two_steps(cfg);
    // ĝ = clip(0.5·0.2 + 0.1·0.5) = 0.15, n = 0.1·ĝ², w ← w − η·ĝ/√(n + 1e-8).
    let expected = 0.5 - 0.01 * 0.15 / (0.1 * 0.15f64 * 0.15 + 1e-8).sqrt();
    assert_close(first.tensors[0].data[0], expected, "weight[0]");
    // Without decay the bias gets ĝ = 0.1.
    let expected = 0.5 - 0.01 * 0.1 / (0.1 * 0.1f64 * 0.1 + 1e-8).sqrt();
    assert_close(first.tensors[1].data[0], expected, "bias[0]");
    check_against_reference(cfg);
}

#[test]
fn rules_without_clip_or_decay_match_formula() {
    for kind in all_kinds() {
        check_against_reference(config(kind, 0.05, 1.0, f32::INFINITY, 0.0));
    }
}

#[test]
fn tensors_without_decay_ignore_weight_decay() {
    for kind in all_kinds() {
        let (_, plain) = run_two_steps(config(kind, 0.01, 1.0, f32::INFINITY, 0.0));
        let (_, decayed) = run_two_steps(config(kind, 0.01, 1.0, f32::INFINITY, 0.3));
        assert_eq!(
            plain.tensors[1].data, decayed.tensors[1].data,
            "{kind}: bias changed by decay"
        );
        assert_ne!(
            plain.tensors[0].data, decayed.tensors[0].data,
            "{kind}: weight ignored decay"
        );
    }
}

#[test]
fn infinite_clip_means_no_clipping() {
    let big = [1000.0f32, -2500.0, 0.5, 0.0];
    for kind in all_kinds() {
        let run = |clip_gradient: f32| {
            let mut params = params_with(&WEIGHTS);
            let mut optimizer =
                Optimizer::new(config(kind, 0.01, 1.0, clip_gradient, 0.0), &params);
            optimizer.step(&mut params, &params_with(&big));
            optimizer.step(&mut params, &params_with(&GRADS_STEP2));
            params
        };
        assert_eq!(run(f32::INFINITY), run(f32::MAX), "{kind}");
        assert_ne!(
            run(f32::INFINITY),
            run(1.0),
            "{kind}: a finite clip must change the result"
        );
    }
    // SGD shows the unclipped gradient directly: 0.5 − 0.01·1000.
    let mut params = params_with(&WEIGHTS);
    let mut optimizer = Optimizer::new(
        config(OptimizerKind::Sgd, 0.01, 1.0, f32::INFINITY, 0.0),
        &params,
    );
    optimizer.step(&mut params, &params_with(&big));
    assert_close(
        params.tensors[0].data[0],
        0.5 - 0.01 * 1000.0,
        "unclipped sgd",
    );
}

#[test]
fn adadelta_ignores_learning_rate() {
    let (_, slow) = run_two_steps(config(OptimizerKind::Adadelta, 1e-6, 0.5, 1.0, 0.1));
    let (_, fast) = run_two_steps(config(OptimizerKind::Adadelta, 1.0, 0.5, 1.0, 0.1));
    assert_eq!(slow, fast);
}

#[test]
fn set_rescale_grad_scales_later_steps() {
    let halved: Vec<f32> = GRADS_STEP1.iter().map(|g| g * 0.5).collect();
    for kind in all_kinds() {
        let mut scaled = params_with(&WEIGHTS);
        let mut optimizer = Optimizer::new(config(kind, 0.01, 1.0, 1.0, 0.1), &scaled);
        optimizer.set_rescale_grad(0.5);
        assert_eq!(optimizer.config().rescale_grad, 0.5);
        optimizer.step(&mut scaled, &params_with(&GRADS_STEP1));

        let mut direct = params_with(&WEIGHTS);
        let mut optimizer = Optimizer::new(config(kind, 0.01, 1.0, 1.0, 0.1), &direct);
        optimizer.step(&mut direct, &params_with(&halved));
        assert_eq!(scaled, direct, "{kind}");
    }
}

#[test]
fn results_identical_across_thread_counts() {
    // Longer than one parallel chunk, so the tensor is split across tasks.
    let len = 100_003;
    let weights: Vec<f32> = (0..len)
        .map(|i| ((i * 37 % 1001) as f32 - 500.0) / 250.0)
        .collect();
    let grads: Vec<f32> = (0..len)
        .map(|i| ((i * 91 % 997) as f32 - 498.0) / 100.0)
        .collect();
    for kind in all_kinds() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut params = params_with(&weights);
                let mut optimizer = Optimizer::new(config(kind, 0.01, 0.5, 2.0, 0.01), &params);
                for _ in 0..3 {
                    optimizer.step(&mut params, &params_with(&grads));
                }
                params
            })
        };
        let single = run(1);
        assert_eq!(single, run(4), "{kind}");

        // An element in a later chunk follows the same rule as the first element.
        let cfg = config(kind, 0.01, 0.5, 2.0, 0.01);
        let i = len - 1;
        let mut s = Reference {
            w: f64::from(weights[i]),
            ..Reference::default()
        };
        for t in 1..=3 {
            reference_step(kind, &mut s, f64::from(grads[i]), t, &cfg, true);
        }
        let tolerance = 1e-5 * s.w.abs().max(1.0);
        let got = f64::from(single.tensors[0].data[i]);
        assert!(
            (got - s.w).abs() <= tolerance,
            "{kind}: got {got}, expected {}",
            s.w
        );
    }
}

/// Bit patterns of every value of `params`, for exact comparisons that also tell -0 from 0.
fn bits(params: &ParamSet) -> Vec<Vec<u32>> {
    params
        .tensors
        .iter()
        .map(|t| t.data.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn row_support_matches_dense_update_bitwise() {
    // 300 rows of 7 values make several rayon tasks. Each step has a gradient in a random fifth
    // of the first 200 rows, and the last 10 rows see one step only. Every seventh step names no
    // rows. Owed shrink steps are thus paid both when a row returns and all at once.
    const ROWS: usize = 300;
    const ROW_LEN: usize = 7;
    let start: Vec<f32> = (0..ROWS * ROW_LEN)
        .map(|i| ((i * 37 % 1001) as f32 - 500.0) / 250.0)
        .collect();
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    // Tensor 0 has weight decay when the configuration sets it, tensor 1 never does.
    for kind in all_kinds() {
        for (weight_decay, tensor) in [(0.0, 0), (0.0, 1), (0.01, 0), (0.01, 1)] {
            let cfg = config(kind, 0.01, 0.5, 2.0, weight_decay);
            let mut dense = params_with(&start);
            let mut sparse = dense.clone();
            let mut dense_optimizer = Optimizer::new(cfg, &dense);
            let mut sparse_optimizer = Optimizer::new(cfg, &sparse);
            for step in 0..40 {
                let rows: Vec<u32> = (0..ROWS as u32)
                    .filter(|&row| row < 200 && next() % 5 == 0 || row >= 290 && step == 30)
                    .collect();
                let mut grads = params_with(&vec![0.0; ROWS * ROW_LEN]);
                for t in &mut grads.tensors {
                    for &row in &rows {
                        for value in &mut t.data[row as usize * ROW_LEN..][..ROW_LEN] {
                            *value = (next() % 2001) as f32 / 400.0 - 2.5;
                        }
                    }
                }
                dense_optimizer.step(&mut dense, &grads);
                let support = (step % 7 != 6).then_some(RowSupport {
                    tensor,
                    row_len: ROW_LEN,
                    rows: &rows,
                });
                sparse_optimizer.step_with_support(&mut sparse, &grads, support);
                assert!(
                    bits(&dense) == bits(&sparse),
                    "{kind}, weight decay {weight_decay}, tensor {tensor}: step {step} differs"
                );
            }
            assert_ne!(
                dense.tensors[tensor].data, start,
                "{kind}: nothing was trained"
            );
        }
    }
}

#[test]
#[should_panic(expected = "not a sorted list of rows below 2")]
fn row_support_out_of_range_panics() {
    let mut params = params_with(&WEIGHTS);
    let mut optimizer = Optimizer::new(OptimizerConfig::default(), &params);
    let support = RowSupport {
        tensor: 0,
        row_len: 2,
        rows: &[0, 2],
    };
    optimizer.step_with_support(&mut params, &params_with(&GRADS_STEP1), Some(support));
}

#[test]
fn optimizer_kind_parses_and_displays() {
    for kind in all_kinds() {
        assert_eq!(kind.to_string().parse::<OptimizerKind>().unwrap(), kind);
    }
    assert_eq!(
        "AdaDelta".parse::<OptimizerKind>().unwrap(),
        OptimizerKind::Adadelta
    );
    assert_eq!(OptimizerKind::default(), OptimizerKind::Adadelta);
    let error = "lbfgs".parse::<OptimizerKind>().unwrap_err().to_string();
    assert!(
        error.contains("\"lbfgs\"") && error.contains("sgd, adam, adagrad, adadelta, rmsprop"),
        "{error}"
    );
}

fn all_kinds() -> [OptimizerKind; 5] {
    [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::Adagrad,
        OptimizerKind::Adadelta,
        OptimizerKind::Rmsprop,
    ]
}
