/**
 * Micro-benchmark of renderPose (tinybench): `node lib/pose-image.bench.ts [corpus dir] [--quick]` (by default the
 * images of .bench-corpus/, see test/bench/corpus.ts). Run by
 * `npm run bench` with libvips and libuv on one thread; prints a table, then one JSON line with the figures.
 * renderPose is the whole of what the thumbnail handler runs per image besides the store: validation, the
 * published PNG (a PNG as is; a JPEG/WebP converted) and the thumbnail; renderThumbnail is its thumbnail path
 * alone.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { Bench } from 'tinybench';
import { benchCorpus } from '../test/bench/corpus.ts';
import { renderPose, renderThumbnail } from './pose-image.ts';

export interface MicroFigures {
  task: string;
  samples: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  rmePercent: number;
}

const corpus = process.argv.slice(2).find((arg) => !arg.startsWith('--')) ?? (await benchCorpus());
const quick = process.argv.includes('--quick');
sharp.concurrency(1);

const names = (await readdir(corpus)).filter((name) => /\.(png|jpe?g|webp)$/i.test(name)).sort();
const options = { maxInputPixels: 50_000_000 };
const bench = new Bench({ time: quick ? 200 : 500, iterations: quick ? 3 : 5, warmupTime: quick ? 50 : 200, warmupIterations: 2 });
for (const name of names) {
  const bytes = await readFile(path.join(corpus, name));
  bench.add(`renderThumbnail ${name}`, async () => {
    await renderThumbnail(bytes, options);
  });
  bench.add(`renderPose ${name}`, async () => {
    await renderPose(bytes, options);
  });
}
await bench.run();

const figures: MicroFigures[] = [];
for (const task of bench.tasks) {
  const result = task.result;
  if (result.state !== 'completed') throw new Error(`${task.name}: ${result.state === 'errored' ? result.error.message : result.state}`);
  figures.push({
    task: task.name,
    samples: result.latency.samplesCount,
    meanMs: result.latency.mean,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    rmePercent: result.latency.rme,
  });
}
console.table(figures.map((f) => ({ task: f.task, samples: f.samples, 'mean ms': f.meanMs.toFixed(1), 'p50 ms': f.p50Ms.toFixed(1), 'p99 ms': f.p99Ms.toFixed(1), 'rme %': f.rmePercent.toFixed(1) })));
process.stdout.write(`${JSON.stringify(figures)}\n`);
