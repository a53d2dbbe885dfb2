import type { Logger } from '../logger.ts';

/**
 * Local mode's object-created events: each finished upload's key is delivered to the thumbnail handler. A
 * failed delivery is retried with capped exponential backoff for as long as the server runs (a full disk
 * freed a minute later still ends `ready`), and a periodic sweep of the staging area picks up any staged
 * upload that is not queued. Nothing staged stays pending while the server runs; what a stop leaves staged is
 * delivered at the next start.
 */
export interface EventQueueOptions {
  deliver: (key: string) => Promise<void>;
  logger: Logger;
  /** Every staged key, for the sweeps (sweep() and the periodic one). */
  stagedKeys: () => AsyncIterable<string>;
  /** Deliveries running at once. */
  concurrency?: number;
  /** Delay before the 2nd attempt; doubled each time after, up to maxBackoffMs (each with jitter). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Time between two sweeps of the staging area. */
  sweepIntervalMs?: number;
}

/** A key the queue holds: waiting for a slot, being delivered, or waiting for its next attempt. */
interface Entry {
  state: 'waiting' | 'running' | 'retrying';
  /** Failed attempts since the last success. */
  failures: number;
  /** Enqueued again while running: the object may have been written again, so deliver once more. */
  again: boolean;
  retry?: NodeJS.Timeout | undefined;
}

export class EventQueue {
  readonly #options: Required<EventQueueOptions>;
  readonly #entries = new Map<string, Entry>();
  readonly #waiting: string[] = [];
  readonly #sweeper: NodeJS.Timeout;
  #running = 0;
  #sweeping: Promise<number> | undefined;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(options: EventQueueOptions) {
    this.#options = { concurrency: 2, backoffMs: 200, maxBackoffMs: 30_000, sweepIntervalMs: 60_000, ...options };
    this.#sweeper = setInterval(() => void this.sweep(), this.#options.sweepIntervalMs).unref();
  }

  /**
   * An object-created event for `key`. A key already waiting is not queued twice; a key being delivered is
   * delivered once more after the current delivery (however many events arrive meanwhile).
   */
  enqueue(key: string): void {
    if (this.#closed) return;
    const entry = this.#entries.get(key);
    if (entry) {
      if (entry.state === 'running') entry.again = true;
      return;
    }
    this.#entries.set(key, { state: 'waiting', failures: 0, again: false });
    this.#waiting.push(key);
    this.#pump();
  }

  /**
   * Enqueues every staged upload the queue does not hold (one whose event was lost); returns how many.
   * A listing that fails is logged and left to the next sweep.
   */
  sweep(): Promise<number> {
    // One listing at a time: a sweep of a large staging area may outlast the interval.
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async #sweep(): Promise<number> {
    let found = 0;
    try {
      for await (const key of this.#options.stagedKeys()) {
        if (this.#closed) break;
        if (this.#entries.has(key)) continue;
        this.enqueue(key);
        found++;
      }
    } catch (error) {
      this.#options.logger.warn(`[Storage] Could not list the staged uploads, trying again at the next sweep: ${messageOf(error)}`);
    }
    return found;
  }

  /** Keys waiting, being delivered or waiting for a retry. */
  get size(): number {
    return this.#entries.size;
  }

  /** Resolves when nothing is waiting, in flight or due for a retry. */
  drained(): Promise<void> {
    return this.#entries.size === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Takes no new keys and stops sweeping; keys not being delivered stay staged for the next start. Resolves
   * when the deliveries in flight end.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const [key, entry] of this.#entries) {
      if (entry.state === 'running') continue;
      clearTimeout(entry.retry);
      this.#entries.delete(key);
    }
    this.#waiting.length = 0;
    this.#settle();
    await this.drained();
  }

  #pump(): void {
    while (this.#running < this.#options.concurrency && this.#waiting.length > 0) {
      const key = this.#waiting.shift()!;
      const entry = this.#entries.get(key)!;
      entry.state = 'running';
      this.#running++;
      void this.#deliver(key, entry).finally(() => {
        this.#running--;
        this.#settle();
        this.#pump();
      });
    }
  }

  async #deliver(key: string, entry: Entry): Promise<void> {
    const { deliver, logger } = this.#options;
    let failure: unknown;
    try {
      await deliver(key);
    } catch (error) {
      failure = error ?? new Error('delivery failed');
    }
    if (this.#closed) {
      if (failure !== undefined) logger.warn(`[Storage] Upload processing failed while stopping, it stays staged: ${messageOf(failure)}`, { key });
      this.#entries.delete(key);
      return;
    }
    if (failure === undefined) {
      if (!entry.again) return void this.#entries.delete(key);
      // A new event arrived during the delivery: run once more, as a fresh event.
      this.#entries.set(key, { state: 'waiting', failures: 0, again: false });
      this.#waiting.push(key);
      return;
    }
    // The retry also covers an event that arrived meanwhile: it reads the object as it is then.
    entry.failures++;
    entry.again = false;
    entry.state = 'retrying';
    const delayMs = this.#retryDelay(entry.failures);
    logger.warn(`[Storage] Upload processing failed, retrying in ${formatSeconds(delayMs)}: ${messageOf(failure)}`, {
      key,
      attempt: entry.failures,
      retryInMs: delayMs,
    });
    entry.retry = setTimeout(() => {
      entry.retry = undefined;
      entry.state = 'waiting';
      this.#waiting.push(key);
      this.#pump();
    }, delayMs).unref(); // the server keeps the process alive, not a retry
  }

  /** Exponential, capped, with jitter (half to all of the step) so that many failing keys do not retry in step. */
  #retryDelay(failures: number): number {
    const { backoffMs, maxBackoffMs } = this.#options;
    const step = Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(failures - 1, 30));
    return Math.round(step / 2 + Math.random() * (step / 2));
  }

  #settle(): void {
    if (this.#entries.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
