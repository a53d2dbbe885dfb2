/// <reference path="./.sst/platform/config.d.ts" />

/**
 * pose-storage on AWS Lambda (the four handlers of functions/) with the images in Cloudflare R2.
 *
 *   POST   /uploads                          -> functions/presign  (presigned PUT into staging/)
 *   GET    /poses/{generationId}/{poseId}    -> functions/status
 *   DELETE /poses/{generationId}[/{poseId}]  -> functions/delete
 *   R2 object-created on staging/ -> Cloudflare Queue -> functions/r2-forwarder.ts (Worker)
 *     -> POST {messages:[{id, body}]} with the API token -> the thumbnail function's URL
 *
 * The target is chosen when the config is evaluated (`sst deploy`, `sst dev`):
 *   - r2 (default): the above. Cloudflare credentials for the deploy: CLOUDFLARE_API_TOKEN and
 *     CLOUDFLARE_DEFAULT_ACCOUNT_ID (the account of the R2 bucket).
 *   - POSE_STORAGE_TARGET=s3: an AWS S3 bucket instead of R2, its object-created events (staging/) sent to
 *     the thumbnail function directly. The code talks to any S3 API through the R2_* variables, so the
 *     R2AccessKeyId / R2SecretAccessKey secrets then hold the keys of an IAM user allowed to use the bucket.
 *     R2_REGION is set to the bucket's region (R2 itself signs for "auto").
 *   - local: `sst dev` with STORAGE_MODE=local, or without the R2AccessKeyId secret. Nothing cloud-side is
 *     declared; `sst dev` starts the local server (`npm run dev`). `sst deploy` refuses STORAGE_MODE=local:
 *     deploying an empty app would remove the stage's resources.
 *
 * Secrets (`npx sst secret set <name> <value> --stage <stage>`): R2AccountId, R2AccessKeyId,
 * R2SecretAccessKey, ApiToken, and WebhookSecret (optional; needed when READY_WEBHOOK_URL is set).
 * Plain settings, read from the environment of the deploy (a shell export or `.env` / `.env.<stage>`, which
 * sst loads): R2_BUCKET_NAME (an existing bucket; unset: sst creates one), R2_PUBLIC_URL (the bucket's public
 * custom domain; unset: the r2.dev domain of the created bucket, outside production only), ALLOWED_ORIGINS,
 * UPLOAD_MAX_BYTES, UPLOAD_URL_TTL_SECONDS, MAX_INPUT_PIXELS, READY_WEBHOOK_URL. They are not secret, and
 * some of them shape the infrastructure (which bucket, CORS rules), so they must be plain values when the
 * config runs; a Secret is only known as an Output by then.
 *
 * The functions get their configuration as the environment variables of lib/config.ts, and that very parser
 * validates the values during the deploy: a bad value fails `sst deploy` with the variable's name (never a
 * secret's value) instead of failing every cold start.
 */

const STAGING_PREFIX = 'staging/';
const PUBLIC_PREFIX = 'poses/';

/** R2 queue batches are processed one image at a time, each within ~60 s even at 50 MP. */
const BATCH_SIZE = 4;
const SECONDS_PER_IMAGE = 60;

/** Plain (non-secret) settings passed through to the functions when set. */
const PASSED_THROUGH = ['UPLOAD_MAX_BYTES', 'UPLOAD_URL_TTL_SECONDS', 'MAX_INPUT_PIXELS', 'READY_WEBHOOK_URL'] as const;

/** Variables handed to the local server by `sst dev` in local mode, when set. */
const LOCAL_VARIABLES = [
  'PORT',
  'UPLOAD_PATH',
  'API_TOKEN',
  'ALLOWED_ORIGINS',
  'UPLOAD_MAX_BYTES',
  'UPLOAD_URL_TTL_SECONDS',
  'MAX_INPUT_PIXELS',
  'READY_WEBHOOK_URL',
  'WEBHOOK_SECRET',
] as const;

type Target = 'r2' | 's3' | 'local';

export default $config({
  app(input) {
    return {
      name: 'pose-storage',
      home: 'aws',
      removal: input.stage === 'production' ? 'retain' : 'remove',
      protect: input.stage === 'production',
      // The versions the sst 4.17.1 platform is built against (.sst/platform/package.json).
      providers: { aws: '7.20.0', cloudflare: '6.15.0' },
    };
  },

  async run() {
    const { parseConfig } = await import('./lib/config.ts');

    const setting = (name: string): string | undefined => {
      const value = process.env[name]?.trim();
      return value ? value : undefined;
    };
    const settings = (names: readonly string[]): Record<string, string> =>
      Object.fromEntries(names.flatMap((name) => {
        const value = setting(name);
        return value === undefined ? [] : [[name, value]];
      }));

    const target = chooseTarget();

    if (target === 'local') {
      new sst.x.DevCommand('LocalServer', {
        dev: { command: 'npm run dev', autostart: true, title: 'pose-storage (local)' },
        environment: { ...settings(LOCAL_VARIABLES), STORAGE_MODE: 'local' },
      });
      return { target };
    }

    const isProduction = $app.stage === 'production';
    const allowedOrigins = (setting('ALLOWED_ORIGINS') ?? '')
      .split(',')
      .map((origin) => origin.trim().replace(/\/+$/, ''))
      .filter((origin) => origin.length > 0);

    // Fail fast, before any resource is touched: the plain settings, with stand-ins for what is not known
    // yet (the secrets' values, a bucket sst creates). The real values are checked again below.
    parseConfig({
      STORAGE_MODE: 'r2',
      R2_ENDPOINT: 'https://stand-in.invalid',
      R2_ACCESS_KEY_ID: 'stand-in',
      R2_SECRET_ACCESS_KEY: 'stand-in',
      API_TOKEN: 'stand-in-api-token',
      WEBHOOK_SECRET: 'stand-in-webhook-secret',
      R2_BUCKET_NAME: setting('R2_BUCKET_NAME') ?? 'stand-in',
      R2_PUBLIC_URL: setting('R2_PUBLIC_URL') ?? 'https://stand-in.invalid',
      ALLOWED_ORIGINS: allowedOrigins.join(','),
      ...settings(PASSED_THROUGH),
    });

    const secrets = {
      accessKeyId: new sst.Secret('R2AccessKeyId'),
      secretAccessKey: new sst.Secret('R2SecretAccessKey'),
      apiToken: new sst.Secret('ApiToken'),
      webhookSecret: new sst.Secret('WebhookSecret', ''),
    };

    const store = target === 'r2' ? r2Store() : s3Store();

    /** The Lambda environment (lib/config.ts names), checked by lib/config.ts itself before any function gets it. */
    const environment = $resolve({
      STORAGE_MODE: 'r2',
      ...store.environment,
      R2_ACCESS_KEY_ID: secrets.accessKeyId.value,
      R2_SECRET_ACCESS_KEY: secrets.secretAccessKey.value,
      R2_BUCKET_NAME: store.bucketName,
      R2_PUBLIC_URL: store.publicUrl,
      API_TOKEN: secrets.apiToken.value,
      ALLOWED_ORIGINS: allowedOrigins.join(','),
      WEBHOOK_SECRET: secrets.webhookSecret.value,
      ...settings(PASSED_THROUGH),
    }).apply((variables) => {
      const env: Record<string, string> = Object.fromEntries(
        Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''),
      );
      parseConfig(env); // throws a ConfigError naming the variable; it never prints secret values
      return env;
    });

    const functionDefaults = {
      runtime: 'nodejs24.x',
      // Graviton: ~20% cheaper per GB-second, and sharp ships prebuilt linux-arm64 (glibc) binaries.
      architecture: 'arm64',
      environment,
    } satisfies Partial<sst.aws.FunctionArgs>;

    // lib/pose-image.ts loads sharp (native, not bundleable) only when it decodes an image, which the HTTP
    // functions never do: they leave it out entirely, and only the thumbnail function gets it installed
    // for linux/arm64.
    const httpFunction = (name: string, handler: string) =>
      new sst.aws.Function(name, {
        ...functionDefaults,
        handler,
        memory: '256 MB',
        timeout: '10 seconds',
        nodejs: { esbuild: { external: ['sharp'] } },
      });

    const presign = httpFunction('Presign', 'functions/presign.handler');
    const status = httpFunction('Status', 'functions/status.handler');
    const remove = httpFunction('Delete', 'functions/delete.handler');
    const health = httpFunction('Health', 'functions/health.handler');

    const thumbnailTimeoutSeconds = SECONDS_PER_IMAGE * (target === 'r2' ? BATCH_SIZE : 1);
    const thumbnail = new sst.aws.Function('Thumbnail', {
      ...functionDefaults,
      handler: 'functions/thumbnail.handler',
      // 1,769 MB is one full vCPU; the pipeline runs on one thread, so more memory only costs more
      // (BENCHMARKS.md); a 50 MP image peaks near 220 MB.
      memory: '1769 MB',
      nodejs: { install: ['sharp'] },
      timeout: `${thumbnailTimeoutSeconds} seconds`,
      // R2's queue reaches the function over HTTPS (bearer token checked by the handler); S3 invokes it directly.
      url: target === 'r2' ? { cors: false } : false,
    });

    const api = new sst.aws.ApiGatewayV2('Api', {
      // The handlers answer CORS from ALLOWED_ORIGINS, but one path can be served by two handlers (GET and
      // DELETE /poses/{generationId}/{poseId}) and a preflight reaches only one of them, whose answer lists
      // its own method only. So when origins are allowed, the gateway answers preflights with the same
      // origins, for every route (it then ignores the handlers' CORS headers); when none are, CORS is off.
      cors:
        allowedOrigins.length === 0
          ? false
          : {
              allowOrigins: allowedOrigins,
              allowMethods: ['GET', 'POST', 'DELETE'],
              allowHeaders: ['authorization', 'content-type'],
              maxAge: '10 minutes',
            },
    });
    api.route('POST /uploads', presign.arn);
    api.route('GET /poses/{generationId}/{poseId}', status.arn);
    api.route('DELETE /poses/{generationId}/{poseId}', remove.arn);
    api.route('DELETE /poses/{generationId}', remove.arn);
    api.route('GET /health', health.arn);
    // Any other method on a known path reaches a handler that answers the contract's 405 JSON (with
    // `Allow`), instead of API Gateway's own 404 {"message":"Not Found"}.
    api.route('ANY /uploads', presign.arn);
    api.route('ANY /poses/{generationId}/{poseId}', status.arn);
    api.route('ANY /poses/{generationId}', remove.arn);

    store.connect(thumbnail, thumbnailTimeoutSeconds);

    return {
      target,
      api: api.url,
      bucket: store.bucketName,
      publicUrl: store.publicUrl,
    };

    function fail(message: string): never {
      throw new Error(message);
    }

    function chooseTarget(): Target {
      const mode = setting('STORAGE_MODE');
      if ($dev && (mode === 'local' || (mode === undefined && !process.env.SST_SECRET_R2AccessKeyId))) return 'local';
      // A deploy of "nothing" would remove what the stage has: refuse it rather than deploy an empty app
      // (sst also loads .env, where STORAGE_MODE=local may have been left for `npm run dev`).
      if (mode === 'local') fail('STORAGE_MODE=local is for `sst dev` (the local server); unset it (see .env) to deploy to R2 or S3');
      const wanted = setting('POSE_STORAGE_TARGET') ?? 'r2';
      return wanted === 'r2' || wanted === 's3' ? wanted : fail(`POSE_STORAGE_TARGET must be "r2" or "s3" (got "${wanted}")`);
    }

    /** Cloudflare R2: the bucket, its staging lifecycle and CORS, and the event notification into a queue. */
    function r2Store() {
      // The account of the sst.cloudflare components (they read it from the environment too).
      const accountId: string =
        setting('CLOUDFLARE_DEFAULT_ACCOUNT_ID') ?? fail('Set CLOUDFLARE_DEFAULT_ACCOUNT_ID (and CLOUDFLARE_API_TOKEN) to deploy to R2');
      const r2AccountId = new sst.Secret('R2AccountId');

      const existing = setting('R2_BUCKET_NAME');
      const created = existing === undefined ? new sst.cloudflare.Bucket('Poses') : undefined;
      const bucketName: $util.Input<string> = existing ?? created!.name;

      const publicUrl = setting('R2_PUBLIC_URL') ?? r2DevUrl();
      function r2DevUrl(): $util.Output<string> {
        if (!created || isProduction)
          fail('Set R2_PUBLIC_URL to the public (custom domain) URL of the bucket; the r2.dev domain is only used for a bucket created outside production');
        const managed = new cloudflare.R2ManagedDomain('PosesPublicDomain', { accountId, bucketName, enabled: true });
        return $interpolate`https://${managed.domain}`;
      }

      // Staging objects are private, unguessable and short-lived: gone a day after upload (ages in seconds).
      // This rule set replaces the bucket's lifecycle rules (those of an existing bucket too, as the CORS
      // rules below replace its CORS rules), so R2's default multipart rule is restated.
      const DAY = 24 * 3600;
      new cloudflare.R2BucketLifecycle('PosesLifecycle', {
        accountId,
        bucketName,
        rules: [
          {
            id: 'expire-staging',
            enabled: true,
            conditions: { prefix: STAGING_PREFIX },
            deleteObjectsTransition: { condition: { type: 'Age', maxAge: DAY } },
            abortMultipartUploadsTransition: { condition: { type: 'Age', maxAge: DAY } },
          },
          {
            id: 'abort-multipart-uploads',
            enabled: true,
            conditions: { prefix: '' },
            abortMultipartUploadsTransition: { condition: { type: 'Age', maxAge: 7 * DAY } },
          },
        ],
      });

      if (allowedOrigins.length > 0) {
        // Browsers PUT to the presigned URL themselves (with the signed Content-Type).
        new cloudflare.R2BucketCors('PosesCors', {
          accountId,
          bucketName,
          rules: [
            {
              id: 'pose-storage',
              allowed: { origins: allowedOrigins, methods: ['PUT', 'GET', 'HEAD'], headers: ['content-type'] },
              maxAgeSeconds: 600,
            },
          ],
        });
      }

      return {
        bucketName,
        publicUrl,
        environment: { R2_ACCOUNT_ID: r2AccountId.value },
        connect(thumbnail: sst.aws.Function, timeoutSeconds: number) {
          const deadLetters = new sst.cloudflare.Queue('ThumbnailDeadLetters');
          const queue = new sst.cloudflare.Queue('ThumbnailQueue', {
            dlq: { queue: deadLetters.nodes.queue.queueName, retry: 5 },
          });
          new cloudflare.R2BucketEventNotification('StagingUploads', {
            accountId,
            bucketName,
            queueId: queue.id,
            rules: [
              {
                // The object-created actions (those lib/lambda/object-events.ts acts on).
                actions: ['PutObject', 'CopyObject', 'CompleteMultipartUpload'],
                prefix: STAGING_PREFIX,
                description: 'pose-storage: staged uploads to the thumbnail function',
              },
            ],
          });
          queue.subscribe(
            {
              handler: 'functions/r2-forwarder.ts',
              // A linked Secret becomes a secret_text binding (SST_RESOURCE_ApiToken), unlike `environment`.
              link: [secrets.apiToken],
              environment: {
                THUMBNAIL_URL: thumbnail.url,
                FORWARD_TIMEOUT_SECONDS: String(timeoutSeconds + 10),
              },
            },
            { batch: { size: BATCH_SIZE, window: '2 seconds' } },
          );
        },
      };
    }

    /** AWS S3 (POSE_STORAGE_TARGET=s3): only poses/ is public; staging/ expires after a day. */
    function s3Store() {
      const bucket = new sst.aws.Bucket('Poses', {
        lifecycle: [{ id: 'expire-staging', prefix: STAGING_PREFIX, expiresIn: '1 day' }],
        policy: [{ actions: ['s3:GetObject'], principals: '*', paths: [`${PUBLIC_PREFIX}*`] }],
        cors:
          allowedOrigins.length === 0
            ? false
            : { allowOrigins: allowedOrigins, allowMethods: ['PUT', 'GET', 'HEAD'], allowHeaders: ['content-type'], maxAge: '10 minutes' },
        transform: {
          // Allow the public-read policy above (on poses/ only); ACLs stay blocked.
          publicAccessBlock: (args) => {
            args.blockPublicPolicy = false;
            args.restrictPublicBuckets = false;
          },
        },
      });
      const region = aws.getRegionOutput().region;
      return {
        bucketName: bucket.name,
        publicUrl: setting('R2_PUBLIC_URL') ?? $interpolate`https://${bucket.nodes.bucket.bucketRegionalDomainName}`,
        environment: { R2_ENDPOINT: $interpolate`https://s3.${region}.amazonaws.com`, R2_REGION: region },
        connect(thumbnail: sst.aws.Function) {
          bucket.notify({
            notifications: [
              { name: 'Thumbnail', function: thumbnail.arn, events: ['s3:ObjectCreated:*'], filterPrefix: STAGING_PREFIX },
            ],
          });
        },
      };
    }
  },
});
