/**
 * The operations tool as a user runs it: `node lib/cli/pose-storage.ts <command>` in a child process, with its
 * environment, against a temporary directory and a real S3-compatible server (s3rver). Checks the exit
 * statuses, stdout/stderr, and that no secret is ever printed.
 */
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newStagingKey } from '../lib/layout.ts';
import { formatBytes } from '../lib/operations/format.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { runCli, startCli, type CliOptions, type CliRun } from './support/cli-process.ts';
import { startS3Server, type S3TestServer } from './support/s3-server.ts';

const SECRET_MARKER = 'API-TOKEN-SECRET-must-never-show-0123456789';

let server: S3TestServer;
let bucket: S3Store;
let work: string;
let uploads: string;

beforeAll(async () => {
  server = await startS3Server();
  bucket = new S3Store(server.r2Config);
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'operations-cli-'));
  uploads = path.join(work, 'uploads');
});

afterEach(async () => {
  await rm(work, { recursive: true, force: true });
  const keys: string[] = [];
  for await (const object of bucket.list('')) keys.push(object.key);
  await bucket.delete(keys);
});

/** The environment of a run: UPLOAD_PATH and what is given (runCli adds PATH, never the test runner's own). */
function env(extra: Record<string, string> = {}): Record<string, string> {
  return { UPLOAD_PATH: uploads, ...extra };
}

/** R2_* of the test server; the secret key is s3rver's, so the API token stands in as the secret to look for. */
function r2Env(extra: Record<string, string> = {}): Record<string, string> {
  return env({ ...server.r2Env, ...extra });
}

function cli(args: string[], environment: Record<string, string>, onStdout?: CliOptions['onStdout']): Promise<CliRun> {
  return runCli(args, { cwd: work, env: environment, onStdout });
}

/** `count` published poses (image + thumbnail, distinct 16x16 PNGs) under UPLOAD_PATH; returns their total bytes. */
async function seed(count: number, generation = 'gen_1'): Promise<number> {
  const directory = path.join(uploads, 'poses', generation);
  await mkdir(directory, { recursive: true });
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    for (const [name, shade] of [[`p${i}.png`, 2 * i], [`p${i}_thumb.png`, 2 * i + 1]] as const) {
      const body = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: shade % 256, g: Math.floor(shade / 256), b: 9 } } })
        .png()
        .toBuffer();
      await writeFile(path.join(directory, name), body);
      bytes += body.length;
    }
  }
  return bytes;
}

describe('pose-storage CLI', () => {
  it('--help lists the commands; a command --help its options', async () => {
    const main = await cli(['--help'], env());
    expect(main.code).toBe(0);
    for (const command of ['migrate', 'usage', 'verify', 'cleanup', 'health', 'smoke']) expect(main.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    const migrate = await cli(['migrate', '--help'], env());
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toMatch(/^Usage: pose-storage migrate --from local --to r2/);
    expect(migrate.stdout).toContain('--concurrency N');
    expect(migrate.stderr).toBe('');
  });

  it('an unknown flag or command is exit status 2 with one line naming it', async () => {
    const flag = await cli(['usage', '--by-generatoin'], env());
    expect(flag).toEqual({ code: 2, stdout: '', stderr: 'pose-storage usage: unknown option --by-generatoin. See "pose-storage usage --help".\n' });
    const command = await cli(['migrat'], env());
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^pose-storage: unknown command "migrat"/);
    const value = await cli(['migrate', '--from', 'local', '--to', 'r2', '--concurrency', '0'], r2Env());
    expect(value.code).toBe(2);
    expect(value.stderr).toContain('--concurrency must be a whole number from 1 to 64 (got "0")');
  });

  it('a configuration error is exit status 2 with one line naming the variable, and never a secret', async () => {
    const mode = await cli(['usage'], env({ STORAGE_MODE: 'bogus' }));
    expect(mode).toEqual({ code: 2, stdout: '', stderr: 'Configuration error: STORAGE_MODE must be "local" or "r2" (got "bogus")\n' });

    const { R2_BUCKET_NAME: _, ...withoutBucket } = r2Env({ API_TOKEN: SECRET_MARKER, R2_SECRET_ACCESS_KEY: SECRET_MARKER });
    const migrate = await cli(['migrate', '--from', 'local', '--to', 'r2'], withoutBucket);
    expect(migrate).toEqual({ code: 2, stdout: '', stderr: 'Configuration error: R2_BUCKET_NAME is required for --to r2\n' });

    // r2 mode without API_TOKEN: fine for the operations tool, not for health (the service needs it).
    const health = await cli(['health'], r2Env({ STORAGE_MODE: 'r2', R2_SECRET_ACCESS_KEY: SECRET_MARKER }));
    expect(health.code).toBe(2);
    expect(health.stderr).toBe('Configuration error: API_TOKEN is required when STORAGE_MODE=r2\n');
    expect(health.stdout).toContain('FAIL  configuration');
    for (const run of [mode, migrate, health]) expect(run.stdout + run.stderr).not.toContain(SECRET_MARKER);
  });

  it('every configuration problem at once, one indented line each, printed once (health too)', async () => {
    const { R2_BUCKET_NAME: _, ...withoutBucket } = r2Env({ PORT: 'abc' });
    const migrate = await cli(['migrate', '--from', 'local', '--to', 'r2'], withoutBucket);
    expect(migrate).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'Configuration error (2 problems):\n' +
        '  PORT must be a whole number between 0 and 65535 (got "abc")\n' +
        '  R2_BUCKET_NAME is required for --to r2\n',
    });

    // r2 mode with nothing set: the report's row names the variables, and the list follows once, on stderr.
    const health = await cli(['health'], env({ STORAGE_MODE: 'r2' }));
    const missing = ['R2_ACCESS_KEY_ID', 'R2_SECRET_ACCESS_KEY', 'R2_BUCKET_NAME', 'R2_PUBLIC_URL', 'API_TOKEN'];
    expect(health).toEqual({
      code: 2,
      stdout: `Unhealthy\n  FAIL  configuration        0 ms  R2_ACCOUNT_ID, ${missing.slice(0, -1).join(', ')} and API_TOKEN are missing or invalid\n`,
      stderr: [
        'Configuration error (6 problems):',
        '  R2_ACCOUNT_ID is required when STORAGE_MODE=r2 unless R2_ENDPOINT is set',
        ...missing.map((variable) => `  ${variable} is required when STORAGE_MODE=r2`),
        '',
      ].join('\n'),
    });
  });

  it.skipIf(process.platform !== 'linux')('an UPLOAD_PATH on a pseudo file system is a configuration error at once, for every command that uses it', async () => {
    const refusal = 'UPLOAD_PATH is /proc/pose-storage, on proc, a pseudo file system of the kernel that cannot store files: choose a directory on a disk';
    // Without the refusal they would hang for ever: each run is cut off after 20 s (within the test's timeout), so
    // that a regression fails the test and leaves no process behind.
    const bounded = (args: string[], environment: Record<string, string>) => {
      const { child, exited } = startCli(args, { cwd: work, env: environment });
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      return exited.finally(() => clearTimeout(timer));
    };
    const commands = [['usage'], ['smoke'], ['verify', '--repair'], ['migrate', '--from', 'r2', '--to', 'local']];
    const [health, ...runs] = await Promise.all([
      bounded(['health'], env({ UPLOAD_PATH: '/proc/pose-storage' })),
      ...commands.map((args) => bounded(args, r2Env({ UPLOAD_PATH: '/proc/pose-storage' }))),
    ]);
    runs.forEach((run, index) => expect(run, commands[index]!.join(' ')).toEqual({ code: 2, stdout: '', stderr: `Configuration error: ${refusal}\n` }));
    expect(health).toEqual({
      code: 2,
      stdout: 'Unhealthy\n  FAIL  configuration        0 ms  UPLOAD_PATH is missing or invalid\n',
      stderr: `Configuration error: ${refusal}\n`,
    });
    // A bucket's commands do not use the directory: r2 mode is not refused for it.
    expect((await cli(['usage'], r2Env({ STORAGE_MODE: 'r2', UPLOAD_PATH: '/proc/pose-storage' }))).code).toBe(0);
  });

  it('a .env line it cannot read is a configuration error naming the file and the line, and nothing runs', async () => {
    await mkdir(work, { recursive: true });
    await writeFile(path.join(work, '.env'), `STORAGE_MODE=local\nR2_SECRET_ACCESS_KEY ${SECRET_MARKER}\n`);
    const run = await cli(['usage'], env());
    expect(run).toEqual({
      code: 2,
      stdout: '',
      stderr: 'Configuration error: .env:2 is neither NAME=value (a NAME of letters, digits and "_", not starting with a digit) nor a # comment\n',
    });
  });

  it('usage --json reports what is in the directory', async () => {
    const bytes = await seed(3);
    await mkdir(path.join(uploads, 'records', 'gen_2'), { recursive: true });
    await writeFile(path.join(uploads, 'records', 'gen_2', 'p9.json'), '{"reason":"not_an_image"}');
    const run = await cli(['usage', '--json', '--by-generation'], env());
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      mode: 'local',
      location: uploads,
      files: 7,
      bytes: bytes + 25,
      poses: 3,
      thumbnails: 3,
      areas: { poses: { files: 6, bytes }, records: { files: 1, bytes: 25 }, staging: { files: 0, bytes: 0 } },
      generations: [
        { generationId: 'gen_1', poses: 3, files: 6, bytes },
        { generationId: 'gen_2', poses: 0, files: 1, bytes: 25 },
      ],
    });
  });

  it('usage in r2 mode reads the bucket (API_TOKEN not needed)', async () => {
    await bucket.put('poses/gen_1/a.png', Buffer.alloc(100), { contentType: 'image/png' });
    await bucket.put('poses/gen_1/a_thumb.png', Buffer.alloc(10), { contentType: 'image/png' });
    const run = await cli(['usage'], r2Env({ STORAGE_MODE: 'r2', R2_SECRET_ACCESS_KEY: server.secretAccessKey }));
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Storage usage, r2 mode (bucket ${server.bucket} at 127.0.0.1:`);
    expect(run.stdout).toMatch(/^poses\/ +2 +110 B$/m);
    expect(run.stdout).toContain('poses: 1 (thumbnails: 1)');
  });

  it('migrate prints progress and a summary; run again, it skips everything', async () => {
    const bytes = await seed(30);
    const first = await cli(['migrate', '--from', 'local', '--to', 'r2', '--verify'], r2Env({ API_TOKEN: SECRET_MARKER }));
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`Migrating poses/ and records/ from local (${uploads}) to r2 (bucket ${server.bucket} at 127.0.0.1:`);
    expect(first.stdout).toMatch(/^progress: 60\/60 files \(100%\)/m);
    expect(first.stdout.match(/^progress: /gm)!.length).toBeGreaterThanOrEqual(10);
    expect(first.stdout).toMatch(new RegExp(`^ +copied +60 files +${formatBytes(bytes)}$`, 'm'));
    expect(first.stdout).toMatch(/^ +verified +60 files .* read back and byte-identical$/m);
    expect(first.stdout).toMatch(/^ +failed +0 files/m);
    expect(first.stderr).toContain('"message":"[Storage] Migration started: 60 files from local to r2"');
    expect(first.stdout + first.stderr).not.toContain(SECRET_MARKER);
    expect(first.stdout + first.stderr).not.toContain(`"${server.secretAccessKey}"`);

    const stored = await bucket.get('poses/gen_1/p7_thumb.png');
    expect(stored?.body.equals(await readFile(path.join(uploads, 'poses', 'gen_1', 'p7_thumb.png')))).toBe(true);

    const again = await cli(['migrate', '--from', 'local', '--to', 'r2', '--json'], r2Env());
    expect(again.code).toBe(0);
    const result = JSON.parse(again.stdout) as { copied: { files: number }; skipped: { files: number; bytes: number }; failed: { files: number } };
    expect(result).toMatchObject({ copied: { files: 0 }, skipped: { files: 60, bytes }, failed: { files: 0 } });
  });

  it('migrate --dry-run writes nothing; a missing bucket is exit status 1 with the reason', async () => {
    await seed(3);
    const dry = await cli(['migrate', '--from', 'local', '--to', 'r2', '--dry-run'], r2Env());
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^ +would copy +6 files/m);
    expect(dry.stdout).toMatch(/^progress: 6\/6 files \(100%\), .*, 6 to copy, 0 skipped, 0 failed$/m);
    expect(dry.stdout).toContain('(dry run: nothing was written)');
    const keys: string[] = [];
    for await (const object of bucket.list('')) keys.push(object.key);
    expect(keys).toEqual([]);

    const missing = await cli(['migrate', '--from', 'local', '--to', 'r2'], r2Env({ R2_BUCKET_NAME: 'no-such-bucket' }));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^pose-storage migrate: Storage is unavailable: list poses\/ failed: bucket "no-such-bucket" does not exist at 127\.0\.0\.1 \(NoSuchBucket\): check R2_BUCKET_NAME and R2_ACCOUNT_ID$/m);
  });

  it('Ctrl-C stops a migration after the copies in flight; running it again copies the rest', async () => {
    await seed(100);
    let interrupted = false;
    const first = await cli(['migrate', '--from', 'local', '--to', 'r2', '--concurrency', '1'], r2Env(), (stdout, child) => {
      if (!interrupted && /^progress: /m.test(stdout)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    expect(first.code).toBe(130);
    expect(first.stderr).toContain('Interrupted: finishing the copies in flight');
    const copied = Number(/^ {2}copied +(\d+) files/m.exec(first.stdout)?.[1]);
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(200);
    expect(first.stdout).toContain(`Interrupted after ${copied} of 200 files: run the same command again to resume.`);

    const second = await cli(['migrate', '--from', 'local', '--to', 'r2', '--json'], r2Env());
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ copied: { files: 200 - copied }, skipped: { files: copied } });
  });

  it('verify finds broken images and unprocessed uploads; --repair fixes what it can and says what it cannot', async () => {
    await seed(3); // published by an older version: no records, and 16x16 "thumbnails"
    await writeFile(path.join(uploads, 'poses', 'gen_1', 'p2.png'), '<!DOCTYPE html><html><body>502 Bad Gateway</body></html>');
    const staged = newStagingKey({ generationId: 'gen_1', poseId: 'p5' }, Date.now() - 3 * 3600_000); // its event was lost
    await mkdir(path.join(uploads, path.dirname(staged)), { recursive: true });
    await writeFile(path.join(uploads, staged), await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c04' } }).png().toBuffer());

    const found = await cli(['verify'], env());
    expect(found.code).toBe(1);
    expect(found.stdout).toMatch(/^ {2}broken thumbnail +poses\/gen_1\/p0_thumb\.png: 16x16, not 400x400$/m);
    expect(found.stdout).toMatch(/^ {2}unrecorded pose +poses\/gen_1\/p1\.png: published files with no record/m);
    expect(found.stdout).toMatch(
      /^ {2}broken image +poses\/gen_1\/p2\.png: an HTML page, not an image {2}-> cannot be repaired: nothing valid to rebuild it from: delete the pose \(DELETE \/poses\/gen_1\/p2, or pose-storage cleanup for its generation\) or upload it again$/m,
    );
    expect(found.stdout).toContain(`  unprocessed upload      ${staged}: staged 3.0 h ago, never processed\n`);
    expect(found.stdout).toContain('8 problem(s) (1 unprocessed upload, 1 broken image, 3 broken thumbnail, 3 unrecorded pose). Run "pose-storage verify --repair"');
    expect(found.stdout).toMatch(/^progress: 4\/4 poses \(100%\)/m);

    const repaired = await cli(['verify', '--repair'], env());
    expect(repaired.code).toBe(1); // the HTML page is still there
    expect(repaired.stdout).toContain(`  unprocessed upload      ${staged}: staged 3.0 h ago, never processed  -> repaired\n`);
    expect(repaired.stdout).toContain('8 problem(s) (1 unprocessed upload, 1 broken image, 3 broken thumbnail, 3 unrecorded pose): 5 repaired, 3 left.');
    const record = JSON.parse(await readFile(path.join(uploads, 'records', 'gen_1', 'p5.json'), 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ status: 'ready', width: 64, height: 48 });

    const left = JSON.parse((await cli(['verify', '--json'], env())).stdout) as { problems: number; findings: { kind: string; key: string }[] };
    expect(left.problems).toBe(3);
    expect(new Set(left.findings.filter((f) => f.kind !== 'rejection_record').map((f) => f.key))).toEqual(
      new Set(['poses/gen_1/p2.png', 'poses/gen_1/p2_thumb.png']),
    );
  });

  it('cleanup deletes the old generation and keeps the new one', async () => {
    await seed(2, 'gen_old');
    await seed(2, 'gen_new');
    const old = new Date(Date.now() - 40 * 86_400_000);
    for (const name of ['p0.png', 'p0_thumb.png', 'p1.png', 'p1_thumb.png']) await utimes(path.join(uploads, 'poses', 'gen_old', name), old, old);

    const bad = await cli(['cleanup', '--older-than', '30 days'], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--older-than: "30 days" is not a duration');

    const run = await cli(['cleanup', '--older-than', '30d'], env());
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ {2}deleted {6}gen_old {2}4 files, /m);
    expect(run.stdout).toMatch(/Deleted 1 of 2 generation\(s\) \(4 files, .*\); 1 kept/);
    const usage = JSON.parse((await cli(['usage', '--json', '--by-generation'], env())).stdout) as { generations: { generationId: string }[] };
    expect(usage.generations.map((g) => g.generationId)).toEqual(['gen_new']);
  });

  it('health: exit status 0 when healthy, 1 below the free-space threshold', async () => {
    await mkdir(uploads);
    const healthy = await cli(['health', '--json'], env());
    expect(healthy.code).toBe(0);
    expect(JSON.parse(healthy.stdout)).toMatchObject({ status: 'healthy', mode: 'local' });
    const low = await cli(['health', '--min-free-mb', '999999999'], env());
    expect(low.code).toBe(1);
    expect(low.stdout).toMatch(/^Unhealthy: local mode/);
    expect(low.stdout).toMatch(/^ {2}FAIL {2}disk_space .*low disk space/m);
  });

  it('smoke runs the smoke test', async () => {
    const run = await cli(['smoke', '--quiet'], env());
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Storage smoke test, local mode/);
    expect(run.stdout).toContain('\n7 passed, 0 failed\n');
    expect(run.stderr).toBe('');
  });
});
