#!/usr/bin/env bash
# Compile-checks the CUDA build (`--features cuda`) without a GPU: installs the
# CUDA 13.0 toolkit pieces from PyPI into a cached virtualenv (nvcc, nvrtc,
# cuBLAS, cuRAND, cudart headers) and runs `cargo check` against them.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/cache.sh
VENV="$CACHE/cuda-13.0"
WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35)

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/pip" show nvidia-cuda-nvcc >/dev/null 2>&1; then
  echo "cuda: installing the CUDA 13.0 toolkit wheels into $VENV (once, ~1.2 GB)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "${WHEELS[@]}"
fi
C="$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[ -x "$C/bin/nvcc" ] || { echo "cuda: nvcc not found under $C" >&2; exit 1; }
mkdir -p "$C/lib" "$C/lib/stubs"

export CUDA_HOME="$C" CUDA_PATH="$C" PATH="$C/bin:$PATH" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
echo "cuda: cargo check --features cuda (toolkit $C, compute capability $CUDA_COMPUTE_CAP)"
cargo check --locked -p restoreflow-restormer -p restoreflow-trainer -p restoreflow \
  --features restoreflow-restormer/cuda,restoreflow-trainer/cuda,restoreflow/cuda "$@"
