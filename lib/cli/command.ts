/**
 * What every command of `pose-storage` is made of: its flags (node:util parseArgs), its help, and a run that
 * returns an outcome; lib/cli/pose-storage.ts turns outcomes and errors into exit statuses. Human output goes to
 * stdout, `[Storage]` log lines (JSON) to stderr.
 */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import type { ConfigError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Env } from '../operations/config.ts';
import type { Progress, ProgressReporter } from '../operations/progress.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: Env;
  /** Calls `handler` on Ctrl-C (SIGINT) until the returned function is called. */
  onInterrupt?: (handler: () => void) => () => void;
}

/** How a command ended: done, something failed (listed), or stopped by Ctrl-C. */
export type Outcome = 'ok' | 'failed' | 'interrupted';

export interface Context {
  io: CliIo;
  /** A line of human output (stdout). */
  out(line?: string): void;
  logger: Logger;
  /** While a progress bar is drawn, log lines go through it so that they do not tear it. */
  showProgress(reporter: ProgressReporter<Progress> | undefined): void;
}

/**
 * A configuration error as `npm run dev` and `pose-storage` print it: one problem on one line; several as an
 * indented list under one heading, one line each naming its variable.
 */
export function formatConfigError(error: ConfigError): string {
  const lines = error.problems.map(({ variable, problem }) => `${variable} ${problem}`);
  return lines.length === 1 ? `Configuration error: ${lines[0]}` : `Configuration error (${lines.length} problems):\n${lines.map((line) => `  ${line}`).join('\n')}`;
}

/** A mistake in the command line: printed as one line, exit status 2. */
export class UsageError extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;
export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  /** One line for the main help. */
  summary: string;
  /** Parses its own flags (`--help` prints its help) and runs. */
  run(args: readonly string[], context: Context): Promise<Outcome>;
}

export interface CommandDefinition {
  name: string;
  summary: string;
  help: string;
  options: OptionSpec;
  run(values: Values, context: Context): Promise<Outcome>;
}

export function defineCommand(definition: CommandDefinition): Command {
  return {
    name: definition.name,
    summary: definition.summary,
    async run(args, context) {
      const values = parseFlags(definition.name, definition.options, args);
      if (values.help) {
        context.out(definition.help);
        return 'ok';
      }
      return definition.run(values, context);
    },
  };
}

/** Parses a command's flags; unknown or malformed flags become a UsageError naming the flag. */
function parseFlags(command: string, spec: OptionSpec, args: readonly string[]): Values {
  try {
    const { values } = parseArgs({
      args: [...args],
      options: { ...spec, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    return values as Values;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = error instanceof Error ? error.message : String(error);
    const named = /'([^' ]+)/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${named ?? message}`);
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw new UsageError(`unexpected argument "${named ?? ''}" (${command} takes options only)`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new UsageError(/does not take/.test(message) ? `option ${named} takes no value` : `option ${named} needs a value`);
    }
    throw new UsageError(message);
  }
}

export const json = (value: unknown): string => JSON.stringify(value, null, 2);

/** The value of a required flag that is one of `choices`. */
export function choose<T extends string>(flag: string, value: unknown, choices: readonly T[]): T {
  if (value === undefined) throw new UsageError(`--${flag} is required (${choices.join(' or ')})`);
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be ${choices.join(' or ')} (got "${String(value)}")`);
  }
  return value as T;
}

export function wholeNumber(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return Number(value);
}

export async function isDirectory(directory: string): Promise<boolean> {
  try {
    return (await stat(directory)).isDirectory();
  } catch {
    return false;
  }
}

/** Local mode with no UPLOAD_PATH directory: every figure is zero, most likely because of a typo. Say so. */
export async function warnIfNoUploadPath({ logger }: Context, config: Config): Promise<void> {
  if (config.storageMode === 'local' && !(await isDirectory(config.uploadPath))) {
    logger.warn(`[Storage] UPLOAD_PATH is not a directory: ${config.uploadPath} (nothing stored there yet)`, { uploadPath: config.uploadPath });
  }
}

/**
 * How long a temporary file may go unmodified before a writer takes it for a dead writer's: far longer than any
 * write (a streamed upload touches its file with every chunk, and Node's HTTP server ends a request after 5 minutes).
 */
export const STALE_TEMPORARY_FILE_MS = 60 * 60 * 1000;

/**
 * Every command that writes to a directory store first removes what writers killed mid-write left in its
 * `.tmp/` (a `migrate` killed with SIGKILL, say). Nothing to do for a bucket.
 */
export async function removeStaleTemporaryFiles(store: ObjectStore, logger: Logger): Promise<void> {
  if (!(store instanceof DirectoryStore)) return;
  const removed = await store.removeStaleTemporaryFiles(STALE_TEMPORARY_FILE_MS);
  if (removed.files > 0) {
    logger.info(`[Storage] Removed ${removed.files} temporary file(s) left by writers that stopped mid-write`, {
      files: removed.files,
      bytes: removed.bytes,
    });
  }
}
