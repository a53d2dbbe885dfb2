/**
 * `npm run dev`: the whole service on this machine, no cloud account, no configuration (see .env.example
 * for what can be set; a `.env` in the working directory is read when there is one). Stops cleanly on Ctrl-C /
 * SIGTERM: in-flight uploads and thumbnails finish (requests still open after the shutdown deadline are cut
 * off), and anything not yet processed stays staged for the next start.
 */
import { ConfigError, PoseStorageError, type ConfigProblem } from '../errors.ts';
import { parseConfig, type Config } from '../config.ts';
import { startLocalServer } from '../local/server.ts';
import { createLogger } from '../logger.ts';
import { uploadPathProblem } from '../upload-path.ts';
import { formatConfigError } from './command.ts';
import { loadDotEnv } from './env-file.ts';

try {
  loadDotEnv();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(formatConfigError(error));
  process.exit(2);
}
const logger = createLogger();
let config: Config | undefined;
// The local server runs local mode only. r2 is refused along with every other problem, in one report, and the
// rest is judged as local mode would judge it (r2's own variables, which it would never use, are not asked for).
const wantsR2 = process.env.STORAGE_MODE?.trim() === 'r2';
const problems: ConfigProblem[] = wantsR2
  ? [{ variable: 'STORAGE_MODE', problem: 'must be "local" for the local server (npm run dev); r2 mode runs on Lambda' }]
  : [];
try {
  config = parseConfig(wantsR2 ? { ...process.env, STORAGE_MODE: 'local' } : process.env);
  const uploadPath = uploadPathProblem(config.uploadPath);
  if (uploadPath) problems.push(uploadPath);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  problems.push(...error.problems);
}
if (!config || problems.length > 0) {
  console.error(formatConfigError(new ConfigError(problems)));
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
