#!/usr/bin/env bash
# `npm run test:rgw`: starts the test RGW (test/rgw/start-rgw.sh, installing Ceph when missing), runs the S3
# tests against it (test/vitest.rgw.config.ts; arguments go to vitest, e.g. one file), then stops the RGW if
# this run started it. An RGW already running (started by hand with start-rgw.sh) is used and left running.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=test/rgw/common.sh
. "$here/common.sh"

started_here=0
bash "$here/start-rgw.sh" --status >/dev/null || started_here=1
stop() {
  if [ "$started_here" = 1 ]; then bash "$here/stop-rgw.sh"; fi
}
trap stop EXIT
trap 'exit 130' INT TERM HUP
bash "$here/start-rgw.sh" >/dev/null

set -a
# shellcheck disable=SC1091
. "$state/rgw.env"
set +a
cd "$here/../.."
vitest run --config test/vitest.rgw.config.ts "$@"
