import { describe, expect, it } from 'vitest';
import { InvalidIdError } from './errors.ts';
import { issuedAt, newStagingKey, parsePoseRef, parseStagingKey } from './layout.ts';
import { imageKey, poseOfKey, thumbnailKey } from './pose-files.ts';

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

  it('mints staging keys as UUIDv7s that say when the upload URL was issued, to the millisecond', () => {
    const pose = { generationId: 'g1', poseId: 'p1' };
    const at = Date.UTC(2026, 11, 1, 12, 34, 56, 789);
    const key = newStagingKey(pose, at);
    expect(key).toMatch(/^staging\/g1\/p1\/[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseStagingKey(key)).toEqual(pose);
    expect(issuedAt(key)?.getTime()).toBe(at);
    // Unguessable: two keys of the same millisecond differ in their random bits.
    expect(newStagingKey(pose, at)).not.toBe(key);
    // Keys of later URLs sort after earlier ones.
    expect(newStagingKey(pose, at + 1) > key).toBe(true);
    // A UUIDv4 key (or anything else) tells no time.
    expect(issuedAt('staging/g1/p1/0b0c0d0e-0000-4000-8000-000000000000')).toBeUndefined();
  });

  it('finds the pose of every key of a generation\'s areas, and of nothing else', () => {
    const pose = { generationId: 'g', poseId: 'p' };
    for (const key of ['poses/g/p.png', 'poses/g/p_thumb.png', 'poses/g/p_thumb.webp', 'staging/g/p/0b0c0d0e-0000-4000-8000-000000000000', 'records/g/p.json', 'locks/g/p.json', 'backups/g/p.png', 'backups/g/p_thumb.png', 'backups/g/p_preview.avif']) {
      expect(poseOfKey(key), key).toEqual(pose);
    }
    expect(poseOfKey('poses/g/a_thumb_x.png')).toEqual({ generationId: 'g', poseId: 'a_thumb_x' });
    for (const key of ['poses/g/custom/a.png', 'poses/g/p.json', 'records/g/p.png', 'staging/g/p', 'backups/g/p.json', 'other/g/p.png', 'poses/../p.png', 'poses/g/p.webp', 'poses/g/p_Thumb.webp']) {
      expect(poseOfKey(key), key).toBeUndefined();
    }
  });
});
