#!/usr/bin/env bash
# The benchmark in one command: builds release binaries, runs the real daemon
# with the real x86_64 HCNetSDK against a simcam fleet through fixed, seeded scenarios
# (every strategy side by side), and writes a markdown report, an SVG timeline of the storm
# and one JSON file per run. See bench/README.md.
#
# Usage: scripts/bench.sh [--scenario S ...] [--strategies a,b,...] [--backends b,...]
#                         [--quick] [--seed N] [--outage-mins M] [--no-armv7]
#                         [--no-aarch64] [--footprint-only] [--publish]
#   --scenario S     flap | storm | silent | badpass | steady | outage | stream | netfault
#                    (repeatable; default: the first five, ~20 min on 2 cores; `outage` takes
#                    an hour; `stream` alone, without --quick, publishes
#                    bench/results/stream.md; `netfault` needs root and /dev/net/tun and runs
#                    the strategies side by side behind the network fault lab, ~7 min, into
#                    netfault.md)
#   --strategies L   default poll,event,queue,hybrid,naive,sdk
#   --backends L     default sdk,isapi: each strategy once per backend, rows labelled
#                    backend/strategy; the peers naive and sdk run on the SDK backend only
#                    (bench/results/backends.md)
#   --quick          a few cameras and seconds per scenario (checks the pipeline only)
#   --no-armv7       skip the armv7 footprint (needs the cross toolchain and qemu-arm)
#   --no-aarch64     skip the aarch64 footprint with the vendor's aarch64 SDK (it runs when
#                    ../shared/vendor-sdk/hcnetsdk-6.1.8.101-aarch64 exists; qemu-aarch64,
#                    16 and 64 simcam cameras; also written to footprint-aarch64.md)
#   --footprint-only only the footprints, no scenario (publishes footprint-aarch64.md)
#   --publish        copy results.md and storm.svg into bench/results/ (the committed ones;
#                    the default without --scenario/--strategies/--quick)
# Output: bench/runs/<UTC time>/ (git-ignored): results.md, storm.svg, <scenario>-<strategy>.json
# and .log (the daemon's log).
set -euo pipefail
cd "$(dirname "$0")/.."
orig_args="$*"

args=()
armv7=1
aarch64=1
footprint_only=0
publish=auto
scenarios=()
quick=0
netfault=0
main_scenarios=1
netfault_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-armv7) armv7=0 ;;
    --no-aarch64) aarch64=0 ;;
    --footprint-only) footprint_only=1; args+=("$1") ;;
    --publish) publish=1 ;;
    --scenario|--strategies|--backends|--seed|--outage-mins)
      [ $# -ge 2 ] || { echo "bench.sh: $1 needs a value" >&2; exit 2; }
      if [ "$1" = --scenario ] && [ "$2" = netfault ]; then
        netfault=1; [ "$main_scenarios" = 1 ] && main_scenarios=0
      else
        [ "$1" = --scenario ] && scenarios+=("$2")
        args+=("$1" "$2"); publish=${publish/auto/0}
        [ "$1" = --scenario ] && main_scenarios=2
        case "$1" in --strategies|--seed) netfault_args+=("$1" "$2") ;; esac
      fi
      shift ;;
    --quick) args+=("$1"); netfault_args+=("$1"); publish=${publish/auto/0}; quick=1 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$publish" = auto ] && publish=1

[ -f vendor/hcnetsdk-linux64/libhcnetsdk.so ] || scripts/fetch-sdk.sh

echo "== build (release): hikwatch with the benchmark peers, bench" >&2
# The peers `naive` and `sdk` exist only with the feature `bench-peers`; this
# target/release/hikwatch is a benchmark build, not one to ship. The armv7 binary below is
# built without it: its footprint is the shipped binary's.
cargo build --release --locked --bin hikwatch -p hikwatch --features bench-peers
cargo build --release --locked --bin bench -p harness
[ "$netfault" = 1 ] && cargo build --release --locked --bin netfault_bench -p harness

if [ "$armv7" = 1 ]; then
  echo "== build (release, armv7): hikwatch + the C stand-in SDK" >&2
  cargo build --release --locked --target armv7-unknown-linux-gnueabihf --bin hikwatch -p hikwatch
  cargo build --release --locked --target armv7-unknown-linux-gnueabihf -p fakesdk
  fake=$(ls -td target/armv7-unknown-linux-gnueabihf/release/build/fakesdk-*/out/sdk 2>/dev/null | head -1)
  [ -n "$fake" ] && [ -f "$fake/libhcnetsdk.so" ] || { echo "bench.sh: no armv7 stand-in SDK built" >&2; exit 1; }
  args+=(--armv7 target/armv7-unknown-linux-gnueabihf/release/hikwatch --armv7-sdk "$fake")
fi

a64_sdk=../shared/vendor-sdk/hcnetsdk-6.1.8.101-aarch64
if [ "$aarch64" = 1 ] && [ -d "$a64_sdk" ]; then
  echo "== build (release, aarch64): hikwatch (the vendor's aarch64 SDK from $a64_sdk)" >&2
  scripts/fetch-arm64-libs.sh
  cargo build --release --locked --target aarch64-unknown-linux-gnu --bin hikwatch -p hikwatch
  args+=(--aarch64 target/aarch64-unknown-linux-gnu/release/hikwatch --aarch64-sdk "$a64_sdk")
elif [ "$aarch64" = 1 ]; then
  echo "skipped: the aarch64 footprint with the vendor's SDK: $a64_sdk not found" >&2
fi

stamp=$(date -u +%Y-%m-%d-%H-%M)
out="bench/runs/$stamp"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+changes"

if [ "$main_scenarios" != 0 ]; then
  echo "== run (output in $out)" >&2
  target/release/bench --hikwatch target/release/hikwatch --sdk vendor/hcnetsdk-linux64 \
    --out "$out" --commit "$commit" "${args[@]}" > /dev/null
fi
if [ "$netfault" = 1 ]; then
  echo "== netfault (output in $out/netfault.md)" >&2
  mkdir -p "$out"
  target/release/netfault_bench --hikwatch target/release/hikwatch \
    --sdk vendor/hcnetsdk-linux64 --out "$out/netfault.md" --commit "$commit" \
    "${netfault_args[@]}" > /dev/null
  if [ "$publish" = 1 ]; then
    mkdir -p bench/results
    cp "$out/netfault.md" bench/results/netfault.md
    echo "== published bench/results/netfault.md" >&2
  fi
fi

if [ -f "$out/footprint-aarch64.md" ] && { [ "$publish" = 1 ] || [ "$footprint_only" = 1 ]; }; then
  mkdir -p bench/results
  cp "$out/footprint-aarch64.md" bench/results/footprint-aarch64.md
  echo "== published bench/results/footprint-aarch64.md" >&2
fi
if [ "$publish" = 1 ] && [ "$footprint_only" = 0 ] && [ "$main_scenarios" != 0 ]; then
  mkdir -p bench/results
  cp "$out/results.md" bench/results/results.md
  [ -f "$out/storm.svg" ] && cp "$out/storm.svg" bench/results/storm.svg
  echo "== published bench/results/results.md" >&2
fi
if [ "${scenarios[*]-}" = stream ] && [ "$quick" = 0 ] && [ -f "$out/results.md" ]; then
  mkdir -p bench/results
  { echo "Made by: \`scripts/bench.sh $orig_args\`"; echo; cat "$out/results.md"; } > bench/results/stream.md
  echo "== published bench/results/stream.md" >&2
fi
if [ "$main_scenarios" != 0 ]; then echo "== done: $out/results.md" >&2; fi
