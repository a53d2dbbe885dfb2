#!/usr/bin/env bash
# Starts a throwaway Ceph RADOS Gateway (RGW) on 127.0.0.1 for the S3 tests (`npm run test:rgw`): one mon, one
# OSD on memstore (objects in RAM, bounded by RGW_MEMSTORE_BYTES), pool size 1, no mgr, no cephx, and radosgw
# on a free port, all state in one directory. Installs Debian's radosgw, ceph-mon, ceph-osd and ceph-common
# with apt-get when they are missing.
#
# Idempotent: when an RGW that this script started is still running (its state directory below, its daemons
# alive, its endpoint answering), it is reused and nothing is started. test/rgw/stop-rgw.sh stops it.
#
# Prints the environment that selects it (S3_TEST_BACKEND=rgw, S3_TEST_RGW_ENDPOINT, the S3 user's keys) on
# stdout, and writes the same to "$state/rgw.env"; test/support/s3-server.ts reads either. Progress goes to
# stderr. With --status it only says whether one is running (exit 0) or not (exit 1), and changes nothing.
#
# Environment:
#   POSE_STORAGE_RGW_DIR  the state directory (default "${TMPDIR:-/tmp}/pose-storage-rgw")
#   RGW_MEMSTORE_BYTES    the OSD's memstore size in bytes (default 1 GiB): the most RAM the stored objects take
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=test/rgw/common.sh
. "$here/common.sh"
memstore_bytes="${RGW_MEMSTORE_BYTES:-$((1024 * 1024 * 1024))}"
# The S3 user's keys: fixed, a throwaway cluster on 127.0.0.1 only.
access_key='POSESTORAGERGWTEST01'
secret_key='pose-storage-rgw-test-secret-0123456789'
uid='pose-storage-test'

running() {
  [ -s "$state/rgw.env" ] || return 1
  local daemon
  for daemon in "${daemons[@]}"; do pid_of "$daemon" >/dev/null || return 1; done
  local endpoint
  endpoint="$(sed -n 's/^S3_TEST_RGW_ENDPOINT=//p' "$state/rgw.env")"
  curl -fsS -o /dev/null --max-time 5 "$endpoint/"
}

if [ "${1:-}" = "--status" ]; then
  if running; then
    cat "$state/rgw.env"
    exit 0
  fi
  exit 1
fi

# One start at a time (two test runs starting at once would both start one in the same directory). The daemons
# are started without this descriptor, or they would hold the lock for as long as they run.
mkdir -p "$(dirname "$state")"
exec 9>"$state.lock"
flock -w 300 9 || { log "another start-rgw.sh has held $state.lock for 5 minutes"; exit 1; }

if running; then
  log "reusing the RGW already running from $state"
  cat "$state/rgw.env"
  exit 0
fi

# --- install -----------------------------------------------------------------------------------------------
missing=()
for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian's Ceph packages (missing: ${missing[*]})"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: install radosgw ceph-mon ceph-osd ceph-common curl"; exit 1; }
    sudo=(sudo)
  fi
  started_install=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt_log="$(mktemp)"
  if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd ceph-common curl; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    log "apt-get failed"
    exit 1
  fi
  rm -f "$apt_log"
  log "installed in $((SECONDS - started_install)) s"
fi

# --- a fresh state directory (left over by one that died: stop whatever of it still runs) -----------------------
if [ -d "$state" ]; then
  bash "$here/stop-rgw.sh" >&2 || true
fi
rm -rf "$state"
mkdir -p "$state"/{run,log,mon,osd,rgw}
started=$SECONDS

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
mon_port="$(free_port)"
rgw_port="$(free_port)"
while [ "$rgw_port" = "$mon_port" ]; do rgw_port="$(free_port)"; done
fsid="$(cat /proc/sys/kernel/random/uuid)"
conf="$state/ceph.conf"

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv6 = false
# No cephx anywhere; radosgw's own defaults would still ask for it and for a secure mon session, and hang.
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
run dir = $state/run
pid file = $state/run/\$name.pid
log file = $state/log/\$name.log
log to stderr = false
err to stderr = true
mon cluster log file = $state/log/cluster.log
# One OSD: pools of one copy, placement across OSDs (not hosts), no autoscaler (it needs a mgr).
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1

[mon]
admin socket = $state/run/\$name.asok
# Commit map changes at once (the default batches them for a second): radosgw's first start creates its pools
# one after the other, two map changes each.
paxos propose interval = 0.05
paxos min wait = 0.01
mon data = $state/mon/\$cluster-\$id
mon initial members = a

[osd]
admin socket = $state/run/\$name.asok
osd data = $state/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $memstore_bytes
osd max object size = 134217728

[client.rgw.a]
admin socket = $state/run/\$name.asok
rgw data = $state/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw thread pool size = 64
# RGW pushes each ObjectCreated event to the tests' sink inside the PUT that made it: a push that stops moving
# would hold that PUT for curl's default 300 s. Abandoned after 5 s instead (the PUT succeeds all the same).
rgw curl low speed time = 5
EOF
export CEPH_CONF="$conf"

fail() {
  log "$1; the logs are in $state/log:"
  tail -n 20 "$state"/log/*.log >&2 2>/dev/null || true
  bash "$here/stop-rgw.sh" --keep >&2 || true
  exit 1
}

# --- mon ---------------------------------------------------------------------------------------------------
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$state/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$state/monmap" >"$state/log/mkfs-mon.out" 2>&1 || fail "ceph-mon --mkfs failed"
ceph-mon -c "$conf" -i a 9>&- 2>>"$state/log/daemons.err" || fail "ceph-mon did not start"
ceph -c "$conf" --connect-timeout 30 -s >/dev/null || fail "the mon does not answer"

# --- osd ---------------------------------------------------------------------------------------------------
osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
osd_id="$(ceph -c "$conf" osd new "$osd_uuid")"
[ "$osd_id" = 0 ] || fail "the new OSD is osd.$osd_id, not osd.0"
mkdir -p "$state/osd/ceph-$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$state/log/mkfs-osd.out" 2>&1 || fail "ceph-osd --mkfs failed"
ceph-osd -c "$conf" -i "$osd_id" 9>&- 2>>"$state/log/daemons.err" || fail "ceph-osd did not start"
for _ in $(seq 1 60); do
  ceph -c "$conf" osd dump 2>/dev/null | grep -q "^osd\.$osd_id up" && break
  sleep 0.5
done
ceph -c "$conf" osd dump | grep -q "^osd\.$osd_id up" || fail "osd.$osd_id did not come up"

# --- radosgw -----------------------------------------------------------------------------------------------
radosgw -c "$conf" -n client.rgw.a 9>&- 2>>"$state/log/daemons.err" || fail "radosgw did not start"
endpoint="http://127.0.0.1:$rgw_port"
for _ in $(seq 1 240); do
  curl -fsS -o /dev/null --max-time 2 "$endpoint/" 2>/dev/null && break
  pid_of client.rgw.a >/dev/null || fail "radosgw exited"
  sleep 0.25
done
curl -fsS -o /dev/null --max-time 2 "$endpoint/" || fail "radosgw does not answer on $endpoint"

radosgw-admin -c "$conf" -n client.admin user create --uid="$uid" --display-name="pose-storage tests" \
  --access-key="$access_key" --secret-key="$secret_key" >"$state/log/user-create.out" 2>&1 || fail "radosgw-admin user create failed"

cat >"$state/rgw.env" <<EOF
S3_TEST_BACKEND=rgw
S3_TEST_RGW_ENDPOINT=$endpoint
S3_TEST_RGW_ACCESS_KEY_ID=$access_key
S3_TEST_RGW_SECRET_ACCESS_KEY=$secret_key
EOF
log "started in $((SECONDS - started)) s: $endpoint (state in $state; stop it with test/rgw/stop-rgw.sh)"
cat "$state/rgw.env"
