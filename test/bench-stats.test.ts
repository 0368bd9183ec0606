import { describe, expect, it } from 'vitest';
import { atPercentile, median, medianInterval } from '../bench/support/bench-util.js';

// The benches' statistics decide which optimizations are kept: a wrong rank here would make noise
// read as a finding.
describe('bench statistics', () => {
  it('takes the nearest rank at or below a percentile', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(atPercentile(sorted, 0.5)).toBe(51);
    expect(atPercentile(sorted, 0.99)).toBe(100);
    expect(atPercentile(sorted, 1)).toBe(100);
    expect(atPercentile(sorted, 0)).toBe(1);
    expect(atPercentile([], 0.5)).toBeNaN();
  });

  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('gives the order statistics of the binomial table for the median interval', () => {
    const ranks = (n: number) => Array.from({ length: n }, (_, i) => (n - i) * 10); // unsorted on purpose
    // Published ranks for a 95 % distribution-free interval of the median: n = 10 → 2nd and 9th,
    // n = 16 → 4th and 13th, n = 30 → 10th and 21st.
    expect(medianInterval(ranks(10))).toMatchObject({ low: 20, high: 90 });
    expect(medianInterval(ranks(16))).toMatchObject({ low: 40, high: 130 });
    expect(medianInterval(ranks(30))).toMatchObject({ low: 100, high: 210 });
    expect(medianInterval(ranks(10)).coverage).toBeCloseTo(1 - 22 / 1024, 12);
    expect(medianInterval(ranks(30)).coverage).toBeGreaterThanOrEqual(0.95);
  });

  it('falls back to the whole range, and says so, when there are too few values', () => {
    expect(medianInterval([3, 1, 2, 5, 4])).toEqual({ low: 1, high: 5, coverage: 1 - 2 / 32 });
    expect(medianInterval([7])).toEqual({ low: 7, high: 7, coverage: 0 });
    expect(medianInterval([]).coverage).toBe(0);
  });
});
