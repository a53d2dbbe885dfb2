/**
 * What variants cost: `node test/bench/variants-case.ts <image> [quick] [publish]`, on the threads its environment
 * gives libvips and libuv (run.ts: one, then two). Prints one JSON line. `publish` measures only processUpload.
 * - renderPose and processUpload (local store, local-publish.ts) without variants and with TYPICAL_VARIANTS;
 * - each variant alone: renderPose with it minus renderPose without, alternated pairs (its encode and the switch
 *   to one shared decode), and its bytes;
 * - the placeholder: renderPose with it minus renderPose without (the split of the thumbnail's pipeline and
 *   placeholderOf), and placeholderOf alone on the thumbnail's 400x400 pixels;
 * - the quality of the PNG thumbnail and of each 400x400 variant against the same unquantised 400x400 resize
 *   (quality.ts): a variant as close to it as the PNG thumbnail is, is as close to the thumbnail.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { parsePoseVariants, type PoseFile } from '../../lib/pose-files.ts';
import { renderPose, THUMBNAIL_SIZE } from '../../lib/pose-image.ts';
import { placeholderOf } from '../../lib/placeholder.ts';
import { medianTime, pairedDifference } from './common.ts';
import { localPublisher } from './local-publish.ts';
import { compare, type Quality } from './quality.ts';

/** A gallery's set: the thumbnail in WebP and AVIF, a 1024-wide WebP preview, and the placeholder. */
export const TYPICAL_VARIANTS = 'thumb.webp:400x400,thumb.avif:400x400,preview.webp:1024w,placeholder';

/** processUpload's medians, ms, without variants and with the set. */
export interface PublishFigures {
  publishReference: number;
  publishAll: number;
}

export interface VariantFigures extends PublishFigures {
  image: string;
  /** The POSE_VARIANTS measured (TYPICAL_VARIANTS). */
  set: string;
  /** Medians, ms. */
  renderReference: number;
  renderAll: number;
  /** The same publications with two threads (a Lambda function of 3,538 MB or more has two vCPUs). */
  twoThreads?: PublishFigures;
  /** renderPose with the placeholder minus without; placeholderOf alone, warm and on its first call. */
  placeholderRender: number;
  placeholder: number;
  placeholderFirst: number;
  thumbnailBytes: number;
  thumbnailQuality: Quality;
  variants: { role: string; ms: number; bytes: number; quality?: Quality }[];
}

const [file, ...flags] = process.argv.slice(2);
if (!file) throw new Error('usage: node test/bench/variants-case.ts <image> [quick] [publish]');
const quick = flags.includes('quick');
sharp.cache(false);

const parsed = parsePoseVariants(TYPICAL_VARIANTS);
if (!('files' in parsed)) throw new Error(parsed.problems.join('; '));
const { variants } = parsed.files;
const bytes = await readFile(file);
const options = { maxInputPixels: 50_000_000 };
const timed = (fn: () => Promise<unknown>, setup?: () => Promise<void>) => medianTime(fn, { quick, ...(setup && { setup }) });
const render = (only: readonly PoseFile[], placeholder = false) => renderPose(bytes, { ...options, variants: only, placeholder });
const publishing = async (): Promise<PublishFigures> => {
  const [withVariants, without] = [await localPublisher(bytes, { POSE_VARIANTS: TYPICAL_VARIANTS }), await localPublisher(bytes)];
  try {
    return {
      publishReference: await timed(() => without.processUpload(), without.stage),
      publishAll: await timed(() => withVariants.processUpload(), withVariants.stage),
    };
  } finally {
    await Promise.all([withVariants.close(), without.close()]);
  }
};
if (flags.includes('publish')) {
  process.stdout.write(`${JSON.stringify(await publishing())}\n`);
  process.exit(0);
}

// The first placeholder of a fresh process, before any render: what a function's first publication pays while
// V8 still interprets the loops.
const thumbnailRaw = await sharp(bytes).autoOrient().resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' }).raw().toBuffer({ resolveWithObject: true });
const pixels = { data: thumbnailRaw.data, width: thumbnailRaw.info.width, height: thumbnailRaw.info.height, channels: thumbnailRaw.info.channels };
const firstStarted = performance.now();
placeholderOf(pixels);
const placeholderFirst = performance.now() - firstStarted;
const renderReference = await timed(() => render([]));
const renderAll = await timed(() => render(variants, true));
const all = await render(variants, true);
// Renders with and without an output, alternated, so that a drift of the process (its heap after the variants of
// a 5K image) weighs on both alike: the median of the pairs' differences.
const pairs = quick ? 5 : 15;
const placeholderRender = await pairedDifference(() => render([], true), () => render([]), pairs);
const placeholder = await timed(async () => placeholderOf(pixels));
// The thumbnail's own pipeline without the palette: what both the PNG and the variants approximate.
const exact = await sharp(bytes).autoOrient().resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' }).png({ compressionLevel: 0 }).toBuffer();
const figures: VariantFigures['variants'] = [];
for (const variant of variants) {
  const ms = await pairedDifference(() => render([variant]), () => render([]), pairs);
  const body = all.variants[variant.role]!;
  const square = variant.rendering.kind === 'variant' && variant.rendering.width === THUMBNAIL_SIZE && variant.rendering.height === THUMBNAIL_SIZE;
  figures.push({ role: variant.role, ms, bytes: body.length, ...(square && { quality: await compare(await sharp(body).png().toBuffer(), exact) }) });
}

const result: VariantFigures = {
  image: path.basename(file),
  set: TYPICAL_VARIANTS,
  renderReference,
  renderAll,
  ...(await publishing()),
  placeholderRender,
  placeholder,
  placeholderFirst,
  thumbnailBytes: all.thumbnail.length,
  thumbnailQuality: await compare(all.thumbnail, exact),
  variants: figures,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
