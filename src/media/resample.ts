import { InvalidInputError } from '../errors.js';

/**
 * Band-limited sample-rate conversion: each output sample is the input convolved with a
 * Blackman-windowed sinc whose cutoff sits at 90 % of the lower Nyquist frequency. Going down (48 kHz
 * → 8 kHz) that is the anti-aliasing low-pass and the decimation in one step, so nothing above 4 kHz
 * folds back into the telephone band; going up it is a smooth interpolation.
 */

/** Zero crossings of the sinc kept on each side, at the lower rate. More = sharper, slower. */
const ZERO_CROSSINGS = 8;
/** Cutoff as a fraction of the lower Nyquist frequency. */
const ROLLOFF = 0.9;
/** Filter phases precomputed at most (odd rate pairs compute their taps per sample instead). */
const MAX_PHASES = 1024;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Windowed sinc at distance `d` input samples, for normalised cutoff `cutoff` and half-width `half`. */
function kernel(d: number, cutoff: number, half: number): number {
  const u = d / half;
  if (u <= -1 || u >= 1) return 0;
  const x = Math.PI * cutoff * d;
  const sinc = x === 0 ? 1 : Math.sin(x) / x;
  const window = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
  return cutoff * sinc * window;
}

/** The taps of one phase (output position `frac` of an input sample past `base`), normalised to unit gain. */
function phaseTaps(frac: number, cutoff: number, half: number): Float64Array {
  const taps = new Float64Array(2 * half);
  let sum = 0;
  for (let j = 0; j < taps.length; j++) {
    // Tap j weighs input sample base - half + 1 + j.
    const value = kernel(j - half + 1 - frac, cutoff, half);
    taps[j] = value;
    sum += value;
  }
  if (sum !== 0) for (let j = 0; j < taps.length; j++) taps[j]! /= sum;
  return taps;
}

/**
 * Resamples mono samples from `fromRate` to `toRate` Hz (integer rates). The output has
 * `floor(length × toRate / fromRate)` samples; edges are treated as silence beyond the input.
 *
 * @throws {InvalidInputError} for rates that are not positive integers.
 */
export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  for (const rate of [fromRate, toRate]) {
    if (!Number.isInteger(rate) || rate <= 0)
      throw new InvalidInputError(`sample rate ${rate} must be a positive integer`);
  }
  if (fromRate === toRate) return input.slice();
  const g = gcd(fromRate, toRate);
  const up = toRate / g;
  const down = fromRate / g;
  const cutoff = ROLLOFF * Math.min(1, toRate / fromRate);
  const half = Math.ceil(ZERO_CROSSINGS / cutoff);
  const table =
    up <= MAX_PHASES ? Array.from({ length: up }, (_, p) => phaseTaps(p / up, cutoff, half)) : undefined;
  const outLength = Math.floor((input.length * toRate) / fromRate);
  const out = new Float32Array(outLength);
  for (let i = 0; i < outLength; i++) {
    // Output i sits at input position i × down / up = base + phase / up.
    const position = i * down;
    const base = Math.floor(position / up);
    const phase = position - base * up;
    const taps = table ? table[phase]! : phaseTaps(phase / up, cutoff, half);
    const start = base - half + 1;
    let acc = 0;
    const from = Math.max(0, -start);
    const to = Math.min(taps.length, input.length - start);
    for (let j = from; j < to; j++) acc += input[start + j]! * taps[j]!;
    out[i] = acc;
  }
  return out;
}
