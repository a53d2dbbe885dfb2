/**
 * Two distinguishable uploads of one pose (red and blue, different sizes), what each renders to, and how to
 * stage them and tell which one a published file came from: the race and failure tests' common ground.
 */
import sharp from 'sharp';
import { parseConfig } from '../../lib/config.ts';
import { newStagingKey, type PoseRef } from '../../lib/layout.ts';
import { createLogger } from '../../lib/logger.ts';
import { renderPose, type RenderedPose } from '../../lib/pose-image.ts';
import { createServices, type Services } from '../../lib/services.ts';
import type { ObjectStore } from '../../lib/storage/object-store.ts';

export interface Upload {
  bytes: Buffer;
  rendered: RenderedPose;
}

export interface TwoUploads {
  red: Upload;
  blue: Upload;
  /** Which upload a published image or thumbnail is. */
  which(body: Buffer | undefined, part: 'image' | 'thumbnail'): 'red' | 'blue' | 'none' | 'other';
}

export async function twoUploads(): Promise<TwoUploads> {
  const upload = async (width: number, height: number, background: string): Promise<Upload> => {
    const bytes = await sharp({ create: { width, height, channels: 3, background } }).png().toBuffer();
    return { bytes, rendered: await renderPose(bytes, { maxInputPixels: 1e6 }) };
  };
  const [red, blue] = await Promise.all([upload(96, 64, '#c33'), upload(80, 120, '#36c')]);
  return {
    red,
    blue,
    which: (body, part) =>
      body === undefined ? 'none' : body.equals(red.rendered[part]) ? 'red' : body.equals(blue.rendered[part]) ? 'blue' : 'other',
  };
}

/** Puts `upload` where a client's PUT would (a fresh staging key), and returns the key. */
export async function stage(store: ObjectStore, pose: PoseRef, upload: Upload): Promise<string> {
  const key = newStagingKey(pose);
  await store.put(key, upload.bytes, { contentType: 'image/png' });
  return key;
}

/** The services over `store`, logging nothing (local mode on `uploadPath`). */
export function quietServices(store: ObjectStore, uploadPath: string): Services {
  return createServices({ config: parseConfig({ UPLOAD_PATH: uploadPath }), store, logger: createLogger(() => undefined) });
}
