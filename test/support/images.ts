/**
 * Test images generated with sharp, so the tests need nothing outside the repository. Each is deterministic
 * (a fixed seed: the same bytes every run with the same sharp) and looks like what users upload: smooth
 * gradients with fine noise, as photographs and AI-generated images have, which defeats the shortcuts a solid
 * colour allows (tiny PNGs, trivial JPEG blocks). Each is made the first time a test asks for it and then kept
 * for the rest of the process.
 */
import sharp, { type Sharp } from 'sharp';

export type TestImageFormat = 'png' | 'jpeg' | 'webp';

export interface TestImage {
  name: TestImageName;
  bytes: Buffer;
  format: TestImageFormat;
  contentType: `image/${TestImageFormat}`;
  /** Upright size (after EXIF orientation), which is what is published. */
  width: number;
  height: number;
}

interface Kind {
  format: TestImageFormat;
  width: number;
  height: number;
  /** What a reader of a test's name needs to know about it. */
  description: string;
  make: () => Promise<Buffer>;
}

/** Row filtering on, as the encoders of image generators and editors (libpng's default) have it. */
const PNG = { adaptiveFiltering: true } as const;

const KINDS = {
  photoPng1024: {
    format: 'png',
    width: 1024,
    height: 1024,
    description: '1024x1024 RGB PNG, the size of a typical AI-generated pose',
    make: () => photo(1024, 1024).png(PNG).toBuffer(),
  },
  photoPng2048: {
    format: 'png',
    width: 2048,
    height: 2048,
    description: '2048x2048 RGB PNG',
    make: () => photo(2048, 2048).png(PNG).toBuffer(),
  },
  photoJpeg2048: {
    format: 'jpeg',
    width: 2048,
    height: 2048,
    description: '2048x2048 JPEG q90',
    make: () => photo(2048, 2048).jpeg({ quality: 90 }).toBuffer(),
  },
  alphaPng: {
    format: 'png',
    width: 1280,
    height: 720,
    description: '1280x720 RGBA PNG, opaque in the middle and fading to transparent at the edges',
    make: () => withAlpha(1280, 720).png(PNG).toBuffer(),
  },
  deepPng: {
    format: 'png',
    width: 800,
    height: 600,
    description: '800x600 PNG of 16 bits per channel',
    make: () => deepPhoto(800, 600).png(PNG).toBuffer(),
  },
  cmykJpeg: {
    format: 'jpeg',
    width: 1000,
    height: 750,
    description: '1000x750 CMYK JPEG q90, as print workflows save them',
    make: () => photo(1000, 750).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer(),
  },
  rotatedJpeg: {
    format: 'jpeg',
    width: 800,
    height: 1200,
    description: 'JPEG stored 1200x800 with EXIF orientation 6 (a phone held upright): 800x1200 upright',
    make: () => photo(1200, 800).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer(),
  },
  photoWebp: {
    format: 'webp',
    width: 1536,
    height: 1024,
    description: '1536x1024 lossy WebP',
    make: () => photo(1536, 1024).webp({ quality: 85 }).toBuffer(),
  },
  largeJpeg: {
    format: 'jpeg',
    width: 5120,
    height: 2880,
    description: '5120x2880 JPEG q90, a 5K photograph',
    make: () => photo(5120, 2880).jpeg({ quality: 90 }).toBuffer(),
  },
} as const satisfies Record<string, Kind>;

export type TestImageName = keyof typeof KINDS;

/** Every kind of test image, smallest first. */
export const TEST_IMAGE_NAMES = (Object.keys(KINDS) as TestImageName[]).sort((a, b) => pixelsOf(a) - pixelsOf(b));

function pixelsOf(name: TestImageName): number {
  return KINDS[name].width * KINDS[name].height;
}

/** What `name` is, without generating it (for test titles). */
export function describeTestImage(name: TestImageName): string {
  return KINDS[name].description;
}

const made = new Map<TestImageName, Promise<TestImage>>();

/** The test image `name`, generated on first use in this process. */
export function testImage(name: TestImageName): Promise<TestImage> {
  let image = made.get(name);
  if (!image) {
    image = generateTestImage(name);
    made.set(name, image);
  }
  return image;
}

/** Generates `name` anew (testImage keeps the result; this is for checking that generation is deterministic). */
export async function generateTestImage(name: TestImageName): Promise<TestImage> {
  const { format, width, height, make } = KINDS[name];
  return { name, bytes: await make(), format, contentType: `image/${format}`, width, height };
}

/** xorshift32: a fixed seed gives the same sequence everywhere. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>>= 0);
  };
}

/**
 * Pixels of a photograph-like scene, as values from 0 to 1 scaled to `max` (255 or 65535): per channel, slow
 * waves across and down the frame (a different mix per channel, so the colours shift), a mottled texture (random
 * values on a 12-pixel grid, smoothly interpolated: edges at every angle, as in foliage or fabric) and a little
 * grain on every pixel. With `alpha`, a fourth channel goes from opaque in the middle to transparent at the edges.
 */
function scene<T extends Uint8Array | Uint16Array>(data: T, width: number, height: number, alpha: boolean): T {
  const channels = alpha ? 4 : 3;
  const max = data instanceof Uint16Array ? 65535 : 255;
  const next = random(0x5eed + width * 8191 + height);
  const across = new Float64Array(width * 3);
  const down = new Float64Array(height * 3);
  const crossAcross = new Float64Array(width * 3);
  const crossDown = new Float64Array(height * 3);
  for (let c = 0; c < 3; c++) {
    for (let x = 0; x < width; x++) {
      across[x * 3 + c] = 0.22 * Math.sin((x / width) * Math.PI * (1.3 + c * 0.6) + c);
      crossAcross[x * 3 + c] = 0.12 * Math.sin((x / width) * Math.PI * (2.1 + c));
    }
    for (let y = 0; y < height; y++) {
      down[y * 3 + c] = 0.5 + 0.22 * Math.cos((y / height) * Math.PI * (0.9 + c * 0.5) - c);
      crossDown[y * 3 + c] = Math.cos((y / height) * Math.PI * (1.7 + c * 0.3));
    }
  }
  const cell = 12;
  const gridWidth = Math.ceil(width / cell) + 2;
  const grid = new Float64Array(gridWidth * (Math.ceil(height / cell) + 2));
  for (let i = 0; i < grid.length; i++) grid[i] = (next() / 2 ** 32 - 0.5) * 0.25;
  const grain = 2 / 255;
  const smooth = (t: number) => t * t * (3 - 2 * t);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / cell);
    const ty = smooth(y / cell - row);
    for (let x = 0; x < width; x++) {
      const column = Math.floor(x / cell);
      const tx = smooth(x / cell - column);
      const i = row * gridWidth + column;
      const top = grid[i]! + (grid[i + 1]! - grid[i]!) * tx;
      const bottom = grid[i + gridWidth]! + (grid[i + gridWidth + 1]! - grid[i + gridWidth]!) * tx;
      const texture = top + (bottom - top) * ty;
      const bits = next();
      const offset = (y * width + x) * channels;
      for (let c = 0; c < 3; c++) {
        const noise = (((bits >>> (c * 8)) & 0xff) / 256 - 0.5) * grain;
        const value = across[x * 3 + c]! + down[y * 3 + c]! + crossAcross[x * 3 + c]! * crossDown[y * 3 + c]! + texture + noise;
        data[offset + c] = value <= 0 ? 0 : value >= 1 ? max : Math.round(value * max);
      }
      if (alpha) {
        const edge = Math.min(x, width - 1 - x, y, height - 1 - y) / (Math.min(width, height) / 4);
        data[offset + 3] = Math.round(Math.min(1, edge) * max);
      }
    }
  }
  return data;
}

const photo = (width: number, height: number): Sharp =>
  sharp(scene(new Uint8Array(width * height * 3), width, height, false), { raw: { width, height, channels: 3 } });

const withAlpha = (width: number, height: number): Sharp =>
  sharp(scene(new Uint8Array(width * height * 4), width, height, true), { raw: { width, height, channels: 4 } });

const deepPhoto = (width: number, height: number): Sharp =>
  sharp(scene(new Uint16Array(width * height * 3), width, height, false), { raw: { width, height, channels: 3 } }).toColourspace('rgb16');
