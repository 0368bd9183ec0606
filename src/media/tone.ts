import { InvalidInputError } from '../errors.js';
import { msToSamples, SAMPLE_RATE } from './audio-frame.js';

/** Options of {@link tone}. */
export interface ToneOptions {
  /** Peak amplitude as a fraction of full scale (0–1). Default 0.5 (about −6 dBFS). */
  amplitude?: number;
  /** Fade in and out over this many ms, so the tone starts and ends without a click. Default 5. */
  fadeMs?: number;
}

/**
 * A sine tone as 8 kHz PCM: beeps before a recording, comfort tones, and test signals.
 *
 * @throws {InvalidInputError} when the frequency is not in (0, 4000) Hz or the duration is negative.
 */
export function tone(frequencyHz: number, durationMs: number, options: ToneOptions = {}): Int16Array {
  if (!(frequencyHz > 0 && frequencyHz < SAMPLE_RATE / 2))
    throw new InvalidInputError(`tone frequency ${frequencyHz} Hz must be between 0 and 4000 Hz`);
  if (!(durationMs >= 0)) throw new InvalidInputError(`tone duration ${durationMs} ms must not be negative`);
  const amplitude = Math.max(0, Math.min(1, options.amplitude ?? 0.5)) * 32767;
  const n = msToSamples(durationMs);
  const fade = Math.min(msToSamples(options.fadeMs ?? 5), Math.floor(n / 2));
  const out = new Int16Array(n);
  const step = (2 * Math.PI * frequencyHz) / SAMPLE_RATE;
  for (let i = 0; i < n; i++) {
    const envelope = fade > 0 ? Math.min(1, i / fade, (n - 1 - i) / fade) : 1;
    out[i] = Math.round(Math.sin(i * step) * amplitude * envelope);
  }
  return out;
}
