/**
 * Cold start: each function bundled as SST bundles it for `nodejs24.x` (esbuild: ESM, minified, platform node,
 * keepNames, mainFields module/main, SST's createRequire banner, the AWS SDK bundled in, `sharp` external),
 * then imported in fresh Node processes, against a bare `node -e 0`. Also the first invocation of presign
 * (config parsing, S3 client, signing), sharp's load for the thumbnail function, and what weighs in the HTTP
 * bundles: zod, the AWS SDK and middy bundled alone the same way.
 */
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { httpEvent, bearer } from '../support/http-events.ts';
import { log, median, NODE, R2_ENV, REPO_ROOT, runMeasured } from './common.ts';

export const FUNCTIONS = ['presign', 'status', 'delete', 'thumbnail'] as const;

/** SST's banner for ESM bundles (pkg/runtime/node/build.go). */
const SST_BANNER = [
  `import { createRequire as topLevelCreateRequire } from 'module';`,
  `const require = topLevelCreateRequire(import.meta.url);`,
  `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
  `const __filename = topLevelFileUrlToPath(import.meta.url)`,
  `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
].join('\n');

export interface Bundle {
  name: string;
  file: string;
  bytes: number;
  /** Largest inputs by bytes in the output, grouped by package. */
  composition: { source: string; bytes: number }[];
}

export interface ImportFigures {
  name: string;
  bytes: number;
  /** Median wall time of `node -e "await import(bundle)"`, ms. */
  processMs: number;
  /** processMs minus bare Node's. */
  overBareMs: number;
  /** Median of the import alone, timed inside the process. */
  importMs: number;
  /** Median of the first call after the import (presign: a real request; thumbnail: loading sharp). */
  firstCallMs?: number;
  rssBytes: number;
}

export interface ColdStartResult {
  bareMs: number;
  bareRssBytes: number;
  runs: number;
  functions: ImportFigures[];
  /** The same measurements for single dependencies bundled alone. */
  dependencies: ImportFigures[];
  composition: Record<string, { source: string; bytes: number }[]>;
}

function esbuildOptions(outfile: string): BuildOptions & { metafile: true } {
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
    outfile,
    logLevel: 'error',
  };
}

function compositionOf(metafile: Metafile): { source: string; bytes: number }[] {
  const output = Object.values(metafile.outputs)[0];
  const bySource = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? 'our code (lib/, functions/)';
    bySource.set(pkg, (bySource.get(pkg) ?? 0) + bytesInOutput);
  }
  return [...bySource].map(([source, bytes]) => ({ source, bytes })).sort((a, b) => b.bytes - a.bytes);
}

/** Bundles the four functions into `dir` (which gets a node_modules link, so the external sharp resolves). */
export async function buildBundles(dir: string): Promise<Bundle[]> {
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const bundles: Bundle[] = [];
  for (const name of FUNCTIONS) {
    const file = path.join(dir, `${name}.mjs`);
    const result = await build({ ...esbuildOptions(file), entryPoints: [path.join(REPO_ROOT, 'functions', `${name}.ts`)] });
    bundles.push({ name, file, bytes: (await stat(file)).size, composition: compositionOf(result.metafile) });
  }
  return bundles;
}

const DEPENDENCIES: Record<string, string> = {
  'zod (import { z })': `import { z } from 'zod'; globalThis.keep = z;`,
  'AWS SDK (S3 client, commands, presigner)': `import { S3Client, GetObjectCommand, PutObjectCommand, HeadObjectCommand, DeleteObjectsCommand, paginateListObjectsV2, S3ServiceException } from '@aws-sdk/client-s3'; import { getSignedUrl } from '@aws-sdk/s3-request-presigner'; globalThis.keep = [S3Client, GetObjectCommand, PutObjectCommand, HeadObjectCommand, DeleteObjectsCommand, paginateListObjectsV2, S3ServiceException, getSignedUrl];`,
  'middy (core + 5 middlewares)': `import middy from '@middy/core'; import a from '@middy/http-cors'; import b from '@middy/http-error-handler'; import c from '@middy/http-header-normalizer'; import d from '@middy/http-json-body-parser'; import e from '@middy/http-security-headers'; globalThis.keep = [middy, a, b, c, d, e];`,
};

async function buildDependencies(dir: string): Promise<{ name: string; file: string; bytes: number }[]> {
  const built = [];
  let index = 0;
  for (const [name, contents] of Object.entries(DEPENDENCIES)) {
    const file = path.join(dir, `dependency-${index++}.mjs`);
    await build({ ...esbuildOptions(file), stdin: { contents, resolveDir: REPO_ROOT, loader: 'js' } });
    built.push({ name, file, bytes: (await stat(file)).size });
  }
  return built;
}

/** The script a fresh process runs: import the bundle, then optionally the first call; prints the timings. */
function importScript(file: string, firstCall: 'none' | 'presign' | 'sharp'): string {
  const url = pathToFileURL(file).href;
  const event = JSON.stringify(
    httpEvent({
      method: 'POST',
      path: '/uploads',
      headers: bearer('bench-token-0123456789abcdef'),
      json: { generationId: 'gen_1', poseId: 'pose_1', contentType: 'image/png', contentLength: 1259976 },
    }),
  );
  return `
    const t0 = performance.now();
    const module = await import(${JSON.stringify(url)});
    const t1 = performance.now();
    let first;
    if (${JSON.stringify(firstCall)} === 'presign') {
      const response = await module.handler(${event}, { awsRequestId: 'cold', getRemainingTimeInMillis: () => 10000 });
      if (response.statusCode !== 200) throw new Error('presign answered ' + response.statusCode + ' ' + response.body);
      first = performance.now() - t1;
    } else if (${JSON.stringify(firstCall)} === 'sharp') {
      await import('sharp');
      first = performance.now() - t1;
    }
    console.log(JSON.stringify({ importMs: t1 - t0, firstCallMs: first }));
  `;
}


/**
 * esbuild plugin: the named packages replaced by a stub (a Proxy that accepts any property, call or `new`), to
 * measure what a bundle would cost without them (lazy-loaded, or replaced by something lighter).
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
          contents: [
            'const stub = new Proxy(function () {}, { get: () => stub, apply: () => stub, construct: () => stub });',
            ...exports,
          ].join('\n'),
          loader: 'js',
        };
      });
    },
  };
}

const WITHOUT: Record<string, RegExp> = {
  'presign without zod': /^zod(\/.*)?$/,
  'presign without the AWS SDK': /^@aws-sdk\//,
  'presign without zod and the AWS SDK': /^(zod(\/.*)?|@aws-sdk\/.*)$/,
};

async function buildPresignWithout(dir: string): Promise<{ name: string; file: string; bytes: number }[]> {
  const built = [];
  let index = 0;
  for (const [name, filter] of Object.entries(WITHOUT)) {
    const file = path.join(dir, `presign-without-${index++}.mjs`);
    await build({ ...esbuildOptions(file), entryPoints: [path.join(REPO_ROOT, 'functions', 'presign.ts')], plugins: [stubPackages(filter)] });
    built.push({ name, file, bytes: (await stat(file)).size });
  }
  return built;
}

type FirstCall = 'none' | 'presign' | 'sharp';

interface Target {
  name: string;
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
    const runs = quick ? 5 : 11;
    const bare: number[] = [];
    let bareRssBytes = 0;
    const targets: Target[] = [
      ...bundles.map((b): Target => ({
        name: b.name,
        file: b.file,
        bytes: b.bytes,
        firstCall: b.name === 'presign' ? 'presign' : b.name === 'thumbnail' ? 'sharp' : 'none',
        group: 'function',
      })),
      ...dependencies.map((d): Target => ({ ...d, firstCall: 'none', group: 'dependency' })),
    ];
    const samples = new Map<string, { wall: number[]; importMs: number[]; firstCallMs: number[]; rss: number[] }>();
    for (const target of targets) samples.set(target.name, { wall: [], importMs: [], firstCallMs: [], rss: [] });
    const measure = async (target: Target, firstCall: FirstCall) => {
      const measured = await runMeasured(NODE, ['--input-type=module', '-e', importScript(target.file, firstCall)], {
        env: firstCall === 'presign' ? R2_ENV : {},
        cwd: dir,
      });
      return { measured, timings: JSON.parse(measured.stdout.trim().split('\n').pop()!) as { importMs: number; firstCallMs?: number } };
    };
    // Interleaved, so a burst of load elsewhere touches every target alike.
    for (let i = 0; i < runs; i++) {
      const bareRun = await runMeasured(NODE, ['-e', '0']);
      bare.push(bareRun.wallMs);
      bareRssBytes = Math.max(bareRssBytes, bareRun.maxRssBytes);
      for (const target of targets) {
        const sample = samples.get(target.name)!;
        const { measured, timings } = await measure(target, 'none');
        sample.wall.push(measured.wallMs);
        sample.importMs.push(timings.importMs);
        sample.rss.push(measured.maxRssBytes);
        if (target.firstCall !== 'none') {
          const withCall = await measure(target, target.firstCall);
          if (withCall.timings.firstCallMs !== undefined) sample.firstCallMs.push(withCall.timings.firstCallMs);
        }
      }
    }
    const bareMs = median(bare);
    const figures = (target: Target): ImportFigures => {
      const sample = samples.get(target.name)!;
      const processMs = median(sample.wall);
      return {
        name: target.name,
        bytes: target.bytes,
        processMs,
        overBareMs: processMs - bareMs,
        importMs: median(sample.importMs),
        ...(sample.firstCallMs.length > 0 && { firstCallMs: median(sample.firstCallMs) }),
        rssBytes: median(sample.rss),
      };
    };
    const result: ColdStartResult = {
      bareMs,
      bareRssBytes,
      runs,
      functions: targets.filter((t) => t.group === 'function').map(figures),
      dependencies: targets.filter((t) => t.group === 'dependency').map(figures),
      composition: Object.fromEntries(bundles.map((b) => [b.name, b.composition.slice(0, 8)])),
    };
    for (const f of [...result.functions, ...result.dependencies]) {
      log(`  ${f.name}: ${(f.bytes / 1024).toFixed(0)} KiB, +${f.overBareMs.toFixed(0)} ms over bare node (import ${f.importMs.toFixed(0)} ms${f.firstCallMs === undefined ? '' : `, first call ${f.firstCallMs.toFixed(0)} ms`})`);
    }
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Builds the thumbnail bundle alone (for the handler's RSS, measured on what Lambda runs). */
export async function withThumbnailBundle<T>(use: (file: string, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-thumbnail-bundle-'));
  try {
    const bundles = await buildBundles(dir);
    return await use(bundles.find((b) => b.name === 'thumbnail')!.file, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

