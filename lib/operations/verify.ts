/**
 * `pose-storage verify [--repair]`: checks the store against the layout.
 *
 * - every published image has a thumbnail, and every thumbnail is a decodable 400x400 PNG;
 * - every thumbnail has its image (else it is an orphan);
 * - no staging object is older than an upload URL can live plus an hour (a stale upload nobody processed);
 * - rejection records are reported as notices (a refused upload is a state, not a problem).
 *
 * With `repair`, missing and broken thumbnails are rendered again from the image (as publishing does), orphan
 * thumbnails and stale staging objects are removed. Rejection records are left alone.
 *
 * Streaming: `poses/` is listed in key order, so each generation's keys come together; one generation's
 * names are held at a time. Staging and rejection records are judged object by object.
 *
 * Layout note: `{poseId}_thumb.png` is also the image key of a pose whose id ends in `_thumb`. A `X_thumb.png`
 * counts as the thumbnail of X when `X.png` exists, as the image of pose `X_thumb` when `X_thumb_thumb.png`
 * exists, and as an orphan thumbnail otherwise.
 */
import { PUBLIC_PREFIX, RECORDS_PREFIX, STAGING_PREFIX } from '../layout.ts';
import { sniffFormat } from '../image-format.ts';
import { parseJson } from '../json.ts';
import type { Logger } from '../logger.ts';
import { renderPose, THUMBNAIL_SIZE } from '../pose-image.ts';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.ts';
import { forEachConcurrent } from './concurrency.ts';

export type FindingKind = 'missing_thumbnail' | 'broken_thumbnail' | 'orphan_thumbnail' | 'stale_staging' | 'rejection_record';
export const FINDING_KINDS: readonly FindingKind[] = [
  'missing_thumbnail',
  'broken_thumbnail',
  'orphan_thumbnail',
  'stale_staging',
  'rejection_record',
];

export interface Finding {
  kind: FindingKind;
  /** The image (missing_thumbnail), the thumbnail (broken, orphan), the staging object or the rejection record. */
  key: string;
  detail: string;
  /** False for notices (rejection records): they never make verify fail. */
  problem: boolean;
  repaired: boolean;
  /** Why a repair failed. */
  repairError?: string;
}

export interface VerifyOptions {
  store: ObjectStore;
  /** Cache-Control of repaired thumbnails (the service's, from CACHE_MAX_AGE_SECONDS). */
  cacheControl: string;
  /** MAX_INPUT_PIXELS: the largest image decoded (thumbnails and images alike). */
  maxInputPixels: number;
  /** Staging objects older than this are stale (see stagingMaxAgeMs). */
  stagingMaxAgeMs: number;
  repair?: boolean;
  /** Default: the current time. */
  now?: Date;
  /** Thumbnails checked or rendered at a time; default 4 (decoding is CPU-bound). */
  concurrency?: number;
  /** Every finding, as found (a generation's findings in key order). */
  onFinding?: (finding: Finding) => void;
  logger?: Logger;
}

export interface VerifyResult {
  repair: boolean;
  checked: { generations: number; poses: number; thumbnails: number; stagingObjects: number; rejectionRecords: number };
  found: Record<FindingKind, number>;
  repaired: Record<FindingKind, number>;
  /** Findings that are problems (all but rejection records). */
  problems: number;
  /** Problems left: not repaired (without `repair`, every problem). */
  unrepaired: number;
}

/** How old a staging object may get: an upload URL's lifetime (UPLOAD_URL_TTL_SECONDS) plus an hour. */
export function stagingMaxAgeMs(uploadUrlTtlSeconds: number): number {
  return (uploadUrlTtlSeconds + 3600) * 1000;
}

const PNG_NAME = /^([A-Za-z0-9_-]{1,128})\.png$/;
const THUMB_SUFFIX = '_thumb';

/** Why `body` is not a valid thumbnail (a decodable 400x400 PNG), or undefined when it is one. */
export async function thumbnailProblem(body: Uint8Array, maxInputPixels: number): Promise<string | undefined> {
  if (sniffFormat(body) !== 'png') return 'not a PNG';
  const { default: sharp } = await import('sharp');
  sharp.cache(false);
  try {
    const { info } = await sharp(body, { failOn: 'error', limitInputPixels: maxInputPixels }).raw().toBuffer({ resolveWithObject: true });
    if (info.width !== THUMBNAIL_SIZE || info.height !== THUMBNAIL_SIZE) {
      return `${info.width}x${info.height}, not ${THUMBNAIL_SIZE}x${THUMBNAIL_SIZE}`;
    }
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return `not decodable (${message.split('\n')[0]!.slice(0, 120)})`;
  }
}

/** The keys of `poses/`, one generation at a time (keys of a generation are contiguous in key order). */
async function* publishedGenerations(store: ObjectStore): AsyncGenerator<{ generationId: string; files: Map<string, ObjectInfo> }> {
  let current: { generationId: string; files: Map<string, ObjectInfo> } | undefined;
  for await (const object of store.list(PUBLIC_PREFIX)) {
    const [, generationId, name, ...deeper] = object.key.split('/');
    if (generationId === undefined || name === undefined || deeper.length > 0) continue;
    if (current && current.generationId !== generationId) {
      yield current;
      current = undefined;
    }
    current ??= { generationId, files: new Map() };
    current.files.set(name, object);
  }
  if (current) yield current;
}

const counters = (): Record<FindingKind, number> =>
  Object.fromEntries(FINDING_KINDS.map((kind) => [kind, 0])) as Record<FindingKind, number>;

export async function verifyStore(options: VerifyOptions): Promise<VerifyResult> {
  const { store, logger, maxInputPixels } = options;
  const repair = options.repair ?? false;
  const now = (options.now ?? new Date()).getTime();
  const concurrency = options.concurrency ?? 4;
  const result: VerifyResult = {
    repair,
    checked: { generations: 0, poses: 0, thumbnails: 0, stagingObjects: 0, rejectionRecords: 0 },
    found: counters(),
    repaired: counters(),
    problems: 0,
    unrepaired: 0,
  };

  const record = (finding: Finding): void => {
    result.found[finding.kind]++;
    if (finding.problem) {
      result.problems++;
      if (finding.repaired) result.repaired[finding.kind]++;
      else result.unrepaired++;
    }
    options.onFinding?.(finding);
  };

  /** Runs a repair (when asked) and fills in the finding's outcome. */
  const attempt = async (finding: Finding, fix: () => Promise<void>): Promise<Finding> => {
    if (!repair) return finding;
    try {
      await fix();
      logger?.info(`[Storage] Repaired ${finding.kind.replace('_', ' ')}: ${finding.key}`, { kind: finding.kind, key: finding.key });
      return { ...finding, repaired: true };
    } catch (error) {
      const repairError = error instanceof Error ? error.message : String(error);
      logger?.warn(`[Storage] Failed to repair ${finding.kind.replace('_', ' ')}: ${finding.key}: ${repairError}`, {
        kind: finding.kind,
        key: finding.key,
      });
      return { ...finding, repairError };
    }
  };

  /** Renders the thumbnail again from the image, and writes it as publishing does. */
  const renderThumbnail = async (image: string, thumbnail: string): Promise<void> => {
    const stored = await store.get(image);
    if (!stored) throw new Error('the image is gone');
    let rendered;
    try {
      rendered = await renderPose(stored.body, { maxInputPixels });
    } catch (error) {
      throw new Error(`the image cannot be rendered: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    await store.put(thumbnail, rendered.thumbnail, { contentType: 'image/png', cacheControl: options.cacheControl });
  };

  for await (const { generationId, files } of publishedGenerations(store)) {
    result.checked.generations++;
    const stems = new Set<string>();
    for (const name of files.keys()) {
      const stem = PNG_NAME.exec(name)?.[1];
      if (stem !== undefined) stems.add(stem);
    }
    const keyOf = (stem: string) => `${PUBLIC_PREFIX}${generationId}/${stem}.png`;
    const tasks: (() => Promise<Finding | undefined>)[] = [];
    for (const stem of stems) {
      const isThumbnailName = stem.endsWith(THUMB_SUFFIX);
      if (isThumbnailName && stems.has(stem.slice(0, -THUMB_SUFFIX.length))) continue; // checked with its image
      if (isThumbnailName && !stems.has(`${stem}${THUMB_SUFFIX}`)) {
        const thumbnail = keyOf(stem);
        const image = keyOf(stem.slice(0, -THUMB_SUFFIX.length));
        tasks.push(() =>
          attempt({ kind: 'orphan_thumbnail', key: thumbnail, detail: `no image ${image}`, problem: true, repaired: false }, async () => {
            // Published meanwhile (image first, thumbnail last): then it is no orphan any more.
            if (await store.head(image)) return;
            await store.delete([thumbnail]);
          }),
        );
        continue;
      }
      result.checked.poses++;
      const image = keyOf(stem);
      const thumbnail = keyOf(`${stem}${THUMB_SUFFIX}`);
      if (!stems.has(`${stem}${THUMB_SUFFIX}`)) {
        tasks.push(() =>
          attempt({ kind: 'missing_thumbnail', key: image, detail: `no thumbnail ${thumbnail}`, problem: true, repaired: false }, () =>
            renderThumbnail(image, thumbnail),
          ),
        );
        continue;
      }
      tasks.push(async () => {
        result.checked.thumbnails++;
        const stored = await store.get(thumbnail);
        if (!stored) return undefined; // deleted meanwhile, with its pose
        const problem = await thumbnailProblem(stored.body, maxInputPixels);
        if (problem === undefined) return undefined;
        return attempt({ kind: 'broken_thumbnail', key: thumbnail, detail: problem, problem: true, repaired: false }, () =>
          renderThumbnail(image, thumbnail),
        );
      });
    }
    const findings: Finding[] = [];
    await forEachConcurrent(tasks, concurrency, async (task) => {
      const finding = await task();
      if (finding) findings.push(finding);
    });
    findings.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    findings.forEach(record);
  }

  const maxAge = options.stagingMaxAgeMs;
  for await (const object of store.list(STAGING_PREFIX)) {
    result.checked.stagingObjects++;
    const age = now - object.lastModified.getTime();
    if (age <= maxAge) continue;
    const hours = (age / 3_600_000).toFixed(1);
    record(
      await attempt(
        { kind: 'stale_staging', key: object.key, detail: `staged ${hours} h ago, never processed`, problem: true, repaired: false },
        () => store.delete([object.key]),
      ),
    );
  }

  for await (const object of store.list(RECORDS_PREFIX)) {
    const detail = await rejectionDetail(store, object.key);
    if (detail === undefined) continue;
    result.checked.rejectionRecords++;
    record({ kind: 'rejection_record', key: object.key, detail, problem: false, repaired: false });
  }

  logger?.[result.unrepaired > 0 ? 'warn' : 'info'](`[Storage] Verify finished: ${result.problems} problem(s), ${result.unrepaired} left`, {
    repair,
    problems: result.problems,
    unrepaired: result.unrepaired,
    generations: result.checked.generations,
    poses: result.checked.poses,
  });
  return result;
}

/** "upload rejected: not_an_image" for the record of a rejected pose; undefined for any other record. */
async function rejectionDetail(store: ObjectStore, key: string): Promise<string | undefined> {
  const stored = await store.get(key);
  const record = stored && (parseJson(stored.body.toString('utf8')) as { status?: unknown; reason?: unknown } | undefined);
  if (record?.status !== 'rejected') return undefined;
  return typeof record.reason === 'string' && /^[a-z_]{1,40}$/.test(record.reason) ? `upload rejected: ${record.reason}` : 'upload rejected';
}
