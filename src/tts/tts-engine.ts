/**
 * The text-to-speech contract of asteramisk. Every engine returns one utterance as **8 kHz mono
 * signed 16-bit PCM** in an `Int16Array`, the library's audio convention (the media layer encodes
 * it to G.711 for the call leg).
 */

/** The sample rate of every PCM buffer exchanged by the speech layer. */
export const SPEECH_SAMPLE_RATE = 8000;

/** Per-utterance options of {@link TtsEngine.synthesize}. */
export interface SynthesizeOptions {
  /** Engine-specific voice name (`alloy`, `en-US-Neural2-J`…); the engine's default when omitted. */
  voice?: string;
  /** BCP-47 language code (`en-US`); engines that infer the language ignore it. */
  language?: string;
  /** Aborts the request; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** A text-to-speech engine. Implementations must be safe to call concurrently. */
export interface TtsEngine {
  /**
   * Short identifier used in errors and logs (`openai-tts`, `google-tts`, `offline`). Also part of
   * the cache key when {@link cacheId} is absent.
   */
  readonly name: string;
  /**
   * Identity of everything besides voice, language and text that changes the audio (model, default
   * voice, instructions, encoding…), used as the engine part of {@link CachedTts} keys. Defaults to
   * {@link name}. Two engines with the same cacheId must render the same text identically.
   */
  readonly cacheId?: string;
  /** Renders `text` as 8 kHz mono 16-bit PCM. */
  synthesize(text: string, options?: SynthesizeOptions): Promise<Int16Array>;
  /** Releases connections (gRPC channels…). Optional; safe to call more than once. */
  close?(): Promise<void>;
}

/** Throws `signal.reason` when the signal is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/**
 * Races `promise` against `signal`: rejects with `signal.reason` as soon as it aborts, and calls
 * `onAbort` (to cancel the underlying work). Listeners are removed when the race settles.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort?: () => void,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    onAbort?.();
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort?.();
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}
