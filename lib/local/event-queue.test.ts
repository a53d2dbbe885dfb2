import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { EventQueue, type EventQueueOptions } from './event-queue.ts';

interface Line {
  level: string;
  message: string;
  key?: string;
  attempt?: number;
  retryInMs?: number;
}

/** A deliver function whose calls can be held open and released one by one. */
function gatedDeliver() {
  const calls: string[] = [];
  const gates: { key: string; release: (error?: Error) => void }[] = [];
  const deliver = (key: string) =>
    new Promise<void>((resolve, reject) => {
      calls.push(key);
      gates.push({ key, release: (error) => (error ? reject(error) : resolve()) });
    });
  return { calls, gates, deliver };
}

/** Resolves once `condition` holds, checked after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

const queues: EventQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((queue) => queue.close()));
});

function makeQueue(options: Partial<EventQueueOptions> & Pick<EventQueueOptions, 'deliver'>): { queue: EventQueue; lines: Line[] } {
  const lines: Line[] = [];
  const queue = new EventQueue({
    logger: createLogger((line) => lines.push(JSON.parse(line) as Line)),
    stagedKeys: async function* () {},
    backoffMs: 1,
    ...options,
  });
  queues.push(queue);
  return { queue, lines };
}

describe('EventQueue retries', () => {
  it('keeps retrying a failing delivery past any attempt count, logging each cause, until it succeeds', async () => {
    let failuresLeft = 12; // the queue used to give up after 5 attempts
    const calls: string[] = [];
    const { queue, lines } = makeQueue({
      maxBackoffMs: 8,
      deliver: async (key) => {
        calls.push(key);
        if (failuresLeft-- > 0) throw new Error('No space left on the device holding /srv/uploads');
      },
    });
    queue.enqueue('staging/g/p/1');
    await queue.drained();

    expect(calls).toEqual(Array.from({ length: 13 }, () => 'staging/g/p/1'));
    const retries = lines.filter((line) => line.message.startsWith('[Storage] Upload processing failed, retrying'));
    expect(retries).toHaveLength(12);
    for (const [index, line] of retries.entries()) {
      expect(line).toMatchObject({ level: 'warn', key: 'staging/g/p/1', attempt: index + 1 });
      expect(line.message).toContain('No space left on the device holding /srv/uploads');
      // 1, 2, 4, 8, 8, ... ms: doubled and capped, each with jitter between half and all of the step.
      const step = Math.min(8, 2 ** index);
      expect(line.retryInMs).toBeGreaterThanOrEqual(step / 2);
      expect(line.retryInMs).toBeLessThanOrEqual(step);
    }
    expect(lines.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('frees its slot while a key waits for its retry: other keys are delivered meanwhile', async () => {
    const delivered: string[] = [];
    const { queue } = makeQueue({
      concurrency: 1,
      backoffMs: 60_000, // the failing key waits a minute; the others must not
      deliver: async (key) => {
        if (key === 'staging/g/bad/1') throw new Error('store unavailable');
        delivered.push(key);
      },
    });
    queue.enqueue('staging/g/bad/1');
    queue.enqueue('staging/g/a/1');
    queue.enqueue('staging/g/b/1');
    await until(() => delivered.length === 2);
    expect(delivered).toEqual(['staging/g/a/1', 'staging/g/b/1']);
    expect(queue.size).toBe(1); // the failing key is held for its retry, not dropped
  });
});

describe('EventQueue events for a key in flight', () => {
  it('delivers a key once more when it is enqueued while its delivery runs, however many times', async () => {
    const { calls, gates, deliver } = gatedDeliver();
    const { queue } = makeQueue({ deliver });
    queue.enqueue('staging/g/p/1');
    await until(() => gates.length === 1);
    queue.enqueue('staging/g/p/1');
    queue.enqueue('staging/g/p/1');
    queue.enqueue('staging/g/p/1');
    gates[0]!.release();
    await until(() => gates.length === 2);
    gates[1]!.release();
    await queue.drained();
    expect(calls).toEqual(['staging/g/p/1', 'staging/g/p/1']);
  });

  it('does not queue a waiting key twice, nor run it again when nothing arrived during its delivery', async () => {
    const { calls, gates, deliver } = gatedDeliver();
    const { queue } = makeQueue({ concurrency: 1, deliver });
    queue.enqueue('staging/g/a/1');
    queue.enqueue('staging/g/b/1');
    queue.enqueue('staging/g/b/1'); // waiting: the same event twice
    await until(() => gates.length === 1);
    gates[0]!.release();
    await until(() => gates.length === 2);
    gates[1]!.release();
    await queue.drained();
    expect(calls).toEqual(['staging/g/a/1', 'staging/g/b/1']);
  });

  it('lets the retry of a failed delivery cover an event that arrived during it', async () => {
    const { calls, gates, deliver } = gatedDeliver();
    const { queue } = makeQueue({ deliver });
    queue.enqueue('staging/g/p/1');
    await until(() => gates.length === 1);
    queue.enqueue('staging/g/p/1');
    gates[0]!.release(new Error('store unavailable'));
    await until(() => gates.length === 2);
    gates[1]!.release();
    await queue.drained();
    expect(calls).toEqual(['staging/g/p/1', 'staging/g/p/1']);
  });
});

describe('EventQueue sweeps', () => {
  it('enqueues the staged keys it does not hold, and never reruns one in flight because of a sweep', async () => {
    const staged = ['staging/g/a/1', 'staging/g/b/1', 'staging/g/c/1'];
    const { calls, gates, deliver } = gatedDeliver();
    const { queue } = makeQueue({
      concurrency: 1,
      deliver,
      stagedKeys: async function* () {
        yield* staged;
      },
    });
    queue.enqueue('staging/g/a/1');
    await until(() => gates.length === 1);
    expect(await queue.sweep()).toBe(2); // b and c; a is in flight
    expect(await queue.sweep()).toBe(0); // all held now
    for (let index = 0; index < 3; index++) {
      await until(() => gates.length === index + 1);
      gates[index]!.release();
    }
    await queue.drained();
    expect(calls).toEqual(staged);
  });

  it('sweeps on its own every sweepIntervalMs: an upload whose event was lost is delivered', async () => {
    const staged: string[] = [];
    const delivered: string[] = [];
    const { queue } = makeQueue({
      sweepIntervalMs: 10,
      deliver: async (key) => {
        delivered.push(key);
        staged.splice(staged.indexOf(key), 1); // processed: no longer staged
      },
      stagedKeys: async function* () {
        yield* [...staged];
      },
    });
    staged.push('staging/g/lost/1'); // written, but no event ever came
    await until(() => delivered.length === 1);
    expect(delivered).toEqual(['staging/g/lost/1']);
    await queue.drained();
  });

  it('logs a sweep whose listing fails, and keeps sweeping', async () => {
    let listings = 0;
    const delivered: string[] = [];
    const { queue, lines } = makeQueue({
      sweepIntervalMs: 5,
      deliver: async (key) => void delivered.push(key),
      stagedKeys: async function* () {
        if (++listings === 1) throw new Error('EIO: i/o error, scandir staging');
        if (listings === 2) yield 'staging/g/p/1';
      },
    });
    await until(() => delivered.length === 1);
    await queue.drained();
    expect(lines.find((line) => line.message.includes('Could not list the staged uploads'))?.message).toContain('EIO: i/o error');
  });
});

describe('EventQueue close', () => {
  it('waits for the delivery in flight, drops the waiting and retrying keys (they stay staged), and takes nothing more', async () => {
    const { calls, gates, deliver } = gatedDeliver();
    let sweeps = 0;
    const { queue } = makeQueue({
      concurrency: 1,
      backoffMs: 60_000,
      sweepIntervalMs: 5,
      deliver,
      stagedKeys: async function* () {
        sweeps++;
      },
    });
    queue.enqueue('staging/g/retrying/1');
    await until(() => gates.length === 1);
    gates[0]!.release(new Error('store unavailable')); // now waiting a minute for its retry
    queue.enqueue('staging/g/running/1');
    await until(() => gates.length === 2);
    queue.enqueue('staging/g/waiting/1');
    queue.enqueue('staging/g/running/1'); // would run again, but the queue closes first

    let closed = false;
    const closing = queue.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(false); // the delivery in flight is not abandoned
    gates[1]!.release();
    await closing;
    expect(queue.size).toBe(0);

    const sweepsAtClose = sweeps;
    queue.enqueue('staging/g/late/1');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(calls).toEqual(['staging/g/retrying/1', 'staging/g/running/1']);
    expect(sweeps).toBe(sweepsAtClose);
  });
});
