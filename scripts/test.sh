#!/usr/bin/env bash
# Runs every test of restoreflow on a fresh machine: makes sure PostgreSQL and
# RabbitMQ are up, installs and starts the S3 server (Garage), installs n8n,
# then runs the whole workspace's tests (unit tests and end-to-end tests on
# embedded and real backends, and the n8n workflows on a real n8n), and
# fuzzes the REST API with schemathesis (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
  echo "postgresql: starting"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! amqp_up; then
  echo "rabbitmq: starting"
  rabbitmq-server -detached || true
  for _ in $(seq 1 150); do amqp_up && break; sleep 0.2; done
fi
amqp_up || { echo "RabbitMQ is not reachable on 127.0.0.1:5672" >&2; exit 1; }

# n8n for the workflow end-to-end test (cached per lockfile); its install is
# mostly network and disk, so it runs while the S3 server builds or starts.
n8n_out="$(mktemp)"
if [ -z "${RESTOREFLOW_N8N_DIR:-}" ]; then
  ./scripts/n8n.sh >"$n8n_out" &
  n8n_pid=$!
fi
./scripts/garage.sh
# Debian packages some tests need: tesseract (the OCR metric of evaluations)
# and a headless Chromium (the HTML report renders).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}
command -v tesseract >/dev/null 2>&1 || { echo "installing tesseract-ocr"; apt_install tesseract-ocr tesseract-ocr-eng; }
command -v chromium-headless-shell >/dev/null 2>&1 || { echo "installing chromium-headless-shell"; apt_install chromium-headless-shell; }
# The font packs of the synthetic pages (serif, sans, mono, typewriter,
# condensed, handwriting); the script skips what is installed already.
./scripts/install-fonts.sh
if [ -z "${RESTOREFLOW_N8N_DIR:-}" ]; then
  wait "$n8n_pid" || { echo "n8n install failed" >&2; exit 1; }
  RESTOREFLOW_N8N_DIR="$(tail -n 1 "$n8n_out")"
fi
rm -f "$n8n_out"
export RESTOREFLOW_N8N_DIR

# Leftover test databases from earlier runs.
psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'rf_test_%'" 2>/dev/null |
  while read -r db; do psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done

export RESTOREFLOW_TEST_PG_URL="${RESTOREFLOW_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export RESTOREFLOW_TEST_AMQP_URL="${RESTOREFLOW_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RESTOREFLOW_TEST_S3_ENDPOINT="${RESTOREFLOW_TEST_S3_ENDPOINT:-http://127.0.0.1:3900}"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
# The REST API under a third-party fuzzer (schemathesis), on `restoreflow up`.
fuzz=0
./scripts/fuzz.sh || fuzz=$?
[ "$fuzz" = 0 ] || { echo "fuzz: schemathesis found failures (report in target/fuzz)"; status=1; }
# One closing line over every test binary (cargo prints one result per binary).
awk -v fuzz="$fuzz" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "summary: %d passed, %d failed; api fuzz %s\n", p, f, (fuzz == 0 ? "passed" : "FAILED") }' "$log"
exit "$status"
