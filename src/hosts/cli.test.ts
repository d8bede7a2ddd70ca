import { describe, expect, it } from 'vitest';
import { parseServeArgs, parseSize } from './cli.ts';

describe('hearth serve arguments', () => {
  it('reads --max-upload-size as bytes or with a binary K, M or G', () => {
    expect(parseSize('1048576')).toBe(1024 * 1024);
    expect(parseSize('512K')).toBe(512 * 1024);
    expect(parseSize('50M')).toBe(50 * 1024 * 1024);
    expect(parseSize('50MiB')).toBe(50 * 1024 * 1024);
    expect(parseSize('1g')).toBe(1024 ** 3);
    for (const bad of ['', '0', '-1', '1.5M', '10T', 'lots'])
      expect(() => parseSize(bad)).toThrow(/max-upload-size/);
    expect(parseServeArgs(['--max-upload-size', '2M']).maxUploadBytes).toBe(2 * 1024 * 1024);
    expect(parseServeArgs([]).maxUploadBytes).toBeUndefined();
  });
});
