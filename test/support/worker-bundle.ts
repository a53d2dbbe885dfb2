import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

/**
 * Bundles a Cloudflare Worker the way SST 4 bundles a `sst.cloudflare.Worker` handler (pkg/runtime/worker/worker.go
 * in SST's repository): the module wrapped by `wrapCloudflareHandler` of `sst/resource/cloudflare`, ESM, platform
 * node with the workerd/worker/browser conditions, `node:*` and `cloudflare:workers` external, and the
 * createRequire banner. SST also applies unenv's Cloudflare preset, which only rewrites imports of Node
 * built-ins: `externalImports` lets a test check that the Worker has none, so the preset changes nothing for it.
 */
export interface WorkerBundle {
  /** The bundled module, for Miniflare's `scriptPath`. */
  path: string;
  /** The imports of the bundled code left to the runtime (the banner's `module` import is not listed). */
  externalImports: string[];
}

/** SST's default compatibility settings for Workers (platform/src/components/cloudflare/helpers/compatibility.ts). */
export const SST_WORKER_COMPATIBILITY = { compatibilityDate: '2025-05-05', compatibilityFlags: ['nodejs_compat'] };

export async function bundleWorker(handler: string): Promise<WorkerBundle> {
  const root = path.resolve(import.meta.dirname, '../..');
  const entry = path.resolve(root, handler);
  const outdir = await mkdtemp(path.join(tmpdir(), 'worker-bundle-'));
  const outfile = path.join(outdir, 'worker.mjs');
  const result = await build({
    platform: 'node',
    stdin: {
      contents: [
        `import * as _sst_user_module from ${JSON.stringify(entry)}`,
        `import { wrapCloudflareHandler } from "sst/resource/cloudflare"`,
        `export * from ${JSON.stringify(entry)}`,
        `export default wrapCloudflareHandler(_sst_user_module.default)`,
      ].join('\n'),
      resolveDir: path.dirname(entry),
      loader: 'ts',
    },
    external: ['node:*', 'cloudflare:workers'],
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    keepNames: true,
    bundle: true,
    metafile: true,
    format: 'esm',
    target: 'esnext',
    outfile,
    banner: { js: `import { createRequire as topLevelCreateRequire } from 'module';\nconst require = topLevelCreateRequire("/");` },
    logLevel: 'silent',
  });
  const imports = Object.values(result.metafile.outputs).flatMap((output) => output.imports);
  return { path: outfile, externalImports: [...new Set(imports.filter((entry) => entry.external).map((entry) => entry.path))] };
}
