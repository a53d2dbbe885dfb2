import { PUBLIC_PREFIX, STAGING_PREFIX } from '../lib/layout.ts';
import type { Settings } from './settings.ts';

/**
 * The bucket: Cloudflare R2 (the default) or AWS S3 (POSE_STORAGE_TARGET=s3), with its staging lifecycle and
 * its CORS rules. The functions reach either through the S3 API (the R2_* variables of lib/config.ts).
 */
export interface R2Storage {
  target: 'r2';
  accountId: string;
  bucketName: $util.Input<string>;
  publicUrl: $util.Input<string>;
  /** The functions' variables that locate the bucket. */
  environment: Record<string, $util.Input<string>>;
}

export interface S3Storage {
  target: 's3';
  bucket: sst.aws.Bucket;
  bucketName: $util.Input<string>;
  publicUrl: $util.Input<string>;
  environment: Record<string, $util.Input<string>>;
}

export type Storage = R2Storage | S3Storage;

/**
 * Browsers PUT to the presigned URL themselves, with the signed headers: Content-Type, and If-None-Match: *
 * (an upload never replaces an object).
 */
const UPLOAD_CORS = { methods: ['PUT', 'GET', 'HEAD'], headers: ['content-type', 'if-none-match'], maxAgeSeconds: 600 } as const;

export function createStorage(target: 'r2' | 's3', settings: Settings): Storage {
  return target === 'r2' ? r2Storage(settings) : s3Storage(settings);
}

function r2Storage(settings: Settings): R2Storage {
  const accountId = settings.cloudflareAccountId!; // readSettings requires it for r2
  const created = settings.bucketName === undefined ? new sst.cloudflare.Bucket('Poses') : undefined;
  const bucketName: $util.Input<string> = settings.bucketName ?? created!.name;

  // readSettings requires R2_PUBLIC_URL in production and for an existing bucket; otherwise the created
  // bucket's r2.dev domain serves it (rate-limited by Cloudflare: for trying a stage out, not for users).
  const publicUrl =
    settings.publicUrl ??
    $interpolate`https://${new cloudflare.R2ManagedDomain('PosesPublicDomain', { accountId, bucketName, enabled: true }).domain}`;

  // Staging objects are private and unguessable; one left unprocessed (its event lost) is deleted once
  // `verify --repair` had a week to find it (settings.stagingExpiryDays; R2 counts ages in seconds).
  // This rule set replaces the bucket's lifecycle rules (those of an existing bucket too, as the CORS rules
  // below replace its CORS rules), so R2's default multipart rule is restated.
  const DAY = 24 * 3600;
  const stagingMaxAge = settings.stagingExpiryDays * DAY;
  new cloudflare.R2BucketLifecycle('PosesLifecycle', {
    accountId,
    bucketName,
    rules: [
      {
        id: 'expire-staging',
        enabled: true,
        conditions: { prefix: STAGING_PREFIX },
        deleteObjectsTransition: { condition: { type: 'Age', maxAge: stagingMaxAge } },
        abortMultipartUploadsTransition: { condition: { type: 'Age', maxAge: stagingMaxAge } },
      },
      {
        id: 'abort-multipart-uploads',
        enabled: true,
        conditions: { prefix: '' },
        abortMultipartUploadsTransition: { condition: { type: 'Age', maxAge: 7 * DAY } },
      },
    ],
  });

  if (settings.allowedOrigins.length > 0) {
    new cloudflare.R2BucketCors('PosesCors', {
      accountId,
      bucketName,
      rules: [
        {
          id: 'pose-storage-uploads',
          allowed: { origins: [...settings.allowedOrigins], methods: [...UPLOAD_CORS.methods], headers: [...UPLOAD_CORS.headers] },
          maxAgeSeconds: UPLOAD_CORS.maxAgeSeconds,
        },
      ],
    });
  }

  // The account id is not a secret: it names the S3 endpoint https://{account}.r2.cloudflarestorage.com.
  return { target: 'r2', accountId, bucketName, publicUrl, environment: { R2_ACCOUNT_ID: accountId } };
}

/** AWS S3: only poses/ is public; what is left in staging/ expires as on R2. */
function s3Storage(settings: Settings): S3Storage {
  const bucket = new sst.aws.Bucket('Poses', {
    lifecycle: [{ id: 'expire-staging', prefix: STAGING_PREFIX, expiresIn: `${settings.stagingExpiryDays} days` }],
    policy: [{ actions: ['s3:GetObject'], principals: '*', paths: [`${PUBLIC_PREFIX}*`] }],
    cors:
      settings.allowedOrigins.length === 0
        ? false
        : {
            allowOrigins: [...settings.allowedOrigins],
            allowMethods: [...UPLOAD_CORS.methods],
            allowHeaders: [...UPLOAD_CORS.headers],
            maxAge: `${UPLOAD_CORS.maxAgeSeconds} seconds`,
          },
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
    target: 's3',
    bucket,
    bucketName: bucket.name,
    publicUrl: settings.publicUrl ?? $interpolate`https://${bucket.nodes.bucket.bucketRegionalDomainName}`,
    // The functions sign for the bucket's region (R2 itself signs for "auto").
    environment: { R2_ENDPOINT: $interpolate`https://s3.${region}.amazonaws.com`, R2_REGION: region },
  };
}
