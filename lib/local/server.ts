import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { createHandler as createDeleteHandler } from '../lambda/handlers/delete.ts';
import { createHandler as createHealthHandler } from '../lambda/handlers/health.ts';
import { createHandler as createPresignHandler } from '../lambda/handlers/presign.ts';
import { createHandler as createStatusHandler } from '../lambda/handlers/status.ts';
import { createHandler as createThumbnailHandler } from '../lambda/handlers/thumbnail.ts';
import { functionFor, type HttpFunction } from '../lambda/routes.ts';
import { isLoopback, type Config } from '../config.ts';
import type { HttpHandler, HttpResult } from '../lambda/http-handler.ts';
import { LOCAL_EVENT_SOURCE, type LocalObjectCreatedEvent } from '../lambda/object-events.ts';
import { publishedCacheControl, STAGING_PREFIX } from '../layout.ts';
import type { Logger } from '../logger.ts';
import { createServices, type Services } from '../services.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import { LOCAL_UPLOAD_PATH } from '../storage/upload-signature.ts';
import { EventQueue } from './event-queue.ts';
import { localContext, sendResult, toHttpEvent } from './lambda-bridge.ts';
import { servePage } from './page.ts';
import { serveStatic, STATIC_ROUTE } from './static-files.ts';
import { receiveUpload } from './upload-receiver.ts';

/**
 * The local server: the deployed functions/* handlers behind node:http, a directory for the bucket, signed
 * PUTs for presigned URLs and an in-process queue for object-created events. Routes, auth, CORS and errors
 * are the handlers' own, so they are identical to the deployed API.
 */
export interface LocalServerOptions {
  config: Config;
  logger?: Logger;
  /** Retry schedule of the thumbnail events (tests shorten it). */
  eventBackoffMs?: number;
  /** Time between two sweeps of the staging area for uploads whose event was lost (default 60 s). */
  sweepIntervalMs?: number;
  /** How long close() lets requests in flight finish before it closes their connections. */
  shutdownTimeoutMs?: number;
}

/** Under the 10 s that `docker stop` and most supervisors allow after SIGTERM before they send SIGKILL. */
export const SHUTDOWN_TIMEOUT_MS = 8_000;

/** After the deadline, how long the handlers of cut-off requests get to clean up (remove their partial file). */
const ABORT_GRACE_MS = 1_000;

export interface LocalServer {
  /** Where clients reach it: PUBLIC_BASE_URL, or http://localhost:{port} (or the host it listens on). */
  url: string;
  /** The port it listens on. */
  port: number;
  services: Services;
  events: EventQueue;
  /**
   * Stops taking connections, lets requests in flight and the thumbnails being made finish until the
   * shutdown deadline, then closes every connection still open (a cut-off upload is discarded, never
   * staged). Uploads not processed yet stay staged for the next start.
   */
  close(): Promise<void>;
}

/** Largest JSON body the API routes read (API Gateway allows 10 MB; ours are a few hundred bytes). */
const MAX_API_BODY = 64 * 1024;

export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const { config } = options;
  const { host } = config;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = config.localServerOrigin ?? originOf(host, port);
  // Each request is answered at the address its client used (a LAN IP when listening on 0.0.0.0 or ::), so
  // that the upload URLs it gets reach this server from where that client is.
  const requestOrigin = new AsyncLocalStorage<string>();

  const store = new DirectoryStore({ root: config.uploadPath, uploadBaseUrl: () => requestOrigin.getStore() ?? url });
  const services = createServices({ config: { ...config, port }, store, ...(options.logger && { logger: options.logger }) });
  const { logger } = services;
  // Requests can arrive as soon as the server listens: they wait until the directory is initialised.
  const ready = (async () => {
    await services.storage.initializeLocalStorage();
    // Half-written files of a crash: every one, as no write of this server has started yet.
    await store.removeStaleTemporaryFiles(0);
  })();

  const handlers: Record<HttpFunction, HttpHandler> = {
    presign: createPresignHandler(services),
    status: createStatusHandler(services),
    delete: createDeleteHandler(services),
    health: createHealthHandler(services),
  };
  const thumbnail = createThumbnailHandler(services);
  const events = new EventQueue({
    logger,
    ...(options.eventBackoffMs !== undefined && { backoffMs: options.eventBackoffMs }),
    ...(options.sweepIntervalMs !== undefined && { sweepIntervalMs: options.sweepIntervalMs }),
    deliver: async (key) => {
      const event: LocalObjectCreatedEvent = { source: LOCAL_EVENT_SOURCE, keys: [key] };
      await thumbnail(event, localContext('thumbnail'));
    },
    stagedKeys: async function* () {
      await ready;
      for await (const object of store.list(STAGING_PREFIX)) yield object.key;
    },
  });

  const inFlight = new Set<Promise<void>>();
  // While stopping, responses close their connection: a kept-alive one would hold close() for the keep-alive timeout.
  const unanswered = new Set<ServerResponse>();
  let closing = false;
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (closing) response.setHeader('Connection', 'close');
    unanswered.add(response);
    response.once('close', () => unanswered.delete(response));
    const origin = config.localServerOrigin ?? originFromHost(request.headers.host) ?? url;
    const work = ready.then(() => requestOrigin.run(origin, () => route(request, response))).catch((error: unknown) => {
      if (request.destroyed && !request.complete) {
        response.destroy(); // the client left mid-request: nothing to answer, and not a server error
        return;
      }
      logger.error(`[Storage] Local server error: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent) {
        response.writeHead(500, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'internal_error', message: 'Something went wrong on our side' } }));
      } else response.destroy();
    });
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (config.apiTokens.length === 0 && !addressedToThisMachine(request.headers.host, config.localServerOrigin)) {
      // Without API_TOKEN the API has no auth: a page on another site could reach it through DNS rebinding
      // (its own name pointed at 127.0.0.1). Browsers always send the name they resolved.
      return sendResult(
        response,
        errorResult(403, 'forbidden_host', 'Without API_TOKEN this server answers requests addressed to localhost only; set API_TOKEN (or PUBLIC_BASE_URL)'),
      );
    }
    if (config.apiTokens.length === 0 && !fromItsOwnPages(request.headers.origin, request.headers.host, config.allowedOrigins)) {
      // Without API_TOKEN nothing but this server's own pages may call it: a page of another site, which a
      // browser lets reach localhost, could delete and overwrite poses (it gets no CORS grant either).
      return sendResult(
        response,
        errorResult(403, 'forbidden_origin', 'Without API_TOKEN this server answers its own pages only, not pages of other sites; set API_TOKEN to allow them'),
      );
    }
    const requestUrl = parseRequestUrl(request.url ?? '/', url);
    if (!requestUrl) return sendResult(response, errorResult(400, 'invalid_request', 'The request target is not a valid path'));
    const { pathname } = requestUrl;
    if (pathname.startsWith(LOCAL_UPLOAD_PATH)) {
      const key = await receiveUpload(store, request, response, requestUrl, config.allowedOrigins, logger);
      if (key) events.enqueue(key);
      return;
    }
    if (pathname.startsWith(STATIC_ROUTE) && (request.method === 'GET' || request.method === 'HEAD')) {
      return serveStatic(store, request, response, pathname, {
        logger,
        cacheControl: publishedCacheControl(config.cacheMaxAgeSeconds),
        allowedOrigins: config.allowedOrigins,
      });
    }
    const handler = apiHandler(pathname, request.method ?? 'GET');
    if (handler) return invoke(handler, request, response, requestUrl);
    const serverOrigin = requestOrigin.getStore() ?? url;
    if (await servePage(request, response, pathname, { serverOrigin, uploadMaxBytes: config.uploadMaxBytes, variants: config.poseFiles.variants })) return;
    sendResult(response, errorResult(404, 'not_found', 'There is nothing at this path'));
  }

  /** The route table's handler, as API Gateway maps it (ANY routes reach the handler that answers 405). */
  function apiHandler(pathname: string, method: string): HttpHandler | undefined {
    const name = functionFor(pathname, method);
    return name && handlers[name];
  }

  async function invoke(handler: HttpHandler, request: IncomingMessage, response: ServerResponse, requestUrl: URL): Promise<void> {
    const body = await readBody(request, MAX_API_BODY);
    if (body === 'too_large') {
      const tooLarge = errorResult(413, 'too_large', `Request bodies are limited to ${MAX_API_BODY} bytes`);
      return sendResult(response, { ...tooLarge, headers: { ...tooLarge.headers, Connection: 'close' } });
    }
    sendResult(response, await handler(toHttpEvent(request, requestUrl, body), localContext('api')));
  }

  await ready.catch(async (error: unknown) => {
    await Promise.all([new Promise((resolve) => server.close(resolve)), events.close()]);
    throw error;
  });
  // Uploads staged before a crash or a stop get their object-created event now (and at every sweep after).
  await events.sweep();

  logger.info(`[Storage] Local server listening on ${url}`, { url, uploadPath: config.uploadPath, auth: config.apiTokens.length > 0 });
  return {
    url,
    port,
    services,
    events,
    async close() {
      closing = true;
      const deadline = Date.now() + (options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS);
      for (const response of unanswered) if (!response.headersSent) response.setHeader('Connection', 'close');
      const queueClosed = events.close();
      // Once close() is called Node stops its header and request timeouts: a client that never finishes its
      // request would hold the stop forever without the deadline.
      const requestsDone = new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }).then(() => settled(inFlight));
      if (!(await finishesBy(requestsDone, deadline))) {
        logger.warn(`[Storage] Stopping: the shutdown deadline passed with ${unanswered.size} request(s) unanswered, closing every connection`, {
          unanswered: unanswered.size,
        });
        server.closeAllConnections();
        if (!(await finishesBy(requestsDone, Date.now() + ABORT_GRACE_MS))) {
          logger.warn('[Storage] Stopping: a request handler did not end after its connection was closed');
        }
      }
      if (!(await finishesBy(queueClosed, deadline))) {
        logger.warn('[Storage] Stopping before the thumbnail in progress is made: its upload stays staged for the next start');
      }
    },
  };
}

/** Resolves when every promise of `pending` has settled, including those added meanwhile. */
async function settled(pending: ReadonlySet<Promise<unknown>>): Promise<void> {
  while (pending.size > 0) await Promise.allSettled([...pending]);
}

/** Whether `promise` settles before `deadline` (a time from Date.now()). */
async function finishesBy(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([promise.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** The URL of a server listening on `host`: a wildcard or loopback address is reached as localhost. */
function originOf(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' || isLoopback(host) ? 'localhost' : isIP(host) === 6 ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

/** A Host header of the form name[:port] or [IPv6][:port], as an origin; undefined for anything else. */
function originFromHost(host: string | undefined): string | undefined {
  return host !== undefined && HOST_HEADER.test(host) ? `http://${host}` : undefined;
}

const HOST_HEADER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** Whether a request is addressed to this machine's loopback names (or to PUBLIC_BASE_URL's host). */
function addressedToThisMachine(host: string | undefined, localServerOrigin: string | undefined): boolean {
  if (host === undefined) return true; // HTTP/1.0 without Host: no browser sends that
  const name = host.replace(/:\d{1,5}$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return isLoopback(name) || (localServerOrigin !== undefined && new URL(localServerOrigin).host.toLowerCase() === host.toLowerCase());
}

/**
 * Whether a request comes from this server's own pages: a browser names the page's origin in `Origin` (on
 * every cross-origin request, and on same-origin ones but GET and HEAD); other clients send none.
 */
function fromItsOwnPages(origin: string | undefined, host: string | undefined, allowedOrigins: readonly string[]): boolean {
  if (origin === undefined) return true;
  const page = origin.toLowerCase();
  return (host !== undefined && page === `http://${host.toLowerCase()}`) || allowedOrigins.includes(page);
}

/**
 * The request target as a URL on this server. Origin-form targets are taken as paths verbatim (`//x` is the
 * path `//x`, not a host); anything unparsable is undefined (a 400).
 */
function parseRequestUrl(target: string, base: string): URL | undefined {
  try {
    return new URL(target.startsWith('/') ? `${base}${target}` : target, base);
  } catch {
    return undefined;
  }
}

/** The contract's JSON error, for the answers the server gives itself (no route, oversized body). */
function errorResult(statusCode: number, code: string, message: string): HttpResult {
  return { statusCode, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error: { code, message } }) };
}

async function readBody(request: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limit) return 'too_large';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return 'too_large';
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

