#!/usr/bin/env node
/**
 * pose-storage: the operations tool, for both modes, on the library's storage interface.
 *
 *   npx pose-storage migrate --from local --to r2 [--dry-run] [--verify] [--concurrency N] [--json]
 *   npx pose-storage usage [--by-generation] [--json]
 *   npx pose-storage verify [--repair] [--json]
 *   npx pose-storage cleanup --older-than 30d [--dry-run] [--json]
 *   npx pose-storage health [--min-free-mb 100] [--json]
 *   npx pose-storage smoke [--quiet]
 *
 * Human output goes to stdout, `[Storage]` log lines (JSON) to stderr. Exit status: 0 done, 1 something failed
 * (listed), 2 bad usage or configuration (one line naming the flag or variable), 130 interrupted.
 * The logic lives in lib/operations/*; this file parses arguments, prints, and picks the exit status.
 */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseConfig, type Config, type R2Config } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { publishedCacheControl } from '../layout.ts';
import { createLogger, type Logger } from '../logger.ts';
import { cleanupGenerations, type OldGeneration } from '../operations/cleanup.ts';
import { describeLocation, parseOperationsConfig, parseR2Config, storeOf, type Env, type Side } from '../operations/config.ts';
import { formatBytes, formatDuration, parseDuration, renderTable } from '../operations/format.ts';
import { checkHealth, configurationFailure, DEFAULT_MIN_FREE_BYTES, type HealthReport } from '../operations/health.ts';
import { DEFAULT_MIGRATE_CONCURRENCY, MAX_MIGRATE_CONCURRENCY, migrate, type MigrationResult } from '../operations/migrate.ts';
import { createProgressReporter, type ProgressReporter } from '../operations/progress.ts';
import { AREAS, measureUsage, type UsageReport } from '../operations/usage.ts';
import { stagingMaxAgeMs, verifyStore, type Finding, type VerifyResult } from '../operations/verify.ts';
import { createServices } from '../services.ts';
import { createStore } from '../stores.ts';
import { loadDotEnv } from './env-file.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(text: string): unknown };
  env: Env;
  /** Calls `handler` on Ctrl-C (SIGINT) until the returned function is called. */
  onInterrupt?: (handler: () => void) => () => void;
}

/** A mistake in the command line: printed as one line, exit status 2. */
class UsageError extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type Values = Record<string, string | boolean | undefined>;

interface Context {
  io: CliIo;
  command: string;
  /** A line of human output (stdout). */
  out(line?: string): void;
  logger: Logger;
  /** Set while a progress bar is drawn, so log lines do not tear it. */
  progress: ProgressReporter | undefined;
}

interface Command {
  summary: string;
  help: string;
  options: OptionSpec;
  run(context: Context, values: Values): Promise<number>;
}

const CONFIGURATION_HELP = `Configuration comes from the environment (and ./.env when present), as for the service: STORAGE_MODE,
UPLOAD_PATH, R2_* (see .env.example). API_TOKEN is not needed, except by health in r2 mode (it checks the
service's whole configuration).`;

const COMMANDS: Record<string, Command> = {
  migrate: {
    summary: 'copy the published files (poses/) from the local directory to the bucket, or back',
    help: `Usage: pose-storage migrate --from local --to r2 [--dry-run] [--verify] [--concurrency N] [--json]

Copies every published file (poses/) from UPLOAD_PATH to the bucket of R2_* under the same keys
(Content-Type by extension, Cache-Control "public, max-age=31536000, immutable"), or back with
--from r2 --to local. The bucket is reached from the R2_* variables whatever STORAGE_MODE says.

Resumable: objects already in the target with the same size and MD5 are skipped, so running it again
after an interruption or a failure copies only the rest. Ctrl-C stops starting new copies, lets the ones
in flight finish and prints the summary (exit status 130).

Options:
  --from local|r2      where the files are (required)
  --to r2|local        where they go (required)
  --dry-run            compare and report what would be copied; write nothing
  --verify             read every copied object back and compare its bytes
  --concurrency N      copies at a time, 1-${MAX_MIGRATE_CONCURRENCY} (default ${DEFAULT_MIGRATE_CONCURRENCY})
  --json               print the summary as JSON (no progress)
  -h, --help           this help

Exit status: 0 all copied or already there, 1 some failed (listed), 2 bad usage or configuration,
130 interrupted.`,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      'dry-run': { type: 'boolean' },
      verify: { type: 'boolean' },
      concurrency: { type: 'string' },
      json: { type: 'boolean' },
    },
    run: runMigrate,
  },
  usage: {
    summary: 'files, bytes and poses in the store, optionally per generation',
    help: `Usage: pose-storage usage [--by-generation] [--json]

Counts the files and bytes of the configured store (STORAGE_MODE) by area (poses/, staging/,
records/, other) and the poses (a published image, with or without its thumbnail). Streams through
the listing: nothing but counters is kept.

Options:
  --by-generation      also per generation: poses, files, bytes, newest file
  --json               print JSON
  -h, --help           this help`,
    options: { 'by-generation': { type: 'boolean' }, json: { type: 'boolean' } },
    run: runUsage,
  },
  verify: {
    summary: 'find (and --repair) missing or broken thumbnails, orphan thumbnails, stale staging objects',
    help: `Usage: pose-storage verify [--repair] [--json]

Checks the configured store: every image has a thumbnail, every thumbnail is a decodable 400x400 PNG and
has its image, no staging object is older than UPLOAD_URL_TTL_SECONDS + 1 hour; rejection records are
listed as notices. Generation by generation, in key order.

Options:
  --repair             render missing and broken thumbnails again from the image, remove orphan
                       thumbnails and stale staging objects (rejection records are kept)
  --json               print the findings and counts as JSON
  -h, --help           this help

Exit status: 0 no problem left, 1 problems left (listed), 2 bad usage or configuration.`,
    options: { repair: { type: 'boolean' }, json: { type: 'boolean' } },
    run: runVerify,
  },
  cleanup: {
    summary: 'delete generations whose newest file is older than a duration',
    help: `Usage: pose-storage cleanup --older-than 30d [--dry-run] [--json]

Deletes every generation (its poses/, staging/, records/, locks/ and backups/ files) whose newest file is older than
the duration, in the configured store. A generation that receives a file meanwhile is kept.

Options:
  --older-than D       a duration: 12h, 30d, 2w (units s, m, h, d, w) (required)
  --dry-run            list what would be deleted; delete nothing
  --json               print JSON
  -h, --help           this help

Exit status: 0 done, 1 some generation could not be deleted, 2 bad usage or configuration.`,
    options: { 'older-than': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
    run: runCleanup,
  },
  health: {
    summary: 'configuration, store reachable and writable, free disk space (local mode)',
    help: `Usage: pose-storage health [--min-free-mb 100] [--json]

Checks that the configuration is valid (the service's: in r2 mode that includes API_TOKEN), that the
store answers and is writable (a probe object health/probe-<uuid> is written, read back and removed) and,
in local mode, that UPLOAD_PATH's file system has at least --min-free-mb free.

Options:
  --min-free-mb N      free space threshold in MB, local mode (default ${DEFAULT_MIN_FREE_BYTES / 1024 / 1024})
  --json               print JSON
  -h, --help           this help

Exit status: 0 healthy, 1 unhealthy, 2 bad usage or invalid configuration.`,
    options: { 'min-free-mb': { type: 'string' }, json: { type: 'boolean' } },
    run: runHealth,
  },
  smoke: {
    summary: 'the smoke test (npm run smoke): save, verify and delete a pose',
    help: `Usage: pose-storage smoke [--quiet]

Runs the smoke test against the configured store: initialization, save with thumbnail, verify the files,
delete, error handling. Prints PASS/FAIL per check.

Options:
  --quiet              no log lines
  -h, --help           this help

Exit status: 0 all passed, 1 a check failed, 2 bad usage or configuration.`,
    options: { quiet: { type: 'boolean' } },
    run: runSmokeCommand,
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return `Usage: pose-storage <command> [options]

Operations on the pose store, in local mode (a directory) and r2 mode (an S3-compatible bucket).

Commands:
${lines.join('\n')}

Run "pose-storage <command> --help" for a command's options.

${CONFIGURATION_HELP}

Output: results on stdout; [Storage] log lines (JSON) on stderr. Exit status: 0 done, 1 failed or
unhealthy, 2 bad usage or configuration, 130 interrupted.`;
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

/** Runs the tool; returns the exit status. Never calls process.exit. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  let progress: ProgressReporter | undefined;
  const logger = createLogger((line) => {
    const write = () => io.stderr.write(`${line}\n`);
    if (progress) progress.interrupt(write);
    else write();
  });
  if (name === undefined) {
    io.stderr.write(`${mainHelp()}\n`);
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? args[0] : undefined;
    const command = topic !== undefined && Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
    if (topic !== undefined && !command) return usageFailure(io, 'pose-storage', `unknown command "${topic}"`);
    io.stdout.write(`${command ? command.help : mainHelp()}\n`);
    return EXIT.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    const hint = name.startsWith('-') ? 'a command comes first' : `commands: ${Object.keys(COMMANDS).join(', ')}`;
    return usageFailure(io, 'pose-storage', `unknown command "${name}" (${hint})`);
  }

  const context: Context = {
    io,
    command: name,
    out: (line = '') => io.stdout.write(`${line}\n`),
    logger,
    get progress() {
      return progress;
    },
    set progress(reporter) {
      progress = reporter;
    },
  };
  try {
    const values = parseFlags(name, command.options, args);
    if (values.help) {
      io.stdout.write(`${command.help}\n`);
      return EXIT.ok;
    }
    return await command.run(context, values);
  } catch (error) {
    progress?.finish();
    progress = undefined;
    if (error instanceof UsageError) return usageFailure(io, `pose-storage ${name}`, error.message);
    if (error instanceof ConfigError) {
      io.stderr.write(`Configuration error: ${error.message}\n`);
      return EXIT.usage;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`pose-storage ${name}: ${message}\n`);
    return EXIT.failed;
  }
}

function usageFailure(io: CliIo, who: string, message: string): number {
  const helpCommand = who === 'pose-storage' ? 'pose-storage --help' : `${who} --help`;
  io.stderr.write(`${who}: ${message}. See "${helpCommand}".\n`);
  return EXIT.usage;
}

const json = (value: unknown): string => JSON.stringify(value, null, 2);

function choose(flag: string, value: unknown, choices: readonly string[]): string {
  if (value === undefined) throw new UsageError(`--${flag} is required (${choices.join(' or ')})`);
  if (typeof value !== 'string' || !choices.includes(value)) throw new UsageError(`--${flag} must be ${choices.join(' or ')} (got "${String(value)}")`);
  return value;
}

function wholeNumber(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return Number(value);
}

// ----------------------------------------------------------------------------------------------- migrate

async function runMigrate(context: Context, values: Values): Promise<number> {
  const { io, out, logger } = context;
  const from = choose('from', values.from, ['local', 'r2']) as Side;
  const to = choose('to', values.to, ['local', 'r2']) as Side;
  if (from === to) throw new UsageError(`--from and --to are both "${from}": migrate copies between local and r2`);
  const concurrency =
    typeof values.concurrency === 'string' ? wholeNumber('concurrency', values.concurrency, 1, MAX_MIGRATE_CONCURRENCY) : DEFAULT_MIGRATE_CONCURRENCY;
  const dryRun = values['dry-run'] === true;
  const verify = values.verify === true;
  const asJson = values.json === true;

  const config = parseOperationsConfig(io.env);
  const r2: R2Config = parseR2Config(io.env, `for --${from === 'r2' ? 'from' : 'to'} r2`);
  if (from === 'local' && !(await isDirectory(config.uploadPath))) {
    throw new Error(`nothing to migrate: UPLOAD_PATH ${config.uploadPath} is not a directory`);
  }
  const source = storeOf(from, config, r2);
  const target = storeOf(to, config, r2);

  if (!asJson) {
    out(`Migrating poses/ from ${from} (${describeLocation(from, config, r2)}) to ${to} (${describeLocation(to, config, r2)})`);
    out(`  concurrency ${concurrency}${verify ? ', verifying every copy' : ''}${dryRun ? ', dry run: nothing is written' : ''}`);
  }
  const reporter = asJson
    ? undefined
    : createProgressReporter({ tty: io.stdout.isTTY === true, write: (text) => io.stdout.write(text), columns: io.stdout.columns || 80 });
  context.progress = reporter;

  const controller = new AbortController();
  const stopListening = io.onInterrupt?.(() => {
    if (controller.signal.aborted) return;
    controller.abort();
    const say = () => io.stderr.write('Interrupted: finishing the copies in flight (Ctrl-C again to quit at once)...\n');
    if (reporter) reporter.interrupt(say);
    else say();
  });
  let result: MigrationResult;
  try {
    result = await migrate({
      source,
      target,
      from,
      to,
      dryRun,
      verify,
      concurrency,
      cacheControl: publishedCacheControl(config.cacheMaxAgeSeconds),
      signal: controller.signal,
      logger,
      ...(reporter && { onProgress: (progress) => reporter.update(progress) }),
    });
  } finally {
    stopListening?.();
    reporter?.finish();
    context.progress = undefined;
  }

  const status = result.failed.files > 0 ? EXIT.failed : result.aborted ? EXIT.interrupted : EXIT.ok;
  if (asJson) {
    out(json({ from, to, ...result, elapsedMs: Math.round(result.elapsedMs) }));
    return status;
  }
  const row = (label: string, tally: { files: number; bytes: number }, note = '') =>
    `  ${label.padEnd(13)}${String(tally.files).padStart(7)} files  ${formatBytes(tally.bytes).padStart(9)}${note ? `  ${note}` : ''}`;
  out();
  out(
    `Migration ${result.aborted ? 'interrupted' : 'finished'} in ${formatDuration(result.elapsedMs)}${dryRun ? ' (dry run: nothing was written)' : ''}`,
  );
  out(row(dryRun ? 'would copy' : 'copied', result.copied));
  out(row('skipped', result.skipped, 'already in the target (same size and MD5)'));
  if (result.vanished.files > 0) out(row('vanished', result.vanished, 'deleted from the source meanwhile'));
  out(row('failed', result.failed));
  if (verify && !dryRun) out(row('verified', result.verified, 'read back and byte-identical'));
  out(row('total', result.total));
  if (result.failures.length > 0) {
    out();
    out(`Failed (${result.failed.files}):`);
    for (const failure of result.failures) out(`  ${failure.key}: ${failure.reason}`);
    if (result.failed.files > result.failures.length) out(`  ... and ${result.failed.files - result.failures.length} more (see the log lines)`);
    out('Run the same command again to retry them: what is already copied is skipped.');
  } else if (result.aborted) {
    out(`Interrupted after ${result.done.files} of ${result.total.files} files: run the same command again to resume.`);
  }
  return status;
}

/** Local mode with no UPLOAD_PATH directory: every figure is zero, most likely because of a typo. Say so. */
async function warnIfNoUploadPath({ logger }: Context, config: Config): Promise<void> {
  if (config.storageMode === 'local' && !(await isDirectory(config.uploadPath))) {
    logger.warn(`[Storage] UPLOAD_PATH is not a directory: ${config.uploadPath} (nothing stored there yet)`, { uploadPath: config.uploadPath });
  }
}

async function isDirectory(directory: string): Promise<boolean> {
  try {
    return (await stat(directory)).isDirectory();
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------- usage

async function runUsage(context: Context, values: Values): Promise<number> {
  const { io, out } = context;
  const config = parseOperationsConfig(io.env);
  await warnIfNoUploadPath(context, config);
  const report = await measureUsage(createStore(config), { byGeneration: values['by-generation'] === true });
  const location = describeLocation(config.storageMode, config, config.r2);
  if (values.json === true) {
    out(json({ mode: config.storageMode, location, ...report }));
    return EXIT.ok;
  }
  out(`Storage usage, ${config.storageMode} mode (${location})`);
  out();
  out(printUsage(report));
  return EXIT.ok;
}

function printUsage(report: UsageReport): string {
  const areaRows = AREAS.map((area) => [area === 'other' ? 'other' : `${area}/`, String(report.areas[area].files), formatBytes(report.areas[area].bytes)]);
  const lines = [
    renderTable(['area', 'files', 'bytes'], [...areaRows, ['total', String(report.files), formatBytes(report.bytes)]], ['left', 'right', 'right']),
    '',
    `poses: ${report.poses} (thumbnails: ${report.thumbnails})`,
  ];
  if (report.generations) {
    lines.push('');
    if (report.generations.length === 0) lines.push('no generations');
    else {
      lines.push(
        renderTable(
          ['generation', 'poses', 'files', 'bytes', 'newest file'],
          report.generations.map((g) => [g.generationId, String(g.poses), String(g.files), formatBytes(g.bytes), g.newest]),
          ['left', 'right', 'right', 'right', 'left'],
        ),
      );
    }
  }
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------------------ verify

/** Findings kept for --json; more are counted, not listed. */
const MAX_JSON_FINDINGS = 10_000;

const KIND_LABELS: Record<Finding['kind'], string> = {
  missing_thumbnail: 'missing thumbnail',
  broken_thumbnail: 'broken thumbnail',
  orphan_thumbnail: 'orphan thumbnail',
  stale_staging: 'stale staging',
  rejection_record: 'rejection record',
};

async function runVerify(context: Context, values: Values): Promise<number> {
  const { io, out, logger } = context;
  const repair = values.repair === true;
  const asJson = values.json === true;
  const config = parseOperationsConfig(io.env);
  await warnIfNoUploadPath(context, config);
  const findings: Finding[] = [];
  if (!asJson) out(`Verifying ${config.storageMode} store (${describeLocation(config.storageMode, config, config.r2)})${repair ? ', repairing' : ''}`);
  const result: VerifyResult = await verifyStore({
    store: createStore(config),
    cacheControl: publishedCacheControl(config.cacheMaxAgeSeconds),
    maxInputPixels: config.maxInputPixels,
    stagingMaxAgeMs: stagingMaxAgeMs(config.uploadUrlTtlSeconds),
    repair,
    logger,
    onFinding: (finding) => {
      if (asJson) {
        if (findings.length < MAX_JSON_FINDINGS) findings.push(finding);
        return;
      }
      const outcome = !finding.problem ? '' : finding.repaired ? '  -> repaired' : finding.repairError ? `  -> repair failed: ${finding.repairError}` : '';
      out(`  ${(finding.problem ? KIND_LABELS[finding.kind] : `note: ${KIND_LABELS[finding.kind]}`).padEnd(24)}${finding.key}: ${finding.detail}${outcome}`);
    },
  });
  const status = result.unrepaired > 0 ? EXIT.failed : EXIT.ok;
  if (asJson) {
    out(json({ mode: config.storageMode, ...result, findings, findingsListed: findings.length }));
    return status;
  }
  const { checked } = result;
  out();
  out(
    `Checked ${checked.generations} generation(s), ${checked.poses} pose(s), ${checked.thumbnails} thumbnail(s), ` +
      `${checked.stagingObjects} staging object(s), ${checked.rejectionRecords} rejection record(s).`,
  );
  const kinds = (Object.keys(KIND_LABELS) as Finding['kind'][]).filter((kind) => kind !== 'rejection_record' && result.found[kind] > 0);
  const breakdown = kinds.map((kind) => `${result.found[kind]} ${KIND_LABELS[kind]}`).join(', ');
  if (result.problems === 0) out('No problems found.');
  else if (repair) out(`${result.problems} problem(s) (${breakdown}): ${result.problems - result.unrepaired} repaired, ${result.unrepaired} left.`);
  else out(`${result.problems} problem(s) (${breakdown}). Run "pose-storage verify --repair" to fix them.`);
  return status;
}

// ----------------------------------------------------------------------------------------------- cleanup

async function runCleanup(context: Context, values: Values): Promise<number> {
  const { io, out, logger } = context;
  if (typeof values['older-than'] !== 'string') throw new UsageError('--older-than is required (e.g. --older-than 30d)');
  let olderThanMs: number;
  try {
    olderThanMs = parseDuration(values['older-than']);
  } catch (error) {
    throw new UsageError(`--older-than: ${(error as Error).message}`);
  }
  const dryRun = values['dry-run'] === true;
  const asJson = values.json === true;
  const config = parseOperationsConfig(io.env);
  await warnIfNoUploadPath(context, config);
  const { storage } = createServices({ config, logger });
  if (!asJson) {
    out(`Cleanup of ${config.storageMode} store (${describeLocation(config.storageMode, config, config.r2)}): generations older than ${values['older-than']}${dryRun ? ' (dry run: nothing is deleted)' : ''}`);
  }
  const line = (generation: OldGeneration) => {
    const verb = generation.deleted ? 'deleted' : generation.error ? 'FAILED' : 'would delete';
    const why = generation.error ? `: ${generation.error}` : '';
    out(`  ${verb.padEnd(13)}${generation.generationId}  ${generation.files} files, ${formatBytes(generation.bytes)}, newest ${generation.newest}${why}`);
  };
  const result = await cleanupGenerations({ storage, olderThanMs, dryRun, logger, ...(!asJson && { onGeneration: line }) });
  const status = result.failed > 0 ? EXIT.failed : EXIT.ok;
  if (asJson) {
    out(json(result));
    return status;
  }
  const files = result.old.reduce((sum, g) => sum + g.files, 0);
  const bytes = result.old.reduce((sum, g) => sum + g.bytes, 0);
  out();
  if (dryRun) out(`Would delete ${result.old.length} of ${result.scanned} generation(s) (${files} files, ${formatBytes(bytes)}); ${result.kept} kept (a file newer than ${result.cutoff}).`);
  else {
    out(
      `Deleted ${result.old.length - result.failed} of ${result.scanned} generation(s) (${result.deletedFiles} files, ${formatBytes(result.deletedBytes)}); ` +
        `${result.kept} kept (a file newer than ${result.cutoff})${result.failed > 0 ? `; ${result.failed} failed` : ''}.`,
    );
  }
  return status;
}

// ------------------------------------------------------------------------------------------------ health

async function runHealth(context: Context, values: Values): Promise<number> {
  const { io, logger } = context;
  const minFreeBytes =
    typeof values['min-free-mb'] === 'string' ? wholeNumber('min-free-mb', values['min-free-mb'], 0, 1_000_000_000) * 1024 * 1024 : DEFAULT_MIN_FREE_BYTES;
  const asJson = values.json === true;
  let config: Config;
  try {
    config = parseConfig(io.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    printHealth(context, configurationFailure(error), asJson);
    io.stderr.write(`Configuration error: ${error.message}\n`);
    return EXIT.usage;
  }
  const report = await checkHealth({ config, store: createStore(config), minFreeBytes });
  if (report.status !== 'healthy') {
    logger.warn(`[Storage] Health check failed: ${report.checks.filter((check) => !check.ok).map((check) => check.name).join(', ')}`);
  }
  printHealth(context, report, asJson, describeLocation(config.storageMode, config, config.r2));
  return report.status === 'healthy' ? EXIT.ok : EXIT.failed;
}

function printHealth({ out }: Context, report: HealthReport, asJson: boolean, location?: string): void {
  if (asJson) {
    out(json({ ...report, ...(location !== undefined && { location }) }));
    return;
  }
  out(`${report.status === 'healthy' ? 'Healthy' : 'Unhealthy'}${report.mode ? `: ${report.mode} mode (${location})` : ''}`);
  for (const check of report.checks) {
    const about = check.ok ? (check.reason ?? '') : (check.detail ?? check.reason ?? '');
    out(`  ${(check.ok ? 'ok' : 'FAIL').padEnd(6)}${check.name.padEnd(17)}${String(check.ms).padStart(5)} ms  ${about}`.trimEnd());
  }
}

// ------------------------------------------------------------------------------------------------- smoke

async function runSmokeCommand(context: Context, values: Values): Promise<number> {
  const { io, out, logger } = context;
  const config = parseOperationsConfig(io.env);
  const { runSmoke } = await import('./smoke.ts');
  const { storage } = createServices({ config, logger: values.quiet === true ? createLogger(() => undefined) : logger });
  const { failed } = await runSmoke({ storage, config, write: out });
  return failed > 0 ? EXIT.failed : EXIT.ok;
}

// ------------------------------------------------------------------------------------------ direct run

/**
 * A stream whose reader may go away (`pose-storage usage | head`): the command still runs to its end (a
 * migration or a repair is not cut off halfway), and what it would still print is dropped.
 */
function guarded(stream: NodeJS.WriteStream): CliIo['stdout'] {
  let closed = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    closed = true;
  });
  return {
    write: (text: string) => closed || stream.write(text),
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
  };
}

if (import.meta.main) {
  loadDotEnv();
  let interrupts = 0;
  const status = await main(process.argv.slice(2), {
    stdout: guarded(process.stdout),
    stderr: guarded(process.stderr),
    env: process.env,
    onInterrupt(handler) {
      const listener = () => {
        if (++interrupts > 1) process.exit(EXIT.interrupted);
        handler();
      };
      process.on('SIGINT', listener);
      return () => process.off('SIGINT', listener);
    },
  });
  process.exitCode = status;
}
