#!/usr/bin/env bash
# The hikwatch demo: one command on a fresh Debian machine (x86_64), no camera, no config.
#   1. setup: apt packages and the real x86_64 HCNetSDK (scripts/setup.sh --no-cross; the
#      ARM cross toolchains are not needed);
#   2. build the release binaries: hikwatch, and the demo driver (tests/harness, bin demo);
#   3. run it: 16 simulated cameras (simcam) in the driver, the real `hikwatch run` against
#      them on the real SDK, faults injected on a schedule, a live status table, and a
#      summary of detections, recoveries, login attempts and lockouts (about 2 minutes).
# With --backend isapi the daemon uses its own ISAPI client instead of the SDK: no SDK is
# downloaded or loaded, and any Linux machine will do.
# Usage: scripts/demo.sh [--backend sdk|isapi] [--quick] [--duration 90s] [--seed N]
#                        [--cameras N] [--plain] [--log FILE]
#                        (options go to the driver; see docs/demo.md)
# Exit code: 0 when every check of the summary passed, 1 when one failed, 130 after Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

say() {
  if [ -t 1 ]; then printf '\033[1mdemo.sh:\033[0m %s\n' "$*"; else printf 'demo.sh: %s\n' "$*"; fi
}

# The driver reads --backend too; the script only needs to know whether to fetch the SDK.
isapi=0
prev=""
for arg in "$@"; do
  case "$prev/$arg" in
    --backend/isapi) isapi=1 ;;
    --backend/sdk) isapi=0 ;;
  esac
  prev=$arg
done

if [ "$isapi" = 1 ]; then
  if [ "$(uname -s)" != Linux ]; then
    echo "demo.sh: needs Linux" >&2
    exit 1
  fi
elif [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
  echo "demo.sh: needs Linux on x86_64 (the vendor SDK the demo runs is an x86_64 build)" >&2
  exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "demo.sh: cargo not found; install Rust 1.87 or newer with rustup (https://rustup.rs)" >&2
  exit 1
fi

if [ "$isapi" = 1 ]; then
  say "setup: apt packages, no SDK (--backend isapi; scripts/setup.sh --no-cross --no-sdk)"
  scripts/setup.sh --no-cross --no-sdk
else
  say "setup: apt packages and the real HCNetSDK (scripts/setup.sh --no-cross)"
  scripts/setup.sh --no-cross
fi

say "building release binaries: hikwatch and the demo driver"
cargo build --release --locked -p hikwatch --bin hikwatch -p harness --bin demo

bin="${CARGO_TARGET_DIR:-target}/release"
if [ "$isapi" = 1 ]; then
  exec "$bin/demo" --hikwatch "$bin/hikwatch" "$@"
fi
exec "$bin/demo" --sdk vendor/hcnetsdk-linux64 --hikwatch "$bin/hikwatch" "$@"
