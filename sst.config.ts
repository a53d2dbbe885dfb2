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
 * From no account to a verified stage (README.md, "Deployment", says the same at length):
 *   1. Cloudflare: note the account id (dashboard, Workers & Pages or R2 overview: "Account ID"); it names the
 *      account of the bucket, queues and Workers and the functions' R2 endpoint. Create an account API token
 *      (My Profile > API Tokens) with Workers Scripts: Edit, Queues: Edit, Workers R2 Storage: Edit, and an R2
 *      API token (R2 > Manage API tokens) with Object Read & Write on the bucket: its Access Key ID and Secret
 *      Access Key are shown once, on creation.
 *   2. AWS: credentials of an account allowed to deploy (`aws configure`, or AWS_PROFILE), and the region:
 *      AWS_REGION (e.g. eu-central-1, near the users and the bucket).
 *   3. export CLOUDFLARE_API_TOKEN=... CLOUDFLARE_DEFAULT_ACCOUNT_ID=... AWS_REGION=...
 *      Production also needs R2_PUBLIC_URL: a custom domain connected to the bucket (R2 > bucket > Settings >
 *      Custom Domains), e.g. https://poses.example.com; other stages may use the created bucket's r2.dev domain.
 *      Optional: R2_BUCKET_NAME (an existing bucket), ALLOWED_ORIGINS, ALARM_EMAIL, THUMBNAIL_CONCURRENCY (10).
 *   4. Secrets, per stage: npx sst secret set R2AccessKeyId|R2SecretAccessKey|ApiToken <value> --stage <stage>
 *      (ApiToken: e.g. `openssl rand -hex 32`; WebhookSecret only with READY_WEBHOOK_URL).
 *   5. npx sst deploy --stage <stage>: the outputs print `api` (the API URL), `publicUrl` and `alarms`.
 *   6. Verify: npx pose-storage smoke --api <api> --token <ApiToken>.
 *   7. Teardown: npx sst remove --stage <stage> (production is protected and keeps its bucket).
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
