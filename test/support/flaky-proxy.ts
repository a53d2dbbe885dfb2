/**
 * A TCP proxy on 127.0.0.1 in front of a test server, to take the store away for real: `cutAt` drops every
 * connection (mid-request, as a crash or a network failure would) the moment a request matching the pattern
 * starts, and refuses new ones until `restore()`.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FlakyProxy {
  endpoint: string;
  /** Cut the line when a request whose head matches `pattern` goes out (e.g. /^PUT \S+_thumb\.png/m). */
  cutAt(pattern: RegExp): void;
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
    client.on('data', (chunk: Buffer) => {
      if (pattern?.test(chunk.toString('latin1'))) return cut();
      upstream.write(chunk);
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
