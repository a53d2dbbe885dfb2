/**
 * End to end in local mode: the local server in its own process (e2e-server.ts, default threads, as
 * `npm run dev` runs it), and clients here doing what uploadPose does: POST /uploads, then the PUT. The
 * latency is from the end of the PUT (its response read) to the moment the pose is ready (the server reports
 * the staging object's removal over IPC; the status route answers `ready` from then on). At the end every
 * pose's status is read through the API: an upload that is not `ready` is lost.
 */
import { fork } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BENCH_DIR, log, median, quantile } from './common.ts';

export interface E2eFigures {
  concurrency: number;
  uploads: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Median time of the presign request and of the PUT, as the client saw them. */
  presignMs: number;
  putMs: number;
  uploadsPerSecond: number;
  ready: number;
  lost: number;
  stagedLeft: number;
}

interface Ticket {
  uploadUrl: string;
  headers: Record<string, string>;
}

export async function runE2e(image: string, concurrencies: readonly number[], uploads: number): Promise<E2eFigures[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-e2e-'));
  const child = fork(path.join(BENCH_DIR, 'e2e-server.ts'), [dir], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const readyAt = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`e2e server exited with ${code}`)));
    child.on('message', (message: { url?: string; ready?: string }) => {
      const at = performance.now();
      if (message.url) resolve(message.url);
      if (message.ready) {
        const resolveReady = waiting.get(message.ready);
        if (resolveReady) resolveReady(at);
        else readyAt.set(message.ready, at);
      }
    });
  });
  const whenReady = (key: string) =>
    new Promise<number>((resolve) => {
      const at = readyAt.get(key);
      if (at !== undefined) resolve(at);
      else waiting.set(key, resolve);
    });

  try {
    const bytes = await readFile(image);
    const results: E2eFigures[] = [];
    for (const concurrency of concurrencies) {
      const generationId = `e2e-c${concurrency}`;
      const latencies: number[] = [];
      const presignTimes: number[] = [];
      const putTimes: number[] = [];
      let next = 0;
      const started = performance.now();
      const worker = async () => {
        for (let i = next++; i < uploads; i = next++) {
          const poseId = `p${i}`;
          const t0 = performance.now();
          const presign = await fetch(`${url}/uploads`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ generationId, poseId, contentType: 'image/png', contentLength: bytes.length }),
          });
          if (presign.status !== 200) throw new Error(`POST /uploads answered ${presign.status}: ${await presign.text()}`);
          const ticket = (await presign.json()) as Ticket;
          const t1 = performance.now();
          const key = decodeURIComponent(new URL(ticket.uploadUrl).pathname.replace('/local-uploads/', ''));
          const ready = whenReady(key);
          const { 'Content-Length': _length, ...headers } = ticket.headers; // fetch sets it from the body
          const put = await fetch(ticket.uploadUrl, { method: 'PUT', headers, body: new Uint8Array(bytes) });
          await put.arrayBuffer();
          const putEnd = performance.now();
          if (put.status !== 200 && put.status !== 204) throw new Error(`PUT answered ${put.status}`);
          presignTimes.push(t1 - t0);
          putTimes.push(putEnd - t1);
          latencies.push(Math.max(0, (await ready) - putEnd));
          waiting.delete(key);
          readyAt.delete(key);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const elapsed = performance.now() - started;
      let ready = 0;
      for (let i = 0; i < uploads; i++) {
        const status = await fetch(`${url}/poses/${generationId}/p${i}`);
        const body = (await status.json()) as { status?: string };
        if (body.status === 'ready') ready++;
      }
      const stagedLeft = (await readdir(path.join(dir, 'staging'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
      const figures: E2eFigures = {
        concurrency,
        uploads,
        p50Ms: median(latencies),
        p99Ms: quantile(latencies, 0.99),
        maxMs: Math.max(...latencies),
        presignMs: median(presignTimes),
        putMs: median(putTimes),
        uploadsPerSecond: (uploads * 1000) / elapsed,
        ready,
        lost: uploads - ready,
        stagedLeft,
      };
      log(`  concurrency ${concurrency}: p50 ${figures.p50Ms.toFixed(1)} ms, p99 ${figures.p99Ms.toFixed(1)} ms, ${figures.ready}/${uploads} ready`);
      results.push(figures);
    }
    return results;
  } finally {
    child.send('close');
    await new Promise((resolve) => child.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  }
}
