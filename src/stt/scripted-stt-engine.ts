import { SpeechEngineError } from '../errors.js';
import { throwIfAborted } from '../tts/tts-engine.js';
import type { SttEngine, TranscribeOptions } from './stt-engine.js';

/** Computes the transcript of the `index`-th utterance (0-based). */
export type TranscriptFunction = (
  pcm: Int16Array,
  index: number,
  options: TranscribeOptions,
) => string | Promise<string>;

/** Options of {@link ScriptedSttEngine}. */
export interface ScriptedSttOptions {
  /**
   * What happens after the last scripted transcript: `'empty'` (default) resolves to `''` (nothing
   * recognized), `'throw'` rejects with SpeechEngineError, `'repeat-last'` repeats the last one.
   */
  whenExhausted?: 'empty' | 'throw' | 'repeat-last';
}

/**
 * A speech-to-text engine **for tests and demos**: no network, no model. Each utterance gets the
 * next transcript of the script (or whatever the function returns), whatever its audio. The audio and
 * options received are kept in {@link calls} for assertions.
 */
export class ScriptedSttEngine implements SttEngine {
  readonly name = 'scripted';
  /** Every utterance received, in order, with its options (signal left out). */
  readonly calls: { pcm: Int16Array; options: Omit<TranscribeOptions, 'signal'> }[] = [];
  private readonly script: readonly string[] | TranscriptFunction;
  private readonly whenExhausted: NonNullable<ScriptedSttOptions['whenExhausted']>;

  constructor(script: readonly string[] | TranscriptFunction, options: ScriptedSttOptions = {}) {
    this.script = typeof script === 'function' ? script : [...script];
    this.whenExhausted = options.whenExhausted ?? 'empty';
  }

  /** Transcripts not yet handed out (for an array script). */
  get remaining(): number {
    return typeof this.script === 'function'
      ? Number.POSITIVE_INFINITY
      : Math.max(0, this.script.length - this.calls.length);
  }

  async transcribe(pcm: Int16Array, options: TranscribeOptions = {}): Promise<string> {
    throwIfAborted(options.signal);
    const index = this.calls.length;
    const { signal: _signal, ...kept } = options;
    this.calls.push({ pcm: pcm.slice(), options: kept });
    if (typeof this.script === 'function') return (await this.script(pcm, index, options)).trim();
    const next = this.script[index];
    if (next !== undefined) return next.trim();
    if (this.whenExhausted === 'throw') {
      throw new SpeechEngineError(
        this.name,
        `the script has ${this.script.length} transcripts; utterance ${index + 1} has none`,
      );
    }
    if (this.whenExhausted === 'repeat-last') return (this.script[this.script.length - 1] ?? '').trim();
    return '';
  }
}
