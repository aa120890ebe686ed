#!/usr/bin/env bash
# Verify a vendor SDK folder for an ARM gateway: required files present, every ELF file of
# the right class, byte order and machine. See sdk-arm/README.md.
# Usage: scripts/check-sdk-arm.sh DIR armv7|aarch64|x86_64
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 DIR armv7|aarch64|x86_64" >&2
  exit 2
fi
dir=$1
arch=$2
case "$arch" in
  armv7)   want_class=1; want_machine=40;  want_name="ARM" ;;
  aarch64) want_class=2; want_machine=183; want_name="AArch64" ;;
  x86_64)  want_class=2; want_machine=62;  want_name="x86_64" ;;
  *) echo "check-sdk-arm: unknown arch '$arch' (armv7, aarch64 or x86_64)" >&2; exit 2 ;;
esac

machine_name() {
  case "$1" in
    3) echo "i386" ;; 40) echo "ARM" ;; 62) echo "x86_64" ;; 183) echo "AArch64" ;;
    243) echo "RISC-V" ;; 8) echo "MIPS" ;; *) echo "unknown" ;;
  esac
}

errors=0
fail() { echo "check-sdk-arm: $*" >&2; errors=$((errors + 1)); }

[ -d "$dir" ] || { echo "check-sdk-arm: $dir: no such folder" >&2; exit 1; }

# Required files (globs allow the versioned OpenSSL names).
required=(libhcnetsdk.so libHCCore.so libhpr.so "libcrypto.so*" "libssl.so*"
          "HCNetSDKCom/libHCPreview.so" "HCNetSDKCom/libHCCoreDevCfg.so"
          "HCNetSDKCom/libHCGeneralCfgMgr.so" "HCNetSDKCom/libHCAlarm.so"
          "HCNetSDKCom/libStreamTransClient.so" "HCNetSDKCom/libSystemTransform.so")
for pat in "${required[@]}"; do
  # shellcheck disable=SC2206
  matches=( "$dir"/$pat )
  [ -e "${matches[0]}" ] || fail "$dir/$pat: missing (see sdk-arm/README.md)"
done

# Every ELF file under the folder must be for the target.
checked=0
while IFS= read -r -d '' f; do
  magic=$(od -An -N4 -t x1 "$f" 2>/dev/null | tr -d ' \n')
  [ "$magic" = "7f454c46" ] || continue
  class=$(od -An -j4 -N1 -t u1 "$f" | tr -d ' ')
  data=$(od -An -j5 -N1 -t u1 "$f" | tr -d ' ')
  b0=$(od -An -j18 -N1 -t u1 "$f" | tr -d ' ')
  b1=$(od -An -j19 -N1 -t u1 "$f" | tr -d ' ')
  if [ "$data" = 1 ]; then machine=$((b0 + 256 * b1)); else machine=$((b1 + 256 * b0)); fi
  rel=${f#"$dir"/}
  checked=$((checked + 1))
  if [ "$machine" != "$want_machine" ]; then
    fail "$rel is $(machine_name "$machine") (machine $machine), expected $want_name (machine $want_machine)"
  elif [ "$class" != "$want_class" ]; then
    fail "$rel is ELF$([ "$class" = 1 ] && echo 32 || echo 64), expected ELF$([ "$want_class" = 1 ] && echo 32 || echo 64)"
  elif [ "$data" != 1 ]; then
    fail "$rel is big-endian, expected little-endian"
  fi
done < <(find "$dir" -type f -print0)

if [ "$errors" -gt 0 ]; then
  echo "check-sdk-arm: $dir: $errors problem(s) for $arch" >&2
  exit 1
fi
echo "check-sdk-arm: $dir: OK for $arch ($checked ELF files)"
