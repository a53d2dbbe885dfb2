/**
 * What a writer killed mid-write leaves in UPLOAD_PATH/.tmp/: a real `pose-storage migrate --from r2 --to local`
 * child process SIGKILLed while a temporary file is open, then `usage` reporting it, and every writer entry
 * point (migrate, verify --repair, cleanup) removing the ones an hour stale, never a fresh one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3Store } from '../lib/storage/s3-store.ts';
import { runCli, startCli } from './support/cli-process.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';


let server: S3TestServer;
let work: string;
let uploads: string;
let temp: string;

beforeAll(async () => {
  server = await startS3Server();
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'temporary-files-'));
  uploads = path.join(work, 'uploads');
  temp = path.join(uploads, '.tmp');
});

afterEach(async () => {
  await rm(work, { recursive: true, force: true });
  const bucket = new S3Store(server.r2Config);
  const keys: string[] = [];
  for await (const object of bucket.list('')) keys.push(object.key);
  await bucket.delete(keys);
});

function env(): Record<string, string> {
  return {
    UPLOAD_PATH: uploads,
    ...server.r2Env,
  };
}

const start = (args: string[]) => startCli(args, { cwd: work, env: env() });
const cli = (args: string[]) => runCli(args, { cwd: work, env: env() });

const tempFiles = () => readdir(temp).catch(() => [] as string[]);

async function age(names: readonly string[], hours: number): Promise<void> {
  const when = new Date(Date.now() - hours * 3600_000);
  for (const name of names) await utimes(path.join(temp, name), when, when);
}

describe('temporary files of killed writers', () => {
  it('a migrate killed with SIGKILL mid-write: usage reports its file, the next writer keeps it while fresh, removes it once stale', async () => {
    // Large objects: each is written to .tmp/ long enough to be caught there.
    const bucket = new S3Store(server.r2Config);
    const body = randomBytes(8 * 1024 * 1024);
    for (let i = 0; i < 12; i++) await bucket.put(`poses/gen_kill/p${i}.png`, body, { contentType: 'image/png' });

    const migration = start(['migrate', '--from', 'r2', '--to', 'local', '--concurrency', '2']);
    // Freeze the process while a temporary file is there (it cannot rename a file while stopped), then kill it.
    let caught: string[] = [];
    for (;;) {
      const seen = await tempFiles();
      if (seen.length > 0) {
        migration.child.kill('SIGSTOP');
        caught = await tempFiles();
        if (caught.length > 0) break;
        migration.child.kill('SIGCONT');
      }
      const ended = await Promise.race([migration.exited.then(() => true), sleep(2).then(() => false)]);
      if (ended) throw new Error('the migration ended before a temporary file was seen');
    }
    migration.child.kill('SIGKILL');
    expect((await migration.exited).signal).toBe('SIGKILL');
    expect(await tempFiles()).toEqual(caught);

    const usage = await cli(['usage', '--json']);
    expect(usage.code).toBe(0);
    const report = JSON.parse(usage.stdout) as { temporary: { files: number; bytes: number; oldest: string } };
    expect(report.temporary.files).toBe(caught.length);
    expect(report.temporary.bytes).toBeGreaterThanOrEqual(0);
    expect(Date.now() - Date.parse(report.temporary.oldest)).toBeLessThan(5 * 60_000);
    expect((await cli(['usage'])).stdout).toMatch(new RegExp(`^\\.tmp/ +${caught.length} +\\S+ \\S+ +oldest `, 'm'));

    // Resumed at once: the file might be a live writer's, so it stays; the migration finishes.
    const resumed = await cli(['migrate', '--from', 'r2', '--to', 'local']);
    expect(resumed.code).toBe(0);
    expect(await tempFiles()).toEqual(caught);
    expect(await readdir(path.join(uploads, 'poses', 'gen_kill'))).toHaveLength(12);

    // An hour later it is a dead writer's: the next writer removes it, and says so.
    await age(caught, 2);
    const later = await cli(['migrate', '--from', 'r2', '--to', 'local']);
    expect(later.code).toBe(0);
    expect(later.stderr).toContain(`[Storage] Removed ${caught.length} temporary file(s) left by writers that stopped mid-write`);
    expect(await tempFiles()).toEqual([]);
    expect(JSON.parse((await cli(['usage', '--json'])).stdout)).toMatchObject({ temporary: { files: 0, bytes: 0 } });
  });

  it('verify --repair and cleanup remove stale temporary files; read-only runs and fresh files are left alone', async () => {
    await mkdir(temp, { recursive: true });
    const plant = async (name: string, hours: number) => {
      await writeFile(path.join(temp, name), 'half a file');
      await age([name], hours);
    };
    await plant('stale-1', 2);
    await plant('fresh', 0);

    for (const readOnly of [['verify'], ['cleanup', '--older-than', '30d', '--dry-run'], ['migrate', '--from', 'local', '--to', 'r2', '--dry-run']]) {
      expect((await cli(readOnly)).code, readOnly.join(' ')).toBe(0);
      expect(await tempFiles(), readOnly.join(' ')).toEqual(['fresh', 'stale-1']);
    }
    expect((await cli(['verify', '--repair'])).code).toBe(0);
    expect(await tempFiles()).toEqual(['fresh']);

    await plant('stale-2', 2);
    expect((await cli(['cleanup', '--older-than', '30d'])).code).toBe(0);
    expect(await tempFiles()).toEqual(['fresh']);
  });
});
