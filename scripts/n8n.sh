#!/usr/bin/env bash
# Installs (once per lockfile, cached outside the clone) the n8n that the
# end-to-end test runs, from n8n/package.json + n8n/package-lock.json, and
# prints the directory holding its node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/cache.sh
HASH="$(cat n8n/package.json n8n/package-lock.json | sha256sum | cut -c1-16)"
DIR="$CACHE/n8n-$HASH"
if [ ! -x "$DIR/node_modules/.bin/n8n" ]; then
  echo "n8n: installing into $DIR (once per lockfile; about 6 min, 2.3 GB)" >&2
  rm -rf "$DIR.tmp"
  mkdir -p "$DIR.tmp"
  cp n8n/package.json n8n/package-lock.json "$DIR.tmp/"
  (cd "$DIR.tmp" && npm ci --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$DIR"
  mv "$DIR.tmp" "$DIR"
fi
echo "$DIR"
