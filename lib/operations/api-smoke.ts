/**
 * Proves a deployed stage end to end, over HTTP(S) only, as a client would use it: presign an upload, PUT a
 * generated image with exactly the ticket's headers, poll the status until ready, fetch both public URLs (a
 * PNG, and a 400x400 PNG thumbnail), delete the pose and check that it is gone. Each step is timed; the first
 * that fails stops the run (the pose is then deleted, if it was uploaded) and says why: the HTTP status and
 * the contract's error (or the store's, for the upload), or what could not be reached.
 */
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import { sniffFormat } from '../image-format.ts';
import { THUMBNAIL_SIZE } from '../pose-image.ts';

export type StepName = 'presign' | 'upload' | 'ready' | 'image' | 'thumbnail' | 'variants' | 'delete' | 'gone' | 'cleanup';

export interface StepResult {
  step: StepName;
  ok: boolean;
  ms: number;
  /** What was seen (ok), or why it failed: one line. */
  detail: string;
}

export interface ApiSmokeOptions {
  /** Base URL of the API, e.g. https://abc123.execute-api.eu-central-1.amazonaws.com */
  api: string;
  /** Bearer token (API_TOKEN); none for a local server without auth. */
  token?: string | undefined;
  /** How long to wait for the pose to be ready; default 60 s. */
  readyTimeoutMs?: number;
  /** Each request's time limit; default 30 s. */
  requestTimeoutMs?: number;
  onStep?: (result: StepResult) => void;
}

export interface ApiSmokeResult {
  ok: boolean;
  generationId: string;
  poseId: string;
  steps: StepResult[];
  /** The step that failed. */
  failed?: StepResult;
  ms: number;
}

/** A step that failed: its one-line reason. */
class StepFailure extends Error {}

interface Ticket {
  uploadUrl: string;
  method: string;
  headers: Record<string, string>;
  expiresAt: string;
}

interface Status {
  status: string;
  imageUrl?: string;
  thumbnailUrl?: string;
  /** The deploy's POSE_VARIANTS, by role (`thumb.webp`), when it has any. */
  variants?: Record<string, string>;
  width?: number;
  height?: number;
  bytes?: number;
  reason?: string;
  message?: string;
}

/** A 640x480 gradient PNG of its own colour (a few KB). */
async function makeImage(): Promise<Buffer> {
  const [width, height] = [640, 480];
  const hue = Math.floor(Math.random() * 200);
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      pixels[offset] = Math.round((255 * x) / width);
      pixels[offset + 1] = Math.round((255 * y) / height);
      pixels[offset + 2] = hue;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** "HTTP 401 unauthorized: <message>" from a contract error, an S3 XML error, or the status alone. */
async function describeAnswer(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  let said = '';
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') said = `${body.error.code}: ${String(body.error.message ?? '')}`;
  } catch {
    const code = /<Code>([^<]{1,80})<\/Code>/.exec(text)?.[1];
    const message = /<Message>([^<]{1,200})<\/Message>/.exec(text)?.[1];
    if (code) said = message ? `${code}: ${message}` : code;
  }
  return `HTTP ${response.status}${said ? ` ${said}` : ''}`;
}

/** Why a request got no answer: the host and the system's code (never the URL's query: it may hold a signature). */
function unreachable(url: string, error: unknown): StepFailure {
  const { host, protocol } = new URL(url);
  if ((error as Error).name === 'TimeoutError') return new StepFailure(`no answer from ${host} in time`);
  // fetch says "fetch failed"; the cause below says why (ECONNREFUSED, ENOTFOUND, a certificate error...).
  let why = error instanceof Error ? error.message : String(error);
  for (let cause = (error as { cause?: unknown }).cause, depth = 0; cause && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    const { code, message } = cause as { code?: unknown; message?: unknown };
    if (typeof code === 'string') why = code;
    else if (typeof message === 'string' && message) why = message;
  }
  return new StepFailure(`could not reach ${protocol}//${host} (${why})`);
}

export async function runApiSmoke(options: ApiSmokeOptions): Promise<ApiSmokeResult> {
  const api = options.api.replace(/\/+$/, '');
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const auth: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  const generationId = `smoke_${Date.now()}`;
  const poseId = `pose_${randomUUID().slice(0, 8)}`;
  const posePath = `${api}/poses/${generationId}/${poseId}`;
  const steps: StepResult[] = [];
  const started = performance.now();

  const request = async (url: string, init: RequestInit = {}): Promise<Response> => {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(requestTimeoutMs), redirect: 'follow' });
    } catch (error) {
      throw unreachable(url, error);
    }
  };
  const expectStatus = async (response: Response, ...expected: number[]): Promise<void> => {
    if (!expected.includes(response.status)) throw new StepFailure(await describeAnswer(response));
  };
  /** A public URL of the status (relative in local mode: `/uploads/poses/...`), made absolute. */
  const absolute = (url: string | undefined, what: string): string => {
    if (!url) throw new StepFailure(`the ready status has no ${what}`);
    return new URL(url, `${api}/`).toString();
  };
  const step = async <T>(name: StepName, run: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    const begun = performance.now();
    try {
      const { value, detail } = await run();
      const result = { step: name, ok: true, ms: Math.round(performance.now() - begun), detail };
      steps.push(result);
      options.onStep?.(result);
      return value;
    } catch (error) {
      const detail = error instanceof StepFailure ? error.message : `unexpected: ${error instanceof Error ? error.message : String(error)}`;
      const result = { step: name, ok: false, ms: Math.round(performance.now() - begun), detail };
      steps.push(result);
      options.onStep?.(result);
      throw new StepFailure(detail);
    }
  };

  const image = await makeImage();
  let uploaded = false;
  let deleted = false;
  try {
    const ticket = await step('presign', async () => {
      const response = await request(`${api}/uploads`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ generationId, poseId, contentType: 'image/png', contentLength: image.length }),
      });
      await expectStatus(response, 200);
      const value = (await response.json()) as Ticket;
      if (typeof value.uploadUrl !== 'string' || typeof value.headers !== 'object') throw new StepFailure('the answer is not an upload ticket');
      return { value, detail: `${generationId}/${poseId}, URL valid until ${value.expiresAt}` };
    });

    await step('upload', async () => {
      // Exactly the ticket's headers, but Content-Length: fetch sends the body's, which is the one signed.
      const headers = Object.fromEntries(Object.entries(ticket.headers).filter(([name]) => name.toLowerCase() !== 'content-length'));
      const response = await request(ticket.uploadUrl, { method: ticket.method, headers, body: new Uint8Array(image) });
      await expectStatus(response, 200, 201, 204);
      uploaded = true;
      return { value: undefined, detail: `${image.length} bytes, HTTP ${response.status}` };
    });

    const ready = await step('ready', async () => {
      const deadline = performance.now() + readyTimeoutMs;
      let polls = 0;
      let last = 'no answer yet';
      while (performance.now() < deadline) {
        polls++;
        const response = await request(posePath, { headers: auth });
        if (response.status === 200) {
          const status = (await response.json()) as Status;
          if (status.status === 'ready') {
            return { value: status, detail: `after ${polls} poll(s): ${status.width}x${status.height}, ${status.bytes} bytes` };
          }
          if (status.status === 'rejected') throw new StepFailure(`the upload was rejected: ${status.reason}: ${status.message ?? ''}`);
          last = status.status;
        } else if (response.status !== 404) {
          await expectStatus(response, 200);
        } else last = 'HTTP 404 (not known yet)';
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * polls)));
      }
      throw new StepFailure(`not ready after ${Math.round(readyTimeoutMs / 1000)} s (status: ${last})`);
    });

    const fetchPng = async (url: string): Promise<{ width: number; height: number; bytes: number }> => {
      const response = await request(url);
      await expectStatus(response, 200);
      const body = Buffer.from(await response.arrayBuffer());
      if (sniffFormat(body) !== 'png') throw new StepFailure(`${url} is not a PNG (${response.headers.get('content-type') ?? 'no type'}, ${body.length} bytes)`);
      const { width, height } = await sharp(body).metadata();
      return { width, height, bytes: body.length };
    };

    await step('image', async () => {
      const url = absolute(ready.imageUrl, 'imageUrl');
      const png = await fetchPng(url);
      if (png.width !== ready.width || png.height !== ready.height) throw new StepFailure(`${url} is ${png.width}x${png.height}, the status says ${ready.width}x${ready.height}`);
      return { value: undefined, detail: `${url}: PNG ${png.width}x${png.height}, ${png.bytes} bytes` };
    });

    await step('thumbnail', async () => {
      const url = absolute(ready.thumbnailUrl, 'thumbnailUrl');
      const png = await fetchPng(url);
      if (png.width !== THUMBNAIL_SIZE || png.height !== THUMBNAIL_SIZE) throw new StepFailure(`${url} is ${png.width}x${png.height}, not ${THUMBNAIL_SIZE}x${THUMBNAIL_SIZE}`);
      return { value: undefined, detail: `${url}: PNG ${png.width}x${png.height}, ${png.bytes} bytes` };
    });

    const variants = Object.entries(ready.variants ?? {});
    if (variants.length > 0) {
      await step('variants', async () => {
        const seen: string[] = [];
        for (const [role, url] of variants) {
          const response = await request(absolute(url, `variants.${role}`));
          await expectStatus(response, 200);
          const body = Buffer.from(await response.arrayBuffer());
          const { format, width, height } = await sharp(body).metadata().catch(() => ({ format: 'not an image', width: 0, height: 0 }));
          // A role ends in its format's extension (jpg is sharp's jpeg, avif its heif).
          const expected = ({ jpg: 'jpeg', avif: 'heif' } as Record<string, string>)[role.split('.').pop()!] ?? role.split('.').pop();
          if (format !== expected) throw new StepFailure(`${url} is ${format}, not the ${role} it should be`);
          seen.push(`${role} ${width}x${height} ${body.length} bytes`);
        }
        return { value: undefined, detail: seen.join(', ') };
      });
    }

    await step('delete', async () => {
      const response = await request(posePath, { method: 'DELETE', headers: auth });
      await expectStatus(response, 204);
      deleted = true;
      return { value: undefined, detail: `HTTP ${response.status}` };
    });

    await step('gone', async () => {
      const status = await request(posePath, { headers: auth });
      await expectStatus(status, 404);
      // A query the CDN has never seen: the answer comes from the bucket, not from a cache of the image.
      const fresh = `smoke=${randomUUID()}`;
      const seen = [`status ${status.status}`];
      for (const [name, url] of [['image', ready.imageUrl], ['thumbnail', ready.thumbnailUrl], ...variants] as const) {
        const response = await request(`${absolute(url, `${name}Url`)}?${fresh}`);
        // A bucket that may not be listed answers 403 for a missing key (S3), R2 and the local server 404.
        if (response.status !== 404 && response.status !== 403) throw new StepFailure(`the ${name} is still served after the delete (HTTP ${response.status})`);
        seen.push(`${name} ${response.status}`);
      }
      return { value: undefined, detail: seen.join(', ') };
    });
  } catch (error) {
    if (!(error instanceof StepFailure)) throw error;
    if (uploaded && !deleted) {
      await step('cleanup', async () => {
        const response = await request(posePath, { method: 'DELETE', headers: auth });
        await expectStatus(response, 204);
        return { value: undefined, detail: `the pose was deleted (HTTP ${response.status})` };
      }).catch(() => undefined);
    }
  }
  const failed = steps.find((result) => !result.ok && result.step !== 'cleanup');
  return { ok: failed === undefined, generationId, poseId, steps, ...(failed && { failed }), ms: Math.round(performance.now() - started) };
}
