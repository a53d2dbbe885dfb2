/**
 * The default benchmark corpus: six real images derived from Debian's wallpaper packages into .bench-corpus/
 * (ignored by git: the images are GPL-2+ and CC-BY-SA, never part of the repository). `npm run bench` and
 * `node lib/pose-image.bench.ts` build it when no directory is given; `node test/bench/corpus.ts` builds it alone.
 * Without the packages they say in one line how to get them and exit 1.
 */
import { access, copyFile, mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { log, REPO_ROOT } from './common.ts';

export const BENCH_CORPUS = path.join(REPO_ROOT, '.bench-corpus');

const WALLPAPERS = '/usr/share/wallpapers'; // plasma-workspace-wallpapers (GPL-2+, KDE Visual Design Group)
const BACKGROUNDS = '/usr/share/backgrounds/gnome'; // gnome-backgrounds (CC-BY-SA 3.0 / CC-BY 2.0)

interface CorpusImage {
  name: string;
  source: string;
  /** Centre-cropped to a square and shrunk to this side (the size of a typical AI-generated pose); else copied. */
  square?: number;
}

const IMAGES: readonly CorpusImage[] = [
  { name: 'ai-1024.png', source: `${WALLPAPERS}/Canopee/contents/images/3840x2160.png`, square: 1024 },
  { name: 'ai-2048.png', source: `${WALLPAPERS}/Altai/contents/images/5120x2880.png`, square: 2048 },
  { name: 'ai-2048.jpg', source: `${WALLPAPERS}/Volna/contents/images/5120x2880.jpg`, square: 2048 },
  { name: 'photo-5k.jpg', source: `${WALLPAPERS}/SafeLanding/contents/images/5120x2880.jpg` },
  { name: 'art-5k.png', source: `${WALLPAPERS}/Kay/contents/images/5120x2880.png` },
  { name: 'gnome-2k.webp', source: `${BACKGROUNDS}/adwaita-l.webp` },
];

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

/** The corpus directory, built first where images are missing; exits 1 with instructions if it cannot be. */
export async function benchCorpus(): Promise<string> {
  const missing: CorpusImage[] = [];
  for (const image of IMAGES) if (!(await exists(path.join(BENCH_CORPUS, image.name)))) missing.push(image);
  if (missing.length === 0) return BENCH_CORPUS;

  const absent: string[] = [];
  for (const { source } of missing) if (!(await exists(source))) absent.push(source);
  if (absent.length > 0) {
    log(
      `No benchmark corpus (${absent[0]} is missing): run \`apt-get install plasma-workspace-wallpapers gnome-backgrounds\` ` +
        'and npm run bench builds it into .bench-corpus/, or give a directory of PNG/JPEG/WebP images: `npm run bench -- DIR`',
    );
    process.exit(1);
  }

  await mkdir(BENCH_CORPUS, { recursive: true });
  for (const { name, source, square } of missing) {
    const file = path.join(BENCH_CORPUS, name);
    // Written aside and renamed: an interrupted build leaves no partial image that would count as done.
    const partial = `${file}.partial`;
    if (square === undefined) await copyFile(source, partial);
    else {
      const shrunk = sharp(source).resize(square, square, { fit: 'cover', position: 'centre' });
      await (name.endsWith('.jpg') ? shrunk.jpeg({ quality: 90, chromaSubsampling: '4:4:4' }) : shrunk.png()).toFile(partial);
    }
    await rename(partial, file);
    log(`${path.relative(REPO_ROOT, file)}: ${square === undefined ? 'copied' : `${square}x${square} centre crop`} from ${source}`);
  }
  return BENCH_CORPUS;
}

if (import.meta.main) log(`Benchmark corpus: ${await benchCorpus()}`);
