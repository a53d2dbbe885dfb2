import { randomBytes } from 'node:crypto';
import { InvalidIdError } from './errors.ts';

/**
 * The storage layout (as in the reference) and the ids it is built from. Every key the service reads or
 * writes comes from here or from the table of a pose's files (pose-files.ts), so no caller ever builds a path
 * from raw input.
 *
 *   poses/{generationId}/{file}                a pose's published files (public; pose-files.ts names them)
 *   staging/{generationId}/{poseId}/{uuid}     client uploads awaiting validation (private)
 *   records/{generationId}/{poseId}.json       the pose's state: ready (which upload, its files) or rejected (why)
 *   locks/{generationId}/{poseId}.json         held while the pose's files change (private, short-lived)
 *   backups/{generationId}/{file}              a previous file while a newer publication replaces it (private)
 *
 * Everything but poses/ is private: the public URL space is poses/ only.
 */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * A poseId is an id that does not end in `_thumb`: pose `x_thumb`'s image would be pose `x`'s thumbnail key,
 * so one client could overwrite another pose's thumbnail.
 */
export const POSE_ID_PATTERN = /^(?![A-Za-z0-9_-]*_thumb$)[A-Za-z0-9_-]{1,128}$/;
export const POSE_ID_RULE = 'must match ^[A-Za-z0-9_-]{1,128}$ and not end in "_thumb"';

export const PUBLIC_PREFIX = 'poses/';
export const STAGING_PREFIX = 'staging/';
export const RECORDS_PREFIX = 'records/';
export const LOCKS_PREFIX = 'locks/';
export const BACKUPS_PREFIX = 'backups/';

/** Every area of the layout, public first. */
export const AREAS = [PUBLIC_PREFIX, STAGING_PREFIX, RECORDS_PREFIX, LOCKS_PREFIX, BACKUPS_PREFIX] as const;

export interface PoseRef {
  generationId: string;
  poseId: string;
}

/** Returns `value` if it is a valid id, or throws an InvalidIdError naming `name`. */
export function parseId(name: string, value: unknown): string {
  if (typeof value === 'string' && ID_PATTERN.test(value)) return value;
  throw new InvalidIdError(name, value);
}

export function parsePoseRef(input: { generationId: unknown; poseId: unknown }): PoseRef {
  const generationId = parseId('generationId', input.generationId);
  if (typeof input.poseId === 'string' && POSE_ID_PATTERN.test(input.poseId)) return { generationId, poseId: input.poseId };
  throw new InvalidIdError('poseId', input.poseId, POSE_ID_RULE);
}

export const recordKey = ({ generationId, poseId }: PoseRef): string => `${RECORDS_PREFIX}${generationId}/${poseId}.json`;

export const lockKey = ({ generationId, poseId }: PoseRef): string => `${LOCKS_PREFIX}${generationId}/${poseId}.json`;

/** Prefix of every staging object of one pose. */
export const stagingPrefix = ({ generationId, poseId }: PoseRef): string =>
  `${STAGING_PREFIX}${generationId}/${poseId}/`;

/**
 * A fresh staging key for one upload of a pose. Its last segment is a UUIDv7 (RFC 9562): 74 random bits
 * (unguessable) after the time the upload URL was issued, in milliseconds, so uploads of a pose are ordered
 * by it, whatever the precision of the store's own clock (S3 and R2 date objects to the second).
 */
export function newStagingKey(pose: PoseRef, now = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f); // version 7
  bytes[8] = 0x80 | (bytes[8]! & 0x3f); // variant 10
  const hex = bytes.toString('hex');
  return `${stagingPrefix(pose)}${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** When the upload URL of a staging key was issued (from its UUIDv7), or undefined for another key. */
export function issuedAt(stagingKey: string): Date | undefined {
  const uuid = /\/([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.exec(stagingKey);
  return uuid ? new Date(Number.parseInt(`${uuid[1]}${uuid[2]}`, 16)) : undefined;
}

/** The prefixes that hold anything of a generation, public or private. */
export const generationPrefixes = (generationId: string): string[] => AREAS.map((area) => `${area}${generationId}/`);

const STAGING_KEY = /^staging\/([A-Za-z0-9_-]{1,128})\/([A-Za-z0-9_-]{1,128})\/([0-9a-f-]{36})$/;

/** The pose a staging key belongs to, or undefined for any key outside the staging area. */
export function parseStagingKey(key: string): PoseRef | undefined {
  const match = STAGING_KEY.exec(key);
  return match && POSE_ID_PATTERN.test(match[2]!) ? { generationId: match[1]!, poseId: match[2]! } : undefined;
}

/** Public URL of a published key: local `/uploads/{key}`, r2 `{R2_PUBLIC_URL}/{key}`. */
export function publicUrl(publicBaseUrl: string, key: string): string {
  return `${publicBaseUrl}/${key}`;
}

/**
 * Cache-Control of published files. Not `immutable`: the newest upload of a pose replaces its files, and a
 * delete must reach browsers and the CDN, so caches keep a file at most `maxAgeSeconds`, then revalidate.
 */
export const publishedCacheControl = (maxAgeSeconds: number): string => `public, max-age=${maxAgeSeconds}`;
