import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../errors.ts';
import { DirectoryStore } from '../storage/directory-store.ts';
import { withSignal } from '../storage/object-store.ts';
import { countTraffic } from './store-traffic.ts';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'store-traffic-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('countTraffic', () => {
  it('counts the bodies received and sent, not copies inside the store', async () => {
    const { store, traffic } = countTraffic(new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' }));
    await store.put('poses/g/a.png', Buffer.alloc(300, 1), { contentType: 'image/png' });
    await store.get('poses/g/a.png');
    await store.copy('poses/g/a.png', 'poses/g/b.png', { contentType: 'image/png' });
    expect(traffic).toEqual({ bytesIn: 300, bytesOut: 300 });
  });

  it('passes every request\'s options through: under a pose\'s lock, its deadline reaches the store', async () => {
    const inner = new DirectoryStore({ root, uploadBaseUrl: 'http://127.0.0.1:1' });
    await inner.put('poses/g/kept.png', Buffer.from('kept'), { contentType: 'image/png' });
    const deadline = new StoreUnavailableError('the lock reached its deadline');
    const controller = new AbortController();
    controller.abort(deadline);
    const locked = withSignal(countTraffic(inner).store, controller.signal);
    await expect(locked.head('poses/g/kept.png')).rejects.toBe(deadline);
    await expect(locked.delete(['poses/g/kept.png'])).rejects.toBe(deadline);
    await expect(locked.copy('poses/g/kept.png', 'poses/g/copy.png', { contentType: 'image/png' })).rejects.toBe(deadline);
    await expect(locked.put('poses/g/new.png', Buffer.from('x'), { contentType: 'image/png' })).rejects.toBe(deadline);
    await expect((async () => {
      for await (const _ of locked.list('poses/')) return;
    })()).rejects.toBe(deadline);
    expect((await inner.get('poses/g/kept.png'))?.body.toString()).toBe('kept');
  });
});
