// Covers the pieces of prepareMessage that replace library calls: its ISO 8601 formatting.
import { describe, expect, it } from 'vitest';
import { isoString } from '../../server/segment-message.js';

describe('isoString', () => {
  it('formats like Date.prototype.toISOString across days, years and edges', () => {
    const samples = [
      0,
      1,
      999,
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(2024, 2, 1, 0, 0, 0, 0),
      Date.UTC(2026, 11, 3, 15, 4, 5, 67),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(1969, 11, 31, 23, 59, 59, 500),
      Date.UTC(10_000, 0, 1),
      -62_198_755_200_000,
    ];
    for (let i = 0; i < 2_000; i += 1) samples.push((i * 7_919_317_003_291) % Date.UTC(2100, 0, 1));

    for (const ms of samples) expect(isoString(ms)).toBe(new Date(ms).toISOString());
  });
});
