/** `GET /health` on the local server: the same handler as the Lambda function, with its auth and 405. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/local-server.ts';

const TOKEN = 'health-api-token-0123456789';
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { API_TOKEN: TOKEN } });
});

afterAll(async () => {
  await server.stop();
});

describe('GET /health on the local server', () => {
  it('reports healthy checks without naming paths or secrets', async () => {
    const response = await fetch(`${server.url}/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body.status).toBe('healthy');
    expect(Object.keys(body.checks)).toEqual(expect.arrayContaining(['configuration', 'store_reachable', 'store_writable', 'disk_space']));
    expect(Object.values(body.checks).every((check) => check.ok)).toBe(true);
    expect(JSON.stringify(body)).not.toContain(server.dir);
  });

  it('needs the token like every route, and answers 405 to other methods', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(401);
    const post = await fetch(`${server.url}/health`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });
});
