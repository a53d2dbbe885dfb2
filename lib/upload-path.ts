import { statfsSync } from 'node:fs';
import path from 'node:path';
import type { ConfigProblem } from './errors.ts';

/**
 * The kernel's pseudo file systems, by their Linux statfs type (linux/magic.h). None can store files, and on
 * them Node's recursive mkdir does not fail: it gets ENOENT and tries again, for ever. A local store there would
 * hang the server or the command at its first write without a word, so UPLOAD_PATH is refused there up front.
 */
const PSEUDO_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x6165676c, 'pstore'],
  [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'],
  [0x65735543, 'fusectl'],
  [0x42494e4d, 'binfmt_misc'],
  [0xde5e81e4, 'efivarfs'],
  [0xf97cff8c, 'selinuxfs'],
  [0x19800202, 'mqueue'],
  [0x6e736673, 'nsfs'],
]);

/**
 * The problem of an UPLOAD_PATH on a pseudo file system (judged by the nearest part of the path that exists), or
 * undefined. Other systems than Linux number their file system types otherwise, and have no such file systems
 * where a directory would be made by mistake.
 */
export function uploadPathProblem(uploadPath: string): ConfigProblem | undefined {
  if (process.platform !== 'linux') return undefined;
  for (let at = path.resolve(uploadPath); ; at = path.dirname(at)) {
    let type: number;
    try {
      type = statfsSync(at).type;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && path.dirname(at) !== at) continue;
      return undefined; // a path that cannot be used for another reason: the store says why when it tries
    }
    const name = PSEUDO_FILE_SYSTEMS.get(type);
    if (name === undefined) return undefined;
    return { variable: 'UPLOAD_PATH', problem: `is ${path.resolve(uploadPath)}, on ${name}, a pseudo file system of the kernel that cannot store files: choose a directory on a disk` };
  }
}
