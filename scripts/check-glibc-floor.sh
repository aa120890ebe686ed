#!/usr/bin/env bash
# Checks that ELF binaries run on a glibc as old as FLOOR: every symbol version they
# need from glibc (readelf's version-needs section: GLIBC_2.x) must be <= FLOOR. Works for
# any architecture (readelf reads foreign ELF files). Prints the highest version each
# binary needs and its NEEDED libraries; exits 1 naming the first binary above the floor.
# Usage: scripts/check-glibc-floor.sh FLOOR BINARY...     e.g. 2.17 target/*/release/hikwatch
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 FLOOR BINARY..." >&2; exit 2; }
floor="$1"
shift
status=0
for bin in "$@"; do
  [ -f "$bin" ] || { echo "check-glibc-floor: $bin: no such file" >&2; exit 1; }
  versions=$(readelf -V -W "$bin" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -uV)
  if [ -z "$versions" ]; then
    echo "check-glibc-floor: $bin needs no versioned glibc symbol (static or not glibc?)" >&2
    status=1
    continue
  fi
  highest=$(tail -n1 <<<"$versions")
  needed=$(readelf -d -W "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  if [ "$(printf '%s\n%s\n' "$highest" "$floor" | sort -V | tail -n1)" != "$floor" ]; then
    echo "check-glibc-floor: FAIL $bin needs GLIBC_$highest > $floor (NEEDED: $needed)" >&2
    readelf --dyn-syms -W "$bin" | grep -o "[A-Za-z0-9_]*@GLIBC_$highest" | sort -u | head -5 >&2
    status=1
  else
    echo "check-glibc-floor: ok $bin: highest GLIBC_$highest <= $floor, $(stat -c %s "$bin") bytes, NEEDED: $needed"
  fi
done
exit $status
