import { parseConfig, type Config } from '../../config.ts';
import { ConfigError } from '../../errors.ts';
import { describeLocation } from '../../operations/config.ts';
import { checkHealth, configurationFailure, DEFAULT_MIN_FREE_BYTES, type HealthReport } from '../../health.ts';
import { configuredStore } from '../../storage/stores.ts';
import { uploadPathProblem } from '../../upload-path.ts';
import { defineCommand, json, wholeNumber, type Context } from '../command.ts';

const MB = 1024 * 1024;

export const healthCommand = defineCommand({
  name: 'health',
  summary: 'configuration, store reachable and writable, free disk space (local mode)',
  help: `Usage: pose-storage health [--min-free-mb 100] [--json]

Checks that the configuration is valid (the service's: in r2 mode that includes API_TOKEN), that the
store answers and is writable (a probe object health/probe-<uuid> is written, read back and removed) and,
in local mode, that UPLOAD_PATH's file system has at least --min-free-mb free. A failed check says what
happened: a host that does not resolve or refuses connections, keys the store does not accept, a bucket
that does not exist, a read-only or full file system.

Options:
  --min-free-mb N      free space threshold in MB, local mode (default ${DEFAULT_MIN_FREE_BYTES / MB})
  --json               print JSON
  -h, --help           this help

Exit status: 0 healthy, 1 unhealthy, 2 bad usage or invalid configuration.`,
  options: { 'min-free-mb': { type: 'string' }, json: { type: 'boolean' } },
  async run(values, context) {
    const { io, logger } = context;
    const minFreeMb = values['min-free-mb'];
    const minFreeBytes = typeof minFreeMb === 'string' ? wholeNumber('min-free-mb', minFreeMb, 0, 1_000_000_000) * MB : DEFAULT_MIN_FREE_BYTES;
    const asJson = values.json === true;
    let config: Config;
    try {
      config = parseConfig(io.env);
      const uploadPath = config.storageMode === 'local' ? uploadPathProblem(config.uploadPath) : undefined;
      if (uploadPath) throw new ConfigError([uploadPath]);
    } catch (error) {
      if (error instanceof ConfigError) {
        const report = configurationFailure(error);
        // The row names the variables; each problem is printed once, by the error on stderr (exit status 2).
        printHealth(context, asJson ? report : { ...report, checks: report.checks.map(({ detail: _, ...check }) => check) }, asJson);
      }
      throw error;
    }
    const report = await checkHealth({ config, store: configuredStore(config), minFreeBytes });
    if (report.status !== 'healthy') {
      logger.warn(`[Storage] Health check failed: ${report.checks.filter((check) => !check.ok).map((check) => check.name).join(', ')}`);
    }
    printHealth(context, report, asJson, describeLocation(config.storageMode, config, config.r2));
    return report.status === 'healthy' ? 'ok' : 'failed';
  },
});

function printHealth({ out }: Context, report: HealthReport, asJson: boolean, location?: string): void {
  if (asJson) {
    out(json({ ...report, ...(location !== undefined && { location }) }));
    return;
  }
  out(`${report.status === 'healthy' ? 'Healthy' : 'Unhealthy'}${report.mode ? `: ${report.mode} mode (${location})` : ''}`);
  for (const check of report.checks) {
    const about = check.ok ? (check.reason ?? '') : (check.detail ?? check.reason ?? '');
    out(`  ${(check.ok ? 'ok' : 'FAIL').padEnd(6)}${check.name.padEnd(17)}${String(check.ms).padStart(5)} ms  ${about}`.trimEnd());
  }
}
