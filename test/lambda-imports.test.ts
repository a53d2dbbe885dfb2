/**
 * The Lambda functions never load the operations tool: not its command-line libraries (the progress bar, the
 * size and duration formatting), nor lib/cli, nor the operations that only the CLI runs. Checked on the import
 * graph esbuild follows from each function's entry (as SST bundles them), packages left external so that each
 * package import is seen by name.
 */
import { build, type Metafile } from 'esbuild';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HTTP_FUNCTIONS } from '../lib/lambda/routes.ts';

const ROOT = new URL('../', import.meta.url).pathname;
/** Every function of the route table, and the thumbnail function (object-created events, not HTTP). */
const FUNCTIONS = [...HTTP_FUNCTIONS, 'thumbnail'];
const CLI_PACKAGES = ['cli-progress', 'pretty-bytes', 'pretty-ms'];

async function importGraph(entry: string): Promise<Metafile> {
  const result = await build({
    entryPoints: [path.join(ROOT, entry)],
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: ROOT,
  });
  return result.metafile;
}

describe('the Lambda functions import nothing of the operations tool', () => {
  it.each(FUNCTIONS)('functions/%s.ts', async (name) => {
    const { inputs } = await importGraph(`functions/${name}.ts`);
    const files = Object.keys(inputs);
    expect(files).toContain(`functions/${name}.ts`);
    expect(files.filter((file) => file.startsWith('lib/cli/'))).toEqual([]);
    expect(files.filter((file) => file.startsWith('lib/operations/'))).toEqual([]);
    const packages = Object.values(inputs).flatMap((input) => input.imports.filter((entry) => entry.external).map((entry) => entry.path));
    expect(packages.filter((name) => CLI_PACKAGES.some((cli) => name === cli || name.startsWith(`${cli}/`)))).toEqual([]);
  });

  it('the local server runs the handlers of lib/lambda/handlers, never an entry of functions/', async () => {
    const { inputs } = await importGraph('lib/local/server.ts');
    const files = Object.keys(inputs);
    for (const name of FUNCTIONS) expect(files).toContain(`lib/lambda/handlers/${name}.ts`);
    expect(files.filter((file) => file.startsWith('functions/'))).toEqual([]);
  });

  it('and the check sees a package import when there is one (the CLI does import them)', async () => {
    const { inputs } = await importGraph('lib/cli/pose-storage.ts');
    const packages = new Set(Object.values(inputs).flatMap((input) => input.imports.filter((entry) => entry.external).map((entry) => entry.path)));
    for (const name of CLI_PACKAGES) expect(packages).toContain(name);
  });
});
