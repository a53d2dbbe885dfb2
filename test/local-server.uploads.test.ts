/**
 * The local server's upload URLs, like R2's: each creates its staging object once (a second PUT while the
 * upload waits to be processed is refused with 412, never swapped under the thumbnailer), and a PUT refused
 * for a server-side cause (a full disk) is answered 503 and logged with its cause, leaving no file behind.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asBody, listFiles, makePng, startTestServer, type TestServer } from './support/local-server.ts';
import { mountTmpfs, tmpfs, unmount } from './support/tmpfs.ts';

interface Ticket {
  uploadUrl: string;
  headers: Record<string, string>;
}

let server: TestServer | undefined;

afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function presign(pose: { generationId: string; poseId: string }, contentLength: number): Promise<Ticket> {
  const response = await fetch(`${server!.url}/uploads`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...pose, contentType: 'image/png', contentLength }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Ticket;
}

describe('local upload URLs', () => {
  it('create the upload once: a second PUT while it waits is refused with 412, and the first bytes stay', async () => {
    server = await startTestServer();
    await server.server.events.close(); // nothing processes the upload: it waits, staged
    const first = await makePng(40, 30);
    const second = Buffer.from(first);
    second.writeUInt8(second.readUInt8(second.length - 20) ^ 0xff, second.length - 20); // other bytes, same length: the URL signs it
    const ticket = await presign({ generationId: 'g412', poseId: 'p' }, first.length);

    expect((await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(first) })).status).toBe(200);
    const refused = await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(second) });
    expect(refused.status).toBe(412);
    expect(await refused.json()).toEqual({ error: { code: 'precondition_failed', message: expect.stringMatching(/already stored at this URL/) } });

    const staged = (await listFiles(server.dir)).filter((file) => file.startsWith('staging/'));
    expect(staged).toHaveLength(1);
    expect((await readFile(path.join(server.dir, staged[0]!))).equals(first)).toBe(true);

    // Without the URL's If-None-Match header the PUT is refused, as R2 refuses a request that drops a signed header.
    const { 'If-None-Match': _, ...unsigned } = ticket.headers;
    const bare = await fetch(ticket.uploadUrl, { method: 'PUT', headers: unsigned, body: asBody(second) });
    expect(bare.status).toBe(403);
  });
});

describe(`a full disk during an upload${tmpfs.note}`, () => {
  let mount: string | undefined;

  afterEach(async () => {
    if (mount) {
      unmount(mount);
      await rm(path.dirname(mount), { recursive: true, force: true });
      mount = undefined;
    }
  });

  it.skipIf(!tmpfs.ok)('is answered 503 with Retry-After, logged with its cause, and leaves no file', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'full-upload-'));
    mount = path.join(base, 'uploads');
    await mkdir(mount);
    mountTmpfs(mount, '256k');
    server = await startTestServer({ dir: mount });
    const body = Buffer.alloc(1024 * 1024, 7); // four times the disk
    const ticket = await presign({ generationId: 'gfull', poseId: 'p' }, body.length);

    const response = await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(body) });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('storage_unavailable');
    expect(server.logs).toContainEqual(
      expect.objectContaining({ level: 'error', code: 'disk_full', message: expect.stringMatching(/^\[Storage\] Refused an upload: No space left/) }),
    );
    expect(await listFiles(mount)).toEqual([]);
  });
});
