import { createLogger } from '../../logger.ts';
import { runApiSmoke, type StepResult } from '../../operations/api-smoke.ts';
import { parseOperationsConfig } from '../../operations/config.ts';
import { formatDuration } from '../../operations/format.ts';
import { runSmoke } from '../../operations/smoke.ts';
import { createServices } from '../../services.ts';
import { defineCommand, UsageError, wholeNumber, type Context, type Outcome, type Values } from '../command.ts';

export const smokeCommand = defineCommand({
  name: 'smoke',
  summary: 'the smoke test of the library on the configured store, or of a deployed API end to end (--api)',
  help: `Usage: pose-storage smoke [--quiet]
       pose-storage smoke --api <url> [--token <token>] [--timeout 60]

Without --api: runs the library's smoke test on the configured store (npm run smoke): initialization,
save with thumbnail, verify the files, delete, error handling. Prints PASS/FAIL per check.

With --api: proves a deployed stage (or "npm run dev") end to end, over HTTP(S) only, as a client would:
presigns an upload, PUTs a generated PNG with exactly the ticket's headers, polls the status until ready,
fetches the image and the 400x400 thumbnail from their public URLs, deletes the pose and checks that the
status and both URLs are gone. Each step is printed with its time; the first that fails stops the run
(the pose is then deleted) and is named with the HTTP status and the API's or the store's message.

Options:
  --api URL            the API's base URL (sst deploy prints it as "api"; http://localhost:3000 for npm run dev)
  --token TOKEN        the bearer token (default: the first token of API_TOKEN, if set)
  --timeout S          seconds to wait for the pose to be ready, 1-900 (default 60)
  --quiet              library smoke test: no log lines
  -h, --help           this help

Exit status: 0 all passed, 1 a check or step failed, 2 bad usage or configuration.`,
  options: { quiet: { type: 'boolean' }, api: { type: 'string' }, token: { type: 'string' }, timeout: { type: 'string' } },
  run(values, context) {
    if (values.api !== undefined) return apiSmoke(values, context);
    for (const flag of ['token', 'timeout'] as const) if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --api`);
    return librarySmoke(values, context);
  },
});

async function librarySmoke(values: Values, { io, out, logger }: Context): Promise<Outcome> {
  const config = parseOperationsConfig(io.env);
  const { storage } = createServices({ config, logger: values.quiet === true ? createLogger(() => undefined) : logger });
  const { failed } = await runSmoke({ storage, config, write: out });
  return failed > 0 ? 'failed' : 'ok';
}

async function apiSmoke(values: Values, { io, out }: Context): Promise<Outcome> {
  const api = String(values.api);
  let url: URL | undefined;
  try {
    url = new URL(api);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new UsageError(`--api must be an http(s) URL (got "${api}")`);
  const timeout = typeof values.timeout === 'string' ? wholeNumber('timeout', values.timeout, 1, 900) : 60;
  const token = typeof values.token === 'string' ? values.token : io.env.API_TOKEN?.split(',')[0]?.trim() || undefined;

  out(`Smoke test of ${url.origin}${url.pathname.replace(/\/+$/, '')} (${token ? 'with a bearer token' : 'no token'})`);
  const line = (result: StepResult) =>
    out(`  ${(result.ok ? 'ok' : 'FAIL').padEnd(6)}${result.step.padEnd(10)}${`${result.ms} ms`.padStart(9)}  ${result.detail}`);
  const result = await runApiSmoke({ api, token, readyTimeoutMs: timeout * 1000, onStep: line });
  out();
  if (result.ok) {
    out(`Passed: ${result.steps.length} steps in ${formatDuration(result.ms)}.`);
    return 'ok';
  }
  io.stderr.write(`pose-storage smoke: failed at step "${result.failed!.step}": ${result.failed!.detail}\n`);
  return 'failed';
}
