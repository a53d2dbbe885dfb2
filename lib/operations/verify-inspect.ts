/**
 * verify's inspection: what is wrong with one pose, as a pure function of what was read of it (its objects, its
 * lock's state, its record, what each of its files decodes to). No I/O: verify.ts gathers the facts, and checks a
 * repaired pose again with the same function.
 */
import { issuedAt, parseStagingKey, type PoseRef } from '../layout.ts';
import { fileKey, IMAGE_FILE, THUMBNAIL_FILE, type PoseFile, type PoseFiles } from '../pose-files.ts';
import { THUMBNAIL_SIZE } from '../pose-image.ts';
import type { RecordState } from '../pose-record.ts';
import type { PoseObjects } from './verify-scan.ts';

export const PROBLEM_KINDS = [
  'unprocessed_upload',
  'expired_lock',
  'leftover_backup',
  'broken_image',
  'missing_image',
  'missing_thumbnail',
  'broken_thumbnail',
  'missing_variant',
  'broken_variant',
  'unconfigured_variant',
  'record_mismatch',
  'unrecorded_pose',
  'unreadable_record',
  'dangling_record',
  'rejected_with_files',
] as const;
export const NOTICE_KINDS = ['rejection_record', 'busy_pose'] as const;
export type FindingKind = (typeof PROBLEM_KINDS)[number] | (typeof NOTICE_KINDS)[number];
export const FINDING_KINDS: readonly FindingKind[] = [...PROBLEM_KINDS, ...NOTICE_KINDS];

/** A problem found in a pose; `cannotRepair` when no repair exists for it. */
export interface Problem {
  kind: FindingKind;
  /** The object at fault: the image, thumbnail, variant, record, lock, backup or staged upload. */
  key: string;
  detail: string;
  /** False for notices: they never make verify fail. */
  problem: boolean;
  /** Why no repair can fix it, and what to do instead. */
  cannotRepair?: string;
}

export type FileFormat = 'png' | 'jpeg' | 'webp' | 'avif';

/** What a file decodes to: its upright size and format, or why it does not decode. */
export type ImageCheck = { ok: true; format: FileFormat; width: number; height: number } | { ok: false; problem: string };

/** Everything read of one pose, for inspect. */
export interface PoseFacts {
  pose: PoseRef;
  objects: PoseObjects;
  /** Its lock: none, one a live writer holds (the pose is then not checked), or one left by a writer that died. */
  lock: 'none' | 'live' | 'dead';
  record: RecordState;
  /** What each of its published files decodes to, by role (for every file read; none while it is busy). */
  checks: ReadonlyMap<string, ImageCheck>;
}

export interface InspectContext {
  files: PoseFiles;
  now: number;
  /** Staged uploads older than this were never processed. */
  stagingMaxAgeMs: number;
}

const FORMAT_OF: Readonly<Record<string, FileFormat>> = { webp: 'webp', avif: 'avif', jpg: 'jpeg' };

/** Why a decoded file is not what its role makes (a 400x400 PNG thumbnail, a variant's format and size), or undefined. */
export function fileVerdict(check: ImageCheck, file: PoseFile, image: { width: number; height: number } | undefined): string | undefined {
  if (!check.ok) return check.problem;
  const { rendering } = file;
  const [format, width, height] =
    rendering.kind === 'variant'
      ? [FORMAT_OF[rendering.format]!, rendering.height === undefined && image ? Math.min(rendering.width, image.width) : rendering.width, rendering.height]
      : [
          'png',
          rendering.kind === 'thumbnail' ? THUMBNAIL_SIZE : check.width,
          rendering.kind === 'thumbnail' ? THUMBNAIL_SIZE : check.height,
        ];
  if (check.format !== format) return `${article(check.format)} ${check.format.toUpperCase()}, not ${article(format)} ${format.toUpperCase()}`;
  if (check.width !== width || (height !== undefined && check.height !== height)) {
    return `${check.width}x${check.height}, not ${height === undefined ? `${width} wide` : `${width}x${height}`}`;
  }
  return undefined;
}

const article = (format: string): string => (format.startsWith('a') ? 'an' : 'a');

const describe = (file: PoseFile): string =>
  file === IMAGE_FILE ? 'the image' : file === THUMBNAIL_FILE ? 'the thumbnail' : `the ${file.role} variant`;

/** What is wrong with a pose, from what was read of it. */
export function inspect(facts: PoseFacts, context: InspectContext): Problem[] {
  const { pose, objects, record } = facts;
  const problems: Problem[] = [];
  const found = (kind: FindingKind, key: string, detail: string, cannotRepair?: string) =>
    problems.push({ kind, key, detail, problem: !(NOTICE_KINDS as readonly string[]).includes(kind), ...(cannotRepair !== undefined && { cannotRepair }) });
  const deleteAdvice = `delete the pose (DELETE /poses/${pose.generationId}/${pose.poseId}, or pose-storage cleanup for its generation) or upload it again`;

  if (facts.lock === 'live') {
    found('busy_pose', objects.lock!.key, 'a writer holds its lock: not checked this time');
    return problems;
  }
  if (facts.lock === 'dead') found('expired_lock', objects.lock!.key, `left by a writer that stopped (modified ${objects.lock!.lastModified.toISOString()})`);
  for (const staged of objects.staged) {
    const age = context.now - (issuedAt(staged.key) ?? staged.lastModified).getTime();
    if (age <= context.stagingMaxAgeMs) continue;
    const hours = (age / 3_600_000).toFixed(1);
    found('unprocessed_upload', staged.key, parseStagingKey(staged.key) ? `staged ${hours} h ago, never processed` : `staged ${hours} h ago under a name no upload URL gives`);
  }
  const pending = objects.staged.length > 0;
  for (const backup of objects.backups.values()) found('leftover_backup', backup.key, 'a previous file, kept aside by a publication that stopped');

  const configured = new Set(context.files.all.map((file) => file.role));
  const image = objects.files.get(IMAGE_FILE.role);
  if (record.state === 'ok' && record.record.status === 'rejected') {
    found('rejection_record', objects.record!.key, `upload rejected: ${record.record.reason}`);
    const files = [...objects.files.values()];
    if (files.length > 0) found('rejected_with_files', files[0]!.key, `the pose was rejected, yet ${files.map((info) => info.key).join(' and ')} ${files.length > 1 ? 'are' : 'is'} published`);
    return problems;
  }
  const ready = record.state === 'ok' && record.record.status === 'ready' ? record.record : undefined;
  if (record.state === 'unreadable') found('unreadable_record', objects.record!.key, 'not a pose record');
  for (const [role, info] of objects.files) {
    if (!configured.has(role)) found('unconfigured_variant', info.key, `a ${role} variant, which POSE_VARIANTS no longer lists`);
  }

  if (!image) {
    const derived = [...objects.files.values()];
    if (derived.length > 0) {
      const left = derived.map((info) => info.key).join(' and ');
      found('missing_image', fileKey(pose, IMAGE_FILE), ready ? `its record says ready, only ${left} ${derived.length > 1 ? 'are' : 'is'} left` : `only ${left} ${derived.length > 1 ? 'are' : 'is'} left`);
    } else if (ready && !pending) {
      found('dangling_record', objects.record!.key, 'the record says ready, but the pose has no file left');
    }
    return problems;
  }

  const imageCheck = facts.checks.get(IMAGE_FILE.role) ?? { ok: false, problem: 'not read' };
  if (!imageCheck.ok) {
    found('broken_image', image.key, imageCheck.problem, pending ? 'its staged upload replaces it once processed' : `nothing valid to rebuild it from: ${deleteAdvice}`);
  } else if (imageCheck.format !== 'png') {
    found('broken_image', image.key, `a ${imageCheck.format.toUpperCase()}, not the PNG published images are`);
  }
  const repairable = imageCheck.ok ? undefined : 'it is made from the image, which cannot be decoded';
  const upright = imageCheck.ok ? imageCheck : undefined;
  /** The files made from the image that are there and are what their role makes. */
  const sound = new Set<string>();
  for (const file of context.files.all) {
    if (file === IMAGE_FILE) continue;
    const info = objects.files.get(file.role);
    const [missing, broken] = file === THUMBNAIL_FILE ? (['missing_thumbnail', 'broken_thumbnail'] as const) : (['missing_variant', 'broken_variant'] as const);
    if (!info) {
      found(missing, file === THUMBNAIL_FILE ? image.key : fileKey(pose, file), `no ${describe(file).replace(/^the /, '')} ${fileKey(pose, file)}`, repairable);
      continue;
    }
    const fault = fileVerdict(facts.checks.get(file.role) ?? { ok: false, problem: 'not read' }, file, upright);
    if (fault === undefined) sound.add(file.role);
    else found(broken, info.key, fault, repairable);
  }
  if (record.state === 'none') {
    found('unrecorded_pose', image.key, 'published files with no record (written before records existed)', imageCheck.ok ? undefined : 'a record is written only for an image that decodes');
  } else if (ready && imageCheck.ok) {
    // (An image that cannot be decoded is its own finding: its record disagrees with it as a consequence.)
    const sizes = [
      ready.bytes !== image.size ? `${ready.bytes} bytes, the image has ${image.size}` : undefined,
      ready.width !== imageCheck.width || ready.height !== imageCheck.height ? `${ready.width}x${ready.height}, the image is ${imageCheck.width}x${imageCheck.height}` : undefined,
    ].filter((text) => text !== undefined);
    // The record names the version of each file its publication wrote: a file of another version does not belong
    // with the others (a publication that stopped before its record). A file with a finding of its own is not
    // reported twice.
    const { files } = ready;
    const strangers = files
      ? context.files.all
          .filter((file) => (file === IMAGE_FILE ? imageCheck.format === 'png' : sound.has(file.role)) && objects.files.get(file.role)!.etag !== files[file.role])
          .map(describe)
      : [];
    const versions = strangers.length > 0 ? [`other versions than ${strangers.join(' and ')} now published`] : [];
    if (sizes.length + versions.length > 0) found('record_mismatch', objects.record!.key, `the record says ${[...sizes, ...versions].join('; ')}`);
  }
  return problems;
}
