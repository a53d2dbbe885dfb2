import { rgbaToThumbHash } from 'thumbhash';
import type { Placeholder } from './pose-record.ts';

/** Raw 8-bit pixels as sharp gives them: 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA) channels. */
export interface RawPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/**
 * The side the thumbnail is reduced to before the hash (ThumbHash takes at most 100x100). Its few cosine
 * components need no more than 32 samples a side: the hashes of the bench corpus at 32 and at 100 differ in a
 * character or two and look the same, and the first hash in a fresh process (interpreted JavaScript, before the
 * JIT) costs a third: 16-29 ms rather than 45-60 ms. Warm, either is about a millisecond.
 */
const HASH_MAX_SIDE = 32;

/**
 * What a gallery shows before a pose's image arrives: a ThumbHash (base64, ~25 bytes) and the dominant colour.
 * ThumbHash rather than BlurHash: at the same size it keeps the aspect ratio, alpha and more detail in the
 * low frequencies, and it needs no component counts to choose (README: variants).
 *
 * Computed from the thumbnail render's own 400x400 pixels, before they are encoded, in plain JavaScript (a box
 * reduction to 32x32, then the hash): no decode, no second libvips pipeline, about a millisecond once the
 * function is warm (BENCHMARKS.md, variants). Decoding the encoded PNG thumbnail again took 5 ms; a libvips
 * resize to 32x32 costs 3 ms, more than the whole reduction in JavaScript.
 */
export function placeholderOf(pixels: RawPixels): Placeholder {
  const small = reducedRgba(pixels, HASH_MAX_SIDE);
  return { thumbHash: Buffer.from(rgbaToThumbHash(small.width, small.height, small.data)).toString('base64'), dominantColor: dominantColorOf(small.data) };
}

/** RGBA pixels at most `maxSide` on a side, each the average of a whole-number box of the input's. */
function reducedRgba({ data, width, height, channels }: RawPixels, maxSide: number): { data: Uint8Array; width: number; height: number } {
  if (![1, 2, 3, 4].includes(channels) || data.length !== width * height * channels) {
    throw new Error(`placeholderOf: ${width}x${height}x${channels} pixels need ${width * height * channels} bytes, not ${data.length}`);
  }
  const factor = Math.ceil(Math.max(width, height) / maxSide);
  const [outWidth, outHeight] = [Math.ceil(width / factor), Math.ceil(height / factor)];
  const sums = new Uint32Array(outWidth * outHeight * 4);
  // Channel offsets of green and blue in an input pixel (grey repeats its one channel). The loop allocates
  // nothing per pixel: it runs over 160,000 pixels each time a pose is published.
  const [green, blue] = channels < 3 ? [0, 0] : [1, 2];
  const alpha = channels === 2 || channels === 4 ? channels - 1 : -1;
  const outColumn = Uint32Array.from({ length: width }, (_, x) => Math.floor(x / factor) * 4);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / factor) * outWidth * 4;
    let at = y * width * channels;
    for (let x = 0; x < width; x++, at += channels) {
      const sum = row + outColumn[x]!;
      sums[sum] = sums[sum]! + data[at]!;
      sums[sum + 1] = sums[sum + 1]! + data[at + green]!;
      sums[sum + 2] = sums[sum + 2]! + data[at + blue]!;
      if (alpha >= 0) sums[sum + 3] = sums[sum + 3]! + data[at + alpha]!;
    }
  }
  const rgba = new Uint8Array(sums.length);
  for (let outY = 0; outY < outHeight; outY++) {
    const boxHeight = Math.min(factor, height - outY * factor);
    for (let outX = 0; outX < outWidth; outX++) {
      // A box on the right or bottom edge has fewer pixels.
      const count = boxHeight * Math.min(factor, width - outX * factor);
      const sum = (outY * outWidth + outX) * 4;
      for (let c = 0; c < 3; c++) rgba[sum + c] = Math.round(sums[sum + c]! / count);
      rgba[sum + 3] = alpha < 0 ? 255 : Math.round(sums[sum + 3]! / count);
    }
  }
  return { data: rgba, width: outWidth, height: outHeight };
}

/**
 * The most common colour, by 4-bit-per-channel buckets weighted by opacity (an average of a red figure on a blue
 * background would be a purple in neither), reported as the mean of its bucket.
 */
export function dominantColorOf(rgba: Uint8Array): string {
  const buckets = new Map<number, { weight: number; r: number; g: number; b: number }>();
  let best: { weight: number; r: number; g: number; b: number } | undefined;
  for (let i = 0; i + 3 < rgba.length; i += 4) {
    const [r, g, b, a] = [rgba[i]!, rgba[i + 1]!, rgba[i + 2]!, rgba[i + 3]!];
    if (a === 0) continue;
    const key = ((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4);
    const bucket = buckets.get(key) ?? { weight: 0, r: 0, g: 0, b: 0 };
    bucket.weight += a;
    bucket.r += r * a;
    bucket.g += g * a;
    bucket.b += b * a;
    buckets.set(key, bucket);
    if (!best || bucket.weight > best.weight) best = bucket;
  }
  if (!best) return '#000000'; // fully transparent: no colour to show
  const hex = (sum: number) => Math.round(sum / best.weight).toString(16).padStart(2, '0');
  return `#${hex(best.r)}${hex(best.g)}${hex(best.b)}`;
}
