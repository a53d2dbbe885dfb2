/**
 * `pose-storage usage`: files, bytes and poses in the store, by area of the layout (poses/, staging/, records/,
 * locks/, backups/, other) and optionally by generation, plus in local mode the temporary files of `.tmp/`.
 * One listing of the whole store, page by page: no key is kept, only counters (per area, and per generation
 * when asked).
 *
 * A pose is a published image, with or without its thumbnail and variants; neither of those is a pose of its
 * own (pose-files.ts tells them apart).
 */
import { AREAS as LAYOUT_AREAS, ID_PATTERN } from '../layout.ts';
import { IMAGE_FILE, publishedFileOf, THUMBNAIL_FILE } from '../pose-files.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { TemporaryFiles } from '../storage/directory-store.ts';

export type Area = 'poses' | 'staging' | 'records' | 'locks' | 'backups' | 'other';
export const AREAS: readonly Area[] = [...LAYOUT_AREAS.map((prefix) => prefix.slice(0, -1) as Area), 'other'];

export interface UsageCounts {
  files: number;
  bytes: number;
}

export interface GenerationUsage extends UsageCounts {
  generationId: string;
  poses: number;
  /** Newest modification time of the generation's files (ISO 8601). */
  newest: string;
}

export interface TemporaryUsage extends UsageCounts {
  /** Last modification of the oldest temporary file (ISO 8601), when there is one. */
  oldest?: string;
}

export interface UsageReport extends UsageCounts {
  /** Published images (with or without thumbnail). */
  poses: number;
  thumbnails: number;
  areas: Record<Area, UsageCounts>;
  /** Local mode: the directory's temporary files (`.tmp/`), not part of the counts above. */
  temporary?: TemporaryUsage;
  /** With `byGeneration`: every generation (of any area), sorted by id. */
  generations?: GenerationUsage[];
}

export interface UsageOptions {
  byGeneration?: boolean;
  /** Local mode: how to count the temporary files (DirectoryStore.temporaryFiles). */
  temporaryFiles?: () => Promise<TemporaryFiles>;
}

/** What a published key is: a pose's image, a thumbnail, a variant, or neither (another file under poses/). */
export function publishedKind(key: string): 'image' | 'thumbnail' | 'variant' | undefined {
  const role = publishedFileOf(key)?.role;
  if (role === undefined) return undefined;
  return role === IMAGE_FILE.role ? 'image' : role === THUMBNAIL_FILE.role ? 'thumbnail' : 'variant';
}

function areaOf(key: string): Area {
  const first = key.slice(0, key.indexOf('/'));
  return (AREAS as readonly string[]).includes(first) ? (first as Area) : 'other';
}

export async function measureUsage(store: ObjectStore, options: UsageOptions = {}): Promise<UsageReport> {
  const areas = Object.fromEntries(AREAS.map((area) => [area, { files: 0, bytes: 0 }])) as Record<Area, UsageCounts>;
  const report: UsageReport = { files: 0, bytes: 0, poses: 0, thumbnails: 0, areas };
  const generations = new Map<string, { files: number; bytes: number; poses: number; newest: number }>();

  for await (const object of store.list('')) {
    const area = areaOf(object.key);
    report.files++;
    report.bytes += object.size;
    areas[area].files++;
    areas[area].bytes += object.size;
    const kind = area === 'poses' ? publishedKind(object.key) : undefined;
    if (kind === 'image') report.poses++;
    if (kind === 'thumbnail') report.thumbnails++;
    if (!options.byGeneration || area === 'other') continue;
    const generationId = object.key.split('/')[1] ?? '';
    if (!ID_PATTERN.test(generationId)) continue;
    let counts = generations.get(generationId);
    if (!counts) generations.set(generationId, (counts = { files: 0, bytes: 0, poses: 0, newest: 0 }));
    counts.files++;
    counts.bytes += object.size;
    if (kind === 'image') counts.poses++;
    counts.newest = Math.max(counts.newest, object.lastModified.getTime());
  }

  if (options.temporaryFiles) {
    const { files, bytes, oldest } = await options.temporaryFiles();
    report.temporary = { files, bytes, ...(oldest && { oldest: oldest.toISOString() }) };
  }
  if (options.byGeneration) {
    report.generations = [...generations]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([generationId, counts]) => ({ generationId, ...counts, newest: new Date(counts.newest).toISOString() }));
  }
  return report;
}
