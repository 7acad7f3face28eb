#!/usr/bin/env bash
# Make the mediasoup worker binary available without internet access.
#
# mediasoup's npm postinstall downloads a prebuilt worker from GitHub or builds one
# with pip-installed meson plus wrap-downloaded deps (openssl, libuv, ...): neither
# works here, as only the npm registry and Debian's apt archive are reachable.
# So we build the worker from the sources shipped inside the mediasoup npm package,
# against Debian's system libraries, and cache the binary outside the checkout.
#
# Order of work (each step exits as soon as the worker is in place):
#   1. node_modules/mediasoup/worker/out/Release/mediasoup-worker exists and runs;
#   2. a cached binary exists: copy it there (seconds; CI reuses it);
#   3. otherwise install Debian build deps, build (~4 min on 2 cores), fill the cache.
# The binary lands in mediasoup's default lookup path, so no MEDIASOUP_WORKER_BIN
# is needed at runtime.
#
# Environment:
#   SWITCHBOARD_CACHE_DIR  cache root (default /var/cache/switchboard)
#   MEDIASOUP_DIR          mediasoup package dir (default <repo>/node_modules/mediasoup)
#   KEEP_BUILD_DIR=1       keep the temporary build dir after a successful build
#
# Safe to re-run; non-interactive (works with CI=true and no stdin).
set -euo pipefail

# The recipe below (Debian bookworm libs, subproject stubs) is verified for this
# version only; newer mediasoup needs libsrtp3 and flatbuffers 24, absent in bookworm.
readonly MEDIASOUP_VERSION=3.12.16

log() { printf '[mediasoup-worker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mediasoup_dir="${MEDIASOUP_DIR:-$repo_root/node_modules/mediasoup}"
release_bin="$mediasoup_dir/worker/out/Release/mediasoup-worker"
cache_dir="${SWITCHBOARD_CACHE_DIR:-/var/cache/switchboard}/mediasoup-worker-$MEDIASOUP_VERSION"
cache_bin="$cache_dir/mediasoup-worker"

# Run apt/writes to system dirs as root; fall back to non-interactive sudo.
if [[ $EUID -eq 0 ]]; then SUDO=(); else SUDO=(sudo -n); fi

# A worker binary "runs" if, started without MEDIASOUP_VERSION in its environment,
# it exits with code 41 (see worker/src/main.cpp); mediasoup's own postinstall uses
# the same probe. A missing shared library gives 127 instead.
worker_runs() {
  local bin="$1" rc=0
  [[ -x "$bin" ]] || return 1
  env -i "$bin" </dev/null >/dev/null 2>&1 || rc=$?
  [[ $rc -eq 41 ]]
}

# Copy atomically (temp file + rename) so a concurrent reader never sees half a file.
install_bin() {
  local src="$1" dst="$2"
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst.tmp.$$"
  chmod 0755 "$dst.tmp.$$"
  mv -f "$dst.tmp.$$" "$dst"
}

# --- apt helpers -------------------------------------------------------------

export DEBIAN_FRONTEND=noninteractive
# Wait for a dpkg lock held by someone else instead of failing at once.
readonly APT_OPTS=(-y --no-install-recommends -o DPkg::Lock::Timeout=600)
readonly BUILD_DEPS=(
  libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev nlohmann-json3-dev
  libssl-dev catch2 pkg-config ninja-build g++
)
apt_update() {
  log "apt-get update"
  "${SUDO[@]}" apt-get update -o DPkg::Lock::Timeout=600 -q >/dev/null
}

pkg_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

has_candidate() {
  local c
  c="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
  [[ -n "$c" && "$c" != "(none)" ]]
}

install_build_deps() {
  local missing=() p
  for p in "${BUILD_DEPS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then
    log "build deps already installed"
    return
  fi
  # A fresh machine may have empty/old package lists.
  for p in "${missing[@]}"; do
    if ! has_candidate "$p"; then apt_update; break; fi
  done
  log "apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" -q "${missing[@]}" >/dev/null
}

meson_version_ok() { # $1 = meson executable; true if >= 1.1.0 (mediasoup's meson_version)
  local v
  v="$("$1" --version 2>/dev/null)" || return 1
  dpkg --compare-versions "$v" ge 1.1.0
}

# Sets MESON to a meson >= 1.1. Bookworm ships 1.0.1, so take it from backports.
ensure_meson() {
  local m
  for m in "$(command -v meson || true)" /usr/bin/meson; do
    if [[ -n "$m" ]] && meson_version_ok "$m"; then MESON="$m"; log "using meson $("$m" --version) ($m)"; return; fi
  done
  local codename backports list
  # shellcheck source=/dev/null
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [[ -n "$codename" ]] || die "cannot tell the Debian codename from /etc/os-release"
  backports="$codename-backports"
  # Add backports only if no apt source mentions it yet (one-line or deb822 format).
  if ! grep -rqsE "(^|[[:space:]])$backports([[:space:]]|$)" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    list=/etc/apt/sources.list.d/$backports.list
    log "adding $backports apt source ($list)"
    echo "deb http://deb.debian.org/debian $backports main" | "${SUDO[@]}" tee "$list" >/dev/null
    apt_update
  elif ! apt-cache policy meson | grep -q "$backports"; then
    apt_update # source present but its lists were never fetched
  fi
  log "apt-get install -t $backports meson"
  "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" -q -t "$backports" meson >/dev/null
  meson_version_ok /usr/bin/meson || die "meson >= 1.1 still missing after installing from $backports"
  MESON=/usr/bin/meson
  log "using meson $("$MESON" --version) ($MESON)"
}

# --- subproject stubs --------------------------------------------------------

# mediasoup/worker/subprojects has one .wrap per dependency, each pointing at a
# source tarball to download. We delete the wraps and put in their place a
# directory with a small meson.build that wraps the system library found through
# pkg-config and defines exactly the variables worker/meson.build and
# worker/deps/libwebrtc/meson.build read via get_variable(). The *_lib/libuv/...
# variables are only used as link_whole of libmediasoup-worker (not built by
# default; the executable links through the *_dep dependencies), so an empty
# static library is enough for them.
#
# Meson looks for a wrap-less subproject('foo') in subprojects/foo, so each stub
# directory is named after the subproject (= the wrap file's base name).
write_stub() { # $1 = subproject name; meson.build body on stdin
  local dir="$subprojects_dir/$1"
  mkdir -p "$dir"
  printf '/* empty: placeholder object for a link_whole target */\n' >"$dir/empty.c"
  {
    printf "project('%s', 'c', 'cpp')\n" "$1"
    printf '# Generated by scripts/build-mediasoup-worker.sh: system library instead of a wrap.\n'
    cat
  } >"$dir/meson.build"
}

write_subproject_stubs() {
  subprojects_dir="$1"
  rm -rf "$subprojects_dir"/*.wrap "$subprojects_dir"/packagecache

  write_stub openssl <<'EOF'
openssl_dep = dependency('openssl', version: '>= 1.1.1')
libcrypto_dep = dependency('libcrypto')
libssl_dep = dependency('libssl')
libcrypto_lib = static_library('crypto_stub', 'empty.c')
libssl_lib = static_library('ssl_stub', 'empty.c')
EOF

  write_stub nlohmann_json <<'EOF'
nlohmann_json_dep = dependency('nlohmann_json')
EOF

  write_stub libuv <<'EOF'
libuv_dep = dependency('libuv')
libuv = static_library('uv_stub', 'empty.c')
EOF
  cat >"$subprojects_dir/libuv/meson_options.txt" <<'EOF'
# Options mediasoup passes in default_options; unused by this stub.
option('build_tests', type: 'boolean', value: false)
option('build_benchmarks', type: 'boolean', value: false)
EOF

  # mediasoup includes <srtp.h>; Debian installs it as <srtp2/srtp.h>.
  write_stub libsrtp2 <<'EOF'
_srtp = dependency('libsrtp2')
_srtp_inc = _srtp.get_variable(pkgconfig: 'includedir') / 'srtp2'
libsrtp2_dep = declare_dependency(
  dependencies: _srtp,
  include_directories: include_directories(_srtp_inc, is_system: true),
)
libsrtp2 = static_library('srtp2_stub', 'empty.c')
EOF
  cat >"$subprojects_dir/libsrtp2/meson_options.txt" <<'EOF'
# Options mediasoup passes in default_options; unused by this stub.
option('crypto-library', type: 'combo', choices: ['none', 'openssl', 'nss', 'mbedtls'], value: 'none')
option('crypto-library-kdf', type: 'feature', value: 'auto')
option('tests', type: 'feature', value: 'auto')
EOF

  write_stub usrsctp <<'EOF'
usrsctp_dep = dependency('usrsctp')
usrsctp = static_library('usrsctp_stub', 'empty.c')
EOF
  cat >"$subprojects_dir/usrsctp/meson_options.txt" <<'EOF'
# Options mediasoup passes in default_options; unused by this stub.
option('sctp_build_programs', type: 'boolean', value: false)
EOF

  # Debian's libabsl-dev has one pkg-config module per abseil library.
  write_stub abseil-cpp <<'EOF'
absl_container_dep = declare_dependency(dependencies: [
  dependency('absl_flat_hash_map'),
  dependency('absl_flat_hash_set'),
  dependency('absl_btree'),
  dependency('absl_inlined_vector'),
  dependency('absl_memory'),
])
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')
absl_container_lib = static_library('absl_container_stub', 'empty.c')
EOF

  # Only the (not built) test executable uses catch2.
  write_stub catch2 <<'EOF'
catch2_dep = dependency('catch2', required: false)
EOF

  # wingetopt is only used on Windows; its wrap is simply removed.
}

# --- main --------------------------------------------------------------------

[[ -f "$mediasoup_dir/package.json" ]] || die "mediasoup not found at $mediasoup_dir (run npm install first)"
installed_version="$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$mediasoup_dir/package.json" | head -n1)"
[[ "$installed_version" == "$MEDIASOUP_VERSION" ]] ||
  die "node_modules has mediasoup $installed_version, this script builds $MEDIASOUP_VERSION"

if [[ -n "${MEDIASOUP_WORKER_BIN:-}" ]]; then
  log "note: MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN is set; mediasoup will use it instead of $release_bin"
fi

# 1. Already there (a prebuilt download worked, or an earlier run put it there).
if worker_runs "$release_bin"; then
  log "worker already present and runs: $release_bin"
  exit 0
fi

# Serialise concurrent runs (e.g. two CI jobs) on the cache; the lock also covers
# the build, so a second run waits and then restores from the cache.
"${SUDO[@]}" mkdir -p "$cache_dir"
[[ -w "$cache_dir" ]] || "${SUDO[@]}" chown "$(id -u):$(id -g)" "$cache_dir"
exec 9>"$cache_dir/.lock"
flock 9

# 2. Restore from the cache.
if [[ -f "$cache_bin" ]]; then
  if ! worker_runs "$cache_bin"; then
    # Binary is dynamically linked to Debian libs (libuv1, libsrtp2-1, libusrsctp2, ...);
    # on a machine where they are missing, installing the build deps brings them back.
    log "cached worker does not run here; installing its Debian libraries"
    install_build_deps
  fi
  if worker_runs "$cache_bin"; then
    install_bin "$cache_bin" "$release_bin"
    log "restored from cache: $cache_bin -> $release_bin"
    exit 0
  fi
  log "cached worker still does not run; rebuilding"
  rm -f "$cache_bin"
fi

# 3. Build.
start=$SECONDS
log "building mediasoup-worker $MEDIASOUP_VERSION from $mediasoup_dir/worker"
install_build_deps
ensure_meson

build_root="$(mktemp -d "${TMPDIR:-/tmp}/mediasoup-worker-build.XXXXXX")"
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    log "build failed (exit $rc); build dir kept for inspection: $build_root"
  elif [[ "${KEEP_BUILD_DIR:-0}" == 1 ]]; then
    log "build dir kept: $build_root"
  else
    rm -rf "$build_root"
  fi
}
trap cleanup EXIT

# Build from a copy: node_modules stays pristine and nothing is left inside it.
log "copying worker sources to $build_root/worker"
cp -a "$mediasoup_dir/worker" "$build_root/worker"
rm -rf "$build_root/worker/out" "$build_root/worker/prebuild"
write_subproject_stubs "$build_root/worker/subprojects"

cd "$build_root/worker"
# Same release flags as mediasoup's own Makefile; --wrap-mode=nodownload makes sure
# meson never reaches for the network even if a wrap were to reappear.
log "meson setup"
"$MESON" setup build \
  --buildtype=release -Db_ndebug=true -Db_pie=true -Db_staticpic=true \
  --wrap-mode=nodownload >"$build_root/meson-setup.log" 2>&1 ||
  { tail -n 40 "$build_root/meson-setup.log" >&2; die "meson setup failed (log: $build_root/meson-setup.log)"; }

log "ninja -C build mediasoup-worker (takes a few minutes)"
ninja -C build mediasoup-worker >"$build_root/ninja.log" 2>&1 ||
  { tail -n 40 "$build_root/ninja.log" >&2; die "ninja failed (log: $build_root/ninja.log)"; }

built_bin="$build_root/worker/build/mediasoup-worker"
worker_runs "$built_bin" || die "built worker does not run: $built_bin"
strip --strip-unneeded "$built_bin" 2>/dev/null || true # smaller cache; symbols not needed

install_bin "$built_bin" "$cache_bin"
install_bin "$built_bin" "$release_bin"
log "built in $((SECONDS - start)) s; cached at $cache_bin"
log "installed at $release_bin"
