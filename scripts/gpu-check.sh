#!/usr/bin/env bash
# The one-script CUDA proof. Prints one markdown table:
#   - the Restormer's forward and backward on CUDA against the CPU (small and
#     base, within 1e-3 relative in f32), the depthwise CUDA kernel against the
#     CPU kernel, `small` trained for 200 steps through the training engine
#     (the loss must fall), a 2480x3508 page restored through tiled, batched
#     inference, and the `base` b8 128² training step time in f32 and tf32
#     (tests/bin/gpu_check.rs);
#   - the same training step in PyTorch eager on the same GPU, from the peer
#     reference Restormer (PyTorch's own AdamW, L1, 3 warm-up steps, median),
#     when CUDA torch is importable, and the ratio.
#
# Usage:
#   scripts/gpu-check.sh build   # here: build the CUDA binary (no GPU needed) into gpu-check/
#   scripts/gpu-check.sh run     # on the GPU machine: run what `build` left in gpu-check/
#   scripts/gpu-check.sh         # both, on a GPU machine with a Rust toolchain
#
# Environment: TORCH_REFERENCE (default ../shared/bench/restormer_torch.py, then
# shared/bench/restormer_torch.py), PYTHON (default python3), OUT (where
# gpu-check.json and table.md go; default gpu-check/), GPU_CHECK_TIMEOUT (s, 540).
# Fits in ten minutes on one H100/H200; exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-all}"
DIR="gpu-check"
BIN="$DIR/restoreflow-gpu-check"

build() {
  . scripts/lib/cache.sh
  . scripts/lib/cuda.sh
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
  cargo fetch --locked >/dev/null
  cuda_link_setup
  echo "gpu-check: cargo build --release --features cuda (toolkit $C, compute capability $CUDA_COMPUTE_CAP)"
  cargo build --release --locked -p restoreflow-tests --features cuda --bin restoreflow-gpu-check
  mkdir -p "$DIR"
  cp "$CARGO_TARGET_DIR/release/restoreflow-gpu-check" "$BIN"
  # The binary embeds Candle's CUDA kernels (~60 MB); the compressed copy is
  # what travels to a GPU machine (`run` unpacks it when the binary is absent).
  xz -T2 -6 -kfc "$BIN" >"$BIN.xz"
  echo "gpu-check: built $BIN ($(du -h "$BIN" | cut -f1); $(du -h "$BIN.xz" | cut -f1) as $BIN.xz);" \
    "carry $BIN.xz to the GPU machine and run: scripts/gpu-check.sh run"
}

# Directories holding the CUDA 13 runtime libraries the binary links
# (cudart, cuBLAS, cuRAND, NVRTC): a system toolkit, or the nvidia-* Python
# packages that a CUDA torch install brings. Never the link-time stub.
runtime_lib_path() {
  local dirs=() d
  for d in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/libcublas.so.13" ] && dirs+=("$d")
  done
  local py
  for py in "${PYTHON:-python3}" python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    while IFS= read -r d; do
      [ -n "$d" ] && dirs+=("$d")
    done < <("$py" - <<'PY' 2>/dev/null || true
import glob, os, site
roots = set(site.getsitepackages() + [site.getusersitepackages()])
for r in roots:
    for lib in glob.glob(os.path.join(r, "nvidia", "**", "lib"), recursive=True):
        if "stubs" not in lib and glob.glob(os.path.join(lib, "lib*.so*")):
            print(lib)
PY
)
  done
  local IFS=:
  echo "${dirs[*]}"
}

torch_reference() {
  local ref
  for ref in "${TORCH_REFERENCE:-}" ../shared/bench/restormer_torch.py shared/bench/restormer_torch.py; do
    [ -n "$ref" ] && [ -f "$ref" ] && { echo "$ref"; return; }
  done
}

# Times the reference Restormer's training step on CUDA (the script itself
# only runs on the CPU, so its model is imported and moved to the GPU here).
torch_step() {
  local ref="$1" tf32="$2"
  "${PYTHON:-python3}" - "$ref" "$tf32" <<'PY'
import importlib.util, json, statistics, sys, time
import torch
ref, tf32 = sys.argv[1], sys.argv[2] == "1"
if not torch.cuda.is_available():
    raise SystemExit("torch has no CUDA device")
torch.backends.cuda.matmul.allow_tf32 = tf32
torch.backends.cudnn.allow_tf32 = tf32
spec = importlib.util.spec_from_file_location("restormer_torch", ref)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
dev = torch.device("cuda")
m = mod.build("base").to(dev)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=1e-4)
clean = torch.rand(8, 3, 128, 128, device=dev)
noisy = clean + 0.1 * torch.randn_like(clean)
times = []
for i in range(13):
    torch.cuda.synchronize()
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = (m(noisy) - clean).abs().mean()
    loss.backward()
    opt.step()
    torch.cuda.synchronize()
    if i >= 3:
        times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": statistics.median(times), "torch": torch.__version__,
                  "gpu": torch.cuda.get_device_name(0), "tf32": tf32}))
PY
}

run() {
  if [ ! -x "$BIN" ] && [ -f "$BIN.xz" ]; then
    xz -dc "$BIN.xz" >"$BIN" && chmod +x "$BIN"
  fi
  [ -x "$BIN" ] || { echo "gpu-check: $BIN is missing; run scripts/gpu-check.sh build first" >&2; exit 2; }
  command -v nvidia-smi >/dev/null 2>&1 || { echo "gpu-check: no NVIDIA driver (nvidia-smi) on this machine" >&2; exit 2; }
  local out="${OUT:-$DIR}"
  mkdir -p "$out"
  local libs
  libs="$(runtime_lib_path)"
  echo "gpu-check: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
  echo "gpu-check: CUDA runtime libraries from: ${libs:-the system loader path}"
  local status=0
  LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    timeout "${GPU_CHECK_TIMEOUT:-540}" "$BIN" --device cuda --json "$out/gpu-check.json" | tee "$out/table.md" || status=$?

  local ref
  ref="$(torch_reference)"
  if [ -z "$ref" ]; then
    echo "| train step (PyTorch eager) | base b8 128², AdamW | reference script not found (set TORCH_REFERENCE) | - |" | tee -a "$out/table.md"
  else
    local f32 tf32
    if f32="$(torch_step "$ref" 0 2>"$out/torch.err")" && tf32="$(torch_step "$ref" 1 2>>"$out/torch.err")"; then
      "${PYTHON:-python3}" - "$out/gpu-check.json" "$f32" "$tf32" <<'PY' | tee -a "$out/table.md"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
torch_f32, torch_tf32 = json.loads(sys.argv[2]), json.loads(sys.argv[3])
def candle(name):
    for r in rows:
        if r["check"] == name:
            return r["data"]["median_ms"]
for label, t in (("f32", torch_f32), ("tf32", torch_tf32)):
    print(f"| train step (PyTorch {t['torch']} eager, {label}) | base b8 128², AdamW | {t['median_ms']:.1f} ms median of 10 | - |")
for label, t in (("f32", torch_f32), ("tf32", torch_tf32)):
    c = candle(f"train step (candle, {label})")
    if c:
        print(f"| throughput vs PyTorch ({label}) | base b8 128² | {t['median_ms'] / c:.2f}x (PyTorch ms / candle ms; goal >= 1.0) | - |")
PY
    else
      echo "| train step (PyTorch eager) | base b8 128², AdamW | CUDA torch not available: $(tail -1 "$out/torch.err") | - |" | tee -a "$out/table.md"
    fi
  fi
  return "$status"
}

case "$mode" in
  build) build ;;
  run) run ;;
  all) build && run ;;
  *) echo "usage: scripts/gpu-check.sh [build|run]" >&2; exit 2 ;;
esac
