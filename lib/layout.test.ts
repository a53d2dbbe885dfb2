import { describe, expect, it } from 'vitest';
import { InvalidIdError } from './errors.ts';
import { imageKey, parsePoseRef, parseStagingKey, thumbnailKey } from './layout.ts';

describe('layout', () => {
  it('builds the reference keys', () => {
    const pose = { generationId: 'gen_abc123', poseId: 'pose_xyz789' };
    expect(imageKey(pose)).toBe('poses/gen_abc123/pose_xyz789.png');
    expect(thumbnailKey(pose)).toBe('poses/gen_abc123/pose_xyz789_thumb.png');
  });

  it('refuses a poseId ending in _thumb: its image would be another pose\'s thumbnail', () => {
    expect(imageKey({ generationId: 'g', poseId: 'x_thumb' })).toBe(thumbnailKey({ generationId: 'g', poseId: 'x' }));
    expect(() => parsePoseRef({ generationId: 'g', poseId: 'x_thumb' })).toThrow(InvalidIdError);
    expect(() => parsePoseRef({ generationId: 'g', poseId: 'x_thumb' })).toThrow(/^poseId must match .* not end in "_thumb" \(got "x_thumb"\)$/);
    expect(parseStagingKey('staging/g/x_thumb/0b0c0d0e-0000-4000-8000-000000000000')).toBeUndefined();
    // Only the suffix is refused; generation ids and other poseIds may contain "thumb".
    expect(parsePoseRef({ generationId: 'g_thumb', poseId: 'thumb_x' })).toEqual({ generationId: 'g_thumb', poseId: 'thumb_x' });
    expect(parsePoseRef({ generationId: 'g', poseId: 'x_thumbs' }).poseId).toBe('x_thumbs');
  });

  it('reads the pose of a staging key, and nothing else', () => {
    expect(parseStagingKey('staging/g1/p1/0b0c0d0e-0000-4000-8000-000000000000')).toEqual({ generationId: 'g1', poseId: 'p1' });
    for (const key of ['poses/g1/p1.png', 'staging/g1/p1', 'staging/../p1/0b0c0d0e-0000-4000-8000-000000000000', 'staging/g1/p1/not-a-uuid']) {
      expect(parseStagingKey(key)).toBeUndefined();
    }
  });
});
