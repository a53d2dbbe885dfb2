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
});
