/**
 * The local server (lib/local/server.ts) for tests, over real HTTP on 127.0.0.1: a fresh temporary directory,
 * PORT=0 (a free port), a logger that captures every line, and a short retry backoff for thumbnail events.
 *
 * Layout of the temporary directory: `{base}/uploads` is UPLOAD_PATH (`dir`); `{base}` itself is outside the
 * storage root, so a test can put a sentinel file there that no route may ever serve.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../lib/config.ts';
import { startLocalServer, type LocalServer } from '../../lib/local/server.ts';
import { createLogger } from '../../lib/logger.ts';

export interface LogEntry {
  level: 'info' | 'warn' | 'error';
  message: string;
  [field: string]: unknown;
}

export interface TestServerOptions {
  /** Extra environment for parseConfig (API_TOKEN, ALLOWED_ORIGINS, UPLOAD_URL_TTL_SECONDS, ...). */
  env?: Record<string, string>;
  /** An existing storage root to start on (restart tests); a fresh one by default. */
  dir?: string;
  eventBackoffMs?: number;
  sweepIntervalMs?: number;
  shutdownTimeoutMs?: number;
}

export interface TestServer {
  /** Base URL as the server announces it (also the host of its upload URLs). */
  url: string;
  /** The same server addressed by IP: `http://127.0.0.1:{port}`. */
  ipUrl: string;
  port: number;
  /** UPLOAD_PATH, the storage root. */
  dir: string;
  /** The temporary directory holding `dir` (removed by stop()). */
  base: string;
  server: LocalServer;
  logs: LogEntry[];
  /** Closes the server and keeps the directory (to start again on it). */
  close(): Promise<void>;
  /** Closes the server and removes the temporary directory. */
  stop(): Promise<void>;
}

/** A fresh `{base}/uploads` pair; `base` is what to remove afterwards. */
export async function makeTempRoot(): Promise<{ base: string; dir: string }> {
  const base = await mkdtemp(path.join(tmpdir(), 'pose-local-'));
  const dir = path.join(base, 'uploads');
  await mkdir(dir, { recursive: true });
  return { base, dir };
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const { base, dir } = options.dir ? { base: path.dirname(options.dir), dir: options.dir } : await makeTempRoot();
  const logs: LogEntry[] = [];
  const logger = createLogger((line) => logs.push(JSON.parse(line) as LogEntry));
  const config = parseConfig({ STORAGE_MODE: 'local', UPLOAD_PATH: dir, PORT: '0', ...options.env });
  const server = await startLocalServer({
    config,
    logger,
    eventBackoffMs: options.eventBackoffMs ?? 20,
    ...(options.sweepIntervalMs !== undefined && { sweepIntervalMs: options.sweepIntervalMs }),
    ...(options.shutdownTimeoutMs !== undefined && { shutdownTimeoutMs: options.shutdownTimeoutMs }),
  });
  const { port } = server;
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= server.close());
  return {
    url: server.url,
    ipUrl: `http://127.0.0.1:${port}`,
    port,
    dir,
    base,
    server,
    logs,
    close,
    async stop() {
      await close();
      await rm(base, { recursive: true, force: true });
    },
  };
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or `timeoutMs` passes (then throws,
 * with `message` and the last value or error seen).
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs = 10_000,
  message = 'condition',
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message} (last: ${seen})`);
    }
    await sleep(intervalMs);
  }
}

/** Every file under `root` (recursively), as `/`-separated paths relative to it, sorted. */
export async function listFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (directory: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      // Gone (the root never made, or a directory a delete just removed as empty): nothing in it.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) await walk(path.join(directory, entry.name), `${prefix}${entry.name}/`);
      else files.push(`${prefix}${entry.name}`);
    }
  };
  await walk(root, '');
  return files.sort();
}

export interface PoseStatusBody {
  generationId: string;
  poseId: string;
  status: 'pending' | 'ready' | 'rejected';
  imageUrl?: string;
  thumbnailUrl?: string;
  reason?: string;
  /** A rejection's sentence for people. */
  message?: string;
  /** A ready pose's image: size, and a version that changes with each publication. */
  width?: number;
  height?: number;
  bytes?: number;
  version?: string;
  /** The configured variants' URLs by role (POSE_VARIANTS). */
  variants?: Record<string, string>;
  placeholder?: { thumbHash: string; dominantColor: string };
}

/** Polls `GET /poses/{g}/{p}` until its status is one of `until`; returns the last body. */
export async function waitForStatus(
  baseUrl: string,
  pose: { generationId: string; poseId: string },
  until: readonly PoseStatusBody['status'][] = ['ready', 'rejected'],
  options: { token?: string; timeoutMs?: number } = {},
): Promise<PoseStatusBody> {
  const headers: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  return waitFor(
    async () => {
      const response = await fetch(`${baseUrl}/poses/${pose.generationId}/${pose.poseId}`, { headers });
      if (response.status !== 200) throw new Error(`GET status answered ${response.status}`);
      const body = (await response.json()) as PoseStatusBody;
      if (!until.includes(body.status)) throw new Error(`status ${body.status}`);
      return body;
    },
    options.timeoutMs ?? 15_000,
    `pose ${pose.generationId}/${pose.poseId} to be ${until.join(' or ')}`,
  );
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP/1.1 request with node:http, sent exactly as given: the path is not normalised (unlike fetch, which
 * resolves `..` and `%2e%2e` before sending), and the body, if any, is written as is.
 */
export function rawRequest(
  baseUrl: string,
  options: { method?: string; path: string; headers?: OutgoingHttpHeaders; body?: Uint8Array | string },
): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      // An IPv6 literal is bracketed in a URL, bare as a host to connect to.
      { host: hostname.replace(/^\[(.*)\]$/, '$1'), port, method: options.method ?? 'GET', path: options.path, headers: options.headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** A small opaque PNG of `width` x `height` with a gradient (so the thumbnail is not trivially uniform). */
export async function makePng(width: number, height: number): Promise<Buffer> {
  const sharp = (await import('sharp')).default;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      pixels[offset] = Math.round((255 * x) / Math.max(1, width - 1));
      pixels[offset + 1] = Math.round((255 * y) / Math.max(1, height - 1));
      pixels[offset + 2] = 128;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export interface UploadTicket {
  uploadUrl: string;
  headers: Record<string, string>;
}

/** `POST /uploads` for `pose`; throws unless it answers 200. */
export async function presignUpload(
  baseUrl: string,
  pose: { generationId: string; poseId: string },
  contentLength: number,
  contentType = 'image/png',
): Promise<UploadTicket> {
  const response = await fetch(`${baseUrl}/uploads`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...pose, contentType, contentLength }),
  });
  if (response.status !== 200) throw new Error(`POST /uploads answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as UploadTicket;
}

/** Bytes as a fetch body (Node's Buffer is typed over ArrayBufferLike, which BodyInit does not take). */
export function asBody(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
}
