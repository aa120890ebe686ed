#!/usr/bin/env bash
# Debian packages of hikwatch for armhf, arm64 and amd64, in one command:
#   1. release binaries built against a glibc floor of 2.17 (old gateway firmware) with
#      cargo-zigbuild: `--target TRIPLE.2.17` links against glibc 2.17's symbol versions;
#   2. one .deb per architecture with cargo-deb from those binaries (contents: the
#      [package.metadata.deb] section of Cargo.toml, maintainer scripts in debian/);
#   3. the floor check (scripts/check-glibc-floor.sh) on every binary, and lintian.
# Installs what it needs: apt packages (lintian, dpkg-dev), ziglang and cargo-zigbuild
# from PyPI, cargo-deb from crates.io. The plain `cargo build --release --target T`
# route is unchanged (development, scripts/test.sh's size check).
# Output: target/debian/hikwatch_<version>_<arch>.deb
# Usage: scripts/package.sh [--arch armhf|arm64|amd64]... [--no-lintian]
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC_FLOOR=2.17
archs=()
lint=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) archs+=("$2"); shift 2 ;;
    --no-lintian) lint=0; shift ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#archs[@]} -gt 0 ] || archs=(armhf arm64 amd64)
log() { printf '\033[1mpackage:\033[0m %s\n' "$*"; }

triple_of() {
  case "$1" in
    armhf) echo armv7-unknown-linux-gnueabihf ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
    amd64) echo x86_64-unknown-linux-gnu ;;
    *) echo "package.sh: unknown architecture $1 (armhf, arm64, amd64)" >&2; exit 2 ;;
  esac
}

# --- tools ---------------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
for p in lintian dpkg-dev binutils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
# zig (the linker cargo-zigbuild drives) and cargo-zigbuild itself, both from PyPI.
if ! python3 -m ziglang version >/dev/null 2>&1 || ! command -v cargo-zigbuild >/dev/null; then
  log "pip install ziglang cargo-zigbuild"
  python3 -m pip install --quiet ziglang cargo-zigbuild 2>&1 | grep -v "Running pip as the 'root' user" || true
  hash -r
fi
if ! cargo deb --version >/dev/null 2>&1; then
  log "cargo install cargo-deb"
  cargo install --quiet --locked cargo-deb
fi

# --- binaries and packages --------------------------------------------------------------------
for a in "${archs[@]}"; do
  t=$(triple_of "$a")
  t0=$(date +%s)
  log "$a: cargo zigbuild --release --target $t.$GLIBC_FLOOR"
  # The targets' rustup components are installed by scripts/setup.sh.
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  cargo zigbuild --release --locked --target "$t.$GLIBC_FLOOR" --bin hikwatch
  scripts/check-glibc-floor.sh "$GLIBC_FLOOR" "target/$t/release/hikwatch"
  if [ "$a" = armhf ]; then
    # The gateway's partition budget holds for the shipped (zig-built) binary too.
    size=$(stat -c %s "target/$t/release/hikwatch")
    log "armhf binary: $size bytes (limit 1048576)"
    [ "$size" -le 1048576 ] || { echo "package.sh: armhf binary exceeds 1 MiB" >&2; exit 1; }
  fi
  log "$a: cargo deb"
  cargo deb --no-build --no-strip --target "$t" --deb-revision 1 >/dev/null
  log "$a: $(ls target/debian/hikwatch_*_"$a".deb) ($(( $(date +%s) - t0 )) s)"
done

if [ "$lint" = 1 ]; then
  debs=()
  for a in "${archs[@]}"; do debs+=("$(ls target/debian/hikwatch_*_"$a".deb)"); done
  log "lintian ${debs[*]}"
  # One run for all (lintian's start-up is most of its time). Errors fail the build;
  # warnings are printed.
  lintian --fail-on error "${debs[@]}"
fi
