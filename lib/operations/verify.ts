/**
 * `pose-storage verify [--repair]`: checks every pose against the layout's invariants (RELIABILITY.md): a pose
 * is absent, pending (an upload is staged), rejected, or whole (a decodable PNG image, its 400x400 thumbnail,
 * and a ready record that describes that image).
 *
 * What it finds, pose by pose:
 * - staged uploads never processed (older than the upload URL's lifetime plus an hour: their event was lost);
 * - locks left by a writer that died (expired), and previous images kept aside by a publication that died
 *   (leftover backups);
 * - images that are no decodable PNG (truncated, garbage, an HTML page), missing or broken thumbnails, a
 *   thumbnail or a ready record whose image is missing, a ready record whose size disagrees with the image;
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
import { sniffFormat } from '../image-format.ts';
import { AREAS, ID_PATTERN, issuedAt, lockKey, parseStagingKey, publishedCacheControl, recordKey, stagingPrefix, type PoseRef } from '../layout.ts';
import { backupKey, imageKey, poseOfKey, thumbnailKey } from '../pose-files.ts';
import { LOCK_WAIT_MS } from '../deadlines.ts';
import type { PoseLock } from '../pose-lock.ts';
import { readRecordState, writeRecord, type RecordState, type UploadRef } from '../pose-record.ts';
import { loadSharp, THUMBNAIL_SIZE } from '../pose-image.ts';
import type { PoseStorage } from '../pose-storage.ts';
import type { PoseUploads } from '../pose-uploads.ts';
import type { ObjectInfo, ObjectStore, Written } from '../storage/object-store.ts';
import { forEachConcurrent } from './concurrency.ts';
import type { Progress } from './progress.ts';

export const PROBLEM_KINDS = [
  'unprocessed_upload',
  'expired_lock',
  'leftover_backup',
  'broken_image',
  'missing_image',
  'missing_thumbnail',
  'broken_thumbnail',
  'record_mismatch',
  'unrecorded_pose',
  'unreadable_record',
  'dangling_record',
  'rejected_with_files',
] as const;
export const NOTICE_KINDS = ['rejection_record', 'busy_pose'] as const;
export type FindingKind = (typeof PROBLEM_KINDS)[number] | (typeof NOTICE_KINDS)[number];
export const FINDING_KINDS: readonly FindingKind[] = [...PROBLEM_KINDS, ...NOTICE_KINDS];

/** A kind for people: `broken_image` -> `broken image`. */
export const findingLabel = (kind: FindingKind): string => kind.replaceAll('_', ' ');

export interface Finding {
  kind: FindingKind;
  /** The object at fault: the image, thumbnail, record, lock, backup or staged upload. */
  key: string;
  detail: string;
  /** False for notices: they never make verify fail. */
  problem: boolean;
  repaired: boolean;
  /** Why no repair can fix it, and what to do instead. */
  cannotRepair?: string;
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


/** Decoded images and thumbnails are reduced to this while they stream: a full decode in little memory. */
const DECODE_PREVIEW = 64;


function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 120);
}

/** What bytes that are no PNG, JPEG or WebP look like, for people. */
function describeNonImage(body: Uint8Array): string {
  const head = Buffer.from(body.subarray(0, 256)).toString('latin1').trimStart().toLowerCase();
  if (body.length === 0) return 'an empty file, not an image';
  if (head.startsWith('<!doctype html') || head.startsWith('<html')) return 'an HTML page, not an image';
  if (head.startsWith('<')) return 'an XML or HTML document, not an image';
  return `not an image (${body.length} bytes of something else)`;
}

export type ImageCheck = { ok: true; format: 'png' | 'jpeg' | 'webp'; width: number; height: number } | { ok: false; problem: string };

/**
 * Decodes an image in full, as validation does (magic bytes, at most `maxInputPixels`, fail on any error),
 * reducing it as it streams. Its upright size when it decodes, else why not.
 */
export async function checkImage(body: Uint8Array, maxInputPixels: number): Promise<ImageCheck> {
  const format = sniffFormat(body);
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

/** Why a decoded thumbnail is not a valid one (a 400x400 PNG), or undefined when it is one. */
function thumbnailVerdict(checked: ImageCheck): string | undefined {
  if (!checked.ok) return checked.problem;
  if (checked.format !== 'png') return `a ${checked.format.toUpperCase()}, not a PNG`;
  if (checked.width !== THUMBNAIL_SIZE || checked.height !== THUMBNAIL_SIZE) {
    return `${checked.width}x${checked.height}, not ${THUMBNAIL_SIZE}x${THUMBNAIL_SIZE}`;
  }
  return undefined;
}

/** Why `body` is not a valid thumbnail (a decodable 400x400 PNG), or undefined when it is one. */
export async function thumbnailProblem(body: Uint8Array, maxInputPixels: number): Promise<string | undefined> {
  return thumbnailVerdict(await checkImage(body, maxInputPixels));
}

/** The objects of one pose, as listed (or looked up again under its lock). */
interface PoseObjects {
  image?: ObjectInfo | undefined;
  thumbnail?: ObjectInfo | undefined;
  record?: ObjectInfo | undefined;
  lock?: ObjectInfo | undefined;
  backup?: ObjectInfo | undefined;
  staged: ObjectInfo[];
}

interface Generation {
  generationId: string;
  poses: Map<string, { pose: PoseRef; objects: PoseObjects }>;
}

const generationOf = (key: string): string => key.split('/')[1] ?? '';

/** One area's objects, a generation at a time (a generation's keys are contiguous in key order). */
async function* groupsOf(listing: AsyncIterable<ObjectInfo>): AsyncGenerator<{ generationId: string; objects: ObjectInfo[] }> {
  let current: { generationId: string; objects: ObjectInfo[] } | undefined;
  for await (const object of listing) {
    const generationId = generationOf(object.key);
    if (!ID_PATTERN.test(generationId)) continue;
    if (current && current.generationId !== generationId) {
      yield current;
      current = undefined;
    }
    current ??= { generationId, objects: [] };
    current.objects.push(object);
  }
  if (current) yield current;
}

/** Every area's listing merged by generation, in the stores' key order (`g-x/` sorts before `g/`). */
async function* generationsOf(store: ObjectStore): AsyncGenerator<Generation> {
  const areas = AREAS.map((area) => groupsOf(store.list(area))[Symbol.asyncIterator]());
  const heads = await Promise.all(areas.map((area) => area.next()));
  try {
    for (;;) {
      const pending = heads.flatMap((head) => (head.done ? [] : [head.value.generationId]));
      if (pending.length === 0) return;
      const generationId = pending.reduce((a, b) => (`${b}/` < `${a}/` ? b : a));
      const generation: Generation = { generationId, poses: new Map() };
      for (const [index, head] of heads.entries()) {
        if (head.done || head.value.generationId !== generationId) continue;
        for (const object of head.value.objects) place(generation, object);
        heads[index] = await areas[index]!.next();
      }
      yield generation;
    }
  } finally {
    await Promise.all(areas.map((area) => area.return?.(undefined)));
  }
}

/** Files an object under its pose; objects of no pose (custom files under poses/) are not checked. */
function place(generation: Generation, object: ObjectInfo): void {
  const pose = poseOfKey(object.key);
  if (!pose) return;
  let entry = generation.poses.get(pose.poseId);
  if (!entry) generation.poses.set(pose.poseId, (entry = { pose, objects: { staged: [] } }));
  const { objects } = entry;
  if (object.key === imageKey(pose)) objects.image = object;
  else if (object.key === thumbnailKey(pose)) objects.thumbnail = object;
  else if (object.key === recordKey(pose)) objects.record = object;
  else if (object.key === lockKey(pose)) objects.lock = object;
  else if (object.key === backupKey(pose)) objects.backup = object;
  else objects.staged.push(object);
}

const counters = (): Record<FindingKind, number> =>
  Object.fromEntries(FINDING_KINDS.map((kind) => [kind, 0])) as Record<FindingKind, number>;

/** A problem found in a pose; `cannotRepair` when no repair exists for it. */
type Problem = Omit<Finding, 'repaired' | 'repairError'>;


export async function verifyStore(options: VerifyOptions): Promise<VerifyResult> {
  const { storage, uploads, logger } = options;
  const { store } = storage;
  const { maxInputPixels } = storage.config;
  const published = { contentType: 'image/png', cacheControl: publishedCacheControl(storage.config.cacheMaxAgeSeconds) };
  const repair = options.repair ?? false;
  const now = (options.now ?? new Date()).getTime();
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
  if (options.onProgress) {
    for await (const generation of generationsOf(store)) {
      for (const { objects } of generation.poses.values()) {
        progress.total.files++;
        progress.total.bytes += objects.image?.size ?? 0;
      }
    }
    reportProgress();
  }

  /** Image and thumbnail verdicts by version: a pose checked again after its repair decodes only what changed. */
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

  // An unreadable record is a finding, not a log line.
  const recordStateOf = (pose: PoseRef, objects: PoseObjects, from: ObjectStore = store): Promise<RecordState> =>
    objects.record ? readRecordState(from, pose) : Promise.resolve({ state: 'none' });

  /** Whether a lock is gone or may be taken over, by the store's clock (as the service judges it). */
  const lockDead = async (lock: ObjectInfo): Promise<boolean> => {
    const stored = await store.get(lock.key);
    return !stored || storage.locks.expired(stored);
  };

  /** What is wrong with a pose, from its objects. `locked`: we hold its lock (its lock object is ours). */
  const inspect = async (pose: PoseRef, objects: PoseObjects, locked: boolean): Promise<Problem[]> => {
    const problems: Problem[] = [];
    const found = (kind: FindingKind, key: string, detail: string, cannotRepair?: string) =>
      problems.push({ kind, key, detail, problem: !(NOTICE_KINDS as readonly string[]).includes(kind), ...(cannotRepair !== undefined && { cannotRepair }) });
    const deleteAdvice = `delete the pose (DELETE /poses/${pose.generationId}/${pose.poseId}, or pose-storage cleanup for its generation) or upload it again`;

    if (objects.lock && !locked) {
      if (!(await lockDead(objects.lock))) {
        found('busy_pose', objects.lock.key, 'a writer holds its lock: not checked this time');
        return problems;
      }
      found('expired_lock', objects.lock.key, `left by a writer that stopped (modified ${objects.lock.lastModified.toISOString()})`);
    }
    for (const staged of objects.staged) {
      const age = now - (issuedAt(staged.key) ?? staged.lastModified).getTime();
      if (age <= options.stagingMaxAgeMs) continue;
      const hours = (age / 3_600_000).toFixed(1);
      const detail = parseStagingKey(staged.key) ? `staged ${hours} h ago, never processed` : `staged ${hours} h ago under a name no upload URL gives`;
      found('unprocessed_upload', staged.key, detail);
    }
    const pending = objects.staged.length > 0;
    if (objects.backup) found('leftover_backup', objects.backup.key, 'the previous image, kept aside by a publication that stopped');

    const record = await recordStateOf(pose, objects);
    if (record.state === 'ok' && record.record.status === 'rejected') {
      found('rejection_record', objects.record!.key, `upload rejected: ${record.record.reason}`);
      const files = [objects.image, objects.thumbnail].filter((info) => info !== undefined);
      if (files.length > 0) found('rejected_with_files', files[0]!.key, `the pose was rejected, yet ${files.map((info) => info.key).join(' and ')} ${files.length > 1 ? 'are' : 'is'} published`);
      return problems;
    }
    const ready = record.state === 'ok' && record.record.status === 'ready' ? record.record : undefined;
    if (record.state === 'unreadable') found('unreadable_record', objects.record!.key, 'not a pose record');

    if (!objects.image) {
      if (objects.thumbnail) {
        found('missing_image', imageKey(pose), ready ? `its record says ready, only the thumbnail ${objects.thumbnail.key} is left` : `only the thumbnail ${objects.thumbnail.key} is left`);
      } else if (ready && !pending) {
        found('dangling_record', objects.record!.key, 'the record says ready, but the pose has no file left');
      }
      return problems;
    }

    const image = await decode(objects.image);
    if (!image.ok) {
      found('broken_image', objects.image.key, image.problem, pending ? 'its staged upload replaces it once processed' : `nothing valid to rebuild it from: ${deleteAdvice}`);
    } else if (image.format !== 'png') {
      found('broken_image', objects.image.key, `a ${image.format.toUpperCase()}, not the PNG published images are`);
    }
    const repairable = image.ok ? undefined : 'it is made from the image, which cannot be decoded';
    const thumbnailFault = objects.thumbnail ? thumbnailVerdict(await decode(objects.thumbnail)) : `no thumbnail ${thumbnailKey(pose)}`;
    if (!objects.thumbnail) found('missing_thumbnail', objects.image.key, thumbnailFault!, repairable);
    else if (thumbnailFault !== undefined) found('broken_thumbnail', objects.thumbnail.key, thumbnailFault, repairable);
    if (record.state === 'none') {
      found('unrecorded_pose', objects.image.key, 'published files with no record (written before records existed)', image.ok ? undefined : 'a record is written only for an image that decodes');
    } else if (ready && image.ok) {
      // (An image that cannot be decoded is its own finding: its record disagrees with it as a consequence.)
      const sizes = [
        ready.bytes !== objects.image.size ? `${ready.bytes} bytes, the image has ${objects.image.size}` : undefined,
        ready.width !== image.width || ready.height !== image.height ? `${ready.width}x${ready.height}, the image is ${image.width}x${image.height}` : undefined,
      ].filter((text) => text !== undefined);
      // The record names the version of each file its publication wrote: a file of another version does not
      // belong with the others (a publication that stopped after the thumbnail and before its record).
      // (A file with a finding of its own is not reported twice.)
      const files = ready.files;
      const strangers = files
        ? [
            image.format === 'png' && objects.image.etag !== files.image ? 'the image' : undefined,
            thumbnailFault === undefined && objects.thumbnail!.etag !== files.thumbnail ? 'the thumbnail' : undefined,
          ].filter((text) => text !== undefined)
        : [];
      const versions = strangers.length > 0 ? [`other versions than ${strangers.join(' and ')} now published`] : [];
      if (sizes.length + versions.length > 0) found('record_mismatch', objects.record!.key, `the record says ${[...sizes, ...versions].join('; ')}`);
    }
    return problems;
  };

  /** The pose's objects now, looked up key by key (under its lock, through its store: what the repair works on). */
  const lookUp = async (pose: PoseRef, from: ObjectStore = store): Promise<PoseObjects> => {
    const [image, thumbnail, record, lock, backup] = await Promise.all(
      [imageKey(pose), thumbnailKey(pose), recordKey(pose), lockKey(pose), backupKey(pose)].map((key) => from.head(key)),
    );
    const staged: ObjectInfo[] = [];
    for await (const object of from.list(stagingPrefix(pose))) staged.push(object);
    return { image, thumbnail, record, lock, backup, staged };
  };

  /**
   * Makes a locked pose whole, or absent, as far as its objects allow; returns the keys to remove. Files are
   * paired only when they are known to belong together (the versions the record names); otherwise the
   * thumbnail and the record are made again from the image kept. Every request goes through the lock's store.
   */
  const makeWhole = async (lock: PoseLock, objects: PoseObjects): Promise<string[]> => {
    const { pose, store: locked } = lock;
    const remove: string[] = [];
    const record = await recordStateOf(pose, objects, locked);
    const ready = record.state === 'ok' && record.record.status === 'ready' ? record.record : undefined;
    // Whether an object is the image the record names (by version; records written before versions, by size).
    const isRecordedImage = (info: ObjectInfo | undefined) =>
      ready !== undefined && info !== undefined && (ready.files ? info.etag === ready.files.image : info.size === ready.bytes);
    let image = objects.image;
    if (objects.backup) {
      // A publication stopped between replacing the image and writing its record: the image kept aside is the
      // one the record names. Put it back (its thumbnail is made again below unless it is the recorded one).
      if (!isRecordedImage(image) && isRecordedImage(objects.backup)) {
        lock.assertHeld();
        await locked.copy(objects.backup.key, imageKey(pose), published);
        image = await locked.head(imageKey(pose));
      }
      remove.push(objects.backup.key);
    }
    for (const staged of objects.staged) {
      // Uploads were processed before the lock was taken; what is left under a foreign name is no upload.
      if (!parseStagingKey(staged.key) && now - staged.lastModified.getTime() > options.stagingMaxAgeMs) remove.push(staged.key);
    }
    if (record.state === 'ok' && record.record.status === 'rejected') {
      remove.push(...[objects.image, objects.thumbnail].flatMap((info) => (info ? [info.key] : [])));
      return remove;
    }
    if (!image) {
      if (objects.thumbnail) remove.push(objects.thumbnail.key);
      if (objects.record && (objects.thumbnail || objects.staged.length === 0)) remove.push(objects.record.key);
      return remove;
    }
    const imageCheck = await decode(image);
    if (!imageCheck.ok) return remove; // nothing to rebuild from (reported as such)
    const thumbnailDecodes = objects.thumbnail !== undefined && thumbnailVerdict(await decode(objects.thumbnail)) === undefined;
    const paired = ready?.files !== undefined && image.etag === ready.files.image && objects.thumbnail?.etag === ready.files.thumbnail;
    const recordOk = paired && ready.bytes === image.size && ready.width === imageCheck.width && ready.height === imageCheck.height;
    if (imageCheck.format === 'png' && thumbnailDecodes && recordOk) return remove;

    const stored = await locked.get(image.key);
    if (!stored) return remove;
    const rendered = await storage.render(stored.body);
    let imageVersion: Written = { etag: image.etag };
    if (!rendered.imageIsInput) {
      lock.assertHeld();
      imageVersion = await locked.put(image.key, rendered.image, published);
    }
    const keepThumbnail = thumbnailDecodes && paired && rendered.imageIsInput;
    lock.assertHeld();
    const thumbnailVersion = keepThumbnail ? { etag: objects.thumbnail!.etag } : await locked.put(thumbnailKey(pose), rendered.thumbnail, published);
    const found: UploadRef = { key: image.key, etag: image.etag, uploadedAt: image.lastModified.toISOString() };
    lock.assertHeld();
    await writeRecord(locked, pose, {
      status: 'ready',
      upload: ready?.upload ?? found,
      width: rendered.width,
      height: rendered.height,
      bytes: rendered.image.length,
      publishedAt: new Date().toISOString(),
      files: { image: imageVersion.etag, thumbnail: thumbnailVersion.etag },
    });
    return remove;
  };

  /** Repairs a pose's problems; returns the problems left afterwards, and why the repair failed if it did. */
  const repairPose = async (pose: PoseRef, problems: Problem[]): Promise<{ left: Problem[]; error?: string }> => {
    try {
      for (const problem of problems) {
        if (problem.kind === 'unprocessed_upload' && parseStagingKey(problem.key)) await uploads.processUpload({ key: problem.key });
      }
      const fixable = problems.some((problem) => problem.kind !== 'unprocessed_upload' || !parseStagingKey(problem.key));
      if (fixable) {
        await storage.locks.withLock(pose, 'verify --repair', { waitMs: LOCK_WAIT_MS }, async (lock) => ({
          result: undefined,
          remove: await makeWhole(lock, { ...(await lookUp(pose, lock.store)), lock: undefined }),
        }));
      }
      const left = await inspect(pose, await lookUp(pose), false);
      if (left.some((problem) => problem.kind === 'busy_pose')) return { left: problems, error: 'a writer took the pose meanwhile: run verify again' };
      return { left };
    } catch (error) {
      return { left: problems, error: firstLine(error) };
    }
  };

  const checkPose = async (pose: PoseRef, objects: PoseObjects): Promise<Finding[]> => {
    const { checked } = result;
    checked.poses++;
    if (objects.image) checked.images++;
    if (objects.thumbnail) checked.thumbnails++;
    if (objects.record) checked.records++;
    checked.stagedUploads += objects.staged.length;
    const problems = await inspect(pose, objects, false);
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
      progress.done.bytes += objects.image?.size ?? 0;
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
