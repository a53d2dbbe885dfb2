/**
 * Where the local server listens and how its clients reach it: any IPv4 or IPv6 address (HOST=:: answered
 * every request 400 once, and HOST=0.0.0.0 handed remote clients upload URLs on localhost), upload URLs
 * built from the address each client used or from PUBLIC_BASE_URL, and, without API_TOKEN, only requests
 * addressed to this machine (a page on another site cannot reach the API through DNS rebinding).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { asBody, makePng, rawRequest, startTestServer, waitForStatus, type TestServer } from './support/local-server.ts';

const TOKEN = 'hosts-token-0123456789abcdef';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

let server: TestServer | undefined;

afterEach(async () => {
  await server?.stop();
  server = undefined;
});

interface Ticket {
  uploadUrl: string;
  headers: Record<string, string>;
}

/** Presigns through `baseUrl` (sent with `host` as its Host header when given). */
async function presign(baseUrl: string, body: Buffer, poseId: string, host?: string): Promise<Ticket> {
  const response = await rawRequest(baseUrl, {
    method: 'POST',
    path: '/uploads',
    headers: { ...AUTH, 'Content-Type': 'application/json', ...(host && { Host: host }) },
    body: JSON.stringify({ generationId: 'ghosts', poseId, contentType: 'image/png', contentLength: body.length }),
  });
  expect(response.status, response.body.toString()).toBe(200);
  return JSON.parse(response.body.toString()) as Ticket;
}

describe('HOST', () => {
  it.each(['::', '0.0.0.0'])('%s: answers over IPv4 and IPv6 loopback, with upload URLs at the address each client used', async (host) => {
    server = await startTestServer({ env: { HOST: host, API_TOKEN: TOKEN } });
    expect(server.url).toBe(`http://localhost:${server.port}`);
    const png = await makePng(30, 20);
    const bases = host === '::' ? [`http://127.0.0.1:${server.port}`, `http://[::1]:${server.port}`] : [`http://127.0.0.1:${server.port}`];
    for (const [i, base] of bases.entries()) {
      expect((await fetch(`${base}/health`, { headers: AUTH })).status).toBe(200);
      const ticket = await presign(base, png, `p${i}`);
      expect(new URL(ticket.uploadUrl).origin).toBe(base);
      expect((await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(png) })).status).toBe(200);
      expect((await waitForStatus(base, { generationId: 'ghosts', poseId: `p${i}` }, ['ready'], { token: TOKEN })).status).toBe('ready');
    }
  });

  it('0.0.0.0: a client on the network gets upload URLs on the name it used, not on localhost', async () => {
    server = await startTestServer({ env: { HOST: '0.0.0.0', API_TOKEN: TOKEN } });
    const ticket = await presign(server.ipUrl, await makePng(10, 10), 'remote', `192.0.2.10:${server.port}`);
    expect(new URL(ticket.uploadUrl).host).toBe(`192.0.2.10:${server.port}`);
  });

  it('PUBLIC_BASE_URL: upload URLs point there, whatever the Host', async () => {
    server = await startTestServer({ env: { API_TOKEN: TOKEN, PUBLIC_BASE_URL: 'https://poses.lan.example.test:8443/' } });
    expect(server.url).toBe('https://poses.lan.example.test:8443');
    const ticket = await presign(server.ipUrl, await makePng(10, 10), 'proxied');
    expect(new URL(ticket.uploadUrl).origin).toBe('https://poses.lan.example.test:8443');
  });
});

describe('without API_TOKEN', () => {
  it('answers requests addressed to localhost, 127.0.0.1 or [::1], and refuses any other name with 403', async () => {
    server = await startTestServer();
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, `[::1]:${server.port}`, 'LOCALHOST']) {
      expect((await rawRequest(server.ipUrl, { path: '/health', headers: { Host: host } })).status, host).toBe(200);
    }
    for (const host of [`attacker.example.test:${server.port}`, `192.168.1.20:${server.port}`, 'localhost.attacker.example.test']) {
      const refused = await rawRequest(server.ipUrl, { method: 'DELETE', path: '/poses/g', headers: { Host: host } });
      expect(refused.status, host).toBe(403);
      expect(JSON.parse(refused.body.toString())).toEqual({ error: { code: 'forbidden_host', message: expect.stringMatching(/API_TOKEN/) } });
    }
  });

  it('answers its own pages only: a request from another site\'s page (its Origin) is refused with 403 and changes nothing', async () => {
    server = await startTestServer();
    const pose = { generationId: 'gorigin', poseId: 'kept' };
    await server.server.services.storage.savePoseWithThumbnail({ ...pose, imageBuffer: await makePng(64, 48) });
    const host = `localhost:${server.port}`;
    const body = JSON.stringify({ ...pose, contentType: 'image/png', contentLength: 100 });
    for (const origin of ['https://attacker.example.test', `http://127.0.0.1:${server.port + 1}`, 'null', `http://localhost:${server.port}.attacker.example.test`]) {
      for (const request of [
        { method: 'DELETE', path: `/poses/${pose.generationId}/${pose.poseId}` },
        { method: 'DELETE', path: `/poses/${pose.generationId}` },
        { method: 'POST', path: '/uploads', headers: { 'Content-Type': 'text/plain' }, body },
        { method: 'OPTIONS', path: '/uploads', headers: { 'Access-Control-Request-Method': 'POST' } },
      ]) {
        const refused = await rawRequest(server.ipUrl, { ...request, headers: { ...request.headers, Host: host, Origin: origin } });
        expect(refused.status, `${origin} ${request.method} ${request.path}`).toBe(403);
        expect(JSON.parse(refused.body.toString()).error.code).toBe('forbidden_origin');
        expect(refused.headers['access-control-allow-origin']).toBeUndefined();
      }
    }
    expect(await waitForStatus(server.url, pose, ['ready'])).toMatchObject({ status: 'ready' });
    // Its own page (Origin: this server) and clients that send no Origin (curl, the library) are answered.
    expect((await rawRequest(server.ipUrl, { method: 'POST', path: '/uploads', headers: { Host: host, Origin: `http://${host}`, 'Content-Type': 'application/json' }, body })).status).toBe(200);
    expect((await rawRequest(server.ipUrl, { method: 'POST', path: '/uploads', headers: { Host: host, 'Content-Type': 'application/json' }, body })).status).toBe(200);
  });
});
