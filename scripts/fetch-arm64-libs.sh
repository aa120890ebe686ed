#!/usr/bin/env bash
# The one arm64 system library the vendor's aarch64 HCNetSDK needs that Debian's cross
# sysroot (libc6-dev-arm64-cross) lacks: libuuid.so.1 (libHCCore.so lists it as NEEDED;
# nothing of it is called). It comes from Debian's own `libuuid1:arm64` package, fetched
# with a private apt configuration (the host's dpkg architectures are left alone) and
# unpacked into a cache folder outside the repository:
#
#   ${HIKWATCH_ARM64_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/hikwatch/arm64-libs}/libuuid.so.1
#
# The aarch64 real-SDK tests put that folder beside the vendor SDK (tests/harness,
# `RealSdk`). Safe to re-run: does nothing when the library is already there.
# Usage: scripts/fetch-arm64-libs.sh
set -euo pipefail

dest=${HIKWATCH_ARM64_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/hikwatch/arm64-libs}
if [ -e "$dest/libuuid.so.1" ]; then
  exit 0
fi
log() { printf '\033[1mfetch-arm64-libs:\033[0m %s\n' "$*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"   # apt downloads as the unprivileged _apt user
mkdir -p "$work/state/lists/partial" "$work/cache/archives/partial" "$work/etc/preferences.d" \
  "$work/etc/apt.conf.d" "$work/etc/trusted.gpg.d"
# The host's Debian release and mirror, for arm64 only.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
cat >"$work/etc/sources.list" <<EOF
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename main
EOF
cat >"$work/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$work/state";
Dir::State::status "/dev/null";
Dir::Cache "$work/cache";
Dir::Etc "$work/etc";
Dir::Etc::sourcelist "$work/etc/sources.list";
Dir::Etc::sourceparts "-";
Dir::Etc::main "-";
Dir::Etc::parts "$work/etc/apt.conf.d";
Dir::Etc::preferencesparts "$work/etc/preferences.d";
Dir::Etc::trustedparts "/etc/apt/trusted.gpg.d";
Acquire::Languages "none";
EOF
export APT_CONFIG="$work/apt.conf"
log "apt-get update (arm64 lists of $codename, private config)"
apt-get -qq update
log "apt-get download libuuid1:arm64"
(cd "$work" && apt-get -qq download libuuid1:arm64)
deb=$(ls "$work"/libuuid1_*_arm64.deb)
dpkg-deb -x "$deb" "$work/root"
lib=$(find "$work/root" -name 'libuuid.so.1.*' -type f | head -n1)
[ -n "$lib" ] || { echo "fetch-arm64-libs: no libuuid.so.1.* in $deb" >&2; exit 1; }
mkdir -p "$dest"
cp "$lib" "$dest/"
ln -sfn "$(basename "$lib")" "$dest/libuuid.so.1.tmp"
mv -T "$dest/libuuid.so.1.tmp" "$dest/libuuid.so.1"
log "$dest/libuuid.so.1 -> $(basename "$lib") (from $(basename "$deb"))"
