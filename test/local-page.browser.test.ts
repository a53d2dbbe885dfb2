/**
 * The local page (`/`) in a real browser (Debian's Chromium through playwright-core): pick a file, watch it
 * upload through the presigned URL, see the 400x400 thumbnail load and the status say Ready, then delete. It
 * speaks in sentences (limits, ids, rejections), shows the thumbnail pixel for pixel on a high-DPI screen and
 * the new image after a re-upload, and logs nothing to the console. Without /usr/bin/chromium the suite is
 * skipped locally, and fails in CI (where it must run).
 *
 * Some assertions need the status route's newer fields (a rejection's `message`; a ready pose's `width`,
 * `height`, `bytes` and `version`): they are marked "needs the status fields".
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../lib/operations/format.ts';
import { listFiles, makePng, startTestServer, waitForStatus, type PoseStatusBody, type TestServer } from './support/local-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = '/tmp/local-page.png';
const available = existsSync(CHROMIUM);
/** Small enough for a test to go over it, large enough for every image the tests upload. */
const UPLOAD_MAX_BYTES = 2 * 1024 * 1024;

if (!available) {
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: the browser test must run in CI (apt-get install chromium)`);
  console.warn(`[local-page.browser.test] skipped: ${CHROMIUM} is missing (install Debian's chromium to run it)`);
}

describe.skipIf(!available)('the local page in Chromium', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startTestServer({ env: { UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES) } }),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          '--disable-quic',
        ],
      }),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /**
   * Opens the page at `origin` and collects what would tell of a broken page: script errors, console errors
   * (a 404 for a favicon among them), CSP or network failures.
   */
  async function openPage(origin: string, options: { deviceScaleFactor?: number } = {}): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, ...options });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('requestfailed', (request) => problems.push(`requestfailed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`));
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
    });
    const response = await page.goto(`${origin}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    // The module has run once it filled in fresh ids.
    await page.waitForFunction(() => (document.getElementById('generationId') as HTMLInputElement).value.startsWith('gen_'));
    return { page, problems };
  }

  /** Picks `png` with the page's file input and waits for Ready with the thumbnail loaded (fails on an error shown). */
  async function uploadThroughPage(page: Page, png: Buffer): Promise<{ generationId: string; poseId: string }> {
    const generationId = await page.inputValue('#generationId');
    const poseId = await page.inputValue('#poseId');
    await page.evaluate(() => (document.getElementById('status')!.textContent = ''));
    await page.setInputFiles('#file', { name: 'pose.png', mimeType: 'image/png', buffer: png });
    await page.waitForFunction(
      () => {
        const status = document.getElementById('status')!;
        const image = document.getElementById('image') as HTMLImageElement;
        const thumbnail = document.getElementById('thumbnail') as HTMLImageElement;
        const loaded = (element: HTMLImageElement) => element.complete && element.naturalWidth > 0;
        return status.classList.contains('error') || (status.textContent === 'Ready.' && loaded(image) && loaded(thumbnail));
      },
      undefined,
      { timeout: 15_000 },
    );
    expect(await page.textContent('#status')).toBe('Ready.');
    return { generationId, poseId };
  }

  /** Picks `bytes` and waits for the status line to say something other than the upload's progress. */
  async function pickAndWaitForVerdict(page: Page, name: string, bytes: Buffer): Promise<string> {
    await page.evaluate(() => (document.getElementById('status')!.textContent = ''));
    await page.setInputFiles('#file', { name, mimeType: 'image/png', buffer: bytes });
    await page.waitForFunction(
      () => {
        const text = document.getElementById('status')?.textContent ?? '';
        return text !== '' && !text.startsWith('Uploading') && !text.startsWith('Uploaded');
      },
      undefined,
      { timeout: 15_000 },
    );
    return (await page.textContent('#status')) ?? '';
  }

  /** The centre pixel of an image element, as drawn by the browser (RGB). */
  const centrePixel = (page: Page, id: string) =>
    page.evaluate((elementId) => {
      const image = document.getElementById(elementId) as HTMLImageElement;
      const canvas = document.createElement('canvas');
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const context = canvas.getContext('2d')!;
      context.drawImage(image, 0, 0);
      return [...context.getImageData(image.naturalWidth >> 1, image.naturalHeight >> 1, 1, 1).data.slice(0, 3)];
    }, id);

  it('uploads a picked PNG, shows the 400x400 thumbnail and the image with its size, then deletes the pose', async () => {
    const { page, problems } = await openPage(server.url);
    const png = await makePng(640, 480);
    const { generationId, poseId } = await uploadThroughPage(page, png);
    expect(generationId).toMatch(/^gen_[0-9a-f]{8}$/);
    expect(poseId).toMatch(/^pose_[0-9a-f]{8}$/);
    const status = await waitForStatus(server.url, { generationId, poseId }, ['ready']);

    const shown = await page.evaluate(() => {
      const image = document.getElementById('image') as HTMLImageElement;
      const thumbnail = document.getElementById('thumbnail') as HTMLImageElement;
      return {
        status: document.getElementById('status')?.textContent,
        statusIsError: document.getElementById('status')?.classList.contains('error'),
        thumbnail: { src: thumbnail.src, width: thumbnail.naturalWidth, height: thumbnail.naturalHeight },
        image: { src: image.src, width: image.naturalWidth, height: image.naturalHeight, complete: image.complete },
        details: document.getElementById('imageDetails')?.textContent,
        resultHidden: (document.getElementById('result') as HTMLElement).hidden,
        deleteHidden: (document.getElementById('delete') as HTMLButtonElement).hidden,
        progressHidden: (document.getElementById('progress') as HTMLProgressElement).hidden,
        captions: [document.getElementById('imageUrl')?.textContent, document.getElementById('thumbnailUrl')?.textContent],
      };
    });
    expect(shown.status).toBe('Ready.');
    expect(shown.statusIsError).toBe(false);
    // Needs the status fields: the URLs carry the publication's version, and the image its size.
    expect(status.version).toEqual(expect.any(String));
    const version = `?v=${encodeURIComponent(status.version!)}`;
    expect(shown.thumbnail).toEqual({ src: `${server.url}/uploads/poses/${generationId}/${poseId}_thumb.png${version}`, width: 400, height: 400 });
    expect(shown.image).toEqual({ src: `${server.url}/uploads/poses/${generationId}/${poseId}.png${version}`, width: 640, height: 480, complete: true });
    const publishedSize = (await stat(path.join(server.dir, 'poses', generationId, `${poseId}.png`))).size;
    expect(shown.details).toBe(`640 × 480 px · ${formatBytes(publishedSize)}`);
    expect(shown.captions).toEqual([`/uploads/poses/${generationId}/${poseId}.png`, `/uploads/poses/${generationId}/${poseId}_thumb.png`]);
    expect(shown).toMatchObject({ resultHidden: false, deleteHidden: false, progressHidden: true });

    // The server agrees, and the published image is the picked file, byte for byte.
    expect(await listFiles(path.join(server.dir, 'poses', generationId))).toEqual([`${poseId}.png`, `${poseId}_thumb.png`]);
    const published = Buffer.from(await (await fetch(`${server.url}/uploads/poses/${generationId}/${poseId}.png`)).arrayBuffer());
    expect(published.equals(png)).toBe(true);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.click('#delete');
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'Deleted.');
    expect(await page.isHidden('#result')).toBe(true);
    expect(await page.isHidden('#delete')).toBe(true);
    expect(await page.inputValue('#poseId')).not.toBe(poseId); // ready for the next upload
    expect(await listFiles(path.join(server.dir, 'poses'))).toEqual([]);
    expect((await fetch(`${server.url}/poses/${generationId}/${poseId}`)).status).toBe(404);
    expect((await fetch(`${server.url}/uploads/poses/${generationId}/${poseId}_thumb.png`)).status).toBe(404);

    expect(problems).toEqual([]);
    await page.close();
  });

  it('works the same when the page is opened at http://127.0.0.1:{port} (the address the server listens on)', async () => {
    const { page, problems } = await openPage(server.ipUrl);
    const { generationId, poseId } = await uploadThroughPage(page, await makePng(300, 500));
    expect(await page.evaluate(() => (document.getElementById('thumbnail') as HTMLImageElement).naturalWidth)).toBe(400);
    expect(await page.evaluate(() => (document.getElementById('image') as HTMLImageElement).naturalHeight)).toBe(500);
    expect((await waitForStatus(server.url, { generationId, poseId }, ['ready'])).status).toBe('ready');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the new image after a re-upload with the same ids (newest upload wins), never the cached one', async () => {
    const { page, problems } = await openPage(server.url);
    const solid = (background: string) => sharp({ create: { width: 320, height: 240, channels: 3, background } }).png().toBuffer();
    const { generationId, poseId } = await uploadThroughPage(page, await solid('#ff0000'));
    const first = await waitForStatus(server.url, { generationId, poseId }, ['ready']);
    expect(await centrePixel(page, 'image')).toEqual([255, 0, 0]);
    // Shown at its own size: the box the page reserves from the status never upscales a small image.
    expect(await page.evaluate(() => [document.getElementById('image')!.getBoundingClientRect().width, document.getElementById('image')!.getBoundingClientRect().height])).toEqual([320, 240]);
    expect(await centrePixel(page, 'thumbnail')).toEqual([255, 0, 0]);

    // The same ids, another image of the same size: only its pixels tell them apart.
    expect(await uploadThroughPage(page, await solid('#0000ff'))).toEqual({ generationId, poseId });
    const second = await waitForStatus(server.url, { generationId, poseId }, ['ready']);
    expect(await centrePixel(page, 'image')).toEqual([0, 0, 255]);
    expect(await centrePixel(page, 'thumbnail')).toEqual([0, 0, 255]);
    // Needs the status fields: each publication has its own version, and the page shows it in the URLs.
    expect(second.version).not.toBe(first.version);
    expect(await page.getAttribute('#image', 'src')).toBe(`/uploads/poses/${generationId}/${poseId}.png?v=${encodeURIComponent(second.version!)}`);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the 400x400 thumbnail at 400 CSS pixels, each of its pixels an exact 2x2 block on a 2x screen', async () => {
    const { page, problems } = await openPage(server.url, { deviceScaleFactor: 2 });
    // Noise: any smoothing or scaling of the thumbnail changes neighbouring device pixels.
    let seed = 42;
    const noise = Buffer.alloc(400 * 400 * 3, 0).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24) & 0xff);
    const png = await sharp(noise, { raw: { width: 400, height: 400, channels: 3 } }).png().toBuffer();
    const { generationId, poseId } = await uploadThroughPage(page, png);

    // One image pixel per CSS pixel: the thumbnail keeps its natural size whatever the screen (not 200 CSS
    // pixels, half of it, on a 2x screen); the 2x screen then shows each image pixel as 2x2 device pixels.
    const layout = await page.evaluate(() => {
      const thumbnail = document.getElementById('thumbnail') as HTMLImageElement;
      const box = thumbnail.getBoundingClientRect();
      return { ratio: devicePixelRatio, natural: [thumbnail.naturalWidth, thumbnail.naturalHeight], css: [box.width, box.height] };
    });
    expect(layout).toEqual({ ratio: 2, natural: [400, 400], css: [400, 400] });

    const served = await sharp(path.join(server.dir, 'poses', generationId, `${poseId}_thumb.png`)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    // The element's screenshot is its box rounded out to whole device pixels (the box may start at y = 371.78
    // CSS pixels): the 800x800 device pixels of the image lie at an offset of at most 2 inside it.
    const shot = await sharp(await page.locator('#thumbnail').screenshot()).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const { width, height } = shot.info;
    expect(width - 800).toBeGreaterThanOrEqual(0);
    expect(height - 800).toBeGreaterThanOrEqual(0);
    expect(Math.max(width, height)).toBeLessThanOrEqual(802);
    const differingAt = (dx: number, dy: number) => {
      let count = 0;
      for (let y = 0; y < 800; y++) {
        for (let x = 0; x < 800; x++) {
          const source = ((y >> 1) * 400 + (x >> 1)) * 3;
          const shown = ((y + dy) * width + x + dx) * 3;
          for (let channel = 0; channel < 3; channel++) {
            if (Math.abs(served.data[source + channel]! - shot.data[shown + channel]!) > 1) count++;
          }
        }
      }
      return count;
    };
    const offsets = Array.from({ length: (width - 799) * (height - 799) }, (_, index) => [index % (width - 799), Math.floor(index / (width - 799))] as const);
    const differing = Math.min(...offsets.map(([dx, dy]) => differingAt(dx, dy)));
    expect(differing).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  });

  describe('with POSE_VARIANTS', () => {
    let variantServer: TestServer;

    beforeAll(async () => {
      variantServer = await startTestServer({
        env: { UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES), POSE_VARIANTS: 'thumb.webp:400x400,thumb.avif:400x400,preview.webp:1024w,placeholder' },
      });
    });

    afterAll(async () => {
      await variantServer?.stop();
    });

    it('shows the variants through <picture> (AVIF first, the 1024w preview for the image) and the placeholder until each image loads', async () => {
      const { page, problems } = await openPage(variantServer.url);
      // The published files are held back until the placeholder has been looked at.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      await page.route(/\/uploads\/poses\//, async (route) => {
        await released;
        await route.continue();
      });
      const generationId = await page.inputValue('#generationId');
      const poseId = await page.inputValue('#poseId');
      const png = await sharp({ create: { width: 1600, height: 1200, channels: 3, background: '#3366cc' } }).png().toBuffer();
      await page.setInputFiles('#file', { name: 'pose.png', mimeType: 'image/png', buffer: png });
      await page.waitForFunction(() => {
        const line = document.getElementById('status')!;
        return line.textContent === 'Ready.' || line.classList.contains('error');
      });
      expect(await page.textContent('#status')).toBe('Ready.');
      const status = await waitForStatus(variantServer.url, { generationId, poseId }, ['ready']);
      const base = `${variantServer.url}/uploads/poses/${generationId}/${poseId}`;
      const v = `?v=${encodeURIComponent(status.version!)}`;
      expect(status.variants).toEqual({
        'thumb.webp': `/uploads/poses/${generationId}/${poseId}_thumb.webp`,
        'thumb.avif': `/uploads/poses/${generationId}/${poseId}_thumb.avif`,
        'preview.webp': `/uploads/poses/${generationId}/${poseId}_preview.webp`,
      });
      // The thumbnail's PNG palette moves a solid colour by a unit or so.
      const dominant = [1, 3, 5].map((at) => parseInt(status.placeholder!.dominantColor.slice(at, at + 2), 16));
      expect(dominant).toEqual([0x33, 0x66, 0xcc].map((channel) => expect.toSatisfy((shown: number) => Math.abs(shown - channel) <= 2)));

      const look = () =>
        page.evaluate(() => {
          const describe = (id: string) => {
            const image = document.getElementById(id) as HTMLImageElement;
            const style = getComputedStyle(image);
            return {
              loaded: image.complete && image.naturalWidth > 0,
              currentSrc: image.currentSrc,
              placeholder: image.classList.contains('placeholder'),
              // The ThumbHash rendered as a PNG data URL, or none.
              backgroundImage: style.backgroundImage.startsWith('url("data:image/png;base64,') ? 'a data URL' : style.backgroundImage.slice(0, 40),
              backgroundColor: style.backgroundColor,
              box: [Math.round(image.getBoundingClientRect().width), Math.round(image.getBoundingClientRect().height)],
              sources: [...image.parentElement!.querySelectorAll('source')].map((source) => ({ type: source.type, srcset: source.srcset })),
            };
          };
          return { image: describe('image'), thumbnail: describe('thumbnail') };
        });

      // While the files are on their way: the ThumbHash over the dominant colour, in the images' own boxes.
      const waiting = await look();
      for (const shown of [waiting.image, waiting.thumbnail]) {
        expect(shown).toMatchObject({ loaded: false, placeholder: true, backgroundImage: 'a data URL', backgroundColor: `rgb(${dominant.join(', ')})` });
      }
      expect(waiting.thumbnail.box).toEqual([400, 400]);
      // The image's box is there before the image, in its 4:3 aspect ratio.
      expect(Math.abs(waiting.image.box[0]! - (waiting.image.box[1]! * 4) / 3)).toBeLessThanOrEqual(1);
      expect(waiting.image.box[1]).toBeGreaterThan(200);
      expect(waiting.thumbnail.sources).toEqual([
        { type: 'image/avif', srcset: `/uploads/poses/${generationId}/${poseId}_thumb.avif${v} 400w` },
        { type: 'image/webp', srcset: `/uploads/poses/${generationId}/${poseId}_thumb.webp${v} 400w` },
      ]);
      expect(waiting.image.sources).toEqual([{ type: 'image/webp', srcset: `/uploads/poses/${generationId}/${poseId}_preview.webp${v} 1024w` }]);

      release();
      await page.waitForFunction(() => ['image', 'thumbnail'].every((id) => (document.getElementById(id) as HTMLImageElement).naturalWidth > 0 && !document.getElementById(id)!.classList.contains('placeholder')));
      const loaded = await look();
      // Chromium shows AVIF: the thumbnail is the AVIF variant, the image the WebP preview; the placeholder is gone.
      expect(loaded.thumbnail).toMatchObject({ loaded: true, currentSrc: `${base}_thumb.avif${v}`, placeholder: false, backgroundImage: 'none', box: [400, 400] });
      expect(loaded.image).toMatchObject({ loaded: true, currentSrc: `${base}_preview.webp${v}`, placeholder: false, backgroundImage: 'none', box: waiting.image.box }); // nothing moved
      const centre = await centrePixel(page, 'thumbnail');
      expect(centre.map((channel, i) => Math.abs(channel - [0x33, 0x66, 0xcc][i]!))).toEqual([0, 0, 0].map(() => expect.toSatisfy((off: number) => off <= 4)));
      expect(await page.textContent('#variantUrls')).toContain(`preview.webp: /uploads/poses/${generationId}/${poseId}_preview.webp`);
      expect(problems).toEqual([]);
      await page.close();
    });
  });

  it('says the size limit in MB and refuses a larger file before sending anything', async () => {
    const { page, problems } = await openPage(server.url);
    const limit = formatBytes(UPLOAD_MAX_BYTES);
    expect(await page.textContent('#maxSize')).toBe(limit);
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    const big = Buffer.alloc(UPLOAD_MAX_BYTES + 512 * 1024, 7);
    expect(await pickAndWaitForVerdict(page, 'big.png', big)).toBe(`big.png is ${formatBytes(big.length)}, more than the ${limit} allowed.`);
    expect(await page.evaluate(() => document.getElementById('status')?.classList.contains('error'))).toBe(true);
    expect(requests).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('says the id rule in words, and refuses an invalid id before sending anything', async () => {
    const { page, problems } = await openPage(server.url);
    expect(await page.textContent('#idRule')).toContain('1 to 128 letters, digits, "-" or "_"');
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    const png = await makePng(20, 20);
    await page.fill('#poseId', 'my pose');
    expect(await pickAndWaitForVerdict(page, 'pose.png', png)).toBe('The poseId may hold only letters, digits, "-" and "_", 1 to 128 of them, and may not end in "_thumb".');
    await page.fill('#poseId', 'pose_thumb');
    expect(await pickAndWaitForVerdict(page, 'pose.png', png)).toContain('may not end in "_thumb"');
    await page.fill('#poseId', 'pose-1');
    await page.fill('#generationId', 'gen/1');
    expect(await pickAndWaitForVerdict(page, 'pose.png', png)).toBe('The generationId may hold only letters, digits, "-" and "_", 1 to 128 of them.');
    expect(requests).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a rejection as the server\'s sentence, offers no Delete, and publishes nothing', async () => {
    const { page, problems } = await openPage(server.url);
    const fake = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(300, 1)]);
    const generationId = await page.inputValue('#generationId');
    const poseId = await page.inputValue('#poseId');
    const shownText = await pickAndWaitForVerdict(page, 'fake.png', fake);
    const status: PoseStatusBody = await waitForStatus(server.url, { generationId, poseId }, ['rejected']);
    expect(status.reason).toBe('corrupt_image');
    // Needs the status fields: the page shows the server's sentence, not the reason code.
    expect(status.message).toEqual(expect.any(String));
    expect(shownText).toBe(status.message);
    expect(shownText).not.toContain('corrupt_image');
    expect(await page.evaluate(() => document.getElementById('status')?.classList.contains('error'))).toBe(true);
    expect(await page.isHidden('#result')).toBe(true);
    expect(await page.isHidden('#delete')).toBe(true);
    expect(await listFiles(path.join(server.dir, 'poses', generationId))).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  describe('an app on another origin, with the client of lib/client/upload-pose.ts', () => {
    let app: Server;
    let appOrigin: string;
    /** Other sites' pages may call a server only behind a token (without one it answers its own pages only). */
    let tokenServer: TestServer;
    const token = 'browser-test-token-0123456789';

    beforeAll(async () => {
      // The client bundled for the browser, served with a blank page from a second server: another origin.
      const client = await build({
        entryPoints: [new URL('../lib/client/upload-pose.ts', import.meta.url).pathname],
        bundle: true,
        format: 'iife',
        globalName: 'PoseClient',
        target: 'es2022',
        write: false,
      });
      const script = client.outputFiles[0]!.text;
      app = createServer((request, response) => {
        const [type, body] = request.url === '/client.js' ? ['text/javascript', script] : ['text/html', '<!doctype html><title>app</title><script src="/client.js"></script>'];
        response.writeHead(200, { 'Content-Type': `${type}; charset=utf-8` });
        response.end(body);
      });
      await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
      appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
      tokenServer = await startTestServer({ env: { API_TOKEN: token, ALLOWED_ORIGINS: appOrigin, UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES) } });
    });

    afterAll(async () => {
      await new Promise((resolve) => app?.close(resolve));
      await tokenServer?.stop();
    });

    it('without API_TOKEN, cannot delete, overwrite or upload a pose: the server answers its own pages only', async () => {
      const pose = { generationId: 'gen-foreign', poseId: 'kept' };
      const saved = await server.server.services.storage.savePoseWithThumbnail({ ...pose, imageBuffer: await makePng(120, 80) });
      const page = await browser.newPage();
      await page.goto(`${appOrigin}/`);
      const attempts = await page.evaluate(
        async ({ apiUrl, path, body }) => {
          const attempt = (label: string, run: () => Promise<Response>) =>
            run().then(
              (response) => `${label}: HTTP ${response.status}${response.type === 'opaque' ? ' (opaque)' : ''}`,
              (error: unknown) => `${label}: ${error instanceof Error ? error.name : String(error)}`,
            );
          return [
            await attempt('DELETE', () => fetch(`${apiUrl}${path}`, { method: 'DELETE' })),
            await attempt('POST json', () => fetch(`${apiUrl}/uploads`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })),
            // A "simple" request goes out without a preflight: the server itself must refuse it.
            await attempt('POST text/plain', () => fetch(`${apiUrl}/uploads`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body })),
            await attempt('POST no-cors', () => fetch(`${apiUrl}/uploads`, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body })),
          ];
        },
        {
          apiUrl: server.url,
          path: `/poses/${pose.generationId}/${pose.poseId}`,
          body: JSON.stringify({ ...pose, contentType: 'image/png', contentLength: 100 }),
        },
      );
      // Every attempt failed for the page (a CORS refusal is a TypeError; no-cors gets an opaque answer).
      expect(attempts).toEqual([
        'DELETE: TypeError',
        'POST json: TypeError',
        'POST text/plain: TypeError',
        'POST no-cors: HTTP 0 (opaque)',
      ]);
      // The pose is as it was (the server's own refusal of such requests: test/local-server.refusals.test.ts).
      const status = await fetch(`${server.url}/poses/${pose.generationId}/${pose.poseId}`);
      expect(((await status.json()) as PoseStatusBody).status).toBe('ready');
      expect((await fetch(`${server.url}${saved.imageUrl}`)).status).toBe(200);
      await page.close();
    });

    it('presigns, PUTs with XMLHttpRequest (with progress) across origins, and reads the published files', async () => {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      await page.goto(`${appOrigin}/`);
      const png = await makePng(500, 300);
      const outcome = await page.evaluate(
        async ({ apiUrl, bytes, token }) => {
          const client = (globalThis as unknown as { PoseClient: typeof import('../lib/client/upload-pose.ts') }).PoseClient;
          const progress: { phase: string; loaded: number; total: number }[] = [];
          const pose = await client.uploadPose(new Blob([new Uint8Array(bytes)], { type: 'image/png' }), {
            generationId: 'gen-cross',
            poseId: 'pose-cross',
            apiUrl,
            token,
            onProgress: (event) => progress.push(event),
            pollIntervalMs: 50,
          });
          if (pose.status !== 'ready') return { pose, progress };
          // The published image, read by script from the app's origin (needs CORS on the static route).
          const image = await fetch(`${apiUrl}${pose.imageUrl}`);
          const thumbnail = new Image();
          thumbnail.src = `${apiUrl}${pose.thumbnailUrl}`;
          await thumbnail.decode();
          return { pose, progress, imageBytes: (await image.arrayBuffer()).byteLength, thumbnailWidth: thumbnail.naturalWidth };
        },
        { apiUrl: tokenServer.url, bytes: [...png], token },
      );
      // (toMatchObject: newer servers add the image's size and version to a ready pose.)
      expect(outcome.pose).toMatchObject({
        generationId: 'gen-cross',
        poseId: 'pose-cross',
        status: 'ready',
        imageUrl: '/uploads/poses/gen-cross/pose-cross.png',
        thumbnailUrl: '/uploads/poses/gen-cross/pose-cross_thumb.png',
        width: 500,
        height: 300,
        bytes: png.length,
        version: expect.stringMatching(/^[0-9a-z]+$/),
      });
      expect(outcome.imageBytes).toBe(png.length);
      expect(outcome.thumbnailWidth).toBe(400);
      // XMLHttpRequest's upload progress ends at the whole size, then the client waits for processing.
      const uploading = outcome.progress.filter((event) => event.phase === 'uploading');
      expect(uploading.length).toBeGreaterThan(0);
      expect(uploading.at(-1)).toEqual({ phase: 'uploading', loaded: png.length, total: png.length });
      expect(outcome.progress.at(-1)).toEqual({ phase: 'processing', loaded: png.length, total: png.length });
      expect(problems).toEqual([]);
      await page.close();
    });
  });
});
