# syntax=docker/dockerfile:1
# The trainer service (gRPC; CPU build). Build from the repository root:
#   docker build -f deploy/docker/trainer.Dockerfile -t restoreflow-trainer .
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
RUN cargo chef cook --release --locked --package restoreflow-trainer --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package restoreflow-trainer --bin restoreflow-trainer \
 && cp target/release/restoreflow-trainer /usr/local/bin/restoreflow-trainer

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/restoreflow --create-home restoreflow
COPY --from=build /usr/local/bin/restoreflow-trainer /usr/local/bin/restoreflow-trainer
USER 10001
WORKDIR /var/lib/restoreflow
ENV RESTOREFLOW__TRAINER__GRPC_ADDR=0.0.0.0:50053
# The allocator and thread-pool settings the benchmarks run with (the binary
# also re-executes itself with them when they are missing).
ENV MIMALLOC_PURGE_DELAY=-1 CANDLE_BARRIER_POOL_SPIN_LIMIT=0
EXPOSE 50053
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["/usr/local/bin/restoreflow-trainer", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/restoreflow-trainer"]
