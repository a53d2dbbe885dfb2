/**
 * `pose-storage verify [--repair]`: checks every pose against the layout's invariants (RELIABILITY.md): a pose
 * is absent, pending (an upload is staged), rejected, or whole (a decodable PNG image, every file of the table
 * made from it: its 400x400 thumbnail and the configured variants, and a ready record that names them all).
 *
 * Three parts: the scan (verify-scan.ts: the areas listed and merged by generation), the inspection of each pose
 * (verify-inspect.ts: a pure function of what was read of it), and the repair (verify-repair.ts, under its lock).
 *
 * What it finds, pose by pose:
 * - staged uploads never processed (older than the upload URL's lifetime plus an hour: their event was lost);
 * - locks left by a writer that died (expired), and previous images kept aside by a publication that died
 *   (leftover backups);
 * - images that are no decodable PNG (truncated, garbage, an HTML page), missing or broken thumbnails and
 *   variants, files of variants no longer configured, files or a ready record whose image is missing, a ready
 *   record whose size disagrees with the image or whose files are other versions than those it names;
 * - published files with no record (written by a version before records), unreadable records, ready records
 *   of poses that have no file left, and published files of a rejected pose.
 * Rejection records are notices (a refused upload is a state, not a problem); so are poses locked by a writer at
 * work, which are not checked.
 *
 * With `repair`: unprocessed uploads are processed (`PoseUploads.processUpload`: published or rejected as their
 * event would have), then each pose still at fault is repaired under its lock (an expired lock is taken over):
 * a leftover backup is put back when it is the image the record describes, and removed; thumbnails are rendered
 * again from the image; missing records are written from the image; what is left of a pose whose image is gone,
 * and the files of a rejected pose, are removed. An image that cannot be decoded has nothing to be rebuilt from:
 * it is reported as such, with what to do. Each pose is checked again after its repair: a finding is repaired
 * only if the problem is gone.
 *
 * Streaming: the areas are listed in key order, merged by generation; one generation's keys are held at a time,
 * and at most `concurrency` images are decoded at once, each reduced as it is decoded (memory stays small
 * whatever the image's size). A first listing counts the poses and image bytes for the progress.
 */
import type { Logger } from '../logger.ts';
import { LOCK_WAIT_MS } from '../deadlines.ts';
import { sniffFormat } from '../image-format.ts';
import { parseStagingKey, publishedCacheControl, type PoseRef } from '../layout.ts';
import { THUMBNAIL_FILE } from '../pose-files.ts';
import { loadSharp } from '../pose-image.ts';
import { readRecordState, type RecordState } from '../pose-record.ts';
import type { PoseStorage } from '../pose-storage.ts';
import type { PoseUploads } from '../pose-uploads.ts';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.ts';
import { forEachConcurrent } from '../concurrency.ts';
import type { Progress } from './progress.ts';
import { fileVerdict, FINDING_KINDS, inspect, type FileFormat, type FindingKind, type ImageCheck, type PoseFacts, type Problem } from './verify-inspect.ts';
import { makeWhole } from './verify-repair.ts';
import { generationsOf, lookUp, type PoseObjects } from './verify-scan.ts';

export { FINDING_KINDS, NOTICE_KINDS, PROBLEM_KINDS, type FindingKind, type ImageCheck } from './verify-inspect.ts';

/** A kind for people: `broken_image` -> `broken image`. */
export const findingLabel = (kind: FindingKind): string => kind.replaceAll('_', ' ');

export interface Finding extends Problem {
  repaired: boolean;
  /** Why a repair that was tried failed. */
  repairError?: string;
}

export interface VerifyOptions {
  storage: PoseStorage;
  uploads: PoseUploads;
  /** Staged uploads older than this were never processed (lostUploadAfterMs of lib/deadlines.ts). */
  stagingMaxAgeMs: number;
  repair?: boolean;
  /** Default: the current time. */
  now?: Date;
  /** Poses checked at a time; default 2 (decoding is CPU-bound). */
  concurrency?: number;
  /** Every finding, as found (a generation's findings in key order). */
  onFinding?: (finding: Finding) => void;
  /** Once the totals are known, then after every pose. */
  onProgress?: (progress: Progress) => void;
  logger?: Logger;
}

export interface VerifyResult {
  repair: boolean;
  checked: { generations: number; poses: number; images: number; thumbnails: number; records: number; stagedUploads: number };
  found: Record<FindingKind, number>;
  repaired: Record<FindingKind, number>;
  /** Findings that are problems (not notices). */
  problems: number;
  /** Problems left: not repaired (without `repair`, every problem). */
  unrepaired: number;
}

/** Decoded files are reduced to this while they stream: a full decode in little memory. */
const DECODE_PREVIEW = 64;

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 120);
}

/** What bytes that are no image look like, for people. */
function describeNonImage(body: Uint8Array): string {
  const head = Buffer.from(body.subarray(0, 256)).toString('latin1').trimStart().toLowerCase();
  if (body.length === 0) return 'an empty file, not an image';
  if (head.startsWith('<!doctype html') || head.startsWith('<html')) return 'an HTML page, not an image';
  if (head.startsWith('<')) return 'an XML or HTML document, not an image';
  return `not an image (${body.length} bytes of something else)`;
}

/** PNG, JPEG and WebP by their magic bytes, and AVIF (an ISO BMFF file of brand avif), which a variant may be. */
function formatOf(body: Uint8Array): FileFormat | undefined {
  const known = sniffFormat(body);
  if (known) return known;
  const box = Buffer.from(body.subarray(4, 12)).toString('latin1');
  return box === 'ftypavif' || box === 'ftypavis' ? 'avif' : undefined;
}

/**
 * Decodes an image in full, as validation does (magic bytes, at most `maxInputPixels`, fail on any error),
 * reducing it as it streams. Its upright size when it decodes, else why not.
 */
export async function checkImage(body: Uint8Array, maxInputPixels: number): Promise<ImageCheck> {
  const format = formatOf(body);
  if (!format) return { ok: false, problem: describeNonImage(body) };
  const { default: sharp } = await loadSharp();
  const input = () => sharp(body, { failOn: 'error', limitInputPixels: maxInputPixels });
  try {
    const metadata = await input().metadata();
    await input().resize(DECODE_PREVIEW, DECODE_PREVIEW, { fit: 'inside' }).raw().toBuffer();
    const upright = (metadata.orientation ?? 1) >= 5;
    return { ok: true, format, width: upright ? metadata.height : metadata.width, height: upright ? metadata.width : metadata.height };
  } catch (error) {
    return { ok: false, problem: `not decodable (${firstLine(error)})` };
  }
}

/** Why `body` is not a valid thumbnail (a decodable 400x400 PNG), or undefined when it is one. */
export async function thumbnailProblem(body: Uint8Array, maxInputPixels: number): Promise<string | undefined> {
  return fileVerdict(await checkImage(body, maxInputPixels), THUMBNAIL_FILE, undefined);
}

const counters = (): Record<FindingKind, number> =>
  Object.fromEntries(FINDING_KINDS.map((kind) => [kind, 0])) as Record<FindingKind, number>;

export async function verifyStore(options: VerifyOptions): Promise<VerifyResult> {
  const { storage, uploads, logger } = options;
  const { store, files } = storage;
  const { maxInputPixels } = storage.config;
  const repair = options.repair ?? false;
  const context = { files, now: (options.now ?? new Date()).getTime(), stagingMaxAgeMs: options.stagingMaxAgeMs };
  const concurrency = options.concurrency ?? 2;
  const result: VerifyResult = {
    repair,
    checked: { generations: 0, poses: 0, images: 0, thumbnails: 0, records: 0, stagedUploads: 0 },
    found: counters(),
    repaired: counters(),
    problems: 0,
    unrepaired: 0,
  };

  const started = performance.now();
  const progress: Progress = { total: { files: 0, bytes: 0 }, done: { files: 0, bytes: 0 }, elapsedMs: 0 };
  const reportProgress = () => {
    progress.elapsedMs = performance.now() - started;
    options.onProgress?.({ total: { ...progress.total }, done: { ...progress.done }, elapsedMs: progress.elapsedMs });
  };
  const imageBytes = (objects: PoseObjects) => objects.files.get('image')?.size ?? 0;
  if (options.onProgress) {
    for await (const generation of generationsOf(store)) {
      for (const { objects } of generation.poses.values()) {
        progress.total.files++;
        progress.total.bytes += imageBytes(objects);
      }
    }
    reportProgress();
  }

  /** Verdicts by version: a pose checked again after its repair decodes only what changed. */
  const decoded = new Map<string, Promise<ImageCheck>>();
  const decode = (info: ObjectInfo): Promise<ImageCheck> => {
    const id = `${info.key}@${info.etag}`;
    let verdict = decoded.get(id);
    if (!verdict) {
      verdict = store.get(info.key).then((stored) => (stored ? checkImage(stored.body, maxInputPixels) : { ok: false, problem: 'gone' }));
      decoded.set(id, verdict);
    }
    return verdict;
  };

  /** What inspect needs of a pose: its lock's state, its record, and (unless a writer holds it) its files' decodes. */
  const gather = async (pose: PoseRef, objects: PoseObjects, from: ObjectStore = store): Promise<PoseFacts> => {
    let lock: PoseFacts['lock'] = 'none';
    if (objects.lock) {
      const stored = await from.get(objects.lock.key);
      lock = !stored ? 'none' : storage.locks.expired(stored) ? 'dead' : 'live';
    }
    const checks = new Map<string, ImageCheck>();
    if (lock === 'live') return { pose, objects, lock, record: { state: 'none' }, checks };
    // An unreadable record is a finding, not a log line.
    const record: RecordState = objects.record ? await readRecordState(from, pose) : { state: 'none' };
    if (!(record.state === 'ok' && record.record.status === 'rejected')) {
      await Promise.all([...objects.files].map(async ([role, info]) => checks.set(role, await decode(info))));
    }
    return { pose, objects, lock, record, checks };
  };

  /** Repairs a pose's problems; returns the problems left afterwards, and why the repair failed if it did. */
  const repairPose = async (pose: PoseRef, problems: Problem[]): Promise<{ left: Problem[]; error?: string }> => {
    try {
      for (const problem of problems) {
        if (problem.kind === 'unprocessed_upload' && parseStagingKey(problem.key)) await uploads.processUpload({ key: problem.key });
      }
      const fixable = problems.some((problem) => problem.kind !== 'unprocessed_upload' || !parseStagingKey(problem.key));
      if (fixable) {
        const cacheControl = publishedCacheControl(storage.config.cacheMaxAgeSeconds);
        await storage.locks.withLock(pose, 'verify --repair', { waitMs: LOCK_WAIT_MS }, async (lock) => ({
          result: undefined,
          remove: await makeWhole(lock, { ...(await lookUp(lock.store, pose)), lock: undefined }, { storage, cacheControl, decode, ...context }),
        }));
      }
      const left = inspect(await gather(pose, await lookUp(store, pose)), context);
      if (left.some((problem) => problem.kind === 'busy_pose')) return { left: problems, error: 'a writer took the pose meanwhile: run verify again' };
      return { left };
    } catch (error) {
      return { left: problems, error: firstLine(error) };
    }
  };

  const checkPose = async (pose: PoseRef, objects: PoseObjects): Promise<Finding[]> => {
    const { checked } = result;
    checked.poses++;
    if (objects.files.has('image')) checked.images++;
    if (objects.files.has(THUMBNAIL_FILE.role)) checked.thumbnails++;
    if (objects.record) checked.records++;
    checked.stagedUploads += objects.staged.length;
    const problems = inspect(await gather(pose, objects), context);
    const toRepair = problems.filter((problem) => problem.problem && problem.cannotRepair === undefined);
    if (!repair || toRepair.length === 0) return problems.map((problem) => ({ ...problem, repaired: false }));
    const { left, error } = await repairPose(pose, toRepair);
    const still = (problem: Problem) => left.find((after) => after.kind === problem.kind && after.key === problem.key);
    return problems.map((problem): Finding => {
      if (!toRepair.includes(problem)) return { ...problem, repaired: false };
      const after = still(problem);
      if (!after) {
        logger?.info(`[Storage] Repaired ${findingLabel(problem.kind)}: ${problem.key}`, { ...pose, kind: problem.kind, key: problem.key });
        return { ...problem, repaired: true };
      }
      const why = error ?? after.cannotRepair ?? 'still there after the repair';
      logger?.warn(`[Storage] Failed to repair ${findingLabel(problem.kind)}: ${problem.key}: ${why}`, { ...pose, kind: problem.kind, key: problem.key });
      return { ...problem, repaired: false, ...(after.cannotRepair !== undefined && error === undefined ? { cannotRepair: after.cannotRepair } : { repairError: why }) };
    });
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

  for await (const generation of generationsOf(store)) {
    result.checked.generations++;
    const findings: Finding[] = [];
    await forEachConcurrent(generation.poses.values(), concurrency, async ({ pose, objects }) => {
      findings.push(...(await checkPose(pose, objects)));
      progress.done.files++;
      progress.done.bytes += imageBytes(objects);
      reportProgress();
    });
    // Each pose's verdicts are final: forget what was decoded.
    decoded.clear();
    findings.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.kind < b.kind ? -1 : 1));
    findings.forEach(record);
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
