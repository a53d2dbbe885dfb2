/**
 * The WAN section: the functions run in AWS and the bucket is R2, so every request and every byte crosses the
 * internet. A shaping proxy (shaping-proxy.ts: 40 ms round trip, 100 Mbit/s each way, a round trip per new
 * connection) sits between the handlers and the S3 test server; the uploads themselves are staged directly
 * (the client's PUT goes to R2, not through the function).
 *
 * For a 1 MP PNG, a 5K JPEG and a PNG carrying a large ComfyUI-style workflow chunk, it measures the thumbnail
 * function's time from the object-created event to `ready`, the bytes it sent and received and its requests
 * and round trips, against a straightforward implementation of the reference on the same link: download,
 * re-upload the image, write the thumbnail with the reference's settings, delete the upload (no copy, no
 * stripping, no lock, no record). And the same for a status call and a delete. Warm functions: each flow runs
 * once before it is measured (a first request loads the SDK and opens the connection).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import sharp from 'sharp';
import { createHandler as createDelete } from '../../lib/lambda/handlers/delete.ts';
import { createHandler as createStatus } from '../../lib/lambda/handlers/status.ts';
import { createHandler as createThumbnail } from '../../lib/lambda/handlers/thumbnail.ts';
import { parseConfig } from '../../lib/config.ts';
import { newStagingKey, type PoseRef } from '../../lib/layout.ts';
import { createLogger } from '../../lib/logger.ts';
import { createServices } from '../../lib/services.ts';
import { createS3Client } from '../../lib/storage/s3-client.ts';
import { S3Store } from '../../lib/storage/s3-store.ts';
import { httpEvent, lambdaContext } from '../support/http-events.ts';
import { startS3Server } from '../support/s3-server.ts';
import { log, median } from './common.ts';
import { roundTrips, startShapingProxy, type Traffic } from './shaping-proxy.ts';
import type { Image } from './thumbnails.ts';

export const WAN = { rttMs: 40, mbps: 100, handshakeRoundTrips: 2 } as const;

/** The workflow a ComfyUI PNG carries in a tEXt chunk: a large one (1 MiB of JSON). */
const WORKFLOW_BYTES = 1024 * 1024;

export interface FlowFigures {
  /** Median, ms. */
  ms: number;
  sent: number;
  received: number;
  requests: number;
  roundTrips: number;
}

export interface WanUpload {
  image: string;
  width: number;
  height: number;
  bytes: number;
  ours: FlowFigures;
  reference: FlowFigures;
}

export interface WanFigures {
  rttMs: number;
  mbps: number;
  runs: number;
  uploads: WanUpload[];
  status: { ours: FlowFigures };
  remove: { ours: FlowFigures; reference: FlowFigures };
}

const TOKEN = 'bench-wan-token-0123456789';

/** A PNG with a tEXt chunk (keyword `workflow`) of `size` bytes of JSON inserted after IHDR. */
function withWorkflow(png: Buffer, size: number): Buffer {
  const nodes = Array.from({ length: Math.ceil(size / 120) }, (_, id) => ({ id, type: 'KSampler', inputs: { seed: id * 7919, steps: 30, cfg: 7 } }));
  const text = Buffer.from(`workflow\0${JSON.stringify({ nodes })}`.slice(0, size), 'latin1');
  const type = Buffer.from('tEXt', 'latin1');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(text.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([type, text])));
  const ihdrEnd = 8 + 8 + 13 + 4;
  return Buffer.concat([png.subarray(0, ihdrEnd), length, type, text, crc, png.subarray(ihdrEnd)]);
}

/** The reference's flow, as it would be written straightforwardly with the SDK: no copy, no stripping. */
async function referenceProcess(client: S3Client, bucket: string, key: string, pose: PoseRef): Promise<void> {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  const isPng = bytes.subarray(1, 4).toString('latin1') === 'PNG';
  const image = isPng ? bytes : await sharp(bytes).rotate().png().toBuffer();
  const thumbnail = await sharp(bytes).rotate().resize(400, 400, { fit: 'cover' }).png({ quality: 85 }).toBuffer();
  const base = `poses/${pose.generationId}/${pose.poseId}`;
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${base}.png`, Body: image, ContentType: 'image/png' }));
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${base}_thumb.png`, Body: thumbnail, ContentType: 'image/png' }));
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

function s3Event(key: string, size: number): S3Event {
  return {
    Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { object: { key, size } } }],
  } as unknown as S3Event;
}

export async function runWan(images: readonly Image[], quick: boolean): Promise<WanFigures> {
  const runs = quick ? 2 : 5;
  const server = await startS3Server();
  const proxy = await startShapingProxy({ upstreamHost: '127.0.0.1', upstreamPort: Number(new URL(server.endpoint).port), ...WAN });
  try {
    const config = parseConfig({
      STORAGE_MODE: 'r2',
      ...server.r2Env,
      R2_ENDPOINT: proxy.endpoint,
      API_TOKEN: TOKEN,
    });
    const services = createServices({ config, logger: createLogger((line, level) => level === 'error' && log(line)) });
    const handlers = { thumbnail: createThumbnail(services), status: createStatus(services), remove: createDelete(services) };
    const direct = new S3Store(server.r2Config);
    const referenceClient = createS3Client(config.r2!);

    /** Runs `flow` `runs` times after one unmeasured run, each after `prepare`; medians of its figures. */
    async function measure(prepare: () => Promise<() => Promise<unknown>>): Promise<FlowFigures> {
      const samples: (Traffic & { ms: number })[] = [];
      for (let run = 0; run <= runs; run++) {
        const flow = await prepare();
        proxy.reset();
        const started = performance.now();
        await flow();
        const ms = performance.now() - started;
        if (run > 0) samples.push({ ...proxy.traffic(), ms });
      }
      return {
        ms: median(samples.map((sample) => sample.ms)),
        sent: median(samples.map((sample) => sample.sent)),
        received: median(samples.map((sample) => sample.received)),
        requests: median(samples.map((sample) => sample.requests.length)),
        roundTrips: median(samples.map((sample) => roundTrips(sample.requests, WAN.rttMs))),
      };
    }

    const stage = async (bytes: Buffer, contentType: string) => {
      const pose = { generationId: 'bench_wan', poseId: `p_${randomUUID().slice(0, 8)}` };
      const key = newStagingKey(pose);
      await direct.put(key, bytes, { contentType });
      return { pose, key };
    };

    const png = images.find((image) => image.name === 'ai-1024.png') ?? images.find((image) => image.format === 'png');
    const jpeg = images.find((image) => image.name === 'photo-5k.jpg') ?? images.find((image) => image.format === 'jpeg');
    const inputs: { name: string; bytes: Buffer; contentType: string }[] = [];
    if (png) {
      const bytes = await readFile(png.file);
      inputs.push({ name: png.name, bytes, contentType: 'image/png' });
      inputs.push({ name: `${png.name} + 1 MiB workflow chunk`, bytes: withWorkflow(bytes, WORKFLOW_BYTES), contentType: 'image/png' });
    }
    if (jpeg) inputs.push({ name: jpeg.name, bytes: await readFile(jpeg.file), contentType: 'image/jpeg' });

    const uploads: WanUpload[] = [];
    for (const input of inputs) {
      const { width = 0, height = 0 } = await sharp(input.bytes).metadata();
      const ours = await measure(async () => {
        const { key } = await stage(input.bytes, input.contentType);
        return () => handlers.thumbnail(s3Event(key, input.bytes.length), lambdaContext());
      });
      const reference = await measure(async () => {
        const { key, pose } = await stage(input.bytes, input.contentType);
        return () => referenceProcess(referenceClient, server.bucket, key, pose);
      });
      log(`  ${input.name}: ours ${ours.ms.toFixed(0)} ms, ${ours.requests} requests; reference ${reference.ms.toFixed(0)} ms, ${reference.requests} requests`);
      uploads.push({ image: input.name, width, height, bytes: input.bytes.length, ours, reference });
    }

    // A ready pose, to ask its status and to delete.
    const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#48c' } }).png().toBuffer();
    const ready = async (): Promise<PoseRef> => {
      const { key, pose } = await stage(small, 'image/png');
      await handlers.thumbnail(s3Event(key, small.length), lambdaContext());
      return pose;
    };
    const auth = { authorization: `Bearer ${TOKEN}` };
    const statusPose = await ready();
    const status = await measure(async () => () =>
      handlers.status(httpEvent({ method: 'GET', path: `/poses/${statusPose.generationId}/${statusPose.poseId}`, headers: auth }), lambdaContext()),
    );
    const removeOurs = await measure(async () => {
      const pose = await ready();
      return () => handlers.remove(httpEvent({ method: 'DELETE', path: `/poses/${pose.generationId}/${pose.poseId}`, headers: auth }), lambdaContext());
    });
    const removeReference = await measure(async () => {
      const pose = await ready();
      const base = `poses/${pose.generationId}/${pose.poseId}`;
      const { DeleteObjectsCommand } = await import('@aws-sdk/client-s3');
      return () =>
        referenceClient.send(
          new DeleteObjectsCommand({ Bucket: server.bucket, Delete: { Objects: [{ Key: `${base}.png` }, { Key: `${base}_thumb.png` }], Quiet: true } }),
        );
    });
    log(`  status: ${status.ms.toFixed(0)} ms, ${status.requests} requests in ${status.roundTrips} round trip(s)`);
    log(`  delete: ours ${removeOurs.ms.toFixed(0)} ms (${removeOurs.requests} requests), reference ${removeReference.ms.toFixed(0)} ms`);
    referenceClient.destroy();
    return { ...WAN, runs, uploads, status: { ours: status }, remove: { ours: removeOurs, reference: removeReference } };
  } finally {
    await proxy.close();
    await server.stop();
  }
}
