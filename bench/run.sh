#!/usr/bin/env bash
# npm run bench[:name]: raises the open-files limit first (the density benchmark holds one
# descriptor per idle client in the load generator and in each server: 20,000 clients need
# more than the usual 20,000), then runs bench/run.ts with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node --import tsx bench/run.ts "$@"
