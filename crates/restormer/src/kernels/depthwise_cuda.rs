//! CUDA implementation of the depthwise 3x3 convolution and its weight gradient.
//!
//! The kernels are plain CUDA C compiled once per process with NVRTC and loaded
//! through candle's device, so the crate needs no build script or nvcc.
//! Status: compile-checked (`cargo check/clippy --features cuda`, CUDA 13.0
//! toolkit, sm_90) but not yet run on a GPU; the CPU tests do not cover it.
// Launching a CUDA kernel is an FFI call; every `unsafe` block below carries its
// reason. The workspace denies unsafe code elsewhere.
#![allow(unsafe_code)]

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::cudarc::nvrtc;
use candle_core::{CudaStorage, Layout, Result, Shape, bail};

use super::depthwise::dims_xw;

const MODULE: &str = "restoreflow_dwconv3x3";
const WGRAD_THREADS: u32 = 256;

const SOURCE: &str = r#"
extern "C" __global__ void dw3x3_fwd_f32(
    const float* x, const float* w, float* y,
    int B, int C, int H, int W, int flip)
{
    long long n = (long long)B * C * H * W;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n) return;
    int ox = (int)(idx % W);
    long long t = idx / W;
    int oy = (int)(t % H);
    t /= H;
    int c = (int)(t % C);
    const float* plane = x + (idx - (long long)oy * W - ox);
    const float* k = w + (long long)c * 9;
    float acc = 0.0f;
    for (int ky = 0; ky < 3; ++ky) {
        int iy = oy + ky - 1;
        if (iy < 0 || iy >= H) continue;
        for (int kx = 0; kx < 3; ++kx) {
            int ix = ox + kx - 1;
            if (ix < 0 || ix >= W) continue;
            int tap = ky * 3 + kx;
            float kv = flip ? k[8 - tap] : k[tap];
            acc += kv * plane[(long long)iy * W + ix];
        }
    }
    y[idx] = acc;
}

// One block per (channel, tap); the block reduces over batch and pixels.
extern "C" __global__ void dw3x3_wgrad_f32(
    const float* x, const float* g, float* gw,
    int B, int C, int H, int W, int flip)
{
    __shared__ float part[256];
    int c = blockIdx.x / 9;
    int tap = blockIdx.x % 9;
    int ky = tap / 3, kx = tap % 3;
    long long hw = (long long)H * W;
    long long total = (long long)B * hw;
    float acc = 0.0f;
    for (long long i = threadIdx.x; i < total; i += blockDim.x) {
        long long b = i / hw;
        long long r = i % hw;
        int oy = (int)(r / W), ox = (int)(r % W);
        int iy = oy + ky - 1, ix = ox + kx - 1;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
            long long base = (b * C + c) * hw;
            acc += g[base + r] * x[base + (long long)iy * W + ix];
        }
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) gw[c * 9 + (flip ? 8 - tap : tap)] = part[0];
}
"#;

/// PTX of [`SOURCE`], compiled on first use.
fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    let compiled = PTX.get_or_init(|| {
        nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    });
    match compiled {
        Ok(ptx) => Ok(ptx.as_str()),
        Err(e) => bail!("nvrtc failed to compile the depthwise kernels: {e}"),
    }
}

fn offsets(layout: &Layout, what: &str) -> Result<(usize, usize)> {
    match layout.contiguous_offsets() {
        Some(o) => Ok(o),
        None => bail!("{what}: input must be contiguous"),
    }
}

fn as_i32(v: usize) -> Result<i32> {
    match i32::try_from(v) {
        Ok(v) => Ok(v),
        Err(_) => bail!("depthwise_conv3x3: dimension {v} exceeds the cuda kernel's i32 range"),
    }
}

/// Forward (or, with `flip`, input-gradient) pass on the GPU.
pub(crate) fn conv_fwd(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    flip: bool,
) -> Result<(CudaStorage, Shape)> {
    let (b, c, h, w) = dims_xw(l1, l2)?;
    let dev = s1.device().clone();
    let (x0, x1) = offsets(l1, "depthwise_conv3x3")?;
    let (w0, w1) = offsets(l2, "depthwise_conv3x3")?;
    let x = s1.as_cuda_slice::<f32>()?.slice(x0..x1);
    let k = s2.as_cuda_slice::<f32>()?.slice(w0..w1);
    let n = b * c * h * w;
    let out = dev.alloc_zeros::<f32>(n)?;
    if n > 0 {
        let func = dev.get_or_load_custom_func("dw3x3_fwd_f32", MODULE, ptx()?)?;
        let (bi, ci, hi, wi, fi) = (
            as_i32(b)?,
            as_i32(c)?,
            as_i32(h)?,
            as_i32(w)?,
            i32::from(flip),
        );
        let cfg = LaunchConfig::for_num_elems(n as u32);
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&k);
        builder.arg(&out);
        builder.arg(&bi);
        builder.arg(&ci);
        builder.arg(&hi);
        builder.arg(&wi);
        builder.arg(&fi);
        // SAFETY: the argument list matches the kernel signature; `x` holds B*C*H*W
        // and `k` C*9 floats (checked by `dims_xw`), `out` was allocated with n floats.
        unsafe { builder.launch(cfg) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), l1.shape().clone()))
}

/// Weight gradient `(x, grad_y) -> grad_w` on the GPU.
pub(crate) fn weight_grad(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    flip: bool,
) -> Result<(CudaStorage, Shape)> {
    let (b, c, h, w) = l1.shape().dims4()?;
    if l2.shape() != l1.shape() {
        bail!(
            "depthwise_conv3x3 weight grad: gradient shape {:?} differs from input {:?}",
            l2.shape(),
            l1.shape()
        );
    }
    let dev = s1.device().clone();
    let (x0, x1) = offsets(l1, "depthwise_conv3x3 weight grad")?;
    let (g0, g1) = offsets(l2, "depthwise_conv3x3 weight grad")?;
    let x = s1.as_cuda_slice::<f32>()?.slice(x0..x1);
    let g = s2.as_cuda_slice::<f32>()?.slice(g0..g1);
    let out = dev.alloc_zeros::<f32>(c * 9)?;
    if c > 0 {
        let func = dev.get_or_load_custom_func("dw3x3_wgrad_f32", MODULE, ptx()?)?;
        let (bi, ci, hi, wi, fi) = (
            as_i32(b)?,
            as_i32(c)?,
            as_i32(h)?,
            as_i32(w)?,
            i32::from(flip),
        );
        let cfg = LaunchConfig {
            grid_dim: ((c * 9) as u32, 1, 1),
            block_dim: (WGRAD_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&g);
        builder.arg(&out);
        builder.arg(&bi);
        builder.arg(&ci);
        builder.arg(&hi);
        builder.arg(&wi);
        builder.arg(&fi);
        // SAFETY: the argument list matches the kernel signature; the grid has one block
        // per output element (C*9) and the block size equals the kernel's shared array.
        unsafe { builder.launch(cfg) }.w()?;
    }
    Ok((
        CudaStorage::wrap_cuda_slice(out, dev),
        Shape::from((c, 1, 3, 3)),
    ))
}
