/**
 * PNG bytes built and read chunk by chunk, for tests that need chunks no encoder writes (APNG frames, private
 * chunks, bad CRCs, data after IEND). Independent of lib/png-chunks.ts, which the tests check.
 */
import { crc32 } from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface Chunk {
  type: string;
  data: Buffer;
}

/** One chunk's bytes: length, type, data and a correct CRC. */
export function chunkBytes({ type, data }: Chunk): Buffer {
  const bytes = Buffer.alloc(12 + data.length);
  bytes.writeUInt32BE(data.length, 0);
  bytes.write(type, 4, 'latin1');
  data.copy(bytes, 8);
  bytes.writeUInt32BE(crc32(bytes.subarray(4, 8 + data.length)), 8 + data.length);
  return bytes;
}

export function chunk(type: string, data: Buffer | string = Buffer.alloc(0)): Chunk {
  return { type, data: typeof data === 'string' ? Buffer.from(data, 'latin1') : data };
}

/** The chunks of a well-formed PNG, up to and including IEND. */
export function chunksOf(png: Buffer): Chunk[] {
  if (!png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG');
  const chunks: Chunk[] = [];
  for (let offset = 8; offset < png.length; ) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    chunks.push({ type, data: png.subarray(offset + 8, offset + 8 + length) });
    offset += 12 + length;
    if (type === 'IEND') break;
  }
  return chunks;
}

export function chunkTypes(png: Buffer): string[] {
  return chunksOf(png).map((c) => c.type);
}

export function assemble(chunks: readonly Chunk[]): Buffer {
  return Buffer.concat([PNG_SIGNATURE, ...chunks.map(chunkBytes)]);
}

/** `png` with `extra` chunks inserted right after IHDR and/or right before IEND. */
export function withChunks(png: Buffer, { afterHeader = [], beforeEnd = [] }: { afterHeader?: Chunk[]; beforeEnd?: Chunk[] }): Buffer {
  const [header, ...rest] = chunksOf(png);
  const end = rest.pop()!;
  return assemble([header!, ...afterHeader, ...rest, ...beforeEnd, end]);
}

/** A tEXt chunk (Latin-1 keyword and text). */
export function text(keyword: string, value: string): Chunk {
  return chunk('tEXt', Buffer.from(`${keyword}\0${value}`, 'latin1'));
}

/** An APNG frame control chunk for a full-size frame shown for 1/10 s. */
export function frameControl(sequence: number, width: number, height: number): Chunk {
  const data = Buffer.alloc(26);
  data.writeUInt32BE(sequence, 0);
  data.writeUInt32BE(width, 4);
  data.writeUInt32BE(height, 8);
  data.writeUInt16BE(1, 20); // delay 1/10 s
  data.writeUInt16BE(10, 22);
  return chunk('fcTL', data);
}

/**
 * An APNG of two frames: the default image `first` (IDAT, also frame 0) and a second frame holding the image
 * data of `second` (same size and colour type) in fdAT. Browsers play both; a PNG decoder sees `first` only.
 */
export function animated(first: Buffer, second: Buffer, width: number, height: number): Buffer {
  const [header, ...firstRest] = chunksOf(first);
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(2, 0); // frames
  actl.writeUInt32BE(0, 4); // loop forever
  const secondData = chunksOf(second).filter((c) => c.type === 'IDAT');
  const fdat = secondData.map((c, i) => {
    const sequence = Buffer.alloc(4);
    sequence.writeUInt32BE(2 + i);
    return chunk('fdAT', Buffer.concat([sequence, c.data]));
  });
  const end = firstRest.pop()!;
  return assemble([header!, chunk('acTL', actl), frameControl(0, width, height), ...firstRest, frameControl(1, width, height), ...fdat, end]);
}

/** The second frame of an `animated` PNG as a PNG of its own (its fdAT data as IDAT), to see what it shows. */
export function secondFrame(apng: Buffer): Buffer {
  const chunks = chunksOf(apng);
  const idat = chunks.filter((c) => c.type === 'fdAT').map((c) => chunk('IDAT', c.data.subarray(4)));
  return assemble([chunks[0]!, ...idat, chunk('IEND')]);
}
