#!/usr/bin/env bash
# Builds (or finds in the cache) a Debian bookworm image for an emulated board, from
# Debian packages only, with systemd as PID 1:
#   aarch64  qemu-system-aarch64 -M virt: kernel, busybox initramfs, ext4 root disk
#   armhf    qemu-system-arm -M virt:     kernel, busybox initramfs, ext4 root disk
#   x86_64   systemd-nspawn:              root file system as a tar (no kernel)
# Prints the cache folder on stdout (everything else goes to stderr). The cache lives
# outside the repository, in $HIKWATCH_BOARD_CACHE (default /var/cache/hikwatch-board),
# one folder per architecture and key; the key is a hash of the package list and of this
# script, so changing either builds a new image. Installs the apt packages it needs.
# Must run as root (mmdebstrap into a folder, binfmt_misc, mkfs).
# Usage: scripts/board-image.sh aarch64|armhf|x86_64 [--rebuild]
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${1:-}"
rebuild=0
[ "${2:-}" = "--rebuild" ] && rebuild=1
log() { printf '\033[1mboard-image(%s):\033[0m %s\n' "$arch" "$*" >&2; }

# The guest's packages. Everything the gateway test needs beyond minbase: systemd as
# PID 1, udev (the watchdog rule), kmod (softdog, 9p), procps (ps, kill), libuuid1 (the
# vendor SDK needs it) and busybox-static (the initramfs's only program). The kernel
# package is not installed but unpacked on the host (see below).
PACKAGES=(systemd systemd-sysv udev dbus kmod procps libuuid1 busybox-static)
case "$arch" in
  aarch64) debarch=arm64; qemu_bin=aarch64; kernel_meta=linux-image-arm64 ;;
  armhf) debarch=armhf; qemu_bin=arm; kernel_meta=linux-image-armmp-lpae ;;
  x86_64) debarch=amd64; qemu_bin=""; kernel_meta="" ;;
  *) echo "usage: $0 aarch64|armhf|x86_64 [--rebuild]" >&2; exit 2 ;;
esac
SUITE=bookworm
MIRROR="http://deb.debian.org/debian"

[ "$(id -u)" = 0 ] || { echo "board-image.sh: must run as root" >&2; exit 1; }

# --- host packages ---------------------------------------------------------------------
host_pkgs=(mmdebstrap arch-test e2fsprogs cpio zstd kmod)
case "$arch" in
  aarch64 | armhf) host_pkgs+=(qemu-user-static binfmt-support qemu-system-arm) ;;
  x86_64) host_pkgs+=(systemd-container) ;;
esac
missing=()
for p in "${host_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >&2
fi

# --- cache key ---------------------------------------------------------------------------
cache_root="${HIKWATCH_BOARD_CACHE:-/var/cache/hikwatch-board}"
key=$( { printf '%s\n' "$SUITE" "$MIRROR" "$debarch" "${PACKAGES[@]}" "$kernel_meta"; cat "$0"; } |
  sha256sum | cut -c1-16)
out="$cache_root/$arch-$key"
if [ "$rebuild" = 0 ] && [ -f "$out/complete" ]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi
log "building $out (packages: ${PACKAGES[*]})"
t0=$(date +%s)
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d "$cache_root/.build-$arch.XXXXXX")
rootfs="$work/rootfs"

# --- foreign maintainer scripts: binfmt_misc only while mmdebstrap runs --------------------
# mmdebstrap runs the guest's maintainer scripts through qemu-user-static, which needs
# binfmt_misc. The registration is switched off again afterwards: with it on, the
# kernel would run every ARM executable through qemu without the cross sysroot, and the
# cross test runs (scripts/test.sh) expect to start ARM binaries through qemu themselves.
binfmt_enabled_here=""
restore_binfmt() {
  if [ -n "$binfmt_enabled_here" ]; then
    update-binfmts --disable "$binfmt_enabled_here" >&2 || true
  fi
  # A failed mmdebstrap may leave /proc, /sys or /dev mounts in the tree: unmount them
  # before removing it. (No mounts is the usual case: grep's status 1 must not become the
  # script's, which errexit inside this EXIT trap would make it.)
  { grep -o " $work/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$work"
}
trap restore_binfmt EXIT
if [ -n "$qemu_bin" ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$qemu_bin" ]; then
    update-binfmts --enable "qemu-$qemu_bin" >&2
    binfmt_enabled_here="qemu-$qemu_bin"
  fi
fi

include=$(IFS=,; echo "${PACKAGES[*]}")
log "mmdebstrap $SUITE $debarch"
mmdebstrap --quiet --arch="$debarch" --variant=minbase --include="$include" \
  --skip=cleanup/apt/lists "$SUITE" "$rootfs" "deb $MIRROR $SUITE main" >&2

if [ -n "$binfmt_enabled_here" ]; then
  update-binfmts --disable "$binfmt_enabled_here" >&2
  binfmt_enabled_here=""
fi

# --- the kernel, unpacked natively --------------------------------------------------------
# Installing linux-image through mmdebstrap runs its 60 MB of modules through emulated
# dpkg (many minutes under qemu-user); the host's apt, pointed at the guest's package
# lists, downloads the same .deb and dpkg-deb unpacks it natively. depmod (host kmod)
# writes modules.dep for the guest's modprobe.
if [ -n "$kernel_meta" ]; then
  guest_apt=(-o Dir::State="$rootfs/var/lib/apt" -o Dir::State::status="$rootfs/var/lib/dpkg/status"
             -o Dir::Etc="$rootfs/etc/apt" -o Dir::Cache="$rootfs/var/cache/apt"
             -o APT::Architecture="$debarch" -o APT::Architectures="$debarch" -o Debug::NoLocking=1)
  kpkg=$(apt-cache "${guest_apt[@]}" depends "$kernel_meta" | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
  [ -n "$kpkg" ] || { echo "board-image.sh: cannot resolve $kernel_meta" >&2; exit 1; }
  log "kernel $kpkg (unpacked on the host)"
  (cd "$work" && apt-get "${guest_apt[@]}" download "$kpkg:$debarch" >&2)
  # --keep-directory-symlink: /lib is a link to usr/lib (merged /usr); a plain extract
  # would replace it with a directory holding only the modules.
  dpkg-deb --fsys-tarfile "$work"/"${kpkg}"_*.deb | tar -x --keep-directory-symlink -C "$rootfs"
  kver_new=$(basename "$(ls -d "$rootfs"/lib/modules/* | head -n1)")
  depmod -b "$rootfs" "$kver_new"
fi

# --- guest configuration -------------------------------------------------------------------
echo board > "$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tboard\n::1\tlocalhost\n' > "$rootfs/etc/hosts"
# Root logs in without a password on the console (an emulated test board with no network).
sed -i 's/^root:[^:]*:/root::/' "$rootfs/etc/shadow"
mkdir -p "$rootfs/mnt/host"
if [ "$arch" != x86_64 ]; then
  printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$rootfs/etc/fstab"
fi
# The test runner: started only when the kernel command line (or nspawn) asks for it
# with systemd.wants=hikwatch-board-test.service, so an interactive boot is a plain
# board. It mounts the host's share (9p in the VM, a bind mount under nspawn) and runs
# the test script found there, so the test can change without rebuilding the image.
cat > "$rootfs/etc/systemd/system/hikwatch-board-test.service" <<'EOF'
[Unit]
Description=hikwatch gateway test (runs /mnt/host/guest-test.sh)
After=multi-user.target
ConditionPathExists=!/etc/hikwatch-board-test.disabled

[Service]
# Type=exec, not oneshot: a oneshot ordered into boot would keep boot from finishing.
Type=exec
ExecStartPre=-/bin/sh -c 'mountpoint -q /mnt/host || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /mnt/host'
ExecStart=/bin/bash /mnt/host/guest-test.sh
# A test that fails outright still ends the run.
ExecStopPost=/bin/sh -c 'test "$SERVICE_RESULT" = success || systemctl poweroff'
StandardOutput=journal+console
StandardError=journal+console
EOF
# Console hygiene for the test: no kernel chatter on the console.
mkdir -p "$rootfs/etc/sysctl.d"
echo 'kernel.printk = 3 4 1 3' > "$rootfs/etc/sysctl.d/10-board-console.conf"
# Keep the image small: no docs, no apt lists.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/*.bin

if [ "$arch" = x86_64 ]; then
  log "rootfs.tar"
  tar -C "$rootfs" -cf "$out/rootfs.tar" .
else
  # --- kernel and a busybox initramfs ------------------------------------------------------
  kver=$(basename "$(ls -d "$rootfs"/lib/modules/* | head -n1)")
  cp "$rootfs/boot/vmlinuz-$kver" "$out/vmlinuz"
  init="$work/initramfs"
  mkdir -p "$init"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,root,lib/modules/"$kver"}
  cp "$rootfs/bin/busybox" "$init/bin/busybox"
  moddir="$rootfs/lib/modules/$kver"
  cp "$moddir"/modules.{dep,builtin,order} "$init/lib/modules/$kver/" 2>/dev/null || true
  # The root disk's driver chain and its dependencies, as listed in modules.dep; ext4
  # also asks the crypto API for crc32c at mount time.
  want="virtio_mmio virtio_blk crc32c_generic ext4 virtio_rng"
  for m in $want; do
    line=$(grep -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" || true)
    [ -n "$line" ] || continue # built into the kernel
    for f in ${line/:/ }; do
      mkdir -p "$init/lib/modules/$kver/$(dirname "$f")"
      cp "$moddir/$f" "$init/lib/modules/$kver/$f"
    done
  done
  cat > "$init/init" <<EOF
#!/bin/busybox sh
# Every applet at its usual path (the kernel runs /sbin/modprobe for crypto modules).
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $want; do modprobe \$m 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
mount -t ext4 -o rw /dev/vda /root || { echo "initramfs: cannot mount /dev/vda"; exec sh; }
umount /proc /sys
mount --move /dev /root/dev 2>/dev/null || umount /dev
exec switch_root /root /sbin/init
EOF
  chmod 755 "$init/init"
  (cd "$init" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.img"

  # --- root disk -------------------------------------------------------------------------------
  log "rootfs.img (ext4)"
  truncate -s 1G "$out/rootfs.img"
  mkfs.ext4 -q -F -L board -d "$rootfs" "$out/rootfs.img" >&2
  echo "$kver" > "$out/kernel-version"
fi
printf '%s\n' "${PACKAGES[@]}" > "$out/packages"
touch "$out/complete"
log "built in $(( $(date +%s) - t0 )) s: $out"
echo "$out"
