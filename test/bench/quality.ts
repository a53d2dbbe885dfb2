/**
 * Quality figures of a quantised thumbnail against the same pipeline's unquantised 400x400 resize:
 * - PSNR over RGB (images flattened on mid-grey, so transparency counts too);
 * - SSIM on luma (Gaussian window, sigma 1.5; Wang et al. 2004 constants);
 * - smoothed PSNR: PSNR after a Gaussian blur (sigma 1.5) of both images, about what the eye sees at a
 *   normal viewing distance. Dither noise mostly averages out under the blur, banding (a flat patch where a
 *   gradient was) does not: it is the figure that shows what dithering buys.
 */
import sharp from 'sharp';

export interface Quality {
  psnr: number;
  ssim: number;
  smoothPsnr: number;
}

interface Pixels {
  width: number;
  height: number;
  /** RGB, 3 floats per pixel. */
  rgb: Float64Array;
}

async function pixelsOf(png: Buffer): Promise<Pixels> {
  const { data, info } = await sharp(png)
    .flatten({ background: { r: 128, g: 128, b: 128 } })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rgb = new Float64Array(info.width * info.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i++, j++) {
    rgb[i] = data[j]!;
    if (info.channels > 3 && i % 3 === 2) j += info.channels - 3;
  }
  return { width: info.width, height: info.height, rgb };
}

export async function compare(candidate: Buffer, reference: Buffer): Promise<Quality> {
  const [a, b] = await Promise.all([pixelsOf(candidate), pixelsOf(reference)]);
  if (a.width !== b.width || a.height !== b.height) {
    throw new Error(`Cannot compare ${a.width}x${a.height} with ${b.width}x${b.height}`);
  }
  const blurredA = blurChannels(a, 1.5);
  const blurredB = blurChannels(b, 1.5);
  return { psnr: psnr(a.rgb, b.rgb), ssim: ssim(a, b), smoothPsnr: psnr(blurredA, blurredB) };
}

function psnr(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  const mse = sum / a.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
}

function gaussianKernel(sigma: number): Float64Array {
  const radius = Math.ceil(3 * sigma);
  const kernel = new Float64Array(2 * radius + 1);
  let total = 0;
  for (let i = -radius; i <= radius; i++) {
    kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
    total += kernel[i + radius]!;
  }
  return kernel.map((value) => value / total);
}

/** Separable Gaussian blur of one plane (edges clamped). */
function blur(plane: Float64Array, width: number, height: number, kernel: Float64Array): Float64Array {
  const radius = (kernel.length - 1) / 2;
  const temp = new Float64Array(plane.length);
  const out = new Float64Array(plane.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        const xx = Math.min(width - 1, Math.max(0, x + k));
        sum += plane[y * width + xx]! * kernel[k + radius]!;
      }
      temp[y * width + x] = sum;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        const yy = Math.min(height - 1, Math.max(0, y + k));
        sum += temp[yy * width + x]! * kernel[k + radius]!;
      }
      out[y * width + x] = sum;
    }
  }
  return out;
}

function blurChannels(image: Pixels, sigma: number): Float64Array {
  const kernel = gaussianKernel(sigma);
  const size = image.width * image.height;
  const out = new Float64Array(size * 3);
  for (let c = 0; c < 3; c++) {
    const plane = new Float64Array(size);
    for (let i = 0; i < size; i++) plane[i] = image.rgb[i * 3 + c]!;
    const blurred = blur(plane, image.width, image.height, kernel);
    for (let i = 0; i < size; i++) out[i * 3 + c] = blurred[i]!;
  }
  return out;
}

function luma(image: Pixels): Float64Array {
  const size = image.width * image.height;
  const y = new Float64Array(size);
  for (let i = 0; i < size; i++) y[i] = 0.299 * image.rgb[i * 3]! + 0.587 * image.rgb[i * 3 + 1]! + 0.114 * image.rgb[i * 3 + 2]!;
  return y;
}

/** Mean SSIM of the luma planes. */
function ssim(a: Pixels, b: Pixels): number {
  const { width, height } = a;
  const kernel = gaussianKernel(1.5);
  const x = luma(a);
  const y = luma(b);
  const product = (p: Float64Array, q: Float64Array) => p.map((value, i) => value * q[i]!);
  const muX = blur(x, width, height, kernel);
  const muY = blur(y, width, height, kernel);
  const xx = blur(product(x, x), width, height, kernel);
  const yy = blur(product(y, y), width, height, kernel);
  const xy = blur(product(x, y), width, height, kernel);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    const mx = muX[i]!;
    const my = muY[i]!;
    const vx = xx[i]! - mx * mx;
    const vy = yy[i]! - my * my;
    const cov = xy[i]! - mx * my;
    total += ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  }
  return total / x.length;
}
