/**
 * Micro-benchmark of the PNG chunk filter (tinybench): `node_modules/.bin/node lib/png-chunks.bench.ts [--quick]`.
 * Filters a 1 MP and a 5K (5120x2880) PNG, clean (nothing to drop: no copy, every CRC checked) and with a 200 KB
 * tEXt workflow chunk (dropped: one copy of the rest). The images are generated: a gradient with noise, so that
 * they compress about as photographs do (2.1 MB and 19 MB). Prints a table, then one JSON line with the figures.
 */
import sharp from 'sharp';
import { Bench } from 'tinybench';
import { text, withChunks } from '../test/support/png-chunks.ts';
import { filterPngChunks } from './png-chunks.ts';

export interface ChunkFilterFigures {
  task: string;
  bytes: number;
  samples: number;
  meanMs: number;
  p99Ms: number;
  gbPerSecond: number;
}

const quick = process.argv.includes('--quick');

async function photoLikePng(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let seed = 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const noise = (seed >>> 24) % 6;
      const i = (y * width + x) * 3;
      data[i] = ((x * 255) / width + noise) & 0xff;
      data[i + 1] = ((y * 255) / height + noise) & 0xff;
      data[i + 2] = (((x + y) * 127) / (width + height) + noise) & 0xff;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

const nodes = Array.from({ length: 1040 }, (_, id) => ({
  id,
  type: 'KSampler',
  widgets_values: [id * 7919, 'randomize', 20, 7.5, 'euler_ancestral', 'normal', 1],
  properties: { 'Node name for S&R': 'KSampler', prompt: 'a dancer in a red dress, arms raised' },
}));
const workflow = text('workflow', JSON.stringify({ nodes }));

const images: Array<[string, Buffer]> = [];
for (const [name, width, height] of [['1 MP', 1024, 1024], ['5K', 5120, 2880]] as const) {
  const png = await photoLikePng(width, height);
  images.push([`${name} clean`, png], [`${name} + ${Math.round(workflow.data.length / 1024)} KB tEXt`, withChunks(png, { afterHeader: [workflow] })]);
}

const bench = new Bench({ time: quick ? 200 : 1000, iterations: quick ? 5 : 20, warmupTime: quick ? 50 : 200 });
for (const [name, png] of images) {
  const clean = name.endsWith('clean');
  bench.add(name, () => {
    const filtered = filterPngChunks(png, { keepMetadata: false });
    if ((filtered.png === png) !== clean) throw new Error(`${name}: unexpected result`);
  });
}
await bench.run();

const figures: ChunkFilterFigures[] = bench.tasks.map((task, i) => {
  const result = task.result;
  if (result.state !== 'completed') throw new Error(`${task.name}: ${result.state === 'errored' ? result.error.message : result.state}`);
  const bytes = images[i]![1].length;
  return {
    task: task.name,
    bytes,
    samples: result.latency.samplesCount,
    meanMs: result.latency.mean,
    p99Ms: result.latency.p99,
    gbPerSecond: bytes / (result.latency.mean / 1000) / 1e9,
  };
});
console.table(
  figures.map((f) => ({
    task: f.task,
    'PNG bytes': f.bytes.toLocaleString('en'),
    samples: f.samples,
    'mean ms': f.meanMs.toFixed(3),
    'p99 ms': f.p99Ms.toFixed(3),
    'GB/s': f.gbPerSecond.toFixed(2),
  })),
);
process.stdout.write(`${JSON.stringify(figures)}\n`);
