/**
 * A TCP proxy on 127.0.0.1 in front of a test server, to take the store away for real: `cutAt` drops every
 * connection (mid-request, as a crash or a network failure would) the moment a request matching the pattern
 * starts, and refuses new ones until `restore()`; `stallAt` holds a matching request back on the wire for a
 * while, as a slow network does, then delivers it, unless its client gave up and closed the connection meanwhile.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FlakyProxy {
  endpoint: string;
  /** Cut the line when a request whose head matches `pattern` goes out (e.g. /^PUT \S+_thumb\.png/m). */
  cutAt(pattern: RegExp): void;
  /**
   * Hold the next request whose head matches `pattern` (and whatever follows it on that connection) for `ms`,
   * then deliver it; a client that closes its connection meanwhile has it dropped. Resolves when it is held.
   */
  stallAt(pattern: RegExp, ms: number): Promise<void>;
  /** How many stalled requests were delivered late, and how many dropped because their client left. */
  readonly stalled: { delivered: number; dropped: number };
  /** Whether the line is cut now. */
  readonly isDown: boolean;
  restore(): void;
  close(): Promise<void>;
}

export async function startFlakyProxy(target: string): Promise<FlakyProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let pattern: RegExp | undefined;
  let down = false;
  let stall: { pattern: RegExp; ms: number; held: () => void } | undefined;
  const stalled = { delivered: 0, dropped: 0 };

  const cut = () => {
    down = true;
    for (const socket of sockets) socket.destroy();
  };

  const server: Server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = createConnection({ host: hostname, port: Number(port) });
    sockets.add(client).add(upstream);
    for (const socket of [client, upstream]) {
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    let holding: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      if (pattern?.test(chunk.toString('latin1'))) return cut();
      if (!holding && stall?.pattern.test(chunk.toString('latin1'))) {
        const { ms, held } = stall;
        stall = undefined;
        holding = [];
        held();
        setTimeout(() => {
          const late = holding ?? [];
          holding = undefined;
          if (client.destroyed || upstream.destroyed) return void stalled.dropped++;
          stalled.delivered++;
          for (const part of late) upstream.write(part);
        }, ms);
      }
      if (holding) holding.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cutAt(next) {
      pattern = next;
    },
    stallAt(next, ms) {
      return new Promise((held) => (stall = { pattern: next, ms, held }));
    },
    stalled,
    get isDown() {
      return down;
    },
    restore() {
      pattern = undefined;
      down = false;
    },
    async close() {
      cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
