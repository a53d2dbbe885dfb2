import { lockExpired } from '../../lib/pose-lock.ts';
import { lockTtlMs, type LockTiming } from '../../lib/deadlines.ts';
import type { ObjectStore } from '../../lib/storage/object-store.ts';

/**
 * Waits until the store's own clock says the lock at `key` may be taken over (at most its lifetime and 3 s more:
 * S3 dates objects to the second), or until it is gone. What a test does instead of dating a lock in the past,
 * which no real S3 implementation allows.
 */
export async function untilLockExpired(store: ObjectStore, key: string, timing: LockTiming): Promise<void> {
  const deadline = performance.now() + lockTtlMs(timing) + 3000;
  for (;;) {
    const stored = await store.get(key);
    if (!stored || lockExpired(stored, timing)) return;
    if (performance.now() > deadline) throw new Error(`${key} did not expire by the store's clock`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A test's shortened lock timing: as given on s3rver and a directory, the hold four times longer on RGW. There
 * every PUT waits for RGW to push its event to the test's sink, and on a loaded machine (two cores shared with
 * the Ceph daemons and the other test files) a publish of some ten requests took over the 500 ms that s3rver
 * never comes near: the holder then failed at its deadline in tests where no deadline is meant to pass.
 */
export function testLockTiming(timing: LockTiming): LockTiming {
  return process.env.S3_TEST_BACKEND === 'rgw' ? { ...timing, holdMs: timing.holdMs * 4 } : timing;
}
