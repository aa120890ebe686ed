#!/usr/bin/env bash
# Fetch HCNetSDK V6.1.9.48 (linux x86_64) from the hcnetsdk-python wheel on PyPI, verify
# the wheel against a pinned sha256 and unpack the SDK into vendor/hcnetsdk-linux64/.
# Idempotent: does nothing when the folder is already complete. Never commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL=HCNetSDK_python-1.0.0-py3-none-manylinux1_x86_64.whl
SHA256=f962f2b5cf55fa83266504378fb98dc0d1301284933e74ce3794e8a3acca69d2
DEST=vendor/hcnetsdk-linux64
STAMP="$DEST/.complete-$SHA256"

[ -f "$STAMP" ] && exit 0

mkdir -p vendor/download
if [ ! -f "vendor/download/$WHEEL" ] || ! echo "$SHA256  vendor/download/$WHEEL" | sha256sum -c --quiet 2>/dev/null; then
  echo "fetch-sdk: pip download hcnetsdk-python==1.0.0"
  rm -f "vendor/download/$WHEEL"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux1_x86_64 --python-version 3.11 \
    -d vendor/download hcnetsdk-python==1.0.0
fi
if ! echo "$SHA256  vendor/download/$WHEEL" | sha256sum -c --quiet; then
  echo "fetch-sdk: vendor/download/$WHEEL does not match the pinned sha256 $SHA256" >&2
  exit 1
fi

tmp=$(mktemp -d vendor/unpack.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
python3 - "vendor/download/$WHEEL" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    members = [m for m in z.namelist() if m.startswith("HCNetSDK/Libs/linux/")]
    z.extractall(sys.argv[2], members)
PY
rm -rf "$DEST"
mv "$tmp/HCNetSDK/Libs/linux" "$DEST"
touch "$STAMP"
echo "fetch-sdk: unpacked $(ls "$DEST" | wc -l) entries into $DEST"
