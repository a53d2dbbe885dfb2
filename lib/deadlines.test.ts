import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LOCK_HOLD_MS, LOCK_MARGIN_MS, LOCK_TTL_MS, LOST_UPLOAD_REPAIR_DAYS, lostUploadAfterMs, stagingExpiryDays, STORE_ATTEMPTS, STORE_SILENCE_MS } from './deadlines.ts';

const DAY_MS = 86_400_000;

describe('deadlines', () => {
  it('a lock outlives every request of its holder by the margin', () => {
    expect(LOCK_TTL_MS).toBe(LOCK_HOLD_MS + LOCK_MARGIN_MS);
    // The margin covers the store's whole-second clocks (Date and Last-Modified: up to 2 s) several times over.
    expect(LOCK_MARGIN_MS).toBeGreaterThanOrEqual(5 * 2000);
  });

  it('every attempt of a request gone silent is abandoned within a lock hold, with room for the SDK backoff', () => {
    // The SDK's standard strategy backs off a jittered base·2^retry: 100 ms for transient errors, 500 ms for a
    // throttling answer, so two retries wait at most 0.5 + 1 + 2 s in all.
    expect(STORE_ATTEMPTS * STORE_SILENCE_MS + 3_000).toBeLessThanOrEqual(LOCK_HOLD_MS);
  });

  it('a lost upload is staged at least LOST_UPLOAD_REPAIR_DAYS after verify can find it lost, for any URL lifetime', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 * 24 * 3600 }), fc.integer({ min: 0, max: 7 * 24 * 3600 }), (ttlSeconds, uploadedAfterIssueSeconds) => {
        // An upload lands while its URL is valid; the lifecycle rule counts from the upload, verify from the issue.
        const uploaded = Math.min(uploadedAfterIssueSeconds, ttlSeconds) * 1000;
        const expires = uploaded + stagingExpiryDays(ttlSeconds) * DAY_MS;
        expect(expires - lostUploadAfterMs(ttlSeconds)).toBeGreaterThanOrEqual(LOST_UPLOAD_REPAIR_DAYS * DAY_MS);
      }),
    );
  });
});
