#!/usr/bin/env bash
# Type-checks sst.config.ts, infra/ (and the Workers) against SST's real platform types, offline.
#
#   bash test/typecheck-sst.sh        (npm run typecheck:sst)
#
# 1. `sst install` writes .sst/platform/ (the platform sources and config.d.ts with the providers of
#    sst.config.ts). It needs no cloud account, only the npm registry for the provider packages; it runs
#    when config.d.ts is missing or stale (a provider missing, another sst version). It evaluates app() for
#    a stage that deploys to R2, so both providers (aws, cloudflare) are installed.
# 2. tsc checks test/tsconfig.sst.json: the project's strict options, but bundler module resolution, as
#    the platform's own tsconfig uses. (Under nodenext, the extension-less imports of .sst/platform/src
#    do not resolve, and skipLibCheck hides that: `sst` and `$config` silently become `any`.)
# 3. The platform ships TypeScript sources, not declarations, so skipLibCheck does not cover them and they
#    do not pass our strict flags; their diagnostics are dropped (silently), ours are not. A canary file of
#    deliberate mistakes (each under @ts-expect-error) proves the platform types were really loaded: were
#    they `any`, the directives would be unused, and the check would fail.
set -euo pipefail

cd "$(dirname "$0")/.."
platform=.sst/platform
tsc=node_modules/.bin/tsc
[[ -x $tsc ]] || { echo "typecheck-sst: $tsc not found; run npm ci first" >&2; exit 2; }

sst_version=$(node_modules/.bin/node -p 'require("./node_modules/sst/package.json").version')
stale=""
if [[ ! -f $platform/config.d.ts ]]; then
  stale="no $platform/config.d.ts"
elif [[ "$(cat "$platform/version" 2>/dev/null)" != "$sst_version" ]]; then
  stale="platform $(cat "$platform/version" 2>/dev/null || echo '?') is not sst $sst_version"
elif ! grep -q '@pulumi/cloudflare' "$platform/config.d.ts"; then
  stale="the cloudflare provider is not installed"
fi
if [[ -n $stale ]]; then
  echo "typecheck-sst: sst install ($stale)"
  SST_NO_BUN=1 SST_SKIP_DEPENDENCY_CHECK=1 SST_TELEMETRY_DISABLED=1 SST_STAGE=typecheck POSE_STORAGE_TARGET=r2 \
    node_modules/.bin/sst install
fi

cat > .sst/typecheck-canary.ts <<'EOF'
/// <reference path="./platform/config.d.ts" />
// Written by test/typecheck-sst.sh. Each statement is a deliberate mistake: if the platform types did not
// load, the @ts-expect-error directives would be unused, which is itself an error.
// @ts-expect-error not a Lambda runtime
new sst.aws.Function('CanaryRuntime', { handler: 'functions/status.handler', runtime: 'nodejs99.x' });
// @ts-expect-error not an SST component
new sst.cloudflare.NoSuchComponent('CanaryComponent');
// @ts-expect-error R2 event notifications need a queue
new cloudflare.R2BucketEventNotification('CanaryNotification', { bucketName: 'b', rules: [] });
// @ts-expect-error app() must return a name
$config({ app: () => ({ home: 'aws' }), run: async () => {} });
EOF

output=$("$tsc" -p test/tsconfig.sst.json --pretty false 2>&1) && status=0 || status=$?

# Keep every diagnostic (first line and its indented continuation) not located in the platform's sources.
ours=$(printf '%s\n' "$output" | awk '/^[^ ]/ { keep = ($0 !~ /^\.sst\/platform\//) } keep && NF')
ignored=$(printf '%s\n' "$output" | grep -c '^\.sst/platform/.*error TS' || true)

if [[ -n $ours ]]; then
  printf '%s\n' "$ours"
  echo "typecheck-sst: FAILED against the sst $sst_version platform types (errors in .sst/typecheck-canary.ts mean the platform types did not load)" >&2
  exit 1
fi
if [[ $status -ne 0 && $ignored -eq 0 ]]; then
  printf '%s\n' "$output"
  echo "typecheck-sst: tsc failed (exit $status)" >&2
  exit 1
fi
echo "typecheck-sst: OK (sst $sst_version platform types)"
