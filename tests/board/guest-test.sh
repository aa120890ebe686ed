#!/bin/bash
# The gateway test, run INSIDE a booted board (qemu VM or systemd-nspawn container) by
# hikwatch-board-test.service (scripts/board-image.sh), from the host's share mounted at
# /mnt/host. scripts/board-test.sh puts there: this script, params.env, the hikwatch .deb,
# the simcam binary for the board's architecture, and sdk/ (the SDK for /opt/hikwatch/sdk).
# Every check appends one line "CHECK <name> PASS|FAIL|SKIP <detail>" to
# /mnt/host/results.txt; board-test.sh prints them as a table.
#
# Two boots: phase 1 installs and tests, enables hikwatch and reboots; phase 2 checks
# that the state file was read back, then removes and purges the package and powers off.
# The guest is 10-20x slower than the host: every wait below is a generous deadline for
# a condition, never a speed assertion.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
set -u
H=/mnt/host
# shellcheck disable=SC1091
. "$H/params.env" # ARCH, BOARD, LOGIN_MODE, SDK_KIND (vendor|fake)
R="$H/results.txt"
PASSWORD='Board-Secret-7d41'   # simcam's password; must never show up anywhere
WRONG='Wrong-Secret-0b19'      # cam-4's wrong password (auth-hold)
CONF=/etc/hikwatch/hikwatch.toml
CRED=/etc/hikwatch/credentials
STATE=/var/lib/hikwatch/state.bin
FIFO=/run/simcam/in
OUT=/run/simcam/out
NCAM=4 # cam-0..cam-3 at first; cam-4 joins at the reload (wrong password)

say() { echo "board-test: $*" > /dev/console 2>/dev/null || echo "board-test: $*"; }
check() { # NAME PASS|FAIL|SKIP DETAIL...
  local name=$1 res=$2
  shift 2
  echo "CHECK $name $res $*" >> "$R"
  say "$res $name: $*"
}
ok_if() { # NAME DETAIL COMMAND... : PASS when the command succeeds
  local name=$1 detail=$2
  shift 2
  if "$@"; then check "$name" PASS "$detail"; else check "$name" FAIL "$detail"; fi
}
# wait_for SECONDS COMMAND...: polls every second until the command succeeds.
wait_for() {
  local deadline=$(( $(date +%s) + $1 ))
  shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# --- hikwatch CLI: without -c when it works (the packaged default path), else with -c ---
# NO_C is decided once at the check-config step (a subshell could not set it).
NO_C=no
hw() { # hw SUBCOMMAND ARGS...
  local sub=$1
  shift
  if [ "$NO_C" = yes ]; then hikwatch "$sub" "$@"; else hikwatch "$sub" -c "$CONF" "$@"; fi
}
status_json() { hw status --json 2>/dev/null; }
# cam_state ID: the camera's state from `hikwatch status --json` (no jq in minbase).
cam_state() { status_json | grep -o "\"id\":\"$1\",\"state\":\"[a-z-]*\"" | sed 's/.*"state":"//; s/"$//'; }
cam_field() { # ID FIELD: a numeric field of one camera
  # From the camera's id on, the first such field is its own (last_error is an object,
  # so the camera's own closing brace cannot end the match).
  status_json | grep -o "\"id\":\"$1\".*" | grep -o "\"$2\":[0-9]*" | head -n1 | cut -d: -f2
}
all_online() { # IDS...
  local id
  for id in "$@"; do [ "$(cam_state "$id")" = online ] || return 1; done
}
main_pid() { systemctl show -p MainPID --value hikwatch; }
out_longer() { [ "$(wc -l < "$OUT")" -gt "$1" ]; }
simcam() { # send one command to simcam, print its reply line
  local n
  n=$(wc -l < "$OUT")
  echo "$*" > "$FIFO"
  wait_for 20 out_longer "$n" || return 1
  tail -n +"$((n + 1))" "$OUT" | head -n1
}
sim_total() { # FIELD: a counter summed over the fleet
  simcam total | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2
}

# cam_host N: camera N's address. With the vendor SDK: simcam camera N on loopback. With
# the C stand-in (it talks to no network and takes its behaviour script from the
# address, which the config only accepts as a plain host name) every login succeeds:
# no auth-hold and no flapping camera there (those checks say so).
cam_host() {
  if [ "$SDK_KIND" = vendor ]; then echo 127.0.0.1; else echo "ok-$1"; fi
}
# cam-4's state after the reload: a wrong password (vendor SDK) or a plain login.
CAM4_STATE=$([ "$SDK_KIND" = vendor ] && echo auth-hold || echo online)
write_config() { # WATCHDOG_DEVICE CAMERA_NUMBERS...
  local wd=$1 i
  shift
  {
    [ -z "$BOARD" ] || echo "board = \"$BOARD\""
    echo "[watchdog]"
    echo "device = \"$wd\""
    echo "[supervisor]"
    echo 'start_spread = "1s"'
    # The stand-in's script addresses cannot be probed, so no hybrid link watch there.
    [ "$SDK_KIND" = vendor ] || printf 'strategy = "poll"\nheartbeat_interval = "2s"\n'
    for i in "$@"; do
      printf '[[camera]]\nid = "cam-%s"\nhost = "%s"\nport = %s\nuser = "admin"\n' \
        "$i" "$(cam_host "$i")" "$((20000 + i))"
      printf 'password_credential = "camera_cam-%s"\nlogin_mode = "%s"\n' "$i" "$LOGIN_MODE"
    done
  } > "$CONF"
}
# mark: a journal position (whole seconds; the next line starts a new second).
mark() { date +%s; sleep 1.1; }
since() { # SECONDS ARGS...: hikwatch's journal lines since a mark
  journalctl -u hikwatch --no-pager -o cat --since "@$1" "${@:2}"
}

phase=$(cat "$H/phase" 2>/dev/null || echo 1)
say "phase $phase on $(uname -m), systemd $(systemctl --version | head -n1 | cut -d' ' -f2)"

if [ "$phase" = 1 ]; then
  : > "$R"
  check boot PASS "systemd $(systemctl --version | head -n1 | cut -d' ' -f2) is PID 1 ($(cat /proc/1/comm)), $(uname -m), kernel $(uname -r)"

  # --- the package ---------------------------------------------------------------------
  deb=$(ls "$H"/hikwatch_*.deb)
  if dpkg -i "$deb" > /tmp/dpkg.log 2>&1; then
    check pkg-install PASS "$(basename "$deb")"
  else
    check pkg-install FAIL "$(tail -n3 /tmp/dpkg.log | tr '\n' ' ')"
  fi
  ok_if pkg-sysusers "user and group hikwatch created by systemd-sysusers" \
    sh -c 'getent passwd hikwatch >/dev/null && getent group hikwatch >/dev/null'
  ok_if pkg-tmpfiles "/etc/hikwatch/credentials is root 0700 (systemd-tmpfiles)" \
    test "$(stat -c %U:%a "$CRED" 2>/dev/null)" = root:700
  ok_if pkg-not-enabled "installed disabled and inactive (the example config has no real cameras)" \
    sh -c '! systemctl is-enabled -q hikwatch && ! systemctl is-active -q hikwatch'
  ok_if pkg-conffile "/etc/hikwatch/hikwatch.toml is a conffile" \
    sh -c 'dpkg-query -W -f="\${Conffiles}" hikwatch | grep -q /etc/hikwatch/hikwatch.toml'

  # --- SDK and simcam --------------------------------------------------------------------
  mkdir -p /opt/hikwatch
  cp -a "$H/sdk" /opt/hikwatch/sdk
  install -m 0755 "$H/simcam" /usr/local/bin/simcam
  cat > /etc/systemd/system/simcam.service <<EOF
[Unit]
Description=simcam: simulated cameras on loopback (hikwatch board test)
Before=hikwatch.service
[Service]
Type=exec
RuntimeDirectory=simcam
RuntimeDirectoryPreserve=yes
# Commands arrive through a FIFO opened read-write, so simcam never sees end of input.
ExecStartPre=/bin/sh -c 'rm -f $FIFO $OUT; mkfifo -m 0600 $FIFO; : > $OUT'
ExecStart=/bin/sh -c 'exec /usr/local/bin/simcam --cameras 5 --port 20000 --user admin --password $PASSWORD --stay 0<>$FIFO >>$OUT'
[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload
  systemctl enable -q --now simcam
  if wait_for 60 grep -q '"ready":true' "$OUT"; then
    check simcam PASS "$(head -n1 "$OUT" | cut -c1-80)"
  else
    check simcam FAIL "no ready line: $(systemctl status simcam --no-pager 2>&1 | tail -n3 | tr '\n' ' ')"
  fi

  # --- config and credentials --------------------------------------------------------------
  for i in 0 1 2 3; do
    printf '%s' "$PASSWORD" > "$CRED/cam-$i"
  done
  printf '%s' "$WRONG" > "$CRED/cam-4"
  chmod 600 "$CRED"/*
  write_config "" 0 1 2 3
  # Without -c first: the packaged default is /etc/hikwatch/hikwatch.toml.
  if hikwatch check-config > /dev/null 2>&1; then NO_C=yes; fi
  if out=$(hw check-config 2>&1); then
    check check-config PASS "$(echo "$out" | tail -n1)"
  else
    check check-config FAIL "$(echo "$out" | tail -n2 | tr '\n' ' ')"
  fi

  # --- start returns after READY, every camera online ------------------------------------
  t0=$(date +%s.%N)
  if systemctl start hikwatch; then
    t1=$(date +%s.%N)
    # Type=notify: start returns only after READY=1. Right after it returns the status
    # socket (bound before READY) must answer.
    if status_json > /dev/null; then
      check start-ready PASS "systemctl start returned after READY in $(echo "$t0 $t1" | awk '{printf "%.1f", $2-$1}') s; status answers at once"
    else
      check start-ready FAIL "start returned but status does not answer"
    fi
  else
    check start-ready FAIL "$(systemctl status hikwatch --no-pager 2>&1 | tail -n5 | tr '\n' ' ')"
  fi
  if wait_for 120 all_online cam-0 cam-1 cam-2 cam-3; then
    if [ "$SDK_KIND" = vendor ]; then
      sess=$(simcam stats all | grep -o '"sessions":[0-9]*' | cut -d: -f2 | head -n4 | tr '\n' ' ')
      check all-online PASS "4/4 online; vendor SDK sessions at simcam per camera: $sess"
    else
      check all-online PASS "4/4 online (C stand-in SDK)"
    fi
  else
    check all-online FAIL "$(status_json | cut -c1-300)"
  fi
  if [ "$NO_C" = yes ] && hikwatch status --json > /dev/null 2>&1; then
    check without-c PASS "check-config and status work without -c (the unit's run passes -c)"
  else
    check without-c SKIP "the CLI still needs -c (the test passes -c $CONF)"
  fi

  # --- no password anywhere --------------------------------------------------------------
  pid=$(main_pid)
  leaks=""
  # Every journal field of the daemon's entries and systemd's entries about the unit
  # (simcam's own entries carry its command line, which holds the password).
  journalctl -u hikwatch -o export --no-pager | grep -aqF "$PASSWORD" && leaks="$leaks journal"
  hw status 2>/dev/null | grep -qF "$PASSWORD" && leaks="$leaks status"
  status_json | grep -qF "$PASSWORD" && leaks="$leaks status-json"
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$PASSWORD" && leaks="$leaks cmdline"
  tr '\0' '\n' < "/proc/$pid/environ" | grep -qF "$PASSWORD" && leaks="$leaks environ"
  if [ -z "$leaks" ] && [ -d "/proc/$pid" ]; then
    check no-password-leak PASS "LoadCredential= folder; not in journal, status, cmdline, environ (state file: see state-no-password)"
  else
    check no-password-leak FAIL "found in:$leaks (pid $pid)"
  fi

  # --- sandbox rating --------------------------------------------------------------------
  exposure=$(systemd-analyze security hikwatch --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for hikwatch.service: \([0-9.]*\).*/\1/p')
  if [ -n "$exposure" ] && awk "BEGIN{exit !($exposure <= 2.0)}"; then
    check security PASS "systemd-analyze security hikwatch: $exposure"
  else
    check security FAIL "exposure '$exposure'"
  fi

  # --- watchdog: SIGSTOP, killed by systemd, restarted, all online again --------------------
  m_wd=$(mark)
  pid=$(main_pid)
  restarts0=$(systemctl show -p NRestarts --value hikwatch)
  kill -STOP "$pid"
  # WatchdogSec=30s in the shipped unit, then RestartSec=5s.
  if wait_for 150 sh -c "[ \"\$(systemctl show -p NRestarts --value hikwatch)\" -gt $restarts0 ] && systemctl is-active -q hikwatch" &&
    wait_for 120 all_online cam-0 cam-1 cam-2 cam-3; then
    why=$(journalctl --no-pager -o cat -u hikwatch --since "@$m_wd" | grep -m1 -i "watchdog timeout" || true)
    newpid=$(main_pid)
    if [ -n "$why" ] && [ "$newpid" != "$pid" ]; then
      check watchdog-restart PASS "SIGSTOP pid $pid -> '$why' -> restarted as $newpid, 4/4 online"
    else
      check watchdog-restart FAIL "restarted but no watchdog timeout logged (new pid $newpid)"
    fi
  else
    check watchdog-restart FAIL "no restart or not all online: $(systemctl show -p Result,NRestarts hikwatch | tr '\n' ' ')"
  fi

  # --- reload: a changed camera list -----------------------------------------------------
  m_rl=$(mark)
  write_config "" 0 1 2 4 # cam-3 leaves, cam-4 (wrong password) joins
  systemctl reload hikwatch
  if wait_for 60 sh -c "hikwatch status --json -c $CONF 2>/dev/null | grep -q '\"id\":\"cam-4\"' && ! hikwatch status --json -c $CONF 2>/dev/null | grep -q '\"id\":\"cam-3\"'" &&
    wait_for 180 sh -c "[ \"\$(hikwatch status --json -c $CONF | grep -o '\"id\":\"cam-4\",\"state\":\"[a-z-]*\"')\" = '\"id\":\"cam-4\",\"state\":\"$CAM4_STATE\"' ]"; then
    check reload PASS "cam-3 removed, cam-4 added (now $(cam_state cam-4), $(cam_field cam-4 login_attempts) attempts), others $(cam_state cam-0)"
  else
    check reload FAIL "$(status_json | cut -c1-400)"
  fi

  # --- priorities and the per-camera repeat limiter ----------------------------------------
  # An error on purpose: a broken config reloaded (the daemon keeps the running one).
  cp "$CONF" /tmp/good.toml
  printf '[supervisor]\nworkers = -1\n' >> "$CONF"
  systemctl reload hikwatch
  sleep 5
  cp /tmp/good.toml "$CONF"
  systemctl reload hikwatch
  # A flapping camera: every flap is a lost session, logged once and then at most once
  # per [log] repeat_window (1 min) with a count.
  if [ "$SDK_KIND" = vendor ]; then
    flap=cam-0
    for _ in 1 2 3 4 5; do
      simcam off 0 > /dev/null
      sleep 4
      simcam on 0 > /dev/null
      wait_for 60 all_online cam-0
    done
    reconnects=$(cam_field cam-0 reconnects)
  else
    flap=""
  fi
  sleep 2
  errs=$(since "$m_rl" -p err)
  notice=$(since "$m_rl" -p notice)
  warn=$(since "$m_rl" -p warning..warning)
  lost=$(grep -c "^${flap:-none}: session lost" <<<"$warn" || true)
  bad=$(grep -vE '^(cam-4: credentials rejected|reload: )' <<<"$errs" || true)
  if { [ "$SDK_KIND" != vendor ] || grep -q '^cam-4: credentials rejected' <<<"$errs"; } &&
    grep -q '^reload: ' <<<"$errs" &&
    [ -z "$bad" ] && ! grep -qE 'online|session lost' <<<"$errs"; then
    check journal-err PASS "-p err: $(wc -l <<<"$errs") lines, exactly the expected errors (the bad reload, and the auth-hold with the vendor SDK); no warning or info line"
  else
    check journal-err FAIL "unexpected in -p err: $(echo "$bad" | head -n3 | tr '\n' '|')"
  fi
  if [ -z "$flap" ]; then
    check repeat-limiter SKIP "the C stand-in cannot be made to drop sessions through a valid config"
  elif [ "${reconnects:-0}" -ge 3 ] && [ "$lost" -ge 1 ] && [ "$lost" -lt "$reconnects" ] &&
    ! grep -q 'online' <<<"$notice"; then
    check repeat-limiter PASS "$flap lost its session $reconnects times: 'session lost' logged $lost time(s) at warning; 'online' lines stay below notice"
  else
    check repeat-limiter FAIL "$flap: $reconnects reconnects, $lost 'session lost' lines; 'online' in -p notice: $(grep -c online <<<"$notice")"
  fi

  # --- stop: every camera logged out at simcam, exit 0 within TimeoutStopSec ---------------
  attempts4=$(cam_field cam-4 login_attempts)
  online_now=$(status_json | grep -o '"state":"online"' | wc -l)
  logouts0=$(sim_total logouts)
  sessions0=$(sim_total sessions)
  t0=$(date +%s.%N)
  systemctl stop hikwatch
  t1=$(date +%s.%N)
  result=$(systemctl show -p Result --value hikwatch)
  code=$(systemctl show -p ExecMainStatus --value hikwatch)
  secs=$(echo "$t0 $t1" | awk '{printf "%.1f", $2-$1}')
  if [ "$SDK_KIND" = vendor ]; then
    # The sessions of the instance the watchdog killed (SIGABRT, no logout) stay at
    # simcam until it expires them; this stop must end exactly the live ones.
    logouts=$(( $(sim_total logouts) - logouts0 ))
    ended=$(( sessions0 - $(sim_total sessions) ))
    detail="$logouts logouts at simcam for $online_now online cameras ($ended sessions ended)"
    good=$([ "$logouts" -ge "$online_now" ] && [ "$ended" = "$online_now" ] && echo 1 || echo 0)
  else
    detail="(C stand-in SDK: no sessions at simcam)"
    good=1
  fi
  if [ "$result" = success ] && [ "$code" = 0 ] && [ "$good" = 1 ] &&
    awk "BEGIN{exit !($secs < 30)}"; then
    check stop PASS "exit 0 in $secs s (TimeoutStopSec=30s); $detail"
  else
    check stop FAIL "result $result, status $code, $secs s; $detail"
  fi

  # --- hardware watchdog: softdog, the udev rule, DeviceAllow=, magic close --------------------
  if systemd-detect-virt --container -q; then
    check hw-watchdog SKIP "a container cannot load softdog into the host's kernel"
  elif modprobe softdog 2>/tmp/softdog.err && wait_for 20 test -c /dev/watchdog0; then
    udevadm settle
    grp=$(stat -c '%G:%a' /dev/watchdog0)
    write_config /dev/watchdog0 0 1 2 4
    m_hw=$(mark)
    systemctl start hikwatch
    pid=$(main_pid)
    held=$(ls -l "/proc/$pid/fd" 2>/dev/null | grep -c '/dev/watchdog0' || true)
    wait_for 60 all_online cam-0 cam-1 cam-2 || true
    systemctl stop hikwatch
    sleep 2
    # softdog logs "Unexpected close, not stopping watchdog!" when the holder closes
    # without writing the magic 'V' first.
    unexpected=$(journalctl -k --no-pager -o cat --since "@$m_hw" | grep -c -i 'unexpected close' || true)
    if [ "$grp" = "hikwatch:660" ] && [ "$held" -ge 1 ] && [ "$unexpected" = 0 ]; then
      check hw-watchdog PASS "/dev/watchdog0 $grp (udev rule), held by the daemon (fd), magic close on stop"
    else
      check hw-watchdog FAIL "node $grp, held $held, unexpected closes $unexpected"
    fi
  else
    check hw-watchdog FAIL "modprobe softdog: $(cat /tmp/softdog.err)"
  fi

  # --- reboot with a camera in auth-hold -------------------------------------------------------
  write_config "" 0 1 2 4
  systemctl enable -q hikwatch
  systemctl start hikwatch
  wait_for 120 sh -c "[ \"\$(hikwatch status --json -c $CONF | grep -o '\"id\":\"cam-4\",\"state\":\"[a-z-]*\"')\" = '\"id\":\"cam-4\",\"state\":\"$CAM4_STATE\"' ]" || true
  attempts4=$(cam_field cam-4 login_attempts)
  state4=$(cam_state cam-4)
  echo "$state4 $attempts4" > "$H/before-reboot"
  systemctl stop hikwatch # flushes the state file
  if [ -s "$STATE" ] && ! grep -aqF -e "$PASSWORD" -e "$WRONG" "$STATE"; then
    check state-no-password PASS "$STATE ($(stat -c %s "$STATE") bytes) holds neither password"
  else
    check state-no-password FAIL "state file missing or holds a password"
  fi
  journalctl -b --no-pager -u hikwatch -u simcam > "$H/journal-boot1.txt" 2>&1
  echo 2 > "$H/phase"
  sync
  say "rebooting (cam-4 $state4, $attempts4 attempts)"
  systemctl reboot
  exit 0
fi

if [ "$phase" = 2 ]; then
  read -r state_b attempts_b < "$H/before-reboot"
  # hikwatch is enabled: it starts at boot after simcam.
  wait_for 180 sh -c 'systemctl is-active -q hikwatch' || true
  wait_for 120 all_online cam-0 cam-1 cam-2 || true
  state_a=$(cam_state cam-4)
  attempts_a=$(cam_field cam-4 login_attempts)
  if [ "$SDK_KIND" != vendor ]; then
    check reboot-state SKIP "no auth-hold with the C stand-in; after the reboot cam-4 is $state_a (before: $state_b), the state file was read"
  elif [ "$state_b" = auth-hold ] && [ "$state_a" = auth-hold ] && [ "$attempts_a" = "$attempts_b" ]; then
    check reboot-state PASS "after the reboot cam-4 is $state_a with $attempts_a attempts (before: $state_b, $attempts_b); others $(cam_state cam-0)"
  else
    check reboot-state FAIL "before $state_b/$attempts_b, after $state_a/$attempts_a"
  fi

  # --- remove stops the service, purge removes the state -------------------------------------
  dpkg -r hikwatch > /tmp/dpkg-r.log 2>&1
  if ! systemctl is-active -q hikwatch && [ ! -e /usr/bin/hikwatch ] && [ -e "$STATE" ] &&
    [ -e "$CONF" ]; then
    check pkg-remove PASS "dpkg -r stopped the service; state and conffile kept"
  else
    check pkg-remove FAIL "active=$(systemctl is-active hikwatch) $(tail -n2 /tmp/dpkg-r.log | tr '\n' ' ')"
  fi
  dpkg -P hikwatch > /tmp/dpkg-p.log 2>&1
  if [ ! -e /var/lib/hikwatch ] && [ ! -e "$CONF" ] && [ ! -e "$CRED" ]; then
    check pkg-purge PASS "dpkg -P removed /var/lib/hikwatch, the conffile and the credentials"
  else
    check pkg-purge FAIL "left: $(ls -d /var/lib/hikwatch "$CONF" "$CRED" 2>/dev/null | tr '\n' ' ')"
  fi
  journalctl --no-pager -u hikwatch -u simcam > "$H/journal-all-boots.txt" 2>&1
  echo done > "$H/phase"
  say "done"
  systemctl poweroff
fi
