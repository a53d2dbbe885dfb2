/**
 * Which system a stage runs, for sst.config.ts's app() and run(). Plain functions of the stage and the
 * environment (no SST globals), so the tests call them as they are.
 *
 *   - stage `local`: the local server on a directory, through `sst dev` only (`npm run dev:sst`); no provider,
 *     state kept on this machine: no account, no credentials, nothing remote.
 *   - any other stage: Cloudflare R2 (the default), or an AWS S3 bucket with POSE_STORAGE_TARGET=s3.
 */
export type Target = 'local' | 'r2' | 's3';
export type CloudTarget = Exclude<Target, 'local'>;

export type Env = Readonly<Record<string, string | undefined>>;

export const LOCAL_STAGE = 'local';

/** The provider versions the sst 4.17.1 platform is built against (.sst/platform/package.json). */
const AWS_PROVIDER = '7.20.0';
const CLOUDFLARE_PROVIDER = '6.15.0';

/** What each cloud target deploys with: an S3 stage needs no Cloudflare account (nor its API token). */
export const PROVIDERS = {
  r2: { aws: AWS_PROVIDER, cloudflare: CLOUDFLARE_PROVIDER },
  s3: { aws: AWS_PROVIDER },
} as const satisfies Record<CloudTarget, Record<string, string>>;

/**
 * A refusal to deploy, in one line. SST prints an error named `VisibleError` as its message alone, without a
 * stack (cmd/sst/mosaic/ui/error.go in SST's repository).
 */
export class DeployRefused extends Error {
  override name = 'VisibleError';
}

/** A setting of the deploy's environment, trimmed; undefined when unset or blank. */
export function setting(env: Env, name: string): string | undefined {
  return env[name]?.trim() || undefined;
}

function requested(env: Env): string | undefined {
  return setting(env, 'POSE_STORAGE_TARGET');
}

/** The cloud target a stage other than `local` asks for, leniently (run() refuses what is not valid). */
export function cloudTarget(env: Env): CloudTarget {
  return requested(env) === 's3' ? 's3' : 'r2';
}

/**
 * The stage's target. Refuses, in one line: a cloud target on stage `local`, the local target on any other
 * stage, an unknown POSE_STORAGE_TARGET, and deploying stage `local` (`dev` false: `sst deploy`), which only
 * ever runs the local server through `sst dev`.
 */
export function chooseTarget(stage: string, env: Env, dev: boolean): Target {
  const wanted = requested(env);
  if (stage === LOCAL_STAGE) {
    if (wanted !== undefined && wanted !== 'local') {
      throw new DeployRefused(`POSE_STORAGE_TARGET=${wanted} is a cloud target: stage "local" only runs the local server; deploy another stage (npx sst deploy --stage <name>)`);
    }
    if (!dev) throw new DeployRefused('Stage "local" is never deployed: it runs the local server through `sst dev` (npm run dev:sst)');
    return 'local';
  }
  if (wanted === 'local') {
    throw new DeployRefused(`The local target runs only on stage "local" (npm run dev:sst), not on stage "${stage}"; unset POSE_STORAGE_TARGET to deploy to R2`);
  }
  if (wanted !== undefined && wanted !== 'r2' && wanted !== 's3') {
    throw new DeployRefused(`POSE_STORAGE_TARGET must be "r2" or "s3" (got "${wanted.slice(0, 40)}")`);
  }
  return cloudTarget(env);
}
