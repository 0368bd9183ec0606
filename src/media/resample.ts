import { InvalidInputError } from '../errors.js';

/**
 * Band-limited sample-rate conversion of mono audio (whole buffers: one WAV file, one TTS
 * utterance): a polyphase windowed-sinc FIR (Blackman window) whose cutoff sits below the lower of
 * the two Nyquist frequencies. Going down (24 or 48 kHz → 8 kHz) it is the anti-aliasing low-pass
 * and the decimation in one step, so nothing above 4 kHz folds back into the telephone band; going
 * up it is a smooth interpolation. Works for any pair of integer rates.
 *
 * The one kernel serves 16-bit PCM ({@link resamplePcm16}, TTS output) and float samples
 * ({@link resample}, WAV decoding after a channel downmix, which is not on the 16-bit grid).
 */

/** Tuning knobs of {@link resample} and {@link resamplePcm16}; the defaults suit telephony. */
export interface ResampleOptions {
  /**
   * Cutoff as a fraction of the lower Nyquist frequency. Default 0.9 (3.6 kHz when the target is
   * 8 kHz): the transition band ends near Nyquist, so aliasing stays far below the passband.
   */
  rolloff?: number;
  /**
   * Zero crossings of the sinc kept on each side of the centre. Default 16: 8 left a 4.2 kHz tone
   * only 23 dB down after 16 or 24 kHz → 8 kHz (it folds onto 3.8 kHz); 16 puts it 71 dB down.
   */
  zeroCrossings?: number;
}

/** Phase tables larger than this are not precomputed (odd rate pairs); taps are computed per sample. */
const MAX_TABLE_PHASES = 4096;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Blackman window on u ∈ [-1, 1] (0 outside). */
function blackman(u: number): number {
  if (u <= -1 || u >= 1) return 0;
  return 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
}

/**
 * Checks the rates, sizes the output (`round(input.length × toRate / fromRate)` samples, from
 * `allocate`) and filters `input` into it. An Int16Array output is rounded and clamped to the 16-bit
 * range; a Float32Array one is stored as is.
 */
function resampleInto<T extends Int16Array | Float32Array>(
  input: T,
  fromRate: number,
  toRate: number,
  options: ResampleOptions,
  allocate: (length: number) => T,
): T {
  for (const [name, rate] of [
    ['fromRate', fromRate],
    ['toRate', toRate],
  ] as const) {
    if (!Number.isInteger(rate) || rate <= 0)
      throw new InvalidInputError(`${name} must be a positive integer, got ${rate}`);
  }
  if (fromRate === toRate) {
    const copy = allocate(input.length);
    copy.set(input);
    return copy;
  }
  const output = allocate(Math.round((input.length * toRate) / fromRate));
  const rolloff = options.rolloff ?? 0.9;
  const zeroCrossings = options.zeroCrossings ?? 16;
  const pcm16 = output instanceof Int16Array;

  const g = gcd(fromRate, toRate);
  const phases = toRate / g; // L: output positions fall on multiples of 1/L input samples
  const step = fromRate / g; // M: input samples advanced per output sample, in units of 1/L

  // Cutoff in cycles per input sample, and the kernel's half-width in input samples.
  const fc = 0.5 * Math.min(1, toRate / fromRate) * rolloff;
  const halfWidth = Math.ceil(zeroCrossings / (2 * fc));
  const taps = 2 * halfWidth;

  // Tap j of phase p weighs input sample (base - halfWidth + 1 + j), at distance x from the output point.
  const kernel = (p: number, out: Float64Array): Float64Array => {
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const x = halfWidth - 1 - j + p / phases;
      const w = 2 * fc * sinc(2 * fc * x) * blackman(x / halfWidth);
      out[j] = w;
      sum += w;
    }
    // Unity gain at DC for every phase, so a constant signal stays constant.
    for (let j = 0; j < taps; j++) out[j]! /= sum;
    return out;
  };

  const table = phases <= MAX_TABLE_PHASES ? new Float64Array(phases * taps) : undefined;
  if (table) {
    for (let p = 0; p < phases; p++) kernel(p, table.subarray(p * taps, (p + 1) * taps));
  }
  const scratch = new Float64Array(taps);

  // Beyond either end the signal is taken as silence (the taps there are skipped).
  const last = input.length - 1;
  for (let n = 0; n < output.length; n++) {
    const pos = n * step;
    const base = Math.floor(pos / phases);
    const p = pos - base * phases;
    const h = table ? table.subarray(p * taps, (p + 1) * taps) : kernel(p, scratch);
    const first = base - halfWidth + 1;
    const jStart = Math.max(0, -first);
    const jEnd = Math.min(taps, last - first + 1);
    let acc = 0;
    for (let j = jStart; j < jEnd; j++) acc += h[j]! * input[first + j]!;
    // Int16Array assignment would truncate and wrap around; round and saturate instead.
    output[n] = !pcm16 ? acc : acc >= 32767 ? 32767 : acc <= -32768 ? -32768 : Math.round(acc);
  }
  return output;
}

/**
 * Resamples 16-bit mono PCM from `fromRate` to `toRate` Hz. The output has
 * `round(input.length × toRate / fromRate)` samples, rounded and clamped to the 16-bit range; the
 * signal is zero-padded at both ends. Equal rates give a copy.
 *
 * @throws {InvalidInputError} for rates that are not positive integers.
 */
export function resamplePcm16(
  input: Int16Array,
  fromRate: number,
  toRate: number,
  options: ResampleOptions = {},
): Int16Array {
  return resampleInto(input, fromRate, toRate, options, (length) => new Int16Array(length));
}

/**
 * Resamples float mono samples (any scale) from `fromRate` to `toRate` Hz, without rounding or
 * clamping: the same filter and output length as {@link resamplePcm16}. Equal rates give a copy.
 *
 * @throws {InvalidInputError} for rates that are not positive integers.
 */
export function resample(
  input: Float32Array,
  fromRate: number,
  toRate: number,
  options: ResampleOptions = {},
): Float32Array {
  return resampleInto(input, fromRate, toRate, options, (length) => new Float32Array(length));
}
