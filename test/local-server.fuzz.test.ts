/**
 * Hostile requests against the local server over real HTTP, generated with fast-check: any method, path, id,
 * token, header and body. Never a 500, never a file outside the layout or outside UPLOAD_PATH, and never a
 * published file that was not validated. STRESS=1 (npm run test:stress) runs many more cases.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFiles, rawRequest, startTestServer, type TestServer } from './support/local-server.ts';

const RUNS = process.env.STRESS === '1' ? 3000 : 250;
const TOKEN = 'fuzz-api-token-0123456789abcdef';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { API_TOKEN: TOKEN } });
});

afterAll(async () => {
  await server.stop();
});

/** Path segments a hostile client would try, raw and encoded. */
const segment = fc.oneof(
  fc.constantFrom('..', '.', '', '%2e%2e', '%2E%2E', '..%2f..', '%2f', '%00', 'a%00b', '%ff', 'poses', 'staging', 'rejections', '.tmp', 'uploads', 'local-uploads', '~', '%5c..%5c'),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.constant('x'.repeat(10_000)),
);

const requestPath = fc.oneof(
  fc.tuple(fc.constantFrom('/uploads', '/poses', '/uploads/poses', '/local-uploads/staging', '', '/health'), fc.array(segment, { maxLength: 5 })).map(
    ([prefix, segments]) => `${prefix}/${segments.join('/')}`,
  ),
  fc.constantFrom('/uploads', '/poses/g/p', '/poses/g', '/', '/app.js'),
).chain((base) => fc.option(fc.string({ maxLength: 40 }).map(encodeURIComponent), { nil: undefined }).map((query) => (query ? `${base}?${query}` : base)));

const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constant(`Bearer ${TOKEN}`),
  fc.constant(`bearer ${TOKEN}`),
  fc.constant(`Bearer ${TOKEN} `),
  fc.constant(`Bearer ${TOKEN.slice(0, -1)}`),
  fc.constant(`Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`),
  fc.string({ maxLength: 60 }).map((text) => text.replace(/[^\x20-\x7e]/g, '')),
);

const body = fc.oneof(
  fc.constant(undefined),
  fc.json({ maxDepth: 3 }),
  fc.record({
    generationId: fc.oneof(fc.string(), segment),
    poseId: fc.oneof(fc.string(), segment),
    contentType: fc.constantFrom('image/png', 'image/jpeg', 'image/webp', 'image/gif', 'text/html', ''),
    contentLength: fc.oneof(fc.integer(), fc.double(), fc.constant(26 * 1024 * 1024), fc.constant(1)),
  }).map((value) => JSON.stringify(value)),
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

const request = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND'),
  path: requestPath,
  authorization,
  contentType: fc.constantFrom(undefined, 'application/json', 'image/png', 'text/plain', 'application/json; charset=utf-8'),
  origin: fc.constantFrom(undefined, 'http://localhost:3000', 'https://evil.example'),
  body,
});

/** Every file under UPLOAD_PATH fits the layout, and nothing was written beside it. */
async function expectLayoutOnly(): Promise<void> {
  for (const file of await listFiles(server.dir)) {
    expect(file).toMatch(/^(poses\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+(_thumb)?\.png|staging\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/[0-9a-f-]{36}|rejections\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\.json)$/);
  }
  expect(await readdir(server.base)).toEqual([path.basename(server.dir)]);
}

describe('the local server under hostile requests', () => {
  it(`answers ${RUNS} arbitrary requests without a 500, and writes nothing outside the layout`, async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async ({ method, path: requestPath, authorization: auth, contentType, origin, body: payload }) => {
        const headers: Record<string, string> = {};
        if (auth !== undefined) headers.authorization = auth;
        if (contentType !== undefined) headers['content-type'] = contentType;
        if (origin !== undefined) headers.origin = origin;
        const response = await rawRequest(server.url, { method, path: requestPath, headers, ...(payload !== undefined && method !== 'GET' && method !== 'HEAD' && { body: payload }) });
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(response.status, `${method} ${requestPath.slice(0, 120)}`).toBeLessThan(500);
        if (response.status >= 400 && method !== 'HEAD' && response.body.length > 0) {
          expect(response.body.toString()).not.toMatch(/\bat .*\.ts:\d+|node:internal/); // no stack trace
        }
      }),
      { numRuns: RUNS },
    );
    // The generator reached past auth and routing: the API answered both successes and client errors.
    expect([...statuses.keys()].some((status) => status < 300)).toBe(true);
    expect([...statuses.keys()].filter((status) => status >= 400).length).toBeGreaterThan(3);
    await server.server.events.drained();
    await expectLayoutOnly();
    // Nothing valid was uploaded, so nothing may be published.
    expect((await listFiles(server.dir)).filter((file) => file.startsWith('poses/'))).toEqual([]);
  });

  it('answers odd request targets (found by the fuzzer: "//" once made a 500) with a 4xx', async () => {
    for (const target of ['//', '//evil.example/x', '///etc/passwd', 'http://evil.example/x', '*', '//uploads/poses/../../x']) {
      const response = await rawRequest(server.url, { method: 'GET', path: target, headers: { authorization: `Bearer ${TOKEN}` } });
      expect(response.status, target).toBeGreaterThanOrEqual(400);
      expect(response.status, target).toBeLessThan(500);
    }
  });

  it('refuses presigned URLs replayed for another key, tampered or with another size, writing nothing', async () => {
    const presign = async (poseId: string, contentLength: number) => {
      const response = await fetch(`${server.url}/uploads`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ generationId: 'gen_fuzz', poseId, contentType: 'image/png', contentLength }),
      });
      expect(response.status).toBe(200);
      return new URL(((await response.json()) as { uploadUrl: string }).uploadUrl);
    };
    const body = Buffer.from('not even an image, but of the signed length');
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/),
        fc.constantFrom('otherKey', 'flipSignature', 'laterExpiry', 'longer', 'shorter', 'otherType'),
        async (poseId, attack) => {
          const url = await presign(poseId, body.length);
          let sent = body;
          let type = 'image/png';
          if (attack === 'otherKey') url.pathname = url.pathname.replace(`/${poseId}/`, `/${poseId}x/`);
          if (attack === 'flipSignature') {
            const signature = url.searchParams.get('signature')!;
            url.searchParams.set('signature', `${signature[0] === 'a' ? 'b' : 'a'}${signature.slice(1)}`);
          }
          if (attack === 'laterExpiry') url.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
          if (attack === 'longer') sent = Buffer.concat([body, Buffer.from('!')]);
          if (attack === 'shorter') sent = body.subarray(1);
          if (attack === 'otherType') type = 'image/jpeg';
          const response = await rawRequest(server.url, { method: 'PUT', path: `${url.pathname}${url.search}`, headers: { 'content-type': type }, body: sent });
          expect(response.status, attack).toBe(403);
        },
      ),
      { numRuns: Math.min(RUNS, 120) },
    );
    expect((await listFiles(server.dir)).filter((file) => file.startsWith('staging/') || file.startsWith('poses/'))).toEqual([]);
  });
});
