/**
 * The S3 test server behaves as S3 and R2 do where the other tests rely on it (patches/@20minutes+s3rver+*):
 * an object is replaced whole, so a GET racing PUTs of the same key gets one version, complete, with its own
 * ETag. Unpatched, s3rver rewrote the file in place: such GETs were cut off mid-body or returned a mix of two
 * versions (31 and 26 of 80 in a trial), which made the race tests' store lie.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../lib/storage/s3-store.ts';
import { startS3Server, type S3TestServer } from './s3-server.ts';

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server.stop();
});

describe('the S3 test server', () => {
  it('answers GETs racing PUTs of the same key with one whole version and its ETag, over 50 rounds', async () => {
    const store = new S3Store(server.r2Config);
    const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');
    const written = new Set<string>();
    const put = async () => {
      const body = randomBytes(4096 + Math.floor(Math.random() * 60_000));
      written.add(md5(body));
      await store.put('race/k.bin', body, { contentType: 'application/octet-stream' });
    };
    await put();
    const seen: string[] = [];
    for (let round = 0; round < 50; round++) {
      await Promise.all([
        put(),
        put(),
        ...Array.from({ length: 4 }, async () => {
          const object = await store.get('race/k.bin');
          const digest = md5(object!.body);
          seen.push(written.has(digest) && object!.etag === digest ? 'whole' : 'torn');
        }),
      ]);
    }
    expect(seen.filter((outcome) => outcome === 'torn')).toEqual([]);
    expect(seen).toHaveLength(200);
  });
});
