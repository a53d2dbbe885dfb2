/**
 * verify --repair: makes one locked pose whole, or absent, as far as its objects allow. Files are paired only
 * when they are known to belong together (each the version its record names); otherwise every file made from
 * the image (the thumbnail, the variants) and the record are made again from the image kept. Every request goes
 * through the lock's store (its deadline: pose-lock.ts).
 */
import { parseStagingKey } from '../layout.ts';
import type { PoseLock } from '../pose-lock.ts';
import { fileKey, IMAGE_FILE, type PoseFiles } from '../pose-files.ts';
import { bodyOf } from '../pose-image.ts';
import { readRecordState, writeRecord, type UploadRef } from '../pose-record.ts';
import type { PoseStorage } from '../pose-storage.ts';
import type { ObjectInfo } from '../storage/object-store.ts';
import { fileVerdict, type ImageCheck } from './verify-inspect.ts';
import type { PoseObjects } from './verify-scan.ts';

export interface RepairContext {
  storage: PoseStorage;
  files: PoseFiles;
  /** Cache-Control of published files. */
  cacheControl: string;
  /** What a file decodes to (verify's cache of verdicts by version). */
  decode(info: ObjectInfo): Promise<ImageCheck>;
  now: number;
  stagingMaxAgeMs: number;
}

/** Repairs what can be repaired of a pose under its lock; returns the keys to remove with the lock. */
export async function makeWhole(lock: PoseLock, objects: PoseObjects, context: RepairContext): Promise<string[]> {
  const { pose, store } = lock;
  const remove: string[] = [...[...objects.backups.values()].map((backup) => backup.key)];
  const record = objects.record ? await readRecordState(store, pose) : ({ state: 'none' } as const);
  const ready = record.state === 'ok' && record.record.status === 'ready' ? record.record : undefined;
  const published = (contentType: string) => ({ contentType, cacheControl: context.cacheControl });
  // Whether an object is the image the record names (by version; records written before versions, by size).
  const isRecordedImage = (info: ObjectInfo | undefined) =>
    ready !== undefined && info !== undefined && (ready.files ? info.etag === ready.files[IMAGE_FILE.role] : info.size === ready.bytes);

  let image = objects.files.get(IMAGE_FILE.role);
  const keptImage = objects.backups.get(IMAGE_FILE.role);
  if (keptImage && !isRecordedImage(image) && isRecordedImage(keptImage)) {
    // A publication stopped between replacing the image and writing its record: the image kept aside is the one
    // the record names. Put it back; the files made from it are made again below unless they are the recorded ones.
    lock.assertHeld();
    await store.copy(keptImage.key, fileKey(pose, IMAGE_FILE), published(IMAGE_FILE.contentType));
    image = await store.head(fileKey(pose, IMAGE_FILE));
  }
  for (const staged of objects.staged) {
    // Uploads were processed before the lock was taken; what is left under a foreign name is no upload.
    if (!parseStagingKey(staged.key) && context.now - staged.lastModified.getTime() > context.stagingMaxAgeMs) remove.push(staged.key);
  }
  const configured = new Set(context.files.all.map((file) => file.role));
  // Files of variants POSE_VARIANTS no longer lists.
  for (const [role, info] of objects.files) if (!configured.has(role)) remove.push(info.key);
  if (record.state === 'ok' && record.record.status === 'rejected') {
    remove.push(...[...objects.files.values()].map((info) => info.key));
    return remove;
  }
  const derived = context.files.all.filter((file) => file !== IMAGE_FILE);
  if (!image) {
    const left = derived.flatMap((file) => objects.files.get(file.role) ?? []);
    remove.push(...left.map((info) => info.key));
    if (objects.record && (left.length > 0 || objects.staged.length === 0)) remove.push(objects.record.key);
    return remove;
  }
  const imageCheck = await context.decode(image);
  if (!imageCheck.ok) return remove; // nothing to rebuild from (reported as such)
  const files = ready?.files;
  const imagePaired = files !== undefined && image.etag === files[IMAGE_FILE.role];
  /** A file made from the image that is sound and the very version the record pairs with this image. */
  const keep = new Set<string>();
  for (const file of derived) {
    const info = objects.files.get(file.role);
    if (!info || !imagePaired || info.etag !== files[file.role]) continue;
    if (fileVerdict(await context.decode(info), file, imageCheck) === undefined) keep.add(file.role);
  }
  const recordOk = keep.size === derived.length && ready!.bytes === image.size && ready!.width === imageCheck.width && ready!.height === imageCheck.height;
  if (imageCheck.format === 'png' && recordOk) return remove;

  const stored = await store.get(image.key);
  if (!stored) return remove;
  const rendered = await context.storage.render(stored.body);
  const versions: Record<string, string> = { [IMAGE_FILE.role]: image.etag };
  if (!rendered.imageIsInput) {
    lock.assertHeld();
    versions[IMAGE_FILE.role] = (await store.put(image.key, rendered.image, published(IMAGE_FILE.contentType))).etag;
  }
  for (const file of derived) {
    const info = objects.files.get(file.role);
    if (info && keep.has(file.role) && rendered.imageIsInput) {
      versions[file.role] = info.etag;
      continue;
    }
    lock.assertHeld();
    versions[file.role] = (await store.put(fileKey(pose, file), bodyOf(rendered, file), published(file.contentType))).etag;
  }
  const found: UploadRef = { key: image.key, etag: image.etag, uploadedAt: image.lastModified.toISOString() };
  lock.assertHeld();
  await writeRecord(store, pose, {
    status: 'ready',
    upload: ready?.upload ?? found,
    width: rendered.width,
    height: rendered.height,
    bytes: rendered.image.length,
    publishedAt: new Date().toISOString(),
    files: versions,
    ...(rendered.placeholder && { placeholder: rendered.placeholder }),
  });
  return remove;
}
