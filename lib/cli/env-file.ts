import { existsSync } from 'node:fs';

/**
 * Loads `.env` from the working directory when there is one, as `node --env-file-if-exists=.env` would, but
 * without the "not found" notice Node prints on every start without it. Variables already set in the
 * environment (even to an empty value) win over the file. Every entry point of lib/cli calls it first.
 */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file);
}
