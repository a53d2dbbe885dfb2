/**
 * verify's scan: every area of the store listed in key order, merged by generation, each object filed under
 * its pose (pose-files.ts tells a published file's pose and role); and one pose's objects looked up again, under
 * its lock, for its repair. Only one generation's keys are held at a time.
 */
import { AREAS, BACKUPS_PREFIX, ID_PATTERN, LOCKS_PREFIX, PUBLIC_PREFIX, RECORDS_PREFIX, lockKey, recordKey, stagingPrefix, type PoseRef } from '../layout.ts';
import { poseOfKey, publishedFileOf } from '../pose-files.ts';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.ts';

/** The objects of one pose, as listed (or looked up again under its lock). */
export interface PoseObjects {
  /** Its published files by role, configured or not. */
  files: Map<string, ObjectInfo>;
  /** The files a publication kept aside, by role. */
  backups: Map<string, ObjectInfo>;
  record?: ObjectInfo | undefined;
  lock?: ObjectInfo | undefined;
  staged: ObjectInfo[];
}

export interface Generation {
  generationId: string;
  poses: Map<string, { pose: PoseRef; objects: PoseObjects }>;
}

const emptyObjects = (): PoseObjects => ({ files: new Map(), backups: new Map(), staged: [] });

const generationOf = (key: string): string => key.split('/')[1] ?? '';

/** One area's objects, a generation at a time (a generation's keys are contiguous in key order). */
async function* groupsOf(listing: AsyncIterable<ObjectInfo>): AsyncGenerator<{ generationId: string; objects: ObjectInfo[] }> {
  let current: { generationId: string; objects: ObjectInfo[] } | undefined;
  for await (const object of listing) {
    const generationId = generationOf(object.key);
    if (!ID_PATTERN.test(generationId)) continue;
    if (current && current.generationId !== generationId) {
      yield current;
      current = undefined;
    }
    current ??= { generationId, objects: [] };
    current.objects.push(object);
  }
  if (current) yield current;
}

/** Every area's listing merged by generation, in the stores' key order (`g-x/` sorts before `g/`). */
export async function* generationsOf(store: ObjectStore): AsyncGenerator<Generation> {
  const areas = AREAS.map((area) => groupsOf(store.list(area))[Symbol.asyncIterator]());
  const heads = await Promise.all(areas.map((area) => area.next()));
  try {
    for (;;) {
      const pending = heads.flatMap((head) => (head.done ? [] : [head.value.generationId]));
      if (pending.length === 0) return;
      const generationId = pending.reduce((a, b) => (`${b}/` < `${a}/` ? b : a));
      const generation: Generation = { generationId, poses: new Map() };
      for (const [index, head] of heads.entries()) {
        if (head.done || head.value.generationId !== generationId) continue;
        for (const object of head.value.objects) place(generation, object);
        heads[index] = await areas[index]!.next();
      }
      yield generation;
    }
  } finally {
    await Promise.all(areas.map((area) => area.return?.(undefined)));
  }
}

/** Files an object under its pose; objects of no pose (custom files under poses/) are not checked. */
function place(generation: Generation, object: ObjectInfo): void {
  const pose = poseOfKey(object.key);
  if (!pose) return;
  let entry = generation.poses.get(pose.poseId);
  if (!entry) generation.poses.set(pose.poseId, (entry = { pose, objects: emptyObjects() }));
  file(entry.objects, pose, object);
}

/** Puts one object of `pose` where it belongs among its objects. */
function file(objects: PoseObjects, pose: PoseRef, object: ObjectInfo): void {
  const { key } = object;
  if (key.startsWith(PUBLIC_PREFIX)) {
    const published = publishedFileOf(key);
    if (published) objects.files.set(published.role, object);
  } else if (key.startsWith(BACKUPS_PREFIX)) {
    const kept = publishedFileOf(`${PUBLIC_PREFIX}${key.slice(BACKUPS_PREFIX.length)}`);
    if (kept) objects.backups.set(kept.role, object);
  } else if (key === recordKey(pose)) objects.record = object;
  else if (key === lockKey(pose)) objects.lock = object;
  else if (!key.startsWith(RECORDS_PREFIX) && !key.startsWith(LOCKS_PREFIX)) objects.staged.push(object);
}

/**
 * The pose's objects now (under its lock, through its store: what a repair works on): its published files and
 * backups by listing (so that files of variants no longer configured are found too), its record and lock.
 */
export async function lookUp(store: ObjectStore, pose: PoseRef): Promise<PoseObjects> {
  const { generationId, poseId } = pose;
  const objects = emptyObjects();
  const prefixes = [`${PUBLIC_PREFIX}${generationId}/${poseId}`, `${BACKUPS_PREFIX}${generationId}/${poseId}`, stagingPrefix(pose)];
  const [listings, record, lock] = await Promise.all([
    Promise.all(prefixes.map(async (prefix) => {
      const found: ObjectInfo[] = [];
      for await (const object of store.list(prefix)) found.push(object);
      return found;
    })),
    store.head(recordKey(pose)),
    store.head(lockKey(pose)),
  ]);
  for (const object of listings.flat()) {
    // A prefix lists other poses too (`p` lists `p2.png`): only this pose's objects are kept.
    const owner = poseOfKey(object.key);
    if (owner?.poseId === poseId && owner.generationId === generationId) file(objects, pose, object);
  }
  objects.record = record;
  objects.lock = lock;
  return objects;
}
