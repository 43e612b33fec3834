# syntax=docker/dockerfile:1
# The synthetic-data service (gRPC). Build from the repository root:
#   docker build -f deploy/docker/synthetic-data.Dockerfile -t restoreflow-synthetic-data .
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
RUN cargo chef cook --release --locked --package restoreflow-synthetic-data --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package restoreflow-synthetic-data --bin restoreflow-synthetic-data \
 && cp target/release/restoreflow-synthetic-data /usr/local/bin/restoreflow-synthetic-data

FROM debian:bookworm-slim AS runtime
# The font packs the page generator draws from (serif, sans, mono, typewriter,
# condensed, handwriting; about 51 MiB), installed by the same script as CI.
COPY scripts/install-fonts.sh /usr/local/lib/restoreflow/install-fonts.sh
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fontconfig \
 && bash /usr/local/lib/restoreflow/install-fonts.sh \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/restoreflow --create-home restoreflow
COPY --from=build /usr/local/bin/restoreflow-synthetic-data /usr/local/bin/restoreflow-synthetic-data
USER 10001
WORKDIR /var/lib/restoreflow
ENV RESTOREFLOW__SYNTHETIC_DATA__GRPC_ADDR=0.0.0.0:50051
# The allocator and thread-pool settings the benchmarks run with (the binary
# also re-executes itself with them when they are missing).
ENV MIMALLOC_PURGE_DELAY=-1 CANDLE_BARRIER_POOL_SPIN_LIMIT=0
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["/usr/local/bin/restoreflow-synthetic-data", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/restoreflow-synthetic-data"]
