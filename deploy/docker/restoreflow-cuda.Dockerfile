# syntax=docker/dockerfile:1
# The restoreflow image built with `--features cuda` on an NVIDIA CUDA base,
# for trainers on GPUs; the same CLI and entry point as restoreflow.Dockerfile.
# Build from the repository root (no GPU needed to build; CUDA_COMPUTE_CAP
# picks the kernels' target, 90 = H100):
#   docker build -f deploy/docker/restoreflow-cuda.Dockerfile --build-arg CUDA_COMPUTE_CAP=90 -t restoreflow/restoreflow-cuda:0.1.0 .
# Run with a GPU: docker run --gpus all -e RESTOREFLOW_SERVICE=trainer restoreflow/restoreflow-cuda:0.1.0
ARG CUDA_VERSION=13.0.0
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS chef
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl pkg-config build-essential \
 && rm -rf /var/lib/apt/lists/* \
 && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.94.1 \
 && cargo install cargo-chef --locked --version 0.1.71
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
ARG CUDA_COMPUTE_CAP=90
ENV CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP}
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --package restoreflow --features cuda --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package restoreflow --features cuda --bin restoreflow \
 && cp target/release/restoreflow /usr/local/bin/restoreflow

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04 AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/restoreflow --create-home restoreflow
COPY --from=build /usr/local/bin/restoreflow /usr/local/bin/restoreflow
USER 10001
WORKDIR /var/lib/restoreflow
ENV RESTOREFLOW__TRAINER__GRPC_ADDR=0.0.0.0:50053 \
    RESTOREFLOW__TRAINER__DEVICE=cuda \
    RESTOREFLOW__TELEMETRY__METRICS_ADDR=0.0.0.0:9464 \
    RESTOREFLOW_SERVICE=trainer \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# The allocator and thread-pool settings the benchmarks run with (the binary
# also re-executes itself with them when they are missing).
ENV MIMALLOC_PURGE_DELAY=-1 CANDLE_BARRIER_POOL_SPIN_LIMIT=0
EXPOSE 50053 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD ["/usr/local/bin/restoreflow", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/restoreflow"]
CMD ["serve"]
