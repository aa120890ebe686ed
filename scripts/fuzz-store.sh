#!/usr/bin/env bash
# Fuzzes the state-file decoder (src/store/format.rs) for longer than the test suite does.
#
# Usage: scripts/fuzz-store.sh [SECONDS]      (default 300)
#
# With cargo-fuzz (libFuzzer; installed from crates.io if missing): target
# fuzz/fuzz_targets/store_decode.rs, seeded from fuzz/seeds/, corpus in fuzz/corpus/
# and crashes in fuzz/artifacts/ (both git-ignored). cargo-fuzz needs nightly compiler
# flags; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
# Without it (no network, no C++ compiler for libFuzzer, build failure): falls back to the
# proptest harness tests/store_fuzz.rs with many cases (HIKWATCH_FUZZ_CASES).
# Exit status: 0 nothing found, 1 a crash or failing case was found.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-300}
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 64 ;; esac

fallback() {
  local cases=${HIKWATCH_FUZZ_CASES:-$(( secs * 300 ))}
  echo "fuzz-store: cargo-fuzz unavailable ($1); running tests/store_fuzz.rs with $cases cases per property" >&2
  HIKWATCH_FUZZ_CASES=$cases exec cargo test --test store_fuzz -- --test-threads=2
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked >/dev/null 2>&1 || fallback "cannot install cargo-fuzz"
fi
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz build store_decode >/dev/null 2>&1; then
  fallback "cargo fuzz build failed"
fi
mkdir -p fuzz/corpus/store_decode
echo "fuzz-store: libFuzzer on store_decode for ${secs}s" >&2
if cargo fuzz run store_decode fuzz/corpus/store_decode fuzz/seeds -- \
     -max_total_time="$secs" -print_final_stats=1; then
  echo "fuzz-store: no crash in ${secs}s" >&2
else
  echo "fuzz-store: crash found; reproducer in fuzz/artifacts/store_decode/" >&2
  exit 1
fi
