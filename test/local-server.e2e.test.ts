/**
 * Local mode end to end, over real HTTP on 127.0.0.1: presign, PUT the bytes to the returned URL with exactly
 * the returned headers, wait for `ready`, then read the published files through the static route the way a
 * browser or a CDN client would (validators, ranges, conditional requests), and delete.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadPose, UploadPoseError } from '../lib/client/upload-pose.ts';
import { testImage, type TestImageName } from './support/images.ts';
import { asBody, listFiles, rawRequest, startTestServer, waitForStatus, type TestServer } from './support/local-server.ts';

const TOKEN = 'e2e-token-0123456789abcdef';

interface Ticket {
  uploadUrl: string;
  method: string;
  headers: Record<string, string>;
  expiresAt: string;
  imageUrl: string;
  thumbnailUrl: string;
}

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

async function presign(base: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Ticket> {
  const response = await fetch(`${base}/uploads`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  return (await response.json()) as Ticket;
}

describe.each<{ image: TestImageName; contentType: string; generationId: string; poseId: string }>([
  { image: 'photoPng1024', contentType: 'image/png', generationId: 'gen-e2e', poseId: 'pose_png' },
  { image: 'photoJpeg2048', contentType: 'image/jpeg', generationId: 'gen-e2e', poseId: 'pose_jpg' },
])('upload of $image through presign, PUT and the static route', ({ image, contentType, generationId, poseId }) => {
  let bytes: Buffer;
  let ticket: Ticket;
  let imageBytes: Buffer;
  let imageHeaders: Headers;

  it('presign answers an absolute upload URL on this server, the headers to send, and the public URLs', async () => {
    ({ bytes } = await testImage(image));
    const before = Date.now();
    ticket = await presign(server.url, { generationId, poseId, contentType, contentLength: bytes.length });
    expect(ticket.method).toBe('PUT');
    const uploadUrl = new URL(ticket.uploadUrl);
    expect(uploadUrl.origin).toBe(server.url);
    expect(uploadUrl.pathname).toMatch(new RegExp(`^/local-uploads/staging/${generationId}/${poseId}/[0-9a-f-]{36}$`));
    expect(uploadUrl.searchParams.get('signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(ticket.headers).toEqual({ 'Content-Type': contentType, 'Content-Length': String(bytes.length), 'If-None-Match': '*' });
    const expiresIn = Date.parse(ticket.expiresAt) - before;
    expect(expiresIn).toBeGreaterThan(590_000);
    expect(expiresIn).toBeLessThanOrEqual(601_000);
    expect(ticket.imageUrl).toBe(`/uploads/poses/${generationId}/${poseId}.png`);
    expect(ticket.thumbnailUrl).toBe(`/uploads/poses/${generationId}/${poseId}_thumb.png`);
    // Nothing exists before the PUT.
    expect((await fetch(`${server.url}/poses/${generationId}/${poseId}`)).status).toBe(404);
  });

  it('accepts the PUT with exactly the returned headers, then the pose becomes ready', async () => {
    const put = await fetch(ticket.uploadUrl, { method: ticket.method, headers: ticket.headers, body: asBody(bytes) });
    expect(put.status).toBe(200);
    // The ETag is the MD5 of the bytes, as S3 answers a single-part PUT.
    const { createHash } = await import('node:crypto');
    expect(put.headers.get('etag')).toBe(`"${createHash('md5').update(bytes).digest('hex')}"`);

    const status = await waitForStatus(server.url, { generationId, poseId });
    expect(status).toEqual({
      generationId,
      poseId,
      status: 'ready',
      imageUrl: ticket.imageUrl,
      thumbnailUrl: ticket.thumbnailUrl,
      width: expect.any(Number),
      height: expect.any(Number),
      bytes: expect.any(Number),
      version: expect.stringMatching(/^[0-9a-z]+$/),
    });
    await server.server.events.drained(); // the thumbnailer's last step (staging and lock removed) is done
    const files = await listFiles(server.dir);
    expect(files).toEqual(expect.arrayContaining([`poses/${generationId}/${poseId}.png`, `poses/${generationId}/${poseId}_thumb.png`]));
    // Staging consumed, the lock released, nothing in .tmp: only the pose's record besides its files.
    expect(files.filter((name) => !name.startsWith('poses/'))).toEqual([`records/${generationId}/${poseId}.json`]);
  });

  it('serves the published image as PNG with validators and a bounded cache lifetime', async () => {
    const response = await fetch(`${server.ipUrl}${ticket.imageUrl}`);
    expect(response.status).toBe(200);
    imageHeaders = response.headers;
    imageBytes = Buffer.from(await response.arrayBuffer());
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('content-length')).toBe(String(imageBytes.length));
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    expect(response.headers.get('accept-ranges')).toBe('bytes');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    const lastModified = Date.parse(response.headers.get('last-modified') ?? '');
    expect(Math.abs(lastModified - Date.now())).toBeLessThan(60_000);
    // The bytes are the file on disk.
    expect(imageBytes.equals(await readFile(path.join(server.dir, 'poses', generationId, `${poseId}.png`)))).toBe(true);

    const source = await sharp(bytes).metadata();
    const published = await sharp(imageBytes).metadata();
    expect(published.format).toBe('png');
    if (contentType === 'image/png') {
      expect(imageBytes.equals(bytes)).toBe(true); // a PNG is published byte for byte
    } else {
      expect(imageBytes.equals(bytes)).toBe(false);
      const rotated = (source.orientation ?? 1) >= 5;
      expect([published.width, published.height]).toEqual(rotated ? [source.height, source.width] : [source.width, source.height]);
    }
  });

  it('serves the 400x400 PNG thumbnail', async () => {
    const response = await fetch(`${server.url}${ticket.thumbnailUrl}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    const thumbnail = Buffer.from(await response.arrayBuffer());
    const meta = await sharp(thumbnail).metadata();
    expect({ format: meta.format, width: meta.width, height: meta.height }).toEqual({ format: 'png', width: 400, height: 400 });
  });

  it('answers HEAD with the same headers and no body', async () => {
    const head = await rawRequest(server.url, { method: 'HEAD', path: ticket.imageUrl });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(imageBytes.length));
    expect(head.headers.etag).toBe(imageHeaders.get('etag'));
  });

  it('answers ranges with 206, the right bytes and Content-Range', async () => {
    const size = imageBytes.length;
    const cases = [
      { range: 'bytes=100-1123', start: 100, end: 1123 },
      { range: `bytes=${size - 10}-`, start: size - 10, end: size - 1 },
      { range: 'bytes=-500', start: size - 500, end: size - 1 },
      { range: `bytes=0-${size + 1000}`, start: 0, end: size - 1 },
    ];
    for (const { range, start, end } of cases) {
      const response = await fetch(`${server.url}${ticket.imageUrl}`, { headers: { Range: range } });
      expect(response.status, range).toBe(206);
      expect(response.headers.get('content-range'), range).toBe(`bytes ${start}-${end}/${size}`);
      expect(response.headers.get('content-length'), range).toBe(String(end - start + 1));
      const body = Buffer.from(await response.arrayBuffer());
      expect(body.equals(imageBytes.subarray(start, end + 1)), range).toBe(true);
    }
    const unsatisfiable = await fetch(`${server.url}${ticket.imageUrl}`, { headers: { Range: `bytes=${size}-` } });
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers.get('content-range')).toBe(`bytes */${size}`);
    await unsatisfiable.body?.cancel();
  });

  it('answers conditional requests with 304 and no body', async () => {
    const etag = imageHeaders.get('etag')!;
    const byTag = await rawRequest(server.url, { path: ticket.imageUrl, headers: { 'If-None-Match': `"other", ${etag}` } });
    expect(byTag.status).toBe(304);
    expect(byTag.body.length).toBe(0);
    expect(byTag.headers.etag).toBe(etag);
    const byDate = await rawRequest(server.url, { path: ticket.imageUrl, headers: { 'If-Modified-Since': imageHeaders.get('last-modified')! } });
    expect(byDate.status).toBe(304);
    // Another tag is not fresh: the whole file again.
    const stale = await fetch(`${server.url}${ticket.imageUrl}`, { headers: { 'If-None-Match': '"0-0"' } });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer()).equals(imageBytes)).toBe(true);
  });

  it('deletes the pose: 204, then 404 on the status and on both files', async () => {
    const response = await fetch(`${server.url}/poses/${generationId}/${poseId}`, { method: 'DELETE' });
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    const status = await fetch(`${server.url}/poses/${generationId}/${poseId}`);
    expect(status.status).toBe(404);
    expect(((await status.json()) as { error: { code: string } }).error.code).toBe('not_found');
    for (const url of [ticket.imageUrl, ticket.thumbnailUrl]) {
      const file = await fetch(`${server.url}${url}`);
      expect(file.status, url).toBe(404);
      expect(file.headers.get('content-type')).toMatch(/^application\/json/);
      await file.body?.cancel();
    }
    expect((await listFiles(server.dir)).filter((name) => name.includes(poseId))).toEqual([]);
    // Deleting again is still a 204.
    expect((await fetch(`${server.url}/poses/${generationId}/${poseId}`, { method: 'DELETE' })).status).toBe(204);
  });
});

describe('uploadPose (lib/client/upload-pose.ts) from Node against the local server', () => {
  it('uploads with fetch, reports progress, and resolves with the ready pose', async () => {
    expect(typeof (globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest).toBe('undefined');
    const { bytes } = await testImage('photoPng1024');
    const progress: { phase: string; loaded: number; total: number }[] = [];
    const pose = await uploadPose(bytes, {
      generationId: 'gen-client',
      poseId: 'pose-1',
      apiUrl: `${server.url}/`,
      onProgress: (event) => progress.push(event),
      pollIntervalMs: 50,
    });
    expect(pose).toEqual({
      generationId: 'gen-client',
      poseId: 'pose-1',
      status: 'ready',
      imageUrl: '/uploads/poses/gen-client/pose-1.png',
      thumbnailUrl: '/uploads/poses/gen-client/pose-1_thumb.png',
      width: 1024,
      height: 1024,
      bytes: bytes.length,
      version: expect.any(String),
    });
    expect(progress).toEqual([
      { phase: 'uploading', loaded: 0, total: bytes.length },
      { phase: 'uploading', loaded: bytes.length, total: bytes.length },
      { phase: 'processing', loaded: bytes.length, total: bytes.length },
    ]);
    const image = Buffer.from(await (await fetch(`${server.url}${pose.status === 'ready' ? pose.imageUrl : ''}`)).arrayBuffer());
    expect(image.equals(bytes)).toBe(true);
  });

  it('resolves with a rejected pose when the bytes only look like an image', async () => {
    // A PNG signature followed by garbage: sniffed as PNG, so presigned and uploaded, then refused by sharp.
    const fake = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(200, 7)]);
    const pose = await uploadPose(fake, { generationId: 'gen-client', poseId: 'pose-fake', apiUrl: server.url, pollIntervalMs: 50 });
    expect(pose.status).toBe('rejected');
    expect(pose.status === 'rejected' && pose.reason).toBe('corrupt_image');
    expect(await listFiles(path.join(server.dir, 'poses', 'gen-client'))).not.toContain('pose-fake.png');
  });

  it('throws the API refusal for bytes that are no image at all (415 from presign)', async () => {
    const error = await uploadPose(Buffer.from('hello, not an image'), { generationId: 'gen-client', poseId: 'pose-text', apiUrl: server.url }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(UploadPoseError);
    expect(error).toMatchObject({ status: 415, code: 'unsupported_type' });
  });

  it('sends the token to a server that requires one, and fails with 401 without it', async () => {
    const secured = await startTestServer({ env: { API_TOKEN: TOKEN } });
    try {
      const { bytes } = await testImage('photoPng1024');
      const refused = await uploadPose(bytes, { generationId: 'gen-token', poseId: 'p', apiUrl: secured.url }).catch((caught: unknown) => caught);
      expect(refused).toBeInstanceOf(UploadPoseError);
      expect(refused).toMatchObject({ status: 401, code: 'unauthorized' });
      const pose = await uploadPose(bytes, { generationId: 'gen-token', poseId: 'p', apiUrl: secured.url, token: TOKEN, pollIntervalMs: 50 });
      expect(pose.status).toBe('ready');
      // The published files are public (the static route asks for no token), like R2's public URL.
      const thumb = await fetch(`${secured.url}/uploads/poses/gen-token/p_thumb.png`);
      expect(thumb.status).toBe(200);
      expect((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width).toBe(400);
    } finally {
      await secured.stop();
    }
  });
});
