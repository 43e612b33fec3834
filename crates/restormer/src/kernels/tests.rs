//! Kernel tests: each fused op against its stock-Candle reference (forward and
//! gradients) and against finite differences.

use candle_core::{DType, Device, Result, Tensor, Var};

use super::{composed, depthwise_conv3x3};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_dtype(DType::F64))
        .and_then(|d| d.to_scalar::<f64>())
        .expect("reduction")
}

/// Random tensor with a fixed pattern (no RNG state shared between tests).
fn input(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data: Vec<f64> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(data, shape, &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .expect("tensor from data")
}

/// Gradients of `sum(f(args) * probe)` with respect to every argument.
fn grads(f: &dyn Fn(&[Tensor]) -> Result<Tensor>, args: &[Tensor], probe: &Tensor) -> Vec<Tensor> {
    let vars: Vec<Var> = args
        .iter()
        .map(|a| Var::from_tensor(a).expect("var"))
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let loss = (f(&ts).expect("forward") * probe)
        .and_then(|l| l.sum_all())
        .expect("loss");
    let g = loss.backward().expect("backward");
    ts.iter()
        .map(|t| g.get(t).expect("every argument has a gradient").clone())
        .collect()
}

/// Compares a fused op with a reference op on values and on all argument gradients.
pub(super) fn check_against(
    fused: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    reference: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    args: &[Tensor],
    tol: f64,
) {
    let y1 = fused(args).expect("fused forward");
    let y2 = reference(args).expect("reference forward");
    assert_eq!(y1.dims(), y2.dims());
    let scale = 1.0f64.max(max_diff(&y2, &y2.zeros_like().expect("zeros")));
    assert!(
        max_diff(&y1, &y2) <= tol * scale,
        "forward differs by {}",
        max_diff(&y1, &y2)
    );
    let probe = input(y1.dims(), y1.dtype(), 99);
    for (i, (g1, g2)) in grads(fused, args, &probe)
        .iter()
        .zip(grads(reference, args, &probe))
        .enumerate()
    {
        let scale = 1.0f64.max(max_diff(&g2, &g2.zeros_like().expect("zeros")));
        let d = max_diff(g1, &g2);
        assert!(
            d <= tol * scale,
            "gradient of argument {i} differs by {d} (scale {scale})"
        );
    }
}

/// Central finite differences of `sum(f(args) * probe)` on a few coordinates of
/// each argument, in f64.
pub(super) fn check_finite_differences(
    f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    args: &[Tensor],
    tol: f64,
) {
    let probe = input(f(args).expect("forward").dims(), DType::F64, 7);
    let analytic = grads(f, args, &probe);
    let objective = |a: &[Tensor]| -> f64 {
        (f(a).expect("forward") * &probe)
            .and_then(|l| l.sum_all())
            .and_then(|l| l.to_scalar::<f64>())
            .expect("loss")
    };
    let eps = 1e-6;
    for (i, arg) in args.iter().enumerate() {
        let flat: Vec<f64> = arg.flatten_all().and_then(|t| t.to_vec1()).expect("values");
        let g: Vec<f64> = analytic[i]
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("grad");
        let step = (flat.len() / 7).max(1);
        for j in (0..flat.len()).step_by(step) {
            let eval = |delta: f64| {
                let mut v = flat.clone();
                v[j] += delta;
                let mut a = args.to_vec();
                a[i] = Tensor::from_vec(v, arg.shape(), &Device::Cpu).expect("perturbed");
                objective(&a)
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            let err = (numeric - g[j]).abs() / numeric.abs().max(1.0);
            assert!(
                err <= tol,
                "argument {i} index {j}: analytic {} numeric {numeric}",
                g[j]
            );
        }
    }
}

#[test]
fn depthwise_matches_grouped_conv() {
    for (shape, seed) in [
        ([2, 5, 7, 9], 1),
        ([1, 3, 1, 6], 2),
        ([2, 4, 6, 1], 3),
        ([1, 2, 2, 2], 4),
    ] {
        let x = input(&shape, DType::F32, seed);
        let w = input(&[shape[1], 1, 3, 3], DType::F32, seed + 10);
        check_against(
            &|a| depthwise_conv3x3(&a[0], &a[1]),
            &|a| composed::depthwise_conv3x3(&a[0], &a[1]),
            &[x, w],
            1e-5,
        );
    }
}

#[test]
fn depthwise_finite_differences() {
    let x = input(&[2, 3, 5, 6], DType::F64, 5);
    let w = input(&[3, 1, 3, 3], DType::F64, 6);
    check_finite_differences(&|a| depthwise_conv3x3(&a[0], &a[1]), &[x, w], 1e-6);
}

#[test]
fn depthwise_accepts_strided_input() {
    let x = input(&[1, 4, 6, 5], DType::F32, 8)
        .transpose(2, 3)
        .expect("transpose");
    let w = input(&[4, 1, 3, 3], DType::F32, 9);
    let y = depthwise_conv3x3(&x, &w).expect("strided input is made contiguous");
    let r = composed::depthwise_conv3x3(&x.contiguous().expect("copy"), &w).expect("reference");
    assert!(max_diff(&y, &r) < 1e-5);
}

#[test]
fn layer_norm_matches_composed() {
    let x = input(&[2, 6, 5, 7], DType::F32, 11);
    let w = input(&[6], DType::F32, 12);
    let b = input(&[6], DType::F32, 13);
    check_against(
        &|a| super::channel_layer_norm(&a[0], &a[1], Some(&a[2])),
        &|a| composed::channel_layer_norm(&a[0], &a[1], Some(&a[2])),
        &[x, w, b],
        1e-5,
    );
}

#[test]
fn layer_norm_finite_differences() {
    let x = input(&[2, 4, 3, 5], DType::F64, 14);
    let w = input(&[4], DType::F64, 15);
    let b = input(&[4], DType::F64, 16);
    check_finite_differences(
        &|a| super::channel_layer_norm(&a[0], &a[1], Some(&a[2])),
        &[x, w, b],
        1e-6,
    );
}

#[test]
fn gelu_gate_matches_composed() {
    let x = (input(&[2, 6, 5, 3], DType::F32, 21) * 3.0).expect("scale");
    check_against(
        &|a| super::gelu_gate(&a[0]),
        &|a| composed::gelu_gate(&a[0]),
        &[x],
        1e-5,
    );
}

#[test]
fn gelu_gate_finite_differences() {
    let x = (input(&[1, 4, 3, 4], DType::F64, 22) * 3.0).expect("scale");
    check_finite_differences(&|a| super::gelu_gate(&a[0]), &[x], 1e-6);
}

#[test]
fn attention_matches_composed() {
    for (heads, shape) in [(1, [2, 12, 4, 5]), (2, [1, 12, 3, 3]), (4, [2, 24, 2, 4])] {
        let qkv = input(&shape, DType::F32, 31 + heads as u64);
        let t = (input(&[heads, 1, 1], DType::F32, 41) + 1.5).expect("shift");
        check_against(
            &|a| super::transposed_attention(&a[0], &a[1], heads),
            &|a| composed::transposed_attention(&a[0], &a[1], heads),
            &[qkv, t],
            1e-5,
        );
    }
}

#[test]
fn attention_finite_differences() {
    let qkv = input(&[2, 12, 3, 4], DType::F64, 51);
    let t = (input(&[2, 1, 1], DType::F64, 52) + 1.5).expect("shift");
    check_finite_differences(
        &|a| super::transposed_attention(&a[0], &a[1], 2),
        &[qkv, t],
        1e-6,
    );
}

#[test]
fn pointwise_matches_composed() {
    let x = input(&[3, 5, 4, 6], DType::F32, 61);
    let w = input(&[7, 5, 1, 1], DType::F32, 62);
    check_against(
        &|a| super::pointwise_conv(&a[0], &a[1]),
        &|a| composed::pointwise_conv(&a[0], &a[1]),
        &[x, w],
        1e-5,
    );
}

#[test]
fn pointwise_finite_differences() {
    let x = input(&[2, 3, 2, 3], DType::F64, 63);
    let w = input(&[4, 3, 1, 1], DType::F64, 64);
    check_finite_differences(&|a| super::pointwise_conv(&a[0], &a[1]), &[x, w], 1e-6);
}

/// Every CPU kernel gives the same bits, forward and backward, in its AVX2
/// build as in its baseline build (odd sizes: vector tails and edges).
#[test]
fn avx2_and_baseline_builds_agree() {
    use std::sync::atomic::Ordering;
    if !super::wide::available() {
        eprintln!("this CPU has no AVX2: only the baseline build can run here");
        return;
    }
    let run_all = || -> Vec<Vec<f32>> {
        let x = input(&[2, 12, 11, 13], DType::F32, 1);
        let w = input(&[12, 1, 3, 3], DType::F32, 2);
        let lw = input(&[12], DType::F32, 3);
        let lb = input(&[12], DType::F32, 4);
        let qkv = input(&[2, 36, 9, 7], DType::F32, 5);
        let temp = input(&[3, 1, 1], DType::F32, 6).abs().expect("abs");
        let probe12 = input(&[2, 12, 11, 13], DType::F32, 7);
        let probe6 = input(&[2, 6, 11, 13], DType::F32, 8);
        let probe_a = input(&[2, 12, 9, 7], DType::F32, 9);
        let mut out = Vec::new();
        let mut keep = |ts: Vec<Tensor>| {
            for t in ts {
                out.push(t.flatten_all().and_then(|t| t.to_vec1()).expect("values"));
            }
        };
        let dw = |a: &[Tensor]| depthwise_conv3x3(&a[0], &a[1]);
        keep(vec![dw(&[x.clone(), w.clone()]).expect("depthwise")]);
        keep(grads(&dw, &[x.clone(), w.clone()], &probe12));
        let ln = |a: &[Tensor]| super::channel_layer_norm(&a[0], &a[1], Some(&a[2]));
        keep(vec![
            ln(&[x.clone(), lw.clone(), lb.clone()]).expect("layer norm"),
        ]);
        keep(grads(&ln, &[x.clone(), lw, lb], &probe12));
        let gg = |a: &[Tensor]| super::gelu_gate(&a[0]);
        keep(vec![gg(std::slice::from_ref(&x)).expect("gelu gate")]);
        keep(grads(&gg, &[x], &probe6));
        let at = |a: &[Tensor]| super::transposed_attention(&a[0], &a[1], 3);
        keep(vec![at(&[qkv.clone(), temp.clone()]).expect("attention")]);
        keep(grads(&at, &[qkv, temp], &probe_a));
        out
    };
    let wide = run_all();
    super::wide::BASELINE_ONLY.store(true, Ordering::Relaxed);
    let baseline = run_all();
    super::wide::BASELINE_ONLY.store(false, Ordering::Relaxed);
    assert_eq!(wide.len(), baseline.len());
    for (i, (a, b)) in wide.iter().zip(&baseline).enumerate() {
        let same = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "output {i} differs between the builds");
    }
}
