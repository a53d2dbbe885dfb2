import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod/mini';
import { LOCK_TIMING, lockTtlMs, type LockTiming } from './deadlines.ts';
import { PoseBusyError, PreconditionFailedError, StoreUnavailableError } from './errors.ts';
import { parseJson } from './json.ts';
import { lockKey, type PoseRef } from './layout.ts';
import type { Logger } from './logger.ts';
import { withSignal, type ObjectStore, type StoredObject } from './storage/object-store.ts';

/**
 * One writer per pose at a time, across every process (Lambda runs many): a lock object created with a
 * conditional write (`If-None-Match: *`), which S3, R2 and the directory store all refuse when it exists.
 * Publishing an upload, saving a pose and deleting one all hold it while they change the pose's files, so
 * an image never meets another upload's thumbnail and a delete never races a publication.
 *
 * Fencing, by construction (lib/deadlines.ts): the holder's work gets only `lock.store`, whose every request
 * carries an abort signal that fires `holdMs` after the holder sent the write that created its lock, so none
 * of its requests, retries included, is still running after that. A lock is taken over only once the store's
 * own clock says it was written `holdMs + marginMs` ago (its Last-Modified against the Date of the answer that
 * read it), so neither the holder's clock nor the taker's is trusted: a holder whose clock is minutes behind
 * keeps its lock, and a dead one whose clock is minutes ahead blocks the pose no longer than anyone's. The
 * take-over is a write conditional on the version read (If-Match), so two takers cannot both win.
 */
const lockBodySchema = z.object({ holder: z.string(), token: z.optional(z.string()) });

export interface PoseLock {
  readonly pose: PoseRef;
  readonly key: string;
  /** The store, every request of which ends by the lock's deadline: all the work under the lock uses it. */
  readonly store: ObjectStore;
  /** Throws (a retryable error) once the lock's deadline has passed: nothing more may be written under it. */
  assertHeld(): void;
}

export interface AcquireOptions {
  /** How long to wait for another holder to finish before giving up with PoseBusyError. */
  waitMs: number;
}

export interface PoseLocksOptions {
  /** Default: lib/deadlines.ts's. */
  timing?: LockTiming;
  /** This host's clock: only written into the lock for people (when it was taken), never used to judge it. */
  now?: () => number;
}

export class PoseLocks {
  readonly #store: ObjectStore;
  readonly #logger: Logger;
  readonly #timing: LockTiming;
  readonly #now: () => number;

  constructor(store: ObjectStore, logger: Logger, options: PoseLocksOptions = {}) {
    this.#store = store;
    this.#logger = logger;
    this.#timing = options.timing ?? LOCK_TIMING;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Runs `work` holding the pose's lock. `work` returns its result and the keys to delete when it is done;
   * they are deleted in one request with the lock itself, under the lock's deadline. If `work` fails, the lock
   * is released and the error rethrown.
   */
  async withLock<T>(
    pose: PoseRef,
    holder: string,
    options: AcquireOptions,
    work: (lock: PoseLock) => Promise<{ result: T; remove: readonly string[] }>,
  ): Promise<T> {
    const lock = await this.acquire(pose, holder, options);
    try {
      let outcome: { result: T; remove: readonly string[] };
      try {
        outcome = await work(lock);
      } catch (error) {
        await lock.store.delete([lock.key]).catch(() => undefined); // a lock left behind expires anyway
        throw error;
      }
      try {
        await lock.store.delete([...outcome.remove, lock.key]);
      } catch (error) {
        // The work is done and the caller retries the cleanup; let the next attempt in rather than wait for
        // the lock to expire (if the store is down, this fails too and the lock expires).
        await lock.store.delete([lock.key]).catch(() => undefined);
        throw error;
      }
      return outcome.result;
    } finally {
      lock.release();
    }
  }

  /**
   * Takes the pose's lock, waiting up to `waitMs` for another holder. The caller deletes `lock.key` through
   * `lock.store` when done, then calls `release()` (which stops the deadline's timer).
   */
  async acquire(pose: PoseRef, holder: string, { waitMs }: AcquireOptions): Promise<PoseLock & { release(): void }> {
    const waitUntil = performance.now() + waitMs;
    // Tells our own lock from another's: a write whose answer was lost, retried by the SDK, fails its condition
    // against itself.
    const token = randomUUID();
    const body = Buffer.from(JSON.stringify({ holder, token, acquiredAt: new Date(this.#now()).toISOString() }));
    for (let attempt = 0; ; attempt++) {
      const created = await this.#claim(pose, body, token, { ifNoneMatch: '*' });
      if ('lock' in created) return created.lock;
      const { current } = created;
      if (!current) continue; // released meanwhile: try again at once
      if (this.expired(current)) {
        const taken = await this.#claim(pose, body, token, { ifMatch: current.etag });
        if ('lock' in taken) {
          this.#logger.warn(`[Storage] Took over an expired lock of pose ${pose.poseId}`, { ...pose, holder });
          return taken.lock;
        }
        if (!taken.current) continue; // released meanwhile: try again at once
        // Another taker won: wait for it as for any holder (without the pause, a store that refused every
        // take-over would be asked in a tight loop for the whole wait).
      }
      if (performance.now() >= waitUntil) throw new PoseBusyError(pose.poseId);
      // 10 ms doubling to 400 ms, with jitter so that waiters do not retry in step.
      await sleep(Math.min(400, 10 * 2 ** attempt) * (0.5 + Math.random() / 2));
    }
  }

  /**
   * Writes the lock under a deadline that runs from before the write (the store dates the lock later), and
   * returns it; or, when the condition fails, the lock that is there instead.
   */
  async #claim(
    pose: PoseRef,
    body: Buffer,
    token: string,
    conditions: { ifNoneMatch: '*' } | { ifMatch: string },
  ): Promise<{ lock: PoseLock & { release(): void } } | { current: StoredObject | undefined }> {
    const lock = this.#deadlined(pose, lockKey(pose));
    try {
      if (await this.#tryWrite(lock.store, lock.key, body, conditions)) return { lock };
      const current = await this.#store.get(lock.key);
      // A write that landed but whose answer was lost, retried by the SDK into its own condition, is ours.
      if (current && readLock(current).token === token) return { lock };
      lock.release();
      return { current };
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /** Whether a stored lock of these locks may be taken over (lockExpired, with their timing). */
  expired(stored: Pick<StoredObject, 'lastModified' | 'storeDate'>): boolean {
    return lockExpired(stored, this.#timing);
  }

  /** A lock whose store aborts every request `holdMs` from now. */
  #deadlined(pose: PoseRef, key: string): PoseLock & { release(): void } {
    const { holdMs } = this.#timing;
    const controller = new AbortController();
    const expired = new StoreUnavailableError(`the lock of pose ${pose.poseId} reached its ${holdMs} ms deadline; the work will be retried`);
    const timer = setTimeout(() => controller.abort(expired), holdMs);
    timer.unref(); // a deadline never keeps a process alive
    const { signal } = controller;
    return {
      pose,
      key,
      store: withSignal(this.#store, signal),
      assertHeld: () => {
        if (signal.aborted) throw expired;
      },
      release: () => clearTimeout(timer),
    };
  }

  async #tryWrite(store: ObjectStore, key: string, body: Buffer, conditions: { ifNoneMatch: '*' } | { ifMatch: string }): Promise<boolean> {
    try {
      await store.put(key, body, { contentType: 'application/json', ...conditions });
      return true;
    } catch (error) {
      if (error instanceof PreconditionFailedError) return false;
      throw error;
    }
  }
}

/** A stored lock's holder token (undefined when its body cannot be read as a lock). */
export function readLock(stored: { body: Buffer }): { token?: string | undefined } {
  const parsed = lockBodySchema.safeParse(parseJson(stored.body.toString('utf8')));
  return parsed.success ? { token: parsed.data.token } : {};
}

/** Whether a stored lock may be taken over: written longer than its lifetime ago, by the store's clock alone. */
export function lockExpired(stored: Pick<StoredObject, 'lastModified' | 'storeDate'>, timing: LockTiming = LOCK_TIMING): boolean {
  return stored.storeDate.getTime() - stored.lastModified.getTime() > lockTtlMs(timing);
}
