/**
 * Every refusal of the local server, over real HTTP on 127.0.0.1: auth, ids, methods, tampered / expired /
 * mismatched upload URLs, non-image uploads, traversal and symbolic links on the static route, oversized API
 * bodies and uploads cut off mid-body. Each refusal is checked for its status and JSON error, and for what it must not do:
 * write a file, or serve one that is not published.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asBody, listFiles, makePng, rawRequest, startTestServer, waitFor, waitForStatus, type RawResponse, type TestServer } from './support/local-server.ts';

const TOKEN = 'refusal-token-0123456789abcdef';
const ORIGIN = 'https://app.example.test';

interface Ticket {
  uploadUrl: string;
  method: string;
  headers: Record<string, string>;
}

type ErrorBody = { error: { code: string; message: string } };

function errorOf(response: RawResponse): ErrorBody['error'] {
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(response.body.toString('utf8')) as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}

async function errorOfFetch(response: Response): Promise<ErrorBody['error']> {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as ErrorBody;
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}

async function presign(server: TestServer, body: Record<string, unknown>, token?: string): Promise<Ticket> {
  const response = await fetch(`${server.url}/uploads`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token && { Authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Ticket;
}

/** Files anywhere in the storage root but the (empty) area directories: staging, poses, rejections, .tmp. */
const storedFiles = (server: TestServer) => listFiles(server.dir);

describe('with API_TOKEN set', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { API_TOKEN: `${TOKEN},second-token-0123456789abcdef`, ALLOWED_ORIGINS: ORIGIN } });
  });
  afterAll(() => server?.stop());

  const routes = [
    { method: 'POST', path: '/uploads', body: JSON.stringify({ generationId: 'g', poseId: 'p', contentType: 'image/png', contentLength: 10 }) },
    { method: 'GET', path: '/poses/g/p' },
    { method: 'DELETE', path: '/poses/g/p' },
    { method: 'DELETE', path: '/poses/g' },
  ];
  const badAuthorizations: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['a wrong token', { Authorization: 'Bearer wrong-token-0123456789abcdef' }],
    ['the token with another scheme', { Authorization: `Basic ${TOKEN}` }],
    ['the token without a scheme', { Authorization: TOKEN }],
    ['a prefix of the token', { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['the token with something appended', { Authorization: `Bearer ${TOKEN}x` }],
    ['an empty bearer', { Authorization: 'Bearer ' }],
  ];

  it.each(routes)('$method $path answers 401 JSON for every missing or wrong token', async ({ method, path: route, body }) => {
    for (const [what, headers] of badAuthorizations) {
      const response = await rawRequest(server.url, {
        method,
        path: route,
        headers: { ...headers, ...(body && { 'Content-Type': 'application/json' }) },
        ...(body !== undefined && { body }),
      });
      expect(response.status, what).toBe(401);
      expect(response.headers['www-authenticate'], what).toBe('Bearer');
      expect(errorOf(response).code, what).toBe('unauthorized');
    }
    expect(await storedFiles(server)).toEqual([]);
  });

  it('accepts either token of the list, and a presigned PUT needs no bearer token (its signature is the grant)', async () => {
    const png = await makePng(64, 48);
    const ticket = await presign(server, { generationId: 'g', poseId: 'p', contentType: 'image/png', contentLength: png.length }, TOKEN);
    const put = await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(png) });
    expect(put.status).toBe(200);
    const status = await waitForStatus(server.url, { generationId: 'g', poseId: 'p' }, ['ready'], { token: 'second-token-0123456789abcdef' });
    expect(status.status).toBe('ready');
    const gone = await fetch(`${server.url}/poses/g`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(gone.status).toBe(204);
  });

  it('lets CORS preflight through without a token, for the allowed origin only; errors carry CORS headers', async () => {
    const preflight = (origin: string) =>
      rawRequest(server.url, {
        method: 'OPTIONS',
        path: '/uploads',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
      });
    const allowed = await preflight(ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(allowed.headers['access-control-allow-headers']).toMatch(/Authorization/i);
    const other = await preflight('https://evil.example.test');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    // A 401 is readable by the allowed origin's script (so it can tell the user), not by another's.
    const refused = await rawRequest(server.url, { method: 'GET', path: '/poses/g/p', headers: { Origin: ORIGIN } });
    expect(refused.status).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('answers CORS for upload URLs and published files as the R2 bucket rules do: the allowed origin only', async () => {
    const png = await makePng(24, 24);
    const ticket = await presign(server, { generationId: 'gc', poseId: 'pc', contentType: 'image/png', contentLength: png.length }, TOKEN);
    const uploadPath = `${new URL(ticket.uploadUrl).pathname}${new URL(ticket.uploadUrl).search}`;
    const preflight = (origin: string) =>
      rawRequest(server.url, {
        method: 'OPTIONS',
        path: uploadPath,
        headers: { Origin: origin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' },
      });
    const allowed = await preflight(ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(allowed.headers['access-control-allow-methods']).toContain('PUT');
    expect(allowed.headers['access-control-allow-headers']?.toLowerCase()).toContain('content-type');
    expect((await preflight('https://evil.example.test')).headers['access-control-allow-origin']).toBeUndefined();
    expect(await listFiles(server.dir)).toEqual([]); // a preflight writes nothing

    // A refused PUT is readable by the allowed origin (the 403's JSON), and so is the accepted one.
    const refused = await rawRequest(server.url, {
      method: 'PUT',
      path: uploadPath,
      headers: { Origin: ORIGIN, 'Content-Type': 'image/jpeg', 'Content-Length': String(png.length) },
      body: png,
    });
    expect(refused.status).toBe(403);
    expect(refused.headers['access-control-allow-origin']).toBe(ORIGIN);
    const accepted = await rawRequest(server.url, { method: 'PUT', path: uploadPath, headers: { Origin: ORIGIN, ...ticket.headers }, body: png });
    expect(accepted.status).toBe(200);
    expect(accepted.headers['access-control-allow-origin']).toBe(ORIGIN);
    await waitForStatus(server.url, { generationId: 'gc', poseId: 'pc' }, ['ready'], { token: TOKEN });

    const image = await rawRequest(server.url, { path: '/uploads/poses/gc/pc.png', headers: { Origin: ORIGIN } });
    expect(image.status).toBe(200);
    expect(image.headers['access-control-allow-origin']).toBe(ORIGIN);
    const other = await rawRequest(server.url, { path: '/uploads/poses/gc/pc.png', headers: { Origin: 'https://evil.example.test' } });
    expect(other.status).toBe(200); // public, but not readable by another origin's script
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect((await fetch(`${server.url}/poses/gc`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(204);
  });
});

describe('refusals of the local server', () => {
  let server: TestServer;
  let expiring: TestServer;
  let expiringTicket: { ticket: Ticket; body: Buffer; at: number };

  beforeAll(async () => {
    [server, expiring] = await Promise.all([startTestServer(), startTestServer({ env: { UPLOAD_URL_TTL_SECONDS: '1' } })]);
    // Presigned now, used at the end of the file: the wait for its expiry overlaps the other tests.
    const body = await makePng(16, 16);
    expiringTicket = {
      ticket: await presign(expiring, { generationId: 'g', poseId: 'expired', contentType: 'image/png', contentLength: body.length }),
      body,
      at: Date.now(),
    };
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), expiring?.stop()]);
  });

  describe('ids', () => {
    const badIds = ['..', '.', 'a/b', 'a\\b', 'x'.repeat(129), '', 'é', 'a b', 'a%2Fb', '../../etc'];

    it('refuses bad ids in the presign body with 400 and writes nothing', async () => {
      for (const bad of badIds) {
        for (const field of ['generationId', 'poseId', 'poseLibraryId']) {
          const body = { generationId: 'g', poseId: 'p', contentType: 'image/png', contentLength: 10, [field]: bad };
          const response = await fetch(`${server.url}/uploads`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
          expect(response.status, `${field}=${JSON.stringify(bad)}`).toBe(400);
          const error = await errorOfFetch(response);
          expect(error.code).toBe('invalid_request');
          expect(error.message).toContain(field);
        }
      }
      // 128 characters is still an id.
      await presign(server, { generationId: 'x'.repeat(128), poseId: 'p', contentType: 'image/png', contentLength: 10 });
      expect(await storedFiles(server)).toEqual([]);
    });

    it('refuses bad ids in the path with 400 for GET and DELETE', async () => {
      const long = 'x'.repeat(129);
      const paths = [
        `/poses/a%2Fb/p`,
        `/poses/g/a%2Fb`,
        `/poses/a%2fb`,
        `/poses/..%2F..%2Fetc/p`,
        `/poses/g/..%2f..%2fpackage.json`,
        `/poses/${long}/p`,
        `/poses/g/${long}`,
        `/poses/${long}`,
        `/poses/.../p`,
        `/poses/g/a.png`,
        `/poses/%zz/p`,
        `/poses/g%00/p`,
        `/poses/g/p%5Cx`,
        `/poses//p`,
      ];
      for (const route of paths) {
        for (const method of ['GET', 'DELETE']) {
          if (method === 'GET' && route.split('/').length === 3) continue; // `/poses/{g}` has no GET
          const response = await rawRequest(server.url, { method, path: route });
          expect(response.status, `${method} ${route}`).toBe(400);
          expect(errorOf(response).code, `${method} ${route}`).toBe('invalid_request');
        }
      }
    });

    it('never lets dot segments reach a handler as ids: they are resolved as URL paths (404), and delete nothing', async () => {
      const png = await makePng(32, 32);
      const ticket = await presign(server, { generationId: 'keep', poseId: 'me', contentType: 'image/png', contentLength: png.length });
      expect((await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(png) })).status).toBe(200);
      await waitForStatus(server.url, { generationId: 'keep', poseId: 'me' }, ['ready']);
      const cases = [
        { route: '/poses/keep/..', status: 404, code: 'not_found' }, // is `/poses/`
        { route: '/poses/keep/%2E%2E', status: 404, code: 'not_found' },
        { route: '/poses/..', status: 404, code: 'not_found' }, // is `/`
        { route: '/poses/%2e%2e', status: 404, code: 'not_found' },
        { route: '/poses/../keep', status: 404, code: 'not_found' }, // is `/keep`
        { route: '/poses/keep/me/..', status: 400, code: 'invalid_request' }, // is `/poses/keep/`: an empty poseId
        { route: '/poses/keep/me/%2e%2e', status: 400, code: 'invalid_request' },
      ];
      for (const { route, status, code } of cases) {
        const response = await rawRequest(server.url, { method: 'DELETE', path: route });
        expect(response.status, route).toBe(status);
        expect(errorOf(response).code, route).toBe(code);
      }
      expect(await listFiles(path.join(server.dir, 'poses', 'keep'))).toEqual(['me.png', 'me_thumb.png']);
      expect((await fetch(`${server.url}/poses/keep`, { method: 'DELETE' })).status).toBe(204);
    });
  });

  describe('methods', () => {
    it('answers 405 JSON with Allow for a method a route does not serve', async () => {
      const cases = [
        { method: 'GET', path: '/uploads', allow: 'POST' },
        { method: 'PUT', path: '/uploads', allow: 'POST' },
        { method: 'DELETE', path: '/uploads', allow: 'POST' },
        { method: 'POST', path: '/poses/g/p', allow: 'GET' },
        { method: 'PUT', path: '/poses/g/p', allow: 'GET' },
        { method: 'PATCH', path: '/poses/g', allow: 'DELETE' },
        { method: 'GET', path: '/poses/g', allow: 'DELETE' },
        { method: 'GET', path: `/local-uploads/staging/g/p/${randomUUID()}?expires=1&signature=${'0'.repeat(64)}`, allow: 'PUT' },
        { method: 'POST', path: `/local-uploads/staging/g/p/${randomUUID()}`, allow: 'PUT' },
      ];
      for (const { method, path: route, allow } of cases) {
        const response = await rawRequest(server.url, { method, path: route });
        expect(response.status, `${method} ${route}`).toBe(405);
        expect(response.headers.allow, `${method} ${route}`).toContain(allow);
        expect(errorOf(response).code).toBe('method_not_allowed');
      }
    });
  });

  describe('presign input', () => {
    it('answers 415 for another content type, 413 above UPLOAD_MAX_BYTES, 400 for bad lengths or JSON', async () => {
      const post = (body: string, contentType = 'application/json') =>
        fetch(`${server.url}/uploads`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
      const request = (fields: Record<string, unknown>) => JSON.stringify({ generationId: 'g', poseId: 'p', contentType: 'image/png', contentLength: 10, ...fields });
      const cases: [Response, number, string][] = [
        [await post(request({ contentType: 'image/gif' })), 415, 'unsupported_type'],
        [await post(request({ contentType: 'image/svg+xml' })), 415, 'unsupported_type'],
        [await post(request({ contentLength: 25 * 1024 * 1024 + 1 })), 413, 'too_large'],
        [await post(request({ contentLength: 0 })), 400, 'invalid_request'],
        [await post(request({ contentLength: 1.5 })), 400, 'invalid_request'],
        [await post(request({ contentLength: '10' })), 400, 'invalid_request'],
        [await post(request({ extra: true })), 400, 'invalid_request'],
        [await post('{"generationId":'), 400, 'invalid_json'],
        [await post(request({}), 'text/plain'), 415, 'unsupported_media_type'],
      ];
      for (const [response, status, code] of cases) {
        expect(response.status, code).toBe(status);
        expect((await errorOfFetch(response)).code).toBe(code);
      }
      // The largest allowed size is fine.
      await presign(server, { generationId: 'g', poseId: 'p', contentType: 'image/webp', contentLength: 25 * 1024 * 1024 });
      expect(await storedFiles(server)).toEqual([]);
    });

    it('lists every problem of a body in one 400, one sentence each, naming its field', async () => {
      const response = await fetch(`${server.url}/uploads`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ poseId: 'a/b', contentType: 'image/png', contentLength: 1.5, extra: true }),
      });
      expect(response.status).toBe(400);
      expect(await errorOfFetch(response)).toEqual({
        code: 'invalid_request',
        message:
          'generationId is required. poseId must match ^[A-Za-z0-9_-]{1,128}$ and not end in "_thumb" (got "a/b"). ' +
          'contentLength must be a whole number of bytes (got 1.5). The request body has a field it does not take: "extra".',
      });
    });
  });

  describe('upload URLs', () => {
    let png: Buffer;
    beforeAll(async () => {
      png = await makePng(40, 30);
    });

    async function put(url: string, headers: Record<string, string>, body: Uint8Array): Promise<Response> {
      return fetch(url, { method: 'PUT', headers, body: asBody(body) });
    }

    async function expectRefusedAndNothingWritten(response: Response, code: string, pose: { generationId: string; poseId: string }) {
      expect(response.status).toBe(403);
      expect((await errorOfFetch(response)).code).toBe(code);
      expect(await storedFiles(server)).toEqual([]);
      await sleep(30); // an event, had one been queued, would have started by now
      expect(server.server.events.size).toBe(0);
      expect((await fetch(`${server.url}/poses/${pose.generationId}/${pose.poseId}`)).status).toBe(404);
    }

    it('refuses a URL whose key was changed', async () => {
      const pose = { generationId: 'g', poseId: 'p' };
      const ticket = await presign(server, { ...pose, contentType: 'image/png', contentLength: png.length });
      const url = new URL(ticket.uploadUrl);
      const variants = [
        url.href.replace('/staging/g/p/', '/staging/g/q/'),
        url.href.replace('/staging/g/p/', '/staging/h/p/'),
        url.href.replace(/\/[0-9a-f-]{36}\?/, `/${randomUUID()}?`),
        url.href.replace('/local-uploads/staging/g/p/', '/local-uploads/poses/g/'),
      ];
      for (const variant of variants) {
        await expectRefusedAndNothingWritten(await put(variant, ticket.headers, png), 'signature_mismatch', pose);
      }
      // Pointing the signed path at the published area: refused, never a write under poses/.
      const published = new URL(url.href);
      published.pathname = '/local-uploads/poses/g/p.png';
      await expectRefusedAndNothingWritten(await put(published.href, ticket.headers, png), 'signature_mismatch', pose);
    });

    it('refuses a URL whose signature or expiry was changed, or that lacks either', async () => {
      const pose = { generationId: 'g', poseId: 'p2' };
      const ticket = await presign(server, { ...pose, contentType: 'image/png', contentLength: png.length });
      const url = new URL(ticket.uploadUrl);
      const signature = url.searchParams.get('signature')!;
      const expires = url.searchParams.get('expires')!;
      const withParams = (params: Record<string, string | undefined>) => {
        const changed = new URL(url.href);
        for (const [name, value] of Object.entries(params)) {
          if (value === undefined) changed.searchParams.delete(name);
          else changed.searchParams.set(name, value);
        }
        return changed.href;
      };
      const flipped = `${signature.slice(0, 10)}${signature[10] === 'a' ? 'b' : 'a'}${signature.slice(11)}`;
      const cases: [string, string][] = [
        [withParams({ signature: flipped }), 'signature_mismatch'],
        [withParams({ signature: signature.toUpperCase() === signature ? signature.toLowerCase() : signature.toUpperCase() }), 'malformed'],
        [withParams({ signature: signature.slice(0, -2) }), 'malformed'],
        [withParams({ signature: undefined }), 'malformed'],
        [withParams({ expires: String(Number(expires) + 1) }), 'signature_mismatch'],
        [withParams({ expires: String(Number(expires) + 3600) }), 'signature_mismatch'],
        [withParams({ expires: `0${expires}` }), 'malformed'],
        [withParams({ expires: `${expires}.0` }), 'malformed'],
        [withParams({ expires: undefined }), 'malformed'],
      ];
      for (const [variant, code] of cases) {
        await expectRefusedAndNothingWritten(await put(variant, ticket.headers, png), code, pose);
      }
    });

    it('refuses another Content-Length (another body size) and another Content-Type', async () => {
      const pose = { generationId: 'g', poseId: 'p3' };
      const ticket = await presign(server, { ...pose, contentType: 'image/png', contentLength: png.length });
      const { 'Content-Length': _length, ...typeOnly } = ticket.headers;
      // fetch sets Content-Length from the body it sends.
      await expectRefusedAndNothingWritten(await put(ticket.uploadUrl, typeOnly, png.subarray(0, png.length - 1)), 'signature_mismatch', pose);
      await expectRefusedAndNothingWritten(await put(ticket.uploadUrl, typeOnly, Buffer.concat([png, Buffer.from([0])])), 'signature_mismatch', pose);
      for (const contentType of ['image/jpeg', 'image/webp', 'application/octet-stream', 'image/png; charset=utf-8', 'IMAGE/PNG']) {
        await expectRefusedAndNothingWritten(await put(ticket.uploadUrl, { ...ticket.headers, 'Content-Type': contentType }, png), 'signature_mismatch', pose);
      }
      // No Content-Length at all (chunked): refused before a byte is stored.
      const chunked = await new Promise<RawResponse>((resolve, reject) => {
        const url = new URL(ticket.uploadUrl);
        const socket = connect(server.port, '127.0.0.1', () => {
          socket.write(
            `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n` +
              `${png.length.toString(16)}\r\n`,
          );
          socket.write(png);
          socket.write('\r\n0\r\n\r\n');
        });
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
        socket.on('close', () => {
          const text = Buffer.concat(chunks).toString('latin1');
          const [head = '', body = ''] = text.split('\r\n\r\n');
          resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: { 'content-type': /content-type: ([^\r]+)/i.exec(head)?.[1] }, body: Buffer.from(body, 'latin1') });
        });
      });
      expect(chunked.status).toBe(403);
      expect(errorOf(chunked).code).toBe('malformed');
      expect(await storedFiles(server)).toEqual([]);
      // The untouched ticket still works afterwards: the refusals consumed nothing.
      expect((await put(ticket.uploadUrl, ticket.headers, png)).status).toBe(200);
      await waitForStatus(server.url, pose, ['ready']);
      expect((await fetch(`${server.url}/poses/g/p3`, { method: 'DELETE' })).status).toBe(204);
    });

    it('refuses a URL signed by another server (each server has its own signing key)', async () => {
      const ticket = await presign(expiring, { generationId: 'g', poseId: 'other', contentType: 'image/png', contentLength: png.length });
      const url = new URL(ticket.uploadUrl);
      const response = await put(`${server.url}${url.pathname}${url.search}`, ticket.headers, png);
      await expectRefusedAndNothingWritten(response, 'signature_mismatch', { generationId: 'g', poseId: 'other' });
    });

    it('refuses an expired URL (UPLOAD_URL_TTL_SECONDS=1) and writes nothing', async () => {
      const { ticket, body, at } = expiringTicket;
      await sleep(Math.max(0, at + 2_100 - Date.now()));
      const response = await put(ticket.uploadUrl, ticket.headers, body);
      expect(response.status).toBe(403);
      expect((await errorOfFetch(response)).code).toBe('expired');
      expect(await listFiles(expiring.dir)).toEqual([]);
      expect((await fetch(`${expiring.url}/poses/g/expired`)).status).toBe(404);
    });
  });

  describe('non-image uploads', () => {
    it('accepts the bytes (the store cannot know), then rejects them as not_an_image and publishes nothing', async () => {
      const text = Buffer.from('this is plain text pretending to be a PNG\n'.repeat(20));
      const pose = { generationId: 'gtext', poseId: 'ptext' };
      const ticket = await presign(server, { ...pose, contentType: 'image/png', contentLength: text.length });
      expect((await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(text) })).status).toBe(200);
      const status = await waitForStatus(server.url, pose, ['rejected']);
      expect(status).toEqual({ ...pose, status: 'rejected', reason: 'not_an_image', message: expect.stringMatching(/not a PNG, JPEG or WebP/) });
      await server.server.events.drained(); // the thumbnailer's cleanup (staging, lock) is done
      expect(await storedFiles(server)).toEqual(['records/gtext/ptext.json']);
      // The pose's record is private.
      const record = await rawRequest(server.url, { path: '/uploads/records/gtext/ptext.json' });
      expect(record.status).toBe(404);
      for (const url of ['/uploads/poses/gtext/ptext.png', '/uploads/poses/gtext/ptext_thumb.png']) {
        expect((await rawRequest(server.url, { path: url })).status).toBe(404);
      }
      expect((await fetch(`${server.url}/poses/gtext/ptext`, { method: 'DELETE' })).status).toBe(204);
      expect(await storedFiles(server)).toEqual([]);
      expect((await fetch(`${server.url}/poses/gtext/ptext`)).status).toBe(404);
    });
  });

  describe('static route', () => {
    const UUID = randomUUID();
    const staged = Buffer.from(`STAGED-SECRET-${randomUUID()}`);
    const outside = Buffer.from(`OUTSIDE-SECRET-${randomUUID()}`);
    const rootFile = Buffer.from(`ROOT-SECRET-${randomUUID()}`);
    const rejection = Buffer.from(`{"reason":"not_an_image","secret":"${randomUUID()}"}`);
    const temp = Buffer.from(`TEMP-SECRET-${randomUUID()}`);
    let published: Buffer;
    let packageJson: Buffer;

    beforeAll(async () => {
      // A staged upload (written directly, so no event consumes it), a rejection record, a half-written file,
      // a file at the storage root, one outside it, and one published pose as the control.
      await mkdir(path.join(server.dir, 'staging', 'gt', 'pt'), { recursive: true });
      await writeFile(path.join(server.dir, 'staging', 'gt', 'pt', UUID), staged);
      await mkdir(path.join(server.dir, 'records', 'gt'), { recursive: true });
      await writeFile(path.join(server.dir, 'records', 'gt', 'pt.json'), rejection);
      await mkdir(path.join(server.dir, '.tmp'), { recursive: true });
      await writeFile(path.join(server.dir, '.tmp', UUID), temp);
      await writeFile(path.join(server.dir, 'root.txt'), rootFile);
      await writeFile(path.join(server.base, 'outside.txt'), outside);
      published = await makePng(20, 20);
      await mkdir(path.join(server.dir, 'poses', 'gt'), { recursive: true });
      await writeFile(path.join(server.dir, 'poses', 'gt', 'pub.png'), published);
      packageJson = await readFile(new URL('../package.json', import.meta.url));
    });
    afterAll(async () => {
      for (const area of ['staging', 'records', '.tmp', 'poses']) await rm(path.join(server.dir, area, area === '.tmp' ? UUID : 'gt'), { recursive: true, force: true });
      await rm(path.join(server.dir, 'root.txt'));
      await rm(path.join(server.base, 'outside.txt'));
    });

    it('serves a published file (the control)', async () => {
      const response = await rawRequest(server.url, { path: '/uploads/poses/gt/pub.png' });
      expect(response.status).toBe(200);
      expect(response.body.equals(published)).toBe(true);
    });

    it.each([
      '/uploads/../package.json',
      '/uploads/%2e%2e/package.json',
      '/uploads/..%2fpackage.json',
      '/uploads/poses/..%2f..%2f..%2fpackage.json',
      '/uploads/../outside.txt',
      '/uploads/poses/..%2f..%2foutside.txt',
      '/uploads/poses/%2e%2e%2f%2e%2e%2foutside.txt',
      '/uploads/poses/..%5c..%5coutside.txt',
      '/uploads/poses/..\\..\\outside.txt',
      '/uploads/root.txt',
      '/uploads/poses/../root.txt',
      '/uploads/poses/..%2froot.txt',
      `/uploads/staging/gt/pt/${UUID}`,
      `/uploads/poses/../staging/gt/pt/${UUID}`,
      `/uploads/poses/%2e%2e/staging/gt/pt/${UUID}`,
      `/uploads/poses/%2E%2E/staging/gt/pt/${UUID}`,
      `/uploads/poses/..%2fstaging%2fgt%2fpt%2f${UUID}`,
      `/uploads/poses%2f..%2fstaging%2fgt%2fpt%2f${UUID}`,
      `/uploads/poses/%252e%252e/staging/gt/pt/${UUID}`,
      `/uploads/poses/gt/%2e%2e/%2e%2e/staging/gt/pt/${UUID}`,
      `/uploads/poses//staging/gt/pt/${UUID}`,
      `/uploads//staging/gt/pt/${UUID}`,
      `/uploads/poses/%2fstaging/gt/pt/${UUID}`,
      '/uploads/records/gt/pt.json',
      '/uploads/poses/../records/gt/pt.json',
      '/uploads/poses/..%2frejections%2fgt%2fpt.json',
      `/uploads/.tmp/${UUID}`,
      `/uploads/poses/..%2f.tmp%2f${UUID}`,
      '/uploads/poses/gt',
      '/uploads/poses/gt/',
      '/uploads/poses/',
      '/uploads/poses/gt/pub.png%00.txt',
      '/uploads/poses/gt/pub.png/',
      '/uploads/poses/gt/%70ub.png/..%2f..%2f..%2frecords/gt/pt.json',
    ])('GET %s is a 404 and never a private or outside file', async (route) => {
      for (const method of ['GET', 'HEAD']) {
        const response = await rawRequest(server.url, { method, path: route });
        expect(response.status, `${method} ${route}`).toBe(404);
        const body = response.body;
        for (const secret of [staged, outside, rootFile, rejection, temp, packageJson]) {
          expect(body.includes(secret.subarray(0, 24)), `${method} ${route}`).toBe(false);
        }
        if (method === 'GET') expect(errorOf(response).code).toBe('not_found');
      }
    });

    describe('symbolic links and special files under poses/', () => {
      const outsidePng = path.join('outside-dir', 'pub.png');
      beforeAll(async () => {
        // A link to a system file, a link to a published file, a linked directory holding a PNG outside the
        // root, a FIFO (whose open would block) and a directory named like a file.
        const gt = path.join(server.dir, 'poses', 'gt');
        await symlink('/etc/passwd', path.join(gt, 'passwd.png'));
        await symlink('pub.png', path.join(gt, 'inner.png'));
        await mkdir(path.join(server.base, 'outside-dir'));
        await writeFile(path.join(server.base, outsidePng), published);
        await symlink(path.join(server.base, 'outside-dir'), path.join(server.dir, 'poses', 'glink'));
        await symlink(path.join(server.base, 'outside-dir'), path.join(gt, 'sub'));
        execFileSync('mkfifo', [path.join(gt, 'fifo.png')]);
        await mkdir(path.join(gt, 'dir.png'));
      });
      afterAll(async () => {
        await rm(path.join(server.base, 'outside-dir'), { recursive: true });
        await rm(path.join(server.dir, 'poses', 'glink'));
      });

      it.each([
        ['a link to /etc/passwd', '/uploads/poses/gt/passwd.png', true],
        ['a link to a published file', '/uploads/poses/gt/inner.png', true],
        ['a file in a linked directory outside the root', '/uploads/poses/glink/pub.png', true],
        ['a file in a linked sub-directory', '/uploads/poses/gt/sub/pub.png', true],
        ['a FIFO', '/uploads/poses/gt/fifo.png', false],
        ['a directory', '/uploads/poses/gt/dir.png', false],
      ])('%s is a 404 (GET and HEAD), never its content', async (_name, route, isLink) => {
        const warningsBefore = server.logs.filter((entry) => entry.message.includes('symbolic link')).length;
        for (const method of ['GET', 'HEAD']) {
          const response = await rawRequest(server.url, { method, path: route });
          expect(response.status, `${method} ${route}`).toBe(404);
          expect(response.body.includes('root:')).toBe(false);
          expect(response.body.includes(published.subarray(0, 16))).toBe(false);
          if (method === 'GET') expect(errorOf(response).code).toBe('not_found');
        }
        // The operator learns of a link in the published tree; the client only gets the 404.
        const warnings = server.logs.filter((entry) => entry.message.includes('symbolic link'));
        expect(warnings.length - warningsBefore).toBe(isLink ? 2 : 0);
        if (isLink) expect(warnings.at(-1)).toMatchObject({ level: 'warn', key: decodeURIComponent(route.slice('/uploads/'.length)) });
      });

      it('still serves the published file the links point at (the control)', async () => {
        const response = await rawRequest(server.url, { path: '/uploads/poses/gt/pub.png' });
        expect(response.status).toBe(200);
        expect(response.body.equals(published)).toBe(true);
      });
    });

    it('left the private files in place (nothing was consumed or moved by those requests)', async () => {
      expect(await readFile(path.join(server.dir, 'staging', 'gt', 'pt', UUID))).toEqual(staged);
      expect(await readFile(path.join(server.base, 'outside.txt'))).toEqual(outside);
    });
  });

  describe('oversized and cut-off bodies', () => {
    it('answers 413 JSON for API bodies over 64 KB, declared or streamed', async () => {
      const big = JSON.stringify({ generationId: 'g', poseId: 'p', contentType: 'image/png', contentLength: 10, pad: 'x'.repeat(64 * 1024) });
      const declared = await rawRequest(server.url, { method: 'POST', path: '/uploads', headers: { 'Content-Type': 'application/json' }, body: big });
      expect(declared.status).toBe(413);
      expect(errorOf(declared).code).toBe('too_large');
      const streamed = await new Promise<RawResponse>((resolve, reject) => {
        const socket = connect(server.port, '127.0.0.1', () => {
          socket.write('POST /uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
          for (let i = 0; i < 10; i++) socket.write(`2000\r\n${' '.repeat(0x2000)}\r\n`);
          socket.write('0\r\n\r\n');
        });
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
        socket.on('close', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const [head = '', body = ''] = text.split('\r\n\r\n');
          resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: { 'content-type': /content-type: ([^\r]+)/i.exec(head)?.[1] }, body: Buffer.from(body) });
        });
      });
      expect(streamed.status).toBe(413);
      expect(errorOf(streamed).code).toBe('too_large');
      // Just under the limit is read (and refused for its content, not its size).
      const under = JSON.stringify({ generationId: 'g', poseId: 'p', contentType: 'image/png', contentLength: 10, pad: 'x'.repeat(60 * 1024) });
      const ok = await rawRequest(server.url, { method: 'POST', path: '/uploads', headers: { 'Content-Type': 'application/json' }, body: under });
      expect(ok.status).toBe(400);
      expect(await storedFiles(server)).toEqual([]);
    });

    it('leaves no file when an upload declares its Content-Length and the client closes the socket mid-body', async () => {
      const bytes = Buffer.alloc(4 * 1024 * 1024, 0xab);
      const pose = { generationId: 'gcut', poseId: 'pcut' };
      const ticket = await presign(server, { ...pose, contentType: 'image/png', contentLength: bytes.length });
      const url = new URL(ticket.uploadUrl);
      const socket = connect(server.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: ${bytes.length}\r\nIf-None-Match: *\r\n\r\n`);
      socket.write(bytes.subarray(0, bytes.length / 2));
      // The server is streaming it into a temporary file...
      await waitFor(async () => (await listFiles(path.join(server.dir, '.tmp'))).length === 1, 5_000, 'a temporary upload file');
      socket.destroy();
      // ...which is removed once the connection is gone; nothing reaches staging, no event is queued.
      await waitFor(async () => (await storedFiles(server)).length === 0, 5_000, 'the temporary file to be removed');
      expect(server.server.events.size).toBe(0);
      expect((await fetch(`${server.url}/poses/gcut/pcut`)).status).toBe(404);
      // The same ticket still works with the whole body.
      expect((await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(bytes) })).status).toBe(200);
      expect((await waitForStatus(server.url, pose)).status).toBe('rejected');
      expect((await fetch(`${server.url}/poses/gcut`, { method: 'DELETE' })).status).toBe(204);
    });

    it('survives an API request whose body is cut off, and writes nothing', async () => {
      const socket = connect(server.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('POST /uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"generationId":');
      await sleep(50);
      socket.destroy();
      await sleep(50);
      const response = await fetch(`${server.url}/poses/g/p`);
      expect(response.status).toBe(404);
      expect(await storedFiles(server)).toEqual([]);
      expect(server.logs.filter((entry) => entry.level === 'error')).toEqual([]);
    });
  });
});
