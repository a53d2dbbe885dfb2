/**
 * Shared helpers of the benchmark suite: statistics, formatting, and running one case in its own process under
 * GNU time (for its peak RSS).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
/** Node 24: the `node` devDependency (npm scripts put node_modules/.bin first on PATH). */
export const NODE = process.execPath;
export const GNU_TIME = '/usr/bin/time';
export const IMAGEMAGICK = '/usr/bin/convert';

/** libvips, libuv and ImageMagick on one thread: the targets are per core. */
export const ONE_THREAD_ENV: Readonly<Record<string, string>> = {
  UV_THREADPOOL_SIZE: '1',
  VIPS_CONCURRENCY: '1',
  MAGICK_THREAD_LIMIT: '1',
  OMP_NUM_THREADS: '1',
};

/** Two threads, what a Lambda function of 3,538 MB or more has (the machine has two cores). */
export const TWO_THREAD_ENV: Readonly<Record<string, string>> = {
  UV_THREADPOOL_SIZE: '2',
  VIPS_CONCURRENCY: '2',
  MAGICK_THREAD_LIMIT: '2',
  OMP_NUM_THREADS: '2',
};

/** r2 mode against a dummy endpoint: presigning is local computation. */
export const R2_ENV: Readonly<Record<string, string>> = {
  STORAGE_MODE: 'r2',
  R2_ACCOUNT_ID: 'benchaccount',
  R2_ACCESS_KEY_ID: 'bench-access-key',
  R2_SECRET_ACCESS_KEY: 'bench-secret-access-key',
  R2_BUCKET_NAME: 'bench-poses',
  R2_PUBLIC_URL: 'https://poses.example.test',
  R2_ENDPOINT: 'http://127.0.0.1:9',
  API_TOKEN: 'bench-token-0123456789abcdef',
};

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile of unsorted values (q in 0..1). */
/**
 * The median time of `fn` in ms after one warm-up run: at least 7 runs, more (up to 25) within 1.5 s; quick runs
 * 3 within 200 ms. `setup` runs before each, untimed.
 */
export async function medianTime(fn: () => Promise<unknown>, options: { quick: boolean; setup?: () => Promise<void> }): Promise<number> {
  const { quick, setup } = options;
  await setup?.();
  await fn();
  const times: number[] = [];
  const started = performance.now();
  const [minRuns, budgetMs] = quick ? [3, 200] : [7, 1500];
  while (times.length < minRuns || (times.length < 25 && performance.now() - started < budgetMs)) {
    await setup?.();
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** The median over `pairs` alternated runs of `a` minus `b`, ms (after one run of each). */
export async function pairedDifference(a: () => Promise<unknown>, b: () => Promise<unknown>, pairs: number): Promise<number> {
  const time = async (fn: () => Promise<unknown>) => {
    const start = performance.now();
    await fn();
    return performance.now() - start;
  };
  await a();
  await b();
  const differences: number[] = [];
  for (let i = 0; i < pairs; i++) differences.push((await time(a)) - (await time(b)));
  return median(differences);
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export function geometricMean(values: readonly number[]): number {
  return Math.exp(values.reduce((sum, value) => sum + Math.log(value), 0) / values.length);
}

/** Milliseconds with a precision that suits their size. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

export function ratio(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}x`;
}

export function kb(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / 1024).toFixed(1) : 'n/a';
}

export function mb(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(1) : 'n/a';
}

/** A Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const rule = header.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : '---'));
  return [header, rule, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

export interface ProcessResult {
  stdout: string;
  stderr: string;
  code: number | null;
  /** Peak resident set size of the process (and of the largest child it waited for), from GNU time. */
  maxRssBytes: number;
  wallMs: number;
}

/**
 * Runs `command args` under `/usr/bin/time -v` and returns its output, exit code and peak RSS. Throws when the
 * process fails (with its stderr), unless `allowFailure`.
 */
export async function runMeasured(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; allowFailure?: boolean; input?: string } = {},
): Promise<ProcessResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-time-'));
  const timeFile = path.join(dir, 'time.txt');
  try {
    const started = performance.now();
    const result = await run(GNU_TIME, ['-v', '-o', timeFile, command, ...args], options);
    const wallMs = performance.now() - started;
    const report = await readFile(timeFile, 'utf8').catch(() => '');
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
    if (result.code !== 0 && !options.allowFailure) {
      throw new Error(`${path.basename(command)} ${args.join(' ')} exited with ${result.code}:\n${result.stderr.slice(-2000)}`);
    }
    return { ...result, maxRssBytes: rss ? Number(rss[1]) * 1024 : Number.NaN, wallMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a process to completion, collecting its output. */
export function run(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; input?: string } = {},
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), code }),
    );
    child.stdin.end(options.input);
  });
}

/** Runs a bench script (a .ts file of test/bench or lib) in a fresh Node process; its last stdout line is JSON. */
export async function runScript<T>(
  script: string,
  args: readonly string[],
  options: { env?: Record<string, string>; allowFailure?: boolean } = {},
): Promise<{ result: T; maxRssBytes: number; wallMs: number }> {
  const measured = await runMeasured(NODE, [script, ...args], options);
  const lines = measured.stdout.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  try {
    return { result: JSON.parse(last) as T, maxRssBytes: measured.maxRssBytes, wallMs: measured.wallMs };
  } catch {
    throw new Error(`${script} ${args.join(' ')} printed no JSON result:\n${measured.stdout.slice(-1000)}\n${measured.stderr.slice(-2000)}`);
  }
}

/**
 * CPU cores kept busy by other processes: sampled from /proc/stat over `sampleMs` while the suite itself is
 * idle (between sections). The load average would count the suite's own processes of the previous section.
 */
export async function backgroundCores(sampleMs = 1000): Promise<number> {
  const sample = async () => {
    const fields = ((await readFile('/proc/stat', 'utf8').catch(() => 'cpu 0 0 0 0')).split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { idle, total: fields.reduce((sum, value) => sum + value, 0) };
  };
  const before = await sample();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const after = await sample();
  const total = after.total - before.total;
  return total > 0 ? (1 - (after.idle - before.idle) / total) * os.availableParallelism() : 0;
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}
