/**
 * Secrets never leave: API tokens, the R2 secret access key and the webhook secret appear in no log line, no
 * error and no response, whatever happens (successes, refusals, store failures, invalid configuration). The R2
 * access key id is an identifier, not a secret: it appears only where SigV4 puts it, in a presigned URL's
 * X-Amz-Credential.
 */
import sharp from 'sharp';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, it } from 'vitest';
import { createHandler as createDelete } from '../lib/lambda/handlers/delete.ts';
import { createHandler as createPresign } from '../lib/lambda/handlers/presign.ts';
import { createHandler as createStatus } from '../lib/lambda/handlers/status.ts';
import { createHandler as createThumbnail } from '../lib/lambda/handlers/thumbnail.ts';
import { parseConfig } from '../lib/config.ts';
import { ConfigError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices } from '../lib/services.ts';
import { createS3Client } from '../lib/storage/s3-client.ts';
import { S3Store } from '../lib/storage/s3-store.ts';
import { fakeBucket, serviceError } from './support/fake-s3-bucket.ts';
import { httpEvent, lambdaContext, r2TestEnv, s3Event } from './support/http-events.ts';

const TOKENS = ['secret-token-current-AAAA1111', 'secret-token-previous-BBBB2222'];
const SECRET_KEY = 'r2-SECRET-key-CCCC3333dddd4444';
const ACCESS_KEY_ID = 'r2ACCESSkeyID5555';
const WEBHOOK_SECRET = 'webhook-SECRET-EEEE6666ffff';
const SECRETS = [...TOKENS, SECRET_KEY, WEBHOOK_SECRET];

const env = r2TestEnv({
  API_TOKEN: TOKENS.join(','),
  R2_SECRET_ACCESS_KEY: SECRET_KEY,
  R2_ACCESS_KEY_ID: ACCESS_KEY_ID,
  // A receiver that is not there: the webhook fails, and its failure is logged.
  READY_WEBHOOK_URL: 'http://127.0.0.1:9/hook',
  WEBHOOK_SECRET,
});

/** Everything an operator or a client could ever see. */
const seen: string[] = [];

function expectNoSecret(text: string): void {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
  // The access key id only as SigV4's credential scope inside a presigned URL.
  expect(text.replaceAll(/X-Amz-Credential=[^&"]+/g, '')).not.toContain(ACCESS_KEY_ID);
}

describe('secrets never appear in logs, errors or responses', () => {
  const config = parseConfig(env);
  const client = createS3Client(config.r2!);
  const s3 = mockClient(client);
  const bucket = fakeBucket(s3);
  const services = createServices({ config, store: new S3Store(config.r2!, client), logger: createLogger((line) => seen.push(line)) });
  const handlers = { presign: createPresign(services), status: createStatus(services), delete: createDelete(services) };
  const thumbnail = createThumbnail(services);
  let png: Buffer;

  beforeAll(async () => {
    bucket.install();
    png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#abc' } }).png().toBuffer();
  });

  const call = async (handler: keyof typeof handlers, options: Parameters<typeof httpEvent>[0]) => {
    const result = await handlers[handler](httpEvent(options), lambdaContext());
    seen.push(JSON.stringify(result));
    return result;
  };

  it('in every flow of the handlers, successful or not', async () => {
    const auth = (token: string) => ({ authorization: `Bearer ${token}`, origin: 'https://app.example.test' });
    const upload = { generationId: 'gen_s', poseId: 'pose_s', contentType: 'image/png', contentLength: png.length };
    const presigned = await call('presign', { method: 'POST', path: '/uploads', headers: auth(TOKENS[0]!), json: upload });
    expect(presigned.statusCode).toBe(200);
    expect(presigned.body).toContain('X-Amz-Credential='); // the one place the key id belongs
    for (const token of [TOKENS[1]!.slice(0, -1), `${TOKENS[0]}x`, TOKENS[0]!.toUpperCase(), '']) {
      expect((await call('status', { method: 'GET', path: '/poses/gen_s/pose_s', headers: auth(token) })).statusCode).toBe(401);
    }
    await call('presign', { method: 'POST', path: '/uploads', headers: auth(TOKENS[1]!), json: { ...upload, generationId: '../x' } });
    await call('presign', { method: 'POST', path: '/uploads', headers: auth(TOKENS[1]!), body: TOKENS[0]! });

    bucket.objects.set('staging/gen_s/pose_s/00000000-0000-4000-8000-000000000001', { body: png });
    bucket.objects.set('staging/gen_s/bad/00000000-0000-4000-8000-000000000002', { body: Buffer.from(SECRET_KEY) });
    seen.push(JSON.stringify(await thumbnail(s3Event('staging/gen_s/pose_s/00000000-0000-4000-8000-000000000001', 'staging/gen_s/bad/00000000-0000-4000-8000-000000000002'), lambdaContext())));
    expect((await call('status', { method: 'GET', path: '/poses/gen_s/pose_s', headers: auth(TOKENS[0]!) })).statusCode).toBe(200);

    // The store refusing the credentials, or failing: logged and answered without them.
    bucket.fail = () => serviceError('SignatureDoesNotMatch', 403);
    expect((await call('delete', { method: 'DELETE', path: '/poses/gen_s/pose_s', headers: auth(TOKENS[0]!) })).statusCode).toBe(503);
    bucket.fail = () => serviceError('InternalError', 500);
    expect((await call('status', { method: 'GET', path: '/poses/gen_s/pose_s', headers: auth(TOKENS[0]!) })).statusCode).toBe(503);
    bucket.objects.set('staging/gen_s/again/00000000-0000-4000-8000-000000000003', { body: png });
    await thumbnail(s3Event('staging/gen_s/again/00000000-0000-4000-8000-000000000003'), lambdaContext()).catch((error: Error) => seen.push(`${error.message} ${error.stack}`));
    bucket.fail = undefined;

    expect(seen.some((line) => line.includes('[Storage] Webhook failed'))).toBe(true);
    expect(seen.length).toBeGreaterThan(15);
    for (const text of seen) expectNoSecret(text);
  });

  it('in configuration errors, even when the secret itself is what is invalid', () => {
    const attempts: Record<string, string>[] = [
      { API_TOKEN: `${TOKENS[0]},short` },
      { API_TOKEN: 'tiny' },
      { WEBHOOK_SECRET: 'tiny', READY_WEBHOOK_URL: 'https://hooks.example.test' },
      { R2_SECRET_ACCESS_KEY: ' ' },
      { R2_ACCESS_KEY_ID: ' ' },
    ];
    for (const overrides of attempts) {
      const error = (() => {
        try {
          parseConfig({ ...env, ...overrides });
        } catch (caught) {
          return caught;
        }
        throw new Error(`accepted ${Object.keys(overrides).join(', ')}`);
      })();
      expect(error).toBeInstanceOf(ConfigError);
      const shown = `${(error as Error).message} ${(error as Error).stack}`;
      expect(shown).toMatch(/^(API_TOKEN|WEBHOOK_SECRET|R2_SECRET_ACCESS_KEY|R2_ACCESS_KEY_ID) /);
      for (const secret of [...SECRETS, 'tiny']) expect(shown).not.toContain(secret);
    }
  });
});
