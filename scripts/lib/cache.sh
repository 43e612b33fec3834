# Sourced by the install scripts: sets CACHE to the directory that keeps slow
# installs between CI runs ($RESTOREFLOW_CACHE, default /var/cache/restoreflow),
# or ~/.cache/restoreflow when that is not writable.
CACHE="${RESTOREFLOW_CACHE:-/var/cache/restoreflow}"
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/restoreflow"
  mkdir -p "$CACHE"
fi
