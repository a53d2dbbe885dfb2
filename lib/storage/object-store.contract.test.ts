/**
 * What the publication protocol relies on, checked on both adapters alike: a directory and a real
 * S3-compatible server (s3rver, signatures checked, with patches/ enforcing conditional writes as S3 and
 * R2 do). Versions (etags) change on every write; create-only and replace-if-version writes are atomic;
 * copies stay inside the store, carry their own type and caching, and copy only the version that was read;
 * an object over a size limit is refused before its body is read; a presigned upload URL creates its key once.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../../test/support/s3-server.ts';
import { ObjectTooLargeError, PreconditionFailedError } from '../errors.ts';
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
    const version = (await store().head(source))!.etag;
    await store().copy(source, target, { contentType: 'image/png', cacheControl: 'public, max-age=300', sourceEtag: version });
    expect((await store().get(target))?.body.toString()).toBe('pixels');
    expect((await store().get(source))?.body.toString(), 'the source stays').toBe('pixels');
  });

  it('refuses to copy a source that changed since it was read, or is gone', async () => {
    const source = fresh('staged');
    const target = fresh('image.png');
    await store().put(source, Buffer.from('validated'), PNG);
    const read = (await store().head(source))!.etag;
    await store().put(source, Buffer.from('swapped in later'), PNG);
    await expect(store().copy(source, target, { ...PNG, sourceEtag: read })).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(store().copy(fresh('nothing'), target, PNG)).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await store().head(target)).toBeUndefined();
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
