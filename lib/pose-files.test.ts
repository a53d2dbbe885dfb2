import { describe, expect, it } from 'vitest';
import { backupKey, fileKey, IMAGE_FILE, parsePoseVariants, poseKeys, publishedFileOf, REFERENCE_FILES, THUMBNAIL_FILE, type PoseFiles } from './pose-files.ts';

const pose = { generationId: 'gen_1', poseId: 'pose_1' };

function files(text: string): PoseFiles {
  const parsed = parsePoseVariants(text);
  if (!('files' in parsed)) throw new Error(parsed.problems.join('\n'));
  return parsed.files;
}

describe('the table of a pose\'s files', () => {
  it('without variants: the reference\'s two files, at the reference\'s keys', () => {
    expect(REFERENCE_FILES.all.map((file) => fileKey(pose, file))).toEqual(['poses/gen_1/pose_1.png', 'poses/gen_1/pose_1_thumb.png']);
    expect(parsePoseVariants('')).toEqual({ files: REFERENCE_FILES });
    expect(poseKeys(pose)).toEqual([
      'poses/gen_1/pose_1_thumb.png',
      'poses/gen_1/pose_1.png',
      'records/gen_1/pose_1.json',
      'backups/gen_1/pose_1.png',
      'backups/gen_1/pose_1_thumb.png',
    ]);
  });

  it('POSE_VARIANTS: a box (cover) or a width, published between the image and the thumbnail', () => {
    const table = files(' thumb.webp:400x400, thumb.avif:400x400,preview.webp:1024w , placeholder');
    expect(table.all.map((file) => [file.role, file.contentType, fileKey(pose, file)])).toEqual([
      ['image', 'image/png', 'poses/gen_1/pose_1.png'],
      ['thumb.webp', 'image/webp', 'poses/gen_1/pose_1_thumb.webp'],
      ['thumb.avif', 'image/avif', 'poses/gen_1/pose_1_thumb.avif'],
      ['preview.webp', 'image/webp', 'poses/gen_1/pose_1_preview.webp'],
      ['thumbnail', 'image/png', 'poses/gen_1/pose_1_thumb.png'],
    ]);
    expect(table.variants.map((file) => file.rendering)).toEqual([
      { kind: 'variant', format: 'webp', width: 400, height: 400 },
      { kind: 'variant', format: 'avif', width: 400, height: 400 },
      { kind: 'variant', format: 'webp', width: 1024, height: undefined },
    ]);
    expect(table.placeholder).toBe(true);
    expect(backupKey(pose, table.variants[0]!)).toBe('backups/gen_1/pose_1_thumb.webp');
  });

  it('refuses each bad token with a sentence naming it, all at once', () => {
    const parsed = parsePoseVariants('thumb.png:400x400,Thumb.webp:400x400,thumb.gif:10x10,thumb.webp:9x9,a.webp:400,a.webp:5000w,x.webp:64w,x.webp:32w,noformat:1x1');
    expect(parsed).toEqual({
      problems: [
        '"thumb.png:400x400": a variant cannot be a PNG (the image and the thumbnail are the pose\'s PNGs); use webp, avif or jpg',
        '"Thumb.webp:400x400": its name must be 1 to 16 lowercase letters and digits, starting with a letter',
        '"thumb.gif:10x10": its format must be webp, avif or jpg',
        '"thumb.webp:9x9": its sides must be between 16 and 4096 pixels',
        '"a.webp:400" is not {name}.{format}:{width}x{height} or {name}.{format}:{width}w (such as thumb.webp:400x400 or preview.webp:1024w)',
        '"a.webp:5000w": its sides must be between 16 and 4096 pixels',
        '"x.webp:32w": x.webp is listed twice',
        '"noformat:1x1" is not {name}.{format}:{width}x{height} or {name}.{format}:{width}w (such as thumb.webp:400x400 or preview.webp:1024w)',
      ],
    });
  });

  it('tells a published key\'s pose and role, whatever the pose ids: a variant key is never another pose\'s image', () => {
    expect(publishedFileOf('poses/g/a.png')).toEqual({ pose: { generationId: 'g', poseId: 'a' }, role: IMAGE_FILE.role });
    expect(publishedFileOf('poses/g/a_thumb.png')).toEqual({ pose: { generationId: 'g', poseId: 'a' }, role: THUMBNAIL_FILE.role });
    expect(publishedFileOf('poses/g/a_b_thumb.webp')).toEqual({ pose: { generationId: 'g', poseId: 'a_b' }, role: 'thumb.webp' });
    expect(publishedFileOf('poses/g/a_preview.png')).toEqual({ pose: { generationId: 'g', poseId: 'a_preview' }, role: 'image' });
    for (const key of ['poses/g/custom/a.png', 'poses/g/a.webp', 'poses/g/a_thumb.gif', 'poses/g/.png', 'poses/g/a_x_y.webpp']) expect(publishedFileOf(key), key).toBeUndefined();
  });
});
