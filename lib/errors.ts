/**
 * Errors a caller can act on. Each has a stable `code` (snake_case, the contract's error codes), a message
 * meant for a person, and never a secret. `expose` says whether the message may be shown to an HTTP client.
 */
export type PoseStorageErrorCode =
  | 'invalid_configuration'
  | 'invalid_id'
  | 'invalid_request'
  | 'invalid_image'
  | 'too_large'
  | 'unsupported_type'
  | 'disk_full'
  | 'permission_denied'
  | 'storage_unavailable'
  | 'not_found'
  | 'conflict'
  | 'precondition_failed'
  | 'pose_busy'
  | 'internal_error';

export class PoseStorageError extends Error {
  readonly code: PoseStorageErrorCode;

  constructor(code: PoseStorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export interface ConfigProblem {
  variable: string;
  problem: string;
}

/**
 * Configuration variables are missing or invalid: one line each, naming the variable and what is wrong
 * (never a secret's value).
 */
export class ConfigError extends PoseStorageError {
  readonly problems: readonly ConfigProblem[];

  constructor(variable: string, problem: string);
  constructor(problems: readonly ConfigProblem[]);
  constructor(variableOrProblems: string | readonly ConfigProblem[], problem = '') {
    const problems = typeof variableOrProblems === 'string' ? [{ variable: variableOrProblems, problem }] : variableOrProblems;
    super('invalid_configuration', problems.map((each) => `${each.variable} ${each.problem}`).join('\n'));
    this.problems = problems;
  }

  /** The first variable at fault. */
  get variable(): string {
    return this.problems[0]?.variable ?? 'configuration';
  }
}

/** An id (generationId, poseId, poseLibraryId) or a storage key that is not of the allowed shape. */
export class InvalidIdError extends PoseStorageError {
  constructor(name: string, value: unknown, rule = 'must match ^[A-Za-z0-9_-]{1,128}$') {
    super('invalid_id', `${name} ${rule} (got ${describeValue(value)})`);
  }
}

/** Why an upload is refused; the same codes are the `reason` of a rejected pose. */
export const REJECTION_REASONS = ['not_an_image', 'unsupported_format', 'too_large', 'corrupt_image'] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

/** The bytes are not an image we accept. Nothing was written. */
export class InvalidImageError extends PoseStorageError {
  readonly reason: RejectionReason;

  constructor(reason: RejectionReason, message: string, options?: { cause?: unknown }) {
    super(reason === 'too_large' ? 'too_large' : 'invalid_image', message, options);
    this.reason = reason;
  }
}

export class DiskFullError extends PoseStorageError {
  constructor(path: string, options?: { cause?: unknown }) {
    super('disk_full', `No space left on the device holding ${path}`, options);
  }
}

/** The file system or the store refused: `what` says to what ("writing or reading /srv/x", "for list poses/: ..."). */
export class PermissionDeniedError extends PoseStorageError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('permission_denied', `Permission denied ${what}`, options);
  }
}

/** The store could not be reached or kept failing after the SDK's retries: worth retrying later. */
export class StoreUnavailableError extends PoseStorageError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('storage_unavailable', `Storage is unavailable: ${detail}`, options);
  }
}

/**
 * A conditional write or copy did not hold: the object exists (create-only), or is not the version the caller
 * read (If-Match, a copy of a source that changed). The store is unchanged.
 */
export class PreconditionFailedError extends PoseStorageError {
  constructor(key: string, condition: string, options?: { cause?: unknown }) {
    super('precondition_failed', `${key}: ${condition}`, options);
  }
}

/** Another writer (an upload being published, a save or a delete) holds the pose's lock: retry shortly. */
export class PoseBusyError extends PoseStorageError {
  constructor(poseId: string) {
    super('pose_busy', `Pose ${poseId} is being changed by another request; retry shortly`);
  }
}

/** An object is larger than the caller allows; it was not downloaded. */
export class ObjectTooLargeError extends PoseStorageError {
  readonly size: number;

  constructor(key: string, size: number, maxBytes: number) {
    super('too_large', `${key} has ${formatCount(size)} bytes, more than the ${formatCount(maxBytes)} allowed`);
    this.size = size;
  }
}

/** Any failure as a PoseStorageError; anything unexpected becomes an `internal_error` (a bug, not the caller's). */
export function asStorageError(error: unknown): PoseStorageError {
  if (error instanceof PoseStorageError) return error;
  return new PoseStorageError('internal_error', 'Unexpected internal failure', { cause: error });
}

/** 144000000 -> "144,000,000": sizes in messages for people, readable at a glance. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** `text` as a sentence: with its full stop, unless it already ends a sentence (a library's message may). */
export function asSentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** Short, safe description of a value for error messages: never more than 40 characters of it. */
export function describeValue(value: unknown): string {
  if (typeof value !== 'string') {
    if (value === undefined) return 'nothing';
    if (value === null) return 'null';
    if (Array.isArray(value)) return 'an array';
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
  }
  if (value.length === 0) return 'an empty string';
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return value.length > 40 ? `${shown}, ${value.length} characters` : shown;
}

/**
 * The store does not enforce a condition the service's guarantees rest on (create-only or replace-if-version
 * writes): running on it would be silently unsafe, so nothing is written. Says which condition and why it matters.
 */
export class UnsafeStoreError extends StoreUnavailableError {
  constructor(where: string, missing: string, needed: string) {
    super(`the store at ${where} does not enforce ${missing}, which ${needed}: pose-storage refuses to write to it (R2, AWS S3 and Ceph RGW enforce it)`);
  }
}
