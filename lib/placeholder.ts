import { rgbaToThumbHash } from 'thumbhash';
import type { Placeholder } from './pose-record.ts';

/**
 * What a gallery shows before a pose's image arrives: a ThumbHash (base64, ~25 bytes) and the dominant colour.
 * ThumbHash rather than BlurHash: at the same size it keeps the aspect ratio, alpha and more detail in the
 * low frequencies, and it needs no component counts to choose (README: variants).
 *
 * Computed from the thumbnail render (400x400, already encoded), reduced to 100x100 as ThumbHash requires: the
 * upload is never decoded again.
 */
export async function placeholderOf(thumbnail: Buffer, loadSharp: () => Promise<typeof import('sharp')>): Promise<Placeholder> {
  const { default: sharp } = await loadSharp();
  const { data, info } = await sharp(thumbnail).resize(100, 100, { fit: 'inside' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { thumbHash: Buffer.from(rgbaToThumbHash(info.width, info.height, data)).toString('base64'), dominantColor: dominantColorOf(data) };
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
