#!/usr/bin/env bash
# Stops the RGW that test/rgw/start-rgw.sh started (radosgw, then the OSD, then the mon: only the processes
# whose pid files are in its state directory and whose command line names its configuration) and removes the
# state directory. Does nothing when none is running. --keep leaves the state directory (and its logs) in place.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=test/rgw/common.sh
. "$here/common.sh"

[ -d "$state" ] || exit 0
stopped=()
for daemon in client.rgw.a osd.0 mon.a; do
  pid="$(pid_of "$daemon")" || continue
  kill -TERM "$pid" 2>/dev/null || continue
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$daemon ($pid) did not stop in 10 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  stopped+=("$daemon")
done
[ "${1:-}" = "--keep" ] || rm -rf "$state"
[ ${#stopped[@]} -eq 0 ] || log "stopped ${stopped[*]}"
