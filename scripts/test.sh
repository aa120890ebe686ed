#!/usr/bin/env bash
# Every test hikwatch has, from a fresh Debian machine: setup (apt, rustup targets, the
# real SDK), then fmt, clippy, host tests (real SDK 6.1.9.48 + simcam), the SDK release
# matrix (the real-SDK tests again on 6.1.6.3), and the armv7 and aarch64 tests under qemu
# (aarch64: the vendor's aarch64 SDK 6.1.8.101 for the real-SDK tests). Safe to re-run.
# README.md and .ci/run call exactly this.
# Usage: scripts/test.sh [--quick]   (--quick: host only, no cross targets)
#
# The older x86_64 release and the aarch64 build come from ../shared/vendor-sdk beside the
# repository (CI and developer machines). Without it (a user's clone) those runs are
# skipped with one line saying so; with CI=true a missing folder fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

t0=$(date +%s)
t_step=""
# Prints the time the previous step took, then the new step's header.
step() {
  local now; now=$(date +%s)
  [ -z "$t_step" ] || printf '(step took %s s)\n' $(( now - t_step ))
  t_step=$now
  printf '\n\033[1m== %s\033[0m\n' "$*"
}

shared_sdks=../shared/vendor-sdk
have_shared=1
if [ ! -d "$shared_sdks" ]; then
  if [ "${CI:-}" = true ]; then
    echo "test.sh: $shared_sdks is missing (CI=true: the SDK release matrix and the aarch64 vendor-SDK tests must run)" >&2
    exit 1
  fi
  have_shared=0
  echo "skipped: the x86_64 SDK release matrix (6.1.6.3) and the aarch64 tests on the vendor's SDK 6.1.8.101: $shared_sdks not found (a clone without it; the aarch64 real-SDK tests return at once)"
fi

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

step "cargo test (host: real SDK 6.1.9.48 x86_64 + simcam; C stand-in 6.1.99.0)"
# The network fault tests run on their own below (timing-sensitive soaks).
cargo test --workspace --locked -- --skip netfault_

# Root and /dev/net/tun: two network namespaces and the lab's packet router per test.
# Without them every test skips with one line; CI=true makes that a failure. The tests
# mostly wait (soaks of minutes, one test at a time), so they run in the background while
# the next steps compile and test; their output and result come at "network faults: result".
# Nothing below rebuilds target/debug/hikwatch, the binary they run.
step "cargo test (network faults: real SDK behind a lossy/black-holed path) started in the background"
cargo test --locked --test netfault --no-run
nf_log=$(mktemp)
cargo test --locked --test netfault -- --test-threads 1 > "$nf_log" 2>&1 & nf_pid=$!
nf_t0=$(date +%s)

# The SDK is process-global and never unloaded, so each release runs in its own test
# processes. This subset covers init, ISAPI login, wrong password with retries left and
# the lock, heartbeat, the exception callback, logout, handle counts, live preview against
# simcam's RTSP server (data, 1,000 start/stop cycles, a refused stream, a stall) and the
# daemon's recovery (stream gaps, a refused stream, teardown before logout included).
matrix_tests=(--test sdk_real --test sdk_probe --test runtime_integration --test e2e_lifecycle --test e2e_restart)
if [ "$have_shared" = 1 ]; then
  step "cargo test (x86_64 SDK release matrix: real SDK 6.1.6.3 x86_64)"
  # The ISAPI variants (`isapi::…`) load no SDK: the main host step ran them already.
  HIKWATCH_TEST_SDK_RELEASE=6.1.6.3 cargo test --locked "${matrix_tests[@]}" -- --skip isapi::
fi

# Waits for the network fault tests started above and prints what they printed.
nf_result() {
  local rc=0
  wait "$nf_pid" || rc=$?
  step "network faults: result (ran $(( $(date +%s) - nf_t0 )) s in the background)"
  cat "$nf_log"
  rm -f "$nf_log"
  [ "$rc" = 0 ] || { echo "the network fault tests failed (exit $rc)" >&2; exit 1; }
}

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
step "MSRV: the library's unit tests with Rust $msrv (Cargo.toml rust-version)"
cargo +"$msrv" test --locked -p hikwatch --lib --profile msrv --target-dir target/msrv

if [ "$quick" = 0 ]; then
  step "cargo clippy (armv7)"
  cargo clippy --workspace --all-targets --locked --target armv7-unknown-linux-gnueabihf -- -D warnings

  # --workspace includes the ISAPI backend's tests (e2e_isapi: the daemon binary against
  # simcam for every strategy; isapi_probe; runtime_isapi): no SDK, so on both ARM targets
  # they speak the real camera protocol end to end (about 12 s each under qemu).
  step "cargo test (armv7 under qemu-arm: C stand-in SDK; ISAPI backend + simcam)"
  cargo test --workspace --locked --target armv7-unknown-linux-gnueabihf

  if [ "$have_shared" = 1 ]; then
    step "cargo test (aarch64 under qemu-aarch64: real vendor SDK 6.1.8.101 aarch64 + simcam; C stand-in 6.1.99.0)"
  else
    step "cargo test (aarch64 under qemu-aarch64: C stand-in 6.1.99.0; real-SDK tests skipped)"
  fi
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

  nf_result

  step "Debian packages (armhf, arm64, amd64; glibc 2.17 floor, size, lintian)"
  scripts/package.sh

  step "gateway test on emulated boards (aarch64 + vendor SDK, armhf + C stand-in)"
  # Needs root (mmdebstrap, qemu-system, binfmt_misc); images are cached in
  # /var/cache/hikwatch-board. Without ../shared the aarch64 vendor-SDK part is skipped
  # (CI=true fails instead).
  # The two boards boot side by side (each emulator is mostly one busy host thread), from
  # the packages the step before built; the images first, one at a time (apt, binfmt_misc).
  scripts/board-image.sh aarch64 > /dev/null
  scripts/board-image.sh armhf > /dev/null
  board_logs=$(mktemp -d)
  scripts/board-test.sh --prebuilt --arch aarch64 > "$board_logs/aarch64.log" 2>&1 & board_a=$!
  scripts/board-test.sh --prebuilt --arch armhf > "$board_logs/armhf.log" 2>&1 & board_b=$!
  board_rc=0
  wait "$board_a" || board_rc=1
  wait "$board_b" || board_rc=1
  cat "$board_logs/aarch64.log" "$board_logs/armhf.log"
  rm -rf "$board_logs"
  [ "$board_rc" = 0 ] || { echo "gateway test failed (see above)" >&2; exit 1; }
fi

[ "$quick" = 0 ] || nf_result
step "all tests passed in $(( $(date +%s) - t0 )) s"
