/**
 * Two distinguishable uploads of one pose (red and blue, different sizes), what each renders to, and how to
 * stage them and tell which one a published file came from: the race and failure tests' common ground. With a
 * table of variants (VARIANTS), every file of the pose is told apart, not only the image and the thumbnail.
 */
import sharp from 'sharp';
import { parseConfig } from '../../lib/config.ts';
import { newStagingKey, recordKey, stagingPrefix, type PoseRef } from '../../lib/layout.ts';
import { createLogger } from '../../lib/logger.ts';
import { fileKey, parsePoseVariants, REFERENCE_FILES, type PoseFiles } from '../../lib/pose-files.ts';
import { bodyOf, renderPose, type RenderedPose } from '../../lib/pose-image.ts';
import { createServices, type Services } from '../../lib/services.ts';
import type { ObjectStore } from '../../lib/storage/object-store.ts';

/** The variants the tests publish besides the reference's files: a box and a width, two formats. */
export const VARIANTS_ENV = 'thumb.webp:400x400,preview.avif:64w';

export const VARIANT_FILES: PoseFiles = (() => {
  const parsed = parsePoseVariants(VARIANTS_ENV);
  if (!('files' in parsed)) throw new Error(parsed.problems.join('; '));
  return parsed.files;
})();

export interface Upload {
  bytes: Buffer;
  rendered: RenderedPose;
}

export interface TwoUploads {
  red: Upload;
  blue: Upload;
  /** Which upload a published file of a role (`image`, `thumbnail`, a variant's) is. */
  which(body: Buffer | undefined, role: string): 'red' | 'blue' | 'none' | 'other';
}

export async function twoUploads(files: PoseFiles = REFERENCE_FILES): Promise<TwoUploads> {
  const upload = async (width: number, height: number, background: string): Promise<Upload> => {
    const bytes = await sharp({ create: { width, height, channels: 3, background } }).png().toBuffer();
    return { bytes, rendered: await renderPose(bytes, { maxInputPixels: 1e6, variants: files.variants }) };
  };
  const [red, blue] = await Promise.all([upload(96, 64, '#c33'), upload(80, 120, '#36c')]);
  const fileOf = (role: string) => files.all.find((file) => file.role === role)!;
  const is = (upload: Upload, body: Buffer, role: string) => body.equals(bodyOf(upload.rendered, fileOf(role)));
  return {
    red,
    blue,
    which: (body, role) => (body === undefined ? 'none' : is(red, body, role) ? 'red' : is(blue, body, role) ? 'blue' : 'other'),
  };
}

/**
 * Which upload the pose's files are (one name when every file of the table agrees, else each role's), what its
 * record says, and how many uploads are staged.
 */
export async function poseState(store: ObjectStore, pose: PoseRef, uploads: TwoUploads, files: PoseFiles = REFERENCE_FILES) {
  const bodies = await Promise.all(files.all.map(async (file) => [file.role, uploads.which((await store.get(fileKey(pose, file)))?.body, file.role)] as const));
  const names = new Set(bodies.map(([, name]) => name));
  const record = await store.get(recordKey(pose));
  let staged = 0;
  for await (const _ of store.list(stagingPrefix(pose))) staged++;
  return {
    files: names.size === 1 ? bodies[0]![1] : bodies.map(([role, name]) => `${role}:${name}`).join(' '),
    record: record ? (JSON.parse(record.body.toString()) as { status: string }).status : 'none',
    staged,
  };
}

/** Puts `upload` where a client's PUT would (a fresh staging key), and returns the key. */
export async function stage(store: ObjectStore, pose: PoseRef, upload: Upload): Promise<string> {
  const key = newStagingKey(pose);
  await store.put(key, upload.bytes, { contentType: 'image/png' });
  return key;
}

/** The services over `store`, logging nothing (local mode on `uploadPath`), with POSE_VARIANTS when given. */
export function quietServices(store: ObjectStore, uploadPath: string, variants = ''): Services {
  return createServices({ config: parseConfig({ UPLOAD_PATH: uploadPath, POSE_VARIANTS: variants }), store, logger: createLogger(() => undefined) });
}
