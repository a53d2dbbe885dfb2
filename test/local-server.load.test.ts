/**
 * Load on the local server over loopback: UPLOADS uploads (1,000) from 32 concurrent clients, each a presign, a
 * PUT of a distinct small PNG and the wait for its thumbnail. Every one ends ready, no staging file is left,
 * memory stays bounded; the figures (latency from the end of the PUT to ready, peak RSS) are printed and kept
 * in RELIABILITY.md. Bounded in count and time; STRESS=1 runs 5,000.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { asBody, listFiles, startTestServer, waitFor, type TestServer } from './support/local-server.ts';

const UPLOADS = process.env.STRESS === '1' ? 5000 : 1000;
const CLIENTS = 32;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.stop();
});

/** A distinct 64x64 PNG per upload (so nothing is deduplicated anywhere). */
async function uniquePng(index: number): Promise<Buffer> {
  const pixels = Buffer.alloc(64 * 64 * 3, index % 251);
  pixels.writeUInt32BE(index, 0);
  return sharp(pixels, { raw: { width: 64, height: 64, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

describe('load', () => {
  it(`${UPLOADS} uploads from ${CLIENTS} concurrent clients all end ready, nothing lost, memory bounded`, { timeout: 600_000 }, async () => {
    const putEnded = new Map<string, number>();
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    let next = 0;
    const started = performance.now();

    async function client(): Promise<void> {
      for (let index = next++; index < UPLOADS; index = next++) {
        const poseId = `pose_${index}`;
        const bytes = await uniquePng(index);
        const presign = await fetch(`${server.url}/uploads`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ generationId: 'gen_load', poseId, contentType: 'image/png', contentLength: bytes.length }),
        });
        expect(presign.status).toBe(200);
        const ticket = (await presign.json()) as { uploadUrl: string; headers: Record<string, string> };
        const put = await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.headers, body: asBody(bytes) });
        expect(put.status).toBe(200);
        putEnded.set(poseId, Date.now());
      }
    }
    await Promise.all(Array.from({ length: CLIENTS }, client));
    await server.server.events.drained();
    const elapsed = performance.now() - started;
    clearInterval(sampler);

    // Every pose published exactly once: image and thumbnail; no staging, rejection or temporary file left.
    const files = await listFiles(server.dir);
    expect(files.filter((file) => file.startsWith('poses/'))).toHaveLength(2 * UPLOADS);
    // Besides the published files, only each pose's record: no staged upload, lock or backup is left.
    expect(files.filter((file) => file.startsWith('records/'))).toHaveLength(UPLOADS);
    expect(files.filter((file) => !file.startsWith('poses/') && !file.startsWith('records/'))).toEqual([]);
    await waitFor(async () => (await fetch(`${server.url}/poses/gen_load/pose_${UPLOADS - 1}`)).status === 200);

    // Latency from the end of each PUT to its "Saved" log line (the moment both files are published).
    const latencies = server.logs
      .filter((entry) => entry.message.startsWith('[Storage] Saved local files: ') && entry.generationId === 'gen_load')
      .map((entry) => Date.parse(entry.time as string) - putEnded.get(entry.poseId as string)!)
      .sort((a, b) => a - b);
    expect(latencies).toHaveLength(UPLOADS);
    expect(server.logs.filter((entry) => entry.level === 'error')).toEqual([]);

    const figures = {
      uploads: UPLOADS,
      clients: CLIENTS,
      lost: UPLOADS - latencies.length,
      seconds: Math.round(elapsed / 100) / 10,
      uploadsPerSecond: Math.round(UPLOADS / (elapsed / 1000)),
      putToReadyP50Ms: percentile(latencies, 50),
      putToReadyP99Ms: percentile(latencies, 99),
      peakRssMb: Math.round(peakRss / 1024 / 1024),
    };
    console.log(`[load] ${JSON.stringify(figures)}`);
    expect(figures.peakRssMb).toBeLessThan(1024); // server, clients and test runner in one process
  });
});
