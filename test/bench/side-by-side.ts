/**
 * The picture BENCHMARKS.md shows beside the variants table: the PNG thumbnail, the 400x400 WebP and the
 * 400x400 AVIF of one generated pose-like image (gradients, a shaded figure, fine lines and grain: what makes
 * palettes band and lossy codecs smear), each at its natural size and a 4x crop beneath. Generated, so it can be
 * committed (the bench corpus cannot). `node test/bench/side-by-side.ts` writes it alone.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { parsePoseVariants } from '../../lib/pose-files.ts';
import { renderPose, THUMBNAIL_SIZE } from '../../lib/pose-image.ts';
import { BENCH_DIR, kb } from './common.ts';

export const SIDE_BY_SIDE = path.join(BENCH_DIR, 'variants-side-by-side.png');

const SIDE = 1024;
const GAP = 16;
const LABEL = 40;
/** The crop shown 4x: 100x100 thumbnail pixels around the figure's head. */
const CROP = { left: 150, top: 60, width: 100, height: 100 };

/** A pose-like picture: a dusk gradient, a floor grid, a shaded figure in a pose, a caption, film grain. */
export async function generatedPose(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SIDE}" height="${SIDE}">
  <defs>
    <radialGradient id="sky" cx="50%" cy="30%" r="80%"><stop offset="0" stop-color="#ffd9a0"/><stop offset="0.5" stop-color="#e2728a"/><stop offset="1" stop-color="#2b2d6e"/></radialGradient>
    <linearGradient id="skin" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#f5c9a6"/><stop offset="1" stop-color="#a8644a"/></linearGradient>
    <linearGradient id="cloth" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#3fa7d6"/><stop offset="1" stop-color="#17416b"/></linearGradient>
  </defs>
  <rect width="${SIDE}" height="${SIDE}" fill="url(#sky)"/>
  ${Array.from({ length: 24 }, (_, i) => `<line x1="${512 + (i - 12) * 14}" y1="700" x2="${512 + (i - 12) * 120}" y2="${SIDE}" stroke="#1c1c3a" stroke-opacity="0.5" stroke-width="1.5"/>`).join('')}
  ${Array.from({ length: 8 }, (_, i) => `<line x1="0" y1="${700 + i * i * 5}" x2="${SIDE}" y2="${700 + i * i * 5}" stroke="#1c1c3a" stroke-opacity="0.5" stroke-width="1.5"/>`).join('')}
  <g stroke-linecap="round" fill="none">
    <path d="M470 520 L380 640 L330 780" stroke="url(#cloth)" stroke-width="46"/>
    <path d="M560 520 L650 620 L720 790" stroke="url(#cloth)" stroke-width="46"/>
    <path d="M470 330 L360 250 L300 150" stroke="url(#skin)" stroke-width="34"/>
    <path d="M560 330 L690 380 L800 300" stroke="url(#skin)" stroke-width="34"/>
  </g>
  <rect x="440" y="300" width="150" height="250" rx="60" fill="url(#cloth)"/>
  <circle cx="515" cy="230" r="62" fill="url(#skin)"/>
  <circle cx="495" cy="220" r="7" fill="#2a1a12"/><circle cx="538" cy="220" r="7" fill="#2a1a12"/>
  <path d="M492 258 Q515 275 540 258" stroke="#6b2a20" stroke-width="5" fill="none"/>
  <text x="40" y="980" font-family="sans-serif" font-size="44" fill="#ffffff" fill-opacity="0.85">pose 017 · seed 424242</text>
</svg>`;
  let seed = 7;
  const grain = Buffer.alloc(SIDE * SIDE, 0).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24) & 0xff);
  const grainLayer = await sharp(grain, { raw: { width: SIDE, height: SIDE, channels: 1 } }).ensureAlpha(0.08).png().toBuffer();
  return sharp(Buffer.from(svg)).composite([{ input: grainLayer, blend: 'overlay' }]).png().toBuffer();
}

/** The three 400x400 renders side by side, labelled with their bytes, and a 4x crop of each beneath. */
export async function sideBySide(): Promise<Buffer> {
  const parsed = parsePoseVariants('thumb.webp:400x400,thumb.avif:400x400');
  if (!('files' in parsed)) throw new Error(parsed.problems.join('; '));
  const rendered = await renderPose(await generatedPose(), { maxInputPixels: 50_000_000, variants: parsed.files.variants });
  const panels = [
    { label: 'PNG thumbnail (the reference)', body: rendered.thumbnail },
    { label: 'thumb.webp (WebP q80)', body: rendered.variants['thumb.webp']! },
    { label: 'thumb.avif (AVIF q50)', body: rendered.variants['thumb.avif']! },
  ];
  const width = 3 * THUMBNAIL_SIZE + 4 * GAP;
  const height = LABEL + THUMBNAIL_SIZE + GAP + THUMBNAIL_SIZE + GAP;
  const layers: OverlayOptions[] = [];
  for (const [i, panel] of panels.entries()) {
    const left = GAP + i * (THUMBNAIL_SIZE + GAP);
    // Each decoded to pixels, so the picture shows what a browser shows, losslessly.
    const pixels = await sharp(panel.body).png().toBuffer();
    const zoom = await sharp(pixels).extract(CROP).resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { kernel: 'nearest' }).png().toBuffer();
    const text = `<svg xmlns="http://www.w3.org/2000/svg" width="${THUMBNAIL_SIZE}" height="${LABEL}"><text x="0" y="27" font-family="sans-serif" font-size="19" fill="#1d2330">${panel.label}: ${kb(panel.body.length)} KiB</text></svg>`;
    layers.push({ input: Buffer.from(text), left, top: 4 }, { input: pixels, left, top: LABEL }, { input: zoom, left, top: LABEL + THUMBNAIL_SIZE + GAP });
  }
  return sharp({ create: { width, height, channels: 3, background: '#f5f6f8' } }).composite(layers).png({ compressionLevel: 9 }).toBuffer();
}

if (import.meta.main) {
  await writeFile(SIDE_BY_SIDE, await sideBySide());
  console.log(`wrote ${path.relative(process.cwd(), SIDE_BY_SIDE)}`);
}
