/**
 * The README's shell blocks marked `<!-- readme-test: local -->` run as written: each with bash -eu -o pipefail
 * (so any step that fails fails the block), against a real `npm run dev` on a free port (`API` is its URL), in an
 * empty directory holding a generated `pose.png`. Then what the block did is checked from outside: the thumbnail
 * it fetched is a 400x400 PNG, and the pose it deleted is gone. The README cannot drift from the code unnoticed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killDevProcesses, REPO_ROOT, startDev, type DevServer } from './support/dev-process.ts';
import { testImage } from './support/images.ts';
import { listFiles } from './support/local-server.ts';

const MARKER = '<!-- readme-test: local -->';

/** The shell blocks that follow the marker, in the README's order. */
function markedBlocks(readme: string): string[] {
  const blocks: string[] = [];
  const pattern = new RegExp(`^${MARKER}\\n\`\`\`(?:sh|bash)\\n([\\s\\S]*?)\\n\`\`\`$`, 'gm');
  for (const match of readme.matchAll(pattern)) blocks.push(match[1]!);
  return blocks;
}

/** The README's blocks need bash, curl and file, which a machine may lack: the test is skipped then, saying so. */
const missing = ['bash', 'curl', 'file'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const note = missing.length > 0 ? ` (skipped: ${missing.join(', ')} not installed)` : '';

interface BlockRun {
  code: number | null;
  output: string;
}

/** Runs `script` as bash with -eu -o pipefail in `cwd`, with only PATH, HOME and `env`; never longer than 60 s. */
function runBash(script: string, cwd: string, env: Record<string, string>): Promise<BlockRun> {
  const child = spawn('bash', ['-eu', '-o', 'pipefail', '-c', script], {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? cwd, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

let work: string;
let dev: DevServer;
beforeAll(async () => {
  if (note) return;
  work = await mkdtemp(path.join(tmpdir(), 'pose-readme-'));
  await mkdir(path.join(work, 'cwd'));
  // Its own working directory: no .env of the repository's can change what the README promises.
  dev = await startDev(path.join(work, 'uploads'), { cwd: path.join(work, 'cwd') });
});
afterAll(async () => {
  killDevProcesses();
  if (work) await rm(work, { recursive: true, force: true });
});

describe(`the README's local-server shell blocks${note}`, () => {
  it('are there to run: the curl walkthrough of Local mode is marked', async () => {
    const blocks = markedBlocks(await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(1);
    expect(blocks.some((block) => block.includes('/uploads') && block.includes('curl'))).toBe(true);
  });

  it.skipIf(note !== '')('run as written, every step succeeding, and do what they say', { timeout: 120_000 }, async () => {
    const blocks = markedBlocks(await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8'));
    for (const [index, block] of blocks.entries()) {
      const cwd = await mkdtemp(path.join(work, `block-${index + 1}-`));
      await writeFile(path.join(cwd, 'pose.png'), (await testImage('photoPng1024')).bytes);
      const run = await runBash(block, cwd, { API: dev.url });
      expect(run.code, `README block ${index + 1} failed; its output:\n${run.output}\nthe server's:\n${dev.output()}`).toBe(0);
    }
    // The walkthrough fetched a real thumbnail, then deleted the pose: nothing of it is left, nor known.
    const walkthrough = (await listFiles(work)).find((file) => file.endsWith('/pose_1_thumb.png') && file.startsWith('block-'));
    expect(walkthrough).toBeDefined();
    const thumbnail = await sharp(path.join(work, walkthrough!)).metadata();
    expect([thumbnail.format, thumbnail.width, thumbnail.height]).toEqual(['png', 400, 400]);
    expect(await listFiles(path.join(work, 'uploads', 'poses'))).toEqual([]);
    expect((await fetch(`${dev.url}/poses/gen_1/pose_1`)).status).toBe(404);
  });

  it.skipIf(note !== '')('stop at a step that fails, with the API\'s answer: a rejected image ends the wait, failed', { timeout: 120_000 }, async () => {
    const [walkthrough] = markedBlocks(await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8'));
    const cwd = await mkdtemp(path.join(work, 'rejected-'));
    // A PNG by its magic bytes (file says image/png, the upload is accepted) that cannot be decoded.
    const png = (await testImage('photoPng1024')).bytes;
    await writeFile(path.join(cwd, 'pose.png'), png.subarray(0, png.length / 2));
    const run = await runBash(walkthrough!, cwd, { API: dev.url });
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/"status":"rejected","reason":"corrupt_image","message":"The PNG is corrupt: [^"]+\."\}\nThe pose is not ready: see the answer above\.\n$/);
    expect((await fetch(`${dev.url}/poses/gen_1/pose_1`, { method: 'DELETE' })).status).toBe(204);
  });
});
