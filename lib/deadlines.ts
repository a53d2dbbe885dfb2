/**
 * Every time limit a pose's writers keep, in one place and derived from one another, so that the fencing
 * argument of RELIABILITY.md holds by construction: no store request made under a pose's lock can land after
 * the lock may be taken over.
 *
 *   a holder's requests          all end (aborted, the SDK's retries and backoff included) LOCK_HOLD_MS after the
 *                                holder sent the request that created its lock
 *   the lock may be taken over   LOCK_TTL_MS after the store wrote it, by the store's own clock
 *                                (its Last-Modified against its Date), never by a host's
 *   between the two              LOCK_MARGIN_MS, for what no deadline can bound: the store's clock resolution
 *                                (Date and Last-Modified are whole seconds, up to 2 s of error between them),
 *                                disagreement between the clocks of the store's own nodes, and a request whose
 *                                last byte left before its deadline still being committed by the store
 *
 * The functions' timeouts are derived from these in infra/ (a function never runs shorter than the work it
 * starts under a lock could take), and a function stopped by its timeout takes its requests with it.
 */

/**
 * How long a holder may write under a pose's lock: a few writes of at most one image (PUBLISHED_MAX_BYTES' 64 MiB
 * by default) and its thumbnail, each retried by the SDK.
 */
export const LOCK_HOLD_MS = 20_000;

/** How many times the S3 client sends one request (the first and two retries), each on a working connection. */
export const STORE_ATTEMPTS = 3;

/**
 * A store connection on which no byte moves for this long (a request lost on the way, a store that stopped
 * answering) is abandoned, and the request retried on a new one: three silent attempts and the SDK's backoff
 * fit in LOCK_HOLD_MS, so one lost request costs seconds and not the holder's whole hold. An upload's body never
 * goes silent while it is sent. The trade-off: a store that takes longer than this to answer a copy of
 * PUBLISHED_MAX_BYTES (not measured on R2 from here) would fail that copy as unavailable, and its event be retried.
 */
export const STORE_SILENCE_MS = 5_000;

/** What separates a holder's last request from a take-over (see above). */
export const LOCK_MARGIN_MS = 15_000;

/** A pose's lock may be taken over this long after the store wrote it. */
export const LOCK_TTL_MS = LOCK_HOLD_MS + LOCK_MARGIN_MS;

/** How long a save, a delete or a repair waits for another writer of the pose before answering "busy". */
export const LOCK_WAIT_MS = 10_000;

/** How long an upload waits for another writer of its pose: less, as its event is retried with backoff. */
export const UPLOAD_LOCK_WAIT_MS = 5_000;

/** The timing a pose's locks keep: the constants above, shortened by tests. */
export interface LockTiming {
  holdMs: number;
  marginMs: number;
}

export const LOCK_TIMING: LockTiming = { holdMs: LOCK_HOLD_MS, marginMs: LOCK_MARGIN_MS };

export const lockTtlMs = (timing: LockTiming): number => timing.holdMs + timing.marginMs;

/**
 * An upload still staged this long after its URL expired has lost its object-created event (the queues retry
 * for minutes): `verify` reports it and `verify --repair` processes it.
 */
export const LOST_UPLOAD_GRACE_SECONDS = 3600;

/**
 * How long a lost upload stays staged after verify first reports it, before the bucket's lifecycle rule deletes
 * it: a week, so that a weekly `verify --repair` always finds it first.
 */
export const LOST_UPLOAD_REPAIR_DAYS = 7;

/** When a staged upload counts as lost: its URL's lifetime (UPLOAD_URL_TTL_SECONDS) plus the grace, from its issue. */
export const lostUploadAfterMs = (uploadUrlTtlSeconds: number): number => (uploadUrlTtlSeconds + LOST_UPLOAD_GRACE_SECONDS) * 1000;

/**
 * The age in days at which the lifecycle rule deletes staged objects (infra/storage.ts): an upload lands before
 * its URL expires, so it is deleted at least LOST_UPLOAD_REPAIR_DAYS after verify can first find it lost.
 */
export const stagingExpiryDays = (uploadUrlTtlSeconds: number): number =>
  Math.ceil((uploadUrlTtlSeconds + LOST_UPLOAD_GRACE_SECONDS) / 86_400) + LOST_UPLOAD_REPAIR_DAYS;

/**
 * The longest reading and validating one upload may take in the thumbnail function: at UPLOAD_MAX_BYTES' 512 MiB
 * and MAX_INPUT_PIXELS' 50 MP on one vCPU (a 50 MP noisy WebP converted to PNG took 14 s here; BENCHMARKS.md).
 */
export const UPLOAD_RENDER_MS = 25_000;

/** One upload's worst case in the thumbnail function: read and render it, wait for its pose's lock, publish under it. */
export const UPLOAD_BUDGET_MS = UPLOAD_RENDER_MS + UPLOAD_LOCK_WAIT_MS + LOCK_HOLD_MS;

/** An HTTP function's worst case: a delete waits for the pose's lock, then removes it under the lock. */
export const HTTP_BUDGET_MS = LOCK_WAIT_MS + LOCK_HOLD_MS;

/**
 * How long the R2 forwarding Worker may hold the Lambda Invoke call of a batch open (functions/r2-forwarder.ts):
 * Cloudflare documents a 120 s proxy read timeout for a Worker's subrequest, and failures from about 100 s are
 * reported. The thumbnail function's R2 batches are sized to answer well within it (infra/function-timing.ts).
 */
export const WORKER_INVOKE_LIMIT_SECONDS = 90;
