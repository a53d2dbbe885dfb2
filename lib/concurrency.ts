/**
 * Runs `run` on every item of an (async) iterable with at most `concurrency` runs at a time, pulling items
 * only as workers free up: a listing is consumed page by page, never gathered whole.
 *
 * `run` is expected to handle its own failures; if it throws, or the iterable does, no new item is started,
 * the runs in flight are awaited, and the first error is thrown. An aborted `signal` also stops new items
 * (without an error); the runs in flight finish first.
 *
 * Ours rather than p-limit or p-map: p-limit has no back-pressure on a listing (it queues every item), and
 * p-map settles on the first error or abort without waiting for the runs in flight, which deleteGeneration
 * (releasing the locks it took) and migrate (printing its summary) both need.
 */
export async function forEachConcurrent<T>(
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  run: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer (got ${concurrency})`);
  const iterator: AsyncIterator<T> | Iterator<T> =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  let exhausted = false;
  // One next() at a time: not every async iterator queues concurrent calls as async generators do.
  let pulling: Promise<unknown> = Promise.resolve();
  const pull = (): Promise<IteratorResult<T>> => {
    const next = pulling.then(() => iterator.next());
    pulling = next.catch(() => undefined);
    return next;
  };

  const worker = async (): Promise<void> => {
    while (!failure && !exhausted && !signal?.aborted) {
      let result: IteratorResult<T>;
      try {
        result = await pull();
      } catch (error) {
        failure ??= { error };
        exhausted = true;
        return;
      }
      if (result.done) {
        exhausted = true;
        return;
      }
      if (failure || signal?.aborted) return; // the item is dropped: it was never started
      try {
        await run(result.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };

  await Promise.all(Array.from({ length: concurrency }, worker));
  // Stopped early: let the iterable release what it holds (an open listing).
  if (!exhausted) await Promise.resolve(iterator.return?.()).catch(() => undefined);
  if (failure) throw failure.error;
}
