import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/errors.js';
import { resample, resamplePcm16 } from '../src/media/resample.js';
import { rms, sine, zeroCrossingHz } from './support/fake-openai.js';

/** The middle of a buffer, away from the zero-padded edges. */
function middle(samples: Int16Array, margin = 200): Int16Array {
  return samples.subarray(margin, samples.length - margin);
}

describe('resamplePcm16', () => {
  it('keeps a 440 Hz tone at 440 Hz and its level from 24 kHz to 8 kHz', () => {
    const input = sine(440, 24_000, 24_000);
    const out = resamplePcm16(input, 24_000, 8000);
    expect(out.length).toBe(8000);
    expect(Math.abs(zeroCrossingHz(middle(out), 8000) - 440)).toBeLessThan(2);
    expect(rms(middle(out)) / rms(input)).toBeGreaterThan(0.98);
    expect(rms(middle(out)) / rms(input)).toBeLessThan(1.02);
  });

  it('keeps a 3 kHz tone (top of the telephone band) within 1 dB', () => {
    const input = sine(3000, 24_000, 24_000);
    const out = resamplePcm16(input, 24_000, 8000);
    const gainDb = 20 * Math.log10(rms(middle(out)) / rms(input));
    expect(Math.abs(gainDb)).toBeLessThan(1);
    expect(zeroCrossingHz(middle(out), 8000)).toBeCloseTo(3000, -1);
  });

  it('attenuates 6 kHz (which would alias to 2 kHz) by more than 40 dB from 24 kHz to 8 kHz', () => {
    // A phase offset so the 8 kHz sampling instants do not fall on the tone's zeros.
    const input = sine(6000, 24_000, 24_000, 16384, 0.7);
    const out = resamplePcm16(input, 24_000, 8000);
    expect(rms(middle(out)) / rms(input)).toBeLessThan(0.01);

    // The same signal decimated naively (every third sample) keeps nearly all its energy as a 2 kHz alias:
    // this is what the test above would catch.
    const naive = new Int16Array(8000).map((_, i) => input[i * 3]!);
    expect(rms(naive) / rms(input)).toBeGreaterThan(0.5);
    expect(zeroCrossingHz(naive, 8000)).toBeCloseTo(2000, -1);
  });

  it('attenuates 6 kHz and keeps 440 Hz from 16 kHz to 8 kHz', () => {
    const input = sine(6000, 16_000, 16_000, 16384, 0.7);
    const high = resamplePcm16(input, 16_000, 8000);
    expect(high.length).toBe(8000);
    expect(rms(middle(high)) / rms(input)).toBeLessThan(0.01);
    // Just above Nyquist (4.4 kHz would fold onto 3.6 kHz) is attenuated too.
    const near = sine(4400, 16_000, 16_000, 16384, 0.7);
    expect(rms(middle(resamplePcm16(near, 16_000, 8000))) / rms(near)).toBeLessThan(0.01);
    const low = resamplePcm16(sine(440, 16_000, 16_000), 16_000, 8000);
    expect(Math.abs(zeroCrossingHz(middle(low), 8000) - 440)).toBeLessThan(2);
  });

  it('handles non-integer ratios (44.1 kHz → 8 kHz) and upsampling (8 kHz → 24 kHz)', () => {
    const down = resamplePcm16(sine(440, 44_100, 44_100), 44_100, 8000);
    expect(down.length).toBe(8000);
    expect(Math.abs(zeroCrossingHz(middle(down), 8000) - 440)).toBeLessThan(2);
    const up = resamplePcm16(sine(440, 8000, 8000), 8000, 24_000);
    expect(up.length).toBe(24_000);
    expect(Math.abs(zeroCrossingHz(middle(up, 600), 24_000) - 440)).toBeLessThan(2);
    expect(rms(middle(up, 600)) / rms(sine(440, 8000, 8000))).toBeGreaterThan(0.98);
  });

  it('keeps a constant signal constant, clamps, and copies when rates are equal', () => {
    const dc = resamplePcm16(new Int16Array(3000).fill(1000), 24_000, 8000);
    for (const s of middle(dc, 50)) expect(Math.abs(s - 1000)).toBeLessThanOrEqual(1);
    const full = resamplePcm16(new Int16Array(3000).fill(32767), 24_000, 8000);
    expect(Math.max(...full)).toBe(32767);
    const same = new Int16Array([1, 2, 3]);
    const copy = resamplePcm16(same, 8000, 8000);
    expect(copy).toEqual(same);
    expect(copy).not.toBe(same);
  });

  it('rejects rates that are not positive integers', () => {
    expect(() => resamplePcm16(new Int16Array(4), 0, 8000)).toThrow(InvalidInputError);
    expect(() => resamplePcm16(new Int16Array(4), 24_000, 8000.5)).toThrow(InvalidInputError);
  });
});

describe('resample (float)', () => {
  it('uses the same filter and length as resamplePcm16, without rounding or clamping', () => {
    const pcm = sine(3000, 24_000, 24_000);
    const float = resample(Float32Array.from(pcm), 24_000, 8000);
    const fixed = resamplePcm16(pcm, 24_000, 8000);
    expect(float.length).toBe(fixed.length);
    for (let i = 0; i < fixed.length; i++) expect(Math.abs(float[i]! - fixed[i]!)).toBeLessThanOrEqual(0.5);
    expect(float.some((v) => !Number.isInteger(v))).toBe(true);
    const loud = resample(new Float32Array(3000).fill(40_000), 24_000, 8000);
    expect(loud[500]).toBeCloseTo(40_000, 0);
  });

  it('copies when rates are equal and rejects rates that are not positive integers', () => {
    const same = new Float32Array([0.25, -0.5]);
    const copy = resample(same, 16_000, 16_000);
    expect(copy).toEqual(same);
    expect(copy).not.toBe(same);
    expect(() => resample(same, -8000, 8000)).toThrow(/fromRate must be a positive integer/);
  });
});
