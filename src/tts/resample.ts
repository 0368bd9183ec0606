/**
 * Band-limited sample-rate conversion of signed 16-bit mono PCM (whole buffers, e.g. one TTS
 * utterance): a polyphase windowed-sinc FIR (Blackman window) whose cutoff sits below the lower of
 * the two Nyquist frequencies, so 24 kHz → 8 kHz low-passes before decimating and nothing above
 * 4 kHz folds back into the telephone band. Works for any pair of integer rates, up or down.
 */

/** Tuning knobs of {@link resamplePcm16}; the defaults suit telephony. */
export interface ResampleOptions {
  /**
   * Cutoff as a fraction of the lower Nyquist frequency. Default 0.9 (3.6 kHz when the target is
   * 8 kHz): the transition band ends near Nyquist, so aliasing stays far below the passband.
   */
  rolloff?: number;
  /** Zero crossings of the sinc kept on each side of the centre. Default 16 (longer = sharper). */
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
 * Resamples 16-bit mono PCM from `fromRate` to `toRate` Hz. The output has
 * `round(input.length × toRate / fromRate)` samples; the signal is zero-padded at both ends.
 *
 * @throws {RangeError} for rates that are not positive integers.
 */
export function resamplePcm16(
  input: Int16Array,
  fromRate: number,
  toRate: number,
  options: ResampleOptions = {},
): Int16Array {
  for (const [name, rate] of [
    ['fromRate', fromRate],
    ['toRate', toRate],
  ] as const) {
    if (!Number.isInteger(rate) || rate <= 0)
      throw new RangeError(`${name} must be a positive integer, got ${rate}`);
  }
  if (fromRate === toRate) return input.slice();
  const rolloff = options.rolloff ?? 0.9;
  const zeroCrossings = options.zeroCrossings ?? 16;

  const g = gcd(fromRate, toRate);
  const phases = toRate / g; // L: output positions fall on multiples of 1/L input samples
  const step = fromRate / g; // M: input samples advanced per output sample, in units of 1/L
  const outLength = Math.round((input.length * toRate) / fromRate);

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

  const output = new Int16Array(outLength);
  const last = input.length - 1;
  for (let n = 0; n < outLength; n++) {
    const pos = n * step;
    const base = Math.floor(pos / phases);
    const p = pos - base * phases;
    const h = table ? table.subarray(p * taps, (p + 1) * taps) : kernel(p, scratch);
    const first = base - halfWidth + 1;
    const jStart = Math.max(0, -first);
    const jEnd = Math.min(taps, last - first + 1);
    let acc = 0;
    for (let j = jStart; j < jEnd; j++) acc += h[j]! * input[first + j]!;
    output[n] = acc >= 32767 ? 32767 : acc <= -32768 ? -32768 : Math.round(acc);
  }
  return output;
}
