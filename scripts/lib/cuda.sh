# Sourced by scripts/cuda-check.sh and scripts/gpu-check.sh: installs the CUDA
# 13.0 toolkit pieces from PyPI into a cached virtualenv (nvcc, nvrtc, cuBLAS,
# cuRAND, cudart; once, ~1.2 GB) and exports CUDA_HOME, PATH and
# CUDA_COMPUTE_CAP for building the `cuda` feature without a GPU.
# Needs CACHE (scripts/lib/cache.sh). Sets C to the toolkit root.
CUDA_VENV="$CACHE/cuda-13.0"
CUDA_WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35)

if [ ! -x "$CUDA_VENV/bin/python" ] || ! "$CUDA_VENV/bin/pip" show nvidia-cuda-nvcc >/dev/null 2>&1; then
  echo "cuda: installing the CUDA 13.0 toolkit wheels into $CUDA_VENV (once, ~1.2 GB)"
  python3 -m venv "$CUDA_VENV"
  "$CUDA_VENV/bin/pip" install -q "${CUDA_WHEELS[@]}"
fi
C="$("$CUDA_VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[ -x "$C/bin/nvcc" ] || { echo "cuda: nvcc not found under $C" >&2; exit 1; }
mkdir -p "$C/lib" "$C/lib/stubs"
export CUDA_HOME="$C" CUDA_PATH="$C" PATH="$C/bin:$PATH" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

# Linking a CUDA binary (not just checking it) also needs the unversioned
# `.so` names the linker looks for, and a link-time `libcuda.so`: the driver
# library comes with the NVIDIA driver, which a build machine without a GPU
# does not have. The stub defines every driver function cudarc declares
# (each returns CUDA_ERROR_NO_DEVICE) under the soname libcuda.so.1, so the
# binary loads the real driver library on a GPU machine. Never put the stub
# on LD_LIBRARY_PATH there.
cuda_link_setup() {
  local lib
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnvrtc.so.13 libcurand.so.10; do
    [ -e "$C/lib/$lib" ] && ln -sf "$lib" "$C/lib/${lib%%.so.*}.so"
  done
  local stub="$C/lib/stubs/libcuda.so"
  if [ ! -e "$stub" ]; then
    local src cudarc
    cudarc="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | tail -1)"
    [ -n "$cudarc" ] || { echo "cuda: cudarc sources not found (run cargo fetch first)" >&2; return 1; }
    src="$(mktemp -d)/libcuda_stub.c"
    grep -o 'pub unsafe fn cu[A-Za-z0-9_]*(' "$cudarc/src/driver/sys/mod.rs" | sed 's/pub unsafe fn //; s/($//' \
      | sort -u | awk '{ printf "int %s(void) { return 100; }\n", $1 }' >"$src"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub" "$src"
    echo "cuda: built the link-time driver stub $stub ($(grep -c . "$src") functions)"
  fi
}
