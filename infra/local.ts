/**
 * Stage `local`: `npx sst dev --stage local` (npm run dev:sst) starts the local server (`npm run dev`: the same
 * handlers on a directory, see README: Local mode) in sst's dev window. Nothing else is declared: no provider, no
 * account, nothing remote. The server reads its settings from `.env` as `npm run dev` does; only the mode is
 * forced, so that a `.env` left in r2 mode cannot make stage `local` talk to a bucket.
 */
export function localServer(): sst.x.DevCommand {
  return new sst.x.DevCommand('LocalServer', {
    dev: { command: 'npm run dev', autostart: true, title: 'pose-storage (local)' },
    environment: { STORAGE_MODE: 'local' },
  });
}
