import { BACKUPS_PREFIX, ID_PATTERN, POSE_ID_PATTERN, PUBLIC_PREFIX, recordKey, type PoseRef } from './layout.ts';

/**
 * What a pose publishes, as one table: each file's role, key, content type and how it is rendered. Publishing,
 * its undo, delete, URLs, the status, the webhook, verify and its repair, usage, the smoke tests, the client and
 * the page all derive from it: adding a variant is one entry (POSE_VARIANTS), and this is the only module that
 * knows a file's name.
 *
 *   poses/{generationId}/{poseId}.png            role `image`: the upload, as PNG (the reference's)
 *   poses/{generationId}/{poseId}_thumb.png      role `thumbnail`: 400x400 cover, PNG quality 85 (the reference's)
 *   poses/{generationId}/{poseId}_{name}.{ext}   role `{name}.{ext}`: a configured variant, WebP, AVIF or JPEG
 *
 * Variants are never PNG, so no variant key is another pose's image or thumbnail: `{p}_{name}.{ext}` splits at its
 * last `_` (names have none), whatever the pose ids. A pose is whole when every file of its table is there, made
 * from the one image.
 */
export type VariantFormat = 'webp' | 'avif' | 'jpg';

export type Rendering =
  /** The published original. */
  | { kind: 'image' }
  /** The reference's 400x400 PNG thumbnail. */
  | { kind: 'thumbnail' }
  /** A variant: a box filled (cover), or a width with the aspect ratio kept (never upscaled). */
  | { kind: 'variant'; format: VariantFormat; width: number; height?: number | undefined };

export interface PoseFile {
  /** What the file is: its name in records (`files`), in `variants` maps and in findings. */
  role: string;
  contentType: string;
  rendering: Rendering;
}

export const IMAGE_FILE: PoseFile = { role: 'image', contentType: 'image/png', rendering: { kind: 'image' } };
export const THUMBNAIL_FILE: PoseFile = { role: 'thumbnail', contentType: 'image/png', rendering: { kind: 'thumbnail' } };

const CONTENT_TYPES: Record<VariantFormat, string> = { webp: 'image/webp', avif: 'image/avif', jpg: 'image/jpeg' };

/** A pose's files in the order they are published: the image first, the variants, the thumbnail last. */
export interface PoseFiles {
  readonly all: readonly PoseFile[];
  readonly variants: readonly PoseFile[];
  /** Whether a placeholder (ThumbHash and dominant colour) is computed with the thumbnail (POSE_VARIANTS `placeholder`). */
  readonly placeholder: boolean;
}

export const REFERENCE_FILES: PoseFiles = poseFiles([], false);

export function poseFiles(variants: readonly PoseFile[], placeholder: boolean): PoseFiles {
  return { all: [IMAGE_FILE, ...variants, THUMBNAIL_FILE], variants, placeholder };
}

/** The file name of a role after `{poseId}`. */
function suffixOf(role: string): string {
  if (role === IMAGE_FILE.role) return '.png';
  if (role === THUMBNAIL_FILE.role) return '_thumb.png';
  return `_${role}`;
}

/** The public key of a pose's file. */
export const fileKey = ({ generationId, poseId }: PoseRef, file: PoseFile): string => `${PUBLIC_PREFIX}${generationId}/${poseId}${suffixOf(file.role)}`;

/** Where a publication keeps a file of the pose's previous publication while it replaces it (private). */
export const backupKey = ({ generationId, poseId }: PoseRef, file: PoseFile = IMAGE_FILE): string =>
  `${BACKUPS_PREFIX}${generationId}/${poseId}${suffixOf(file.role)}`;

/** Every fixed key of a pose (its staged uploads aside): its files, their backups, its record. */
export const poseKeys = (pose: PoseRef, files: PoseFiles = REFERENCE_FILES): string[] => [
  ...files.all.map((file) => fileKey(pose, file)).reverse(),
  recordKey(pose),
  ...files.all.map((file) => backupKey(pose, file)),
];

/** The public key of a role named in a record, or undefined for a name that is no role (a record from elsewhere). */
export function keyOfRole(pose: PoseRef, role: string): string | undefined {
  return role === IMAGE_FILE.role || role === THUMBNAIL_FILE.role || new RegExp(`^${VARIANT_ROLE}$`).test(role)
    ? `${PUBLIC_PREFIX}${pose.generationId}/${pose.poseId}${suffixOf(role)}`
    : undefined;
}

export const imageKey = (pose: PoseRef): string => fileKey(pose, IMAGE_FILE);
export const thumbnailKey = (pose: PoseRef): string => fileKey(pose, THUMBNAIL_FILE);

const ID = '[A-Za-z0-9_-]{1,128}';
const VARIANT_ROLE = '[a-z][a-z0-9]{0,15}\\.(?:webp|avif|jpg)';
/** `{poseId}{suffix}` of any role, configured or not (the pose id lazily, so `p_thumb.png` is p's thumbnail). */
const FILE_NAME = new RegExp(`^(${ID}?)(?:(_thumb)\\.png|_(${VARIANT_ROLE})|\\.png)$`);

/** The pose and the role of a file name under `poses/{g}/` or `backups/{g}/`, or undefined for another name. */
function parseFileName(name: string): { poseId: string; role: string } | undefined {
  const match = FILE_NAME.exec(name);
  if (!match || !POSE_ID_PATTERN.test(match[1]!)) return undefined;
  const role = match[2] ? THUMBNAIL_FILE.role : (match[3] ?? IMAGE_FILE.role);
  return { poseId: match[1]!, role };
}

/** The pose and role of a published key (a pose's file, configured or not), or undefined (a custom file). */
export function publishedFileOf(key: string): { pose: PoseRef; role: string } | undefined {
  const match = new RegExp(`^${PUBLIC_PREFIX}(${ID})/([^/]+)$`).exec(key);
  const file = match && parseFileName(match[2]!);
  return file ? { pose: { generationId: match[1]!, poseId: file.poseId }, role: file.role } : undefined;
}

/**
 * The pose a key of a generation's areas belongs to: its published files and their backups, `staging/g/p/...`,
 * `records/g/p.json`, `locks/g/p.json`. Undefined for other files (custom files saved under poses/ with saveFile).
 */
export function poseOfKey(key: string): PoseRef | undefined {
  const published = publishedFileOf(key) ?? (key.startsWith(BACKUPS_PREFIX) ? publishedFileOf(`${PUBLIC_PREFIX}${key.slice(BACKUPS_PREFIX.length)}`) : undefined);
  if (published) return published.pose;
  const match = new RegExp(`^(?:staging/(${ID})/(${ID})/[^/]+|(?:records|locks)/(${ID})/(${ID})\\.json)$`).exec(key);
  const [generationId, poseId] = match ? [match[1] ?? match[3]!, match[2] ?? match[4]!] : [];
  return generationId !== undefined && poseId !== undefined && ID_PATTERN.test(generationId) && POSE_ID_PATTERN.test(poseId)
    ? { generationId, poseId }
    : undefined;
}

const FORMATS: readonly VariantFormat[] = ['webp', 'avif', 'jpg'];
const MAX_SIDE = 4096;

/**
 * POSE_VARIANTS: a comma-separated list of `{name}.{format}:{width}x{height}` (a box, filled: fit cover) or
 * `{name}.{format}:{width}w` (that width, the aspect ratio kept, never upscaled), format `webp`, `avif` or `jpg`,
 * and the word `placeholder` (a ThumbHash and the dominant colour in the status). The files, or each problem in
 * a sentence naming the token.
 */
export function parsePoseVariants(text: string): { files: PoseFiles } | { problems: string[] } {
  const problems: string[] = [];
  const variants: PoseFile[] = [];
  let placeholder = false;
  for (const token of text.split(',').map((item) => item.trim()).filter((item) => item.length > 0)) {
    if (token === 'placeholder') {
      placeholder = true;
      continue;
    }
    const match = /^([^:]+):(?:(\d{1,5})x(\d{1,5})|(\d{1,5})w)$/.exec(token);
    const [name, format] = match ? (match[1]!.split('.') as [string, string | undefined]) : [];
    const width = Number(match?.[2] ?? match?.[4]);
    const height = match?.[3] === undefined ? undefined : Number(match[3]);
    const quoted = JSON.stringify(token.length > 40 ? `${token.slice(0, 40)}…` : token);
    if (!match || name === undefined || format === undefined || match[1]!.split('.').length !== 2) {
      problems.push(`${quoted} is not {name}.{format}:{width}x{height} or {name}.{format}:{width}w (such as thumb.webp:400x400 or preview.webp:1024w)`);
    } else if (!/^[a-z][a-z0-9]{0,15}$/.test(name)) {
      problems.push(`${quoted}: its name must be 1 to 16 lowercase letters and digits, starting with a letter`);
    } else if (format === 'png') {
      problems.push(`${quoted}: a variant cannot be a PNG (the image and the thumbnail are the pose's PNGs); use webp, avif or jpg`);
    } else if (!(FORMATS as readonly string[]).includes(format)) {
      problems.push(`${quoted}: its format must be webp, avif or jpg`);
    } else if ([width, height ?? width].some((side) => side < 16 || side > MAX_SIDE)) {
      problems.push(`${quoted}: its sides must be between 16 and ${MAX_SIDE} pixels`);
    } else if (variants.some((variant) => variant.role === `${name}.${format}`)) {
      problems.push(`${quoted}: ${name}.${format} is listed twice`);
    } else {
      const rendering = { kind: 'variant' as const, format: format as VariantFormat, width, height };
      variants.push({ role: `${name}.${format}`, contentType: CONTENT_TYPES[format as VariantFormat], rendering });
    }
  }
  return problems.length > 0 ? { problems } : { files: poseFiles(variants, placeholder) };
}
