import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LOCAL_UPLOAD_PATH, signUploadUrl, type UploadGrant, verifyUploadRequest } from './upload-signature.ts';

const BASE_URL = 'http://127.0.0.1:3000';
const SECRET = randomBytes(32);
const NOW = new Date('2030-06-01T12:00:00Z');
const NOW_SECONDS = NOW.getTime() / 1000;

const grant: UploadGrant = {
  key: 'staging/gen_1/pose_1/0b0c0d0e-0000-4000-8000-000000000000',
  contentType: 'image/png',
  contentLength: 4096,
  expires: NOW_SECONDS + 600,
};

/** The request a client makes with the signed URL and the given headers. */
function requestFor(url: string, contentType: string, contentLength: number) {
  const parsed = new URL(url);
  return { pathname: parsed.pathname, searchParams: parsed.searchParams, contentType, contentLength };
}

function withParams(url: string, change: (params: URLSearchParams) => void): string {
  const parsed = new URL(url);
  change(parsed.searchParams);
  return parsed.toString();
}

// Keys as the layout makes them: segments of id characters (a URL path keeps them as they are).
const segment = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
const keyArb = fc.array(segment, { minLength: 1, maxLength: 4 }).map((segments) => segments.join('/'));
const grantArb = fc.record({
  key: keyArb,
  contentType: fc.string({ maxLength: 40 }),
  contentLength: fc.nat(),
  expires: fc.integer({ min: NOW_SECONDS + 1, max: NOW_SECONDS + 7 * 24 * 3600 }),
});

describe('signUploadUrl', () => {
  it('puts the key under the local upload path and the expiry and an HMAC in the query', () => {
    const url = new URL(signUploadUrl(BASE_URL, SECRET, grant));
    expect(url.origin).toBe(BASE_URL);
    expect(url.pathname).toBe(`${LOCAL_UPLOAD_PATH}${grant.key}`);
    expect(url.searchParams.get('expires')).toBe(String(grant.expires));
    expect(url.searchParams.get('signature')).toMatch(/^[0-9a-f]{64}$/);
    // The grant's type and length are bound by the signature, not carried in the URL.
    expect([...url.searchParams.keys()].sort()).toEqual(['expires', 'signature']);
  });

  it('is deterministic for one secret and grant, and differs between secrets', () => {
    expect(signUploadUrl(BASE_URL, SECRET, grant)).toBe(signUploadUrl(BASE_URL, SECRET, grant));
    expect(signUploadUrl(BASE_URL, randomBytes(32), grant)).not.toBe(signUploadUrl(BASE_URL, SECRET, grant));
  });
});

describe('verifyUploadRequest', () => {
  const url = signUploadUrl(BASE_URL, SECRET, grant);

  it('accepts the signed key, type and length before the expiry, and returns the grant', () => {
    expect(verifyUploadRequest(SECRET, requestFor(url, grant.contentType, grant.contentLength), NOW)).toEqual({ ok: true, grant });
    // Still valid in the very second it expires, refused one second later.
    expect(verifyUploadRequest(SECRET, requestFor(url, 'image/png', 4096), new Date(grant.expires * 1000)).ok).toBe(true);
    expect(verifyUploadRequest(SECRET, requestFor(url, 'image/png', 4096), new Date((grant.expires + 1) * 1000))).toEqual({
      ok: false,
      refusal: 'expired',
    });
  });

  it('refuses another secret, type, length, key, expiry or signature', () => {
    const refused = { ok: false, refusal: 'bad_signature' };
    expect(verifyUploadRequest(randomBytes(32), requestFor(url, 'image/png', 4096), NOW)).toEqual(refused);
    expect(verifyUploadRequest(SECRET, requestFor(url, 'image/jpeg', 4096), NOW)).toEqual(refused);
    expect(verifyUploadRequest(SECRET, requestFor(url, 'image/png', 4097), NOW)).toEqual(refused);
    expect(verifyUploadRequest(SECRET, { ...requestFor(url, 'image/png', 4096), pathname: `${LOCAL_UPLOAD_PATH}poses/gen_1/pose_1.png` }, NOW)).toEqual(refused);
    const later = withParams(url, (params) => params.set('expires', String(grant.expires + 1)));
    expect(verifyUploadRequest(SECRET, requestFor(later, 'image/png', 4096), NOW)).toEqual(refused);
    const signature = new URL(url).searchParams.get('signature')!;
    const flipped = withParams(url, (params) => params.set('signature', `${signature[0] === '0' ? '1' : '0'}${signature.slice(1)}`));
    expect(verifyUploadRequest(SECRET, requestFor(flipped, 'image/png', 4096), NOW)).toEqual(refused);
  });

  it('does not accept an expired URL even with a correct signature', () => {
    const expired = signUploadUrl(BASE_URL, SECRET, { ...grant, expires: NOW_SECONDS - 1 });
    expect(verifyUploadRequest(SECRET, requestFor(expired, 'image/png', 4096), NOW)).toEqual({ ok: false, refusal: 'expired' });
  });

  it.each([
    ['no expires', (p: URLSearchParams) => p.delete('expires')],
    ['an empty expires', (p: URLSearchParams) => p.set('expires', '')],
    ['a non-numeric expires', (p: URLSearchParams) => p.set('expires', 'soon')],
    ['a fractional expires', (p: URLSearchParams) => p.set('expires', `${grant.expires}.5`)],
    ['an exponent expires', (p: URLSearchParams) => p.set('expires', '1e12')],
    ['a hex expires', (p: URLSearchParams) => p.set('expires', '0x7fffffff')],
    ['a negative expires', (p: URLSearchParams) => p.set('expires', '-1')],
    ['a padded expires', (p: URLSearchParams) => p.set('expires', ` ${grant.expires}`)],
    ['a huge expires', (p: URLSearchParams) => p.set('expires', '9'.repeat(400))],
    ['no signature', (p: URLSearchParams) => p.delete('signature')],
    ['an empty signature', (p: URLSearchParams) => p.set('signature', '')],
    ['a short signature', (p: URLSearchParams) => p.set('signature', 'abcd')],
    ['an upper-case signature', (p: URLSearchParams) => p.set('signature', 'A'.repeat(64))],
    ['a non-hex signature', (p: URLSearchParams) => p.set('signature', 'z'.repeat(64))],
    ['a too long signature', (p: URLSearchParams) => p.set('signature', '0'.repeat(66))],
  ])('calls %s malformed', (_, change) => {
    const request = requestFor(withParams(url, change), 'image/png', 4096);
    expect(verifyUploadRequest(SECRET, request, NOW)).toEqual({ ok: false, refusal: 'malformed' });
  });

  it('calls a path outside the local upload path malformed', () => {
    for (const pathname of ['/uploads/poses/g/p.png', '/', '', '/local-uploads', `/x${LOCAL_UPLOAD_PATH}${grant.key}`]) {
      expect(verifyUploadRequest(SECRET, { ...requestFor(url, 'image/png', 4096), pathname }, NOW)).toEqual({
        ok: false,
        refusal: 'malformed',
      });
    }
  });

  it('property: a signed grant verifies; changing its key, type, length or expiry never does', () => {
    fc.assert(
      fc.property(
        grantArb,
        fc.constantFrom('key', 'contentType', 'contentLength', 'expires'),
        keyArb,
        fc.string({ maxLength: 40 }),
        fc.nat(),
        fc.integer({ min: NOW_SECONDS - 3600, max: NOW_SECONDS + 30 * 24 * 3600 }),
        (signed, field, otherKey, otherType, otherLength, otherExpires) => {
          const signedUrl = signUploadUrl(BASE_URL, SECRET, signed);
          expect(verifyUploadRequest(SECRET, requestFor(signedUrl, signed.contentType, signed.contentLength), NOW)).toEqual({
            ok: true,
            grant: signed,
          });

          const request = requestFor(signedUrl, signed.contentType, signed.contentLength);
          switch (field) {
            case 'key':
              fc.pre(otherKey !== signed.key);
              request.pathname = `${LOCAL_UPLOAD_PATH}${otherKey}`;
              break;
            case 'contentType':
              fc.pre(otherType !== signed.contentType);
              request.contentType = otherType;
              break;
            case 'contentLength':
              fc.pre(otherLength !== signed.contentLength);
              request.contentLength = otherLength;
              break;
            case 'expires':
              fc.pre(otherExpires !== signed.expires);
              request.searchParams.set('expires', String(otherExpires));
              break;
          }
          expect(verifyUploadRequest(SECRET, request, NOW)).toEqual({ ok: false, refusal: 'bad_signature' });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: arbitrary paths and query strings are refused, never thrown', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.constant(LOCAL_UPLOAD_PATH).chain((base) => fc.string().map((rest) => base + rest))),
        fc.dictionary(fc.constantFrom('expires', 'signature', 'other'), fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-f]{64}$/), fc.integer().map(String))),
        fc.string(),
        fc.oneof(fc.nat(), fc.double(), fc.constant(Number.NaN)),
        (pathname, params, contentType, contentLength) => {
          const searchParams = new URLSearchParams(params);
          const result = verifyUploadRequest(SECRET, { pathname, searchParams, contentType, contentLength }, NOW);
          expect(result.ok).toBe(false);
          if (!result.ok) expect(['malformed', 'expired', 'bad_signature']).toContain(result.refusal);
        },
      ),
      { numRuns: 500 },
    );
  });
});
