/**
 * One benchmark case in one process: `node test/bench/case.ts <case id> <image> [options JSON]`.
 * Reads the image, runs the case once to warm up (lazy imports, JIT), then times runs until it has at least
 * `minRuns` and `budgetMs` has passed (at most `maxRuns`). Prints one JSON line: the run times, the output's
 * size, and the peak RSS of an external program when the case runs one. The runner wraps this process in
 * `/usr/bin/time -v` for its own peak RSS.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sniffFormat } from '../../lib/image-format.ts';
import { caseById, type CaseInput } from './cases.ts';

export interface CaseOptions {
  minRuns?: number;
  maxRuns?: number;
  budgetMs?: number;
  /** Where to write the output PNG (thumbnail or converted image). */
  outFile?: string;
}

export interface CaseResult {
  id: string;
  times: number[];
  outputBytes: number;
  externalRssBytes?: number;
}

const [id, file, optionsJson] = process.argv.slice(2);
if (!id || !file) throw new Error('usage: node test/bench/case.ts <case id> <image> [options JSON]');
const options = JSON.parse(optionsJson ?? '{}') as CaseOptions;
const benchCase = caseById(id);

const tmp = await mkdtemp(path.join(tmpdir(), 'bench-case-'));
try {
  const bytes = await readFile(file);
  const format = sniffFormat(bytes);
  if (!format) throw new Error(`${file} is not a PNG, JPEG or WebP image`);
  const input: CaseInput = { file: path.resolve(file), bytes, format, tmp };
  await benchCase.setup?.();
  let output = await benchCase.run(input); // warm-up

  // A slow case's own minimum wins over the suite's (jimp needs seconds a run).
  const minRuns = Math.min(options.minRuns ?? 5, benchCase.minRuns ?? Number.POSITIVE_INFINITY);
  const maxRuns = Math.max(minRuns, options.maxRuns ?? 25);
  const budgetMs = options.budgetMs ?? 2000;
  const times: number[] = [];
  const started = performance.now();
  while (times.length < minRuns || (times.length < maxRuns && performance.now() - started < budgetMs)) {
    const start = performance.now();
    output = await benchCase.run(input);
    times.push(performance.now() - start);
  }
  if (options.outFile && benchCase.producesPng) await writeFile(options.outFile, output);
  const result: CaseResult = { id, times, outputBytes: output.length };
  if (benchCase.externalRss) result.externalRssBytes = await benchCase.externalRss(input);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
