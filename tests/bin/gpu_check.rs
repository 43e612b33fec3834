//! The CUDA proof, one program: the Restormer and its depthwise kernel on a
//! device against the CPU, `small` trained for 200 steps through the shipped
//! training engine, an A4 page at 300 dpi restored through the shipped tiled
//! inference, and a timed `base` b8 128² training step. Prints one markdown
//! table (and, with `--json FILE`, the same rows as JSON); exits 1 when a
//! check fails.
//!
//! `scripts/gpu-check.sh` builds it with `--features cuda` and runs it on the
//! GPU (`--device cuda`) beside the PyTorch reference. `--device cpu --quick`
//! runs every check at toy sizes with the CPU as the device under test too,
//! so the program is exercised by the test suite on machines without a GPU.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use candle_core::{Device, Module, Tensor, Var};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use restoreflow_proto::v1;
use restoreflow_restormer::{Config, build, build_seeded, frozen, kernels, set_tf32};
use restoreflow_trainer::{RestormerNet, TrainParams, code_version};
use restoreflow_training::{
    AdamW, AdamWConfig, InMemoryPairs, NoHooks, RgbF32, RunOptions, TileConfig, load_weights,
    restore_tiled, save_weights,
};
use serde_json::{Value, json};

/// Largest relative error accepted between the device and the CPU in f32.
const TOLERANCE: f64 = 1e-3;

struct Args {
    device: String,
    quick: bool,
    json: Option<PathBuf>,
    train_steps: usize,
    timing_steps: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        device: "cuda".into(),
        quick: false,
        json: None,
        train_steps: 200,
        timing_steps: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => a.device = value()?,
            "--quick" => a.quick = true,
            "--json" => a.json = Some(PathBuf::from(value()?)),
            "--train-steps" => {
                a.train_steps = value()?
                    .parse()
                    .map_err(|e| format!("--train-steps: {e}"))?
            }
            "--timing-steps" => {
                a.timing_steps = value()?
                    .parse()
                    .map_err(|e| format!("--timing-steps: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !matches!(a.device.as_str(), "cuda" | "cpu") {
        return Err(format!("--device must be cuda or cpu, got {:?}", a.device));
    }
    Ok(a)
}

/// One line of the table.
struct Row {
    check: &'static str,
    setup: String,
    result: String,
    pass: Option<bool>,
    extra: Value,
}

impl Row {
    fn new(check: &'static str, setup: String, result: String, pass: Option<bool>) -> Self {
        Self {
            check,
            setup,
            result,
            pass,
            extra: Value::Null,
        }
    }
}

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// max |a - b| / max |b|, over all elements (`b` on the CPU).
fn rel_max(a: &Tensor, b: &Tensor) -> Res<f64> {
    let max_abs = |t: &Tensor| -> candle_core::Result<f64> {
        Ok(f64::from(t.abs()?.max_all()?.to_scalar::<f32>()?))
    };
    let diff = (a.to_device(&Device::Cpu).map_err(err)? - b).map_err(err)?;
    Ok(max_abs(&diff).map_err(err)? / max_abs(b).map_err(err)?.max(1e-12))
}

/// ||a - b|| / ||b|| (L2 over all elements, `b` on the CPU).
fn rel_l2(a: &Tensor, b: &Tensor) -> Res<f64> {
    let norm = |t: &Tensor| -> candle_core::Result<f64> {
        Ok(f64::from(t.sqr()?.sum_all()?.to_scalar::<f32>()?).sqrt())
    };
    let diff = (a.to_device(&Device::Cpu).map_err(err)? - b).map_err(err)?;
    Ok(norm(&diff).map_err(err)? / norm(b).map_err(err)?.max(1e-12))
}

fn sync(device: &Device) -> Res<()> {
    device.synchronize().map_err(err)
}

/// Forward and backward of the whole model on `device` against the CPU, from
/// the same weights and input.
fn model_parity(device: &Device, preset: &str, batch: usize, size: usize) -> Res<Row> {
    set_tf32(false);
    let cfg = Config::by_name(preset).map_err(err)?;
    let (cpu_model, cpu_vars) = build_seeded(&cfg, &Device::Cpu, 7).map_err(err)?;
    let dir = tempfile::tempdir().map_err(err)?;
    let weights = dir.path().join("w.safetensors");
    save_weights(&cpu_vars, &weights).map_err(err)?;
    let (dev_model, dev_vars) = build(&cfg, device).map_err(err)?;
    load_weights(&dev_vars, &weights).map_err(err)?;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let n = batch * 3 * size * size;
    let x: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    let t: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    let shape = (batch, 3, size, size);
    let x_cpu = Tensor::from_vec(x, shape, &Device::Cpu).map_err(err)?;
    let t_cpu = Tensor::from_vec(t, shape, &Device::Cpu).map_err(err)?;
    let x_dev = x_cpu.to_device(device).map_err(err)?;
    let t_dev = t_cpu.to_device(device).map_err(err)?;

    let y_cpu = cpu_model.forward(&x_cpu).map_err(err)?;
    let y_dev = dev_model.forward(&x_dev).map_err(err)?;
    let fwd = rel_max(&y_dev, &y_cpu)?;
    let l1 = |y: &Tensor, t: &Tensor| -> Res<Tensor> {
        (y - t)
            .map_err(err)?
            .abs()
            .map_err(err)?
            .mean_all()
            .map_err(err)
    };
    let g_cpu = l1(&y_cpu, &t_cpu)?.backward().map_err(err)?;
    let g_dev = l1(&y_dev, &t_dev)?.backward().map_err(err)?;
    let cpu_named = named(&cpu_vars)?;
    let dev_named = named(&dev_vars)?;
    let (mut worst, mut worst_name, mut missing) = (0f64, String::new(), 0usize);
    for (name, var) in &cpu_named {
        let dv = dev_named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("variable {name} missing on the device"))?;
        match (g_cpu.get(var.as_tensor()), g_dev.get(dv.as_tensor())) {
            (Some(gc), Some(gd)) => {
                let e = rel_l2(gd, gc)?;
                if e > worst {
                    worst = e;
                    worst_name = name.clone();
                }
            }
            _ => missing += 1,
        }
    }
    let pass = fwd <= TOLERANCE && worst <= TOLERANCE && missing == 0;
    let mut row = Row::new(
        "model forward+backward vs CPU",
        format!("{preset} b{batch} {size}², f32"),
        format!(
            "forward max rel {fwd:.1e}; worst gradient rel L2 {worst:.1e} ({worst_name}) over {} tensors{}",
            cpu_named.len(),
            if missing > 0 {
                format!("; {missing} without a gradient")
            } else {
                String::new()
            }
        ),
        Some(pass),
    );
    row.extra = json!({"forward_rel_max": fwd, "grad_rel_l2_worst": worst, "grad_worst": worst_name, "tensors": cpu_named.len(), "missing_grads": missing});
    Ok(row)
}

fn named(vars: &candle_nn::VarMap) -> Res<Vec<(String, Var)>> {
    let data = vars
        .data()
        .lock()
        .map_err(|_| "variable map lock poisoned".to_string())?;
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// The depthwise 3x3 kernel on `device` against the CPU kernel, both ways.
fn depthwise_parity(device: &Device, shape: (usize, usize, usize, usize)) -> Res<Row> {
    let (b, c, h, w) = shape;
    let x = Tensor::randn(0f32, 1f32, (b, c, h, w), &Device::Cpu).map_err(err)?;
    let k = Tensor::randn(0f32, 1f32, (c, 1, 3, 3), &Device::Cpu).map_err(err)?;
    let r = Tensor::randn(0f32, 1f32, (b, c, h, w), &Device::Cpu).map_err(err)?;
    let run = |dev: &Device| -> Res<(Tensor, Tensor, Tensor, f64)> {
        let xv = Var::from_tensor(&x.to_device(dev).map_err(err)?).map_err(err)?;
        let kv = Var::from_tensor(&k.to_device(dev).map_err(err)?).map_err(err)?;
        let rd = r.to_device(dev).map_err(err)?;
        sync(dev)?;
        let t0 = Instant::now();
        let y = kernels::depthwise_conv3x3(xv.as_tensor(), kv.as_tensor()).map_err(err)?;
        let g = (&y * &rd)
            .map_err(err)?
            .sum_all()
            .map_err(err)?
            .backward()
            .map_err(err)?;
        sync(dev)?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let gx = g.get(xv.as_tensor()).ok_or("no gradient for x")?.clone();
        let gk = g
            .get(kv.as_tensor())
            .ok_or("no gradient for the weight")?
            .clone();
        Ok((y, gx, gk, ms))
    };
    let (yc, gxc, gkc, _) = run(&Device::Cpu)?;
    // The first call on a GPU compiles the kernel; time the second.
    run(device)?;
    let (yd, gxd, gkd, ms) = run(device)?;
    let (ey, ex, ek) = (rel_max(&yd, &yc)?, rel_l2(&gxd, &gxc)?, rel_l2(&gkd, &gkc)?);
    let pass = ey <= TOLERANCE && ex <= TOLERANCE && ek <= TOLERANCE;
    let mut row = Row::new(
        "depthwise 3x3 kernel vs CPU kernel",
        format!("x {b}x{c}x{h}x{w}, fwd+bwd"),
        format!("out {ey:.1e}, d/dx {ex:.1e}, d/dw {ek:.1e} rel; {ms:.2} ms fwd+bwd"),
        Some(pass),
    );
    row.extra = json!({"out_rel_max": ey, "dx_rel_l2": ex, "dw_rel_l2": ek, "ms": ms});
    Ok(row)
}

/// A procedural document page: paper with slight tint, lines of dark
/// word-like strokes, a rule and a box. No fonts needed.
fn page(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let paper = Rgb([
        rng.random_range(240..=255),
        rng.random_range(238..=252),
        rng.random_range(230..=248),
    ]);
    let mut img = RgbImage::from_pixel(w, h, paper);
    let ink = Rgb([20, 20, 30]);
    let line_h = (h / 40).max(6);
    let margin = w / 12;
    let mut y = margin;
    while y + line_h < h - margin {
        let mut x = margin;
        while x < w - margin {
            let word = rng.random_range(line_h..line_h * 5).min(w - margin - x);
            let stroke = (line_h / 2).max(2);
            for yy in y..y + stroke {
                for xx in x..x + word {
                    // Letter gaps: thin vertical breaks inside a word.
                    if (xx - x) % (stroke + 2) != stroke + 1 {
                        img.put_pixel(xx, yy, ink);
                    }
                }
            }
            x += word + rng.random_range(stroke..stroke * 3);
        }
        y += line_h + rng.random_range(0..line_h);
    }
    img
}

fn degrade(clean: &RgbImage, seed: u64) -> Res<RgbImage> {
    let pipeline = restoreflow_synth::Pipeline::preset("scan").map_err(err)?;
    Ok(pipeline.apply(clean, seed).image)
}

/// `small` through the shipped engine (recipe, sampler, optimiser,
/// validation) for `steps` steps; the loss must fall.
fn train_small(device: &str, preset: &str, steps: usize, side: u32) -> Res<(Row, RestormerNet)> {
    let epochs = 10usize;
    let per_epoch = steps.div_ceil(epochs).max(1);
    let req = v1::StartTrainingRequest {
        num_epochs: epochs as u32,
        batch_size: 4,
        preset: preset.into(),
        patch_size: Some(64),
        learning_rate: Some(1e-3),
        val_fraction: Some(0.25),
        seed: Some(1),
        steps_per_epoch: Some(per_epoch as u32),
        device: device.into(),
        ..Default::default()
    };
    let mut params = TrainParams::from_request(&req, device).map_err(|e| e.0)?;
    params.settle_device(device).map_err(|e| e.0)?;
    set_tf32(params.precision == "tf32");
    let cfg = params.train_config(16);
    let mut pairs = InMemoryPairs::new();
    for i in 0..8u64 {
        let clean = page(side, side, 100 + i);
        let degraded = degrade(&clean, 200 + i)?;
        pairs.push(format!("page-{i}"), clean, degraded);
    }
    let dev = restoreflow_restormer::device(device == "cuda").map_err(err)?;
    let mcfg = Config::by_name(preset).map_err(err)?;
    let (model, varmap) = build_seeded(&mcfg, &dev, cfg.seed).map_err(err)?;
    let frozen_net = RestormerNet(frozen(&mcfg, &varmap).map_err(err)?);
    let out = tempfile::tempdir().map_err(err)?;
    let t0 = Instant::now();
    let outcome = restoreflow_training::train(
        &RestormerNet(model),
        &varmap,
        &pairs,
        &cfg,
        RunOptions {
            checkpoint_dir: out.path().to_path_buf(),
            model_config: json!({"preset": preset}),
            code_version: code_version(),
            cancel: None,
            resume: None,
            inference: Some(&frozen_net),
        },
        &mut NoHooks,
    )
    .map_err(err)?;
    let secs = t0.elapsed().as_secs_f64();
    let first = outcome.history.first().map(|e| e.train_loss);
    let last = outcome.history.last().map(|e| e.train_loss);
    let psnr = outcome
        .history
        .last()
        .and_then(|e| e.restored.as_ref().map(|m| m.psnr));
    let base = outcome
        .history
        .last()
        .and_then(|e| e.baseline.as_ref().map(|m| m.psnr));
    let falls = matches!((first, last), (Some(f), Some(l)) if l < f && l.is_finite());
    let mut row = Row::new(
        "train through the engine",
        format!(
            "{preset}, {} steps (b4 64², {}), 8 pages {side}²",
            outcome.step, params.precision
        ),
        format!(
            "loss {:.4} → {:.4} (epoch 1 → {}); val PSNR {} (degraded {}); {:.1} s",
            first.unwrap_or(f64::NAN),
            last.unwrap_or(f64::NAN),
            outcome.history.len(),
            psnr.map_or("-".into(), |p| format!("{p:.2} dB")),
            base.map_or("-".into(), |p| format!("{p:.2} dB")),
            secs
        ),
        Some(falls && outcome.step as usize >= steps),
    );
    row.extra = json!({"steps": outcome.step, "first_loss": first, "last_loss": last, "val_psnr": psnr, "seconds": secs});
    Ok((row, frozen_net))
}

/// A whole page through the shipped tiled inference, batched as on the
/// device; plus a batched-vs-single check of the tiles on that device.
fn restore_page(net: &RestormerNet, dev: &Device, w: u32, h: u32) -> Res<Vec<Row>> {
    let clean = page(w, h, 9);
    let degraded = degrade(&clean, 19)?;
    let input = RgbF32::from_rgb8(&degraded);
    let tiles = TileConfig::for_device(dev);
    sync(dev)?;
    let t0 = Instant::now();
    let out = restore_tiled(net, &input, &tiles, dev).map_err(err)?;
    sync(dev)?;
    let secs = t0.elapsed().as_secs_f64();
    let finite = out.data().iter().all(|v| v.is_finite());
    let sized = (out.width(), out.height()) == (w as usize, h as usize);
    let mut rows = vec![Row::new(
        "restore a page (tiled)",
        format!(
            "{w}x{h}, tile {} overlap {} batch {}",
            tiles.tile, tiles.overlap, tiles.batch
        ),
        format!(
            "{:.2} s; {}x{} out, {}",
            secs,
            out.width(),
            out.height(),
            if finite {
                "all finite"
            } else {
                "NON-FINITE values"
            }
        ),
        Some(finite && sized),
    )];
    rows[0].extra = json!({"seconds": secs, "width": w, "height": h, "tile_batch": tiles.batch});
    // Batched tiles must equal one tile at a time on this device.
    let crop = RgbF32::from_rgb8(
        &image::imageops::crop_imm(&degraded, 0, 0, 512.min(w), 512.min(h)).to_image(),
    );
    let one = restore_tiled(net, &crop, &TileConfig { batch: 1, ..tiles }, dev).map_err(err)?;
    let many = restore_tiled(net, &crop, &TileConfig { batch: 8, ..tiles }, dev).map_err(err)?;
    let worst = one
        .data()
        .iter()
        .zip(many.data())
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0f64, f64::max);
    rows.push(Row::new(
        "batched tiles = single tiles",
        format!("{}x{} crop, batch 8 vs 1", crop.width(), crop.height()),
        format!("max abs difference {worst:.1e}"),
        Some(worst <= 1e-3),
    ));
    Ok(rows)
}

/// Median ms of a training step (forward, L1, backward, AdamW) at the given
/// size, as the reference script times PyTorch's.
fn time_step(
    dev: &Device,
    preset: &str,
    batch: usize,
    size: usize,
    steps: usize,
    tf32: bool,
) -> Res<f64> {
    set_tf32(tf32);
    let cfg = Config::by_name(preset).map_err(err)?;
    let (model, varmap) = build(&cfg, dev).map_err(err)?;
    let mut opt = AdamW::new(
        &varmap,
        AdamWConfig {
            weight_decay: 1e-4,
            ..AdamWConfig::default()
        },
    )
    .map_err(err)?;
    let clean = Tensor::rand(0f32, 1f32, (batch, 3, size, size), dev).map_err(err)?;
    let noise = (Tensor::randn(0f32, 1f32, clean.shape(), dev).map_err(err)? * 0.1).map_err(err)?;
    let noisy = (&clean + noise).map_err(err)?;
    let mut times = Vec::new();
    for i in 0..steps + 3 {
        sync(dev)?;
        let t = Instant::now();
        let loss = (model.forward(&noisy).map_err(err)? - &clean)
            .map_err(err)?
            .abs()
            .map_err(err)?
            .mean_all()
            .map_err(err)?;
        let grads = loss.backward().map_err(err)?;
        opt.step(&grads, 1e-4).map_err(err)?;
        sync(dev)?;
        if i >= 3 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    set_tf32(false);
    Ok(times[times.len() / 2])
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gpu-check: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(ok) if ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("gpu-check: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Res<bool> {
    let dev = restoreflow_restormer::device(args.device == "cuda").map_err(err)?;
    let q = args.quick;
    let mut rows = Vec::new();
    let (preset, batch, size) = if q { ("tiny", 2, 32) } else { ("small", 2, 64) };
    rows.push(model_parity(&dev, preset, batch, size)?);
    if !q {
        rows.push(model_parity(&dev, "base", 1, 64)?);
    }
    rows.push(depthwise_parity(
        &dev,
        if q { (2, 8, 16, 16) } else { (4, 84, 64, 64) },
    )?);
    let (train_preset, side) = if q { ("tiny", 96) } else { ("small", 384) };
    let (row, net) = train_small(&args.device, train_preset, args.train_steps, side)?;
    rows.push(row);
    let (w, h) = if q { (248, 351) } else { (2480, 3508) };
    rows.extend(restore_page(&net, &dev, w, h)?);
    let (tp, tb, ts) = if q { ("tiny", 2, 32) } else { ("base", 8, 128) };
    // TF32 is a CUDA matmul mode; on the CPU only f32 is timed.
    let precisions: &[(&str, bool)] = if dev.is_cuda() {
        &[("f32", false), ("tf32", true)]
    } else {
        &[("f32", false)]
    };
    for &(label, tf32) in precisions {
        let ms = time_step(&dev, tp, tb, ts, args.timing_steps, tf32)?;
        let mut r = Row::new(
            if tf32 {
                "train step (candle, tf32)"
            } else {
                "train step (candle, f32)"
            },
            format!("{tp} b{tb} {ts}², AdamW"),
            format!("{ms:.1} ms median of {}", args.timing_steps),
            None,
        );
        r.extra =
            json!({"median_ms": ms, "preset": tp, "batch": tb, "size": ts, "precision": label});
        rows.push(r);
    }
    print_table(args, &dev, &rows);
    if let Some(path) = &args.json {
        write_json(path, args, &rows)?;
    }
    Ok(rows.iter().all(|r| r.pass != Some(false)))
}

fn device_name(dev: &Device) -> String {
    if dev.is_cuda() {
        restoreflow_core::devices::probe("cuda")
            .into_iter()
            .find_map(|c| c.name)
            .unwrap_or_else(|| "cuda:0".into())
    } else {
        restoreflow_core::devices::probe("cpu")
            .into_iter()
            .find_map(|c| c.name)
            .unwrap_or_else(|| "cpu".into())
    }
}

fn print_table(args: &Args, dev: &Device, rows: &[Row]) {
    println!(
        "gpu-check on {} ({}{}), {}",
        device_name(dev),
        args.device,
        if args.quick { ", quick sizes" } else { "" },
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!();
    println!("| check | setup | result | pass |");
    println!("|---|---|---|---|");
    for r in rows {
        let pass = match r.pass {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!("| {} | {} | {} | {pass} |", r.check, r.setup, r.result);
    }
}

fn write_json(path: &Path, args: &Args, rows: &[Row]) -> Res<()> {
    let v = json!({
        "device": args.device,
        "quick": args.quick,
        "rows": rows.iter().map(|r| json!({
            "check": r.check, "setup": r.setup, "result": r.result, "pass": r.pass, "data": r.extra,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(path, serde_json::to_vec_pretty(&v).map_err(err)?).map_err(err)
}
