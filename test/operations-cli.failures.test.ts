/**
 * Store failures as the operator meets them through `pose-storage` (a child process, configured by its
 * environment only): a refused connection, keys the store does not know, a wrong secret and a missing bucket
 * against the S3 test server, and a read-only UPLOAD_PATH (a real tmpfs remounted read-only; needs root).
 * Each says what happened and what to check, in one line, with exit status 1, and never prints a secret.
 */
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../lib/storage/s3-store.ts';
import { runCli, type CliRun } from './support/cli-process.ts';
import { freePort } from './support/dev-process.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';
import { mountTmpfs, remount, tmpfs, unmount } from './support/tmpfs.ts';

const SECRET = 'secret-access-key-that-must-never-show';
const TOKEN = 'api-token-that-must-never-show-0123';

let server: S3TestServer;
let work: string;

beforeAll(async () => {
  server = await startS3Server();
  work = await mkdtemp(path.join(os.tmpdir(), 'cli-failures-'));
});

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return runCli(args, { cwd: work, env });
}

/** r2 mode on the test server, with `change` applied; the secret key is the real one unless changed. */
function r2(change: Record<string, string> = {}): Record<string, string> {
  return {
    STORAGE_MODE: 'r2',
    UPLOAD_PATH: path.join(work, 'uploads'),
    ...server.r2Env,
    API_TOKEN: TOKEN,
    ...change,
  };
}

/** Runs usage, verify, health, smoke and migrate with `env`; each fails with exit status 1 and `expected` in its one line. */
async function expectEveryCommandSays(env: Record<string, string>, expected: RegExp): Promise<void> {
  const usage = await cli(['usage'], env);
  expect(usage.code).toBe(1);
  expect(usage.stderr).toMatch(new RegExp(`^pose-storage usage: ${expected.source}\\n$`));

  const verify = await cli(['verify'], env);
  expect(verify.code).toBe(1);
  expect(verify.stderr).toMatch(new RegExp(`^pose-storage verify: ${expected.source}\\n$`));

  const health = await cli(['health'], env);
  expect(health.code).toBe(1);
  expect(health.stdout).toMatch(new RegExp(`^ {2}FAIL {2}store_reachable +\\d+ ms {2}${expected.source}$`, 'm'));

  const smoke = await cli(['smoke', '--quiet'], env);
  expect(smoke.code).toBe(1);
  expect(smoke.stdout).toMatch(new RegExp(`^FAIL {2}initialization: ${expected.source}$`, 'm'));
  expect(smoke.stderr).toBe('');

  const migrate = await cli(['migrate', '--from', 'r2', '--to', 'local', '--dry-run'], env);
  expect(migrate.code).toBe(1);
  expect(migrate.stderr).toMatch(new RegExp(`pose-storage migrate: ${expected.source}\\n$`));

  for (const run of [usage, verify, health, smoke, migrate]) {
    expect(run.stdout + run.stderr).not.toContain(SECRET);
    expect(run.stdout + run.stderr).not.toContain(TOKEN);
    expect(run.stdout + run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }
}

describe('store failures through the CLI', () => {
  it('a refused connection names the host and port', async () => {
    const port = await freePort(); // nothing listens there
    await expectEveryCommandSays(
      r2({ R2_ENDPOINT: `http://127.0.0.1:${port}`, R2_SECRET_ACCESS_KEY: SECRET }),
      new RegExp(`Storage is unavailable: list \\S* ?failed: connection refused by 127\\.0\\.0\\.1:${port}`),
    );
  });

  it('an access key the store does not know says to check R2_ACCESS_KEY_ID', async () => {
    await expectEveryCommandSays(
      r2({ R2_ACCESS_KEY_ID: 'AKIAUNKNOWNKEY', R2_SECRET_ACCESS_KEY: SECRET }),
      /Permission denied for list( \S+)?: the store does not know the access key \(InvalidAccessKeyId\): check R2_ACCESS_KEY_ID/,
    );
  });

  it('a wrong secret key says to check R2_SECRET_ACCESS_KEY, and never shows it', async () => {
    await expectEveryCommandSays(
      r2({ R2_SECRET_ACCESS_KEY: SECRET }),
      /Permission denied for list( \S+)?: the store refused the request signature \(SignatureDoesNotMatch\): check R2_SECRET_ACCESS_KEY/,
    );
  });

  it('a missing bucket is named, with what to check', async () => {
    await expectEveryCommandSays(
      r2({ R2_BUCKET_NAME: 'no-such-bucket' }),
      /Storage is unavailable: list \S* ?failed: bucket "no-such-bucket" does not exist at 127\.0\.0\.1 \(NoSuchBucket\): check R2_BUCKET_NAME and R2_ACCOUNT_ID/,
    );
  });
});

describe(`a read-only UPLOAD_PATH through the CLI${tmpfs.note}`, () => {
  it.skipIf(!tmpfs.ok)('reading commands work; health and every writer say "read-only file system", naming the path', async () => {
    const mountPoint = await mkdtemp(path.join(os.tmpdir(), 'cli-read-only-'));
    mountTmpfs(mountPoint, '1m');
    try {
      const env = { UPLOAD_PATH: mountPoint };
      // A pose published and deleted while it was writable, a stale temporary file a writer would remove.
      const smoke = await cli(['smoke', '--quiet'], env);
      expect(smoke.code).toBe(0);
      await mkdir(path.join(mountPoint, '.tmp'), { recursive: true });
      await writeFile(path.join(mountPoint, '.tmp', 'stale'), 'half a file');
      const old = new Date(Date.now() - 2 * 3600_000);
      await utimes(path.join(mountPoint, '.tmp', 'stale'), old, old);
      await new S3Store(server.r2Config).put('poses/gen_ro/p.png', Buffer.from('a published file'), { contentType: 'image/png' });
      remount(mountPoint, 'ro');

      const usage = await cli(['usage', '--json'], env);
      expect(usage.code).toBe(0);
      expect(JSON.parse(usage.stdout)).toMatchObject({ mode: 'local', location: mountPoint });
      expect((await cli(['verify'], env)).code).toBe(0);

      const health = await cli(['health'], env);
      expect(health.code).toBe(1);
      expect(health.stdout).toMatch(/^ {2}ok {4}store_reachable/m);
      expect(health.stdout).toMatch(new RegExp(`^ {2}FAIL {2}store_writable +\\d+ ms {2}Permission denied writing or reading ${mountPoint}/\\S+ \\(read-only file system\\)$`, 'm'));

      // A writer cannot even remove the stale temporary file: it says so before it writes anything.
      const migrate = await cli(['migrate', '--from', 'r2', '--to', 'local'], { ...r2(), ...env, STORAGE_MODE: 'local' });
      expect(migrate).toMatchObject({ code: 1, stdout: '' });
      expect(migrate.stderr).toBe(`pose-storage migrate: Permission denied writing or reading ${mountPoint}/.tmp/stale (read-only file system)\n`);
      const cleanup = await cli(['cleanup', '--older-than', '1d'], env);
      expect(cleanup.code).toBe(1);
      expect(cleanup.stderr).toBe(`pose-storage cleanup: Permission denied writing or reading ${mountPoint}/.tmp/stale (read-only file system)\n`);

      const repair = await cli(['smoke', '--quiet'], env);
      expect(repair.code).toBe(1);
      expect(repair.stdout).toMatch(new RegExp(`^FAIL {2}save pose with thumbnail: Permission denied writing or reading ${mountPoint}/\\S+ \\(read-only file system\\)$`, 'm'));
      for (const run of [health, migrate, cleanup, repair]) expect(run.stdout + run.stderr).not.toMatch(/ENOENT|\n\s+at /);
    } finally {
      unmount(mountPoint);
      await rm(mountPoint, { recursive: true, force: true });
    }
  });
});
