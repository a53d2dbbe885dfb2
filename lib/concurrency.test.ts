/** forEachConcurrent: the bound, pulling lazily, errors after the runs in flight, abort. */
import { describe, expect, it } from 'vitest';
import { forEachConcurrent } from './concurrency.ts';

const tick = (ms = 1) => new Promise((resolve) => setTimeout(resolve, ms));

async function* numbers(count: number, pulled: number[] = []): AsyncGenerator<number> {
  for (let i = 0; i < count; i++) {
    pulled.push(i);
    yield i;
  }
}

describe('forEachConcurrent', () => {
  it('runs every item, never more than `concurrency` at a time', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachConcurrent(numbers(50), 4, async (n) => {
      most = Math.max(most, ++running);
      await tick();
      seen.push(n);
      running--;
    });
    expect(most).toBe(4);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('pulls items only as workers free up', async () => {
    const pulled: number[] = [];
    let maxAhead = 0;
    let finished = 0;
    await forEachConcurrent(numbers(30, pulled), 3, async () => {
      maxAhead = Math.max(maxAhead, pulled.length - finished);
      await tick();
      finished++;
    });
    expect(maxAhead).toBeLessThanOrEqual(3);
  });

  it('after a failure starts nothing new, waits for the runs in flight, then throws the first error', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const error = await forEachConcurrent(numbers(100), 3, async (n) => {
      started.push(n);
      if (n === 4) throw new Error('boom');
      await tick(5);
      finished.push(n);
    }).catch((caught: unknown) => caught);
    expect((error as Error).message).toBe('boom');
    expect(started.length).toBeLessThan(10);
    expect(finished.sort((a, b) => a - b)).toEqual(started.filter((n) => n !== 4).sort((a, b) => a - b));
  });

  it('throws what the iterable throws', async () => {
    async function* broken(): AsyncGenerator<number> {
      yield 1;
      throw new Error('listing failed');
    }
    await expect(forEachConcurrent(broken(), 2, async () => {
      await tick();
    })).rejects.toThrow('listing failed');
  });

  it('stops taking items once the signal is aborted, and closes the iterable', async () => {
    const controller = new AbortController();
    let closed = false;
    async function* items(): AsyncGenerator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const done: number[] = [];
    await forEachConcurrent(items(), 2, async (n) => {
      await tick();
      done.push(n);
      if (done.length === 10) controller.abort();
    }, controller.signal);
    expect(done.length).toBeGreaterThanOrEqual(10);
    expect(done.length).toBeLessThanOrEqual(11);
    expect(closed).toBe(true);
  });

  it('refuses a concurrency below 1', async () => {
    await expect(forEachConcurrent([1], 0, async () => {
      await tick();
    })).rejects.toThrow(RangeError);
  });
});
