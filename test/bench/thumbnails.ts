/**
 * The thumbnail section: every case of cases.ts on every image of the corpus, one process per case (libvips,
 * libuv and ImageMagick pinned to one thread), then the quality figures of each output against the same
 * pipeline's unquantised resize. Also the full-size PNG conversion of JPEG/WebP uploads at several deflate
 * levels, with and without adaptive filtering.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sniffFormat, type ImageFormat } from '../../lib/image-format.ts';
import { IMAGE_PNG, THUMBNAIL_PNG } from '../../lib/pose-image.ts';
import { caseById, imageId, variantId, type BenchCase, type CaseInput } from './cases.ts';
import type { CaseOptions, CaseResult } from './case.ts';
import { BENCH_DIR, log, median, ONE_THREAD_ENV, runScript } from './common.ts';
import { compare, type Quality } from './quality.ts';

export interface Image {
  name: string;
  file: string;
  format: ImageFormat;
  width: number;
  height: number;
  bytes: number;
}

export interface CaseFigures {
  image: string;
  id: string;
  label: string;
  group: BenchCase['group'];
  medianMs: number;
  runs: number;
  outputBytes: number | undefined;
  rssBytes: number;
  quality?: Quality;
}

export interface RunPlan {
  quick: boolean;
}

const CASE_SCRIPT = path.join(BENCH_DIR, 'case.ts');

export async function listImages(dir: string, names: readonly string[]): Promise<Image[]> {
  const sharp = (await import('sharp')).default;
  const images: Image[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const bytes = await readFile(file);
    const format = sniffFormat(bytes);
    if (!format) continue;
    const metadata = await sharp(bytes).metadata();
    const upright = (metadata.orientation ?? 1) >= 5;
    images.push({
      name,
      file,
      format,
      width: upright ? metadata.height : metadata.width,
      height: upright ? metadata.width : metadata.height,
      bytes: bytes.length,
    });
  }
  return images;
}

/** The encoder variants explored around our settings (quality 85 always). */
export function variantIds(quick: boolean): string[] {
  const chosen = THUMBNAIL_PNG;
  if (quick) return [variantId(1, 0, 6), variantId(1, 1, 6)];
  const ids = [0, 0.25, 0.5, 0.75, 1].map((dither) => variantId(1, dither, 6));
  ids.push(variantId(4, chosen.dither, 6), variantId(7, chosen.dither, 6), variantId(chosen.effort, chosen.dither, 9));
  return [...new Set(ids)];
}

export function thumbnailCaseIds(format: ImageFormat, quick: boolean): string[] {
  const ids = ['decode', 'decode-shrink', 'ours', 'ours-whole', 'reference', 'imagemagick', 'jimp', ...variantIds(quick)];
  return ids.filter((id) => {
    const formats = caseById(id).formats;
    return !formats || formats.includes(format);
  });
}

/** Deflate levels and filtering tried for the full-size PNG of a JPEG/WebP. */
export function conversionIds(quick: boolean): string[] {
  const chosen = imageId(IMAGE_PNG.compressionLevel, IMAGE_PNG.adaptiveFiltering);
  if (quick) return [...new Set([imageId(6, false), chosen])];
  const ids: string[] = [];
  for (const adaptive of [false, true]) for (const level of [1, 2, 3, 6, 9]) ids.push(imageId(level, adaptive));
  // Level 9 with filtering takes up to 15 s on a 16 MP image: left out, it is never worth it.
  return [...new Set([...ids.filter((id) => id !== imageId(9, true)), chosen])];
}

/** The cases the targets are judged on: timed in several processes, interleaved (see runThumbnails). */
const KEY_CASES = new Set(['decode', 'decode-shrink', 'ours', 'reference']);

function caseOptions(quick: boolean, key: boolean, outFile?: string): CaseOptions {
  return {
    ...(quick ? { minRuns: 3, maxRuns: 5, budgetMs: 300 } : { minRuns: 7, maxRuns: 25, budgetMs: key ? 1500 : 1000 }),
    ...(outFile && { outFile }),
  };
}

async function runCase(image: Image, id: string, quick: boolean, outDir: string): Promise<{ result: CaseResult; rssBytes: number; output?: string }> {
  const benchCase = caseById(id);
  const outFile = benchCase.producesPng ? path.join(outDir, `${image.name}.${id.replace(/[^a-z0-9.-]/gi, '_')}.png`) : undefined;
  const { result, maxRssBytes } = await runScript<CaseResult>(CASE_SCRIPT, [id, image.file, JSON.stringify(caseOptions(quick, KEY_CASES.has(id), outFile))], {
    env: ONE_THREAD_ENV,
  });
  log(`  ${image.name} ${id}: ${median(result.times).toFixed(1)} ms (${result.times.length} runs), ${result.outputBytes} B, ${((result.externalRssBytes ?? maxRssBytes) / 2 ** 20).toFixed(0)} MiB`);
  return { result, rssBytes: result.externalRssBytes ?? maxRssBytes, ...(outFile && { output: outFile }) };
}

/**
 * Every case on every image. The key cases (floors, ours, the reference's settings) run in `repeats`
 * processes each, interleaved (ours, reference, floor, ours, ...), and report the median of the processes'
 * medians: on a shared VM one process now and then runs 10-20% slow throughout, which a single process per
 * case would pass on to the ratios the targets are judged on.
 */
export async function runThumbnails(images: readonly Image[], quick: boolean): Promise<CaseFigures[]> {
  const outDir = await mkdtemp(path.join(tmpdir(), 'bench-thumbs-'));
  const repeats = quick ? 1 : 3;
  try {
    const figures: CaseFigures[] = [];
    for (const image of images) {
      const ids = thumbnailCaseIds(image.format, quick);
      const keyIds = ids.filter((id) => KEY_CASES.has(id));
      const runs = new Map<string, { result: CaseResult; rssBytes: number; output?: string }[]>();
      const record = (id: string, run: { result: CaseResult; rssBytes: number; output?: string }) => runs.set(id, [...(runs.get(id) ?? []), run]);
      for (let round = 0; round < repeats; round++) for (const id of keyIds) record(id, await runCase(image, id, quick, outDir));
      for (const id of ids.filter((candidate) => !KEY_CASES.has(candidate))) record(id, await runCase(image, id, quick, outDir));
      const outputs = new Map<string, string>();
      for (const id of ids) {
        const caseRuns = runs.get(id)!;
        const benchCase = caseById(id);
        const last = caseRuns[caseRuns.length - 1]!;
        figures.push({
          image: image.name,
          id,
          label: benchCase.label,
          group: benchCase.group,
          medianMs: median(caseRuns.map((r) => median(r.result.times))),
          runs: caseRuns.reduce((sum, r) => sum + r.result.times.length, 0),
          outputBytes: benchCase.producesPng ? last.result.outputBytes : undefined,
          rssBytes: Math.max(...caseRuns.map((r) => r.rssBytes)),
        });
        if (last.output) outputs.set(id, last.output);
      }
      await addQuality(image, figures, outputs, outDir);
    }
    return figures;
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

/** Quality of each quantised output against its own pipeline's unquantised resize (computed once per pipeline). */
async function addQuality(image: Image, figures: CaseFigures[], outputs: Map<string, string>, tmp: string): Promise<void> {
  const bytes = await readFile(image.file);
  const input: CaseInput = { file: image.file, bytes, format: image.format, tmp };
  const references = new Map<BenchCase['unquantised'], Buffer>();
  for (const entry of figures.filter((f) => f.image === image.name)) {
    const benchCase = caseById(entry.id);
    const output = outputs.get(entry.id);
    if (!output || !benchCase.unquantised) continue;
    await benchCase.setup?.();
    let reference = references.get(benchCase.unquantised);
    if (!reference) {
      reference = await benchCase.unquantised(input);
      references.set(benchCase.unquantised, reference);
    }
    entry.quality = await compare(await readFile(output), reference);
  }
}

export async function runConversions(images: readonly Image[], quick: boolean): Promise<CaseFigures[]> {
  const outDir = await mkdtemp(path.join(tmpdir(), 'bench-images-'));
  try {
    const figures: CaseFigures[] = [];
    for (const image of images.filter((i) => i.format !== 'png')) {
      for (const id of conversionIds(quick)) {
        const options: CaseOptions = quick ? { minRuns: 1, maxRuns: 2, budgetMs: 0 } : { minRuns: 3, maxRuns: 7, budgetMs: 1500 };
        const { result, maxRssBytes } = await runScript<CaseResult>(CASE_SCRIPT, [id, image.file, JSON.stringify(options)], {
          env: ONE_THREAD_ENV,
        });
        const benchCase = caseById(id);
        figures.push({
          image: image.name,
          id,
          label: benchCase.label,
          group: benchCase.group,
          medianMs: median(result.times),
          runs: result.times.length,
          outputBytes: result.outputBytes,
          rssBytes: maxRssBytes,
        });
        log(`  ${image.name} ${id}: ${median(result.times).toFixed(0)} ms, ${(result.outputBytes / 2 ** 20).toFixed(1)} MiB`);
      }
    }
    return figures;
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}
