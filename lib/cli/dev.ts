/**
 * `npm run dev`: the whole service on this machine, no cloud account, no configuration (see .env.example
 * for what can be set; a `.env` in the working directory is read when there is one). Stops cleanly on Ctrl-C /
 * SIGTERM: in-flight uploads and thumbnails finish (requests still open after the shutdown deadline are cut
 * off), and anything not yet processed stays staged for the next start.
 */
import { ConfigError, PoseStorageError } from '../errors.ts';
import { parseConfig } from '../config.ts';
import { startLocalServer } from '../local/server.ts';
import { createLogger } from '../logger.ts';
import { loadDotEnv } from './env-file.ts';

loadDotEnv();
const logger = createLogger();
let config;
try {
  config = parseConfig(process.env);
  if (config.storageMode !== 'local') throw new ConfigError('STORAGE_MODE', 'must be "local" for the local server (npm run dev); r2 mode runs on Lambda');
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`Configuration error: ${error.message}`);
  process.exit(2);
}

if (config.apiTokens.length === 0) {
  logger.warn('[Storage] API_TOKEN is unset: the local API asks for no token and listens on loopback only');
}
const { port } = config;
const server = await startLocalServer({ config }).catch((error: unknown) => {
  if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    const other = port === 65535 ? port - 1 : port + 1;
    console.error(`Port ${port} is already in use: stop the other process or set PORT=${other} (PORT=0 picks a free port)`);
    process.exit(1);
  }
  if (!(error instanceof PoseStorageError)) throw error;
  console.error(`Cannot start the local server: ${error.message}`);
  process.exit(1);
});
console.log(`\n  pose-storage is running: open ${server.url}/\n  files in ${config.uploadPath}\n`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(130); // a second Ctrl-C: do not wait
    stopping = true;
    logger.info(`[Storage] ${signal}: finishing in-flight uploads, then stopping`);
    void server.close().then(() => process.exit(0));
  });
}
