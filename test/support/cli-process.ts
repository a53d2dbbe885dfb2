/**
 * `pose-storage <command>` as an operator runs it: lib/cli/pose-storage.ts in a child process on the project's
 * Node 24, with only the environment a test gives it (plus PATH, never the test runner's own), its output collected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_NODE, REPO_ROOT } from './dev-process.ts';

const CLI = path.join(REPO_ROOT, 'lib', 'cli', 'pose-storage.ts');

export interface CliRun {
  code: number | null;
  /** Only when a signal ended it (so a normal run compares equal to `{ code, stdout, stderr }`). */
  signal?: NodeJS.Signals;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The working directory (default: the repository). */
  cwd?: string;
  env: Record<string, string>;
  /** Hears stdout as it grows (all of it so far), with the child, e.g. to interrupt it at a given line. */
  onStdout?: ((stdout: string, child: ChildProcess) => void) | undefined;
}

/** Starts the CLI; `exited` settles when it has exited and its output is read to the end. */
export function startCli(args: readonly string[], options: CliOptions): { child: ChildProcess; exited: Promise<CliRun> } {
  const child = spawn(PROJECT_NODE, [CLI, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    options.onStdout?.(stdout, child);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, stdout, stderr, ...(signal ? { signal } : {}) }));
  });
  return { child, exited };
}

/** Runs the CLI to its end. */
export function runCli(args: readonly string[], options: CliOptions): Promise<CliRun> {
  return startCli(args, options).exited;
}
