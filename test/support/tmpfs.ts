/**
 * Real full disks and read-only file systems for tests: a tiny tmpfs. Mounting needs root (CI runs as root);
 * elsewhere the tests that need it are skipped, saying why.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Whether this process can mount a tmpfs: probed once by mounting and unmounting one. */
function probe(): { ok: true; note: '' } | { ok: false; note: string } {
  if (process.getuid?.() !== 0) return { ok: false, note: ' (skipped: not running as root, cannot mount a tmpfs)' };
  const directory = mkdtempSync(path.join(os.tmpdir(), 'tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', directory], { stdio: 'pipe' });
    execFileSync('umount', [directory], { stdio: 'pipe' });
    return { ok: true, note: '' };
  } catch (error) {
    return { ok: false, note: ` (skipped: mount -t tmpfs failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)})` };
  } finally {
    rmdirSync(directory);
  }
}

/** `ok`: tmpfs can be mounted; `note`: what to append to a describe title when it cannot. */
export const tmpfs = probe();

export function mountTmpfs(directory: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', directory], { stdio: 'pipe' });
}

export function remount(directory: string, mode: 'ro' | 'rw'): void {
  execFileSync('mount', ['-o', `remount,${mode}`, directory], { stdio: 'pipe' });
}

export function unmount(directory: string): void {
  execFileSync('umount', [directory], { stdio: 'pipe' });
}
