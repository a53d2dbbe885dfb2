/**
 * A TCP proxy that makes loopback look like a WAN link: every byte crosses a shared link of `mbps` in each
 * direction (serialised, so a large body takes its transfer time) and arrives `rttMs / 2` later; a new
 * connection costs `handshakeRoundTrips` round trips before its first byte flows (R2 is HTTPS: TCP's and
 * TLS 1.3's handshakes make two).
 * It counts the bytes each way and reads the HTTP/1.1 requests that go through (method, path, start time),
 * so the benchmark can say how many requests and round trips a flow made.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface ShapingOptions {
  upstreamHost: string;
  upstreamPort: number;
  rttMs: number;
  mbps: number;
  handshakeRoundTrips: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  /** performance.now() when its first byte left the client. */
  at: number;
}

export interface Traffic {
  /** Bytes from the client (the function) to the store. */
  sent: number;
  /** Bytes from the store to the client. */
  received: number;
  requests: SeenRequest[];
}

export interface ShapingProxy {
  endpoint: string;
  /** What went through since the last reset. */
  traffic(): Traffic;
  reset(): void;
  close(): Promise<void>;
}

/** One direction of the link: bytes leave one after another, at the link's rate. */
class Link {
  #freeAt = 0;
  readonly #msPerByte: number;
  readonly #delayMs: number;

  constructor(mbps: number, delayMs: number) {
    this.#msPerByte = 8 / (mbps * 1000);
    this.#delayMs = delayMs;
  }

  /** When `bytes` sent now (not before `notBefore`) arrive at the other end. */
  arrival(bytes: number, notBefore: number): number {
    const departure = Math.max(performance.now(), notBefore, this.#freeAt);
    this.#freeAt = departure + bytes * this.#msPerByte;
    return this.#freeAt + this.#delayMs;
  }
}

/** One connection's direction: what it sent arrives in order, and its close only after its last byte. */
class Delivery {
  #lastArrival = 0;
  readonly #link: Link;
  readonly #readyAt: number;

  constructor(link: Link, readyAt: number) {
    this.#link = link;
    this.#readyAt = readyAt;
  }

  /** Calls `deliver` when `bytes` sent now reach the other end. */
  send(bytes: number, deliver: () => void): void {
    this.#lastArrival = this.#link.arrival(bytes, this.#readyAt);
    setTimeout(deliver, Math.max(0, this.#lastArrival - performance.now()));
  }

  /** Calls `close` once everything sent so far has arrived. */
  after(close: () => void): void {
    setTimeout(close, Math.max(0, this.#lastArrival - performance.now()) + 1);
  }
}

/** Reads request heads out of a client's byte stream (bodies have a Content-Length: the SDK sends no chunks). */
class RequestReader {
  #head = '';
  #bodyLeft = 0;
  readonly #seen: (method: string, path: string) => void;

  constructor(seen: (method: string, path: string) => void) {
    this.#seen = seen;
  }

  feed(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#bodyLeft > 0) {
        const skipped = Math.min(this.#bodyLeft, chunk.length - offset);
        this.#bodyLeft -= skipped;
        offset += skipped;
        continue;
      }
      const text = chunk.toString('latin1', offset);
      const end = (this.#head + text).indexOf('\r\n\r\n');
      if (end === -1) {
        this.#head += text;
        return;
      }
      const head = (this.#head + text).slice(0, end);
      offset += end + 4 - this.#head.length;
      this.#head = '';
      const [method = '?', path = '?'] = head.split('\r\n', 1)[0]!.split(' ');
      this.#seen(method, path);
      this.#bodyLeft = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    }
  }
}

export async function startShapingProxy(options: ShapingOptions): Promise<ShapingProxy> {
  const up = new Link(options.mbps, options.rttMs / 2);
  const down = new Link(options.mbps, options.rttMs / 2);
  let traffic: Traffic = { sent: 0, received: 0, requests: [] };
  const sockets = new Set<Socket>();

  const forward = (from: Socket, to: Socket, delivery: Delivery, count: (bytes: number) => void, read?: RequestReader) => {
    from.on('data', (chunk: Buffer) => {
      count(chunk.length);
      read?.feed(chunk);
      delivery.send(chunk.length, () => to.destroyed || to.write(chunk));
    });
    from.on('end', () => delivery.send(0, () => to.end()));
    from.on('close', () => delivery.after(() => to.destroy()));
  };

  const server = createServer((client) => {
    // The handshakes: nothing flows before they are done.
    const readyAt = performance.now() + options.handshakeRoundTrips * options.rttMs;
    const upstream = connect(options.upstreamPort, options.upstreamHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    const reader = new RequestReader((method, path) => traffic.requests.push({ method, path, at: performance.now() }));
    forward(client, upstream, new Delivery(up, readyAt), (bytes) => (traffic.sent += bytes), reader);
    forward(upstream, client, new Delivery(down, readyAt), (bytes) => (traffic.received += bytes));
    for (const socket of [client, upstream]) socket.on('error', () => undefined); // the other side's close follows
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    traffic: () => ({ ...traffic, requests: [...traffic.requests] }),
    reset: () => {
      traffic = { sent: 0, received: 0, requests: [] };
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Round trips a flow waited for: its requests grouped into waves, a wave being the requests that started
 * together (within a tenth of a round trip of its first), so that parallel requests count once.
 */
export function roundTrips(requests: readonly SeenRequest[], rttMs: number): number {
  let waves = 0;
  let waveStart = Number.NEGATIVE_INFINITY;
  for (const request of [...requests].sort((a, b) => a.at - b.at)) {
    if (request.at - waveStart > rttMs / 10) {
      waves++;
      waveStart = request.at;
    }
  }
  return waves;
}
