import { checkConfig, type Settings } from './settings.ts';
import type { Storage } from './storage.ts';

/**
 * The functions' configuration: the secrets (`npx sst secret set <name> <value> --stage <stage>`) and the
 * environment variables of lib/config.ts, which that very parser checks during the deploy: a bad value fails
 * `sst deploy` naming the variable (never printing a secret) instead of failing every cold start.
 */
export function functionEnvironment(storage: Storage, settings: Settings): $util.Output<Record<string, string>> {
  const secrets = {
    accessKeyId: new sst.Secret('R2AccessKeyId'),
    secretAccessKey: new sst.Secret('R2SecretAccessKey'),
    apiToken: new sst.Secret('ApiToken'),
    webhookSecret: new sst.Secret('WebhookSecret', ''),
  };
  return $resolve({
    STORAGE_MODE: 'r2',
    ...storage.environment,
    R2_ACCESS_KEY_ID: secrets.accessKeyId.value,
    R2_SECRET_ACCESS_KEY: secrets.secretAccessKey.value,
    R2_BUCKET_NAME: storage.bucketName,
    R2_PUBLIC_URL: storage.publicUrl,
    API_TOKEN: secrets.apiToken.value,
    ALLOWED_ORIGINS: settings.allowedOrigins.join(','),
    WEBHOOK_SECRET: secrets.webhookSecret.value,
    ...settings.passedThrough,
  }).apply((variables) => {
    const env: Record<string, string> = Object.fromEntries(
      Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''),
    );
    checkConfig(env);
    return env;
  });
}

/** Every function: Node 24 on Graviton (about 20% cheaper per GB-second; sharp ships linux-arm64 binaries). */
export const FUNCTION_DEFAULTS = {
  runtime: 'nodejs24.x',
  architecture: 'arm64',
} satisfies Partial<sst.aws.FunctionArgs>;
