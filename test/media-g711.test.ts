import { describe, expect, it } from 'vitest';
import {
  decodeAlaw,
  decodeMulaw,
  encodeAlaw,
  encodeMulaw,
  linearToMulaw,
  mulawToLinear,
} from '../src/media/g711.js';

const ramp = Int16Array.from({ length: 2000 }, (_, i) => Math.round(-32000 + i * 32));

/** G.711 is logarithmic: the error grows with the magnitude, about 1/32 of it at most. */
function maxRelativeError(a: Int16Array, b: Int16Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - b[i]!) / Math.max(256, Math.abs(a[i]!));
    worst = Math.max(worst, err);
  }
  return worst;
}

describe('G.711', () => {
  it('µ-law round-trips within the quantisation step, and 0xFF is digital silence', () => {
    expect(maxRelativeError(ramp, decodeMulaw(encodeMulaw(ramp)))).toBeLessThan(1 / 16);
    expect(mulawToLinear(0xff)).toBe(0);
    expect(linearToMulaw(0)).toBe(0xff);
    expect(mulawToLinear(0x00)).toBe(-32124);
  });

  it('A-law round-trips within the quantisation step', () => {
    expect(maxRelativeError(ramp, decodeAlaw(encodeAlaw(ramp)))).toBeLessThan(1 / 16);
    expect(decodeAlaw(encodeAlaw(Int16Array.of(0)))[0]!).toBeLessThanOrEqual(8);
  });
});
