/**
 * Where the time of one upload goes: `node test/bench/profile-case.ts <image> [quick]`, one thread.
 * libvips streams decode, resize and encode through one pipeline, so stages are timed as cumulative
 * pipelines (decode; decode + resize; + quantise with deflate level 0; + deflate at our level) and each
 * stage is the difference. The store I/O is DirectoryStore's own (atomic writes with fsync) on a temp dir,
 * and `processUpload` is the thumbnail handler's whole work for the upload (local-publish.ts). Prints one JSON line.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { sniffFormat } from '../../lib/image-format.ts';
import { recordKey } from '../../lib/layout.ts';
import { imageKey, thumbnailKey } from '../../lib/pose-files.ts';
import { IMAGE_PNG, renderPose, renderThumbnail, THUMBNAIL_PNG, THUMBNAIL_SIZE } from '../../lib/pose-image.ts';
import { medianTime } from './common.ts';
import { localPublisher } from './local-publish.ts';

export interface Profile {
  image: string;
  format: string;
  /** Medians, ms. */
  header: number;
  decode: number;
  decodeResize: number;
  quantised: number;
  thumbnail: number;
  renderThumbnail: number;
  conversion: number | undefined;
  renderPose: number;
  storeGet: number;
  storePut: number;
  storeDelete: number;
  processUpload: number;
}

const [file, quickFlag] = process.argv.slice(2);
if (!file) throw new Error('usage: node test/bench/profile-case.ts <image> [quick]');
const quick = quickFlag === 'quick';
sharp.concurrency(1);
sharp.cache(false);

const timed = (fn: () => Promise<unknown>, setup?: () => Promise<void>) => medianTime(fn, { quick, ...(setup && { setup }) });

const bytes = await readFile(file);
const format = sniffFormat(bytes);
if (!format) throw new Error(`${file} is not an image`);
const options = { maxInputPixels: 50_000_000 };
const input = () => sharp(bytes, { limitInputPixels: options.maxInputPixels, failOn: 'error' });
const thumbnail = () => input().autoOrient().resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' });

const header = await timed(() => input().metadata());
// The decode floor, as in the thumbnail table: a PNG decoded whole (`.raw()`: PNG has no shrink-on-load); a
// JPEG/WebP at its shrink-on-load scale, then a nearest-neighbour subsample to 400x400 (well under a millisecond).
const decode = await timed(() =>
  format === 'png'
    ? input().raw().toBuffer()
    : input().resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover', kernel: 'nearest' }).raw().toBuffer(),
);
const decodeResize = await timed(() => thumbnail().raw().toBuffer());
const quantised = await timed(() => thumbnail().png({ ...THUMBNAIL_PNG, compressionLevel: 0 }).toBuffer());
const thumbnailMs = await timed(() => thumbnail().png(THUMBNAIL_PNG).toBuffer());
const renderThumbnailMs = await timed(() => renderThumbnail(bytes, options));
const conversion = format === 'png' ? undefined : await timed(() => input().autoOrient().png(IMAGE_PNG).toBuffer());
const renderPoseMs = await timed(() => renderPose(bytes, options));

// The store's part, through the very adapter and services the local thumbnail handler uses.
const publisher = await localPublisher(bytes);
try {
  const { store } = publisher.services.storage;
  const pose = { generationId: 'bench', poseId: 'profile' };
  const { stagingKey, stage } = publisher;
  const rendered = await renderPose(bytes, options);
  const storeGet = await timed(() => store.get(stagingKey), stage);
  const storePut = await timed(async () => {
    await store.put(imageKey(pose), rendered.image, { contentType: 'image/png' });
    await store.put(thumbnailKey(pose), rendered.thumbnail, { contentType: 'image/png' });
  });
  const storeDelete = await timed(() => store.delete([recordKey(pose), stagingKey]), stage);
  const processUpload = await timed(() => publisher.processUpload(), stage);

  const profile: Profile = {
    image: path.basename(file),
    format,
    header,
    decode,
    decodeResize,
    quantised,
    thumbnail: thumbnailMs,
    renderThumbnail: renderThumbnailMs,
    conversion,
    renderPose: renderPoseMs,
    storeGet,
    storePut,
    storeDelete,
    processUpload,
  };
  process.stdout.write(`${JSON.stringify(profile)}\n`);
} finally {
  await publisher.close();
}
