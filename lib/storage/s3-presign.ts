import { createHash, createHmac } from 'node:crypto';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import type { Checksum, SourceData } from '@smithy/types';
import type { R2Config } from '../config.ts';
import type { PresignedUpload, PresignUploadOptions } from './object-store.ts';

/**
 * Presigned PUTs into an S3-compatible bucket, signed by the SDK's own presigner (SigV4) but without the S3
 * client: signing is pure computation, and the presign function then never loads the SDK (~60 ms).
 *
 * Signed headers: Content-Type and Content-Length (the store refuses another type or size: R2 has no POST
 * policy to do it) and `If-None-Match: *` (create only: a second PUT to the URL fails while the object exists,
 * so bytes being processed are never replaced under the processor).
 */
class Sha256 implements Checksum {
  readonly #secret: Uint8Array | string | undefined;
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;

  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : bytesOf(secret);
    this.#hash = this.#fresh();
  }

  update(data: Uint8Array): void {
    this.#hash.update(data);
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#hash.digest());
  }

  reset(): void {
    this.#hash = this.#fresh();
  }

  #fresh() {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
}

function bytesOf(data: SourceData): Uint8Array | string {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

type S3Signing = Pick<R2Config, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey' | 'bucketName'>;

export function createUploadPresigner(r2: S3Signing): (key: string, options: PresignUploadOptions) => Promise<PresignedUpload> {
  const signer = new S3RequestPresigner({
    region: r2.region,
    credentials: { accessKeyId: r2.accessKeyId, secretAccessKey: r2.secretAccessKey },
    sha256: Sha256,
  });
  const endpoint = new URL(r2.endpoint);
  const basePath = endpoint.pathname.replace(/\/+$/, '');

  return async (key, options) => {
    const headers = {
      'Content-Type': options.contentType,
      'Content-Length': String(options.contentLength),
      'If-None-Match': '*',
    };
    // SigV4 dates are whole seconds, so the expiry is computed from the truncated time.
    const signingDate = new Date(Math.floor(Date.now() / 1000) * 1000);
    const signed = await signer.presign(
      {
        method: 'PUT',
        protocol: endpoint.protocol,
        hostname: endpoint.hostname,
        ...(endpoint.port !== '' && { port: Number(endpoint.port) }),
        // Path style, each segment escaped as S3 expects (layout keys need none; kept for safety).
        path: `${basePath}/${r2.bucketName}/${key.split('/').map(encodeURIComponent).join('/')}`,
        query: {},
        headers: {
          host: endpoint.host,
          'content-type': headers['Content-Type'],
          'content-length': headers['Content-Length'],
          'if-none-match': '*',
        },
      },
      // The presigner leaves Content-Type unsigned unless asked.
      { expiresIn: options.expiresInSeconds, signingDate, signableHeaders: new Set(['content-type']) },
    );
    const url = new URL(`${endpoint.protocol}//${endpoint.host}${signed.path}`);
    for (const [name, value] of Object.entries(signed.query ?? {})) {
      for (const item of Array.isArray(value) ? value : [value]) if (item !== null) url.searchParams.append(name, item);
    }
    return {
      url: url.toString(),
      method: 'PUT',
      headers,
      expiresAt: new Date(signingDate.getTime() + options.expiresInSeconds * 1000),
    };
  };
}
