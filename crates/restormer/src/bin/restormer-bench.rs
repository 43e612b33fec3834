//! Benchmarks the Candle Restormer against the PyTorch reference script and prints
//! one markdown table: training step time (small preset, batch 4, 64² and 128²),
//! tiled whole-page inference with peak RSS, and the depthwise kernel against
//! Candle's grouped convolution.
//!
//! Run (threads come from `RAYON_NUM_THREADS`, which Candle also reads):
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p restoreflow-restormer --features bench \
//!     --bin restormer-bench -- --python /path/to/venv/bin/python \
//!     --reference /path/to/restormer_torch.py
//! ```
//!
//! The binary re-runs itself with `MIMALLOC_PURGE_DELAY=-1` (and
//! `CANDLE_BARRIER_POOL_SPIN_LIMIT=0` unless given) when the former is unset.
//! Each Candle measurement is followed immediately by the matching PyTorch run
//! (a subprocess with `THREADS` set to the same count), so both see the same load.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use restoreflow_restormer::{Config, Restormer, build, frozen, kernels};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    python: String,
    reference: String,
    steps: usize,
    infer_reps: usize,
    tile: usize,
    skip: Vec<String>,
    child: Option<Vec<String>>,
    phases: Option<usize>,
    kernels: bool,
    memory: bool,
    child_memory: Option<Vec<String>>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        python: "python3".into(),
        reference: "restormer_torch.py".into(),
        steps: 10,
        infer_reps: 1,
        tile: 512,
        skip: Vec::new(),
        child: None,
        phases: None,
        kernels: false,
        memory: false,
        child_memory: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--python" => a.python = value()?,
            "--reference" => a.reference = value()?,
            "--steps" => a.steps = value()?.parse()?,
            "--infer-reps" => a.infer_reps = value()?.parse()?,
            "--tile" => a.tile = value()?.parse()?,
            "--skip" => a.skip.push(value()?),
            "--kernels" => a.kernels = true,
            "--memory" => a.memory = true,
            "--child-memory" => a.child_memory = Some(vec![value()?, value()?, value()?]),
            "--phases" => a.phases = Some(value()?.parse()?),
            "--child-infer" => a.child = Some(vec![value()?, value()?, value()?]),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// Runs the PyTorch reference and returns its final JSON line.
fn torch(args: &Args, mode_args: &[String]) -> Result<serde_json::Value> {
    let out = Command::new(&args.python)
        .arg(&args.reference)
        .args(mode_args)
        .env("THREADS", threads().to_string())
        .output()
        .with_context(|| format!("running {} {}", args.python, args.reference))?;
    if !out.status.success() {
        bail!("reference failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8(out.stdout)?;
    let line = text.lines().last().context("reference printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

fn candle_train(cfg: &Config, batch: usize, size: usize, steps: usize) -> Result<f64> {
    let dev = Device::Cpu;
    let (model, varmap) = build(cfg, &dev)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 1e-4,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let clean = Tensor::rand(0f32, 1f32, (batch, 3, size, size), &dev)?;
    let noisy = (&clean + (Tensor::randn(0f32, 1f32, clean.shape(), &dev)? * 0.1)?)?;
    let mut times = Vec::new();
    for i in 0..steps + 3 {
        let t = Instant::now();
        let loss = (model.forward(&noisy)? - &clean)?.abs()?.mean_all()?;
        opt.backward_step(&loss)?;
        if i >= 3 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(median(times))
}

/// Tile start offsets covering `len` with tiles of `tile` overlapping by at least `overlap`.
fn tile_starts(len: usize, tile: usize, overlap: usize) -> Vec<usize> {
    if len <= tile {
        return vec![0];
    }
    let mut starts: Vec<usize> = (0..)
        .map(|i| i * (tile - overlap))
        .take_while(|&s| s + tile < len)
        .collect();
    starts.push(len - tile);
    starts
}

/// Restores one `[3, H, W]` page tile by tile, averaging overlaps.
fn restore_tiled(model: &Restormer, page: &Tensor, tile: usize) -> Result<Tensor> {
    let (c, h, w) = page.dims3()?;
    if h % 8 != 0 && h < tile || w % 8 != 0 && w < tile {
        bail!("page {h}x{w} is smaller than a tile and not a multiple of 8");
    }
    let mut sum = vec![0f32; c * h * w];
    let mut count = vec![0f32; h * w];
    for &y0 in &tile_starts(h, tile, 32) {
        for &x0 in &tile_starts(w, tile, 32) {
            let (th, tw) = (tile.min(h), tile.min(w));
            let t = page.narrow(1, y0, th)?.narrow(2, x0, tw)?.unsqueeze(0)?;
            let out = model.forward(&t)?.squeeze(0)?.to_vec3::<f32>()?;
            for (ci, plane) in out.iter().enumerate() {
                for (yy, row) in plane.iter().enumerate() {
                    let base = ci * h * w + (y0 + yy) * w + x0;
                    for (xx, v) in row.iter().enumerate() {
                        sum[base + xx] += v;
                        if ci == 0 {
                            count[(y0 + yy) * w + x0 + xx] += 1.0;
                        }
                    }
                }
            }
        }
    }
    for (i, s) in sum.iter_mut().enumerate() {
        *s /= count[i % (h * w)];
    }
    Ok(Tensor::from_vec(sum, (c, h, w), &Device::Cpu)?)
}

fn peak_rss_mb() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmHWM")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// Child process: tiled inference of one page, prints `median_ms peak_rss_mb`.
fn child_infer(spec: &[String], tile: usize) -> Result<()> {
    let (h, w, reps): (usize, usize, usize) =
        (spec[0].parse()?, spec[1].parse()?, spec[2].parse()?);
    let (_, varmap) = build(&Config::small(), &Device::Cpu)?;
    let model = frozen(&Config::small(), &varmap)?;
    let page = Tensor::rand(0f32, 1f32, (3, h, w), &Device::Cpu)?;
    let mut times = Vec::new();
    for i in 0..reps + 1 {
        let t = Instant::now();
        let y = restore_tiled(&model, &page, tile)?;
        if i >= 1 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        drop(y);
    }
    println!("{} {}", median(times), peak_rss_mb()?);
    Ok(())
}

fn dwconv_fwd_bwd(
    f: &dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    reps: usize,
) -> Result<f64> {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1f32, (4, 84, 64, 64), &dev)?)?;
    let w = Var::from_tensor(&Tensor::randn(0f32, 0.3f32, (84, 1, 3, 3), &dev)?)?;
    let probe = Tensor::randn(0f32, 1f32, (4, 84, 64, 64), &dev)?;
    let mut times = Vec::new();
    for i in 0..reps + 2 {
        let t = Instant::now();
        let loss = (f(x.as_tensor(), w.as_tensor())? * &probe)?.sum_all()?;
        let g = loss.backward()?;
        if g.get(x.as_tensor()).is_none() || g.get(w.as_tensor()).is_none() {
            bail!("depthwise gradient missing");
        }
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(median(times))
}

/// Candle only: median forward, backward and optimiser times of the small preset
/// at batch 4 and `size`², for profiling.
/// Median ms of forward, backward and AdamW per step, for one graph node per
/// transformer block (the default) and for one node per layer, alternating
/// step by step so that both see the same machine load.
fn phases(size: usize, steps: usize) -> Result<()> {
    let dev = Device::Cpu;
    let (mut model, varmap) = build(&Config::small(), &dev)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 1e-4,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let clean = Tensor::rand(0f32, 1f32, (4, 3, size, size), &dev)?;
    let noisy = (&clean + (Tensor::randn(0f32, 1f32, clean.shape(), &dev)? * 0.1)?)?;
    let graphs = [("one node per block", true), ("one node per layer", false)];
    let mut times = vec![(Vec::new(), Vec::new(), Vec::new()); graphs.len()];
    for _ in 0..steps {
        for ((_, fused), (f, b, o)) in graphs.iter().zip(times.iter_mut()) {
            model.set_fused_blocks(*fused);
            let t = Instant::now();
            let loss = (model.forward(&noisy)? - &clean)?.abs()?.mean_all()?;
            let t1 = Instant::now();
            let grads = loss.backward()?;
            let t2 = Instant::now();
            opt.step(&grads)?;
            let t3 = Instant::now();
            f.push((t1 - t).as_secs_f64() * 1e3);
            b.push((t2 - t1).as_secs_f64() * 1e3);
            o.push((t3 - t2).as_secs_f64() * 1e3);
        }
    }
    for ((name, _), (f, b, o)) in graphs.iter().zip(times) {
        println!(
            "{size}², {name}: forward {:.0} ms, backward {:.0} ms, AdamW {:.0} ms",
            median(f),
            median(b),
            median(o)
        );
    }
    Ok(())
}

type Op<'a> = &'a dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>;

/// Median forward and backward ms of `op` on `args` (all differentiated).
fn time_op(op: Op, args: &[Tensor], reps: usize) -> Result<(f64, f64)> {
    let vars: Vec<Var> = args
        .iter()
        .map(Var::from_tensor)
        .collect::<candle_core::Result<_>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let probe = op(&ts)?.ones_like()?;
    let (mut f, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t0 = Instant::now();
        let y = op(&ts)?;
        let t1 = Instant::now();
        let loss = (y * &probe)?.sum_all()?;
        let t2 = Instant::now();
        loss.backward()?;
        let t3 = Instant::now();
        f.push((t1 - t0).as_secs_f64() * 1e3);
        b.push((t3 - t2).as_secs_f64() * 1e3);
    }
    Ok((median(f), median(b)))
}

/// Candle only: each fused kernel against its stock-op reference at the sizes of
/// the small preset's first level (batch 4, 64²).
fn kernel_table() -> Result<()> {
    let dev = Device::Cpu;
    let r = |shape: &[usize]| Tensor::randn(0f32, 1f32, shape, &dev);
    let x16 = r(&[4, 16, 64, 64])?;
    let (w16, b16) = (r(&[16])?, r(&[16])?);
    let qkv = r(&[4, 48, 64, 64])?;
    let t = r(&[1, 1, 1])?;
    let h84 = r(&[4, 84, 64, 64])?;
    let w84 = r(&[84, 1, 3, 3])?;
    let wp = r(&[84, 16, 1, 1])?;
    use kernels::reference as k0;
    let cases: Vec<(&str, Op, Op, Vec<Tensor>)> = vec![
        (
            "layer norm [4,16,64,64]",
            &|a| kernels::channel_layer_norm(&a[0], &a[1], Some(&a[2])),
            &|a| k0::channel_layer_norm(&a[0], &a[1], Some(&a[2])),
            vec![x16.clone(), w16, b16],
        ),
        (
            "attention [4,48,64,64]",
            &|a| kernels::transposed_attention(&a[0], &a[1], 1),
            &|a| k0::transposed_attention(&a[0], &a[1], 1),
            vec![qkv, t],
        ),
        (
            "gelu gate [4,84,64,64]",
            &|a| kernels::gelu_gate(&a[0]),
            &|a| k0::gelu_gate(&a[0]),
            vec![h84.clone()],
        ),
        (
            "depthwise [4,84,64,64]",
            &|a| kernels::depthwise_conv3x3(&a[0], &a[1]),
            &|a| k0::depthwise_conv3x3(&a[0], &a[1]),
            vec![h84, w84],
        ),
        (
            "pointwise 16->84 [4,16,64,64]",
            &|a| kernels::pointwise_conv(&a[0], &a[1]),
            &|a| k0::pointwise_conv(&a[0], &a[1]),
            vec![x16, wp],
        ),
    ];
    println!("| kernel | fused fwd | fused bwd | stock fwd | stock bwd |");
    println!("|---|---:|---:|---:|---:|");
    for (name, fused, stock, args) in cases {
        let (ff, fb) = time_op(fused, &args, 7)?;
        let (sf, sb) = time_op(stock, &args, 3)?;
        println!("| {name} | {ff:.1} | {fb:.1} | {sf:.1} | {sb:.1} |");
    }
    Ok(())
}

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn proc_status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .context("no such status field")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

/// One process per row: peak memory growth of three training steps
/// (model, AdamW, forward and backward) next to
/// `Config::train_step_bytes`, the estimate the trainer refuses jobs by.
fn memory_table() -> Result<()> {
    println!(
        "| preset | batch | patch | measured peak growth MB | estimate MB | estimate / measured |"
    );
    println!("|---|---|---|---|---|---|");
    for (preset, batch, patch) in [
        ("tiny", 4, 64),
        ("small", 1, 64),
        ("small", 4, 64),
        ("small", 4, 128),
        ("small", 8, 128),
        ("base", 1, 64),
        ("base", 2, 128),
    ] {
        let out = Command::new(std::env::current_exe()?)
            .args([
                "--child-memory",
                preset,
                &batch.to_string(),
                &patch.to_string(),
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "{preset} b{batch} {patch}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let measured: f64 = String::from_utf8(out.stdout)?.trim().parse()?;
        let est = Config::by_name(preset)?.train_step_bytes(batch, patch) as f64;
        let mb = |b: f64| b / (1 << 20) as f64;
        println!(
            "| {preset} | {batch} | {patch} | {:.0} | {:.0} | {:.2} |",
            mb(measured),
            mb(est),
            est / measured
        );
    }
    Ok(())
}

fn child_memory(spec: &[String]) -> Result<()> {
    let cfg = Config::by_name(&spec[0])?;
    let (batch, patch): (usize, usize) = (spec[1].parse()?, spec[2].parse()?);
    let before = proc_status_bytes("VmRSS:")?;
    let dev = Device::Cpu;
    let (model, varmap) = build(&cfg, &dev)?;
    let mut opt = AdamW::new(varmap.all_vars(), ParamsAdamW::default())?;
    let clean = Tensor::rand(0f32, 1f32, (batch, 3, patch, patch), &dev)?;
    let noisy = (&clean + (Tensor::randn(0f32, 1f32, clean.shape(), &dev)? * 0.1)?)?;
    for _ in 0..3 {
        let loss = (model.forward(&noisy)? - &clean)?.abs()?.mean_all()?;
        opt.backward_step(&loss)?;
    }
    println!("{}", proc_status_bytes("VmHWM:")?.saturating_sub(before));
    Ok(())
}

fn main() -> Result<()> {
    // mimalloc hands freed pages back to the OS after 10 ms. A training step frees
    // and reallocates hundreds of MB, so every step page-faults (and the kernel
    // zero-fills) all of it again: 61k faults in 10 steps at 64², 464 with purging
    // off. The option is read from the environment at start-up, so re-run self.
    // Candle's element-wise thread pool spins ~25k iterations after each op before
    // parking; on two cores that spinning steals the core the next kernel needs.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        let mut child = Command::new(std::env::current_exe()?);
        child
            .args(std::env::args_os().skip(1))
            .env("MIMALLOC_PURGE_DELAY", "-1");
        if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
            child.env("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
        }
        let status = child.status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let args = parse_args()?;
    if let Some(spec) = &args.child {
        return child_infer(spec, args.tile);
    }
    if let Some(spec) = &args.child_memory {
        return child_memory(spec);
    }
    if args.kernels {
        return kernel_table();
    }
    if args.memory {
        return memory_table();
    }
    if let Some(size) = args.phases {
        return phases(size, args.steps);
    }
    let n = threads();
    let mut rows: Vec<String> = Vec::new();
    let cfg = Config::small();
    for size in [64usize, 128] {
        if args.skip.iter().any(|s| s == &format!("train{size}")) {
            continue;
        }
        let c = candle_train(&cfg, 4, size, args.steps)?;
        let p = torch(
            &args,
            &[
                "train".into(),
                "small".into(),
                "4".into(),
                size.to_string(),
                args.steps.to_string(),
            ],
        )?;
        let p = p["median_ms"].as_f64().context("median_ms")?;
        rows.push(format!(
            "| train step, small, b4 {size}², fwd+bwd+AdamW (median ms, {n} threads; peer = PyTorch) | {c:.0} | {p:.0} | {:.2}x |",
            c / p
        ));
        eprintln!("{}", rows.last().map(String::as_str).unwrap_or_default());
    }
    if !args.skip.iter().any(|s| s == "infer") {
        let (h, w) = (1754usize, 1240usize);
        let exe = std::env::current_exe()?;
        let out = Command::new(exe)
            .args([
                "--tile",
                &args.tile.to_string(),
                "--child-infer",
                &h.to_string(),
                &w.to_string(),
            ])
            .arg(args.infer_reps.to_string())
            .output()?;
        if !out.status.success() {
            bail!(
                "inference child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8(out.stdout)?;
        let mut parts = text.split_whitespace().map(str::parse::<f64>);
        let (cms, crss) = (parts.next().context("ms")??, parts.next().context("rss")??);
        let p = torch(
            &args,
            &[
                "infer".into(),
                "small".into(),
                h.to_string(),
                w.to_string(),
                args.infer_reps.to_string(),
            ],
        )?;
        let (pms, prss) = (
            p["median_ms"].as_f64().context("median_ms")?,
            p["peak_rss_mb"].as_f64().context("rss")?,
        );
        rows.push(format!(
            "| inference, small, one {w}x{h} page (median ms; ours: {t}² tiles, overlap 32; peer = PyTorch whole page) | {cms:.0} | {pms:.0} | {:.2}x |",
            cms / pms,
            t = args.tile
        ));
        rows.push(format!("| inference peak RSS (MB; VmHWM vs PyTorch ru_maxrss) | {crss:.0} | {prss:.0} | {:.2}x |", crss / prss));
        eprintln!("{}", rows[rows.len() - 2]);
    }
    let custom = dwconv_fwd_bwd(&|x, w| kernels::depthwise_conv3x3(x, w), 20)?;
    let grouped = dwconv_fwd_bwd(&|x, w| kernels::reference::depthwise_conv3x3(x, w), 3)?;
    rows.push(format!(
        "| depthwise 3x3 fwd+bwd (4,84,64,64) (median ms; peer = Candle grouped conv2d) | {custom:.1} | {grouped:.1} | {:.3}x ({:.0}x faster) |",
        custom / grouped,
        grouped / custom
    ));

    println!("| measurement | restoreflow (Candle) | peer | ratio (ours / peer) |");
    println!("|---|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
