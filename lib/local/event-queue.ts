import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.ts';

/**
 * Local mode's object-created events: each finished upload's key is delivered to the thumbnail handler,
 * retried with exponential backoff like an asynchronous Lambda invocation. A key whose retries run out
 * stays staged and is delivered again on the next start, so nothing uploaded is lost.
 */
export interface EventQueueOptions {
  deliver: (key: string) => Promise<void>;
  logger: Logger;
  /** Deliveries running at once. */
  concurrency?: number;
  attempts?: number;
  /** Delay before the 2nd attempt; doubled each time after. */
  backoffMs?: number;
}

export class EventQueue {
  readonly #options: Required<EventQueueOptions>;
  readonly #waiting: string[] = [];
  readonly #queued = new Set<string>();
  #running = 0;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(options: EventQueueOptions) {
    this.#options = { concurrency: 2, attempts: 5, backoffMs: 200, ...options };
  }

  /** Queues a key; a key already waiting or in flight is not queued twice. */
  enqueue(key: string): void {
    if (this.#closed || this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#waiting.push(key);
    this.#pump();
  }

  get size(): number {
    return this.#queued.size;
  }

  /** Resolves when nothing is waiting or in flight. */
  drained(): Promise<void> {
    return this.#queued.size === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Takes no new keys; keys not yet started stay staged for the next start. Resolves when in-flight work ends. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const key of this.#waiting.splice(0)) this.#queued.delete(key);
    if (this.#queued.size > 0) await this.drained();
  }

  #pump(): void {
    while (this.#running < this.#options.concurrency && this.#waiting.length > 0) {
      const key = this.#waiting.shift()!;
      this.#running++;
      void this.#deliver(key).finally(() => {
        this.#running--;
        this.#queued.delete(key);
        if (this.#queued.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
        this.#pump();
      });
    }
  }

  async #deliver(key: string): Promise<void> {
    const { deliver, attempts, backoffMs, logger } = this.#options;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await deliver(key);
        return;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (attempt === attempts || this.#closed) {
          logger.error(`[Storage] Giving up on upload for now, it stays staged: ${message}`, { key, attempts: attempt });
          return;
        }
        logger.warn(`[Storage] Upload processing failed, retrying: ${message}`, { key, attempt });
        await sleep(backoffMs * 2 ** (attempt - 1));
      }
    }
  }
}
