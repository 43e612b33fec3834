//! Model-level tests on CPU: parameter counts, parity with the PyTorch reference,
//! safetensors round trip and gradient coverage.

use std::path::PathBuf;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use restoreflow_restormer::{Config, Restormer, build, parameter_count};

fn fixture(name: &str) -> PathBuf {
    // Read at run time: a test binary reused from another checkout (shared
    // target dir) would otherwise look in that checkout.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|t| t.max_all())
        .and_then(|t| t.to_scalar::<f32>())
        .expect("reduction of an f32 tensor")
}

#[test]
fn preset_parameter_counts_match_reference() {
    for (cfg, expected) in [
        (Config::tiny(), 208_225),
        (Config::small(), 1_590_678),
        (Config::base(), 26_126_644),
    ] {
        let (_, varmap) = build(&cfg, &Device::Cpu).expect("model builds");
        assert_eq!(parameter_count(&varmap), expected, "dim {}", cfg.dim);
    }
}

/// Weights, input `io.x` and output `io.y` come from
/// `restormer_torch.py export tiny` (see `tests/fixtures/README.md`).
#[test]
fn tiny_matches_pytorch_reference() {
    let dev = Device::Cpu;
    let tensors = candle_core::safetensors::load(fixture("tiny_reference.safetensors"), &dev)
        .expect("fixture loads");
    let x = tensors["io.x"].clone();
    let expected = tensors["io.y"].clone();
    let weights: std::collections::HashMap<_, _> = tensors
        .into_iter()
        .filter(|(k, _)| !k.starts_with("io."))
        .collect();
    let n_weights = weights.len();
    let vb = VarBuilder::from_tensors(weights, DType::F32, &dev);
    let model = Restormer::new(&Config::tiny(), vb).expect("reference weights fit the tiny config");
    let y = model.forward(&x).expect("forward");
    assert_eq!(y.dims(), expected.dims());
    let err = max_abs(&(&y - &expected).expect("same shape")) / max_abs(&expected);
    eprintln!("tiny parity: max relative error {err:e}");
    assert!(err <= 1e-4, "max relative error {err:e}");
    // every reference tensor must have been consumed: the tiny model has 98
    let (_, varmap) = build(&Config::tiny(), &dev).expect("model builds");
    assert_eq!(varmap.all_vars().len(), n_weights);
}

#[test]
fn safetensors_round_trip_is_exact() {
    let dev = Device::Cpu;
    let (model, varmap) = build(&Config::tiny(), &dev).expect("model builds");
    let x = Tensor::rand(0f32, 1f32, (1, 3, 16, 24), &dev).expect("input");
    let y = model.forward(&x).expect("forward");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tiny.safetensors");
    varmap.save(&path).expect("save");

    let (reloaded, mut varmap2) = build(&Config::tiny(), &dev).expect("model builds");
    assert!(max_abs(&(&reloaded.forward(&x).expect("forward") - &y).expect("diff")) > 0.0);
    varmap2.load(&path).expect("load");
    let y2 = reloaded.forward(&x).expect("forward");
    assert_eq!(max_abs(&(&y2 - &y).expect("diff")), 0.0);
}

#[test]
fn every_variable_gets_a_gradient() {
    let dev = Device::Cpu;
    let (model, varmap) = build(&Config::tiny(), &dev).expect("model builds");
    let clean = Tensor::rand(0f32, 1f32, (2, 3, 16, 16), &dev).expect("input");
    let noisy = (&clean + 0.1).expect("shift");
    let loss = (model.forward(&noisy).expect("forward") - &clean)
        .expect("diff")
        .abs()
        .expect("abs")
        .mean_all()
        .expect("mean");
    let grads = loss.backward().expect("backward");
    let vars = varmap.data().lock().expect("varmap lock is not poisoned");
    assert_eq!(vars.len(), 98);
    for (name, var) in vars.iter() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        assert_eq!(g.dims(), var.dims(), "{name}");
        let norm = g
            .sqr()
            .and_then(|s| s.sum_all())
            .and_then(|s| s.to_scalar::<f32>())
            .expect("norm");
        assert!(
            norm.is_finite() && norm > 0.0,
            "{name}: gradient norm {norm}"
        );
    }
}

#[test]
fn rejects_sizes_that_are_not_multiples_of_eight() {
    let (model, _) = build(&Config::tiny(), &Device::Cpu).expect("model builds");
    let x = Tensor::zeros((1, 3, 12, 16), DType::F32, &Device::Cpu).expect("input");
    assert!(model.forward(&x).is_err());
}

#[test]
fn frozen_copy_matches_and_records_no_graph() {
    let dev = Device::Cpu;
    let cfg = Config::tiny();
    let (model, varmap) = build(&cfg, &dev).expect("model builds");
    let inference = restoreflow_restormer::frozen(&cfg, &varmap).expect("frozen copy");
    // A plain input: whatever graph the output carries comes from the weights.
    let x = Tensor::rand(0f32, 1f32, (1, 3, 16, 16), &dev).expect("input");
    assert!(!x.track_op());
    let y = model.forward(&x).expect("forward");
    let y2 = inference.forward(&x).expect("forward");
    assert_eq!(max_abs(&(&y - &y2).expect("diff")), 0.0);
    // The trainable model records its forward (this is what keeps every
    // activation alive); the frozen copy must not.
    assert!(y.track_op(), "the trainable model should record a graph");
    assert!(!y2.track_op(), "the frozen copy recorded an autograd graph");
    // The copy shares the variables' storage: an optimiser update is seen at once.
    for var in varmap.all_vars() {
        var.set(&var.as_tensor().affine(0.5, 0.01).expect("scaled"))
            .expect("set");
    }
    let y3 = inference.forward(&x).expect("forward");
    let y4 = model.forward(&x).expect("forward");
    assert_eq!(max_abs(&(&y3 - &y4).expect("diff")), 0.0);
    assert!(max_abs(&(&y3 - &y2).expect("diff")) > 0.0);
}

/// Loss, its gradients and the number of values in the graph's non-leaf
/// nodes (each gets a gradient buffer in the backward pass).
fn l1_grads(
    model: &Restormer,
    x: &candle_core::Var,
    clean: &Tensor,
) -> (f32, candle_core::backprop::GradStore, usize) {
    let loss = (model.forward(x.as_tensor()).expect("forward") - clean)
        .and_then(|d| d.abs())
        .and_then(|d| d.mean_all())
        .expect("loss");
    let nodes = loss
        .sorted_nodes()
        .iter()
        .filter(|n| !n.is_variable())
        .map(|n| n.elem_count())
        .sum();
    let grads = loss.backward().expect("backward");
    (loss.to_scalar::<f32>().expect("scalar"), grads, nodes)
}

#[test]
fn fused_blocks_give_the_autograd_gradients() {
    let dev = Device::Cpu;
    let cfg = Config::small();
    let (mut model, varmap) = build(&cfg, &dev).expect("model builds");
    let clean = Tensor::rand(0f32, 1f32, (2, 3, 48, 64), &dev).expect("clean");
    let noise = Tensor::randn(0f32, 0.1, (2, 3, 48, 64), &dev).expect("noise");
    let x = candle_core::Var::from_tensor(&(&clean + noise).expect("noisy")).expect("var");
    model.set_fused_blocks(false);
    let (loss_a, grads_a, size_a) = l1_grads(&model, &x, &clean);
    model.set_fused_blocks(true);
    let (loss_f, grads_f, size_f) = l1_grads(&model, &x, &clean);
    assert_eq!(loss_a, loss_f, "the fused forward changed the output");
    // Fused, a block's intermediates (about ten activations of it) leave the
    // graph; what is left is its output and its packed parameters.
    assert!(
        size_f * 2 < size_a,
        "fused blocks did not shrink the graph: {size_f} values against {size_a}"
    );
    let mut checked = 0;
    let all = varmap.all_vars();
    for var in all.iter().chain(std::iter::once(&x)) {
        let a = grads_a.get(var.as_tensor()).expect("autograd gradient");
        let f = grads_f
            .get(var.as_tensor())
            .expect("a variable lost its gradient with fused blocks");
        assert_eq!(a.dims(), f.dims());
        let scale = max_abs(a).max(1e-12);
        let diff = max_abs(&(a - f).expect("diff"));
        assert!(
            diff <= 1e-5 * scale,
            "gradient differs by {diff} (scale {scale}) for a {:?} variable",
            var.dims()
        );
        checked += 1;
    }
    assert_eq!(checked, all.len() + 1);
}
