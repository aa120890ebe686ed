#!/usr/bin/env bash
# The gateway test: hikwatch's Debian package on a booted Debian bookworm board with
# systemd as PID 1 and the shipped unit unchanged.
#   aarch64  qemu-system-aarch64 -M virt, the vendor's aarch64 SDK (../shared/vendor-sdk)
#   armhf    qemu-system-arm -M virt, the C stand-in SDK (tests/fakesdk) built for armv7
#   x86_64   systemd-nspawn container, the real x86_64 SDK (vendor/, scripts/fetch-sdk.sh)
# Builds what it needs (the image: scripts/board-image.sh, cached outside the repository;
# the package: scripts/package.sh; simcam and the stand-in SDK with cargo), boots the
# board, runs tests/board/guest-test.sh inside it (two boots: the second checks the state
# file after a reboot) and prints a table of the checks. Exit status 1 if a check failed
# or is missing. Must run as root.
#
# Usage: scripts/board-test.sh [--arch aarch64|armhf|x86_64]... [--shell] [--keep]
#   default: aarch64 and armhf
#   --shell  boot the board interactively instead (serial console on this terminal,
#            root without password, the package and test files under /mnt/host after
#            `mount -t 9p host /mnt/host`; leave with `poweroff` or Ctrl-A X)
#   --keep   keep the share folder (results, console log) and print its path
#   --prebuilt  use the package scripts/package.sh already built (target/debian) instead of
#            running it again (scripts/test.sh runs boards side by side after its package
#            step; two package.sh runs at once would race in cargo-zigbuild's cache)
# Without ../shared/vendor-sdk the aarch64 board runs with the C stand-in SDK instead and
# says so in one line; with CI=true that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

archs=()
shell=0
keep=0
prebuilt=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) archs+=("$2"); shift 2 ;;
    --shell) shell=1; shift ;;
    --keep) keep=1; shift ;;
    --prebuilt) prebuilt=1; shift ;;
    *) echo "board-test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#archs[@]} -gt 0 ] || archs=(aarch64 armhf)
[ "$(id -u)" = 0 ] || { echo "board-test.sh: must run as root (mmdebstrap, qemu, nspawn)" >&2; exit 1; }
log() { printf '\033[1mboard-test(%s):\033[0m %s\n' "$arch" "$*" >&2; }

VENDOR_AARCH64="$root/../shared/vendor-sdk/hcnetsdk-6.1.8.101-aarch64"
# Guest-side deadline for both boots together (a stuck guest must not hang CI).
GUEST_TIMEOUT="${BOARD_TEST_TIMEOUT:-1500}"
# The checks every run must report (the x86_64 container cannot load softdog into the
# host's kernel, so it skips hw-watchdog).
EXPECTED="boot pkg-install pkg-sysusers pkg-tmpfiles pkg-not-enabled pkg-conffile simcam
check-config start-ready all-online without-c no-password-leak security watchdog-restart
reload journal-err repeat-limiter stop hw-watchdog state-no-password reboot-state pkg-remove
pkg-purge"

overall=0
for arch in "${archs[@]}"; do
  t_arch=$(date +%s)
  case "$arch" in
    aarch64) triple=aarch64-unknown-linux-gnu; debarch=arm64; board=aarch64-generic ;;
    armhf) triple=armv7-unknown-linux-gnueabihf; debarch=armhf; board=armv7-generic ;;
    x86_64) triple=x86_64-unknown-linux-gnu; debarch=amd64; board="" ;; # x86_64-dev keeps files in /tmp
    *) echo "board-test.sh: unknown architecture $arch (aarch64, armhf, x86_64)" >&2; exit 2 ;;
  esac

  # --- image (cached) --------------------------------------------------------------------
  t=$(date +%s)
  img=$(scripts/board-image.sh "$arch")
  t_image=$(( $(date +%s) - t ))

  share=$(mktemp -d /tmp/hikwatch-board-"$arch".XXXXXX)
  chmod 755 "$share"
  if [ "$shell" = 0 ]; then
    # --- package, simcam, SDK --------------------------------------------------------------
    t=$(date +%s)
    if [ "$prebuilt" = 0 ]; then
      scripts/package.sh --arch "$debarch" --no-lintian >&2
    fi
    cp target/debian/hikwatch_*_"$debarch".deb "$share/"
    t_package=$(( $(date +%s) - t ))
    t=$(date +%s)
    if [ "$arch" = x86_64 ]; then
      cargo build --locked -p simcam >&2
      cp target/debug/simcam "$share/simcam"
    else
      cargo build --locked -p simcam -p fakesdk --target "$triple" >&2
      cp "target/$triple/debug/simcam" "$share/simcam"
    fi
    sdk_kind=vendor
    case "$arch" in
      x86_64)
        scripts/fetch-sdk.sh >&2
        cp -a vendor/hcnetsdk-linux64 "$share/sdk"
        sdk_note="real x86_64 SDK 6.1.9.48" ;;
      aarch64)
        if [ -d "$VENDOR_AARCH64" ]; then
          cp -a "$VENDOR_AARCH64" "$share/sdk"
          sdk_note="vendor aarch64 SDK 6.1.8.101"
        elif [ "${CI:-}" = true ]; then
          log "FAIL: $VENDOR_AARCH64 is missing (CI=true requires the vendor aarch64 SDK)"
          exit 1
        else
          log "SKIP vendor-SDK part: no $VENDOR_AARCH64; the aarch64 board runs with the C stand-in SDK"
          sdk_kind=fake
        fi ;;
      armhf) sdk_kind=fake ;;
    esac
    if [ "$sdk_kind" = fake ]; then
      fake=$(ls -td target/"$triple"/debug/build/fakesdk-*/out/sdk | head -n1)
      cp -a "$fake" "$share/sdk"
      sdk_note="C stand-in SDK (tests/fakesdk)"
    fi
    # The vendor SDK loads through ISAPI against simcam; the stand-in ignores the mode.
    printf 'ARCH=%s\nBOARD=%s\nLOGIN_MODE=isapi\nSDK_KIND=%s\n' "$arch" "$board" "$sdk_kind" \
      > "$share/params.env"
    cp tests/board/guest-test.sh "$share/"
    scripts/check-glibc-floor.sh 2.17 "target/$triple/release/hikwatch" >&2
    t_inputs=$(( $(date +%s) - t ))
    log "image ${t_image}s, package ${t_package}s, simcam+SDK ${t_inputs}s; $sdk_note"
  fi

  # --- boot --------------------------------------------------------------------------------
  t=$(date +%s)
  rc=0
  if [ "$arch" = x86_64 ]; then
    rootfs="$share.rootfs"
    mkdir -p "$rootfs"
    tar -C "$rootfs" -xf "$img/rootfs.tar"
    # --register=no --keep-unit: the host has no systemd (no machined, no system bus).
    nspawn=(systemd-nspawn -q -b -D "$rootfs" --register=no --keep-unit --private-network
            --bind="$share:/mnt/host")
    if [ "$shell" = 1 ]; then
      "${nspawn[@]}" || true
    else
      ln -sf /etc/systemd/system/hikwatch-board-test.service \
        "$rootfs/etc/systemd/system/multi-user.target.wants/hikwatch-board-test.service"
      # A reboot inside the container ends nspawn with status 133: boot it again.
      for _ in 1 2 3; do
        rc=0
        timeout "$GUEST_TIMEOUT" "${nspawn[@]}" --console=pipe >> "$share/console.log" 2>&1 < /dev/null || rc=$?
        [ "$rc" = 133 ] || break
      done
    fi
    rm -rf "$rootfs"
  else
    if [ "$arch" = aarch64 ]; then
      qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57 -smp 2 -m 1024)
    else
      qemu=(qemu-system-arm -M virt -cpu cortex-a15 -smp 1 -m 768)
    fi
    # No network device (-nic none). -snapshot: the cached disk stays untouched; guest
    # writes live in a temporary overlay for this qemu process, across the guest's
    # reboot. tb-size: the translation cache, 1 GiB by default, is most of qemu's RSS.
    qemu+=(-accel tcg,tb-size=256 -nic none -snapshot -display none -monitor none
           -kernel "$img/vmlinuz" -initrd "$img/initrd.img"
           -drive "if=none,file=$img/rootfs.img,format=raw,id=hd"
           -device virtio-blk-device,drive=hd -device virtio-rng-device
           -fsdev "local,id=fs0,path=$share,security_model=none"
           -device virtio-9p-device,fsdev=fs0,mount_tag=host)
    cmdline="console=ttyAMA0 root=/dev/vda rw panic=10"
    if [ "$shell" = 1 ]; then
      "${qemu[@]}" -serial mon:stdio -append "$cmdline" || true
    else
      # The serial getty would hang up the console and swallow the test's output.
      cmdline="$cmdline quiet systemd.mask=serial-getty@ttyAMA0.service"
      cmdline="$cmdline systemd.wants=hikwatch-board-test.service"
      timeout "$GUEST_TIMEOUT" "${qemu[@]}" -serial "file:$share/console.log" \
        -append "$cmdline" < /dev/null || rc=$?
    fi
  fi
  t_boot=$(( $(date +%s) - t ))
  if [ "$shell" = 1 ]; then
    rm -rf "$share"
    continue
  fi

  # --- results -------------------------------------------------------------------------------
  printf '\n%s board (%s), %s; guest run %ss (exit %s)\n' "$arch" "$debarch" "$sdk_note" "$t_boot" "$rc"
  printf '%-18s %-5s %s\n' CHECK RESULT DETAIL
  failed=0
  for c in $EXPECTED; do
    line=$(grep "^CHECK $c " "$share/results.txt" 2>/dev/null | tail -n1 || true)
    if [ -z "$line" ]; then
      if [ "$c" = hw-watchdog ] && [ "$arch" = x86_64 ]; then
        printf '%-18s %-5s %s\n' "$c" SKIP "a container cannot load softdog into the host kernel"
        continue
      fi
      printf '%-18s %-5s %s\n' "$c" MISS "not reported (see the console log)"
      failed=1
      continue
    fi
    res=$(cut -d' ' -f3 <<<"$line")
    printf '%-18s %-5s %s\n' "$c" "$res" "$(cut -d' ' -f4- <<<"$line")"
    [ "$res" = FAIL ] && failed=1
  done
  if [ "$failed" = 1 ] || [ "$(cat "$share/phase" 2>/dev/null)" != done ]; then
    echo "board-test($arch): FAIL; last console lines:"
    tail -n 30 "$share/console.log" 2>/dev/null || true
    overall=1
  else
    echo "board-test($arch): PASS in $(( $(date +%s) - t_arch ))s"
  fi
  if [ "$keep" = 1 ]; then echo "board-test($arch): share kept at $share"; else rm -rf "$share"; fi
done
exit $overall
