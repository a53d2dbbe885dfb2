import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod/mini';
import { PoseBusyError, PreconditionFailedError, StoreUnavailableError } from './errors.ts';
import { parseJson } from './json.ts';
import { lockKey, type PoseRef } from './layout.ts';
import type { Logger } from './logger.ts';
import type { ObjectStore } from './storage/object-store.ts';

/**
 * One writer per pose at a time, across every process (Lambda runs many): a lock object created with a
 * conditional write (`If-None-Match: *`), which S3, R2 and the directory store all refuse when it exists.
 * Publishing an upload, saving a pose and deleting one all hold it while they change the pose's files, so
 * an image never meets another upload's thumbnail and a delete never races a publication.
 *
 * A holder that dies leaves its lock behind: after LOCK_TTL_MS anyone may take it over, with a write
 * conditional on the dead lock's version (If-Match), so two takers cannot both win. Holders only write a few
 * objects under a lock; `assertHeld` stops one that took too long from writing on once others may take over.
 */
export const LOCK_TTL_MS = 120_000;

/** A holder stops writing past half the TTL, leaving a wide margin before anyone takes the lock over. */
const HOLD_LIMIT_MS = LOCK_TTL_MS / 2;

const lockBodySchema = z.object({ holder: z.string(), token: z.optional(z.string()), expiresAt: z.iso.datetime() });

export interface PoseLock {
  readonly pose: PoseRef;
  readonly key: string;
  /** Throws (a retryable error) when the lock has been held too long to write under it safely. */
  assertHeld(): void;
}

export interface AcquireOptions {
  /** How long to wait for another holder to finish before giving up with PoseBusyError. */
  waitMs: number;
}

export class PoseLocks {
  readonly #store: ObjectStore;
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(store: ObjectStore, logger: Logger, now: () => number = Date.now) {
    this.#store = store;
    this.#logger = logger;
    this.#now = now;
  }

  /**
   * Runs `work` holding the pose's lock. `work` returns its result and the keys to delete when it is done;
   * they are deleted in one request with the lock itself. If `work` fails, the lock is released and the
   * error rethrown.
   */
  async withLock<T>(
    pose: PoseRef,
    holder: string,
    options: AcquireOptions,
    work: (lock: PoseLock) => Promise<{ result: T; remove: readonly string[] }>,
  ): Promise<T> {
    const lock = await this.acquire(pose, holder, options);
    let outcome: { result: T; remove: readonly string[] };
    try {
      outcome = await work(lock);
    } catch (error) {
      await this.#store.delete([lock.key]).catch(() => undefined); // a lock left behind expires anyway
      throw error;
    }
    try {
      await this.#store.delete([...outcome.remove, lock.key]);
    } catch (error) {
      // The work is done and the caller retries the cleanup; let the next attempt in rather than wait for
      // the lock to expire (if the store is down, this fails too and the lock expires).
      await this.#store.delete([lock.key]).catch(() => undefined);
      throw error;
    }
    return outcome.result;
  }

  /** Takes the pose's lock, waiting up to `waitMs` for another holder. The caller deletes `lock.key` when done. */
  async acquire(pose: PoseRef, holder: string, { waitMs }: AcquireOptions): Promise<PoseLock> {
    const key = lockKey(pose);
    const deadline = this.#now() + waitMs;
    // Tells our own lock from another's: a write whose answer was lost, retried by the SDK, fails its condition
    // against itself.
    const token = randomUUID();
    for (let attempt = 0; ; attempt++) {
      const acquiredAt = this.#now();
      const body = Buffer.from(JSON.stringify({ holder, token, expiresAt: new Date(acquiredAt + LOCK_TTL_MS).toISOString() }));
      const lock: PoseLock = {
        pose,
        key,
        assertHeld: () => {
          if (this.#now() - acquiredAt > HOLD_LIMIT_MS) {
            throw new StoreUnavailableError(`held the lock of pose ${pose.poseId} for too long; the work will be retried`);
          }
        },
      };
      if (await this.#tryWrite(key, body, { ifNoneMatch: '*' })) return lock;
      const current = await this.#store.get(key);
      if (!current) continue; // released meanwhile: try again at once
      const held = readLock(current);
      if (held.token === token) return lock;
      if (this.#now() > held.expiresAt) {
        if (await this.#tryWrite(key, body, { ifMatch: current.etag })) {
          this.#logger.warn(`[Storage] Took over an expired lock of pose ${pose.poseId}`, { ...pose, holder });
          return lock;
        }
        continue;
      }
      if (this.#now() >= deadline) throw new PoseBusyError(pose.poseId);
      // 10 ms doubling to 400 ms, with jitter so that waiters do not retry in step.
      await sleep(Math.min(400, 10 * 2 ** attempt) * (0.5 + Math.random() / 2));
    }
  }

  async #tryWrite(key: string, body: Buffer, conditions: { ifNoneMatch: '*' } | { ifMatch: string }): Promise<boolean> {
    try {
      await this.#store.put(key, body, { contentType: 'application/json', ...conditions });
      return true;
    } catch (error) {
      if (error instanceof PreconditionFailedError) return false;
      throw error;
    }
  }
}

/** A stored lock's token and expiry; a lock whose body cannot be read expires LOCK_TTL_MS after it was written. */
export function readLock(stored: { body: Buffer; lastModified: Date }): { token?: string | undefined; expiresAt: number } {
  const parsed = lockBodySchema.safeParse(parseJson(stored.body.toString('utf8')));
  return parsed.success
    ? { token: parsed.data.token, expiresAt: Date.parse(parsed.data.expiresAt) }
    : { expiresAt: stored.lastModified.getTime() + LOCK_TTL_MS };
}
