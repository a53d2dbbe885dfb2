/**
 * `pose-storage migrate`: copies every published file (`poses/`) and every pose record (`records/`, which the
 * status reads) from one store to another under the same keys (local directory -> R2 bucket, or back), with
 * bounded concurrency. `poses/` is copied first, then `records/`: a record is started only after the files it describes.
 * Staged uploads, locks and backups belong to work in progress and stay where they are.
 *
 * Resumable: an object already in the target with the same size and MD5 is skipped. The MD5 is the store's
 * ETag where it keeps one (S3/R2 single-part uploads); otherwise (a directory, a multipart ETag) the bytes are
 * read and hashed. So an interrupted run, run again, copies only what is missing or different.
 *
 * Streaming: the source is listed twice (once to count files and bytes for the progress, once to copy) and
 * never held whole; only the first failures are kept for the report.
 */
import { createHash } from 'node:crypto';
import { PUBLIC_PREFIX, RECORDS_PREFIX } from '../layout.ts';
import type { Logger } from '../logger.ts';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.ts';
import { forEachConcurrent } from '../concurrency.ts';
import type { Progress, Tally } from './progress.ts';

/** What migrate copies, in this order. */
const MIGRATED_PREFIXES = [PUBLIC_PREFIX, RECORDS_PREFIX] as const;

export const DEFAULT_MIGRATE_CONCURRENCY = 8;
export const MAX_MIGRATE_CONCURRENCY = 64;
/** Failures listed in the result; more are counted, not listed. */
export const MAX_LISTED_FAILURES = 1000;

export interface MigrateOptions {
  source: ObjectStore;
  target: ObjectStore;
  /** Cache-Control of the published copies (the service's, from CACHE_MAX_AGE_SECONDS). */
  cacheControl: string;
  /** Names of the two sides for logs ("local", "r2"). */
  from: string;
  to: string;
  /** Compare, count and report, but write nothing. */
  dryRun?: boolean;
  /** Read every copied object back and compare its bytes with the source's. */
  verify?: boolean;
  /** Copies at a time; default 8. */
  concurrency?: number;
  /** Stops starting new copies; the ones in flight finish, and the result says `aborted`. */
  signal?: AbortSignal;
  /** Called once the totals are known, then after every object. */
  onProgress?: (progress: MigrationProgress) => void;
  logger?: Logger;
}

export type { Tally };

/** `done` counts the objects finished so far, whatever the outcome. */
export interface MigrationProgress extends Progress {
  /** A dry run: `copied` counts what would be copied. */
  dryRun: boolean;
  copied: Tally;
  skipped: Tally;
  failed: Tally;
}

export interface MigrationFailure {
  key: string;
  reason: string;
}

export interface MigrationResult extends MigrationProgress {
  verify: boolean;
  /** Interrupted through the signal: run again to copy the rest. */
  aborted: boolean;
  /** Copied objects whose bytes were read back and matched (with `verify`). */
  verified: Tally;
  /** Listed, but gone from the source when their turn came (deleted meanwhile): not an error. */
  vanished: Tally;
  /** The first MAX_LISTED_FAILURES failures. */
  failures: MigrationFailure[];
}

/** Content-Type of a published file, by its extension (the layout's files are PNGs). */
export function contentTypeOf(key: string): string {
  const extension = /\.([A-Za-z0-9]+)$/.exec(key)?.[1]?.toLowerCase();
  switch (extension) {
    case 'png':
      return 'image/png';
    case 'jpg':
    case 'jpeg':
      return 'image/jpeg';
    case 'webp':
      return 'image/webp';
    case 'json':
      return 'application/json';
    default:
      return 'application/octet-stream';
  }
}

const md5 = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');

/** The ETag when it is a plain MD5 digest (not a multipart "<md5>-<parts>" one). */
function md5Etag(info: ObjectInfo | undefined): string | undefined {
  const etag = info?.etag?.toLowerCase();
  return etag && /^[0-9a-f]{32}$/.test(etag) ? etag : undefined;
}

/** Reads the first object of a listing (one request): throws if the store cannot be listed. */
export async function readFirst(listing: AsyncIterable<ObjectInfo>): Promise<ObjectInfo | undefined> {
  const iterator = listing[Symbol.asyncIterator]();
  try {
    const first = await iterator.next();
    return first.done ? undefined : first.value;
  } finally {
    await iterator.return?.();
  }
}

const tally = (): Tally => ({ files: 0, bytes: 0 });
const add = (into: Tally, bytes: number) => {
  into.files++;
  into.bytes += bytes;
};

export async function migrate(options: MigrateOptions): Promise<MigrationResult> {
  const { source, target, from, to, logger, signal, onProgress } = options;
  const dryRun = options.dryRun ?? false;
  const verify = options.verify ?? false;
  const concurrency = options.concurrency ?? DEFAULT_MIGRATE_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_MIGRATE_CONCURRENCY) {
    throw new RangeError(`concurrency must be a whole number from 1 to ${MAX_MIGRATE_CONCURRENCY} (got ${concurrency})`);
  }
  const started = performance.now();
  const result: MigrationResult = {
    dryRun,
    verify,
    aborted: false,
    total: tally(),
    done: tally(),
    copied: tally(),
    skipped: tally(),
    failed: tally(),
    vanished: tally(),
    verified: tally(),
    failures: [],
    elapsedMs: 0,
  };
  const progress = (): void => {
    result.elapsedMs = performance.now() - started;
    onProgress?.({
      dryRun,
      total: { ...result.total },
      done: { ...result.done },
      copied: { ...result.copied },
      skipped: { ...result.skipped },
      failed: { ...result.failed },
      elapsedMs: result.elapsedMs,
    });
  };

  // Pre-flight: a missing bucket or a refused credential fails here, once, not once per object.
  await readFirst(target.list(PUBLIC_PREFIX));
  for (const prefix of MIGRATED_PREFIXES) for await (const object of source.list(prefix)) add(result.total, object.size);
  logger?.info(`[Storage] Migration started: ${result.total.files} files from ${from} to ${to}`, {
    from,
    to,
    files: result.total.files,
    bytes: result.total.bytes,
    dryRun,
    verify,
    concurrency,
  });
  progress();

  /** Whether the target already holds exactly these bytes (same size and MD5). */
  const alreadyThere = async (object: ObjectInfo, existing: ObjectInfo | undefined, readSource: () => Promise<Buffer | undefined>) => {
    if (!existing || existing.size !== object.size) return false;
    let sourceMd5 = md5Etag(object);
    if (!sourceMd5) {
      const body = await readSource();
      if (!body) return false;
      sourceMd5 = md5(body);
    }
    let targetMd5 = md5Etag(existing);
    if (!targetMd5) {
      const stored = await target.get(object.key);
      if (!stored) return false;
      targetMd5 = md5(stored.body);
    }
    return sourceMd5 === targetMd5;
  };

  const migrateOne = async (object: ObjectInfo): Promise<void> => {
    let body: Buffer | undefined;
    let gone = false;
    const readSource = async (): Promise<Buffer | undefined> => {
      if (body === undefined && !gone) {
        const stored = await source.get(object.key);
        if (stored) body = stored.body;
        else gone = true;
      }
      return body;
    };
    try {
      const existing = await target.head(object.key);
      if (await alreadyThere(object, existing, readSource)) {
        add(result.skipped, object.size);
        return;
      }
      if (gone || !(await readSource())) {
        add(result.vanished, object.size);
        return;
      }
      const bytes = body!;
      if (!dryRun) {
        const published = object.key.startsWith(PUBLIC_PREFIX);
        await target.put(object.key, bytes, { contentType: contentTypeOf(object.key), ...(published && { cacheControl: options.cacheControl }) });
        if (verify) {
          const copy = await target.get(object.key);
          if (!copy) throw new Error('verification failed: the copy cannot be read back');
          if (!copy.body.equals(bytes)) {
            throw new Error(`verification failed: the copy differs (${copy.body.length} bytes read back, ${bytes.length} written)`);
          }
          add(result.verified, bytes.length);
        }
      }
      add(result.copied, bytes.length);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      add(result.failed, object.size);
      if (result.failures.length < MAX_LISTED_FAILURES) result.failures.push({ key: object.key, reason });
      logger?.warn(`[Storage] Failed to migrate object: ${object.key}: ${reason}`, { key: object.key });
    } finally {
      add(result.done, object.size);
      progress();
    }
  };

  // One prefix after the other, each finished before the next starts: a record is copied only once every file it
  // describes is in the target (pipelined, the last files could still be in flight when the first records went).
  for (const prefix of MIGRATED_PREFIXES) {
    if (signal?.aborted) break;
    await forEachConcurrent(source.list(prefix), concurrency, migrateOne, signal);
  }
  result.aborted = signal?.aborted === true && result.done.files < result.total.files;
  result.elapsedMs = performance.now() - started;
  const summary = {
    from,
    to,
    dryRun,
    aborted: result.aborted,
    copied: result.copied.files,
    copiedBytes: result.copied.bytes,
    skipped: result.skipped.files,
    failed: result.failed.files,
    verified: result.verified.files,
    ms: Math.round(result.elapsedMs),
  };
  if (result.failed.files > 0) logger?.error(`[Storage] Migration finished with ${result.failed.files} failure(s)`, summary);
  else logger?.info(`[Storage] Migration ${result.aborted ? 'interrupted' : 'finished'}`, summary);
  return result;
}
