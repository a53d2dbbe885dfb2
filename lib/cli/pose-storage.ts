#!/usr/bin/env node
/**
 * pose-storage: the operations tool, for both modes, on the library's storage interface. Each command lives in
 * lib/cli/commands/ (its flags, its help, its output) over plain logic in lib/operations/; this file picks the
 * command and turns its outcome, or its error, into the exit status.
 *
 *   npx pose-storage migrate --from local --to r2 [--dry-run] [--verify] [--concurrency N] [--json]
 *   npx pose-storage usage [--by-generation] [--json]
 *   npx pose-storage verify [--repair] [--json]
 *   npx pose-storage cleanup --older-than 30d [--dry-run] [--json]
 *   npx pose-storage health [--min-free-mb 100] [--json]
 *   npx pose-storage smoke [--quiet] | smoke --api <url> [--token <token>]
 */
import { ConfigError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import type { Progress, ProgressReporter } from '../operations/progress.ts';
import { formatConfigError, UsageError, type CliIo, type Command, type Context, type Outcome } from './command.ts';
import { cleanupCommand } from './commands/cleanup.ts';
import { healthCommand } from './commands/health.ts';
import { migrateCommand } from './commands/migrate.ts';
import { smokeCommand } from './commands/smoke.ts';
import { usageCommand } from './commands/usage.ts';
import { verifyCommand } from './commands/verify.ts';
import { loadDotEnv } from './env-file.ts';

export type { CliIo };

/** 0 done, 1 something failed (listed) or unhealthy, 2 bad usage or configuration, 130 interrupted. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const STATUS: Record<Outcome, number> = { ok: EXIT.ok, failed: EXIT.failed, interrupted: EXIT.interrupted };

const COMMANDS: readonly Command[] = [migrateCommand, usageCommand, verifyCommand, cleanupCommand, healthCommand, smokeCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return `Usage: pose-storage <command> [options]

Operations on the pose store, in local mode (a directory) and r2 mode (an S3-compatible bucket).

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n')}

Run "pose-storage <command> --help" for a command's options.

Configuration comes from the environment (and ./.env when present), as for the service: STORAGE_MODE,
UPLOAD_PATH, R2_* (see .env.example). API_TOKEN is not needed, except by health in r2 mode (it checks the
service's whole configuration) and smoke --api (the token it sends when --token is not given).

Output: results on stdout; [Storage] log lines (JSON) on stderr. Exit status: 0 done, 1 failed or
unhealthy, 2 bad usage or configuration, 130 interrupted.`;
}

/** Runs the tool; returns the exit status. Never calls process.exit. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  let progress: ProgressReporter<Progress> | undefined;
  const logger = createLogger((line) => {
    // Through the bar only when both go to the terminal; a redirected stderr gets its lines as they are.
    if (progress && io.stderr.isTTY) progress.log(line);
    else io.stderr.write(`${line}\n`);
  });
  if (name === undefined) {
    io.stderr.write(`${mainHelp()}\n`);
    return EXIT.usage;
  }
  const find = (wanted: string | undefined) => COMMANDS.find((command) => command.name === wanted);
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? args[0] : undefined;
    if (topic === undefined) {
      io.stdout.write(`${mainHelp()}\n`);
      return EXIT.ok;
    }
    return find(topic) ? main([topic, '--help'], io) : usageFailure(io, 'pose-storage', `unknown command "${topic}"`);
  }
  const command = find(name);
  if (!command) {
    const hint = name.startsWith('-') ? 'a command comes first' : `commands: ${COMMANDS.map((known) => known.name).join(', ')}`;
    return usageFailure(io, 'pose-storage', `unknown command "${name}" (${hint})`);
  }
  const context: Context = {
    io,
    out: (line = '') => io.stdout.write(`${line}\n`),
    logger,
    showProgress: (reporter) => {
      progress = reporter;
    },
  };
  try {
    return STATUS[await command.run(args, context)];
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(io, `pose-storage ${name}`, error.message);
    if (error instanceof ConfigError) {
      io.stderr.write(`${formatConfigError(error)}\n`);
      return EXIT.usage;
    }
    io.stderr.write(`pose-storage ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  }
}

function usageFailure(io: CliIo, who: string, message: string): number {
  io.stderr.write(`${who}: ${message}. See "${who} --help".\n`);
  return EXIT.usage;
}

/**
 * A stream whose reader may go away (`pose-storage usage | head`): the command still runs to its end (a
 * migration or a repair is not cut off halfway), and what it would still print is dropped.
 */
function guarded(stream: NodeJS.WriteStream): CliIo['stdout'] {
  let closed = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    closed = true;
  });
  return {
    write: (text: string) => closed || stream.write(text),
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
  };
}

if (import.meta.main) {
  try {
    loadDotEnv();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${formatConfigError(error)}\n`);
    process.exit(EXIT.usage);
  }
  let interrupts = 0;
  const status = await main(process.argv.slice(2), {
    stdout: guarded(process.stdout),
    stderr: guarded(process.stderr),
    env: process.env,
    onInterrupt(handler) {
      const listener = () => {
        if (++interrupts > 1) process.exit(EXIT.interrupted);
        handler();
      };
      process.on('SIGINT', listener);
      return () => process.off('SIGINT', listener);
    },
  });
  process.exitCode = status;
}
