import { describe, expect, it } from 'vitest';
import { planThumbnail } from './thumbnail.ts';

describe('planThumbnail (client-server-api "Thumbnails")', () => {
  it('scale: the smallest downscale covering the box, aspect kept', () => {
    expect(planThumbnail(800, 600, { width: 320, height: 240, method: 'scale' })).toEqual({
      crop: { x: 0, y: 0, width: 800, height: 600 },
      width: 320,
      height: 240,
    });
    expect(planThumbnail(800, 600, { width: 96, height: 96, method: 'scale' })).toMatchObject({
      width: 128,
      height: 96,
    });
  });

  it('crop: the centre at the asked aspect ratio, scaled to the box', () => {
    expect(planThumbnail(800, 600, { width: 96, height: 96, method: 'crop' })).toEqual({
      crop: { x: 100, y: 0, width: 600, height: 600 },
      width: 96,
      height: 96,
    });
  });

  it('never upscales: the original when no side is larger, an unscaled centre cut of the box when one is', () => {
    expect(planThumbnail(100, 100, { width: 320, height: 240, method: 'scale' })).toBeNull();
    expect(planThumbnail(300, 200, { width: 300, height: 250, method: 'scale' })).toBeNull();
    expect(planThumbnail(100, 100, { width: 200, height: 200, method: 'crop' })).toBeNull();
    expect(planThumbnail(400, 100, { width: 200, height: 200, method: 'crop' })).toEqual({
      crop: { x: 100, y: 0, width: 200, height: 100 },
      width: 200,
      height: 100,
    });
  });

  it('is never smaller than asked unless the source is', () => {
    for (const [w, h] of [
      [1000, 10],
      [10, 1000],
      [777, 333],
      [4000, 3000],
    ] as const) {
      for (const method of ['crop', 'scale'] as const) {
        const plan = planThumbnail(w, h, { width: 97, height: 61, method });
        if (!plan) continue;
        expect(plan.width).toBeGreaterThanOrEqual(Math.min(97, w));
        expect(plan.height).toBeGreaterThanOrEqual(Math.min(61, h));
        expect(plan.width).toBeLessThanOrEqual(w);
        expect(plan.height).toBeLessThanOrEqual(h);
      }
    }
  });
});
