/**
 * What the publication protocol relies on, checked on both adapters alike: a directory and a real
 * S3-compatible server (s3rver, signatures checked, with patches/ enforcing conditional writes as S3 and
 * R2 do). Versions (etags) change on every write; create-only and replace-if-version writes are atomic;
 * copies stay inside the store, carry their own type and caching, and copy only the version that was read;
 * an object over a size limit is refused before its body is read; a presigned upload URL creates its key once;
 * writes return the version they made; reads tell the store's own clock; a request whose signal aborted is not
 * made, on the S3 server even when the network delivers it after the abort (the pose lock's fencing rests on it).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFlakyProxy } from '../../test/support/flaky-proxy.ts';
import { startS3Server, type S3TestServer } from '../../test/support/s3-server.ts';
import { ObjectTooLargeError, PoseStorageError, PreconditionFailedError, StoreUnavailableError, UnsafeStoreError } from '../errors.ts';
import { STORE_SILENCE_MS } from '../deadlines.ts';
import { DirectoryStore } from './directory-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3Store } from './s3-store.ts';

const PNG = { contentType: 'image/png' };

let server: S3TestServer;
let directory: string;
const stores: Record<'directory' | 's3', ObjectStore> = {} as never;

beforeAll(async () => {
  server = await startS3Server();
  directory = await mkdtemp(path.join(os.tmpdir(), 'store-contract-'));
  stores.directory = new DirectoryStore({ root: directory, uploadBaseUrl: 'http://127.0.0.1:1' });
  stores.s3 = new S3Store(server.r2Config);
});

afterAll(async () => {
  await server.stop();
  await rm(directory, { recursive: true, force: true });
});

const fresh = (name: string) => `poses/contract/${randomUUID()}/${name}`;

describe.each(['directory', 's3'] as const)('the %s store', (kind) => {
  const store = () => stores[kind];

  it('prepare() can run at every start: twice is harmless and leaves what is stored', async () => {
    const key = fresh('kept.png');
    await store().put(key, Buffer.from('kept'), PNG);
    await store().prepare();
    await store().prepare();
    expect(Buffer.from((await store().get(key))!.body).toString()).toBe('kept');
  });

  it('gives every write a new version, the same in get, head and list', async () => {
    const key = fresh('a.png');
    await store().put(key, Buffer.from('one'), PNG);
    const first = await store().head(key);
    await store().put(key, Buffer.from('two'), PNG);
    const second = await store().get(key);
    expect(first?.etag).toMatch(/\S/);
    expect(second?.etag).not.toBe(first?.etag);
    expect((await store().head(key))?.etag).toBe(second?.etag);
    const listed = [];
    for await (const info of store().list(key)) listed.push(info);
    expect(listed.map((info) => info.etag)).toEqual([second?.etag]);
  });

  it('create-only (ifNoneMatch *) writes once; a second create fails and changes nothing', async () => {
    const key = fresh('lock.json');
    await store().put(key, Buffer.from('first'), { contentType: 'application/json', ifNoneMatch: '*' });
    await expect(store().put(key, Buffer.from('second'), { contentType: 'application/json', ifNoneMatch: '*' })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect((await store().get(key))?.body.toString()).toBe('first');
  });

  it('of many concurrent creates of one key, exactly one wins', async () => {
    const key = fresh('contended.json');
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => store().put(key, Buffer.from(`writer ${i}`), { contentType: 'application/json', ifNoneMatch: '*' })),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(PreconditionFailedError);
  });

  it('replace-if-version (ifMatch) writes over that version only', async () => {
    const key = fresh('record.json');
    await store().put(key, Buffer.from('v1'), PNG);
    const v1 = (await store().head(key))!.etag;
    await store().put(key, Buffer.from('v2'), { ...PNG, ifMatch: v1 });
    await expect(store().put(key, Buffer.from('v3'), { ...PNG, ifMatch: v1 })).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(store().put(fresh('missing.json'), Buffer.from('x'), { ...PNG, ifMatch: v1 })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await store().get(key))?.body.toString()).toBe('v2');
  });

  it('copies inside the store, with the copy\'s own type and caching, over an existing object', async () => {
    const source = fresh('staged');
    const target = fresh('image.png');
    await store().put(source, Buffer.from('pixels'), { contentType: 'application/octet-stream' });
    await store().put(target, Buffer.from('older image'), PNG);
    await store().copy(source, target, { contentType: 'image/png', cacheControl: 'public, max-age=300' });
    expect((await store().get(target))?.body.toString()).toBe('pixels');
    expect((await store().get(source))?.body.toString(), 'the source stays').toBe('pixels');
  });

  it('never copies another version than the one read: refused when the source changed (or on a store that cannot tell), or is gone', async () => {
    const source = fresh('staged');
    const target = fresh('image.png');
    await store().put(source, Buffer.from('validated'), PNG);
    const read = (await store().head(source))!.etag;
    await store().put(source, Buffer.from('swapped in later'), PNG);
    // A store that ignores the copy-source condition (RGW) is asked for no conditional copy at all.
    const refusal = (await store().dialect()).copySourceCondition ? PreconditionFailedError : UnsafeStoreError;
    await expect(store().copy(source, target, { ...PNG, sourceEtag: read })).rejects.toBeInstanceOf(refusal);
    if (refusal === PreconditionFailedError) {
      const current = (await store().head(source))!.etag;
      await store().copy(source, fresh('current.png'), { ...PNG, sourceEtag: current }); // the version read now: copied
    }
    await expect(store().copy(fresh('nothing'), target, PNG)).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await store().head(target)).toBeUndefined();
  });

  it('put and copy return the version they made: the etag get, head and list then give', async () => {
    const key = fresh('made.png');
    const copy = fresh('copy.png');
    const put = await store().put(key, Buffer.from('made'), PNG);
    expect(put.etag).toBe((await store().head(key))?.etag);
    expect(put.etag).toBe((await store().get(key))?.etag);
    const copied = await store().copy(key, copy, PNG);
    expect(copied.etag).toBe((await store().head(copy))?.etag);
    for await (const info of store().list(copy)) expect(info.etag).toBe(copied.etag);
  });

  it('get tells the store\'s own clock (S3: its Date header), by which an object\'s age is told', async () => {
    const key = fresh('dated.png');
    await store().put(key, Buffer.from('dated'), PNG);
    const before = Date.now();
    const stored = (await store().get(key))!;
    const after = Date.now();
    // The S3 server runs on this host's clock, so its Date is this host's time to the second (HTTP dates have no less).
    expect(stored.storeDate.getTime()).toBeGreaterThanOrEqual(kind === 's3' ? Math.floor(before / 1000) * 1000 : before);
    expect(stored.storeDate.getTime()).toBeLessThanOrEqual(after);
    if (kind === 's3') expect(stored.storeDate.getUTCMilliseconds(), 'a Date header, not a fallback to this host').toBe(0);
    expect(stored.storeDate.getTime() - stored.lastModified.getTime()).toBeLessThan(2000);
  });

  it('a request whose signal aborted is not made, and throws the signal\'s reason', async () => {
    const key = fresh('never.png');
    await store().put(key, Buffer.from('kept'), PNG);
    const reason = new StoreUnavailableError('the lock reached its deadline');
    const controller = new AbortController();
    controller.abort(reason);
    const { signal } = controller;
    await expect(store().put(fresh('never-made.png'), Buffer.from('x'), { ...PNG, signal })).rejects.toBe(reason);
    await expect(store().copy(key, fresh('never-copied.png'), { ...PNG, signal })).rejects.toBe(reason);
    await expect(store().delete([key], { signal })).rejects.toBe(reason);
    await expect(store().get(key, { signal })).rejects.toBe(reason);
    expect(Buffer.from((await store().get(key))!.body).toString()).toBe('kept');
    const made = [];
    for await (const info of store().list('poses/contract/')) if (/never-(made|copied)/.test(info.key)) made.push(info.key);
    expect(made).toEqual([]);
    // A signal aborted for another reason says the request was stopped.
    const other = await store().head(key, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(PoseStorageError);
    expect((other as Error).message).toMatch(/was stopped before the store answered/);
  });

  it('refuses an object over maxBytes without returning its body', async () => {
    const key = fresh('big.png');
    await store().put(key, Buffer.alloc(2048, 7), PNG);
    const error = await store()
      .get(key, { maxBytes: 2047 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectTooLargeError);
    expect((error as ObjectTooLargeError).size).toBe(2048);
    expect((await store().get(key, { maxBytes: 2048 }))?.size).toBe(2048);
  });
});

/** The head of a PUT of `key` on the wire, for the proxy to hold. */
const putOf = (key: string) => new RegExp(`^PUT \\S+${key.split('/').pop()}`, 'm');

describe('a write held on the wire past its abort (s3)', () => {
  it('is never made, though the network delivers it later; without the abort the same stall lands late', async () => {
    const proxy = await startFlakyProxy(server.endpoint);
    try {
      const slow = new S3Store({ ...server.r2Config, endpoint: proxy.endpoint });
      const body = Buffer.alloc(64 * 1024, 1);
      // Aborted 300 ms into a 1.5 s stall: the client closes the connection, the held request is dropped.
      const aborted = fresh('aborted.png');
      const held = proxy.stallAt(putOf(aborted), 1500);
      const started = performance.now();
      const write = slow.put(aborted, body, { ...PNG, signal: AbortSignal.timeout(300) });
      await held;
      await expect(write).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(performance.now() - started).toBeLessThan(1500);
      await sleep(1800);
      expect(await stores.s3.head(aborted)).toBeUndefined();
      expect(proxy.stalled).toEqual({ delivered: 0, dropped: 1 });

      // The control: the same stall without an abort is delivered late and the write is made.
      const late = fresh('late.png');
      const stalledToo = proxy.stallAt(putOf(late), 1500);
      const written = slow.put(late, body, PNG);
      await stalledToo;
      await written;
      expect(proxy.stalled).toEqual({ delivered: 1, dropped: 1 });
      expect((await stores.s3.head(late))?.size).toBe(body.length);
    } finally {
      await proxy.close();
    }
  });
});

describe('a request whose connection goes silent (s3)', () => {
  it('is abandoned after STORE_SILENCE_MS and retried on a new connection: made once, the silent one never delivered', async () => {
    const proxy = await startFlakyProxy(server.endpoint);
    try {
      const slow = new S3Store({ ...server.r2Config, endpoint: proxy.endpoint });
      const key = fresh('silent.png');
      const body = Buffer.alloc(64 * 1024, 2);
      // Held longer than the silence lasts, so that only the SDK's own retry can make the write.
      const holdMs = STORE_SILENCE_MS + 1500;
      const held = proxy.stallAt(putOf(key), holdMs);
      const started = performance.now();
      await Promise.all([slow.put(key, body, PNG), held]);
      expect((await stores.s3.get(key))?.body.equals(body)).toBe(true);
      await sleep(Math.max(0, holdMs + 300 - (performance.now() - started)));
      expect(proxy.stalled).toEqual({ delivered: 0, dropped: 1 });
    } finally {
      await proxy.close();
    }
  });
});

describe('presigned upload URLs create their key once', () => {
  it('s3: a second PUT to the same URL is refused with 412 while the object exists; the first upload stays', async () => {
    const key = `staging/contract/pose/${randomUUID()}`;
    const presigned = await stores.s3.presignUpload(key, { contentType: 'image/png', contentLength: 5, expiresInSeconds: 60 });
    const put = (text: string) => fetch(presigned.url, { method: 'PUT', headers: presigned.headers, body: Buffer.from(text) });
    expect((await put('first')).status).toBe(200);
    const second = await put('other');
    expect(second.status).toBe(412);
    expect(await second.text()).toContain('<Code>PreconditionFailed</Code>');
    expect((await stores.s3.get(key))?.body.toString()).toBe('first');
    // Without the signed If-None-Match header the signature does not match.
    const { 'If-None-Match': _, ...unsigned } = presigned.headers;
    const bare = await fetch(presigned.url, { method: 'PUT', headers: unsigned, body: Buffer.from('third') });
    expect(bare.status).toBe(403);
    expect((await stores.s3.get(key))?.body.toString()).toBe('first');
  });
});
