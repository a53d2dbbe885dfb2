import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed upload URLs for local mode, bound like an S3 presigned PUT: the key, the content type, the content
 * length and the expiry are all inside the HMAC, so changing any of them (or waiting too long) is refused.
 */
export const LOCAL_UPLOAD_PATH = '/local-uploads/';

export interface UploadGrant {
  key: string;
  contentType: string;
  contentLength: number;
  /** Unix time in seconds after which the URL is refused. */
  expires: number;
}

function sign(secret: Uint8Array, grant: UploadGrant): string {
  const canonical = [grant.key, grant.contentType, grant.contentLength, grant.expires].join('\n');
  return createHmac('sha256', secret).update(canonical).digest('hex');
}

/** The URL (on `baseUrl`) a client PUTs to. */
export function signUploadUrl(baseUrl: string, secret: Uint8Array, grant: UploadGrant): string {
  const url = new URL(`${LOCAL_UPLOAD_PATH}${grant.key}`, baseUrl);
  url.searchParams.set('expires', String(grant.expires));
  url.searchParams.set('signature', sign(secret, grant));
  return url.toString();
}

export type UploadRefusal = 'malformed' | 'expired' | 'bad_signature';

/**
 * Checks a PUT against its URL's signature, with the request's own content type and length. Returns the
 * grant, or why it is refused. Comparison is constant-time.
 */
export function verifyUploadRequest(
  secret: Uint8Array,
  request: { pathname: string; searchParams: URLSearchParams; contentType: string; contentLength: number },
  now: Date = new Date(),
): { ok: true; grant: UploadGrant } | { ok: false; refusal: UploadRefusal } {
  // Only the canonical decimal form signUploadUrl writes: Number() alone would take a missing or empty
  // parameter as 0 and accept " 123", "1e3" or "0x7b" as other spellings of a signed expiry.
  const expiresParam = request.searchParams.get('expires') ?? '';
  const expires = Number(expiresParam);
  const signature = request.searchParams.get('signature') ?? '';
  if (
    !request.pathname.startsWith(LOCAL_UPLOAD_PATH) ||
    !/^(0|[1-9][0-9]{0,14})$/.test(expiresParam) ||
    !/^[0-9a-f]{64}$/.test(signature)
  ) {
    return { ok: false, refusal: 'malformed' };
  }
  const grant: UploadGrant = {
    key: request.pathname.slice(LOCAL_UPLOAD_PATH.length),
    contentType: request.contentType,
    contentLength: request.contentLength,
    expires,
  };
  const expected = Buffer.from(sign(secret, grant), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return { ok: false, refusal: 'bad_signature' };
  if (now.getTime() / 1000 > expires) return { ok: false, refusal: 'expired' };
  return { ok: true, grant };
}
