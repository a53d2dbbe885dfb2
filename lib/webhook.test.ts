import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { createWebhookNotifier, SIGNATURE_HEADER, signWebhookBody } from './webhook.ts';

const secret = 'webhook-secret-of-32-characters!';
const notice = { generationId: 'gen_1', poseId: 'pose_1', status: 'ready', imageUrl: 'https://x/poses/gen_1/pose_1.png', thumbnailUrl: 'https://x/poses/gen_1/pose_1_thumb.png' };

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

let servers: Server[] = [];

/** A real receiver on 127.0.0.1 answering the given statuses in turn (the last one repeats), with `headers`. */
async function receiver(statuses: number[], headers: Record<string, string> = {}): Promise<{ url: string; received: (Received & { method: string })[] }> {
  const received: (Received & { method: string })[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ headers: request.headers, body, method: request.method ?? '' });
      response.writeHead(statuses[Math.min(received.length - 1, statuses.length - 1)]!, headers).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

function capture() {
  const lines: { level: string; message: string }[] = [];
  return { lines, logger: createLogger((line) => lines.push(JSON.parse(line) as { level: string; message: string })) };
}

async function stop(): Promise<void> {
  const running = servers;
  servers = [];
  for (const server of running) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

afterEach(stop);

describe('webhook', () => {
  it('POSTs the notice as JSON with an HMAC-SHA256 signature of the exact body', async () => {
    const { url, received } = await receiver([204]);
    const { lines, logger } = capture();
    await createWebhookNotifier({ url, secret }, logger).notify(notice);

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(JSON.parse(request!.body)).toEqual({ ...notice, sentAt: expect.any(String) });
    expect(request!.headers['content-type']).toBe('application/json');
    const expected = `sha256=${createHmac('sha256', secret).update(request!.body).digest('hex')}`;
    expect(request!.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(expected);
    expect(signWebhookBody(secret, request!.body)).toBe(expected);
    expect(lines).toEqual([]);
  });

  it('retries a failing receiver with backoff until it accepts', async () => {
    const { url, received } = await receiver([500, 503, 200]);
    const { lines, logger } = capture();
    await createWebhookNotifier({ url, secret }, logger, { backoffMs: 5 }).notify(notice);
    expect(received).toHaveLength(3);
    // The same notice each time, each attempt signed with the time it was sent.
    const bodies = received.map((request) => JSON.parse(request.body) as Record<string, unknown>);
    for (const body of bodies) expect(body).toEqual({ ...notice, sentAt: expect.any(String) });
    for (const request of received) expect(request.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(signWebhookBody(secret, request.body));
    expect(lines).toEqual([]);
  });

  it('signs the time each attempt is sent, so that a receiver can refuse a replayed notice', async () => {
    const { url, received } = await receiver([204]);
    const before = Date.now();
    await createWebhookNotifier({ url, secret }, capture().logger).notify(notice);
    const { sentAt } = JSON.parse(received[0]!.body) as { sentAt: string };
    expect(sentAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(sentAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(sentAt)).toBeLessThanOrEqual(Date.now());
    // The time is inside what is signed: changing it breaks the signature.
    const replayed = received[0]!.body.replace(sentAt, new Date().toISOString().replace(/\d{3}Z$/, '999Z'));
    expect(signWebhookBody(secret, replayed)).not.toBe(received[0]!.headers[SIGNATURE_HEADER.toLowerCase()]);
  });

  it.each([301, 302, 303, 307, 308])('never follows a redirect (%i): a failed delivery, retried, logged, and nothing sent where it points', async (status) => {
    const elsewhere = await receiver([200]);
    const { url, received } = await receiver([status], { Location: elsewhere.url });
    const { lines, logger } = capture();
    await createWebhookNotifier({ url, secret }, logger, { attempts: 3, backoffMs: 5 }).notify(notice);
    expect(elsewhere.received).toEqual([]);
    expect(received).toHaveLength(3);
    for (const request of received) expect(request.method).toBe('POST');
    expect(lines).toEqual([
      expect.objectContaining({ level: 'warn', message: `[Storage] Webhook failed: HTTP ${status}, a redirect (not followed: set READY_WEBHOOK_URL to where it points)` }),
    ]);
  });

  it('gives up after its attempts and logs a warning, never throwing and never logging the secret', async () => {
    const { url, received } = await receiver([500]);
    const { lines, logger } = capture();
    await expect(createWebhookNotifier({ url, secret }, logger, { attempts: 3, backoffMs: 5 }).notify(notice)).resolves.toBeUndefined();
    expect(received).toHaveLength(3);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', message: '[Storage] Webhook failed: HTTP 500' });
    expect(JSON.stringify(lines)).not.toContain(secret);
  });

  it('does not retry a receiver that refuses the notice (4xx other than 429)', async () => {
    const { url, received } = await receiver([400]);
    const { lines, logger } = capture();
    await createWebhookNotifier({ url, secret }, logger, { backoffMs: 5 }).notify(notice);
    expect(received).toHaveLength(1);
    expect(lines[0]?.message).toBe('[Storage] Webhook failed: HTTP 400');
  });

  it('treats an unreachable receiver as a logged failure', async () => {
    const { url } = await receiver([200]);
    await stop();
    const { lines, logger } = capture();
    await createWebhookNotifier({ url, secret }, logger, { attempts: 2, backoffMs: 5 }).notify(notice);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.message).toMatch(/^\[Storage\] Webhook failed: /);
  });
});
