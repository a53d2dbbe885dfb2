/**
 * Peak RSS of the thumbnail handler per upload, on what Lambda runs: the thumbnail function bundled as SST
 * bundles it (cold-start.ts), imported by a fresh `node` (no TypeScript loader), invoked once with local
 * mode's object-created event for an image staged in a DirectoryStore temp dir (STORAGE_MODE=local), under
 * `/usr/bin/time -v`. Default threads, as deployed. Also a baseline process (bundle and sharp loaded, nothing
 * processed), and images at MAX_INPUT_PIXELS (7071x7071, generated from the corpus in a temp dir).
 */
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { withThumbnailBundle } from './cold-start.ts';
import { log, NODE, runMeasured } from './common.ts';

export interface HandlerRss {
  image: string;
  /** `width x height`, or `baseline`. */
  size: string;
  rssBytes: number;
  ms: number;
  status: 'ready' | 'failed' | 'baseline';
  publishedBytes: number;
  thumbnailBytes: number;
}

/** 7071 x 7071 = 49,999,041 pixels: just under the default MAX_INPUT_PIXELS (50,000,000). */
const SIDE = 7071;

async function generateLargeImages(corpus: string, dir: string): Promise<{ name: string; file: string }[]> {
  const images: { name: string; file: string }[] = [];
  const jpeg = path.join(dir, `photo-${SIDE}.jpg`);
  await sharp(path.join(corpus, 'photo-5k.jpg')).resize(SIDE, SIDE, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(jpeg);
  images.push({ name: `photo-5k.jpg resized to ${SIDE}x${SIDE} (JPEG q90)`, file: jpeg });
  const png = path.join(dir, `art-${SIDE}.png`);
  await sharp(path.join(corpus, 'art-5k.png')).resize(SIDE, SIDE, { fit: 'fill' }).png().toFile(png);
  images.push({ name: `art-5k.png resized to ${SIDE}x${SIDE} (RGBA PNG)`, file: png });
  return images;
}

function handlerScript(bundle: string, key: string | undefined): string {
  return `
    const { handler } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
    let ms = 0;
    if (${JSON.stringify(key ?? null)} === null) {
      await import('sharp');
    } else {
      const start = performance.now();
      const result = await handler({ source: 'pose-storage.local', keys: [${JSON.stringify(key)}] }, { awsRequestId: 'rss', getRemainingTimeInMillis: () => 60000 });
      ms = performance.now() - start;
      if (result.batchItemFailures.length > 0) throw new Error('the handler failed: ' + JSON.stringify(result));
    }
    console.log(JSON.stringify({ ms }));
  `;
}

export async function runHandlerRss(corpus: string, images: readonly { name: string; file: string; width: number; height: number }[], withLarge: boolean): Promise<HandlerRss[]> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-rss-'));
  try {
    const large = withLarge ? await generateLargeImages(corpus, scratch) : [];
    return await withThumbnailBundle(async (bundle, bundleDir) => {
      const results: HandlerRss[] = [];
      const runOne = async (name: string, file: string | undefined, size: string) => {
        const root = await mkdtemp(path.join(scratch, 'root-'));
        const pose = { generationId: 'bench', poseId: 'rss' };
        const key = file && `staging/${pose.generationId}/${pose.poseId}/00000000-0000-4000-8000-000000000000`;
        if (file && key) {
          await mkdir(path.join(root, path.dirname(key)), { recursive: true });
          await copyFile(file, path.join(root, key));
        }
        const measured = await runMeasured(NODE, ['--input-type=module', '-e', handlerScript(bundle, key)], {
          cwd: bundleDir,
          env: { STORAGE_MODE: 'local', UPLOAD_PATH: root, PORT: '0' },
        });
        const { ms } = JSON.parse(measured.stdout.trim().split('\n').pop()!) as { ms: number };
        const size_ = async (relative: string) => (await stat(path.join(root, relative)).catch(() => undefined))?.size ?? 0;
        const publishedBytes = await size_(`poses/${pose.generationId}/${pose.poseId}.png`);
        const thumbnailBytes = await size_(`poses/${pose.generationId}/${pose.poseId}_thumb.png`);
        const status = !file ? 'baseline' : publishedBytes > 0 && thumbnailBytes > 0 ? 'ready' : 'failed';
        results.push({ image: name, size, rssBytes: measured.maxRssBytes, ms, status, publishedBytes, thumbnailBytes });
        log(`  ${name}: ${(measured.maxRssBytes / 2 ** 20).toFixed(0)} MiB peak RSS, ${ms.toFixed(0)} ms, ${status}`);
        await rm(root, { recursive: true, force: true });
      };
      await runOne('baseline (bundle + sharp loaded)', undefined, '');
      for (const image of images) await runOne(image.name, image.file, `${image.width}x${image.height}`);
      for (const image of large) await runOne(image.name, image.file, `${SIDE}x${SIDE}`);
      return results;
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
