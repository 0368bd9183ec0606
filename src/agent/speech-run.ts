import { mulawToLinear } from '../media/g711.js';

/** |sample| of each µ-law byte, built once. */
const MAGNITUDE = Uint16Array.from({ length: 256 }, (_, byte) => Math.abs(mulawToLinear(byte)));

/** Mean |sample| of a frame above which it counts as speech (Asterisk's TALK_DETECT default: 256). */
const SPEECH_LEVEL = 256;
/** A pause (or missing RTP: a bridge sends nothing while nobody talks) longer than this ends a run. */
const MAX_GAP_MS = 80;

/**
 * How long the caller has been talking without a pause, measured on the µ-law frames themselves
 * (a table lookup per byte: no decoding, no filtering). Used to tell a real barge-in from echo,
 * a click or line noise that the model's VAD took for speech.
 */
export class SpeechRun {
  #runMs = 0;
  #lastSpeechAt = Number.NEGATIVE_INFINITY;

  /** Adds one frame received at `now` (ms); returns the run length in ms. */
  push(ulaw: Uint8Array, now: number): number {
    let sum = 0;
    for (let i = 0; i < ulaw.length; i++) sum += MAGNITUDE[ulaw[i]!]!;
    const speech = ulaw.length > 0 && sum / ulaw.length > SPEECH_LEVEL;
    if (now - this.#lastSpeechAt > MAX_GAP_MS) this.#runMs = 0;
    if (speech) {
      this.#runMs += ulaw.length / 8;
      this.#lastSpeechAt = now;
    }
    return this.#runMs;
  }

  /** The current run in ms (0 once the caller paused longer than 80 ms). */
  lengthAt(now: number): number {
    return now - this.#lastSpeechAt > MAX_GAP_MS ? 0 : this.#runMs;
  }
}
