/// <reference path="./.sst/platform/config.d.ts" />

/**
 * pose-storage: four HTTP functions and a thumbnail function on AWS Lambda, the images in Cloudflare R2 (or an
 * AWS S3 bucket); or, on stage `local`, the local server on a directory. The infrastructure is in infra/:
 *
 *   infra/target.ts      which system a stage runs (stage `local`, or R2 / S3), and the refusals
 *   infra/settings.ts    the deploy's plain settings, checked before any resource
 *   infra/local.ts       stage `local`: `sst dev` starts the local server, nothing else
 *   infra/storage.ts     the bucket, its staging lifecycle and CORS
 *   infra/environment.ts the secrets and the functions' environment, checked by lib/config.ts
 *   infra/api.ts         POST /uploads, GET|DELETE /poses/..., GET /health behind an HTTP API
 *   infra/thumbnails.ts  object-created -> queue -> thumbnail function, with retries and dead letters
 *   infra/alarms.ts      dead letters, thumbnail errors, thumbnail near its timeout -> an SNS topic
 *
 * From no accounts to a verified stage (README.md, "Deployment", says the same at length):
 *   1. Accounts: Cloudflare with R2 enabled, and AWS.
 *   2. The Cloudflare account id (R2 overview page, "Account ID"): the account of the bucket, queues and Workers,
 *      and the functions' endpoint https://<account id>.r2.cloudflarestorage.com. Not a secret.
 *   3. A Cloudflare API token for the deploy (Manage Account > API Tokens): the "Edit Cloudflare Workers" template
 *      (Workers Scripts: Edit, Workers R2 Storage: Edit) plus Queues: Edit.
 *   4. Production: a bucket you create (R2 > Create bucket) with a custom domain (bucket > Settings > Custom
 *      Domains): R2_BUCKET_NAME and R2_PUBLIC_URL. A trial stage may let the deploy create one on r2.dev.
 *   5. An R2 API token for the functions (R2 > Manage API tokens): Object Read & Write on that bucket; its Access
 *      Key ID and Secret Access Key are shown once, on creation.
 *   6. AWS credentials allowed to deploy, and AWS_REGION (near the users and the bucket). Reserving the thumbnail
 *      concurrency needs 100 unreserved executions left (or THUMBNAIL_CONCURRENCY_RESERVED=false).
 *   7. export CLOUDFLARE_API_TOKEN CLOUDFLARE_DEFAULT_ACCOUNT_ID AWS_REGION R2_BUCKET_NAME R2_PUBLIC_URL (or
 *      .env.<stage>); optional ALLOWED_ORIGINS, ALARM_EMAIL, THUMBNAIL_CONCURRENCY (default 10), the functions' limits.
 *   8. npx sst secret set R2AccessKeyId|R2SecretAccessKey|ApiToken <value> --stage <stage>
 *      (ApiToken: e.g. `openssl rand -hex 32`; WebhookSecret only with READY_WEBHOOK_URL).
 *   9. npx sst deploy --stage <stage>: settings are checked first; the outputs print `api` (the API URL),
 *      `publicUrl`, `bucket` and `alarms` (the SNS topic; confirm the ALARM_EMAIL subscription).
 *  10. Verify: npx pose-storage smoke --api <api> --token <ApiToken> (presign, HTTPS upload, ready, both public
 *      URLs, delete; each step timed).
 *  11. Teardown: npx sst remove --stage <stage> (production is protected; a bucket named by R2_BUCKET_NAME stays).
 * Stage `local` needs none of this: npm run dev:sst (`npx sst dev --stage local`).
 */
export default $config({
  async app(input) {
    const { LOCAL_STAGE, PROVIDERS, cloudTarget } = await import('./infra/target.ts');
    const local = input.stage === LOCAL_STAGE;
    return {
      name: 'pose-storage',
      // Stage `local` keeps its (empty) state on this machine and loads no provider: no account at all.
      home: local ? 'local' : 'aws',
      providers: local ? {} : PROVIDERS[cloudTarget(process.env)],
      removal: input.stage === 'production' ? 'retain' : 'remove',
      protect: input.stage === 'production',
    };
  },

  async run() {
    const { chooseTarget } = await import('./infra/target.ts');
    const target = chooseTarget($app.stage, process.env, $dev);
    if (target === 'local') {
      const { localServer } = await import('./infra/local.ts');
      localServer();
      return { target };
    }

    const { readSettings } = await import('./infra/settings.ts');
    const settings = readSettings(target, $app.stage, process.env);

    const { createStorage } = await import('./infra/storage.ts');
    const { functionEnvironment } = await import('./infra/environment.ts');
    const { createApi } = await import('./infra/api.ts');
    const { createThumbnails } = await import('./infra/thumbnails.ts');
    const { createAlarms } = await import('./infra/alarms.ts');

    const storage = createStorage(target, settings);
    const environment = functionEnvironment(storage, settings);
    const api = createApi(environment, settings);
    const thumbnails = createThumbnails(storage, environment, settings);
    const alarms = createAlarms(thumbnails, settings);

    return {
      target,
      api: api.url,
      bucket: storage.bucketName,
      publicUrl: storage.publicUrl,
      alarms: alarms.arn,
    };
  },
});
