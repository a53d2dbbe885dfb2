import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseConfig } from './config.ts';
import { REFERENCE_FILES } from './pose-files.ts';
import { ConfigError } from './errors.ts';

type Env = Record<string, string | undefined>;

const ACCESS_KEY = 'AKIAACCESSKEYMARKER1';
const SECRET_KEY = 'SecretAccessKeyMarker/abc+def0123456789';
const TOKEN = 'api-token-marker-0123456789abcdef';

/** A complete, valid r2 configuration. */
const R2_ENV: Env = {
  STORAGE_MODE: 'r2',
  R2_ACCOUNT_ID: 'abc123def456',
  R2_ACCESS_KEY_ID: ACCESS_KEY,
  R2_SECRET_ACCESS_KEY: SECRET_KEY,
  R2_BUCKET_NAME: 'lumiku-poses',
  R2_PUBLIC_URL: 'https://poses.example.test',
  API_TOKEN: TOKEN,
};

/** The ConfigError parseConfig throws for `env` (fails the test if it does not throw one). */
function configError(env: Env): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`);
}

describe('parseConfig defaults', () => {
  it('gives local mode with the documented defaults for an empty environment', () => {
    expect(parseConfig({})).toEqual({
      storageMode: 'local',
      uploadPath: path.resolve('./uploads'),
      r2: undefined,
      apiTokens: [],
      port: 3000,
      host: '127.0.0.1',
      uploadMaxBytes: 25 * 1024 * 1024,
      publishedMaxBytes: 64 * 1024 * 1024,
      uploadUrlTtlSeconds: 600,
      maxInputPixels: 50_000_000,
      cacheMaxAgeSeconds: 300,
      keepImageMetadata: false,
      poseFiles: REFERENCE_FILES,
      // Without API_TOKEN, no other site's page gets a CORS grant.
      allowedOrigins: [],
      webhook: undefined,
    });
    expect(DEFAULTS).toMatchObject({ STORAGE_MODE: 'local', UPLOAD_PATH: './uploads', PORT: 3000, HOST: '127.0.0.1' });
  });

  it('treats empty and blank values as unset', () => {
    const blank = { STORAGE_MODE: '', UPLOAD_PATH: '  ', PORT: '', API_TOKEN: ' ', ALLOWED_ORIGINS: '', MAX_INPUT_PIXELS: '\t' };
    expect(parseConfig(blank)).toEqual(parseConfig({}));
  });

  it('reads every variable', () => {
    const config = parseConfig({
      STORAGE_MODE: 'local',
      UPLOAD_PATH: '/srv/uploads',
      API_TOKEN: ` ${TOKEN} , ${TOKEN}-next `,
      PORT: '8080',
      HOST: '0.0.0.0',
      UPLOAD_MAX_BYTES: '1048576',
      PUBLISHED_MAX_BYTES: '2097152',
      UPLOAD_URL_TTL_SECONDS: '60',
      MAX_INPUT_PIXELS: '1000000',
      CACHE_MAX_AGE_SECONDS: '86400',
      KEEP_IMAGE_METADATA: 'true',
      ALLOWED_ORIGINS: 'https://app.example.test, http://localhost:5173',
      READY_WEBHOOK_URL: 'https://hooks.example.test/pose-ready',
      WEBHOOK_SECRET: 'webhook-secret-0123456789',
    });
    expect(config).toEqual({
      storageMode: 'local',
      uploadPath: '/srv/uploads',
      r2: undefined,
      apiTokens: [TOKEN, `${TOKEN}-next`],
      port: 8080,
      host: '0.0.0.0',
      uploadMaxBytes: 1048576,
      publishedMaxBytes: 2097152,
      uploadUrlTtlSeconds: 60,
      maxInputPixels: 1_000_000,
      cacheMaxAgeSeconds: 86400,
      keepImageMetadata: true,
      poseFiles: REFERENCE_FILES,
      allowedOrigins: ['https://app.example.test', 'http://localhost:5173'],
      webhook: { url: 'https://hooks.example.test/pose-ready', secret: 'webhook-secret-0123456789' },
    });
  });

  it('accepts a loopback HOST without API_TOKEN, and any HOST with one', () => {
    for (const host of ['127.0.0.1', '::1', 'localhost']) expect(parseConfig({ HOST: host }).host).toBe(host);
    expect(parseConfig({ HOST: '0.0.0.0', API_TOKEN: TOKEN }).host).toBe('0.0.0.0');
    expect(parseConfig({ ...R2_ENV, HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('resolves a relative UPLOAD_PATH to an absolute path', () => {
    expect(parseConfig({ UPLOAD_PATH: 'data/uploads' }).uploadPath).toBe(path.resolve('data/uploads'));
  });

  it('accepts the bounds of the numeric variables', () => {
    expect(parseConfig({ PORT: '0' }).port).toBe(0); // any free port
    expect(parseConfig({ PORT: '1' }).port).toBe(1);
    expect(parseConfig({ PORT: '65535' }).port).toBe(65535);
    expect(parseConfig({ UPLOAD_MAX_BYTES: String(512 * 1024 ** 2) }).uploadMaxBytes).toBe(512 * 1024 ** 2);
    expect(parseConfig({ PUBLISHED_MAX_BYTES: String(512 * 1024 ** 2) }).publishedMaxBytes).toBe(512 * 1024 ** 2);
    expect(parseConfig({ UPLOAD_URL_TTL_SECONDS: String(7 * 24 * 3600) }).uploadUrlTtlSeconds).toBe(7 * 24 * 3600);
    expect(parseConfig({ MAX_INPUT_PIXELS: String(2 ** 32 - 1) }).maxInputPixels).toBe(2 ** 32 - 1);
  });

  it('refuses an upload or published limit that no path could process (an upload is read whole into memory)', () => {
    for (const variable of ['UPLOAD_MAX_BYTES', 'PUBLISHED_MAX_BYTES']) {
      for (const value of [String(512 * 1024 ** 2 + 1), String(2 * 1024 ** 3 + 1), String(5 * 1024 ** 3)]) {
        const error = configError({ [variable]: value, ...(variable === 'UPLOAD_MAX_BYTES' && { PUBLISHED_MAX_BYTES: value }) });
        expect(error.problems.find((problem) => problem.variable === variable)?.problem).toBe(
          `must be at most 536870912 (512 MiB): an upload is read whole into memory to be validated, with its decode and the PNG it is published as (got "${value}")`,
        );
      }
    }
  });

  it('publishes images up to 64 MiB by default, and never less than UPLOAD_MAX_BYTES (a PNG is published as it is)', () => {
    expect(parseConfig({ UPLOAD_MAX_BYTES: String(100 * 1024 ** 2) }).publishedMaxBytes).toBe(100 * 1024 ** 2);
    expect(configError({ UPLOAD_MAX_BYTES: '2000', PUBLISHED_MAX_BYTES: '1000' }).message).toBe(
      'PUBLISHED_MAX_BYTES must be at least UPLOAD_MAX_BYTES (2000): a PNG upload is published as its own bytes',
    );
  });

  it('without API_TOKEN, lets ALLOWED_ORIGINS list only the server\'s own origins, saying why', () => {
    for (const origins of ['*', 'https://evil.example', 'http://localhost:5173', 'http://localhost:3000, https://app.example.test']) {
      const { message } = configError({ ALLOWED_ORIGINS: origins });
      expect(message).toMatch(/^ALLOWED_ORIGINS may not allow .+ while API_TOKEN is unset: without a token any page of those sites could delete and overwrite poses; set API_TOKEN too, or list only this server's own origin$/);
      expect(message).not.toContain('localhost:3000"');
    }
    expect(parseConfig({ ALLOWED_ORIGINS: 'http://localhost:3000, http://127.0.0.1:3000, http://[::1]:3000' }).allowedOrigins).toHaveLength(3);
    expect(parseConfig({ PORT: '8080', ALLOWED_ORIGINS: 'http://localhost:8080' }).allowedOrigins).toEqual(['http://localhost:8080']);
    expect(parseConfig({ PUBLIC_BASE_URL: 'http://192.168.1.20:3000', ALLOWED_ORIGINS: 'http://192.168.1.20:3000' }).allowedOrigins).toEqual(['http://192.168.1.20:3000']);
    // With a token, a page needs the token too: any origin may be allowed, and local mode allows every one by default.
    expect(parseConfig({ API_TOKEN: TOKEN, ALLOWED_ORIGINS: 'https://app.example.test' }).allowedOrigins).toEqual(['https://app.example.test']);
    expect(parseConfig({ API_TOKEN: TOKEN }).allowedOrigins).toEqual(['*']);
    expect(parseConfig(R2_ENV).allowedOrigins).toEqual([]);
  });

  it('reads KEEP_IMAGE_METADATA as exactly "true" or "false"', () => {
    expect(parseConfig({ KEEP_IMAGE_METADATA: 'true' }).keepImageMetadata).toBe(true);
    expect(parseConfig({ KEEP_IMAGE_METADATA: ' true ' }).keepImageMetadata).toBe(true);
    expect(parseConfig({ KEEP_IMAGE_METADATA: 'false' }).keepImageMetadata).toBe(false);
    expect(parseConfig({ KEEP_IMAGE_METADATA: '' }).keepImageMetadata).toBe(false);
  });
});

describe('parseConfig in r2 mode', () => {
  it('derives the endpoint from the account id', () => {
    const config = parseConfig(R2_ENV);
    expect(config.storageMode).toBe('r2');
    expect(config.r2).toEqual({
      accountId: 'abc123def456',
      accessKeyId: ACCESS_KEY,
      secretAccessKey: SECRET_KEY,
      bucketName: 'lumiku-poses',
      publicUrl: 'https://poses.example.test',
      endpoint: 'https://abc123def456.r2.cloudflarestorage.com',
      region: 'auto',
    });
    expect(config.apiTokens).toEqual([TOKEN]);
    expect(config.allowedOrigins).toEqual([]); // no CORS origin unless configured
  });

  it('signs for R2_REGION when set (AWS S3), "auto" otherwise, and refuses a malformed region', () => {
    expect(parseConfig({ ...R2_ENV, R2_REGION: 'eu-west-1' }).r2?.region).toBe('eu-west-1');
    expect(() => parseConfig({ ...R2_ENV, R2_REGION: 'EU West' })).toThrow(/^R2_REGION must be a region name/);
  });

  it('lets R2_ENDPOINT override the derived endpoint, with or without an account id', () => {
    expect(parseConfig({ ...R2_ENV, R2_ENDPOINT: 'http://127.0.0.1:9000' }).r2?.endpoint).toBe('http://127.0.0.1:9000');
    const withoutAccount = parseConfig({ ...R2_ENV, R2_ACCOUNT_ID: undefined, R2_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com' });
    expect(withoutAccount.r2?.endpoint).toBe('https://s3.eu-west-1.amazonaws.com');
    expect(withoutAccount.r2?.accountId).toBeUndefined();
  });

  it.each(['R2_ACCESS_KEY_ID', 'R2_SECRET_ACCESS_KEY', 'R2_BUCKET_NAME', 'R2_PUBLIC_URL', 'API_TOKEN'])(
    'requires %s',
    (variable) => {
      for (const value of [undefined, '', '   ']) {
        const error = configError({ ...R2_ENV, [variable]: value });
        expect(error.variable).toBe(variable);
        expect(error.code).toBe('invalid_configuration');
        expect(error.message).toMatch(new RegExp(`^${variable} is required when STORAGE_MODE=r2`));
      }
    },
  );

  it('requires R2_ACCOUNT_ID unless R2_ENDPOINT is set', () => {
    const error = configError({ ...R2_ENV, R2_ACCOUNT_ID: undefined });
    expect(error.variable).toBe('R2_ACCOUNT_ID');
    expect(error.message).toMatch(/^R2_ACCOUNT_ID is required/);
    expect(error.message).toContain('R2_ENDPOINT');
  });

  it('ignores the R2 variables in local mode', () => {
    const config = parseConfig({ ...R2_ENV, STORAGE_MODE: 'local', API_TOKEN: undefined, R2_BUCKET_NAME: 'NOT A BUCKET' });
    expect(config.r2).toBeUndefined();
    expect(config.apiTokens).toEqual([]);
  });
});

describe('parseConfig rejects invalid values, naming the variable', () => {
  const WEBHOOK = { READY_WEBHOOK_URL: 'https://hooks.example.test/x', WEBHOOK_SECRET: 'webhook-secret-0123456789' };
  const cases: Array<[variable: string, value: string, base: Env]> = [
    ['STORAGE_MODE', 'R2', {}],
    ['STORAGE_MODE', 's3', {}],
    ['PORT', '65536', {}],
    ['PORT', 'http', {}],
    ['PORT', '80.5', {}],
    ['PORT', '-1', {}],
    ['PORT', '99999999999999999999', {}],
    ['HOST', 'bad host!', {}],
    ['HOST', 'a'.repeat(254), { API_TOKEN: TOKEN }],
    ['HOST', '-leading.example.test', { API_TOKEN: TOKEN }],
    ['HOST', '1.2.3.4.5:80', { API_TOKEN: TOKEN }],
    ['HOST', '0.0.0.0', {}],
    ['HOST', '::', {}],
    ['HOST', '192.168.1.20', {}],
    ['PUBLIC_BASE_URL', 'localhost:3000', {}],
    ['PUBLIC_BASE_URL', 'http://192.168.1.20:3000/app', {}],
    ['PUBLIC_BASE_URL', 'http://host.example.test/?x=1', {}],
    ['HOST', '0.0.0.0', {}], // no auth without API_TOKEN: loopback only
    ['HOST', 'example.test', {}],
    ['UPLOAD_MAX_BYTES', '0', {}],
    ['UPLOAD_MAX_BYTES', String(5 * 1024 ** 3 + 1), {}],
    ['UPLOAD_MAX_BYTES', '25MB', {}],
    ['UPLOAD_URL_TTL_SECONDS', '0', {}],
    ['UPLOAD_URL_TTL_SECONDS', String(7 * 24 * 3600 + 1), {}],
    ['UPLOAD_URL_TTL_SECONDS', '10m', {}],
    ['MAX_INPUT_PIXELS', '0', {}],
    ['MAX_INPUT_PIXELS', String(2 ** 32), {}],
    ['MAX_INPUT_PIXELS', '1e6', {}],
    ['CACHE_MAX_AGE_SECONDS', '-1', {}],
    ['CACHE_MAX_AGE_SECONDS', String(365 * 24 * 3600 + 1), {}],
    ['CACHE_MAX_AGE_SECONDS', '5m', {}],
    ['KEEP_IMAGE_METADATA', 'TRUE', {}],
    ['KEEP_IMAGE_METADATA', '1', {}],
    ['KEEP_IMAGE_METADATA', 'yes', {}],
    ['ALLOWED_ORIGINS', 'app.example.test', {}],
    ['ALLOWED_ORIGINS', 'https://app.example.test,ftp://files.example.test', {}],
    ['ALLOWED_ORIGINS', '*, javascript:alert(1)', {}],
    ['ALLOWED_ORIGINS', 'https://app.example.test/path', {}],
    ['API_TOKEN', 'short', {}],
    ['API_TOKEN', ',,', {}],
    ['API_TOKEN', `${TOKEN},short`, {}],
    ['READY_WEBHOOK_URL', 'hooks.example.test/x', { WEBHOOK_SECRET: WEBHOOK.WEBHOOK_SECRET }],
    ['READY_WEBHOOK_URL', 'ftp://hooks.example.test/x', { WEBHOOK_SECRET: WEBHOOK.WEBHOOK_SECRET }],
    ['READY_WEBHOOK_URL', 'javascript:alert(1)', { WEBHOOK_SECRET: WEBHOOK.WEBHOOK_SECRET }],
    ['WEBHOOK_SECRET', 'too-short', WEBHOOK],
    ['R2_ACCOUNT_ID', 'abc-123', R2_ENV],
    ['R2_ACCOUNT_ID', 'a'.repeat(65), R2_ENV],
    ['R2_BUCKET_NAME', 'Lumiku_Poses', R2_ENV],
    ['R2_BUCKET_NAME', 'ab', R2_ENV],
    ['R2_BUCKET_NAME', '-poses', R2_ENV],
    ['R2_BUCKET_NAME', 'p'.repeat(64), R2_ENV],
    ['R2_PUBLIC_URL', 'poses.example.test', R2_ENV],
    ['R2_PUBLIC_URL', 'ftp://poses.example.test', R2_ENV],
    ['R2_ENDPOINT', 'localhost:9000', R2_ENV],
    ['R2_ENDPOINT', 's3://bucket', R2_ENV],
  ];

  it.each(cases)('%s=%j', (variable, value, base) => {
    const error = configError({ ...base, [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.code).toBe('invalid_configuration');
    expect(error.message.startsWith(`${variable} `)).toBe(true);
    expect(error.message.length).toBeLessThan(300);
    expect(error.problems).toHaveLength(1);
  });

  it('covers every variable of the contract that can be invalid', () => {
    const covered = new Set(cases.map(([variable]) => variable));
    const all = [
      'STORAGE_MODE', 'R2_ACCOUNT_ID', 'R2_BUCKET_NAME', 'R2_PUBLIC_URL', 'R2_ENDPOINT', 'API_TOKEN', 'PORT', 'HOST',
      'PUBLIC_BASE_URL', 'UPLOAD_MAX_BYTES', 'UPLOAD_URL_TTL_SECONDS', 'MAX_INPUT_PIXELS', 'CACHE_MAX_AGE_SECONDS', 'KEEP_IMAGE_METADATA',
      'ALLOWED_ORIGINS', 'READY_WEBHOOK_URL',
      'WEBHOOK_SECRET',
    ];
    expect(all.filter((variable) => !covered.has(variable))).toEqual([]);
  });

  it('shows a non-secret value that is wrong, bounded', () => {
    expect(configError({ PORT: 'http' }).message).toContain('"http"');
    expect(configError({ KEEP_IMAGE_METADATA: 'yes' }).message).toBe('KEEP_IMAGE_METADATA must be "true" or "false" (got "yes")');
    const long = configError({ STORAGE_MODE: 'x'.repeat(500) }).message;
    expect(long).not.toContain('x'.repeat(41));
  });

  it('requires WEBHOOK_SECRET when READY_WEBHOOK_URL is set', () => {
    const error = configError({ READY_WEBHOOK_URL: 'https://hooks.example.test/x' });
    expect(error.variable).toBe('WEBHOOK_SECRET');
    expect(error.message).toMatch(/^WEBHOOK_SECRET is required when READY_WEBHOOK_URL is set/);
  });
});

describe('every problem at once', () => {
  it('reports every missing r2 variable in one error, one line each, in a stable order', () => {
    const error = configError({ STORAGE_MODE: 'r2' });
    expect(error.problems.map((problem) => problem.variable)).toEqual([
      'R2_ACCOUNT_ID',
      'R2_ACCESS_KEY_ID',
      'R2_SECRET_ACCESS_KEY',
      'R2_BUCKET_NAME',
      'R2_PUBLIC_URL',
      'API_TOKEN',
    ]);
    expect(error.message.split('\n')).toEqual([
      'R2_ACCOUNT_ID is required when STORAGE_MODE=r2 unless R2_ENDPOINT is set',
      'R2_ACCESS_KEY_ID is required when STORAGE_MODE=r2',
      'R2_SECRET_ACCESS_KEY is required when STORAGE_MODE=r2',
      'R2_BUCKET_NAME is required when STORAGE_MODE=r2',
      'R2_PUBLIC_URL is required when STORAGE_MODE=r2',
      'API_TOKEN is required when STORAGE_MODE=r2',
    ]);
    expect(error.variable).toBe('R2_ACCOUNT_ID');
  });

  it('reports invalid and missing variables together, and a wrong value once', () => {
    const error = configError({ STORAGE_MODE: 'r2', R2_BUCKET_NAME: 'Not_Valid', PORT: 'eighty', R2_ENDPOINT: 'nope', API_TOKEN: 'short' });
    expect(error.problems.map((problem) => problem.variable).sort()).toEqual(
      ['API_TOKEN', 'PORT', 'R2_ACCESS_KEY_ID', 'R2_BUCKET_NAME', 'R2_ENDPOINT', 'R2_PUBLIC_URL', 'R2_SECRET_ACCESS_KEY'].sort(),
    );
    expect(error.problems.filter((problem) => problem.variable === 'R2_BUCKET_NAME')).toHaveLength(1);
    // An invalid API_TOKEN in local mode does not also make HOST look unauthenticated.
    expect(configError({ API_TOKEN: 'short', HOST: '0.0.0.0' }).problems.map((problem) => problem.variable)).toEqual(['API_TOKEN']);
  });
});

describe('HOST and PUBLIC_BASE_URL', () => {
  it('listens on any IPv4 or IPv6 address or host name once API_TOKEN is set; on loopback only without it', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.20', 'fe80::1', 'poses.local', 'my-host']) {
      expect(parseConfig({ HOST: host, API_TOKEN: TOKEN }).host).toBe(host);
    }
    for (const host of ['127.0.0.1', '127.0.0.53', '::1', 'localhost']) expect(parseConfig({ HOST: host }).host).toBe(host);
  });

  it('takes PUBLIC_BASE_URL as an origin, without a trailing slash', () => {
    expect(parseConfig({ PUBLIC_BASE_URL: 'http://192.168.1.20:3000/' }).localServerOrigin).toBe('http://192.168.1.20:3000');
    expect(parseConfig({}).localServerOrigin).toBeUndefined();
  });
});

describe('secrets never appear in error messages', () => {
  const secretLike = [ACCESS_KEY, SECRET_KEY, TOKEN, 'short-token', 'too-short', 'shortsecret', 'webhook-secret-0123456789'];

  const failing: Array<[string, Env]> = [
    ['API_TOKEN too short', { API_TOKEN: 'short-token' }],
    ['API_TOKEN with one short token', { API_TOKEN: `${TOKEN},short-token` }],
    ['API_TOKEN too short in r2 mode', { ...R2_ENV, API_TOKEN: 'short-token' }],
    ['WEBHOOK_SECRET too short', { READY_WEBHOOK_URL: 'https://hooks.example.test/x', WEBHOOK_SECRET: 'too-short' }],
    ['R2_ACCESS_KEY_ID blank', { ...R2_ENV, R2_ACCESS_KEY_ID: '   ' }],
    ['R2_SECRET_ACCESS_KEY blank', { ...R2_ENV, R2_SECRET_ACCESS_KEY: '  ' }],
    ['another variable invalid in r2 mode', { ...R2_ENV, R2_BUCKET_NAME: 'NOT_VALID' }],
    ['another variable invalid with a webhook', { READY_WEBHOOK_URL: 'https://hooks.example.test/x', WEBHOOK_SECRET: 'webhook-secret-0123456789', PORT: 'x' }],
    ['STORAGE_MODE invalid with every secret set', { ...R2_ENV, STORAGE_MODE: 'S3', WEBHOOK_SECRET: 'shortsecret' }],
  ];

  it.each(failing)('%s', (_, env) => {
    const error = configError(env);
    const shown = [error.message, String(error), error.stack ?? '', JSON.stringify(error)].join('\n');
    for (const secret of secretLike) expect(shown).not.toContain(secret);
    // A secret variable's value is never described at all (not even its first characters).
    if (['API_TOKEN', 'WEBHOOK_SECRET', 'R2_ACCESS_KEY_ID', 'R2_SECRET_ACCESS_KEY'].includes(error.variable)) {
      expect(error.message).not.toContain('(got');
    }
  });
});

describe('trailing slashes are removed from URLs', () => {
  it('R2_PUBLIC_URL and R2_ENDPOINT', () => {
    const config = parseConfig({ ...R2_ENV, R2_PUBLIC_URL: 'https://cdn.example.test/poses-bucket///', R2_ENDPOINT: 'http://127.0.0.1:9000/' });
    expect(config.r2?.publicUrl).toBe('https://cdn.example.test/poses-bucket');
    expect(config.r2?.endpoint).toBe('http://127.0.0.1:9000');
    expect(parseConfig({ ...R2_ENV, R2_PUBLIC_URL: 'https://poses.example.test/' }).r2?.publicUrl).toBe('https://poses.example.test');
  });

  it('READY_WEBHOOK_URL', () => {
    const config = parseConfig({ READY_WEBHOOK_URL: 'https://hooks.example.test/ready/', WEBHOOK_SECRET: 'webhook-secret-0123456789' });
    expect(config.webhook?.url).toBe('https://hooks.example.test/ready');
  });

  it('ALLOWED_ORIGINS (a browser never sends an Origin with a slash)', () => {
    expect(parseConfig({ API_TOKEN: TOKEN, ALLOWED_ORIGINS: 'https://app.example.test/, *, http://localhost:5173//' }).allowedOrigins).toEqual([
      'https://app.example.test',
      '*',
      'http://localhost:5173',
    ]);
  });
});
