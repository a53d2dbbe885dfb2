import { publishedCacheControl, STAGING_PREFIX } from '../../layout.ts';
import { describeLocation, parseMigrationConfig, storeOf, type Side } from '../../operations/config.ts';
import { formatBytes, formatDuration } from '../../operations/format.ts';
import { DEFAULT_MIGRATE_CONCURRENCY, MAX_MIGRATE_CONCURRENCY, migrate, readFirst, type MigrationProgress, type MigrationResult } from '../../operations/migrate.ts';
import { createProgressReporter } from '../../operations/progress.ts';
import { choose, defineCommand, isDirectory, json, removeStaleTemporaryFiles, UsageError, wholeNumber, type Outcome } from '../command.ts';

const SIDES = ['local', 'r2'] as const;

export const migrateCommand = defineCommand({
  name: 'migrate',
  summary: 'copy the published files and pose records (poses/, records/) from the directory to the bucket, or back',
  help: `Usage: pose-storage migrate --from local --to r2 [--dry-run] [--verify] [--concurrency N] [--json]

Copies every published file (poses/) and every pose record (records/, which the status reads) from
UPLOAD_PATH to the bucket of R2_* under the same keys, or back with --from r2 --to local: poses/ first,
then records/. Published files get Content-Type by extension and the service's Cache-Control
(CACHE_MAX_AGE_SECONDS). The bucket is reached from the R2_* variables whatever STORAGE_MODE says.
Staged uploads are not copied: process them first where they are ("pose-storage verify --repair").

Resumable: objects already in the target with the same size and MD5 are skipped, so running it again
after an interruption or a failure copies only the rest. Ctrl-C stops starting new copies, lets the ones
in flight finish and prints the summary (exit status 130). Into a directory, it first removes the
temporary files that a writer killed mid-write left in UPLOAD_PATH/.tmp/.

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
  async run(values, context): Promise<Outcome> {
    const { io, out, logger } = context;
    const from: Side = choose('from', values.from, SIDES);
    const to: Side = choose('to', values.to, SIDES);
    if (from === to) throw new UsageError(`--from and --to are both "${from}": migrate copies between local and r2`);
    const concurrency =
      typeof values.concurrency === 'string' ? wholeNumber('concurrency', values.concurrency, 1, MAX_MIGRATE_CONCURRENCY) : DEFAULT_MIGRATE_CONCURRENCY;
    const dryRun = values['dry-run'] === true;
    const verify = values.verify === true;
    const asJson = values.json === true;

    const { config, r2 } = parseMigrationConfig(io.env, `for --${from === 'r2' ? 'from' : 'to'} r2`);
    if (from === 'local' && !(await isDirectory(config.uploadPath))) {
      throw new Error(`nothing to migrate: UPLOAD_PATH ${config.uploadPath} is not a directory`);
    }
    const source = storeOf(from, config, r2);
    const target = storeOf(to, config, r2);
    if (!dryRun) await removeStaleTemporaryFiles(target, logger);

    if (!asJson) {
      out(`Migrating poses/ and records/ from ${from} (${describeLocation(from, config, r2)}) to ${to} (${describeLocation(to, config, r2)})`);
      out(`  concurrency ${concurrency}${verify ? ', verifying every copy' : ''}${dryRun ? ', dry run: nothing is written' : ''}`);
    }
    if (await readFirst(source.list(STAGING_PREFIX))) {
      logger.warn(`[Storage] The source has staged uploads, which migrate does not copy: run "pose-storage verify --repair" there to process them`);
    }
    const reporter = asJson
      ? undefined
      : createProgressReporter<MigrationProgress>({
          stream: io.stdout,
          noun: 'files',
          describe: ({ copied, skipped, failed, dryRun: dry }) => `${copied.files} ${dry ? 'to copy' : 'copied'}, ${skipped.files} skipped, ${failed.files} failed`,
        });
    context.showProgress(reporter);

    const controller = new AbortController();
    const stopListening = io.onInterrupt?.(() => {
      if (controller.signal.aborted) return;
      controller.abort();
      const line = 'Interrupted: finishing the copies in flight (Ctrl-C again to quit at once)...';
      if (reporter && io.stderr.isTTY) reporter.log(line);
      else io.stderr.write(`${line}\n`);
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
        ...(reporter && { onProgress: (progress: MigrationProgress) => reporter.update(progress) }),
      });
    } finally {
      stopListening?.();
      reporter?.finish();
      context.showProgress(undefined);
    }

    const outcome: Outcome = result.failed.files > 0 ? 'failed' : result.aborted ? 'interrupted' : 'ok';
    if (asJson) {
      out(json({ from, to, ...result, elapsedMs: Math.round(result.elapsedMs) }));
      return outcome;
    }
    const row = (label: string, tally: { files: number; bytes: number }, note = '') =>
      `  ${label.padEnd(13)}${String(tally.files).padStart(7)} files  ${formatBytes(tally.bytes).padStart(10)}${note ? `  ${note}` : ''}`;
    out();
    out(`Migration ${result.aborted ? 'interrupted' : 'finished'} in ${formatDuration(result.elapsedMs)}${dryRun ? ' (dry run: nothing was written)' : ''}`);
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
    return outcome;
  },
});
