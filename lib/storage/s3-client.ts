import { S3Client } from '@aws-sdk/client-s3';
import type { R2Config } from '../config.ts';
import { STORE_ATTEMPTS, STORE_SILENCE_MS } from '../deadlines.ts';
import { keepStoreDate } from './s3-store-date.ts';

/**
 * An S3 client for R2 or any S3-compatible endpoint. In its own module because the SDK is heavy to load
 * (~60 ms on a cold start): S3Store imports it on its first request, so a function that only signs upload
 * URLs never loads it.
 */
export function createS3Client(r2: R2Config): S3Client {
  const client = new S3Client({
    region: r2.region,
    endpoint: r2.endpoint,
    credentials: { accessKeyId: r2.accessKeyId, secretAccessKey: r2.secretAccessKey },
    // Path-style works on R2, MinIO and test servers alike; virtual hosts need DNS per bucket.
    forcePathStyle: true,
    // The SDK's default CRC32/aws-chunked uploads are not accepted by every S3-compatible store.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: STORE_ATTEMPTS,
    // The SDK sends a large body after an `Expect: 100-continue` answer, on a new connection it does not keep:
    // a TLS handshake and a round trip more per image on the WAN between Lambda and R2, to guard against a
    // refusal that our own signed writes do not meet.
    expectContinueHeader: false,
    // requestTimeout bounds a request until its answer starts (a slow but moving upload included); without
    // throwOnRequestTimeout the SDK only warns. socketTimeout abandons a connection gone silent, which the SDK
    // then retries (a TimeoutError is transient to it): see STORE_SILENCE_MS.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000, throwOnRequestTimeout: true, socketTimeout: STORE_SILENCE_MS },
  });
  keepStoreDate(client);
  return client;
}
