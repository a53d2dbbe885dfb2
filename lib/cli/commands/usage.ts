import { describeLocation, parseOperationsConfig } from '../../operations/config.ts';
import { formatBytes, renderTable } from '../../operations/format.ts';
import { AREAS, measureUsage, type UsageReport } from '../../operations/usage.ts';
import { DirectoryStore } from '../../storage/directory-store.ts';
import { configuredStore } from '../../storage/stores.ts';
import { defineCommand, json, warnIfNoUploadPath } from '../command.ts';

export const usageCommand = defineCommand({
  name: 'usage',
  summary: 'files, bytes and poses in the store, optionally per generation, and local temporary files',
  help: `Usage: pose-storage usage [--by-generation] [--json]

Counts the files and bytes of the configured store (STORAGE_MODE) by area of the layout (poses/,
staging/, records/, locks/, backups/, other) and the poses (a published image, with or without its
thumbnail). In local mode it also lists UPLOAD_PATH/.tmp/: temporary files of writes in progress, or left
by a writer killed mid-write (the next writer removes those an hour old). Streams through the listing:
nothing but counters is kept.

Options:
  --by-generation      also per generation: poses, files, bytes, newest file
  --json               print JSON
  -h, --help           this help`,
  options: { 'by-generation': { type: 'boolean' }, json: { type: 'boolean' } },
  async run(values, context) {
    const { io, out } = context;
    const config = parseOperationsConfig(io.env);
    await warnIfNoUploadPath(context, config);
    const store = configuredStore(config);
    const report = await measureUsage(store, {
      byGeneration: values['by-generation'] === true,
      ...(store instanceof DirectoryStore && { temporaryFiles: () => store.temporaryFiles() }),
    });
    const location = describeLocation(config.storageMode, config, config.r2);
    if (values.json === true) {
      out(json({ mode: config.storageMode, location, ...report }));
      return 'ok';
    }
    out(`Storage usage, ${config.storageMode} mode (${location})`);
    out();
    out(printUsage(report));
    return 'ok';
  },
});

function printUsage(report: UsageReport): string {
  const rows = AREAS.map((area) => [area === 'other' ? 'other' : `${area}/`, String(report.areas[area].files), formatBytes(report.areas[area].bytes)]);
  rows.push(['total', String(report.files), formatBytes(report.bytes)]);
  const temporary = report.temporary;
  if (temporary) rows.push(['.tmp/', String(temporary.files), formatBytes(temporary.bytes), temporary.oldest ? `oldest ${temporary.oldest}` : '']);
  const lines = [renderTable(['area', 'files', 'bytes', ''], rows, ['left', 'right', 'right', 'left']), '', `poses: ${report.poses} (thumbnails: ${report.thumbnails})`];
  if (report.generations) {
    lines.push('');
    if (report.generations.length === 0) lines.push('no generations');
    else {
      lines.push(
        renderTable(
          ['generation', 'poses', 'files', 'bytes', 'newest file'],
          report.generations.map((g) => [g.generationId, String(g.poses), String(g.files), formatBytes(g.bytes), g.newest]),
          ['left', 'right', 'right', 'right', 'left'],
        ),
      );
    }
  }
  return lines.join('\n');
}
