/**
 * `npm run smoke` (`pose-storage smoke`, the reference's scripts/test-storage.ts) as a user runs it: a child
 * process configured only by its environment, in local mode on a temporary directory and in r2 mode against a
 * real S3-compatible server. A passing run prints no error line.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { runSmoke } from '../lib/operations/smoke.ts';
import { PoseStorage } from '../lib/pose-storage.ts';
import { DirectoryStore } from '../lib/storage/directory-store.ts';
import { publicBaseUrl } from '../lib/storage/stores.ts';
import { runCli, type CliRun } from './support/cli-process.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';
import { wrapStore } from './support/wrap-store.ts';


/** Only what a user would set (and HOME): no variables of the test runner's own environment leak in. */
function smoke(env: Record<string, string>): Promise<CliRun> {
  return runCli(['smoke'], { env: { HOME: process.env.HOME ?? '/tmp', ...env } });
}

const STEPS = ['initialization', 'store dialect', 'conditional writes', 'save pose with thumbnail', 'verify files', 'delete pose', 'error handling'];

describe('npm run smoke', () => {
  let dir: string;
  let s3: S3TestServer;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pose-smoke-'));
    s3 = await startS3Server();
  });

  afterAll(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('passes in local mode, says what passed, and leaves no pose behind', async () => {
    const result = await smoke({ UPLOAD_PATH: dir });
    expect(result.stdout).toContain(`local mode (${dir})`);
    for (const step of STEPS) expect(result.stdout).toContain(`PASS  ${step}`);
    expect(result.stdout).toMatch(new RegExp(`^${STEPS.length} passed, 0 failed$`, 'm'));
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('[Storage] Initialized in local mode');
    // The refusals it provokes are checked, not printed: nothing alarming in a passing run.
    expect(result.stdout).toContain('PASS  error handling: invalid image and invalid id refused and logged');
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/"level":"(error|warn)"|Failed/);
    expect(await readdir(path.join(dir, 'poses'))).toEqual([]);
  });

  it('passes in r2 mode against a real S3-compatible server', async () => {
    const result = await smoke({
      STORAGE_MODE: 'r2',
      ...s3.r2Env,
      API_TOKEN: 'smoke-test-api-token-0123456789',
    });
    expect(result.stdout).toContain(`r2 mode (bucket ${s3.bucket}`);
    for (const step of STEPS) expect(result.stdout).toContain(`PASS  ${step}`);
    expect(result.stdout).toContain('https://poses.example.test/poses/smoke_');
    expect(result.code).toBe(0);
    expect(`${result.stdout}${result.stderr}`).toContain('[Storage] Saved R2 objects: poses/smoke_');
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/"level":"(error|warn)"|Failed/);
    expect(`${result.stdout}${result.stderr}`).not.toContain('smoke-test-api-token-0123456789');
  });

  it('fails, saying which step, when the store cannot be reached, and prints no secret', async () => {
    const result = await smoke({
      STORAGE_MODE: 'r2',
      R2_ENDPOINT: 'http://127.0.0.1:9',
      R2_ACCESS_KEY_ID: 'id',
      R2_SECRET_ACCESS_KEY: 'secret-that-must-not-appear',
      R2_BUCKET_NAME: 'nowhere',
      R2_PUBLIC_URL: 'https://poses.example.test',
      API_TOKEN: 'smoke-test-api-token-0123456789',
    });
    expect(result.code).toBe(1);
    // One line says why; the checks that need the store are not run.
    expect(result.stdout).toMatch(/^FAIL {2}initialization: Storage is unavailable: list staging\/ failed: connection refused by 127\.0\.0\.1:9$/m);
    expect(result.stdout).not.toMatch(/^(PASS|FAIL) {2}save/m);
    expect(result.stdout).toMatch(/^0 passed, 1 failed \(the other checks need the store\)$/m);
    expect(`${result.stdout}${result.stderr}`).not.toContain('secret-that-must-not-appear');
  });

  it('fails the conditional-writes check, saying what to do, on a store that ignores If-None-Match and If-Match', async () => {
    const config = parseConfig({ UPLOAD_PATH: dir });
    const store = new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' });
    // A store that takes every write unconditionally, as some S3-compatible servers do.
    const careless = wrapStore(store, { put: (key, body, { contentType, cacheControl }) => store.put(key, body, { contentType, ...(cacheControl !== undefined && { cacheControl }) }) });
    const lines: string[] = [];
    const storage = new PoseStorage({ config, store: careless, logger: createLogger(() => undefined) }, publicBaseUrl(config));

    const result = await runSmoke({ storage, config, write: (line) => lines.push(line) });

    expect(lines).toContain(
      'FAIL  conditional writes: a second create-only write (If-None-Match: *) was accepted; the pose lock needs it: use a store that enforces If-None-Match and If-Match on PUT (R2 and S3 do)',
    );
    expect(result.failed).toBe(1);
    expect(await readdir(path.join(dir, 'locks'))).toEqual([]); // the probe's object was removed
  });
});
