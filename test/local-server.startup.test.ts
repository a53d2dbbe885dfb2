/**
 * What `npm run dev` says when it starts, as a user sees it: the real `npm run dev` on a port another process
 * holds (one line saying so and how to pick another), an invalid configuration (every problem in one report), and
 * lib/cli/dev.ts in a directory with and without a
 * `.env` (read when there is one, never a "not found" notice when there is none; the environment wins; a line it
 * cannot read stops it, named).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killDevProcesses, spawnDev, type DevProcess } from './support/dev-process.ts';
import { waitFor } from './support/local-server.ts';
import { mountTmpfs, remount, tmpfs, unmount } from './support/tmpfs.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'pose-startup-'));
});
afterEach(killDevProcesses);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Waits for the banner; fails with the output if the process exits first. */
async function started(dev: DevProcess): Promise<void> {
  await Promise.race([
    waitFor(() => dev.output().includes('pose-storage is running'), 15_000, 'the start banner'),
    dev.exited.then(() => {
      throw new Error(`exited before it started:\n${dev.output()}`);
    }),
  ]);
}

describe('npm run dev on a port that is in use', () => {
  let holder: Server;
  let port: number;
  beforeAll(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    port = (holder.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => holder.close(resolve));
  });

  it('says so in one line, suggests another PORT and PORT=0, and exits 1 without a stack trace', async () => {
    const dev = spawnDev(
      { STORAGE_MODE: 'local', HOST: '127.0.0.1', PORT: String(port), UPLOAD_PATH: path.join(work, 'in-use') },
      { npm: true },
    );
    expect((await dev.exited).code).toBe(1);
    const output = dev.output();
    expect(output).toContain(`Port ${port} is already in use: stop the other process or set PORT=${port + 1} (PORT=0 picks a free port)`);
    expect(output).not.toMatch(/EADDRINUSE|\n\s+at |node:internal/);
    expect(output).not.toContain('.env');
  });
});

describe('npm run dev with an UPLOAD_PATH it cannot use', () => {
  /** Runs lib/cli/dev.ts on `uploadPath`; it must exit 1 with `message` as its last line, and no stack trace. */
  async function refusedWith(uploadPath: string, message: string): Promise<void> {
    const dev = spawnDev({ STORAGE_MODE: 'local', HOST: '127.0.0.1', PORT: '0', UPLOAD_PATH: uploadPath });
    expect((await dev.exited).code).toBe(1);
    const output = dev.output().trim();
    expect(output.split('\n').at(-1)).toBe(`Cannot start the local server: ${message}`);
    expect(output).not.toMatch(/\n\s+at |node:internal/);
  }

  it('under a regular file: says which path, and that a part of it is a file', async () => {
    const file = path.join(work, 'a-file');
    await writeFile(file, 'not a directory');
    await refusedWith(
      path.join(file, 'uploads'),
      `Storage is unavailable: local disk error on ${path.join(file, 'uploads', 'poses')}: a part of that path is a file, not a directory (ENOTDIR)`,
    );
  });

  it.skipIf(process.platform !== 'linux')('on a pseudo file system (/proc): refused at once as a configuration error, instead of hanging', async () => {
    const dev = spawnDev({ STORAGE_MODE: 'local', HOST: '127.0.0.1', PORT: '0', UPLOAD_PATH: '/proc/pose-storage/uploads' });
    expect((await dev.exited).code).toBe(2);
    expect(dev.output()).toBe(
      'Configuration error: UPLOAD_PATH is /proc/pose-storage/uploads, on proc, a pseudo file system of the kernel that cannot store files: choose a directory on a disk\n',
    );
  });

  it.skipIf(!tmpfs.ok)(`on a read-only file system: permission denied, and why${tmpfs.note}`, async () => {
    const mountPoint = await mkdtemp(path.join(tmpdir(), 'pose-startup-ro-'));
    mountTmpfs(mountPoint, '64k');
    try {
      remount(mountPoint, 'ro');
      await refusedWith(mountPoint, `Permission denied writing or reading ${path.join(mountPoint, 'poses')} (read-only file system)`);
    } finally {
      unmount(mountPoint);
      await rm(mountPoint, { recursive: true, force: true });
    }
  });
});

describe('npm run dev with an invalid configuration', () => {
  /** lib/cli/dev.ts with `env`: exit status 2, and `expected` is all it prints. */
  async function refusedWith(env: Record<string, string>, expected: string): Promise<void> {
    const dev = spawnDev({ UPLOAD_PATH: path.join(work, 'refused'), ...env });
    expect((await dev.exited).code).toBe(2);
    expect(dev.output()).toBe(expected);
  }

  it('reports every problem in one pass, one indented line each naming its variable', async () => {
    await refusedWith(
      { STORAGE_MODE: 'banana', PORT: 'abc', HOST: '@@' },
      'Configuration error (3 problems):\n' +
        '  STORAGE_MODE must be "local" or "r2" (got "banana")\n' +
        '  PORT must be a whole number between 0 and 65535 (got "abc")\n' +
        '  HOST must be a host name or an IPv4/IPv6 address (such as 127.0.0.1, 0.0.0.0 or ::) (got "@@")\n',
    );
  });

  it('refuses r2 mode along with the other problems, without asking for the R2 variables it would never use', async () => {
    await refusedWith(
      { STORAGE_MODE: 'r2', PORT: 'abc' },
      'Configuration error (2 problems):\n' +
        '  STORAGE_MODE must be "local" for the local server (npm run dev); r2 mode runs on Lambda\n' +
        '  PORT must be a whole number between 0 and 65535 (got "abc")\n',
    );
    await refusedWith({ STORAGE_MODE: 'r2' }, 'Configuration error: STORAGE_MODE must be "local" for the local server (npm run dev); r2 mode runs on Lambda\n');
  });
});

describe('lib/cli/dev.ts and .env', () => {
  it('starts without a .env and prints only what a user needs: no "not found" notice, nothing at level error', async () => {
    const cwd = await mkdtemp(path.join(work, 'no-env-'));
    const port = await freePort();
    const dev = spawnDev({ PORT: String(port) }, { cwd });
    await started(dev);
    dev.child.kill('SIGTERM');
    expect((await dev.exited).code).toBe(0);
    const lines = dev.output().split('\n').filter((line) => line.trim() !== '');
    expect(lines.filter((line) => /not found|\.env/i.test(line))).toEqual([]);
    expect(lines.filter((line) => line.includes('"level":"error"'))).toEqual([]);
    // UPLOAD_PATH defaults to ./uploads of the working directory.
    expect(dev.output()).toContain(`pose-storage is running: open http://localhost:${port}/`);
    expect(dev.output()).toContain(`files in ${path.join(cwd, 'uploads')}`);
  });

  it('reads .env from the working directory, and lets the environment win over it', async () => {
    const cwd = await mkdtemp(path.join(work, 'with-env-'));
    const port = await freePort();
    const fromEnvironment = path.join(cwd, 'from-environment');
    await writeFile(path.join(cwd, '.env'), `# local settings\nPORT=${port}\nUPLOAD_PATH=./from-file\nAPI_TOKEN=token-from-dot-env-0123456789\n`);
    const dev = spawnDev({ UPLOAD_PATH: fromEnvironment }, { cwd });
    await started(dev);
    expect(dev.output()).toContain(`pose-storage is running: open http://localhost:${port}/`);
    expect(dev.output()).toContain(`files in ${fromEnvironment}`);
    // The token of the file is in force: the API asks for it.
    expect((await fetch(`http://127.0.0.1:${port}/poses/g/p`)).status).toBe(401);
    const authorized = await fetch(`http://127.0.0.1:${port}/poses/g/p`, { headers: { Authorization: 'Bearer token-from-dot-env-0123456789' } });
    expect(authorized.status).toBe(404);
    expect(dev.output()).not.toContain('API_TOKEN is unset');
    dev.child.kill('SIGTERM');
    expect((await dev.exited).code).toBe(0);
  });

  it('refuses a .env it cannot read as written, naming the file and each line, and starts nothing', async () => {
    const cwd = await mkdtemp(path.join(work, 'bad-env-'));
    // A Windows editor's byte order mark, a line that is no assignment, a quote never closed.
    await writeFile(path.join(cwd, '.env'), `\uFEFFPORT=${await freePort()}\r\nAPI_TOKEN secret-token-0123456789\r\nUPLOAD_PATH="./uploads\r\n`);
    const dev = spawnDev({}, { cwd });
    expect((await dev.exited).code).toBe(2);
    expect(dev.output()).toBe(
      'Configuration error (3 problems):\n' +
        '  .env:1 starts with a byte order mark (U+FEFF, which some Windows editors write): save the file as UTF-8 without BOM\n' +
        '  .env:2 is neither NAME=value (a NAME of letters, digits and "_", not starting with a digit) nor a # comment\n' +
        '  .env:3 opens a " quote in the value of UPLOAD_PATH that is never closed\n',
    );
  });
});
