/**
 * The speech-to-text contract of asteramisk: one utterance in (8 kHz mono signed 16-bit PCM, the
 * library's audio convention), its transcript out.
 */

/** Per-utterance options of {@link SttEngine.transcribe}. */
export interface TranscribeOptions {
  /** BCP-47 or ISO-639-1 language of the speech (`en`, `en-US`); engines detect it when omitted. */
  language?: string;
  /** Words or phrases likely to be said (names, menu options), to bias recognition. */
  hints?: string[];
  /** Aborts the request; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** A speech-to-text engine. Implementations must be safe to call concurrently. */
export interface SttEngine {
  /** Short identifier used in errors and logs (`openai-stt`, `scripted`). */
  readonly name: string;
  /**
   * Transcribes one utterance (8 kHz mono 16-bit PCM). Resolves to the text, trimmed; `''` when
   * nothing was recognized.
   */
  transcribe(pcm: Int16Array, options?: TranscribeOptions): Promise<string>;
  /** Releases connections. Optional; safe to call more than once. */
  close?(): Promise<void>;
}
