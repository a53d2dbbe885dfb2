/**
 * Configuration of the operations tool (`pose-storage`). It reads the service's own variables with the
 * service's own parser (lib/config.ts), so every error names the variable exactly as the service would, with
 * two differences that fit a tool run by an operator, not an HTTP API:
 *
 * - API_TOKEN is never needed (and never read): only the HTTP handlers use it. The parser requires it in r2
 *   mode, so a placeholder stands in for it while parsing; it is dropped from the result and never printed.
 * - `migrate` reaches the bucket from the R2_* variables whatever STORAGE_MODE says (a migration runs while
 *   the service is still in local mode).
 */
import { parseConfig, type Config, type R2Config } from '../config.ts';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { createStore } from '../storage/stores.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { uploadPathProblem } from '../upload-path.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** Stands in for API_TOKEN while parsing (the parser wants one in r2 mode); never used, never shown. */
const PLACEHOLDER_TOKEN = 'pose-storage-operations-placeholder';

/**
 * The service's configuration from `env`, without API_TOKEN (see above). Throws a ConfigError naming the variable,
 * also for an UPLOAD_PATH the command would use (`directory`; by default, in local mode) that cannot hold files.
 */
export function parseOperationsConfig(env: Env, directory?: boolean): Config {
  const config = parseConfig({ ...env, API_TOKEN: PLACEHOLDER_TOKEN });
  const uploadPath = (directory ?? config.storageMode === 'local') ? uploadPathProblem(config.uploadPath) : undefined;
  if (uploadPath) throw new ConfigError([uploadPath]);
  return { ...config, apiTokens: [] };
}

/**
 * The bucket's configuration from the R2_* variables, whatever STORAGE_MODE is. `purpose` replaces the
 * parser's "when STORAGE_MODE=r2" in error messages (e.g. "for --to r2").
 */
function parseR2Config(env: Env, purpose: string): R2Config {
  try {
    return parseConfig({ ...env, STORAGE_MODE: 'r2', API_TOKEN: PLACEHOLDER_TOKEN }).r2!;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.problems.map(({ variable, problem }) => ({ variable, problem: problem.replace('when STORAGE_MODE=r2', purpose) })));
  }
}

/**
 * migrate's two configurations, the service's (UPLOAD_PATH, ...) and the bucket's, with every problem of either
 * in one ConfigError: a variable at fault in both is named once.
 */
export function parseMigrationConfig(env: Env, purpose: string): { config: Config; r2: R2Config } {
  const problems: ConfigProblem[] = [];
  const collect = <T>(parse: () => T): T | undefined => {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems.filter(({ variable }) => !problems.some((known) => known.variable === variable)));
      return undefined;
    }
  };
  const config = collect(() => parseOperationsConfig(env, true)); // one side is UPLOAD_PATH's directory
  const r2 = collect(() => parseR2Config(env, purpose));
  if (!config || !r2) throw new ConfigError(problems);
  return { config, r2 };
}

export type Side = 'local' | 'r2';

/** The directory of UPLOAD_PATH (local) or the bucket (r2), as a store. */
export function storeOf(side: Side, config: Config, r2: R2Config | undefined): ObjectStore {
  if (side === 'r2' && !r2) throw new Error('storeOf("r2") needs the R2 configuration');
  return createStore(config, side === 'r2' ? r2 : undefined);
}

/** Where a side's files are, for people: the directory, or the bucket and the endpoint's host (no credentials). */
export function describeLocation(side: Side, config: Config, r2: R2Config | undefined): string {
  if (side === 'r2' && r2) return `bucket ${r2.bucketName} at ${new URL(r2.endpoint).host}`;
  return config.uploadPath;
}
