#!/usr/bin/env bash
# Fuzzes the REST API with a third-party fuzzer: schemathesis (PyPI, pinned
# below, installed once into a cached virtualenv) against the OpenAPI
# document of a fresh `restoreflow up`, with its admin key, on every
# operation. It fails on any server error, any response that does not match
# its documented schema or content type, any status code the document does
# not declare, schema-valid requests that are refused and schema-violating
# ones that are accepted (schemathesis' `--checks all`).
#
#   scripts/fuzz.sh [--examples N] [--seed S] [extra schemathesis options]
#
# Uses the debug build of the `restoreflow` binary (built here when missing
# or stale). The report (JUnit XML and the reproducing cases) lands in
# target/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/cache.sh
VERSION="4.32.5"
VENV="$CACHE/schemathesis-$VERSION"
if [ ! -x "$VENV/bin/st" ]; then
  echo "fuzz: installing schemathesis $VERSION into $VENV (once)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION" \
    || { rm -rf "$VENV"; exit 1; }
fi

examples=15
seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --examples) examples="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) break ;;
  esac
done

cargo build --locked -q -p restoreflow --bin restoreflow
bin="$(realpath "${CARGO_TARGET_DIR:-target}/debug/restoreflow")"

out="$(realpath -m "${CARGO_TARGET_DIR:-target}/fuzz")"
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cleanup() {
  [ -n "${up_pid:-}" ] && kill "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

start_up() {
  (cd "$work" && exec env "$@" "$bin" up --addr "127.0.0.1:$port" >>"$out/up.log" 2>&1) &
  up_pid=$!
  for _ in $(seq 1 300); do
    curl -fsS "$base/ready" >/dev/null 2>&1 && return 0
    kill -0 "$up_pid" 2>/dev/null || { echo "fuzz: restoreflow up exited" >&2; tail -n 40 "$out/up.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "fuzz: restoreflow up did not become ready" >&2
  exit 1
}
stop_up() { kill "$up_pid" 2>/dev/null; wait "$up_pid" 2>/dev/null || true; up_pid=; }
base="http://127.0.0.1:$port"

# A system as a user starts it, with a few generated pairs, so training,
# evaluation and restoration requests get past "no data" to their checks.
start_up
key="$(cat "$work/data/api-key")"
job="$(curl -fsS -H "x-api-key: $key" -H 'content-type: application/json' \
  -d '{"num_images": 4, "preset": "light", "seed": 1, "width": 128, "height": 160}' \
  "$base/synthetic/generate" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')"
for _ in $(seq 1 240); do
  state="$(curl -fsS -H "x-api-key: $key" "$base/jobs/$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
  [ "$state" = completed ] && break
  case "$state" in failed|cancelled) echo "fuzz: seeding pairs $state" >&2; exit 1 ;; esac
  sleep 0.5
done
[ "$state" = completed ] || { echo "fuzz: seeding pairs timed out" >&2; exit 1; }
stop_up

# The API under fuzz: the same system with its workers off, so the jobs the
# fuzzer starts are queued (their answers are what is tested) instead of
# training in the background for the whole run. The per-key rate limit is
# raised so the fuzzer reaches the handlers of the expensive routes instead
# of mostly meeting 429 (the limit is tested elsewhere; 429 stays declared).
start_up RESTOREFLOW__GATEWAY__RATE_PER_MINUTE=100000 RESTOREFLOW__GATEWAY__MAX_CONCURRENT=64 \
  RESTOREFLOW__TRAINER__WORKER=false RESTOREFLOW__SYNTHETIC_DATA__WORKER=false \
  RESTOREFLOW__REPORT__WORKER=false

status=0
# One worker: Python 3.11's ast.parse is not safe across threads, and
# hypothesis parses lambdas while it builds strategies (it fails at random
# with "AST constructor recursion depth mismatch" under --workers 2).
"$VENV/bin/st" --config-file scripts/fuzz.toml run "$base/openapi.json" \
  --header "x-api-key: $key" \
  --checks all \
  --max-examples "$examples" \
  --seed "$seed" \
  --workers 1 \
  --request-timeout 60 \
  --suppress-health-check all \
  --output-sanitize true \
  --report junit,pytest \
  --report-dir "$out" \
  "$@" 2>&1 | tee "$out/schemathesis.log" || status=$?
kill -0 "$up_pid" 2>/dev/null || { echo "fuzz: restoreflow up died during the run" >&2; status=1; }
exit "$status"
