/**
 * The pose lock on both adapters (a directory, and the S3 test server enforcing conditional writes as S3 and
 * R2 do): one holder at a time, waiting and giving up, taking over an expired lock (one taker wins), a write
 * whose answer was lost recognised as our own, expiry judged by the store's clock whatever the holder's and the
 * taker's clocks say, the deadline on every request under the lock, and withLock's release.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../test/support/s3-server.ts';
import { testLockTiming, untilLockExpired } from '../test/support/lock-expiry.ts';
import { wrapStore } from '../test/support/wrap-store.ts';
import { PoseBusyError, PreconditionFailedError, StoreUnavailableError } from './errors.ts';
import { lockKey } from './layout.ts';
import { createLogger } from './logger.ts';
import type { LockTiming } from './deadlines.ts';
import { PoseLocks, readLock } from './pose-lock.ts';
import { DirectoryStore } from './storage/directory-store.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { S3Store } from './storage/s3-store.ts';

let server: S3TestServer;
let dir: string;
const quiet = createLogger(() => undefined);
let poseCounter = 0;
const freshPose = () => ({ generationId: 'glock', poseId: `p${++poseCounter}` });

beforeAll(async () => {
  server = await startS3Server();
  dir = await mkdtemp(path.join(os.tmpdir(), 'pose-lock-'));
});

afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

const adapters: Record<string, () => ObjectStore> = {
  directory: () => new DirectoryStore({ root: dir, uploadBaseUrl: 'http://127.0.0.1:1' }),
  's3 server': () => new S3Store(server.r2Config),
};

/** A lock of another holder, as found in the store. */
const foreignLock = (): Buffer => Buffer.from(JSON.stringify({ holder: 'another writer', token: 'not ours' }));

const readLockToken = (stored: { body: Buffer } | undefined) => stored && readLock(stored).token;

/** Short lock deadlines, for the tests that wait for one to pass (the S3 server's clock has whole seconds). */
const SHORT: LockTiming = testLockTiming({ holdMs: 300, marginMs: 700 });


describe.each(Object.keys(adapters))('the pose lock on the %s store', (adapter) => {
  const store = () => adapters[adapter]!();

  it('has one holder at a time: a second taker waits for the release', async () => {
    const locks = new PoseLocks(store(), quiet);
    const pose = freshPose();
    const first = await locks.acquire(pose, 'first', { waitMs: 1000 });
    let secondHeld = false;
    const second = locks.acquire(pose, 'second', { waitMs: 5000 }).then((lock) => {
      secondHeld = true;
      return lock;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(secondHeld).toBe(false);
    await store().delete([first.key]);
    expect((await second).key).toBe(lockKey(pose));
  });

  it('gives up with PoseBusyError once the wait is over, leaving the holder\'s lock alone', async () => {
    const pose = freshPose();
    await store().put(lockKey(pose), foreignLock(), { contentType: 'application/json' });
    const error = await new PoseLocks(store(), quiet).acquire(pose, 'late', { waitMs: 150 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoseBusyError);
    expect((await store().get(lockKey(pose)))?.body.toString()).toContain('another writer');
  });

  it('takes over an expired lock, and of many takers exactly one wins', async () => {
    const pose = freshPose();
    await store().put(lockKey(pose), foreignLock(), { contentType: 'application/json' });
    await untilLockExpired(store(), lockKey(pose), SHORT);
    const lines: string[] = [];
    const locks = new PoseLocks(store(), createLogger((line) => lines.push(line)), { timing: SHORT });
    const takers = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => locks.acquire(pose, `taker ${i}`, { waitMs: 300 })));
    expect(takers.filter((taker) => taker.status === 'fulfilled')).toHaveLength(1);
    for (const taker of takers) if (taker.status === 'rejected') expect(taker.reason).toBeInstanceOf(PoseBusyError);
    expect(lines.filter((line) => line.includes('Took over an expired lock'))).toHaveLength(1);
  });

  it('judges a lock by the store\'s clock: a live holder whose clock is 3 minutes behind keeps its lock', async () => {
    const pose = freshPose();
    const behind = new PoseLocks(store(), quiet, { now: () => Date.now() - 180_000 });
    const held = await behind.acquire(pose, 'slow clock', { waitMs: 0 });
    const error = await new PoseLocks(store(), quiet).acquire(pose, 'taker', { waitMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoseBusyError);
    expect(readLockToken(await store().get(lockKey(pose)))).toBe(readLockToken(await store().get(held.key)));
    held.release();
  });

  it('a dead holder whose clock is 3 minutes ahead blocks the pose no longer than the lock\'s lifetime', async () => {
    const pose = freshPose();
    const ahead = new PoseLocks(store(), quiet, { timing: SHORT, now: () => Date.now() + 180_000 });
    (await ahead.acquire(pose, 'fast clock, then dead', { waitMs: 0 })).release(); // never deletes its lock
    // Taken over within seconds of its 1 s lifetime (the wait gives up with PoseBusyError after 5), not after the
    // 3 minutes its holder's clock would claim.
    const lock = await new PoseLocks(store(), quiet, { timing: SHORT }).acquire(pose, 'taker', { waitMs: 5000 });
    expect(lock.key).toBe(lockKey(pose));
    lock.release();
  });

  it('waits, then gives up, when every take-over of an expired lock is refused (no tight loop against the store)', async () => {
    const pose = freshPose();
    const inner = store();
    await inner.put(lockKey(pose), foreignLock(), { contentType: 'application/json' });
    await untilLockExpired(inner, lockKey(pose), SHORT);
    let requests = 0;
    const refusing = wrapStore(inner, {
      get: (...args) => (requests++, inner.get(...args)),
      put: (key, body, options) => {
        requests++;
        return options.ifMatch === undefined ? inner.put(key, body, options) : Promise.reject(new PreconditionFailedError(key, 'refused'));
      },
    });
    const error = await new PoseLocks(refusing, quiet, { timing: SHORT }).acquire(pose, 'taker', { waitMs: 500 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoseBusyError);
    // Backing off from 10 ms to 400 ms: a few dozen requests in half a second, not thousands.
    expect(requests).toBeLessThan(60);
  });

  it('recognises its own lock when the write landed but its answer was lost (the SDK retried it)', async () => {
    const inner = store();
    const retrying = wrapStore(inner, {
      put: async (key, body, options) => {
        await inner.put(key, body, options); // the first attempt lands...
        return inner.put(key, body, options); // ...its answer is lost and the retry fails its own condition
      },
    });
    const pose = freshPose();
    const lock = await new PoseLocks(retrying, quiet).acquire(pose, 'unlucky', { waitMs: 100 });
    expect(lock.key).toBe(lockKey(pose));
  });
});

describe('holding a lock', () => {
  it('stops a holder from writing once its deadline passed', async () => {
    const locks = new PoseLocks(adapters.directory!(), quiet, { timing: SHORT });
    const lock = await locks.acquire(freshPose(), 'slow', { waitMs: 0 });
    expect(() => lock.assertHeld()).not.toThrow();
    await new Promise((resolve) => setTimeout(resolve, SHORT.holdMs + 50));
    expect(() => lock.assertHeld()).toThrow(StoreUnavailableError);
    await expect(lock.store.put('poses/glock/late.png', Buffer.from('x'), { contentType: 'image/png' })).rejects.toThrow(`reached its ${SHORT.holdMs} ms deadline`);
    expect(await adapters.directory!().head('poses/glock/late.png')).toBeUndefined();
    lock.release();
  });

  it('withLock deletes what the work asks in one request with the lock, and releases the lock when the work fails', async () => {
    const inner = adapters.directory!();
    const deletes: string[][] = [];
    const locks = new PoseLocks(wrapStore(inner, { delete: (keys) => (deletes.push([...keys]), inner.delete(keys)) }), quiet);
    const pose = freshPose();
    await inner.put('poses/glock/leftover.png', Buffer.from('x'), { contentType: 'image/png' });
    expect(await locks.withLock(pose, 'ok', { waitMs: 0 }, async () => ({ result: 42, remove: ['poses/glock/leftover.png'] }))).toBe(42);
    expect(deletes).toEqual([['poses/glock/leftover.png', lockKey(pose)]]);

    await expect(locks.withLock(pose, 'failing', { waitMs: 0 }, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await inner.head(lockKey(pose))).toBeUndefined();
  });
});
