/**
 * The local page (`/`) in a real browser (Debian's Chromium through playwright-core): pick a file, watch it
 * upload through the presigned URL, see the 400x400 thumbnail load and the status say Ready, then delete.
 * Without /usr/bin/chromium the suite is skipped locally, and fails in CI (where it must run).
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFiles, makePng, startTestServer, waitForStatus, type TestServer } from './support/local-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = '/tmp/local-page.png';
const available = existsSync(CHROMIUM);

if (!available) {
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: the browser test must run in CI (apt-get install chromium)`);
  console.warn(`[local-page.browser.test] skipped: ${CHROMIUM} is missing (install Debian's chromium to run it)`);
}

describe.skipIf(!available)('the local page in Chromium', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startTestServer(),
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

  /** Opens the page at `origin` and collects what would tell of a broken page: script errors, CSP or network failures. */
  async function openPage(origin: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      // Chromium asks every page for /favicon.ico, and logs its 404.
      if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) problems.push(`console: ${message.text()}`);
    });
    page.on('requestfailed', (request) => problems.push(`requestfailed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`));
    const response = await page.goto(`${origin}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    // The module has run once it filled in fresh ids.
    await page.waitForFunction(() => (document.getElementById('generationId') as HTMLInputElement).value.startsWith('gen_'));
    return { page, problems };
  }

  async function uploadThroughPage(page: Page, png: Buffer): Promise<{ generationId: string; poseId: string }> {
    const generationId = await page.inputValue('#generationId');
    const poseId = await page.inputValue('#poseId');
    await page.setInputFiles('#file', { name: 'pose.png', mimeType: 'image/png', buffer: png });
    // Ready with the thumbnail loaded, or an error shown (then fail at once, with the page's message).
    await page.waitForFunction(
      () => {
        const status = document.getElementById('status')!;
        const thumbnail = document.getElementById('thumbnail') as HTMLImageElement;
        return status.classList.contains('error') || (status.textContent === 'Ready.' && thumbnail.complete && thumbnail.naturalWidth > 0);
      },
      undefined,
      { timeout: 15_000 },
    );
    expect(await page.textContent('#status')).toBe('Ready.');
    return { generationId, poseId };
  }

  it('uploads a picked PNG, shows the 400x400 thumbnail and the image, then deletes the pose', async () => {
    const { page, problems } = await openPage(server.url);
    const png = await makePng(640, 480);
    const { generationId, poseId } = await uploadThroughPage(page, png);
    expect(generationId).toMatch(/^gen_[0-9a-f]{8}$/);
    expect(poseId).toMatch(/^pose_[0-9a-f]{8}$/);

    const shown = await page.evaluate(() => {
      const image = document.getElementById('image') as HTMLImageElement;
      const thumbnail = document.getElementById('thumbnail') as HTMLImageElement;
      return {
        status: document.getElementById('status')?.textContent,
        statusIsError: document.getElementById('status')?.classList.contains('error'),
        thumbnail: { src: thumbnail.src, width: thumbnail.naturalWidth, height: thumbnail.naturalHeight },
        image: { src: image.src, width: image.naturalWidth, height: image.naturalHeight, complete: image.complete },
        resultHidden: (document.getElementById('result') as HTMLElement).hidden,
        deleteHidden: (document.getElementById('delete') as HTMLButtonElement).hidden,
        progressHidden: (document.getElementById('progress') as HTMLProgressElement).hidden,
        captions: [document.getElementById('imageUrl')?.textContent, document.getElementById('thumbnailUrl')?.textContent],
      };
    });
    expect(shown.status).toBe('Ready.');
    expect(shown.statusIsError).toBe(false);
    expect(shown.thumbnail).toEqual({ src: `${server.url}/uploads/poses/${generationId}/${poseId}_thumb.png`, width: 400, height: 400 });
    expect(shown.image).toEqual({ src: `${server.url}/uploads/poses/${generationId}/${poseId}.png`, width: 640, height: 480, complete: true });
    expect(shown.captions).toEqual([`/uploads/poses/${generationId}/${poseId}.png`, `/uploads/poses/${generationId}/${poseId}_thumb.png`]);
    expect(shown).toMatchObject({ resultHidden: false, deleteHidden: false, progressHidden: true });

    // The server agrees, and the published image is the picked file, byte for byte.
    expect((await waitForStatus(server.url, { generationId, poseId }, ['ready'])).status).toBe('ready');
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

  it('shows a rejection for bytes that only look like a PNG, and publishes nothing', async () => {
    const { page, problems } = await openPage(server.url);
    const fake = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(300, 1)]);
    const generationId = await page.inputValue('#generationId');
    await page.setInputFiles('#file', { name: 'fake.png', mimeType: 'image/png', buffer: fake });
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Rejected'), undefined, { timeout: 15_000 });
    expect(await page.textContent('#status')).toBe('Rejected: corrupt_image');
    expect(await page.evaluate(() => document.getElementById('status')?.classList.contains('error'))).toBe(true);
    expect(await page.isHidden('#result')).toBe(true);
    expect(await listFiles(path.join(server.dir, 'poses', generationId))).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  describe('an app on another origin, with the client of lib/client/upload-pose.ts', () => {
    let app: Server;
    let appOrigin: string;

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
    });

    afterAll(async () => {
      await new Promise((resolve) => app?.close(resolve));
    });

    it('presigns, PUTs with XMLHttpRequest (with progress) across origins, and reads the published files', async () => {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) problems.push(`console: ${message.text()}`);
      });
      await page.goto(`${appOrigin}/`);
      const png = await makePng(500, 300);
      const outcome = await page.evaluate(
        async ({ apiUrl, bytes }) => {
          const client = (globalThis as unknown as { PoseClient: typeof import('../lib/client/upload-pose.ts') }).PoseClient;
          const progress: { phase: string; loaded: number; total: number }[] = [];
          const pose = await client.uploadPose(new Blob([new Uint8Array(bytes)], { type: 'image/png' }), {
            generationId: 'gen-cross',
            poseId: 'pose-cross',
            apiUrl,
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
        { apiUrl: server.url, bytes: [...png] },
      );
      expect(outcome.pose).toEqual({
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
