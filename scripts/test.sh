#!/usr/bin/env bash
# Every test hikwatch has, from a fresh Debian machine: setup (apt, rustup targets, the
# real SDK), then fmt, clippy, host tests (real SDK + simcam), and the armv7 tests under
# qemu. Safe to re-run. README.md and .ci/run call exactly this.
# Usage: scripts/test.sh [--quick]   (--quick: host only, no cross targets)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
t0=$(date +%s)

step "setup"
if [ "$quick" = 1 ]; then scripts/setup.sh --no-cross; else scripts/setup.sh; fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The test builds switch the features bench-peers and test-support on (a dev-dependency
# on the crate itself); the shipped binary has neither, so lint that build too.
step "cargo clippy (host, the shipped build: no benchmark peers, no test code)"
cargo clippy --locked -p hikwatch --lib --bins -- -D warnings

step "cargo test (host: real SDK x86_64 + simcam)"
cargo test --workspace --locked

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
step "MSRV: the library's unit tests with Rust $msrv (Cargo.toml rust-version)"
cargo +"$msrv" test --locked -p hikwatch --lib --target-dir target/msrv

if [ "$quick" = 0 ]; then
  step "cargo clippy (armv7)"
  cargo clippy --workspace --all-targets --locked --target armv7-unknown-linux-gnueabihf -- -D warnings

  step "cargo test (armv7 under qemu-arm, C stand-in SDK)"
  cargo test --workspace --locked --target armv7-unknown-linux-gnueabihf

  step "cargo test (aarch64 under qemu-aarch64, C stand-in SDK)"
  cargo test --workspace --locked --target aarch64-unknown-linux-gnu

  step "release size (armv7, stripped)"
  cargo build --release --locked --target armv7-unknown-linux-gnueabihf --bin hikwatch
  size=$(stat -c %s target/armv7-unknown-linux-gnueabihf/release/hikwatch)
  echo "hikwatch armv7 release: $size bytes (limit 1048576)"
  if [ "$size" -gt 1048576 ]; then echo "release binary exceeds 1 MiB" >&2; exit 1; fi

  step "the shipped binary has no benchmark peers (armv7 under qemu-arm)"
  peer_dir=$(mktemp -d)
  printf '[sdk]\ndir = "%s"\n[supervisor]\nstrategy = "naive"\n' "$peer_dir" > "$peer_dir/peer.toml"
  set +e
  peer_err=$(qemu-arm -L /usr/arm-linux-gnueabihf target/armv7-unknown-linux-gnueabihf/release/hikwatch \
    check-config -c "$peer_dir/peer.toml" 2>&1 >/dev/null)
  peer_code=$?
  set -e
  rm -rf "$peer_dir"
  echo "$peer_err" | grep 'supervisor.strategy'
  if [ "$peer_code" != 78 ] || ! echo "$peer_err" | grep -q 'supervisor.strategy: "naive" is not'; then
    echo "the release binary accepts strategy = \"naive\" (exit $peer_code): the bench-peers feature leaked in" >&2
    exit 1
  fi
fi

step "all tests passed in $(( $(date +%s) - t0 )) s"
