#!/usr/bin/env bash
# Installs (once, cached) and starts a single-node Garage S3 server for the
# tests on 127.0.0.1:3900 (S3) / 3903 (admin), with the test key and region
# us-east-1. Safe to run again: a healthy server is reused.
set -euo pipefail

GARAGE_VERSION=2.5.0
. "$(dirname "$0")/lib/cache.sh"
ROOT="$CACHE/garage-$GARAGE_VERSION"
BIN="$ROOT/bin/garage"
ACCESS_KEY="${RESTOREFLOW_TEST_S3_ACCESS_KEY:-GK5e7a1f0c9b2d4e6f8a0b1c2d}"
SECRET_KEY="${RESTOREFLOW_TEST_S3_SECRET_KEY:-9c1f5e2a7b3d8c4e0f6a1b7c2d8e3f9a4b0c5d1e6f2a7b3c8d4e9f0a5b1c6d2e}"

healthy() { curl -fsS -o /dev/null "http://127.0.0.1:3903/health" 2>/dev/null; }

if healthy; then
  echo "garage: already running on 127.0.0.1:3900"
  exit 0
fi

if [ ! -x "$BIN" ]; then
  echo "garage: building $GARAGE_VERSION into $ROOT (once; about 15-30 min on 2 cores)"
  CARGO_TARGET_DIR="$CACHE/garage-build" cargo install garage --version "$GARAGE_VERSION" --locked \
    --no-default-features --features bundled-libs,sqlite --root "$ROOT"
fi

STATE="$(mktemp -d "${TMPDIR:-/tmp}/restoreflow-garage.XXXXXX")"
cat > "$STATE/garage.toml" <<CONF
metadata_dir = "$STATE/meta"
data_dir = "$STATE/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:3900"
root_domain = ".s3.localhost"

[admin]
api_bind_addr = "127.0.0.1:3903"
CONF

GARAGE_DEFAULT_ACCESS_KEY="$ACCESS_KEY" GARAGE_DEFAULT_SECRET_KEY="$SECRET_KEY" \
GARAGE_DEFAULT_BUCKET="restoreflow-default" \
  nohup "$BIN" -c "$STATE/garage.toml" server --single-node --default-bucket \
  > "$STATE/garage.log" 2>&1 &
echo $! > "$STATE/garage.pid"

for _ in $(seq 1 100); do
  if healthy; then
    echo "garage: ready on 127.0.0.1:3900 (state and log in $STATE)"
    exit 0
  fi
  sleep 0.2
done
echo "garage: did not become healthy; log follows" >&2
cat "$STATE/garage.log" >&2
exit 1
