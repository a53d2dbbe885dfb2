/**
 * Cold start: each function bundled as SST bundles it for `nodejs24.x` (pkg/runtime/node/build.go: esbuild, ESM,
 * minified, platform node, keepNames, mainFields module/main, SST's createRequire banner, `sharp` external), in
 * both of SST's layouts: one file (its default) and split (`nodejs.splitting`: each dynamic import its own chunk,
 * loaded when first imported). Each bundle is imported in fresh Node processes, interleaved with a bare
 * `node -e 0`; presign also answers its first request (configuration, services, signing) and the thumbnail
 * function loads sharp, as on its first image. The metafile says what each bundle loads at import (the entry and
 * the chunks it imports statically), of which packages, and which Node built-ins. Last, the weights of single
 * dependencies bundled alone the same way, and of the presign bundle with a package replaced by a stub.
 */
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { httpEvent, bearer } from '../support/http-events.ts';
import { log, median, ms, NODE, R2_ENV, REPO_ROOT, runMeasured } from './common.ts';

export const FUNCTIONS = ['presign', 'status', 'delete', 'health', 'thumbnail'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];
const HTTP_FUNCTIONS: readonly FunctionName[] = ['presign', 'status', 'delete', 'health'];

/** SST's layouts: `single`, its default; `split`, with `nodejs: { splitting: true }`. */
export type Layout = 'single' | 'split';
const LAYOUTS: readonly Layout[] = ['split', 'single'];

/** The targets of issue 12, over bare Node. */
export const TARGETS = { httpImportMs: 60, presignFirstAnswerMs: 80, thumbnailImportMs: 120 } as const;

/** SST's banner for ESM bundles (pkg/runtime/node/build.go). */
const SST_BANNER = [
  `import { createRequire as topLevelCreateRequire } from 'module';`,
  `const require = topLevelCreateRequire(import.meta.url);`,
  `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
  `const __filename = topLevelFileUrlToPath(import.meta.url)`,
  `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
].join('\n');

export interface Part {
  source: string;
  bytes: number;
}

export interface Bundle {
  name: FunctionName;
  layout: Layout;
  /** The entry file (chunks, if any, beside it). */
  file: string;
  /** Bytes of the entry and of the chunks it imports statically: what is read and compiled at import. */
  loadedBytes: number;
  /** Bytes of every output file. */
  totalBytes: number;
  /** What is loaded at import, by package. */
  composition: Part[];
  /** Node built-ins imported at load (by the entry or a statically imported chunk). */
  builtins: string[];
  /** Whether the S3 client's code is in what loads at import (`single`: in the file, initialised on first use). */
  s3ClientAtImport: boolean;
}

export interface ImportFigures {
  name: string;
  layout?: Layout;
  bytes: number;
  /** Median wall time of `node -e "await import(bundle)"`, ms. */
  processMs: number;
  /** processMs minus bare Node's. */
  overBareMs: number;
  /** Median of the import alone, timed inside the process. */
  importMs: number;
  /** Median of the first call after the import (presign: a real request; thumbnail: loading sharp), in process. */
  firstCallMs?: number;
  /** Median wall time of the process that imports and makes the first call, minus bare Node's. */
  withFirstCallOverBareMs?: number;
  rssBytes: number;
}

export interface ColdStartResult {
  /** When and where: the section can be rerun alone, on another machine than the rest of the suite. */
  measured: { date: string; cpu: string; node: string };
  bareMs: number;
  bareRssBytes: number;
  runs: number;
  functions: ImportFigures[];
  /** Single dependencies bundled alone the same way, and the presign function without some of them. */
  dependencies: ImportFigures[];
  bundles: Omit<Bundle, 'file'>[];
}

function esbuildOptions(layout: Layout, file: string): BuildOptions & { metafile: true } {
  return {
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minify: true,
    keepNames: true,
    mainFields: ['module', 'main'],
    external: ['sharp', 'pg-native'],
    banner: { js: SST_BANNER },
    metafile: true,
    logLevel: 'error',
    ...(layout === 'split' ? { splitting: true, outdir: path.dirname(file), outExtension: { '.js': '.mjs' } } : { outfile: file }),
  };
}

const packageOf = (input: string): string => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? 'our code (lib/, functions/)';

/** The entry and every chunk it imports statically, transitively (dynamic imports load later). */
function loadedAtImport(metafile: Metafile, entry: string): string[] {
  const loaded = new Set<string>();
  const visit = (file: string) => {
    if (loaded.has(file)) return;
    loaded.add(file);
    for (const imported of metafile.outputs[file]?.imports ?? []) {
      if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
    }
  };
  visit(entry);
  return [...loaded];
}

function describeBundle(name: FunctionName, layout: Layout, file: string, metafile: Metafile): Bundle {
  const outputs = Object.keys(metafile.outputs).filter((output) => output.endsWith('.mjs'));
  const entry = outputs.find((output) => path.resolve(output) === file);
  if (!entry) throw new Error(`esbuild wrote no ${file}`);
  const loaded = loadedAtImport(metafile, entry);
  const bySource = new Map<string, number>();
  const builtins = new Set<string>();
  let s3ClientAtImport = false;
  for (const output of loaded) {
    for (const [input, { bytesInOutput }] of Object.entries(metafile.outputs[output]!.inputs)) {
      bySource.set(packageOf(input), (bySource.get(packageOf(input)) ?? 0) + bytesInOutput);
      if (input.includes('node_modules/@aws-sdk/client-s3/') && bytesInOutput > 0) s3ClientAtImport = true;
    }
    for (const imported of metafile.outputs[output]!.imports) {
      if (imported.external && imported.kind === 'import-statement' && isBuiltin(imported.path)) builtins.add(imported.path.replace(/^node:/, ''));
    }
  }
  const bytesOf = (files: readonly string[]) => files.reduce((sum, output) => sum + metafile.outputs[output]!.bytes, 0);
  return {
    name,
    layout,
    file,
    loadedBytes: bytesOf(loaded),
    totalBytes: bytesOf(outputs),
    composition: [...bySource].map(([source, bytes]) => ({ source, bytes })).sort((a, b) => b.bytes - a.bytes),
    builtins: [...builtins].sort(),
    s3ClientAtImport,
  };
}

/** Bundles the functions into `dir`, one subdirectory per layout (each with a node_modules link, for sharp). */
export async function buildBundles(dir: string, layouts: readonly Layout[] = LAYOUTS): Promise<Bundle[]> {
  const bundles: Bundle[] = [];
  for (const layout of layouts) {
    for (const name of FUNCTIONS) {
      const out = path.join(dir, layout, name);
      await mkdir(out, { recursive: true });
      await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(out, 'node_modules'));
      const file = path.join(out, `${name}.mjs`);
      const result = await build({ ...esbuildOptions(layout, file), entryPoints: [path.join(REPO_ROOT, 'functions', `${name}.ts`)] });
      bundles.push(describeBundle(name, layout, file, result.metafile));
    }
  }
  return bundles;
}

const DEPENDENCIES: Record<string, string> = {
  'zod (import { z } from "zod")': `import { z } from 'zod'; globalThis.keep = z;`,
  'zod/mini, as lib/ uses it (import * as z)': `import * as z from 'zod/mini'; import en from 'zod/v4/locales/en.js'; globalThis.keep = [z.strictObject({ a: z.string().check(z.regex(/a/)), b: z.optional(z.number().check(z.int(), z.positive())) }), z.discriminatedUnion('s', [z.object({ s: z.literal('x'), t: z.iso.datetime() })]), z.array(z.unknown()), z.enum(['a']), en];`,
  'AWS SDK S3 client and commands': `import { S3Client, GetObjectCommand, PutObjectCommand, HeadObjectCommand, CopyObjectCommand, DeleteObjectsCommand, paginateListObjectsV2, S3ServiceException } from '@aws-sdk/client-s3'; globalThis.keep = [S3Client, GetObjectCommand, PutObjectCommand, HeadObjectCommand, CopyObjectCommand, DeleteObjectsCommand, paginateListObjectsV2, S3ServiceException];`,
  "S3RequestPresigner (the presign function's signer)": `import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner'; globalThis.keep = S3RequestPresigner;`,
  'middy core + 5 http middlewares': `import middy from '@middy/core'; import a from '@middy/http-cors'; import b from '@middy/http-error-handler'; import c from '@middy/http-header-normalizer'; import d from '@middy/http-json-body-parser'; import e from '@middy/http-security-headers'; globalThis.keep = [middy, a, b, c, d, e];`,
  'Powertools Logger + injectLambdaContext': `import { Logger } from '@aws-lambda-powertools/logger'; import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'; globalThis.keep = [Logger, injectLambdaContext];`,
  'Powertools Metrics': `import { Metrics } from '@aws-lambda-powertools/metrics'; globalThis.keep = Metrics;`,
  'node:http, imported (ESM)': `import { STATUS_CODES } from 'node:http'; globalThis.keep = STATUS_CODES;`,
  'node:http, required (createRequire)': `import { createRequire } from 'node:module'; globalThis.keep = createRequire(import.meta.url)('node:http').STATUS_CODES;`,
};

async function buildDependencies(dir: string): Promise<{ name: string; file: string; bytes: number }[]> {
  const built = [];
  let index = 0;
  for (const [name, contents] of Object.entries(DEPENDENCIES)) {
    const file = path.join(dir, `dependency-${index++}.mjs`);
    await build({ ...esbuildOptions('single', file), stdin: { contents, resolveDir: REPO_ROOT, loader: 'js' } });
    built.push({ name, file, bytes: (await stat(file)).size });
  }
  return built;
}

/**
 * esbuild plugin: the named packages replaced by a stub (a Proxy that accepts any property, call or `new`), to
 * measure what a bundle would cost without them. Import only: the stubbed bundle cannot run.
 */
function stubPackages(filter: RegExp): Plugin {
  return {
    name: 'stub-packages',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'stub' }));
      pluginBuild.onLoad({ filter: /.*/, namespace: 'stub' }, async (args) => {
        const names = Object.keys((await import(args.path)) as object).filter((name) => /^[A-Za-z_$][\w$]*$/.test(name));
        // `export { stub as name }` takes any name, reserved words (zod exports `catch`) included.
        const exports = names.map((name) => (name === 'default' ? 'export default stub;' : `export { stub as ${name} };`));
        return {
          contents: ['const stub = new Proxy(function () {}, { get: () => stub, apply: () => stub, construct: () => stub });', ...exports].join('\n'),
          loader: 'js',
        };
      });
    },
  };
}

/** The presign function (split) without a package, for what that package still costs it. */
const WITHOUT: Record<string, RegExp> = {
  'presign (split) without Powertools': /^@aws-lambda-powertools\//,
};

async function buildPresignWithout(dir: string): Promise<{ name: string; file: string; bytes: number }[]> {
  const built = [];
  let index = 0;
  for (const [name, filter] of Object.entries(WITHOUT)) {
    const out = path.join(dir, `presign-without-${index++}`);
    await mkdir(out, { recursive: true });
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(out, 'node_modules'));
    const file = path.join(out, 'presign.mjs');
    const result = await build({ ...esbuildOptions('split', file), entryPoints: [path.join(REPO_ROOT, 'functions', 'presign.ts')], plugins: [stubPackages(filter)] });
    built.push({ name, file, bytes: describeBundle('presign', 'split', file, result.metafile).loadedBytes });
  }
  return built;
}

type FirstCall = 'none' | 'presign' | 'sharp';

/** The script a fresh process runs: import the bundle, then optionally the first call; prints the timings. */
function importScript(file: string, firstCall: FirstCall): string {
  const url = pathToFileURL(file).href;
  const event = JSON.stringify(
    httpEvent({
      method: 'POST',
      path: '/uploads',
      headers: bearer(R2_ENV.API_TOKEN!),
      json: { generationId: 'gen_1', poseId: 'pose_1', contentType: 'image/png', contentLength: 1259976 },
    }),
  );
  const context = JSON.stringify({ functionName: 'bench-presign', awsRequestId: 'cold', memoryLimitInMB: '256' });
  return `
    const t0 = performance.now();
    const module = await import(${JSON.stringify(url)});
    const t1 = performance.now();
    let first;
    if (${JSON.stringify(firstCall)} === 'presign') {
      const response = await module.handler(${event}, { ...${context}, getRemainingTimeInMillis: () => 10000 });
      if (response.statusCode !== 200) throw new Error('presign answered ' + response.statusCode + ' ' + response.body);
      first = performance.now() - t1;
    } else if (${JSON.stringify(firstCall)} === 'sharp') {
      await import('sharp');
      first = performance.now() - t1;
    }
    console.log(JSON.stringify({ importMs: t1 - t0, firstCallMs: first }));
  `;
}

interface Target {
  name: string;
  layout?: Layout;
  file: string;
  bytes: number;
  firstCall: FirstCall;
  group: 'function' | 'dependency';
}

export async function runColdStart(quick: boolean): Promise<ColdStartResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-bundles-'));
  try {
    const bundles = await buildBundles(dir);
    const dependencies = [...(await buildDependencies(dir)), ...(await buildPresignWithout(dir))];
    for (const b of bundles) {
      log(
        `  ${b.name} (${b.layout}): loads ${(b.loadedBytes / 1024).toFixed(0)} of ${(b.totalBytes / 1024).toFixed(0)} KiB at import, S3 client ${b.s3ClientAtImport ? 'in it' : 'deferred'}; built-ins ${b.builtins.join(' ')}`,
      );
    }
    const runs = quick ? 5 : 11;
    const targets: Target[] = [
      ...bundles.map((b): Target => ({
        name: b.name,
        layout: b.layout,
        file: b.file,
        bytes: b.loadedBytes,
        firstCall: b.name === 'presign' ? 'presign' : b.name === 'thumbnail' ? 'sharp' : 'none',
        group: 'function',
      })),
      ...dependencies.map((d): Target => ({ ...d, firstCall: 'none', group: 'dependency' })),
    ];
    const bare: number[] = [];
    let bareRssBytes = 0;
    const samples = new Map<Target, { wall: number[]; withCallWall: number[]; importMs: number[]; firstCallMs: number[]; rss: number[] }>();
    for (const target of targets) samples.set(target, { wall: [], withCallWall: [], importMs: [], firstCallMs: [], rss: [] });
    const measure = async (target: Target, firstCall: FirstCall) => {
      const measured = await runMeasured(NODE, ['--input-type=module', '-e', importScript(target.file, firstCall)], {
        env: firstCall === 'presign' ? R2_ENV : {},
        cwd: path.dirname(target.file),
      });
      return { measured, timings: JSON.parse(measured.stdout.trim().split('\n').pop()!) as { importMs: number; firstCallMs?: number } };
    };
    // Interleaved, so a burst of load elsewhere touches every target alike.
    for (let i = 0; i < runs; i++) {
      const bareRun = await runMeasured(NODE, ['-e', '0']);
      bare.push(bareRun.wallMs);
      bareRssBytes = Math.max(bareRssBytes, bareRun.maxRssBytes);
      for (const target of targets) {
        const sample = samples.get(target)!;
        const { measured, timings } = await measure(target, 'none');
        sample.wall.push(measured.wallMs);
        sample.importMs.push(timings.importMs);
        sample.rss.push(measured.maxRssBytes);
        if (target.firstCall !== 'none') {
          const withCall = await measure(target, target.firstCall);
          sample.withCallWall.push(withCall.measured.wallMs);
          if (withCall.timings.firstCallMs !== undefined) sample.firstCallMs.push(withCall.timings.firstCallMs);
        }
      }
    }
    const bareMs = median(bare);
    const figures = (target: Target): ImportFigures => {
      const sample = samples.get(target)!;
      const processMs = median(sample.wall);
      return {
        name: target.name,
        ...(target.layout && { layout: target.layout }),
        bytes: target.bytes,
        processMs,
        overBareMs: processMs - bareMs,
        importMs: median(sample.importMs),
        ...(sample.firstCallMs.length > 0 && { firstCallMs: median(sample.firstCallMs), withFirstCallOverBareMs: median(sample.withCallWall) - bareMs }),
        rssBytes: median(sample.rss),
      };
    };
    const result: ColdStartResult = {
      measured: { date: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`, cpu: cpus()[0]?.model.trim() ?? 'unknown', node: process.version },
      bareMs,
      bareRssBytes,
      runs,
      functions: targets.filter((t) => t.group === 'function').map(figures),
      dependencies: targets.filter((t) => t.group === 'dependency').map(figures),
      bundles: bundles.map(({ file: _file, ...bundle }) => ({ ...bundle, composition: bundle.composition.slice(0, 10) })),
    };
    for (const f of [...result.functions, ...result.dependencies]) {
      const first = f.withFirstCallOverBareMs === undefined ? '' : `, with the first call +${f.withFirstCallOverBareMs.toFixed(0)} ms`;
      log(`  ${f.name}${f.layout ? ` (${f.layout})` : ''}: +${f.overBareMs.toFixed(0)} ms over bare node (import ${f.importMs.toFixed(0)} ms)${first}`);
    }
    for (const check of coldStartChecks(result)) log(`  ${check.met ? 'met   ' : 'MISSED'} ${check.target}: ${check.measured}`);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ColdStartCheck {
  target: string;
  layout: Layout;
  measured: string;
  met: boolean;
}

/** The targets of issue 12, judged in each layout. */
export function coldStartChecks(cold: ColdStartResult): ColdStartCheck[] {
  const checks: ColdStartCheck[] = [];
  const over = (value: number, limit: number) => (value < limit ? '' : `, missed by ${ms(value - limit)} ms`);
  for (const layout of LAYOUTS) {
    const of = (name: FunctionName) => cold.functions.find((f) => f.name === name && f.layout === layout);
    const http = HTTP_FUNCTIONS.map(of).filter((f): f is ImportFigures => f !== undefined);
    const presign = of('presign');
    const thumbnail = of('thumbnail');
    if (http.length > 0) {
      const worst = Math.max(...http.map((f) => f.overBareMs));
      checks.push({
        target: `import of each HTTP function < ${TARGETS.httpImportMs} ms over bare Node`,
        layout,
        measured: `${http.map((f) => `${f.name} +${ms(f.overBareMs)}`).join(', ')} ms${over(worst, TARGETS.httpImportMs)}`,
        met: worst < TARGETS.httpImportMs,
      });
    }
    if (presign?.withFirstCallOverBareMs !== undefined) {
      checks.push({
        target: `import and the first presign answer < ${TARGETS.presignFirstAnswerMs} ms over bare Node`,
        layout,
        measured: `+${ms(presign.withFirstCallOverBareMs)} ms${over(presign.withFirstCallOverBareMs, TARGETS.presignFirstAnswerMs)}`,
        met: presign.withFirstCallOverBareMs < TARGETS.presignFirstAnswerMs,
      });
    }
    if (thumbnail) {
      checks.push({
        target: `import of the thumbnail function < ${TARGETS.thumbnailImportMs} ms over bare Node`,
        layout,
        measured: `+${ms(thumbnail.overBareMs)} ms (then sharp loads on the first image: ${ms(thumbnail.firstCallMs ?? Number.NaN)} ms)${over(thumbnail.overBareMs, TARGETS.thumbnailImportMs)}`,
        met: thumbnail.overBareMs < TARGETS.thumbnailImportMs,
      });
    }
  }
  return checks;
}

/** Builds the thumbnail bundle alone, in SST's default layout (for the handler's RSS, measured on what Lambda runs). */
export async function withThumbnailBundle<T>(use: (file: string, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-thumbnail-bundle-'));
  try {
    const bundles = await buildBundles(dir, ['single']);
    const thumbnail = bundles.find((b) => b.name === 'thumbnail')!;
    return await use(thumbnail.file, path.dirname(thumbnail.file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
