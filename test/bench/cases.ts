/**
 * The thumbnail cases, each timed in its own process by case.ts: our pipeline, the reference's settings done
 * plainly, the peers (jimp, ImageMagick), the decode floors, and the encoder variants explored to choose our
 * settings. Libraries are imported lazily, so a case's process holds only what the case uses (its peak RSS
 * is its own).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PngOptions, Sharp } from 'sharp';
import type { ImageFormat } from '../../lib/image-format.ts';
import { IMAGEMAGICK } from './common.ts';

const execFileAsync = promisify(execFile);

/** lib/config.ts's default MAX_INPUT_PIXELS (not imported: the case processes stay free of zod). */
export const MAX_INPUT_PIXELS = 50_000_000;
const SIZE = 400;

export type CaseGroup = 'ours' | 'reference' | 'peer' | 'floor' | 'variant' | 'image';

export interface CaseInput {
  file: string;
  bytes: Buffer;
  format: ImageFormat;
  /** A scratch directory of the process. */
  tmp: string;
}

export interface BenchCase {
  id: string;
  label: string;
  group: CaseGroup;
  /** Image formats the case can read (all by default). */
  formats?: readonly ImageFormat[];
  /** Fewest timed runs (slow cases need fewer to be stable). */
  minRuns?: number;
  /** Once per process, before the warm-up run. */
  setup?: () => Promise<void>;
  /** The timed work; returns the thumbnail (or the decoded pixels for a floor). */
  run: (input: CaseInput) => Promise<Buffer>;
  /** Whether `run` returns a PNG to keep (thumbnails, converted images), as opposed to raw pixels. */
  producesPng: boolean;
  /** The same pipeline without palette quantisation, for the quality figures (untimed). */
  unquantised?: (input: CaseInput) => Promise<Buffer>;
  /** The case runs another program: its peak RSS is that program's, measured by the case itself. */
  externalRss?: (input: CaseInput) => Promise<number>;
}

async function loadSharp(): Promise<typeof import('sharp').default> {
  const { default: sharp } = await import('sharp');
  sharp.cache(false); // as renderPose does; a cached decode would flatter repeated runs
  sharp.concurrency(1);
  return sharp;
}

let sharpLoaded: typeof import('sharp').default | undefined;
const sharpOf = (bytes: Buffer): Sharp => sharpLoaded!(bytes, { limitInputPixels: MAX_INPUT_PIXELS });
const sharpSetup = async (): Promise<void> => {
  sharpLoaded = await loadSharp();
};

/** sharp's 400x400 cover resize, not quantised: what the quantised thumbnails are compared with. */
const sharpUnquantised = (input: CaseInput): Promise<Buffer> =>
  sharpOf(input.bytes).autoOrient().resize(SIZE, SIZE, { fit: 'cover' }).png({ compressionLevel: 1 }).toBuffer();

/** A thumbnail encoded by sharp with the given PNG options (the reference's pipeline, other knobs). */
export function sharpThumbnail(id: string, label: string, group: CaseGroup, png: PngOptions): BenchCase {
  return {
    id,
    label,
    group,
    setup: sharpSetup,
    producesPng: true,
    run: async ({ bytes }) => sharpOf(bytes).resize(SIZE, SIZE, { fit: 'cover' }).png(png).toBuffer(),
    unquantised: sharpUnquantised,
  };
}

/** `variant:e1:d0.5:c6` = effort 1, dither 0.5, compression level 6 (quality 85 always). */
export function variantCase(id: string): BenchCase {
  const match = /^variant:e(\d+):d([\d.]+):c(\d)$/.exec(id);
  if (!match) throw new Error(`Unknown variant ${id}`);
  const [effort, dither, compressionLevel] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return sharpThumbnail(id, `effort ${effort}, dither ${dither}, level ${compressionLevel}`, 'variant', {
    quality: 85,
    effort,
    dither,
    compressionLevel,
  });
}

export const variantId = (effort: number, dither: number, level: number): string => `variant:e${effort}:d${dither}:c${level}`;

/** `image:c3:af` = the full-size PNG of a JPEG/WebP at deflate level 3 with adaptive filtering (`nf`: none). */
export function imageCase(id: string): BenchCase {
  const match = /^image:c(\d):(af|nf)$/.exec(id);
  if (!match) throw new Error(`Unknown conversion ${id}`);
  const [compressionLevel, adaptiveFiltering] = [Number(match[1]), match[2] === 'af'];
  return {
    id,
    label: `level ${compressionLevel}, ${adaptiveFiltering ? 'adaptive filtering' : 'no filtering'}`,
    group: 'image',
    formats: ['jpeg', 'webp'],
    minRuns: 3,
    setup: sharpSetup,
    producesPng: true,
    run: async ({ bytes }) => sharpOf(bytes).autoOrient().png({ compressionLevel, adaptiveFiltering }).toBuffer(),
  };
}

export const imageId = (level: number, adaptive: boolean): string => `image:c${level}:${adaptive ? 'af' : 'nf'}`;

/** ImageMagick's command for a 400x400 cover thumbnail, as a user would write it (JPEG decoded at scale too). */
function magickArgs(input: CaseInput, output: string, quantise: boolean): string[] {
  return [
    // Lets libjpeg decode at 1/2, 1/4 or 1/8 scale as long as the result covers 400x400 (sharp's shrink-on-load).
    ...(input.format === 'jpeg' ? ['-define', `jpeg:size=${SIZE}x${SIZE}`] : []),
    input.file,
    '-thumbnail',
    `${SIZE}x${SIZE}^`,
    '-gravity',
    'center',
    '-extent',
    `${SIZE}x${SIZE}`,
    ...(quantise ? ['-colors', '256', `png8:${output}`] : [`png:${output}`]),
  ];
}

async function magick(input: CaseInput, quantise: boolean): Promise<Buffer> {
  const output = path.join(input.tmp, quantise ? 'magick.png' : 'magick-unquantised.png');
  await execFileAsync(IMAGEMAGICK, magickArgs(input, output, quantise));
  return readFile(output);
}

async function jimpThumbnail(input: CaseInput, quantise: boolean): Promise<Buffer> {
  const { Jimp } = await import('jimp');
  const image = await Jimp.read(input.bytes);
  image.cover({ w: SIZE, h: SIZE });
  if (quantise) image.quantize({ colors: 256 });
  return image.getBuffer('image/png');
}

/** The fixed cases (variants and conversions are parsed from their ids). */
export const CASES: Record<string, BenchCase> = {
  ours: {
    id: 'ours',
    label: 'ours: renderPose thumbnail path',
    group: 'ours',
    setup: sharpSetup,
    producesPng: true,
    run: async ({ bytes }) => {
      const { renderThumbnail } = await import('../../lib/pose-image.ts');
      return renderThumbnail(bytes, { maxInputPixels: MAX_INPUT_PIXELS });
    },
    unquantised: sharpUnquantised,
  },
  'ours-whole': {
    id: 'ours-whole',
    label: 'ours: whole renderPose (+ full-size PNG of a JPEG/WebP)',
    group: 'ours',
    setup: sharpSetup,
    producesPng: true,
    minRuns: 3,
    run: async ({ bytes }) => {
      const { renderPose } = await import('../../lib/pose-image.ts');
      return (await renderPose(bytes, { maxInputPixels: MAX_INPUT_PIXELS })).thumbnail;
    },
  },
  reference: sharpThumbnail('reference', "reference's settings: png({quality: 85})", 'reference', { quality: 85 }),
  jimp: {
    id: 'jimp',
    label: 'jimp (pure JS): cover + quantize(256)',
    group: 'peer',
    formats: ['png', 'jpeg'], // jimp 1.6 reads WebP only with a separate wasm plugin
    minRuns: 3,
    producesPng: true,
    run: (input) => jimpThumbnail(input, true),
    unquantised: (input) => jimpThumbnail(input, false),
  },
  imagemagick: {
    id: 'imagemagick',
    label: 'ImageMagick 6: -thumbnail 400x400^ -extent -colors 256 png8:',
    group: 'peer',
    producesPng: true,
    run: (input) => magick(input, true),
    unquantised: (input) => magick(input, false),
    externalRss: async (input) => {
      const timeFile = path.join(input.tmp, 'magick-time.txt');
      await execFileAsync('/usr/bin/time', ['-f', '%M', '-o', timeFile, IMAGEMAGICK, ...magickArgs(input, path.join(input.tmp, 'rss.png'), true)]);
      return Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop()) * 1024;
    },
  },
  decode: {
    id: 'decode',
    label: 'floor: full decode (sharp .raw())',
    group: 'floor',
    setup: sharpSetup,
    producesPng: false,
    run: async ({ bytes }) => sharpOf(bytes).raw().toBuffer(),
  },
  'decode-shrink': {
    id: 'decode-shrink',
    label: 'floor: decode at shrink-on-load scale',
    group: 'floor',
    formats: ['jpeg', 'webp'],
    setup: sharpSetup,
    producesPng: false,
    // The same shrink-on-load as the thumbnail (libjpeg 1/2..1/8, libwebp scaled decode), then a nearest-neighbour
    // subsample to 400x400 that costs well under a millisecond.
    run: async ({ bytes }) => sharpOf(bytes).resize(SIZE, SIZE, { fit: 'cover', kernel: 'nearest' }).raw().toBuffer(),
  },
  noop: {
    id: 'noop',
    label: 'baseline: Node + sharp loaded, image read',
    group: 'floor',
    setup: sharpSetup,
    producesPng: false,
    run: async ({ bytes }) => bytes,
  },
};

export function caseById(id: string): BenchCase {
  const known = CASES[id];
  if (known) return known;
  if (id.startsWith('variant:')) return variantCase(id);
  if (id.startsWith('image:')) return imageCase(id);
  throw new Error(`Unknown case ${id}`);
}
