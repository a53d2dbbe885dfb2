/**
 * `pose-storage cleanup --older-than 30d`: deletes whole generations (poses/, staging/, records/, locks/ and backups/ of the
 * generation, through PoseStorage.deleteGeneration) whose newest file is older than the cutoff.
 *
 * The areas are listed page by page and only counters are kept per generation (files, bytes, newest
 * modification). Before a generation is deleted its files are listed again: one that received a file since
 * the scan is kept. Then each pose is deleted under its lock, and only when every object of it, read under
 * that lock, is older than the cutoff (PoseStorage.deleteGeneration's `olderThan`): an upload acknowledged and
 * published while cleanup runs is never deleted, and neither is the pose it belongs to.
 */
import { AREAS, generationPrefixes, ID_PATTERN } from '../layout.ts';
import type { Logger } from '../logger.ts';
import type { PoseStorage } from '../pose-storage.ts';

export interface CleanupOptions {
  storage: PoseStorage;
  /** Generations whose newest file is older than this (ms) are deleted. */
  olderThanMs: number;
  /** Default: the current time. */
  now?: Date;
  /** Report what would be deleted; delete nothing. */
  dryRun?: boolean;
  /** Called for each old generation once it is deleted (or would be, in a dry run), or failed. */
  onGeneration?: (generation: OldGeneration) => void;
  logger?: Logger;
}

export interface OldGeneration {
  generationId: string;
  files: number;
  bytes: number;
  /** Newest modification of its files (ISO 8601). */
  newest: string;
  /** Deleted (false in a dry run, on failure, or when it changed since the scan). */
  deleted: boolean;
  /** Poses of it kept because they changed while it was being deleted (an upload published meanwhile). */
  keptPoses?: number;
  /** Why it was not deleted: a failure, or "changed since the scan". */
  error?: string;
}

export interface CleanupResult {
  dryRun: boolean;
  cutoff: string;
  /** Generations seen in any area. */
  scanned: number;
  /** Old generations: deleted, would be deleted (dry run), or failed. */
  old: OldGeneration[];
  /** Generations with a file newer than the cutoff. */
  kept: number;
  deletedFiles: number;
  deletedBytes: number;
  failed: number;
}

interface Counters {
  files: number;
  bytes: number;
  newest: number;
}

/** Files, bytes and newest modification of every generation (or of `only`), from the three areas. */
async function scanGenerations(storage: PoseStorage, prefixes: readonly string[]): Promise<Map<string, Counters>> {
  const generations = new Map<string, Counters>();
  for (const prefix of prefixes) {
    for await (const object of storage.store.list(prefix)) {
      const generationId = object.key.split('/')[1] ?? '';
      if (!ID_PATTERN.test(generationId)) continue;
      let counters = generations.get(generationId);
      if (!counters) generations.set(generationId, (counters = { files: 0, bytes: 0, newest: 0 }));
      counters.files++;
      counters.bytes += object.size;
      counters.newest = Math.max(counters.newest, object.lastModified.getTime());
    }
  }
  return generations;
}

export async function cleanupGenerations(options: CleanupOptions): Promise<CleanupResult> {
  const { storage, logger } = options;
  const dryRun = options.dryRun ?? false;
  if (!Number.isFinite(options.olderThanMs) || options.olderThanMs <= 0) throw new RangeError('olderThanMs must be a positive duration');
  const cutoff = (options.now ?? new Date()).getTime() - options.olderThanMs;
  const generations = await scanGenerations(storage, AREAS);
  const result: CleanupResult = {
    dryRun,
    cutoff: new Date(cutoff).toISOString(),
    scanned: generations.size,
    old: [],
    kept: 0,
    deletedFiles: 0,
    deletedBytes: 0,
    failed: 0,
  };
  logger?.info(`[Storage] Cleanup started: generations older than ${result.cutoff}`, { cutoff: result.cutoff, dryRun });

  const ids = [...generations.keys()].sort();
  for (const generationId of ids) {
    const scanned = generations.get(generationId)!;
    if (scanned.newest >= cutoff) {
      result.kept++;
      continue;
    }
    let counters = scanned;
    const old: OldGeneration = { generationId, files: 0, bytes: 0, newest: '', deleted: false };
    if (!dryRun) {
      // Look again right before deleting: an upload may have arrived since the scan.
      counters = (await scanGenerations(storage, generationPrefixes(generationId))).get(generationId) ?? { files: 0, bytes: 0, newest: 0 };
      if (counters.newest >= cutoff) {
        result.kept++;
        logger?.info(`[Storage] Cleanup kept generation: ${generationId} (changed since the scan)`, { generationId });
        continue;
      }
      const deleted = await storage.deleteGeneration(generationId, { olderThan: new Date(cutoff) });
      if (deleted.ok) {
        old.deleted = true;
        if (deleted.keptPoses) {
          old.keptPoses = deleted.keptPoses;
          logger?.info(`[Storage] Cleanup kept ${deleted.keptPoses} pose(s) of generation ${generationId} (changed while it was deleted)`, {
            generationId,
            keptPoses: deleted.keptPoses,
          });
        }
        result.deletedFiles += deleted.deletedCount;
        result.deletedBytes += counters.bytes;
      } else {
        old.error = deleted.error.message;
        result.failed++;
      }
    }
    old.files = counters.files;
    old.bytes = counters.bytes;
    old.newest = new Date(counters.newest).toISOString();
    result.old.push(old);
    options.onGeneration?.(old);
  }

  logger?.[result.failed > 0 ? 'warn' : 'info'](`[Storage] Cleanup finished: ${result.old.length} old generation(s)`, {
    dryRun,
    old: result.old.length,
    kept: result.kept,
    failed: result.failed,
    deletedFiles: result.deletedFiles,
  });
  return result;
}
