import { crc32 } from 'node:zlib';
import { formatCount, InvalidImageError } from './errors.ts';
import { PNG_SIGNATURE } from './image-format.ts';

/**
 * The chunk filter of a published PNG: one pass over the bytes (no decode, no re-encode) that validates the
 * chunk stream and drops what is private or was never validated. AI tools write their whole generation into
 * text chunks (ComfyUI's `workflow` and `prompt`, Automatic1111's `parameters`), phones their GPS into `eXIf`.
 */

const SIGNATURE = Buffer.from(PNG_SIGNATURE);

/** The PNG 3rd edition's critical chunks; any other critical chunk is one no viewer can safely interpret. */
const CRITICAL = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND']);

/**
 * Ancillary chunks that change how the image looks, kept always (PNG 3rd edition). They carry no private data.
 * - tRNS: transparency.
 * - iCCP, sRGB, gAMA, cHRM, cICP: the colour space the pixels are in; without them colours shift.
 * - mDCV, cLLI: the HDR mastering display and light levels that guide tone mapping of a cICP (PQ/HLG) image.
 * - sBIT: the source's significant bits, which decoders use to scale samples back exactly.
 * - pHYs: the pixel aspect ratio (and density), which viewers honour when pixels are not square.
 * - bKGD: the background viewers show behind transparent pixels.
 * Everything else ancillary is dropped: tEXt, zTXt, iTXt (prompts, workflows, XMP), eXIf (GPS, camera), tIME,
 * and the rest, which changes no pixel a browser shows: hIST and sPLT (palette hints), oFFs, pCAL, sCAL,
 * sTER, gIFg/gIFx/gIFt, dSIG (a signature the filter would break anyway) and private chunks.
 */
const RENDERING = new Set(['tRNS', 'iCCP', 'sRGB', 'gAMA', 'cHRM', 'cICP', 'mDCV', 'cLLI', 'sBIT', 'pHYs', 'bKGD']);

/**
 * Dropped even when metadata is kept, because each makes a viewer show something other than the image that was
 * decoded, validated and thumbnailed:
 * - acTL, fcTL, fdAT: APNG animation frames (a browser plays them; the decoder shows only the default image).
 * - iDOT: Apple's parallel-decoding offsets into the IDAT stream; crafted ones make Apple's decoder show
 *   another image than the serial decode, and any dropped chunk before IDAT makes them wrong.
 * - gdAT: Apple's embedded HDR gain map, an image in its own right that nothing here decoded.
 */
const NEVER_PUBLISHED = new Set(['acTL', 'fcTL', 'fdAT', 'iDOT', 'gdAT']);

/** The largest chunk length the PNG format allows (2^31 - 1). */
const MAX_CHUNK_LENGTH = 0x7fffffff;

/** Chunk length, type and CRC: the 12 bytes around a chunk's data. */
const CHUNK_OVERHEAD = 12;

export interface PngFilterOptions {
  /** Keep text, EXIF, time and unknown ancillary chunks (KEEP_IMAGE_METADATA). */
  keepMetadata: boolean;
}

export interface FilteredPng {
  /**
   * The PNG to publish: the input itself (the same Buffer, or a Buffer over the same memory for a Uint8Array)
   * when nothing was dropped; a view of its start when only bytes after IEND were dropped; otherwise a new buffer.
   */
  png: Buffer;
  /** Whether anything was dropped: a chunk or bytes after IEND. */
  dropped: boolean;
  /** The types of the dropped chunks, each once, in the order they first appear. */
  droppedTypes: readonly string[];
}

/**
 * Validates the chunk stream of `bytes` (signature, IHDR first, every length within the buffer, every CRC, IEND)
 * and drops what a published PNG must not carry. Throws an InvalidImageError: `corrupt_image` for a malformed
 * stream, `unsupported_format` for a critical chunk this service does not know (Apple's CgBI, for example).
 */
export function filterPngChunks(bytes: Uint8Array, options: PngFilterOptions): FilteredPng {
  const input = asBuffer(bytes);
  if (input.length < SIGNATURE.length || !input.subarray(0, SIGNATURE.length).equals(SIGNATURE)) {
    throw corrupt('it does not start with the PNG signature');
  }
  // Kept byte ranges as [start, end) pairs; adjacent kept chunks extend the last range, so a clean PNG is one range.
  const kept: number[] = [0, SIGNATURE.length];
  const droppedTypes: string[] = [];
  let offset = SIGNATURE.length;
  let index = 0;
  let sawImageData = false;
  let end = -1;
  while (end < 0) {
    if (input.length - offset < CHUNK_OVERHEAD) {
      throw corrupt(
        offset === input.length
          ? `it ends without an IEND chunk, after ${index} chunks (truncated)`
          : `it ends inside the header of chunk ${index + 1} at byte ${offset} (truncated)`,
      );
    }
    const length = input.readUInt32BE(offset);
    const type = chunkType(input, offset + 4);
    const where = `chunk ${index + 1} (${type ?? 'of an invalid type'} at byte ${offset})`;
    if (length > MAX_CHUNK_LENGTH) throw corrupt(`${where} declares ${formatCount(length)} bytes, more than the 2^31-1 PNG allows`);
    const chunkEnd = offset + CHUNK_OVERHEAD + length;
    if (chunkEnd > input.length) {
      throw corrupt(`${where} declares ${formatCount(length)} bytes but only ${formatCount(Math.max(0, input.length - offset - CHUNK_OVERHEAD))} follow (truncated)`);
    }
    if (type === undefined) {
      throw corrupt(`${where}: a chunk type is four ASCII letters, got 0x${input.toString('hex', offset + 4, offset + 8)}`);
    }
    if (crc32(input.subarray(offset + 4, chunkEnd - 4)) !== input.readUInt32BE(chunkEnd - 4)) {
      throw corrupt(`${where} fails its CRC check`);
    }

    if (isCritical(type) && !CRITICAL.has(type)) {
      throw new InvalidImageError('unsupported_format', `The PNG has a critical chunk "${type}" (${where}) that is not part of standard PNG.`);
    }
    if (index === 0 && (type !== 'IHDR' || length !== 13)) throw corrupt(`it must start with a 13-byte IHDR chunk, not ${where}`);
    if (type === 'IHDR' && index > 0) throw corrupt(`${where} is a second IHDR`);
    if (type === 'IDAT') sawImageData = true;
    if (type === 'IEND') {
      if (!sawImageData) throw corrupt('it has no IDAT chunk before IEND');
      end = chunkEnd;
    }
    if (keeps(type, options)) {
      if (kept.at(-1) === offset) kept[kept.length - 1] = chunkEnd;
      else kept.push(offset, chunkEnd);
    } else if (!droppedTypes.includes(type)) {
      droppedTypes.push(type);
    }
    offset = chunkEnd;
    index++;
  }
  // Nothing after IEND is ever published: it was never part of the image.
  const dropped = droppedTypes.length > 0 || end < input.length;
  if (!dropped) return { png: input, dropped, droppedTypes };
  if (kept.length === 2) return { png: input.subarray(0, kept[1]), dropped, droppedTypes };
  let size = 0;
  for (let i = 0; i < kept.length; i += 2) size += kept[i + 1]! - kept[i]!;
  const png = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < kept.length; i += 2) at += input.copy(png, at, kept[i], kept[i + 1]);
  return { png, dropped, droppedTypes };
}

function keeps(type: string, options: PngFilterOptions): boolean {
  if (isCritical(type)) return true;
  if (NEVER_PUBLISHED.has(type)) return false;
  return options.keepMetadata || RENDERING.has(type);
}

/** Bit 5 of the first byte clear (an uppercase letter): a decoder that does not know the chunk must fail. */
function isCritical(type: string): boolean {
  return type.charCodeAt(0) < 0x61;
}

/** The four type bytes at `at` as a string, or undefined unless each is an ASCII letter (A-Z, a-z). */
function chunkType(bytes: Buffer, at: number): string | undefined {
  for (let i = at; i < at + 4; i++) {
    const letter = bytes[i]! | 0x20;
    if (letter < 0x61 || letter > 0x7a) return undefined;
  }
  return bytes.toString('latin1', at, at + 4);
}

function corrupt(problem: string): InvalidImageError {
  return new InvalidImageError('corrupt_image', `The PNG is corrupt: ${problem}.`);
}

/** The bytes as a Buffer without copying them (a Buffer is returned as is). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
