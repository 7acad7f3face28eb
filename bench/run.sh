#!/usr/bin/env bash
# npm run bench[:name]: raises the open-files limit first where it may (the density benchmark
# holds one descriptor per idle client in each server and in a load generator: a server with
# 20,000 clients needs more than a limit of 20,000; the clients themselves are split over
# several generator processes), then runs bench/run.ts with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node --import tsx bench/run.ts "$@"
