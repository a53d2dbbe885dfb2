import { randomUUID } from 'node:crypto';
import { InvalidIdError } from './errors.ts';

/**
 * The storage layout (as in the reference) and the ids it is built from. Every key the service reads or
 * writes comes from here, so no caller ever builds a path from raw input.
 *
 *   poses/{generationId}/{poseId}.png          published image (public)
 *   poses/{generationId}/{poseId}_thumb.png    published 400x400 thumbnail (public)
 *   staging/{generationId}/{poseId}/{uuid}     client uploads awaiting validation (private)
 *   rejections/{generationId}/{poseId}.json    why an upload was refused (private)
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
export const REJECTIONS_PREFIX = 'rejections/';

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

export const imageKey = ({ generationId, poseId }: PoseRef): string =>
  `${PUBLIC_PREFIX}${generationId}/${poseId}.png`;

export const thumbnailKey = ({ generationId, poseId }: PoseRef): string =>
  `${PUBLIC_PREFIX}${generationId}/${poseId}_thumb.png`;

export const rejectionKey = ({ generationId, poseId }: PoseRef): string =>
  `${REJECTIONS_PREFIX}${generationId}/${poseId}.json`;

/** Prefix of every staging object of one pose. */
export const stagingPrefix = ({ generationId, poseId }: PoseRef): string =>
  `${STAGING_PREFIX}${generationId}/${poseId}/`;

/** A fresh, unguessable staging key for one upload of a pose. */
export const newStagingKey = (pose: PoseRef): string => `${stagingPrefix(pose)}${randomUUID()}`;

/** The prefixes that hold anything of a generation, public or private. */
export const generationPrefixes = (generationId: string): string[] => [
  `${PUBLIC_PREFIX}${generationId}/`,
  `${STAGING_PREFIX}${generationId}/`,
  `${REJECTIONS_PREFIX}${generationId}/`,
];

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
