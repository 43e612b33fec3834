# syntax=docker/dockerfile:1
# The one restoreflow image (CPU build): the `restoreflow` CLI, which runs any
# service (`restoreflow serve <service>`, or RESTOREFLOW_SERVICE=<service>),
# the embedded system (`restoreflow up`) and the tools (`verify`, `demo`,
# `models`, `train`, `eval`). Build from the repository root:
#   docker build -f deploy/docker/restoreflow.Dockerfile -t restoreflow/restoreflow:0.1.0 .
# Stages: chef (cargo-chef) -> planner (dependency recipe) -> build (dependencies
# cooked in their own layer, so a source change rebuilds only our crates) ->
# runtime (Debian slim, non-root, healthcheck through the binary itself).
FROM rust:1.94-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config \
 && rm -rf /var/lib/apt/lists/*
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --package restoreflow --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package restoreflow --bin restoreflow \
 && cp target/release/restoreflow /usr/local/bin/restoreflow

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/restoreflow --create-home restoreflow
COPY --from=build /usr/local/bin/restoreflow /usr/local/bin/restoreflow
USER 10001
WORKDIR /var/lib/restoreflow
# Every service's listen address; only the one served binds. gRPC services
# serve Prometheus metrics on 9464, the gateway on 8000 (/metrics).
ENV RESTOREFLOW__GATEWAY__HTTP_ADDR=0.0.0.0:8000 \
    RESTOREFLOW__SYNTHETIC_DATA__GRPC_ADDR=0.0.0.0:50051 \
    RESTOREFLOW__MODEL_REGISTRY__GRPC_ADDR=0.0.0.0:50052 \
    RESTOREFLOW__TRAINER__GRPC_ADDR=0.0.0.0:50053 \
    RESTOREFLOW__REPORT__GRPC_ADDR=0.0.0.0:50054 \
    RESTOREFLOW__TELEMETRY__METRICS_ADDR=0.0.0.0:9464
# The allocator and thread-pool settings the benchmarks run with (the binary
# also re-executes itself with them when they are missing).
ENV MIMALLOC_PURGE_DELAY=-1 CANDLE_BARRIER_POOL_SPIN_LIMIT=0
EXPOSE 8000 50051 50052 50053 50054 9464
# Checks the service RESTOREFLOW_SERVICE names (set it beside `serve`).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["/usr/local/bin/restoreflow", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/restoreflow"]
CMD ["serve"]
