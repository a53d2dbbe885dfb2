# Shared by start-rgw.sh and stop-rgw.sh (sourced): where the RGW's state is, and which processes are ours.
state="${POSE_STORAGE_RGW_DIR:-${TMPDIR:-/tmp}/pose-storage-rgw}"
daemons=(mon.a osd.0 client.rgw.a)

log() { echo "rgw: $*" >&2; }

# The pid in "$state/run/$1.pid" when that process is alive and is one of ours (its command line names our
# configuration file), else nothing.
pid_of() {
  local file="$state/run/$1.pid" pid
  [ -s "$file" ] || return 1
  pid="$(cat "$file")"
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$state/ceph.conf" || return 1
  echo "$pid"
}

