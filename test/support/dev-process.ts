/**
 * `npm run dev` as a child process: lib/cli/dev.ts on Node 24 from node_modules/.bin (or the real `npm run dev`),
 * with only the environment a test gives it (never the test's own), its output collected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import path from 'node:path';
import { waitFor, type UploadTicket } from './local-server.ts';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
/** Node 24 of the `node` devDependency, whatever the machine's own Node is. */
export const PROJECT_NODE = path.join(REPO_ROOT, 'node_modules/.bin/node');

export interface DevProcess {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface DevServer extends DevProcess {
  url: string;
  port: number;
}

const children = new Set<ChildProcess>();

/** SIGKILLs every child still running (for afterEach/afterAll). */
export function killDevProcesses(): void {
  for (const child of children) child.kill('SIGKILL');
}

/**
 * Runs `node lib/cli/dev.ts` (or, with `npm: true`, `npm run dev` in the repository) with `env` on top of
 * PATH and HOME only.
 */
export function spawnDev(env: Record<string, string>, options: { cwd?: string; npm?: boolean } = {}): DevProcess {
  const [command, args] = options.npm ? ['npm', ['run', 'dev']] : [PROJECT_NODE, [path.join(REPO_ROOT, 'lib/cli/dev.ts')]];
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, output: () => output, exited };
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * Starts `npm run dev` on `dir` and a free port, and waits until it says it is running. `cwd` is its working
 * directory (the repository by default).
 */
export async function startDev(dir: string, options: { cwd?: string } = {}): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevOnce(dir, await freePort(), options);
    } catch (error) {
      // Another process may take the port between freePort() and the child's listen.
      if (attempt === 3 || !String(error).includes('already in use')) throw error;
    }
  }
}

async function startDevOnce(dir: string, port: number, options: { cwd?: string }): Promise<DevServer> {
  const dev = spawnDev({ UPLOAD_PATH: dir, PORT: String(port) }, options);
  const url = `http://localhost:${port}`;
  await Promise.race([
    waitFor(() => dev.output().includes(`pose-storage is running: open ${url}/`), 15_000, `dev server start (output: ${dev.output()})`),
    dev.exited.then(({ code }) => {
      throw new Error(`dev server exited with ${code} before it started:\n${dev.output()}`);
    }),
  ]);
  return { ...dev, url, port };
}

/** Starts a raw HTTP/1.1 connection to 127.0.0.1:`port`; `response` resolves with all the server sent once it closes. */
export async function openConnection(port: number): Promise<{ socket: Socket; response: Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  const response = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(received));
  });
  return { socket, response };
}

/**
 * Starts a PUT by hand, as a keep-alive client (fetch, browsers) would: the headers and `firstBytes` of the body;
 * the rest is the caller's to send (or not).
 */
export async function startPut(port: number, ticket: UploadTicket, firstBytes: Uint8Array): Promise<{ socket: Socket; response: Promise<string> }> {
  const url = new URL(ticket.uploadUrl);
  const connection = await openConnection(port);
  const headers = Object.entries(ticket.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  connection.socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: keep-alive\r\n\r\n`);
  connection.socket.write(firstBytes);
  return connection;
}
