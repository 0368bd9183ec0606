import { SPEECH_SAMPLE_RATE, type SynthesizeOptions, type TtsEngine, throwIfAborted } from './tts-engine.js';

/** Options of {@link OfflineTtsEngine}. */
export interface OfflineTtsOptions {
  /** Duration of one character, in milliseconds. Default 65. */
  msPerChar?: number;
  /** Peak amplitude from 0 to 1. Default 0.3 (about -10 dBFS). */
  amplitude?: number;
}

/** FNV-1a, 32 bits: a stable hash so each word always gets the same pitch. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const SOUNDING = /[\p{L}\p{N}]/u;

/**
 * A text-to-speech engine with no network and no credentials, for demos, tests and development:
 * each word becomes a short voiced tone (a pitch picked from the word, a falling glide, one harmonic,
 * soft edges), and spaces and punctuation become silence, so a sentence sounds like a run of
 * "speech-ish" beeps. The output is deterministic and exactly `msPerChar` per character of text
 * (520 samples at 8 kHz for the default 65 ms). The voice, if any, shifts the pitch.
 */
export class OfflineTtsEngine implements TtsEngine {
  readonly name = 'offline';
  readonly cacheId: string;
  private readonly samplesPerChar: number;
  private readonly amplitude: number;

  constructor(options: OfflineTtsOptions = {}) {
    const msPerChar = options.msPerChar ?? 65;
    this.samplesPerChar = Math.max(1, Math.round((msPerChar * SPEECH_SAMPLE_RATE) / 1000));
    this.amplitude = Math.min(1, Math.max(0, options.amplitude ?? 0.3)) * 32767;
    this.cacheId = `offline|v1|${this.samplesPerChar}|${this.amplitude}`;
  }

  async synthesize(text: string, options: SynthesizeOptions = {}): Promise<Int16Array> {
    throwIfAborted(options.signal);
    return this.render(text, options.voice);
  }

  /** The synchronous renderer behind {@link synthesize}. */
  render(text: string, voice?: string): Int16Array {
    const chars = [...text];
    const out = new Int16Array(chars.length * this.samplesPerChar);
    const voiceShift = voice ? (fnv1a(voice) % 120) - 60 : 0; // ±60 Hz per voice
    let i = 0;
    while (i < chars.length) {
      if (!SOUNDING.test(chars[i]!)) {
        i++; // silence: the array is already zero there
        continue;
      }
      let end = i;
      while (end < chars.length && SOUNDING.test(chars[end]!)) end++;
      const word = chars.slice(i, end).join('').toLowerCase();
      this.tone(
        out,
        i * this.samplesPerChar,
        (end - i) * this.samplesPerChar,
        300 + (fnv1a(word) % 300) + voiceShift,
      );
      i = end;
    }
    return out;
  }

  private tone(out: Int16Array, start: number, length: number, f0: number): void {
    const ramp = Math.min(Math.floor(length / 2), Math.round(0.008 * SPEECH_SAMPLE_RATE));
    let phase = 0;
    for (let n = 0; n < length; n++) {
      const progress = n / length;
      const f = f0 * (1.08 - 0.16 * progress); // a gentle falling intonation
      phase += (2 * Math.PI * f) / SPEECH_SAMPLE_RATE;
      let envelope = 1;
      if (n < ramp) envelope = 0.5 - 0.5 * Math.cos((Math.PI * n) / ramp);
      else if (n >= length - ramp) envelope = 0.5 - 0.5 * Math.cos((Math.PI * (length - 1 - n)) / ramp);
      const value = (Math.sin(phase) + 0.3 * Math.sin(2 * phase)) / 1.3;
      out[start + n] = Math.round(this.amplitude * envelope * value);
    }
  }
}
