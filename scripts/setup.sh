#!/usr/bin/env bash
# One-time (and safe to re-run) setup for building and testing hikwatch on a Debian host:
#   - apt: cross gcc for armv7 and aarch64, qemu-user, promtool, iproute2;
#   - rustup targets armv7-unknown-linux-gnueabihf and aarch64-unknown-linux-gnu, and the
#     toolchain of Cargo.toml's rust-version (the MSRV check);
#   - the real vendor SDK (x86_64) for tests, from the hcnetsdk-python wheel on PyPI,
#     checked against a pinned sha256 and unpacked into vendor/ (ignored by git);
#   - with the cross targets, when the vendor's aarch64 SDK is beside the repository
#     (../shared/vendor-sdk): the arm64 libuuid.so.1 it needs (scripts/fetch-arm64-libs.sh).
# Usage: scripts/setup.sh [--no-apt] [--no-cross] [--no-sdk]
#   --no-sdk: no vendor SDK download (the ISAPI backend needs none; scripts/demo.sh
#   --backend isapi).
set -euo pipefail
cd "$(dirname "$0")/.."

want_apt=1
want_cross=1
want_sdk=1
for arg in "$@"; do
  case "$arg" in
    --no-apt) want_apt=0 ;;
    --no-cross) want_cross=0 ;;
    --no-sdk) want_sdk=0 ;;
    *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

# --- apt -------------------------------------------------------------------------------
APT_PKGS=(gcc make python3-pip unzip iproute2 prometheus)
if [ "$want_cross" = 1 ]; then
  APT_PKGS+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
             gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
fi
if [ "$want_apt" = 1 ]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# --- the MSRV toolchain (Cargo.toml's rust-version), for test.sh's MSRV check -------------
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
if ! rustup toolchain list | grep -q "^$msrv-"; then
  log "rustup toolchain install $msrv (the declared MSRV)"
  rustup toolchain install "$msrv" --profile minimal
fi

# --- rustup targets --------------------------------------------------------------------
if [ "$want_cross" = 1 ]; then
  installed=$(rustup target list --installed)
  for t in armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu; do
    grep -qx "$t" <<<"$installed" || { log "rustup target add $t"; rustup target add "$t"; }
  done
fi

# --- the real SDK (x86_64) for tests -----------------------------------------------------
if [ "$want_sdk" = 1 ]; then scripts/fetch-sdk.sh; fi

# --- arm64 libuuid for the vendor's aarch64 SDK (tests under qemu-aarch64) ------------------
if [ "$want_cross" = 1 ] && [ -d ../shared/vendor-sdk/hcnetsdk-6.1.8.101-aarch64 ]; then
  scripts/fetch-arm64-libs.sh
fi
