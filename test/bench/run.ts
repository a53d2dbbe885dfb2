/**
 * `npm run bench` = `node test/bench/run.ts [corpus dir] [--quick] [--only=section,...] [--write | --no-write]`
 * Without a corpus dir, the images of .bench-corpus/, built from Debian's wallpaper packages (corpus.ts).
 *
 * The benchmark suite (BENCHMARKS.md describes the method). Sections, in order:
 *   thumbnails  every thumbnail case on every corpus image, one process per case, one thread (cases.ts)
 *   conversion  the full-size PNG of JPEG/WebP uploads at several deflate levels, with and without filtering
 *   profile     per-stage times of one upload per image (profile-case.ts), for the cost table too
 *   rss         the thumbnail handler's peak RSS per upload, on its Lambda bundle (handler-rss.ts)
 *   coldstart   the four functions bundled as SST does, imported in fresh processes (cold-start.ts)
 *   e2e         local mode, PUT end to ready, 200 uploads at concurrency 1 and 16 (e2e.ts)
 *   presign     presigned URLs per second (presign-case.ts)
 *   micro       tinybench over renderPose (lib/pose-image.bench.ts)
 *   wan         the functions against the S3 test server over a WAN-shaped link, against the reference (wan.ts)
 *   variants    each variant's time, bytes and quality against the PNG thumbnail, one process per image, one
 *               thread (variants-case.ts); the side-by-side picture of BENCHMARKS.md (side-by-side.ts)
 * Results go to test/bench/results.json (results-quick.json with --quick); the generated blocks of
 * BENCHMARKS.md and test/bench/thumbnails.svg are rewritten from them (a full run writes them unless
 * --no-write; a quick run only with --write). `--only` reruns some sections and keeps the others' results.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { version as esbuildVersion } from 'esbuild';
import sharp from 'sharp';
import type { MicroFigures } from '../../lib/pose-image.bench.ts';
import { IMAGE_PNG, THUMBNAIL_PNG } from '../../lib/pose-image.ts';
import { runColdStart } from './cold-start.ts';
import { backgroundCores, BENCH_DIR, IMAGEMAGICK, log, ONE_THREAD_ENV, REPO_ROOT, run, runScript, TWO_THREAD_ENV } from './common.ts';
import { benchCorpus } from './corpus.ts';
import { runE2e } from './e2e.ts';
import { runHandlerRss } from './handler-rss.ts';
import type { PresignFigures } from './presign-case.ts';
import type { Profile } from './profile-case.ts';
import { SIDE_BY_SIDE, sideBySide } from './side-by-side.ts';
import type { PublishFigures, VariantFigures } from './variants-case.ts';
import { fillTemplate, summaryBlock, type Machine, type Results } from './report.ts';
import { thumbnailChart, wanChart } from './svg.ts';
import { listImages, runConversions, runThumbnails } from './thumbnails.ts';
import { runWan } from './wan.ts';

const SECTIONS = ['thumbnails', 'conversion', 'profile', 'rss', 'coldstart', 'e2e', 'presign', 'micro', 'wan', 'variants'] as const;
type Section = (typeof SECTIONS)[number];

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyArg = argv.find((arg) => arg.startsWith('--only='));
const only = onlyArg ? (onlyArg.slice('--only='.length).split(',') as Section[]) : [...SECTIONS];
for (const section of only) if (!SECTIONS.includes(section)) throw new Error(`Unknown section ${section}; sections: ${SECTIONS.join(', ')}`);
const write = argv.includes('--write') || (!quick && !argv.includes('--no-write'));
const corpusArg = argv.find((arg) => !arg.startsWith('--'));
const corpus = corpusArg === undefined ? await benchCorpus() : path.resolve(corpusArg);
const resultsFile = path.join(BENCH_DIR, quick ? 'results-quick.json' : 'results.json');
const benchmarksFile = path.join(REPO_ROOT, 'BENCHMARKS.md');
const chartFile = path.join(BENCH_DIR, 'thumbnails.svg');

async function machine(): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const magick = await run(IMAGEMAGICK, ['-version']).catch(() => ({ stdout: 'not installed' }));
  const jimp = JSON.parse(await readFile(path.join(REPO_ROOT, 'node_modules/jimp/package.json'), 'utf8')) as { version: string };
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    nproc: os.availableParallelism(),
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: os.release(),
    node: process.version,
    sharp: sharp.versions.sharp ?? 'unknown',
    libvips: sharp.versions.vips,
    imagemagick: (/Version: ImageMagick (\S+ \S+)/.exec(magick.stdout)?.[1] ?? magick.stdout.split('\n')[0] ?? '').trim(),
    jimp: jimp.version,
    esbuild: esbuildVersion,
  };
}

async function previousResults(): Promise<Partial<Results>> {
  try {
    return JSON.parse(await readFile(resultsFile, 'utf8')) as Partial<Results>;
  } catch {
    return {};
  }
}

const started = performance.now();
const previous = only.length < SECTIONS.length ? await previousResults() : {};
const names = (await readdir(corpus)).filter((name) => /\.(png|jpe?g|webp)$/i.test(name)).sort();
if (names.length === 0) throw new Error(`No PNG, JPEG or WebP images in ${corpus}`);
const images = await listImages(corpus, names);
const results: Results = {
  ...previous,
  machine: await machine(),
  quick,
  corpus: path.relative(REPO_ROOT, corpus) || '.',
  command: `npm run bench${quick ? ' -- --quick' : ''}`,
  durationSeconds: 0,
  load: { ...previous.load },
  settings: { thumbnail: THUMBNAIL_PNG, image: IMAGE_PNG },
  images,
};
log(`Benchmarks on ${images.length} images of ${corpus}${quick ? ' (quick)' : ''}: ${only.join(', ')}`);

for (const section of only) {
  const busy = await backgroundCores();
  results.load[section] = busy;
  log(`\n[${section}] (other processes kept ${busy.toFixed(2)} cores busy${busy > 0.3 ? ': figures may be high' : ''})`);
  switch (section) {
    case 'thumbnails':
      results.thumbnails = await runThumbnails(images, quick);
      break;
    case 'conversion':
      results.conversions = await runConversions(images, quick);
      break;
    case 'profile': {
      const profiles: Profile[] = [];
      for (const image of images) {
        const { result } = await runScript<Profile>(path.join(BENCH_DIR, 'profile-case.ts'), [image.file, ...(quick ? ['quick'] : [])], { env: ONE_THREAD_ENV });
        log(`  ${image.name}: decode ${result.decode.toFixed(1)} ms, thumbnail ${result.thumbnail.toFixed(1)} ms, processUpload ${result.processUpload.toFixed(1)} ms`);
        profiles.push(result);
      }
      results.profiles = profiles;
      break;
    }
    case 'rss':
      results.handlerRss = await runHandlerRss(corpus, images, true);
      break;
    case 'coldstart':
      results.coldStart = await runColdStart(quick);
      break;
    case 'e2e': {
      const image = images.find((i) => i.name === 'ai-1024.png') ?? images.find((i) => i.format === 'png') ?? images[0]!;
      results.e2e = await runE2e(image.file, [1, 16], quick ? 40 : 200);
      break;
    }
    case 'presign': {
      const { result } = await runScript<PresignFigures>(path.join(BENCH_DIR, 'presign-case.ts'), quick ? ['quick'] : [], { env: ONE_THREAD_ENV });
      log(`  ${result.perSecond.toFixed(0)} presigned URLs per second`);
      results.presign = result;
      break;
    }
    case 'wan':
      results.wan = await runWan(images, quick);
      break;
    case 'variants': {
      const figures: VariantFigures[] = [];
      for (const image of images) {
        const script = path.join(BENCH_DIR, 'variants-case.ts');
        const args = [image.file, ...(quick ? ['quick'] : [])];
        const { result } = await runScript<VariantFigures>(script, args, { env: ONE_THREAD_ENV });
        const { result: twoThreads } = await runScript<PublishFigures>(script, [...args, 'publish'], { env: TWO_THREAD_ENV });
        const webp = result.variants.find((f) => f.role === 'thumb.webp');
        log(
          `  ${image.name}: publish ${result.publishReference.toFixed(1)} → ${result.publishAll.toFixed(1)} ms with the set (two threads ${twoThreads.publishReference.toFixed(1)} → ${twoThreads.publishAll.toFixed(1)}); thumb.webp ${webp?.bytes} bytes vs ${result.thumbnailBytes}; placeholder ${result.placeholderRender.toFixed(2)} ms`,
        );
        figures.push({ ...result, twoThreads });
      }
      results.variants = figures;
      if (write) await writeFile(SIDE_BY_SIDE, await sideBySide());
      break;
    }
    case 'micro': {
      const { result } = await runScript<MicroFigures[]>(path.join(REPO_ROOT, 'lib/pose-image.bench.ts'), [corpus, ...(quick ? ['--quick'] : [])], {
        env: ONE_THREAD_ENV,
      });
      results.micro = result;
      break;
    }
  }
}

results.durationSeconds = (performance.now() - started) / 1000 + (only.length < SECTIONS.length ? (previous.durationSeconds ?? 0) : 0);
await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
log(`\nResults: ${path.relative(REPO_ROOT, resultsFile)} (${(results.durationSeconds / 60).toFixed(1)} min)`);
if (write) {
  const template = await readFile(benchmarksFile, 'utf8');
  await writeFile(benchmarksFile, fillTemplate(template, results));
  if (results.thumbnails && results.images) await writeFile(chartFile, thumbnailChart(results.images, results.thumbnails));
  if (results.wan) await writeFile(path.join(BENCH_DIR, 'wan.svg'), wanChart(results.wan));
  log(`Updated ${path.relative(REPO_ROOT, benchmarksFile)} and ${path.relative(REPO_ROOT, chartFile)}`);
} else {
  log('BENCHMARKS.md left as is (quick runs write it only with --write)');
}
process.stdout.write(`\n${summaryBlock(results)}\n`);
