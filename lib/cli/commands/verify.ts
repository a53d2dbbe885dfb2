import { describeLocation, parseOperationsConfig } from '../../operations/config.ts';
import { createProgressReporter } from '../../operations/progress.ts';
import { lostUploadAfterMs } from '../../deadlines.ts';
import { findingLabel, PROBLEM_KINDS, verifyStore, type Finding } from '../../operations/verify.ts';
import { createServices } from '../../services.ts';
import { defineCommand, json, removeStaleTemporaryFiles, warnIfNoUploadPath } from '../command.ts';

/** Findings kept for --json; more are counted, not listed. */
const MAX_JSON_FINDINGS = 10_000;

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 'check every pose (images decoded, thumbnails, records, locks, uploads); --repair fixes what it can',
  help: `Usage: pose-storage verify [--repair] [--json]

Checks every pose of the configured store: a pose is absent, pending, rejected, or whole (a decodable PNG
image, its 400x400 PNG thumbnail and a ready record describing that image). Images and thumbnails are
decoded in full, two at a time, in little memory. Reports:

  unprocessed upload    staged longer than UPLOAD_URL_TTL_SECONDS + 1 hour: its event was lost
  expired lock          the lock of a writer that stopped
  leftover backup       the previous image, kept aside by a publication that stopped
  broken image          not a decodable PNG (truncated, garbage, an HTML page...)
  missing image         a thumbnail (and maybe a ready record) whose image is gone
  missing thumbnail     an image without its thumbnail
  broken thumbnail      not a decodable 400x400 PNG
  record mismatch       a ready record whose size disagrees with the image
  unrecorded pose       published files with no record (written by an older version)
  unreadable record     a record that is not one
  dangling record       a ready record of a pose that has no file left
  rejected with files   published files of a pose whose upload was rejected
Notices (never a failure): rejection records, and poses a writer holds (not checked this time).

Options:
  --repair             fix what can be fixed, pose by pose under the pose's lock: unprocessed uploads are
                       processed (published or rejected, as their event would have), thumbnails rendered
                       again from the image, missing records written from it, a leftover backup put back
                       when it is the image the record describes, what is left of a pose whose image is gone
                       removed, expired locks released. Each pose is checked again afterwards. What cannot
                       be repaired is said, with what to do (an undecodable image with no staged upload:
                       delete the pose). In local mode, first removes the temporary files that a writer
                       killed mid-write left in UPLOAD_PATH/.tmp/.
  --json               print the findings and counts as JSON (no progress)
  -h, --help           this help

Exit status: 0 no problem left, 1 problems left (listed), 2 bad usage or configuration.`,
  options: { repair: { type: 'boolean' }, json: { type: 'boolean' } },
  async run(values, context) {
    const { io, out, logger } = context;
    const repair = values.repair === true;
    const asJson = values.json === true;
    const config = parseOperationsConfig(io.env);
    await warnIfNoUploadPath(context, config);
    const { storage, uploads } = createServices({ config, logger });
    if (repair) await removeStaleTemporaryFiles(storage.store, logger);
    if (!asJson) out(`Verifying ${config.storageMode} store (${describeLocation(config.storageMode, config, config.r2)})${repair ? ', repairing' : ''}`);

    const findings: Finding[] = [];
    const reporter = asJson ? undefined : createProgressReporter({ stream: io.stdout, noun: 'poses' });
    context.showProgress(reporter);
    const print = (line: string) => (reporter ? reporter.log(line) : out(line));
    let result;
    try {
      result = await verifyStore({
        storage,
        uploads,
        stagingMaxAgeMs: lostUploadAfterMs(config.uploadUrlTtlSeconds),
        repair,
        logger,
        ...(reporter && { onProgress: (progress) => reporter.update(progress) }),
        onFinding: (finding) => {
          if (asJson) {
            if (findings.length < MAX_JSON_FINDINGS) findings.push(finding);
          } else print(describeFinding(finding, repair));
        },
      });
    } finally {
      reporter?.finish();
      context.showProgress(undefined);
    }
    const outcome = result.unrepaired > 0 ? 'failed' : 'ok';
    if (asJson) {
      out(json({ mode: config.storageMode, ...result, findings, findingsListed: findings.length }));
      return outcome;
    }
    const { checked } = result;
    out();
    out(
      `Checked ${checked.generations} generation(s), ${checked.poses} pose(s): ${checked.images} image(s), ${checked.thumbnails} thumbnail(s), ` +
        `${checked.records} record(s), ${checked.stagedUploads} staged upload(s).`,
    );
    const breakdown = PROBLEM_KINDS.filter((kind) => result.found[kind] > 0)
      .map((kind) => `${result.found[kind]} ${findingLabel(kind)}`)
      .join(', ');
    if (result.problems === 0) out('No problems found.');
    else if (repair) out(`${result.problems} problem(s) (${breakdown}): ${result.problems - result.unrepaired} repaired, ${result.unrepaired} left.`);
    else out(`${result.problems} problem(s) (${breakdown}). Run "pose-storage verify --repair" to fix what can be fixed.`);
    return outcome;
  },
});

/** `  broken image          poses/g/p.png: an HTML page, not an image  -> cannot be repaired: ...` */
function describeFinding(finding: Finding, repair: boolean): string {
  const label = finding.problem ? findingLabel(finding.kind) : `note: ${findingLabel(finding.kind)}`;
  const outcome = !finding.problem
    ? ''
    : finding.repaired
      ? '  -> repaired'
      : finding.repairError !== undefined
        ? `  -> repair failed: ${finding.repairError}`
        : finding.cannotRepair !== undefined
          ? `  -> cannot be repaired: ${finding.cannotRepair}`
          : repair
            ? '  -> not repaired'
            : '';
  return `  ${label.padEnd(24)}${finding.key}: ${finding.detail}${outcome}`;
}
