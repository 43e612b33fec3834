#!/usr/bin/env bash
# Compile-checks the CUDA build (`--features cuda`) without a GPU: installs the
# CUDA 13.0 toolkit pieces from PyPI into a cached virtualenv (nvcc, nvrtc,
# cuBLAS, cuRAND, cudart headers; scripts/lib/cuda.sh) and runs `cargo check`
# against them, for the shipped crates and the gpu-check program.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/cache.sh
. scripts/lib/cuda.sh

echo "cuda: cargo check --features cuda (toolkit $C, compute capability $CUDA_COMPUTE_CAP)"
# The shipped binary's crates and the CUDA proof program (scripts/gpu-check.sh).
cargo check --locked -p restoreflow-restormer -p restoreflow-trainer -p restoreflow -p restoreflow-tests \
  --features restoreflow-restormer/cuda,restoreflow-trainer/cuda,restoreflow/cuda,restoreflow-tests/cuda "$@"
