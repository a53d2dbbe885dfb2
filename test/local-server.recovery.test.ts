/**
 * Restart recovery and shutdown of local mode: uploads staged by a server that died are processed at the next
 * start, half-written files are cleaned, a SIGKILLed `npm run dev` (lib/cli/dev.ts as a child process) loses
 * nothing, and SIGTERM lets an in-flight upload finish and exits 0, never leaving anything half published; requests
 * that never finish are cut off at the shutdown deadline.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseStagingKey } from '../lib/layout.ts';
import { SHUTDOWN_TIMEOUT_MS } from '../lib/local/server.ts';
import { killDevProcesses, openConnection, startDev, startPut } from './support/dev-process.ts';
import { testImage } from './support/images.ts';
import {
  asBody,
  listFiles,
  makePng,
  makeTempRoot,
  presignUpload,
  rawRequest,
  startTestServer,
  waitFor,
  waitForStatus,
  type TestServer,
} from './support/local-server.ts';

/** Checks what must hold at any moment: no thumbnail without its image, and every published file a whole PNG. */
async function expectNothingHalfPublished(dir: string): Promise<string[]> {
  const files = await listFiles(path.join(dir, 'poses'));
  for (const file of files.filter((name) => name.endsWith('_thumb.png'))) {
    expect(files, `${file} without its image`).toContain(file.replace(/_thumb\.png$/, '.png'));
  }
  for (const file of files) {
    expect(file).toMatch(/\.png$/);
    // A truncated PNG fails to decode in full.
    const { info } = await sharp(path.join(dir, 'poses', file)).raw().toBuffer({ resolveWithObject: true });
    expect(info.width, file).toBeGreaterThan(0);
  }
  return files;
}

describe('restart of the in-process server on a used directory', () => {
  let server: TestServer | undefined;
  let base: string | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('processes uploads left staged by a killed server, and cleans half-written files at start', async () => {
    const root = await makeTempRoot();
    base = root.base;
    const png = await makePng(300, 200);
    const stagedKey = `staging/gen-crash/pose-1/${randomUUID()}`;
    const textKey = `staging/gen-crash/pose-text/${randomUUID()}`;
    expect(parseStagingKey(stagedKey)).toEqual({ generationId: 'gen-crash', poseId: 'pose-1' });
    await mkdir(path.join(root.dir, path.dirname(stagedKey)), { recursive: true });
    await writeFile(path.join(root.dir, stagedKey), png);
    await mkdir(path.join(root.dir, path.dirname(textKey)), { recursive: true });
    await writeFile(path.join(root.dir, textKey), 'not an image at all');
    await mkdir(path.join(root.dir, '.tmp'), { recursive: true });
    await writeFile(path.join(root.dir, '.tmp', randomUUID()), png.subarray(0, 100)); // a crash mid-upload

    server = await startTestServer({ dir: root.dir });
    base = undefined; // stop() removes it now
    // Cleaned before the server answers anything.
    expect(await listFiles(path.join(root.dir, '.tmp'))).toEqual([]);

    const ready = await waitForStatus(server.url, { generationId: 'gen-crash', poseId: 'pose-1' }, ['ready']);
    expect(ready.thumbnailUrl).toBe('/uploads/poses/gen-crash/pose-1_thumb.png');
    const rejected = await waitForStatus(server.url, { generationId: 'gen-crash', poseId: 'pose-text' }, ['rejected']);
    expect(rejected.reason).toBe('not_an_image');
    await server.server.events.drained();
    expect(await listFiles(root.dir)).toEqual([
      'poses/gen-crash/pose-1.png',
      'poses/gen-crash/pose-1_thumb.png',
      'records/gen-crash/pose-1.json',
      'records/gen-crash/pose-text.json',
    ]);
    expect((await readFile(path.join(root.dir, 'poses/gen-crash/pose-1.png'))).equals(png)).toBe(true);
    const thumbnail = await sharp(path.join(root.dir, 'poses/gen-crash/pose-1_thumb.png')).metadata();
    expect([thumbnail.width, thumbnail.height]).toEqual([400, 400]);
  });

  it('keeps what a clean stop left staged, and processes it at the next start', async () => {
    server = await startTestServer();
    const { dir } = server;
    const png = await makePng(120, 90);
    const ticket = (await (
      await fetch(`${server.url}/uploads`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ generationId: 'gen-stop', poseId: 'p', contentType: 'image/png', contentLength: png.length }),
      })
    ).json()) as { uploadUrl: string; headers: Record<string, string> };
    // Stop the queue first (as close() does), so the upload is received but not processed.
    await server.server.events.close();
    expect((await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(png) })).status).toBe(200);
    expect((await waitForStatus(server.url, { generationId: 'gen-stop', poseId: 'p' }, ['pending'])).status).toBe('pending');
    await server.close();
    expect((await listFiles(dir)).filter((file) => file.startsWith('staging/gen-stop/p/'))).toHaveLength(1);

    const restarted = await startTestServer({ dir });
    server = restarted;
    expect((await waitForStatus(restarted.url, { generationId: 'gen-stop', poseId: 'p' }, ['ready'])).status).toBe('ready');
    await restarted.server.events.drained();
    expect(await listFiles(dir)).toEqual(['poses/gen-stop/p.png', 'poses/gen-stop/p_thumb.png', 'records/gen-stop/p.json']);
  });
});

describe('close() of the in-process server with clients that never finish', () => {
  it('closes stalled and idle connections at the shutdown deadline, keeps no partial upload, and queues nothing', async () => {
    const server = await startTestServer({ shutdownTimeoutMs: 300 });
    try {
      const { dir, port, url, logs } = server;
      const png = await makePng(400, 300);
      const ticket = await presignUpload(url, { generationId: 'gen-stall', poseId: 'p' }, png.length);
      // Headers never finished...
      const headersOnly = await openConnection(port);
      headersOnly.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      // ...a body that stops halfway (its temporary file exists)...
      const slowBody = await startPut(port, ticket, png.subarray(0, png.length / 2));
      await waitFor(async () => (await listFiles(path.join(dir, '.tmp'))).length === 1, 5_000, 'the upload to be streaming to disk');
      // ...and a kept-alive connection that is idle after its answer.
      const idle = await openConnection(port);
      idle.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await waitFor(() => idle.socket.bytesRead > 0, 5_000, 'the idle connection to be answered');

      await server.close();
      const [headersAnswer, bodyAnswer, idleAnswer] = await Promise.all([headersOnly.response, slowBody.response, idle.response]);
      expect(headersAnswer).toBe(''); // cut off, never answered
      expect(bodyAnswer).toBe('');
      expect(idleAnswer).toMatch(/^HTTP\/1\.1 200 /);
      expect(logs.some((entry) => entry.message.startsWith('[Storage] Stopping: the shutdown deadline passed with 1 request(s) unanswered'))).toBe(true);
      // The cut-off upload was discarded, never staged.
      expect(await listFiles(dir)).toEqual([]);
      expect(server.server.events.size).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

afterAll(killDevProcesses);

describe('npm run dev (lib/cli/dev.ts) killed and stopped', () => {
  let base: string;
  let dir: string;

  afterEach(async () => {
    killDevProcesses();
    await rm(base, { recursive: true, force: true });
  });

  it('SIGKILL right after an upload is accepted: the restarted server publishes it', async () => {
    ({ base, dir } = await makeTempRoot());
    const { bytes: jpeg } = await testImage('photoJpeg2048');
    const pose = { generationId: 'gen-kill', poseId: 'pose-1' };
    const first = await startDev(dir);
    const ticket = await presignUpload(first.url, pose, jpeg.length, 'image/jpeg');
    const put = await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(jpeg) });
    expect(put.status).toBe(200);
    first.child.kill('SIGKILL'); // while the 2048x2048 JPEG is being decoded
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // The upload was accepted and not processed yet: it is staged, and nothing is half published.
    const afterKill = await listFiles(dir);
    expect(afterKill.filter((file) => file.startsWith('staging/gen-kill/pose-1/'))).toHaveLength(1);
    await expectNothingHalfPublished(dir);

    const second = await startDev(dir);
    const status = await waitForStatus(second.url, pose, ['ready', 'rejected']);
    expect(status.status).toBe('ready');
    expect(await expectNothingHalfPublished(dir)).toEqual(['gen-kill/pose-1.png', 'gen-kill/pose-1_thumb.png']);
    await waitFor(async () => (await listFiles(path.join(dir, 'staging'))).length === 0, 5_000, 'the staging object to be removed');
    const image = await sharp(path.join(dir, 'poses/gen-kill/pose-1.png')).metadata();
    expect([image.format, image.width, image.height]).toEqual(['png', 2048, 2048]);
    const thumbnail = await sharp(path.join(dir, 'poses/gen-kill/pose-1_thumb.png')).metadata();
    expect([thumbnail.width, thumbnail.height]).toEqual([400, 400]);
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });

  it('SIGKILL mid-upload: the half-written file is cleaned at restart, nothing is staged, the old URL is dead', async () => {
    ({ base, dir } = await makeTempRoot());
    const body = await makePng(800, 600);
    const pose = { generationId: 'gen-kill', poseId: 'pose-half' };
    const first = await startDev(dir);
    const ticket = await presignUpload(first.url, pose, body.length);
    const { socket } = await startPut(first.port, ticket, body.subarray(0, Math.floor(body.length / 2)));
    await waitFor(async () => (await listFiles(path.join(dir, '.tmp'))).length === 1, 5_000, 'the upload to be streaming to disk');
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    socket.destroy();
    expect(await listFiles(path.join(dir, '.tmp'))).toHaveLength(1); // what a crash leaves
    expect(await listFiles(path.join(dir, 'staging'))).toEqual([]);

    const second = await startDev(dir);
    expect(await listFiles(dir)).toEqual([]);
    expect((await fetch(`${second.url}/poses/gen-kill/pose-half`)).status).toBe(404);
    // Upload URLs are signed with a per-process key: the dead server's URL is refused by the new one.
    const url = new URL(ticket.uploadUrl);
    const stale = await rawRequest(second.url, { method: 'PUT', path: `${url.pathname}${url.search}`, headers: ticket.headers, body });
    expect(stale.status).toBe(403);
    expect(await listFiles(dir)).toEqual([]);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('SIGTERM during an upload: takes no new connection, finishes the upload, exits 0; the pose ends ready', async () => {
    ({ base, dir } = await makeTempRoot());
    const { bytes: jpeg } = await testImage('photoJpeg2048');
    const pose = { generationId: 'gen-term', poseId: 'pose-1' };
    const first = await startDev(dir);
    const ticket = await presignUpload(first.url, pose, jpeg.length, 'image/jpeg');
    const half = Math.floor(jpeg.length / 2);
    const { socket, response } = await startPut(first.port, ticket, jpeg.subarray(0, half));
    await waitFor(async () => (await listFiles(path.join(dir, '.tmp'))).length === 1, 5_000, 'the upload to be streaming to disk');

    first.child.kill('SIGTERM');
    await waitFor(() => first.output().includes('SIGTERM: finishing in-flight uploads'), 5_000, 'the SIGTERM log line');
    // No new connections once stopping...
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const probe = connect(first.port, '127.0.0.1');
          probe.once('connect', () => (probe.destroy(), resolve(false)));
          probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
        }),
      5_000,
      'the port to refuse new connections',
    );
    // ...but the upload in flight is received in full and accepted, and its kept-alive connection is then
    // closed at once (not after the keep-alive timeout), so the process can exit.
    const sentAt = Date.now();
    socket.write(jpeg.subarray(half));
    const answer = await response;
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
    expect(Date.now() - sentAt).toBeLessThan(2_500);
    const exit = await first.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - sentAt).toBeLessThan(4_000);

    // Whatever the stop left is whole: either published (image and thumbnail) or still staged, never in between.
    const published = await expectNothingHalfPublished(dir);
    const staged = await listFiles(path.join(dir, 'staging'));
    expect(await listFiles(path.join(dir, '.tmp'))).toEqual([]);
    if (published.length > 0) {
      expect(published).toEqual(['gen-term/pose-1.png', 'gen-term/pose-1_thumb.png']);
      expect(staged).toEqual([]);
    } else {
      expect(staged).toHaveLength(1);
    }

    const second = await startDev(dir);
    expect((await waitForStatus(second.url, pose, ['ready', 'rejected'])).status).toBe('ready');
    await waitFor(async () => (await listFiles(path.join(dir, 'staging'))).length === 0, 5_000, 'the staging object to be removed');
    expect(await expectNothingHalfPublished(dir)).toEqual(['gen-term/pose-1.png', 'gen-term/pose-1_thumb.png']);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('SIGTERM while clients hold requests open: exits 0 once the shutdown deadline passes, with no partial upload left', async () => {
    ({ base, dir } = await makeTempRoot());
    const png = await makePng(800, 600);
    const first = await startDev(dir);
    const ticket = await presignUpload(first.url, { generationId: 'gen-term', poseId: 'pose-stalled' }, png.length);
    const headersOnly = await openConnection(first.port);
    headersOnly.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const slowBody = await startPut(first.port, ticket, png.subarray(0, png.length / 3));
    await waitFor(async () => (await listFiles(path.join(dir, '.tmp'))).length === 1, 5_000, 'the upload to be streaming to disk');

    first.child.kill('SIGTERM');
    // Node stops its own request timeouts once it is closing: only the deadline ends these two requests.
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      first.exited,
      new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS + 10_000, 'still running after the deadline and a margin'))),
    ]);
    clearTimeout(timer);
    expect(exit, first.output()).toEqual({ code: 0, signal: null });
    expect(await Promise.all([headersOnly.response, slowBody.response])).toEqual(['', '']);
    expect(first.output()).toContain('the shutdown deadline passed with 1 request(s) unanswered');
    expect(await listFiles(dir)).toEqual([]);
  }, SHUTDOWN_TIMEOUT_MS + 30_000);
});
