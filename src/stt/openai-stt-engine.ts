import type OpenAI from 'openai';
import { toFile } from 'openai';
import { encodeWav } from '../media/wav.js';
import {
  createOpenAiClient,
  type OpenAiConnectionOptions,
  openAiFailure,
  resolveOpenAiKey,
} from '../tts/openai-client.js';
import { SPEECH_SAMPLE_RATE, throwIfAborted } from '../tts/tts-engine.js';
import type { SttEngine, TranscribeOptions } from './stt-engine.js';

/** Options of {@link OpenAiSttEngine}. */
export interface OpenAiSttOptions extends OpenAiConnectionOptions {
  /** Transcription model. Default `gpt-4o-mini-transcribe`. */
  model?: string;
  /** Default language when `transcribe` gets none (`en`); detected by the model otherwise. */
  language?: string;
  /**
   * Utterances shorter than this many milliseconds resolve to `''` without a request (OpenAI rejects
   * audio under 100 ms). Default 100.
   */
  minDurationMs?: number;
}

/** `en` from `en-US`: the transcription API takes ISO-639-1 codes. */
function isoLanguage(language: string): string {
  return language.split(/[-_]/)[0]!.toLowerCase();
}

/**
 * Speech-to-text with OpenAI's `/audio/transcriptions` endpoint (`openai` package): the utterance is
 * sent as a 16-bit 8 kHz mono WAV; hints become the `prompt` (comma-separated).
 *
 * @throws {ConfigError} at construction when no API key is given (option or env `OPENAI_API_KEY`).
 */
export class OpenAiSttEngine implements SttEngine {
  readonly name = 'openai-stt';
  readonly model: string;
  private readonly language: string | undefined;
  private readonly minSamples: number;
  // ES private fields: util.inspect and JSON.stringify of the engine never show the key.
  readonly #apiKey: string;
  readonly #client: OpenAI;

  constructor(options: OpenAiSttOptions = {}) {
    this.#apiKey = resolveOpenAiKey(options.apiKey, 'OpenAI speech-to-text engine');
    this.model = options.model ?? 'gpt-4o-mini-transcribe';
    this.language = options.language;
    this.minSamples = Math.round(((options.minDurationMs ?? 100) * SPEECH_SAMPLE_RATE) / 1000);
    this.#client = createOpenAiClient(this.#apiKey, options);
  }

  async transcribe(pcm: Int16Array, options: TranscribeOptions = {}): Promise<string> {
    const { signal } = options;
    throwIfAborted(signal);
    if (pcm.length < this.minSamples) return '';
    const language = options.language ?? this.language;
    const hints = (options.hints ?? []).map((h) => h.trim()).filter((h) => h !== '');
    try {
      const file = await toFile(encodeWav(pcm, SPEECH_SAMPLE_RATE), 'utterance.wav', { type: 'audio/wav' });
      const result = await this.#client.audio.transcriptions.create(
        {
          file,
          model: this.model,
          ...(language !== undefined && { language: isoLanguage(language) }),
          ...(hints.length > 0 && { prompt: hints.join(', ') }),
        },
        signal ? { signal } : undefined,
      );
      return result.text.trim();
    } catch (error) {
      throw openAiFailure(this.name, error, this.#apiKey, signal);
    }
  }
}
