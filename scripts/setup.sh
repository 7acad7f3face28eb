#!/usr/bin/env bash
# One-shot, idempotent set-up on Debian bookworm with Node 20 (root or sudo):
# system packages, npm dependencies, the mediasoup worker, and the TypeScript build.
# Re-running it is cheap: every step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the test suite uses: coturn (TURN interop against the reference server),
# chromium (browser end-to-end tests, driven by playwright-core) and redis-server (the Redis
# store's tests start their own redis-server on a free loopback port).
APT_PACKAGES=(coturn chromium redis-server)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# coturn's and redis-server's packages enable a system service on some images; we only need the binaries.
for service in coturn redis-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then as_root systemctl stop "$service" || true; fi
done

# mediasoup's postinstall downloads a prebuilt worker, which needs internet. By default we skip
# it and build the worker from the package's own sources (scripts/build-mediasoup-worker.sh);
# set MEDIASOUP_PREBUILT=1 where the download works.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci)"
  if [ "${MEDIASOUP_PREBUILT:-0}" = "1" ]; then
    npm ci --no-audit --no-fund
  else
    MEDIASOUP_WORKER_BIN=skip-prebuilt-download npm ci --no-audit --no-fund
  fi
fi

bash scripts/build-mediasoup-worker.sh

log "building (tsc + SDK bundle)"
npm run -s build
log "done"
