import { cleanupGenerations, type OldGeneration } from '../../operations/cleanup.ts';
import { describeLocation, parseOperationsConfig } from '../../operations/config.ts';
import { formatBytes, parseDuration } from '../../operations/format.ts';
import { createServices } from '../../services.ts';
import { defineCommand, json, removeStaleTemporaryFiles, UsageError, warnIfNoUploadPath } from '../command.ts';

export const cleanupCommand = defineCommand({
  name: 'cleanup',
  summary: 'delete generations whose newest file is older than a duration',
  help: `Usage: pose-storage cleanup --older-than 30d [--dry-run] [--json]

Deletes every generation (its poses/, staging/, records/, locks/ and backups/ files, each pose under its
lock) whose newest file is older than the duration, in the configured store. A generation that receives a
file meanwhile is kept. In local mode, first removes the temporary files that a writer killed mid-write
left in UPLOAD_PATH/.tmp/.

Options:
  --older-than D       a duration: 12h, 30d, 2w (units s, m, h, d, w) (required)
  --dry-run            list what would be deleted; delete nothing
  --json               print JSON
  -h, --help           this help

Exit status: 0 done, 1 some generation could not be deleted, 2 bad usage or configuration.`,
  options: { 'older-than': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
  async run(values, context) {
    const { io, out, logger } = context;
    const olderThan = values['older-than'];
    if (typeof olderThan !== 'string') throw new UsageError('--older-than is required (e.g. --older-than 30d)');
    let olderThanMs: number;
    try {
      olderThanMs = parseDuration(olderThan);
    } catch (error) {
      throw new UsageError(`--older-than: ${(error as Error).message}`);
    }
    const dryRun = values['dry-run'] === true;
    const asJson = values.json === true;
    const config = parseOperationsConfig(io.env);
    await warnIfNoUploadPath(context, config);
    const { storage } = createServices({ config, logger });
    if (!dryRun) await removeStaleTemporaryFiles(storage.store, logger);
    if (!asJson) {
      const location = describeLocation(config.storageMode, config, config.r2);
      out(`Cleanup of ${config.storageMode} store (${location}): generations older than ${olderThan}${dryRun ? ' (dry run: nothing is deleted)' : ''}`);
    }
    const line = (generation: OldGeneration) => {
      const verb = generation.deleted ? 'deleted' : generation.error ? 'FAILED' : 'would delete';
      const why = generation.error ? `: ${generation.error}` : '';
      out(`  ${verb.padEnd(13)}${generation.generationId}  ${generation.files} files, ${formatBytes(generation.bytes)}, newest ${generation.newest}${why}`);
    };
    const result = await cleanupGenerations({ storage, olderThanMs, dryRun, logger, ...(!asJson && { onGeneration: line }) });
    const outcome = result.failed > 0 ? 'failed' : 'ok';
    if (asJson) {
      out(json(result));
      return outcome;
    }
    const files = result.old.reduce((sum, g) => sum + g.files, 0);
    const bytes = result.old.reduce((sum, g) => sum + g.bytes, 0);
    out();
    if (dryRun) {
      out(`Would delete ${result.old.length} of ${result.scanned} generation(s) (${files} files, ${formatBytes(bytes)}); ${result.kept} kept (a file newer than ${result.cutoff}).`);
    } else {
      out(
        `Deleted ${result.old.length - result.failed} of ${result.scanned} generation(s) (${result.deletedFiles} files, ${formatBytes(result.deletedBytes)}); ` +
          `${result.kept} kept (a file newer than ${result.cutoff})${result.failed > 0 ? `; ${result.failed} failed` : ''}.`,
      );
    }
    return outcome;
  },
});
